# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The overlay2 graph-driver store as a backend: its model and layout (``_store.overlay2``), its facts,
verification and orphans, and its layers' headers read from their tar-split."""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._backends.base import Facts, StoreBackend
from ansible_collections.strata.overlay2.plugins.module_utils._cis.images import (
    Header,
    LayerFiles,
    LayerScan,
    read_config_file,
    scan,
    tar_split_headers,
)
from ansible_collections.strata.overlay2.plugins.module_utils._facts.overlay2 import gather
from ansible_collections.strata.overlay2.plugins.module_utils._formats.tarsplit import TarSplitError
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import ORPHAN_KINDS, Classification, classify
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import Daemon
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Image, Layer
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import describe_os_error
from ansible_collections.strata.overlay2.plugins.module_utils._usage.overlay2 import STORE_PATHS
from ansible_collections.strata.overlay2.plugins.module_utils._usage.overlay2 import claims as usage_claims
from ansible_collections.strata.overlay2.plugins.module_utils._usage.model import Claims
from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import Report, StoreDirs, open_tar_split, verify


class Overlay2Backend(StoreBackend):
    kind = "overlay2"
    model = Overlay2Store
    orphan_kinds = ORPHAN_KINDS
    store_paths = STORE_PATHS
    store: Overlay2Store

    def facts(self, container_sizes: bool, orphans: bool,
              usage: Optional[Callable[[Classification], Facts]] = None) -> Facts:
        return gather(self.store, container_sizes, orphans, usage)

    def verify(self, images: Optional[Sequence[str]], layers: Optional[Sequence[str]], content: bool,
               workers: Optional[int]) -> Report:
        return verify(self.store, images=images, layers=layers, content=content, workers=workers)

    def usage_claims(self, classification: Classification, sharing: Dict[str, str],  # type: ignore[override]
                     data_root: Claims) -> List[Claims]:
        return usage_claims(self.store, classification, sharing, data_root)

    def classify(self) -> Classification:
        return classify(self.store)

    @property
    def prune_root(self) -> str:
        return self.store.data_root

    def prune_owners(self) -> List[Daemon]:
        return []  # dockerd alone writes this store

    def layer_dir_count(self) -> int:
        return len(self.store.dirs)

    def layer_files(self) -> LayerFiles:
        return TarSplitLayerFiles(self.store)

    def image_config(self, image: Image) -> Tuple[Optional[dict], Optional[str]]:
        return read_config_file(self.store.config_path(image.id))


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
