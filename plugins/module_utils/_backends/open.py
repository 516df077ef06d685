# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""How every module opens its store: find it (``data_root``: a path, or ``auto``), read it with the reader its
layout names (``_store.detect``), and hand back the store's backend (``_backends.registry``)."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._store.discovery import (
    Daemon,
    DiscoveryError,
    Location,
    locate,
)
from ansible_collections.strata.overlay2.plugins.module_utils._backends.base import StoreBackend
from ansible_collections.strata.overlay2.plugins.module_utils._backends.registry import backend_for
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import StoreError

# the options every module has beside data_root (documented once in the data_root doc fragment)
STORE_OPTIONS = {
    "data_root": {"type": "path", "default": "auto"},
    "store": {"type": "str", "default": "auto", "choices": ["auto", "overlay2", "containerd"]},
    "containerd_root": {"type": "path"},
    "namespace": {"type": "str", "default": "moby"},
}


def daemon_facts(daemons: List[Daemon]) -> List[Dict[str, Any]]:
    return [daemon.as_dict() for daemon in daemons]


def open_store(module: Any) -> Tuple[StoreBackend, Location]:
    """The backend of the store of ``module.params['data_root']`` and where it was found; fails the task with
    the reason and every daemon found when there is no store to read."""
    daemons: List[Daemon] = []
    try:
        location = locate(module.params["data_root"])
        daemons = location.daemons
        params = module.params
        daemon = location.daemon
        # where the store's daemon keeps its containerd is one more place to look (never taken unseen)
        hints = [daemon.containerd_root] if daemon is not None and daemon.containerd_root else []
        store = load_store(location.data_root, params.get("store") or "auto", params.get("containerd_root"),
                           params.get("namespace") or "moby", hints)
        return backend_for(store), location
    except DiscoveryError as exc:
        module.fail_json(msg=str(exc), daemons=daemon_facts(exc.daemons))
    except (StoreError, OSError) as exc:
        module.fail_json(msg=str(exc), daemons=daemon_facts(daemons))
    raise AssertionError("fail_json returned")  # pragma: no cover
