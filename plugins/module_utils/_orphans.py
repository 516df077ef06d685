# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Classification of everything under overlay2/ and the layer database: live, BuildKit's, or orphaned.

A layer chain is live when an image or a container mount reaches it (directly or as an ancestor); an
overlay2 directory is live when a live layer or mount names it, or a live directory's ``lower`` lists it.
Everything else is an ``Orphan`` of a named kind, each with the paths that make it up, its bytes and
the newest mtime inside it. Classification reads only; deciding what may go is ``_prune``'s job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set

from ansible_collections.strata.overlay2.plugins.module_utils._ids import (
    InvalidId,
    is_buildkit_id,
    is_hex64,
    parse_cache_id,
    removing_chain,
)
from ansible_collections.strata.overlay2.plugins.module_utils._safefs import SafeDir, walk_stats
from ansible_collections.strata.overlay2.plugins.module_utils._store import Store

UNREFERENCED_DIR = "unreferenced_dir"
UNREFERENCED_CHAIN = "unreferenced_chain"
REMOVING = "removing"
WRITE_SET = "write_set"
DANGLING_LINK = "dangling_link"
STALE_MOUNT = "stale_mount"
ORPHAN_KINDS = (UNREFERENCED_DIR, UNREFERENCED_CHAIN, REMOVING, WRITE_SET, DANGLING_LINK, STALE_MOUNT)

# kinds that a running daemon holds in memory: remove them only while it is stopped
HELD_BY_RUNNING_DAEMON = (UNREFERENCED_CHAIN, STALE_MOUNT)


@dataclass
class Usage:
    """Allocated bytes (st_blocks, hard links once) and the newest mtime of a tree, symlinks not followed."""

    bytes: int = 0
    newest_mtime: float = 0.0

    def add(self, other: "Usage") -> None:
        self.bytes += other.bytes
        self.newest_mtime = max(self.newest_mtime, other.newest_mtime)


@dataclass
class Orphan:
    kind: str
    path: str  # the object's main path, under the data-root
    parts: List[str]  # every path removing it removes, relative to the data-root, children before parents
    usage: Usage = field(default_factory=Usage)
    chain_id: Optional[str] = None
    parent_chain: Optional[str] = None  # for chains: the parent chain, which must stay if this one stays
    mounted: bool = False

    def as_dict(self) -> Dict[str, object]:
        root = self.path[:-len(self.parts[-1]) - 1]
        return {"kind": self.kind, "path": self.path, "bytes": self.usage.bytes,
                "newest_mtime": self.usage.newest_mtime,
                "paths": [os.path.join(root, part) for part in self.parts]}


@dataclass
class BuildKitDir:
    name: str
    path: str
    usage: Usage
    known: bool  # named in buildkit/snapshots.db


@dataclass
class Classification:
    orphans: List[Orphan]
    buildkit: List[BuildKitDir]
    live_chains: Set[str]
    live_dirs: Set[str]

    @property
    def orphan_bytes(self) -> int:
        return sum(orphan.usage.bytes for orphan in self.orphans)

    def facts(self) -> Dict[str, object]:
        return {
            "items": [orphan.as_dict() for orphan in self.orphans],
            "bytes": self.orphan_bytes,
            "by_kind": {kind: sum(1 for o in self.orphans if o.kind == kind) for kind in ORPHAN_KINDS},
            "buildkit_dirs": len(self.buildkit),
            "buildkit_bytes": sum(b.usage.bytes for b in self.buildkit),
        }


def tree_usage(path: str) -> Usage:
    """Usage of a file or tree; symlinks count as themselves."""
    usage = Usage()
    seen = set()
    for info in walk_stats(path):
        usage.newest_mtime = max(usage.newest_mtime, info.st_mtime)
        key = (info.st_dev, info.st_ino)
        if key not in seen:
            seen.add(key)
            usage.bytes += info.st_blocks * 512
    return usage


