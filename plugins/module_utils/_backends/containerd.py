# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Docker's containerd image store as a backend: its model and layout (``_store.containerd``), its facts,
verification and orphans, and its layers' headers read from their snapshots' directories
(``_cis.containerd``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._backends.base import Facts, StoreBackend
from ansible_collections.strata.overlay2.plugins.module_utils._facts.containerd import gather
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.containerd import (
    CONTAINERD_ORPHAN_KINDS,
    ContainerdClassification,
    classify,
)
from ansible_collections.strata.overlay2.plugins.module_utils._store.containerd import STORE_PATHS, ContainerdStore
from ansible_collections.strata.overlay2.plugins.module_utils._store.discovery import running_containerds
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Image

if TYPE_CHECKING:  # the features below are imported when asked for (see _backends.base)
    from ansible_collections.strata.overlay2.plugins.module_utils._cis.images import LayerFiles
    from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import Daemon
    from ansible_collections.strata.overlay2.plugins.module_utils._usage.model import Claims
    from ansible_collections.strata.overlay2.plugins.module_utils._verify.containerd import ContainerdReport


class ContainerdBackend(StoreBackend):
    kind = ContainerdStore.kind
    model = ContainerdStore
    orphan_kinds = CONTAINERD_ORPHAN_KINDS
    store_paths = STORE_PATHS
    store: ContainerdStore

    def facts(self, container_sizes: bool, orphans: bool,
              usage: Optional[Callable[[ContainerdClassification], Facts]] = None, layer_list: bool = True) -> Facts:
        return gather(self.store, container_sizes, orphans, usage, layer_list)

    def verify(self, images: Optional[Sequence[str]], layers: Optional[Sequence[str]], content: bool,
               workers: Optional[int]) -> ContainerdReport:
        from ansible_collections.strata.overlay2.plugins.module_utils._verify.containerd import verify

        return verify(self.store, images=images, layers=layers, content=content, workers=workers)

    def usage_claims(self, classification: ContainerdClassification, sharing: Dict[str, str],  # type: ignore[override]
                     data_root: Claims) -> List[Claims]:
        from ansible_collections.strata.overlay2.plugins.module_utils._usage.containerd import claims

        return claims(self.store, classification, sharing, data_root)

    def classify(self) -> ContainerdClassification:
        return classify(self.store)

    @property
    def prune_root(self) -> str:
        return self.store.parts.root

    def prune_owners(self) -> List[Daemon]:
        """containerd writes its root too: a running one is a daemon the prune's gates weigh."""
        from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import Daemon

        return [Daemon(pid, started, "containerd") for pid, started in running_containerds(self.store.parts.root)]

    def layer_dir_count(self) -> int:
        return len(self.store.parts.snapshots)

    def layer_files(self) -> LayerFiles:
        from ansible_collections.strata.overlay2.plugins.module_utils._cis.containerd import SnapshotLayerFiles

        return SnapshotLayerFiles(self.store)

    def image_config(self, image: Image) -> Tuple[Optional[dict], Optional[str]]:
        parts = self.store.parts
        cached = parts.blob_json.get(image.config_digest or "")
        if cached is not None:
            return cached, None
        from ansible_collections.strata.overlay2.plugins.module_utils._cis.images import read_config_file

        return read_config_file(parts.blob_path(image.config_digest) if image.config_digest else "?")
