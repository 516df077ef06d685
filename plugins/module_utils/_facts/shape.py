# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The shape every store's facts share: the result's keys, a container's keys before its mount is read, and
the summary's counts. Each store fills them its own way (``_facts.overlay2``, ``_facts.containerd``)."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Container, Image, Store

Facts = Dict[str, Any]


def store_facts(store: Store, driver: str, kind: str, images: List[Facts], layers: Optional[List[Facts]],
                containers: List[Facts], orphans: Optional[Facts], totals: Facts, **extra: Any) -> Facts:
    """The facts' top level, the same keys for every store (``extra``: what only this store has)."""
    totals["orphan_bytes"] = orphans["bytes"] if orphans else None
    facts = {"data_root": store.data_root, "driver": driver, "store": kind}
    facts.update(extra)
    facts.update(images=images, layers=layers, containers=containers, orphans=orphans, summary=totals,
                 warnings=[finding.as_dict() for finding in store.findings])
    return facts


def image_identity(store: Store, image: Image, intermediate: bool) -> Facts:
    """What every store says of an image before its layers: its names, age, parent and chain."""
    return {
        "id": image.id,
        "tags": list(image.tags),
        "digests": list(image.digests),
        "created": image.created,
        "parent": store.image_parents.get(image.id),
        "intermediate": intermediate,
        "diff_ids": list(image.diff_ids),
        "chain_ids": list(image.chain_ids),
        "top_chain_id": image.top_chain_id,
    }


def container_skeleton(container: Container, **extra: Any) -> Facts:
    """A container's facts before its writable layer is found: what every store knows of it, and no directory."""
    facts: Facts = {
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
    }
    facts.update(extra)
    return facts


def sized(facts: Facts, with_size: bool) -> Facts:
    """``rw_size`` is always there when sizes were asked for: None when the writable layer was not found."""
    if with_size and "rw_size" not in facts:
        facts["rw_size"] = None
    return facts


def summary_counts(store: Store, images: List[Facts], containers: List[Facts], layers_size: int,
                   shared_size: int) -> Facts:
    """The summary every store gives, as the engine's /system/df counts it: intermediate images are not listed,
    and what containers use is not reclaimable."""
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


def classified_with_usage(classify: Callable[[], Any], orphans: bool, usage: Optional[Callable[[Any], Facts]]
                          ) -> Optional[Callable[[], Tuple[Optional[Facts], Optional[Facts]]]]:
    """What runs beside the shaping (``Store.shaped_with_orphans``): one classification, giving the facts'
    orphan section (``orphans``) and where the disk went (``usage``, measured from it); None when neither is
    asked for."""
    if not orphans and usage is None:
        return None

    def classified() -> Tuple[Optional[Facts], Optional[Facts]]:
        classification = classify()
        return (classification.facts() if orphans else None,
                usage(classification) if usage is not None else None)
    return classified
