# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The facts of a containerd image store: the same keys as the overlay2 facts, sized as the engine sizes them.

- An image's ``size`` is ``/images/json``'s ``Size``: for every manifest of its target (attestations
  included) the manifest, its config and its present layer blobs, plus the stored usage of every snapshot of
  the image's snapshot stack (the parent links from its top snapshot, ``-init`` snapshots of the classic
  builder included). ``shared_size`` is the stored usage of its layer chains that another image uses too.
- ``summary.layers_size`` is ``/system/df``'s ``LayersSize``: the usage of every snapshot of the namespace
  (committed: as stored at commit; active: measured now; view: 0) plus the unique blobs that any image's
  target reaches. The two parts are also given alone: ``snapshots_size`` and ``content_size``.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Dict, List, Optional, Set, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._facts.shape import (
    classified_with_usage,
    Facts,
    container_skeleton,
    image_identity,
    sized,
    store_facts,
    summary_counts,
)
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.containerd import ContainerdClassification, classify
from ansible_collections.strata.overlay2.plugins.module_utils._store.containerd import (
    ContainerdParts,
    ContainerdStore,
    SnapshotUsage,
    referenced_digests,
)
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Container, Image, Layer


class _Sizes:
    """Blob sizes, snapshot usage, manifests' blobs and snapshots' directories, each found once."""

    def __init__(self, store: ContainerdStore, parts: ContainerdParts) -> None:
        self.store = store
        self.parts = parts
        self.usage = SnapshotUsage(parts)
        self.manifests: Dict[str, List[str]] = {}  # manifest digest -> its blobs, parsed once
        self.fs_dirs: Dict[Optional[str], Optional[str]] = {}  # snapshot key -> its fs/ directory

    def fs_dir(self, key: Optional[str]) -> Optional[str]:
        """A snapshot's ``fs/`` directory (None when it has none), built once however many images list it."""
        found = self.fs_dirs.get(key, "")
        if found == "":
            found = self.fs_dirs[key] = self.parts.fs_dir(key)
        return found

    def blob(self, digest: Optional[str]) -> int:
        record = self.parts.blobs.get(digest) if digest else None
        return record.size if record else 0

    def manifest_blobs(self, manifest_digest: str) -> List[str]:
        """A manifest, its config and its layers, as digests (the parts that parse)."""
        found = self.manifests.get(manifest_digest)
        if found is None:
            found = self.manifests[manifest_digest] = self.parse_manifest(manifest_digest)
        return found

    def parse_manifest(self, manifest_digest: str) -> List[str]:
        manifest = self.parts.blob_json.get(manifest_digest)
        return [manifest_digest] + (referenced_digests(manifest, ("config", "layers")) if manifest is not None else [])

    def reachable(self, image: Image) -> List[str]:
        """Every blob the image's target reaches: the index, each manifest, configs and layers."""
        found = [image.id] if image.id not in image.manifests else []
        for manifest in image.manifests:
            found.extend(self.manifest_blobs(manifest))
        return found


def gather(store: ContainerdStore, container_sizes: bool = False, orphans: bool = True,
           usage: Optional[Callable[[ContainerdClassification], Facts]] = None, layer_list: bool = True) -> Facts:
    """The facts of a containerd image store; ``usage`` measures where the disk went from the same
    classification; without ``layer_list``, ``layers`` is None (the summary and the other lists do not need
    it)."""
    parts = store.parts
    sizes = _Sizes(store, parts)
    children = store.children_of_images()
    intermediate = {image.id for image in store.images.values()
                    if not image.tags and image.id in children}
    refs: Counter[str] = Counter()
    for image in store.images.values():
        refs.update(set(image.chain_ids))
    images_by_layer: Dict[str, List[str]] = {}
    for image in store.images.values():
        for chain_id in image.chain_ids:
            images_by_layer.setdefault(chain_id, []).append(image.id)
    containers_by_image: Dict[str, List[str]] = {}
    containers_by_snapshot: Dict[str, List[str]] = {}
    for container in store.containers.values():
        if container.image_id:
            containers_by_image.setdefault(container.image_id, []).append(container.id)
        for snapshot in parts.stack(container.id)[1:]:
            containers_by_snapshot.setdefault(snapshot.key, []).append(container.id)

    def shape() -> Tuple[List[Facts], Optional[List[Facts]], List[Facts]]:
        return ([image_facts(store, sizes, refs, intermediate, containers_by_image, image)
                 for image in sorted(store.images.values(), key=lambda i: i.id)],
                [layer_facts(sizes, refs, images_by_layer, containers_by_snapshot, layer)
                 for layer in sorted(store.layers.values(), key=lambda l: l.chain_id)] if layer_list else None,
                [container_facts(store, sizes, container, container_sizes)
                 for container in sorted(store.containers.values(), key=lambda c: c.id)])

    (images, layers, containers), classified = store.shaped_with_orphans(
        shape, classified_with_usage(lambda: classify(store, sizes.usage), orphans, usage))
    orphan_facts, usage_facts = classified or (None, None)
    facts = store_facts(store, "overlayfs", "containerd", images, layers, containers, orphan_facts,
                        summary(store, sizes, refs, images, containers),
                        containerd={"root": parts.root, "namespace": parts.namespace, "layout": parts.layout})
    if usage_facts is not None:
        facts["usage"] = usage_facts
    return facts


