# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The overlay2 graph-driver store as a backend: its model and layout (``_store.overlay2``), its facts,
verification and orphans, and its layers' headers read from their tar-split (``_cis.overlay2``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._backends.base import Facts, StoreBackend
from ansible_collections.strata.overlay2.plugins.module_utils._facts.overlay2 import gather
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import ORPHAN_KINDS, Classification, classify
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Image
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import STORE_PATHS, Overlay2Store

if TYPE_CHECKING:  # the features below are imported when asked for (see _backends.base)
    from ansible_collections.strata.overlay2.plugins.module_utils._cis.images import LayerFiles
    from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import Daemon
    from ansible_collections.strata.overlay2.plugins.module_utils._usage.model import Claims
    from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import Report


class Overlay2Backend(StoreBackend):
    kind = Overlay2Store.kind
    model = Overlay2Store
    orphan_kinds = ORPHAN_KINDS
    store_paths = STORE_PATHS
    store: Overlay2Store

    def facts(self, container_sizes: bool, orphans: bool,
              usage: Optional[Callable[[Classification], Facts]] = None, layer_list: bool = True) -> Facts:
        return gather(self.store, container_sizes, orphans, usage, layer_list)

    def verify(self, images: Optional[Sequence[str]], layers: Optional[Sequence[str]], content: bool,
               workers: Optional[int]) -> Report:
        from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import verify

        return verify(self.store, images=images, layers=layers, content=content, workers=workers)

    def usage_claims(self, classification: Classification, sharing: Dict[str, str],  # type: ignore[override]
                     data_root: Claims) -> List[Claims]:
        from ansible_collections.strata.overlay2.plugins.module_utils._usage.overlay2 import claims

        return claims(self.store, classification, sharing, data_root)

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
        from ansible_collections.strata.overlay2.plugins.module_utils._cis.overlay2 import TarSplitLayerFiles

        return TarSplitLayerFiles(self.store)

    def image_config(self, image: Image) -> Tuple[Optional[dict], Optional[str]]:
        from ansible_collections.strata.overlay2.plugins.module_utils._cis.images import read_config_file

        return read_config_file(self.store.config_path(image.id))
