# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The facts of any store: its backend shapes them; each container's drift is the same everywhere."""

from __future__ import annotations

from typing import Optional, Sequence

from ansible_collections.strata.overlay2.plugins.module_utils._backends.base import Classification, StoreBackend
from ansible_collections.strata.overlay2.plugins.module_utils._backends.registry import backend_for, backends
from ansible_collections.strata.overlay2.plugins.module_utils._facts.drift import drift
from ansible_collections.strata.overlay2.plugins.module_utils._facts.shape import Facts
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Store


def gather(store: Store, container_sizes: bool = False, orphans: bool = True,
           drift_paths: Optional[Sequence[str]] = None, usage: bool = False, layer_list: bool = True) -> Facts:
    """The facts of the store; with ``drift_paths``, each container's drift below them too; with ``usage``,
    where every byte below the data-root went; without ``layer_list``, no ``layers`` list shaped (None)."""
    backend = backend_for(store)
    facts = backend.facts(container_sizes, orphans, (lambda classification: usage_of(backend, classification))
                          if usage else None, layer_list)
    if drift_paths is not None:
        for container in facts["containers"]:
            container["drift"] = drift(container["upper_dir"], container["lower_dirs"], drift_paths)
    return facts


def usage_of(backend: StoreBackend, classification: Optional[Classification] = None) -> Facts:
    """The facts' ``usage``: the store's claims (from ``classification``, made when not given), the other
    kinds' store paths as ``other_store``, one walk."""
    from ansible_collections.strata.overlay2.plugins.module_utils._usage.gather import usage as measure_usage  # asked for

    other_kinds = [path for implementation in backends() if implementation.kind != backend.kind
                   for path in implementation.store_paths]
    return measure_usage(backend.store, lambda claims, found, sharing: backend.usage_claims(found, sharing, claims),
                         classification if classification is not None else backend.classify(), other_kinds)