def image_facts(store: ContainerdStore, sizes: _Sizes, refs: Counter, intermediate: Set[str],
                containers_by_image: Dict[str, List[str]], image: Image) -> Facts:
    parts = store.parts
    stack = parts.stack(image.top_chain_id)
    dirs = [sizes.fs_dir(snapshot.key) for snapshot in stack]
    complete = bool(image.chain_ids) and len(stack) >= len(image.chain_ids) and all(dirs)
    if image.chain_ids and not complete:
        store.note("missing", parts.snapshots_root, "image %s is not unpacked completely: its top snapshot %s "
                   "has %d of %d layers" % (image.id, image.top_chain_id, len(stack), len(image.chain_ids)))
    compressed = sum(sizes.blob(digest) for manifest in image.manifests for digest in sizes.manifest_blobs(manifest))
    unpacked = sum(sizes.usage(snapshot) for snapshot in stack)
    shared = sum(sizes.usage(parts.snapshots[chain]) for chain in set(image.chain_ids)
                 if refs[chain] > 1 and chain in parts.snapshots)
    size = compressed + unpacked
    facts = image_identity(store, image, image.id in intermediate)
    facts.update({
        "dangling": not image.tags,
        "manifest_digest": image.manifest_digest,
        "config_digest": image.config_digest,
        "upper_dir": dirs[0] if complete else None,
        "lower_dirs": [d for d in dirs[1:] if d] if complete else [],
        "size": size,
        "shared_size": shared,
        "unique_size": size - shared,
        "compressed_size": compressed,
        "unpacked_size": unpacked,
        "containers": sorted(containers_by_image.get(image.id, [])),
    })
    return facts


def layer_facts(sizes: _Sizes, refs: Counter, images_by_layer: Dict[str, List[str]],
                containers_by_snapshot: Dict[str, List[str]], layer: Layer) -> Facts:
    return {
        "chain_id": layer.chain_id,
        "diff_id": layer.diff_id,
        "parent": layer.parent,
        "cache_id": None,
        "size": layer.size,
        "diff_dir": sizes.fs_dir(layer.snapshot_key),
        "link": None,
        "snapshot_key": layer.snapshot_key,
        "snapshot_id": layer.snapshot_id,
        "blob": layer.blob,
        "compressed_size": layer.compressed_size,
        "images": sorted(images_by_layer.get(layer.chain_id, [])),
        "containers": sorted(containers_by_snapshot.get(layer.chain_id, [])),
        "shared": refs[layer.chain_id] > 1,
    }


def container_facts(store: ContainerdStore, sizes: _Sizes, container: Container, with_size: bool) -> Facts:
    parts = store.parts
    facts = container_skeleton(container, snapshot_id=None)
    stack = parts.stack(container.id)
    if not stack or stack[0].id is None:
        store.note("missing", parts.snapshots_root, "container %s has no snapshot" % container.id)
        return sized(facts, with_size)
    rw = stack[0]
    init = stack[1] if len(stack) > 1 and stack[1].key == container.id + "-init" else None
    facts.update(
        mount_id=rw.key,
        init_id=init.key if init else None,
        snapshot_id=rw.id,
        upper_dir=parts.snapshot_fs(rw.id),
        work_dir=parts.snapshot_dir(rw.id, "work"),
        lower_dirs=[parts.fs_dir(snapshot.key) for snapshot in stack[1:] if snapshot.id],
        merged_dir=store.data_root + "/rootfs/overlayfs/" + container.id,
    )
    if with_size:
        facts["rw_size"] = sizes.usage(rw)
    return facts


def summary(store: ContainerdStore, sizes: _Sizes, refs: Counter, images: List[Facts], containers: List[Facts]) -> Facts:
    parts = store.parts
    snapshots_size = sum(sizes.usage(snapshot) for snapshot in parts.snapshots.values())
    reachable: Set[str] = set()
    for image in store.images.values():
        reachable.update(sizes.reachable(image))
    content_size = sum(sizes.blob(digest) for digest in reachable)
    shared_size = sum(sizes.usage(parts.snapshots[chain]) for chain, count in refs.items()
                      if count > 1 and chain in parts.snapshots)
    totals = summary_counts(store, images, containers, snapshots_size + content_size, shared_size)
    totals.update(snapshots_size=snapshots_size, content_size=content_size, snapshots=len(parts.snapshots),
                  blobs=len(parts.blobs))
    return totals
