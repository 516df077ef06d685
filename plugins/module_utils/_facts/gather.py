# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The overlay2 facts: images, layers and containers joined as the engine shows them.

Sizes follow the engine's disk-usage API (/system/df): an image's size is the
sum of its layers' ``size``; a layer is shared when more than one listed image
uses it; intermediate images of the classic builder (untagged, with children)
are not counted, as the engine does not count them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._facts import containerd as _containerd_facts
from ansible_collections.strata.overlay2.plugins.module_utils._facts.drift import drift
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import classify
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import tree_size
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Container, Image, Layer, Store

Facts = Dict[str, Any]


class _Joins:
    """Indexes built once over the store, so that every join below is a dict look-up."""

    def __init__(self, store: Store) -> None:
        self.store = store
        children = store.children_of_images()
        self.intermediate = {
            image.id for image in store.images.values()
            if not image.tags and not image.digests and image.id in children
        }
        self.layer_refs = Counter()  # type: Counter[str]
        for image in store.images.values():
            if image.id not in self.intermediate:
                self.layer_refs.update(set(image.chain_ids))
        self.images_by_layer = {}  # type: Dict[str, List[str]]
        for image in store.images.values():
            for chain_id in image.chain_ids:
                self.images_by_layer.setdefault(chain_id, []).append(image.id)
        self.containers_by_image = {}  # type: Dict[str, List[str]]
        for container in store.containers.values():
            if container.image_id:
                self.containers_by_image.setdefault(container.image_id, []).append(container.id)
        self.containers_by_layer = {}  # type: Dict[str, List[str]]
        for mount in store.mounts.values():
            for layer in store.chain(mount.parent):
                self.containers_by_layer.setdefault(layer.chain_id, []).append(mount.container_id)
        self.shared = {chain_id for chain_id, refs in self.layer_refs.items() if refs > 1}
        # each layer's diff dir, built once: images list them again and again
        self.diff_dirs = {chain_id: store.diff_dir(layer.cache_id) if layer.cache_id else None
                          for chain_id, layer in store.layers.items()}  # type: Dict[str, Optional[str]]


def gather(store: Store, container_sizes: bool = False, orphans: bool = True,
           drift_paths: Optional[Sequence[str]] = None) -> Facts:
    """The facts of either store; with ``drift_paths``, each container's drift below them too."""
    facts = _containerd_facts.gather(store, container_sizes, orphans) if store.kind == "containerd" else \
        _gather_overlay2(store, container_sizes, orphans)
    if drift_paths is not None:
        for container in facts["containers"]:
            container["drift"] = drift(container["upper_dir"], container["lower_dirs"], drift_paths)
    return facts


def _gather_overlay2(store: Store, container_sizes: bool, orphans: bool) -> Facts:
    joins = _Joins(store)

    def shape() -> Tuple[List[Facts], List[Facts], List[Facts]]:
        return ([image_facts(store, joins, image) for image in sorted(store.images.values(), key=lambda i: i.id)],
                [layer_facts(store, joins, layer) for layer in sorted(store.layers.values(), key=lambda l: l.chain_id)],
                [container_facts(store, container, container_sizes)
                 for container in sorted(store.containers.values(), key=lambda c: c.id)])

    (images, layers, containers), orphan_facts = store.shaped_with_orphans(
        shape, (lambda: classify(store).facts()) if orphans else None)
    totals = summary(store, joins, images, containers)
    totals["orphan_bytes"] = orphan_facts["bytes"] if orphan_facts else None
    return {
        "data_root": store.data_root,
        "driver": "overlay2",
        "store": "overlay2",
        "images": images,
        "layers": layers,
        "containers": containers,
        "orphans": orphan_facts,
        "summary": totals,
        "warnings": [finding.as_dict() for finding in store.findings],
    }


