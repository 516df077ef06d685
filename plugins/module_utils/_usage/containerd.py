# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""What the containerd image store claims: its content store (compressed blobs and ingests: the second copy of
every layer it keeps), its snapshots by who uses them (images, containers, BuildKit; the rest, held by a lease
say, ``containerd_snapshots``), its orphans' parts by kind, and its databases as metadata. Its root is below
the data-root (dockerd's own containerd) or a root of its own (a system containerd), walked as well."""

from __future__ import annotations

import os
from typing import Dict, List

from ansible_collections.strata.overlay2.plugins.module_utils._orphans.containerd import ContainerdClassification
from ansible_collections.strata.overlay2.plugins.module_utils._store.containerd import (
    CONTENT_DIR,
    SNAPSHOTTER_DIR,
    ContainerdStore,
)
from ansible_collections.strata.overlay2.plugins.module_utils._usage.model import (
    BUILDKIT,
    CONTAINER_LAYERS,
    CONTAINERD_CONTENT,
    CONTAINERD_SNAPSHOTS,
    IMAGE_LAYERS,
    METADATA,
    ORPHANS,
    Claims,
)


def claims(store: ContainerdStore, classification: ContainerdClassification, sharing: Dict[str, str],
           data_root: Claims) -> List[Claims]:
    """Claims of the containerd root: in the data-root's claims when it is below the data-root, else in claims
    of its own (returned, to be walked too)."""
    parts = store.parts
    below = os.path.relpath(parts.root, store.data_root)
    if below.startswith("..") or os.path.isabs(below):
        target, prefix, extra = Claims(parts.root), "", True
        target.claim("", METADATA)
    else:
        target, prefix, extra = data_root, below + "/", False
    snapshots = prefix + SNAPSHOTTER_DIR + "/snapshots"
    target.claim(prefix + CONTENT_DIR, CONTAINERD_CONTENT)
    target.claim(snapshots, CONTAINERD_SNAPSHOTS)

    def snapshot(key: str, category: str, detail: str = "") -> None:
        found = parts.snapshots.get(key)
        if found is not None and found.id:
            target.claim(snapshots + "/" + found.id, category, detail)

    for key in classification.buildkit.dirs:
        snapshot(key, BUILDKIT)
    for layer in store.layers.values():
        snapshot(layer.snapshot_key or layer.chain_id, IMAGE_LAYERS, sharing.get(layer.chain_id, "unique"))
    for container_id in store.containers:
        for key in (container_id, container_id + "-init"):
            snapshot(key, CONTAINER_LAYERS, container_id)
    for orphan in classification.orphans:
        for part in orphan.parts:
            target.claim(prefix + part, ORPHANS, orphan.kind)
    return [target] if extra else []
