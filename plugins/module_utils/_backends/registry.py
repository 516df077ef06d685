# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Every store backend, and the one place that picks a store's: by the kind of the model its reader filled.

A backend's code is imported when its kind is picked: Ansible compiles a module's code at every run, so a module
reading an overlay2 store compiles nothing of the containerd store's, and the other way round."""

from __future__ import annotations

from typing import Tuple, Type

from ansible_collections.strata.overlay2.plugins.module_utils._backends.base import StoreBackend
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Store

KINDS: Tuple[str, ...] = ("overlay2", "containerd")


def backend_class(kind: str) -> Type[StoreBackend]:
    """The backend of the store kind ``kind`` (ValueError names an unknown one). Each import is written out, not
    looked up by name: Ansible bundles into a module's payload only the imports it sees."""
    if kind == "overlay2":
        from ansible_collections.strata.overlay2.plugins.module_utils._backends.overlay2 import Overlay2Backend

        return Overlay2Backend
    if kind == "containerd":
        from ansible_collections.strata.overlay2.plugins.module_utils._backends.containerd import ContainerdBackend

        return ContainerdBackend
    raise ValueError("no store backend of kind %r; the kinds are %s" % (kind, ", ".join(KINDS)))


def backends() -> Tuple[Type[StoreBackend], ...]:
    """Every backend, each kind's code imported."""
    return tuple(backend_class(kind) for kind in KINDS)


def orphan_kinds() -> Tuple[str, ...]:
    """Every orphan kind of every store, in the order of ``KINDS``."""
    return tuple(kind for backend in backends() for kind in backend.orphan_kinds)


def backend_for(store: Store) -> StoreBackend:
    """The backend of the store a reader filled."""
    return backend_class(store.kind)(store)
