# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""What the overlay2 store claims of its data-root: its layer directories by who uses them (images, containers,
BuildKit), its orphans' parts by kind, and its links and records as metadata."""

from __future__ import annotations

from typing import Dict, List

from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import Classification
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import (
    LAYER_DIRS,
    LINKS,
    Overlay2Store,
    relative,
)
from ansible_collections.strata.overlay2.plugins.module_utils._usage.model import (
    BUILDKIT,
    CONTAINER_LAYERS,
    IMAGE_LAYERS,
    METADATA,
    ORPHANS,
    Claims,
)


def claims(store: Overlay2Store, classification: Classification, sharing: Dict[str, str],
           data_root: Claims) -> List[Claims]:
    """Claims below the data-root (every path of this store is there: no other root)."""
    for name in classification.live_dirs:  # named by a lower file, a damaged record: an image's, unshared
        if name in store.dirs:
            data_root.claim(relative(LAYER_DIRS, name), IMAGE_LAYERS, "unique")
    for chain_id in classification.live_chains:
        layer = store.layers.get(chain_id)
        if layer is not None and layer.cache_id:
            data_root.claim(relative(LAYER_DIRS, layer.cache_id), IMAGE_LAYERS, sharing.get(chain_id, "unique"))
    for mount in store.mounts.values():
        if mount.container_id in store.containers:
            for name in mount.dir_names:
                data_root.claim(relative(LAYER_DIRS, name), CONTAINER_LAYERS, mount.container_id)
    for name in classification.buildkit.dirs:
        data_root.claim(relative(LAYER_DIRS, name), BUILDKIT)
    data_root.claim(relative(LINKS), METADATA)
    for orphan in classification.orphans:
        for part in orphan.parts:
            data_root.claim(part, ORPHANS, orphan.kind)
    return []
