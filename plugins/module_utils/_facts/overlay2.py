# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The facts of an overlay2 store: images, layers and containers joined as the engine shows them.

Sizes follow the engine's disk-usage API (/system/df): an image's size is the
sum of its layers' ``size``; a layer is shared when more than one listed image
uses it; intermediate images of the classic builder (untagged, with children)
are not counted, as the engine does not count them.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Dict, List, Optional, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._facts.shape import (
    classified_with_usage,
    Facts,
    container_skeleton,
    image_identity,
    sized,
    store_facts,
    summary_counts,
)
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import Classification, classify
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Container, Image, Layer
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import tree_size


class _Joins:
    """Indexes built once over the store, so that every join below is a dict look-up."""

    def __init__(self, store: Overlay2Store) -> None:
        self.store = store
        children = store.children_of_images()
        self.intermediate = {
            image.id for image in store.images.values()
            if not image.tags and not image.digests and image.id in children
        }
        self.layer_refs: Counter[str] = Counter()
        for image in store.images.values():
            if image.id not in self.intermediate:
                self.layer_refs.update(set(image.chain_ids))
        self.images_by_layer: Dict[str, List[str]] = {}
        for image in store.images.values():
            for chain_id in image.chain_ids:
                self.images_by_layer.setdefault(chain_id, []).append(image.id)
        self.containers_by_image: Dict[str, List[str]] = {}
        for container in store.containers.values():
            if container.image_id:
                self.containers_by_image.setdefault(container.image_id, []).append(container.id)
        self.containers_by_layer: Dict[str, List[str]] = {}
        for mount in store.mounts.values():
            for layer in store.chain(mount.parent):
                self.containers_by_layer.setdefault(layer.chain_id, []).append(mount.container_id)
        self.shared = {chain_id for chain_id, refs in self.layer_refs.items() if refs > 1}
        # each layer's diff dir, built once: images list them again and again
        self.diff_dirs: Dict[str, Optional[str]] = {chain_id: store.diff_dir(layer.cache_id) if layer.cache_id else None
                                                    for chain_id, layer in store.layers.items()}


def gather(store: Overlay2Store, container_sizes: bool = False, orphans: bool = True,
           usage: Optional[Callable[[Classification], Facts]] = None, layer_list: bool = True) -> Facts:
    """The facts of an overlay2 store; ``usage`` measures where the disk went from the same classification;
    without ``layer_list``, ``layers`` is None (the summary and the other lists do not need it)."""
    joins = _Joins(store)

    def shape() -> Tuple[List[Facts], Optional[List[Facts]], List[Facts]]:
        return ([image_facts(store, joins, image) for image in sorted(store.images.values(), key=lambda i: i.id)],
                [layer_facts(store, joins, layer) for layer in sorted(store.layers.values(), key=lambda l: l.chain_id)]
                if layer_list else None,
                [container_facts(store, container, container_sizes)
                 for container in sorted(store.containers.values(), key=lambda c: c.id)])

    (images, layers, containers), classified = store.shaped_with_orphans(
        shape, classified_with_usage(lambda: classify(store), orphans, usage))
    orphan_facts, usage_facts = classified or (None, None)
    facts = store_facts(store, "overlay2", "overlay2", images, layers, containers, orphan_facts,
                        summary(store, joins, images, containers))
    if usage_facts is not None:
        facts["usage"] = usage_facts
    return facts


def image_facts(store: Overlay2Store, joins: _Joins, image: Image) -> Facts:
    layers = store.image_layers(image)
    if layers is None:
        store.note("missing", store.layer_path(image.top_chain_id or ""),
                   "image %s names a layer that is not in the layer database" % image.id)
    upper_dir: Optional[str] = None
    lower_dirs: List[str] = []
    size: Optional[int] = None
    shared: Optional[int] = None
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
    facts = image_identity(store, image, image.id in joins.intermediate)
    facts.update({
        "upper_dir": upper_dir,
        "lower_dirs": lower_dirs,
        "size": size,
        "shared_size": shared,
        "unique_size": None if size is None or shared is None else size - shared,
        "containers": sorted(joins.containers_by_image.get(image.id, [])),
    })
    return facts


def layer_facts(store: Overlay2Store, joins: _Joins, layer: Layer) -> Facts:
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


def container_facts(store: Overlay2Store, container: Container, with_size: bool) -> Facts:
    facts = container_skeleton(container)
    mount = store.mounts.get(container.id)
    if mount is None:
        store.note("missing", store.mount_path(container.id), "container %s has no layer mount" % container.id)
        return sized(facts, with_size)
    lower = [store.diff_dir(mount.init_id)] if mount.init_id else []
    lower.extend(store.diff_dir(layer.cache_id) for layer in store.chain(mount.parent) if layer.cache_id)
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
    return facts


def summary(store: Overlay2Store, joins: _Joins, images: List[Facts], containers: List[Facts]) -> Facts:
    sizes = {layer.chain_id: layer.size or 0 for layer in store.layers.values()}
    layers_size = sum(sizes.get(chain_id, 0) for chain_id in joins.layer_refs)
    shared_size = sum(sizes.get(chain_id, 0) for chain_id, refs in joins.layer_refs.items() if refs > 1)
    return summary_counts(store, images, containers, layers_size, shared_size)
