# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The facts' ``usage``: the claims every data-root has (containers' configs and logs, volumes, BuildKit, the
engine's metadata, a store of the other kind), the store's own claims (its backend's ``usage_claims``), one
walk of each root, and the shape."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from ansible_collections.strata.overlay2.plugins.module_utils._store.containers import CONTAINERS, log_rotation
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Store
from ansible_collections.strata.overlay2.plugins.module_utils._usage.model import (
    BUILDKIT,
    CONTAINER_LAYERS,
    CONTAINER_LOGS,
    IMAGE_LAYERS,
    METADATA,
    ORPHANS,
    OTHER_STORE,
    VOLUMES,
    Bytes,
    Claim,
    Claims,
    Tally,
    usage_facts,
)
from ansible_collections.strata.overlay2.plugins.module_utils._usage.walk import measure
from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import is_hex64
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir

VOLUME_DIR = "volumes"
VOLUME_DB = "metadata.db"
# the engine's own state below the data-root, whatever the store: networks, plugins, swarm, trust, runtimes,
# scratch space, its id, its image databases, its managed containerd's state and (containerd store) where it
# mounts containers' root file systems
ENGINE_STATE = ("network", "plugins", "swarm", "trust", "runtimes", "tmp", "engine-id", "image", "containerd",
                "rootfs")
SHARED, UNIQUE = "shared", "unique"


def sharing(store: Store) -> Dict[str, str]:
    """Each image chain: ``shared`` when more than one image uses it, else ``unique``."""
    users: Dict[str, int] = {}
    for image in store.images.values():
        for chain_id in set(image.chain_ids):
            users[chain_id] = users.get(chain_id, 0) + 1
    return {chain_id: SHARED if count > 1 else UNIQUE for chain_id, count in users.items()}


def log_names(container_id: str):
    """A container directory's rule: its json-file logs (rotated copies too) and local-driver logs are its logs;
    the rest (its configs) is metadata."""
    json_log = container_id + "-json.log"

    def rule(name: str) -> Optional[Claim]:
        if name == json_log or name.startswith(json_log + ".") or name == "local-logs":
            return Claim(CONTAINER_LOGS, container_id)
        return None
    return rule


def common_claims(store: Store, other_store_paths: Sequence[str]) -> Claims:
    claims = Claims(store.data_root)
    for name in ENGINE_STATE:
        claims.claim(name, METADATA)
    for relative in other_store_paths:
        claims.claim(relative, OTHER_STORE)
    claims.claim("buildkit", BUILDKIT)
    claims.claim(CONTAINERS, METADATA)
    for container_id in list_names(store.data_root, CONTAINERS):
        if is_hex64(container_id):
            claims.claim(CONTAINERS + "/" + container_id, METADATA, inside=log_names(container_id))
    claims.claim(VOLUME_DIR, METADATA)
    for name in list_names(store.data_root, VOLUME_DIR):
        if name != VOLUME_DB:
            claims.claim(VOLUME_DIR + "/" + name, VOLUMES, name)
    return claims


def list_names(data_root: str, name: str) -> List[str]:
    try:
        with SafeDir.open(data_root) as root, root.subdir(name) as directory:
            return directory.names()
    except OSError:
        return []


def usage(store: Store, store_claims, classification, other_store_paths: Sequence[str]) -> Dict[str, object]:
    """``store_claims(data_root_claims, classification, sharing)`` adds the store's claims and returns the claims of
    its other roots (the containerd root, when it is not below the data-root)."""
    claims = common_claims(store, other_store_paths)
    extra: List[Claims] = store_claims(claims, classification, sharing(store))
    tally = Tally()
    measure([claims] + extra, tally)
    rotation: Dict[str, Optional[bool]] = {}
    in_use = {name for container in store.containers.values() for name in container.volumes}

    def describe_log(_category: str, container_id: str, counted: Bytes) -> Dict[str, object]:
        if container_id not in rotation:
            with SafeDir.open(store.data_root) as root:
                rotation[container_id] = log_rotation(root, container_id)
        container = store.containers.get(container_id)
        return dict(container=container_id, name=container.name if container else None,
                    rotation=rotation[container_id], **counted.as_dict())

    def describe_volume(_category: str, name: str, counted: Bytes) -> Dict[str, object]:
        return dict(name=name, anonymous=is_hex64(name), in_use=name in in_use, **counted.as_dict())

    def describe_container(_category: str, container_id: str, counted: Bytes) -> Dict[str, object]:
        container = store.containers.get(container_id)
        return dict(container=container_id, name=container.name if container else None, **counted.as_dict())

    facts = usage_facts(tally, [c.root for c in [claims] + extra],
                        describe={CONTAINER_LOGS: describe_log, VOLUMES: describe_volume,
                                  CONTAINER_LAYERS: describe_container},
                        split={IMAGE_LAYERS: "by_sharing", ORPHANS: "by_kind"})
    logs = facts["categories"][CONTAINER_LOGS]  # type: ignore[index]
    with SafeDir.open(store.data_root) as root:
        for container_id in sorted(store.containers):
            if container_id not in rotation:
                rotation[container_id] = log_rotation(root, container_id)
    for key, value in (("not_rotated", False), ("rotation_unknown", None)):
        logs[key] = [{"container": container_id, "name": store.containers[container_id].name}
                     for container_id in sorted(store.containers) if rotation[container_id] is value]
    return facts