def image_facts(store: Store, joins: _Joins, image: Image) -> Facts:
    layers = store.image_layers(image)
    if layers is None:
        store.note("missing", store.layer_path(image.top_chain_id or ""),
                   "image %s names a layer that is not in the layer database" % image.id)
    upper_dir = None  # type: Optional[str]
    lower_dirs = []  # type: List[str]
    size = shared = None  # type: Optional[int]
    if layers:
        dirs = [joins.diff_dirs[chain_id] for chain_id in reversed(image.chain_ids)]
        if all(dirs):
            upper_dir, lower_dirs = dirs[0], [d for d in dirs[1:] if d]
        sizes = [layer.size for layer in layers]
        if None not in sizes:
            size = sum(sizes)  # type: ignore[arg-type]
            shared = sum(layer.size for layer in layers if layer.chain_id in joins.shared)  # type: ignore[misc]
    elif layers == []:
        size = shared = 0
    return {
        "id": image.id,
        "tags": list(image.tags),
        "digests": list(image.digests),
        "created": image.created,
        "parent": store.image_parents.get(image.id),
        "intermediate": image.id in joins.intermediate,
        "diff_ids": list(image.diff_ids),
        "chain_ids": list(image.chain_ids),
        "top_chain_id": image.top_chain_id,
        "upper_dir": upper_dir,
        "lower_dirs": lower_dirs,
        "size": size,
        "shared_size": shared,
        "unique_size": None if size is None or shared is None else size - shared,
        "containers": sorted(joins.containers_by_image.get(image.id, [])),
    }


def layer_facts(store: Store, joins: _Joins, layer: Layer) -> Facts:
    overlay_dir = store.dirs.get(layer.cache_id) if layer.cache_id else None  # a missing one: noted by the load
    return {
        "chain_id": layer.chain_id,
        "diff_id": layer.diff_id,
        "parent": layer.parent,
        "cache_id": layer.cache_id,
        "size": layer.size,
        "diff_dir": joins.diff_dirs[layer.chain_id],
        "link": overlay_dir.link if overlay_dir else None,
        "images": sorted(joins.images_by_layer.get(layer.chain_id, ())),
        "containers": sorted(joins.containers_by_layer.get(layer.chain_id, ())),
        "shared": layer.chain_id in joins.shared,
    }


def container_facts(store: Store, container: Container, with_size: bool) -> Facts:
    facts = {
        "id": container.id,
        "name": container.name,
        "image_id": container.image_id,
        "running": container.running,
        "mount_id": None,
        "init_id": None,
        "upper_dir": None,
        "lower_dirs": [],
        "work_dir": None,
        "merged_dir": None,
    }  # type: Facts
    mount = store.mounts.get(container.id)
    if mount is None:
        store.note("missing", store.data_root + "/image/overlay2/layerdb/mounts/" + container.id,
                   "container %s has no layer mount" % container.id)
    else:
        lower = [store.diff_dir(mount.init_id)] if mount.init_id else []
        chain = store.chain(mount.parent)
        lower.extend(store.diff_dir(layer.cache_id) for layer in chain if layer.cache_id)
        facts.update(
            mount_id=mount.mount_id,
            init_id=mount.init_id,
            upper_dir=store.diff_dir(mount.mount_id),
            lower_dirs=lower,
            work_dir=store.dir_path(mount.mount_id, "work"),
            merged_dir=store.dir_path(mount.mount_id, "merged"),
        )
        if with_size:
            facts["rw_size"] = tree_size(store.diff_dir(mount.mount_id))
    if with_size and "rw_size" not in facts:
        facts["rw_size"] = None
    return facts


def summary(store: Store, joins: _Joins, images: List[Facts], containers: List[Facts]) -> Facts:
    sizes = {layer.chain_id: layer.size or 0 for layer in store.layers.values()}
    layers_size = sum(sizes.get(chain_id, 0) for chain_id in joins.layer_refs)
    shared_size = sum(sizes.get(chain_id, 0) for chain_id, refs in joins.layer_refs.items() if refs > 1)
    listed = [image for image in images if not image["intermediate"]]
    in_use = sum(image["unique_size"] or 0 for image in listed if image["containers"])
    return {
        "images": len(listed),
        "layers": len(store.layers),
        "containers": len(containers),
        "layers_size": layers_size,
        "shared_size": shared_size,
        "reclaimable_size": max(layers_size - in_use, 0),
    }
