# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The CIS image checks' side of an overlay2 store: a layer's headers from its tar-split."""

from __future__ import annotations

from typing import List, Optional, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._cis.images import (
    Header,
    LayerFiles,
    LayerScan,
    scan,
    tar_split_headers,
)
from ansible_collections.strata.overlay2.plugins.module_utils._formats.tarsplit import TarSplitError
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Layer
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import describe_os_error
from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import StoreDirs, open_tar_split


class TarSplitLayerFiles(LayerFiles):
    """A layer's headers from its tar-split (every member's tar header, without opening a file); its diff
    directory is walked where the tar-split cannot be read."""

    def __init__(self, store: Overlay2Store) -> None:
        self.store = store

    def directory(self, layer: Layer) -> Optional[str]:
        return self.store.diff_dir(layer.cache_id) if layer.cache_id else None

    def headers(self, layer: Layer, dirs: Optional[StoreDirs] = None) -> Tuple[List[Header], Optional[str]]:
        """``dirs``: the store's directories, opened once for many layers."""
        try:
            if dirs is None:
                with StoreDirs.open(self.store.data_root) as opened:
                    stream = open_tar_split(opened, layer.chain_id)
            else:
                stream = open_tar_split(dirs, layer.chain_id)
            with stream:
                return tar_split_headers(stream), None
        except (OSError, TarSplitError) as exc:
            reason = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
            return self.walked(layer, "tar-split of %s: %s; its directory was walked instead" % (layer.chain_id, reason))

    def scans(self, layers: List[Layer]) -> List[LayerScan]:
        with StoreDirs.open(self.store.data_root) as dirs:
            return [scan(*self.headers(layer, dirs)) for layer in layers]
