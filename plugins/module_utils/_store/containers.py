# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The engine's ``containers/<id>/config.v2.json``, the same in every store."""

from __future__ import annotations

import errno
import json
import os
from typing import Optional

from ansible_collections.strata.overlay2.plugins.module_utils._store.model import (
    CONFIG_LIMIT,
    MIGHT_NAME_MOUNTS,
    Container,
    Store,
)
from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import is_hex64, parse_digest, shorten
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir, describe_os_error

CONTAINERS = "containers"


def read_containers(store: Store, root: SafeDir) -> None:
    """Every container of the data-root into ``store``; one that cannot be read is a damaged record (what it
    would name is unknown), and a ``containers/`` that cannot be listed might name any container's mount."""
    try:
        containers = root.subdir(CONTAINERS)
    except OSError as exc:
        if exc.errno != errno.ENOENT:  # no containers/ is no container
            store.note("unreadable", root.join(CONTAINERS), describe_os_error(exc))
            store.damage("store_part", root.join(CONTAINERS), describe_os_error(exc), (MIGHT_NAME_MOUNTS,))
        return
    with containers:
        for entry in containers.entries():
            name = entry.name
            if not is_hex64(name):
                store.note("unexpected", os.path.join(containers.path, shorten(name)), "not a container id")
                continue
            container = read_container(store, containers, name)
            if container is not None:
                store.containers[name] = container


def read_container(store: Store, containers: SafeDir, name: str) -> Optional[Container]:
    path = containers.join(name, "config.v2.json")
    try:
        with containers.subdir(name) as directory:
            raw = directory.read_bytes("config.v2.json", CONFIG_LIMIT)
        config = json.loads(raw.decode("utf-8"))
        state = config.get("State") or {}
        image_id = config.get("Image")
        image_id = parse_digest(image_id, "Image") if image_id else None
        container_name = config.get("Name") or ""
        if not isinstance(container_name, str) or not isinstance(state, dict):
            raise TypeError("Name or State has the wrong type")
    except OSError as exc:
        store.note("unreadable", path, describe_os_error(exc))
        store.damage("container_config", path, describe_os_error(exc), containers=[name])
        return None
    except (ValueError, TypeError, AttributeError) as exc:
        message = "not a valid container config: %s" % shorten(str(exc))
        store.note("invalid", path, message)
        store.damage("container_config", path, message, containers=[name])
        return None
    if config.get("ID") not in (None, name):
        store.note("invalid", path, "ID %s differs from its directory name" % shorten(config.get("ID")))
    driver = config.get("Driver")
    mounts = config.get("MountPoints")
    volumes = sorted({point.get("Name") for point in mounts.values() if isinstance(point, dict)
                      and point.get("Type") == "volume" and isinstance(point.get("Name"), str)}) \
        if isinstance(mounts, dict) else []
    return Container(
        id=name,
        name=container_name.lstrip("/"),
        image_id=image_id,
        running=state.get("Running") is True,
        driver=driver if isinstance(driver, str) else None,
        dead=state.get("Dead") is True,
        volumes=volumes,
    )


def log_rotation(root: SafeDir, container_id: str) -> Optional[bool]:
    """Whether the container's logs are rotated, from its ``hostconfig.json`` (where the engine writes the
    daemon's default log options at create): json-file with a ``max-size``, or the local driver (which rotates
    unless ``max-size`` is 0). None when it cannot be read."""
    try:
        with root.subdir(CONTAINERS, container_id) as directory:
            config = json.loads(directory.read_bytes("hostconfig.json", CONFIG_LIMIT).decode("utf-8"))
        log = config.get("LogConfig") or {}
        options = log.get("Config") or {}
        kind = log.get("Type") or "json-file"
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(options, dict):
        return None
    size = str(options.get("max-size", "") or "")
    if kind == "local":
        return size not in ("0", "-1")
    return bool(size) and size not in ("0", "-1")
