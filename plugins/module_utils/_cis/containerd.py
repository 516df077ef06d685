# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The CIS image checks' side of a containerd image store: a layer's headers from a walk of its snapshot."""

from __future__ import annotations

from typing import Optional

from ansible_collections.strata.overlay2.plugins.module_utils._cis.images import LayerFiles
from ansible_collections.strata.overlay2.plugins.module_utils._store.containerd import ContainerdStore
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Layer


class SnapshotLayerFiles(LayerFiles):
    """A layer's headers from a walk of its snapshot's ``fs/`` directory."""

    def __init__(self, store: ContainerdStore) -> None:
        self.store = store

    def directory(self, layer: Layer) -> Optional[str]:
        return self.store.parts.snapshot_fs(layer.snapshot_id) if layer.snapshot_id else None
