# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Every store backend, and the one place that picks a store's: by the model its reader filled."""

from __future__ import annotations

from typing import Dict, Tuple, Type

from ansible_collections.strata.overlay2.plugins.module_utils._backends.base import StoreBackend
from ansible_collections.strata.overlay2.plugins.module_utils._backends.containerd import ContainerdBackend
from ansible_collections.strata.overlay2.plugins.module_utils._backends.overlay2 import Overlay2Backend
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Store

BACKENDS: Tuple[Type[StoreBackend], ...] = (Overlay2Backend, ContainerdBackend)
_BY_MODEL: Dict[type, Type[StoreBackend]] = {backend.model: backend for backend in BACKENDS}
ORPHAN_KINDS: Tuple[str, ...] = tuple(kind for backend in BACKENDS for kind in backend.orphan_kinds)


def backend_for(store: Store) -> StoreBackend:
    """The backend of the store a reader filled."""
    return _BY_MODEL[type(store)](store)
