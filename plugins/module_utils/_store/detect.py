# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Which store a data-root holds (the overlay2 graph driver's or containerd's), and where containerd keeps its root.

``load_store`` looks at the data-root once: ``image/<driver>/`` means the graph-driver store; containers whose
``config.v2.json`` names the ``overlayfs`` snapshotter, or dockerd's own containerd below the data-root, mean
the containerd image store. For the latter the containerd root is the one given, else the one (dockerd's
own, the system containerd's configured root, ``/var/lib/containerd``) whose metadata holds a snapshot for
each of the data-root's containers.
"""

from __future__ import annotations

import json
import os
import re
from typing import List, Optional, Sequence, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import is_hex64
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir, describe_os_error
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Store, StoreError, resolve_data_root

AUTO, OVERLAY2, CONTAINERD = "auto", "overlay2", "containerd"
STORE_KINDS = (AUTO, OVERLAY2, CONTAINERD)
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
SNAPSHOTTER_DRIVER = "overlayfs"


def load_store(data_root: str, store: str = AUTO, containerd_root: Optional[str] = None,
               namespace: Optional[str] = None, hints: Sequence[str] = ()) -> Store:
    """The store model of ``data_root``, filled by the source its layout (or ``store``) names. ``hints`` are
    more places a containerd root may be (the discovered daemon's), weighed like the others; ``namespace``
    defaults to dockerd's (``_store.containerd.NAMESPACE``). Only the reader of that kind is imported (Ansible
    compiles a module's code at every run)."""
    root_path = resolve_data_root(data_root)
    if store not in STORE_KINDS:
        raise StoreError("store must be one of %s, got %r" % (", ".join(STORE_KINDS), store))
    with SafeDir.open(root_path) as root:
        kind = store if store != AUTO else detect(root, containerd_root)
        if kind == OVERLAY2:
            from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store, check_layout

            check_layout(root)
            return Overlay2Store.load(root_path)
        from ansible_collections.strata.overlay2.plugins.module_utils._store.containerd import (
            NAMESPACE,
            ContainerdReader,
            ContainerdStore,
        )

        namespace = namespace or NAMESPACE
        ctd_path, layout = containerd_root_of(root, containerd_root, namespace, hints)
        model = ContainerdStore(data_root=root_path)
        try:
            ctd = SafeDir.open(ctd_path)
        except OSError as exc:
            raise StoreError("containerd root %s cannot be opened: %s" % (ctd_path, describe_os_error(exc)))
        with ctd:
            ContainerdReader(model, root, ctd, namespace, layout).load()
        return model


def detect(root: SafeDir, containerd_root: Optional[str]) -> str:
    if root.exists("image"):
        return OVERLAY2
    if containerd_root or has_managed_containerd(root):
        return CONTAINERD
    if SNAPSHOTTER_DRIVER in container_drivers(root):
        return CONTAINERD
    return OVERLAY2  # check_layout names what is there


def has_managed_containerd(root: SafeDir) -> bool:
    """dockerd's own containerd keeps its metadata below the data-root (layout a)."""
    from ansible_collections.strata.overlay2.plugins.module_utils._store.containerd import META_DB

    *parents, name = ("containerd", "daemon") + META_DB
    try:
        with root.subdir(*parents) as directory:
            return directory.exists(name)
    except OSError:
        return False


def container_drivers(root: SafeDir, limit: int = 20) -> List[str]:
    """The ``Driver`` of up to ``limit`` containers' config.v2.json."""
    drivers: List[str] = []
    try:
        with root.subdir("containers") as containers:
            for name in containers.names():
                if len(drivers) >= limit:
                    break
                if not is_hex64(name):
                    continue
                try:
                    with containers.subdir(name) as directory:
                        config = json.loads(directory.read_bytes("config.v2.json", 64 << 20).decode("utf-8"))
                    driver = config.get("Driver") if isinstance(config, dict) else None
                    if isinstance(driver, str):
                        drivers.append(driver)
                except (OSError, ValueError):
                    continue
    except OSError:
        pass
    return drivers


def container_ids(root: SafeDir) -> List[str]:
    try:
        with root.subdir("containers") as containers:
            return [name for name in containers.names() if is_hex64(name)]
    except OSError:
        return []


def configured_root(path: str = CONTAINERD_CONFIG) -> Optional[str]:
    """``root`` of containerd's config.toml (a top-level key), when set."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(1 << 20)
    except (OSError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        if line.lstrip().startswith("["):
            break  # top-level keys come before the first table
        match = re.match(r'\s*root\s*=\s*["\']([^"\']+)["\']', line)
        if match and os.path.isabs(match.group(1)):
            return match.group(1)
    return None


def containerd_root_of(root: SafeDir, given: Optional[str], namespace: str,
                       hints: Sequence[str] = ()) -> Tuple[str, str]:
    """The containerd root that holds this data-root's snapshots, and its layout (managed, system, given)."""
    from ansible_collections.strata.overlay2.plugins.module_utils._store.containerd import (
        candidate_roots,
        namespace_names,
        snapshot_keys,
    )

    if given:
        if not os.path.isabs(given):
            raise StoreError("containerd_root must be an absolute path, got %r" % (given,))
        if not os.path.isdir(given):
            raise StoreError("containerd_root %s is not a directory" % given)
        return os.path.realpath(given), "given"
    extra = [path for path in list(hints) + [configured_root()] if path]
    containers = set(container_ids(root))
    best: Optional[Tuple[int, str, str]] = None
    tried: List[str] = []
    for path, layout in candidate_roots(root.path, extra):
        if not os.path.isdir(path):
            continue
        tried.append(path)
        try:
            with SafeDir.open(path) as candidate:
                names = namespace_names(candidate)
                if names is None or namespace not in names:
                    continue
                keys = snapshot_keys(candidate, namespace) or set()
        except OSError:
            continue
        score = len(containers & keys)
        if best is None or score > best[0]:
            best = (score, path, layout)
    if (best is None or containers and best[0] == 0) and has_managed_containerd(root):
        # dockerd's own containerd is here and no other holds the containers: read it, and say what could not be
        # read (its metadata may be damaged)
        return os.path.realpath(root.join("containerd", "daemon")), "managed"
    if best is None:
        raise StoreError(
            "%s keeps its images in the containerd image store, but no containerd root with namespace %s was "
            "found (tried: %s); set containerd_root" % (root.path, namespace, ", ".join(tried) or "none"))
    if containers and best[0] == 0:
        raise StoreError(
            "%s keeps its images in the containerd image store, but no containerd root holds its containers' "
            "snapshots (tried: %s); set containerd_root" % (root.path, ", ".join(tried)))
    return os.path.realpath(best[1]), best[2]