def mounted_dirs(data_root: str, mountinfo_paths: List[str]) -> Set[str]:
    """Names of overlay2 directories with something mounted inside them (merged/ of a running container)."""
    prefix = os.path.join(data_root, "overlay2") + "/"
    names = set()
    for mountinfo in mountinfo_paths:
        try:
            with open(mountinfo, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    fields = line.split()
                    if len(fields) > 4:
                        point = fields[4].replace("\\040", " ")
                        if point.startswith(prefix):
                            names.add(point[len(prefix):].split("/", 1)[0])
        except OSError:
            continue
    return names


class _Classifier:
    def __init__(self, store: Store, mounted: Set[str]) -> None:
        self.store = store
        self.root = store.data_root
        self.mounted = mounted
        self.claimed = set()  # type: Set[str]  # overlay2 dirs that belong to an orphan object already
        self.links_to = {}  # type: Dict[str, List[str]]  # dir name -> link ids pointing at it
        for link_id, target in store.links.items():
            if target is not None:
                self.links_to.setdefault(target, []).append(link_id)

    # -- liveness ----------------------------------------------------------
    def live_chains(self) -> Set[str]:
        roots = set()  # type: Set[str]
        for image in self.store.images.values():
            roots.update(image.chain_ids)
        for mount in self.live_mounts():
            if mount.parent:
                roots.add(mount.parent)
        live = set()  # type: Set[str]
        for chain_id in roots:
            current = chain_id  # type: Optional[str]
            while current is not None and current not in live:  # stops at the first live ancestor (or a loop)
                layer = self.store.layers.get(current)
                if layer is None:
                    break
                live.add(current)
                current = layer.parent
        return live

    def live_mounts(self):
        return [m for m in self.store.mounts.values() if m.container_id in self.store.containers]

    def live_dirs(self, live_chains: Set[str]) -> Set[str]:
        names = set()  # type: Set[str]
        for chain_id in live_chains:
            cache_id = self.store.layers[chain_id].cache_id
            if cache_id:
                names.add(cache_id)
        for mount in self.live_mounts():
            names.add(mount.mount_id)
            if mount.init_id:
                names.add(mount.init_id)
        # whatever a live directory's lower file lists stays too, even where the layer database disagrees
        frontier = [name for name in names if name in self.store.dirs]
        while frontier:
            listed = set()  # type: Set[str]
            for name in frontier:
                listed.update(self.store.dirs[name].lower)
            found = {self.store.links.get(link_id) for link_id in listed}
            found.discard(None)
            new = found - names  # type: ignore[operator]
            names.update(new)  # type: ignore[arg-type]
            frontier = [name for name in new if name in self.store.dirs]  # type: ignore[misc]
        return names

    # -- objects -----------------------------------------------------------
    def dir_parts(self, name: Optional[str], live_dirs: Set[str]) -> List[str]:
        """The overlay2 dir and the l/ links pointing at it, unless live or claimed already."""
        if not name or name in live_dirs or name in self.claimed or name not in self.store.dirs:
            return []
        self.claimed.add(name)
        return [os.path.join("overlay2", "l", link) for link in self.links_to.get(name, [])] + [
            os.path.join("overlay2", name)]

    def orphan(self, kind: str, parts: List[str], **extra) -> Orphan:
        """An orphan named by its principal part: the record it hangs from, else its directory, else its link."""
        usage = Usage()
        for part in parts:
            usage.add(tree_usage(os.path.join(self.root, part)))
        names = {part.split("/")[1] for part in parts if part.startswith("overlay2/") and not part.startswith("overlay2/l/")}
        principal = parts[-1]  # parts end with the record (or the directory, or the lone link)
        return Orphan(kind, os.path.join(self.root, principal), parts, usage,
                      mounted=bool(names & self.mounted), **extra)

    def classify(self) -> Classification:
        live_chains = self.live_chains()
        live_dirs = self.live_dirs(live_chains)
        orphans = []  # type: List[Orphan]
        orphans.extend(self.chain_orphans(live_chains, live_dirs))
        orphans.extend(self.removing_orphans(live_dirs))
        orphans.extend(self.write_set_orphans(live_dirs))
        orphans.extend(self.mount_orphans(live_dirs))
        buildkit = []  # type: List[BuildKitDir]
        known = self.buildkit_known()
        for name in sorted(self.store.dirs):
            if name in live_dirs or name in self.claimed:
                continue
            base = name[:-len("-init")] if name.endswith("-init") else name
            if is_buildkit_id(base):
                buildkit.append(BuildKitDir(name, os.path.join(self.root, "overlay2", name),
                                            tree_usage(os.path.join(self.root, "overlay2", name)),
                                            name.encode() in known))
                continue
            orphans.append(self.orphan(UNREFERENCED_DIR, self.dir_parts(name, live_dirs)))
        for link_id, target in sorted(self.store.links.items()):
            if target is None or target not in self.store.dirs:
                orphans.append(self.orphan(DANGLING_LINK, [os.path.join("overlay2", "l", link_id)]))
        return Classification(orphans, buildkit, live_chains, live_dirs)

    def chain_orphans(self, live_chains: Set[str], live_dirs: Set[str]) -> List[Orphan]:
        dead = [layer for chain_id, layer in self.store.layers.items() if chain_id not in live_chains]
        depth = {layer.chain_id: len(self.store.chain(layer.chain_id)) for layer in dead}
        orphans = []
        for layer in sorted(dead, key=lambda l: (-depth[l.chain_id], l.chain_id)):  # children first
            parts = [os.path.join("image", "overlay2", "layerdb", "sha256", layer.chain_id[7:])]
            parts = self.dir_parts(layer.cache_id, live_dirs) + parts
            orphans.append(self.orphan(UNREFERENCED_CHAIN, parts, chain_id=layer.chain_id,
                                       parent_chain=layer.parent))
        return orphans

    def record_cache_id(self, *record: str) -> Optional[str]:
        try:
            with SafeDir.open(self.root) as root, root.subdir(*record) as directory:
                return parse_cache_id(directory.read_text("cache-id"))
        except (OSError, UnicodeDecodeError, InvalidId):
            return None

    def removing_orphans(self, live_dirs: Set[str]) -> List[Orphan]:
        orphans = []
        for name in sorted(self.store.removing):
            record = ("image", "overlay2", "layerdb", "sha256", name)
            parts = self.dir_parts(self.record_cache_id(*record), live_dirs) + [os.path.join(*record)]
            orphans.append(self.orphan(REMOVING, parts, chain_id="sha256:" + (removing_chain(name) or "")))
        return orphans

    def write_set_orphans(self, live_dirs: Set[str]) -> List[Orphan]:
        orphans = []
        try:
            with SafeDir.open(self.root) as root, root.subdir("image", "overlay2", "layerdb", "tmp") as tmp:
                names = [e.name for e in tmp.entries() if e.name.startswith("write-set-")
                         and e.name[len("write-set-"):].isdigit() and e.is_dir(follow_symlinks=False)]
        except OSError:
            return orphans
        for name in sorted(names):
            record = ("image", "overlay2", "layerdb", "tmp", name)
            parts = self.dir_parts(self.record_cache_id(*record), live_dirs) + [os.path.join(*record)]
            orphans.append(self.orphan(WRITE_SET, parts))
        return orphans

    def mount_orphans(self, live_dirs: Set[str]) -> List[Orphan]:
        orphans = []
        for container_id, mount in sorted(self.store.mounts.items()):
            if container_id in self.store.containers or not is_hex64(container_id):
                continue
            parts = (self.dir_parts(mount.mount_id, live_dirs) + self.dir_parts(mount.init_id, live_dirs)
                     + [os.path.join("image", "overlay2", "layerdb", "mounts", container_id)])
            orphans.append(self.orphan(STALE_MOUNT, parts))
        return orphans

    def buildkit_known(self) -> bytes:
        """The raw bytes of BuildKit's snapshot database, to tell which 25-character dirs it records."""
        try:
            with SafeDir.open(self.root) as root, root.subdir("buildkit") as buildkit:
                return buildkit.read_bytes("snapshots.db", 1 << 30)
        except OSError:
            return b""


def classify(store: Store, mountinfo_paths: Optional[List[str]] = None) -> Classification:
    mounted = mounted_dirs(store.data_root, mountinfo_paths or ["/proc/self/mountinfo"])
    return _Classifier(store, mounted).classify()
