# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Classification of everything under overlay2/ and the layer database: live, BuildKit's, or orphaned.

A layer chain is live when an image, a container mount or a damaged record that still names it reaches it
(directly or as an ancestor); BuildKit's build cache owns the chains and directories its databases hold
(see ``_store.buildkit``), closed over layer parents and cache-ids. An overlay2 directory is kept when a kept
chain, a mount or a damaged record names it, or a kept directory's ``lower`` lists it. Everything else is an
``Orphan`` of a named kind, each with the paths that make it up, its bytes, the newest mtime inside it, and
the damaged records that might still own it (``blocked_by``: unknown is not unowned). Classification reads
only; deciding what may go is ``_orphans.prune``'s job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import AbstractSet, Dict, List, Optional, Set, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._store.buildkit import ABSENT
from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import (
    InvalidId,
    is_hex64,
    parse_cache_id,
    removal_origin,
    removing_chain,
)
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.model import (
    BuildKitCache,
    Orphan,
    Usage,
    orphan_facts,
    tree_usage,
)
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import (
    MIGHT_NAME_CHAINS,
    MIGHT_NAME_DIRS,
    MIGHT_NAME_MOUNTS,
    DamagedRecord,
)
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import (
    LAYER_DIRS,
    LAYER_RECORDS,
    LINKS,
    MOUNT_RECORDS,
    WRITE_SETS,
    Overlay2Store,
    relative,
)

UNREFERENCED_DIR = "unreferenced_dir"
UNREFERENCED_CHAIN = "unreferenced_chain"
REMOVING = "removing"
WRITE_SET = "write_set"
DANGLING_LINK = "dangling_link"
STALE_MOUNT = "stale_mount"
ORPHAN_KINDS = (UNREFERENCED_DIR, UNREFERENCED_CHAIN, REMOVING, WRITE_SET, DANGLING_LINK, STALE_MOUNT)

# kinds that a running daemon holds in memory: remove them only while it is stopped
HELD_BY_RUNNING_DAEMON = (UNREFERENCED_CHAIN, STALE_MOUNT)

# What removing an orphan of each kind would remove, as the classes a damaged record might name. Dangling
# links, write-sets and ``-removing`` records are safe whatever a damaged record says: nothing names them.
REMOVES = {
    UNREFERENCED_DIR: (MIGHT_NAME_DIRS,),
    UNREFERENCED_CHAIN: (MIGHT_NAME_CHAINS, MIGHT_NAME_DIRS),
    STALE_MOUNT: (MIGHT_NAME_MOUNTS, MIGHT_NAME_DIRS),
}


@dataclass
class Classification:
    orphans: List[Orphan]
    buildkit: BuildKitCache
    live_chains: Set[str]
    live_dirs: Set[str]
    blocking: List[DamagedRecord]  # every damaged record, with the ``lower`` files of kept directories

    @property
    def orphan_bytes(self) -> int:
        return sum(orphan.usage.bytes for orphan in self.orphans)

    def facts(self) -> Dict[str, object]:
        return orphan_facts(self.orphans, self.buildkit, self.blocking, ORPHAN_KINDS)


def mounted_dirs(data_root: str, mountinfo_paths: List[str]) -> Set[str]:
    """Names of overlay2 directories with something mounted inside them (merged/ of a running container)."""
    prefix = os.path.join(data_root, *LAYER_DIRS) + "/"
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


LAYER_DIR_PREFIX, LINK_PREFIX = relative(LAYER_DIRS) + "/", relative(LINKS) + "/"


def is_layer_dir_part(part: str) -> bool:
    """Whether a part of an orphan (relative to the data-root) is a layer directory (``overlay2/<dir>``), not
    a short link (``overlay2/l/<link>``)."""
    return part.startswith(LAYER_DIR_PREFIX) and not part.startswith(LINK_PREFIX)


class _Classifier:
    def __init__(self, store: Overlay2Store, mounted: Set[str]) -> None:
        self.store = store
        self.root = store.data_root
        self.mounted = mounted
        self.claimed: Set[str] = set()  # overlay2 dirs that belong to an orphan object already
        self.claimed_links: Set[str] = set()  # l/ links that belong to an orphan object already
        self.links_to: Dict[str, List[str]] = {}  # dir name -> link ids pointing at it
        for link_id, target in store.links.items():
            if target is not None:
                self.links_to.setdefault(target, []).append(link_id)
        self.pinned_containers: Set[str] = set()  # containers whose mount a damaged record keeps
        for record in store.damaged:
            self.pinned_containers.update(record.containers)
        self.blocking: List[DamagedRecord] = list(store.damaged)

    # -- what is kept ------------------------------------------------------
    def ancestors(self, chain_ids: Set[str]) -> Set[str]:
        """The chains and every ancestor (layerdb ``parent``) present in the layer database."""
        found: Set[str] = set()
        for chain_id in chain_ids:
            current: Optional[str] = chain_id
            while current is not None and current not in found:  # stops at a known ancestor (or a loop)
                found.add(current)
                layer = self.store.layers.get(current)
                current = layer.parent if layer is not None else None
        return found

    def live_chains(self) -> Set[str]:
        roots: Set[str] = set()
        for image in self.store.images.values():
            roots.update(image.chain_ids)
        for mount in self.live_mounts():
            if mount.parent:
                roots.add(mount.parent)
        for record in self.store.damaged:
            roots.update(record.chains)
        return self.ancestors(roots)

    def live_mounts(self):
        return [m for m in self.store.mounts.values()
                if m.container_id in self.store.containers or m.container_id in self.pinned_containers]

    def buildkit_owned(self, live_chains: Set[str]) -> BuildKitCache:
        """BuildKit's chains and directories, closed over ancestors and cache-ids, less what is live anyway."""
        ownership = self.store.buildkit
        if ownership is None or ownership.state != "read":
            state = ownership.state if ownership is not None else ABSENT
            return BuildKitCache(state, ownership.reason if ownership else "", set(), set(), Usage())
        chains = self.ancestors(ownership.chains)
        dirs = set(ownership.dirs)
        while True:  # a chain whose cache-id is an owned directory is owned (registered before chainid is written)
            dirs.update(self.store.layers[c].cache_id for c in chains if c in self.store.layers
                        and self.store.layers[c].cache_id)
            more = {c for c, layer in self.store.layers.items() if layer.cache_id in dirs} - chains
            if not more:
                break
            chains |= self.ancestors(more)
        chains -= live_chains
        usage = Usage()
        return BuildKitCache(ownership.state, "", chains, dirs, usage)

    def kept_dirs(self, kept_chains: Set[str], extra: Set[str], closed: Optional[Set[str]] = None,
                  closed_chains: AbstractSet[str] = frozenset()) -> Set[str]:
        """The directories the chains, mounts and damaged records name, closed over ``lower`` files; ``closed``
        is a set already closed (its ``lower`` files are not read again), which holds the directories of
        ``closed_chains``."""
        closed = closed or set()
        names = set(extra) | closed
        for chain_id in kept_chains - closed_chains if closed_chains else kept_chains:
            layer = self.store.layers.get(chain_id)
            if layer is not None and layer.cache_id:
                names.add(layer.cache_id)
        for mount in self.live_mounts():
            names.update(mount.dir_names)
        for record in self.store.damaged:
            names.update(record.dirs)
        # whatever a kept directory's lower file lists stays too, even where the layer database disagrees
        frontier = [name for name in names - closed if name in self.store.dirs]
        while frontier:
            listed: Set[str] = set()
            for name in frontier:
                directory = self.store.dirs[name]
                listed.update(directory.lower)
                if not directory.lower_unknown:
                    continue
                path = self.store.dir_path(name, "lower")
                if all(record.path != path for record in self.blocking):
                    self.blocking.append(DamagedRecord("lower", path, "the lower layers of a kept directory "
                                                       "cannot be read", dirs={name},
                                                       might_name=frozenset((MIGHT_NAME_DIRS,))))
            found = {self.store.links.get(link_id) for link_id in listed}
            found.discard(None)
            new = found - names  # type: ignore[operator]
            names.update(new)  # type: ignore[arg-type]
            frontier = [name for name in new if name in self.store.dirs]  # type: ignore[misc]
        return names

    # -- objects -----------------------------------------------------------
    def dir_parts(self, name: Optional[str], kept_dirs: Set[str]) -> List[str]:
        """The overlay2 dir and the l/ links pointing at it, unless kept or claimed already."""
        if not name or name in kept_dirs or name in self.claimed or name not in self.store.dirs:
            return []
        self.claimed.add(name)
        return self.link_parts(name) + [relative(LAYER_DIRS, name)]

    def link_parts(self, name: str) -> List[str]:
        """The l/ links pointing at the directory ``name``, now claimed."""
        links = self.links_to.get(name, [])
        self.claimed_links.update(links)
        return [relative(LINKS, link) for link in links]

    def orphan(self, kind: str, parts: List[str], **extra) -> Orphan:
        """An orphan named by its principal part: the record it hangs from, else its directory, else its link."""
        usage = Usage()
        for part in parts:
            usage.add(tree_usage(os.path.join(self.root, part)))
        names = {part.split("/")[1] for part in parts if is_layer_dir_part(part)}
        principal = parts[-1]  # parts end with the record (or the directory, or the lone link)
        return Orphan(kind, os.path.join(self.root, principal), parts, usage, mounted=bool(names & self.mounted),
                      layer_dirs=sum(1 for name in names if name in self.store.dirs), **extra)

    def classify(self) -> Classification:
        live_chains = self.live_chains()
        held = self.held_removing(live_chains)
        buildkit = self.buildkit_owned(live_chains)
        kept_chains = live_chains | buildkit.chains
        live_dirs = self.kept_dirs(live_chains, {name for name in held.values() if name})
        kept_dirs = self.kept_dirs(kept_chains, buildkit.dirs, closed=live_dirs, closed_chains=live_chains)
        buildkit.dirs = {name for name in kept_dirs - live_dirs if name in self.store.dirs}
        for name in sorted(buildkit.dirs):
            buildkit.usage.add(tree_usage(self.store.dir_path(name)))
        orphans: List[Orphan] = []
        orphans.extend(self.chain_orphans(kept_chains, kept_dirs))
        orphans.extend(self.removing_orphans(kept_dirs, held))
        orphans.extend(self.write_set_orphans(kept_dirs))
        orphans.extend(self.mount_orphans(kept_dirs))
        orphans.extend(self.dir_removals(kept_dirs))
        for name in sorted(self.store.dirs):
            if name not in kept_dirs and name not in self.claimed:
                orphans.append(self.orphan(UNREFERENCED_DIR, self.dir_parts(name, kept_dirs)))
        for link_id, target in sorted(self.store.links.items()):
            if (target is None or target not in self.store.dirs) and link_id not in self.claimed_links:
                orphans.append(self.orphan(DANGLING_LINK, [relative(LINKS, link_id)]))
        for orphan in orphans:
            classes = REMOVES.get(orphan.kind, ())
            orphan.blocked_by = sorted({record.path for record in self.blocking
                                        if record.might_name.intersection(classes)})
        return Classification(orphans, buildkit, live_chains, live_dirs, self.blocking)

    def chain_orphans(self, kept_chains: Set[str], kept_dirs: Set[str]) -> List[Orphan]:
        dead = [layer for chain_id, layer in self.store.layers.items() if chain_id not in kept_chains]
        depth = {layer.chain_id: len(self.store.chain(layer.chain_id)) for layer in dead}
        orphans = []
        for layer in sorted(dead, key=lambda l: (-depth[l.chain_id], l.chain_id)):  # children first
            parts = [relative(LAYER_RECORDS, layer.chain_id[7:])]
            parts = self.dir_parts(layer.cache_id, kept_dirs) + parts
            orphans.append(self.orphan(UNREFERENCED_CHAIN, parts, chain_id=layer.chain_id,
                                       parent_chain=layer.parent))
        return orphans

    def record_cache_id(self, records: Tuple[str, ...], name: str) -> Optional[str]:
        """The cache-id in the record ``name`` of ``records`` (a ``-removing`` layer record, a write-set), or
        None when it cannot be read."""
        try:
            with SafeDir.open(self.root) as root, root.subdir(*records, name) as directory:
                return parse_cache_id(directory.read_text("cache-id"))
        except (OSError, UnicodeDecodeError, InvalidId):
            return None

    def held_removing(self, live_chains: Set[str]) -> Dict[str, Optional[str]]:
        """The ``-removing`` records whose chain an image, a mount or a live layer still names, and that have no
        record of that chain beside them, with their cache-ids. The engine renames a layer's record away only
        once nothing holds the layer (an image's config is deleted first): such a record was not renamed by a
        removal, and it and its directory stay. (With a record beside it, the chain was made again after a
        removal was cut short: the ``-removing`` one is that removal's leftover.)"""
        held: Dict[str, Optional[str]] = {}
        for name in self.store.removing:
            chain_id = "sha256:" + (removing_chain(name) or "")
            if chain_id in live_chains and chain_id not in self.store.layers:
                held[name] = self.record_cache_id(LAYER_RECORDS, name)
        return held

    def removing_orphans(self, kept_dirs: Set[str], held: Dict[str, Optional[str]]) -> List[Orphan]:
        orphans = []
        for name in sorted(set(self.store.removing) - set(held)):
            parts = self.dir_parts(self.record_cache_id(LAYER_RECORDS, name), kept_dirs) + [relative(LAYER_RECORDS, name)]
            orphans.append(self.orphan(REMOVING, parts, chain_id="sha256:" + (removing_chain(name) or ""),
                                       in_progress=removal_origin(name) is not None))
        return orphans

    def dir_removals(self, kept_dirs: Set[str]) -> List[Orphan]:
        """Directories a removal of this collection's renamed and did not finish, with the links to their old
        name; one whose old name something now names again is kept, and said so."""
        orphans = []
        for name in sorted(self.store.removing_dirs):
            origin = removal_origin(name) or ""
            if origin in kept_dirs:
                self.store.note("unexpected", self.store.dir_path(name),
                                "renamed for removal, but %s is named again: kept" % origin)
                continue
            parts = self.link_parts(origin) + [relative(LAYER_DIRS, name)]
            orphans.append(self.orphan(UNREFERENCED_DIR, parts, in_progress=True))
        return orphans

    def write_set_orphans(self, kept_dirs: Set[str]) -> List[Orphan]:
        orphans = []
        try:
            with SafeDir.open(self.root) as root, root.subdir(*WRITE_SETS) as tmp:
                names = [e.name for e in tmp.entries() if is_write_set(removal_origin(e.name) or e.name)
                         and e.is_dir(follow_symlinks=False)]
        except OSError:
            return orphans
        for name in sorted(names):
            parts = self.dir_parts(self.record_cache_id(WRITE_SETS, name), kept_dirs) + [relative(WRITE_SETS, name)]
            orphans.append(self.orphan(WRITE_SET, parts, in_progress=removal_origin(name) is not None))
        return orphans

    def mount_orphans(self, kept_dirs: Set[str]) -> List[Orphan]:
        orphans = []
        for container_id, mount in sorted(self.store.mounts.items()):
            if container_id in self.store.containers or container_id in self.pinned_containers \
                    or not is_hex64(container_id):
                continue
            parts = (self.dir_parts(mount.mount_id, kept_dirs) + self.dir_parts(mount.init_id, kept_dirs)
                     + [relative(MOUNT_RECORDS, container_id)])
            orphans.append(self.orphan(STALE_MOUNT, parts))
        for name, removing in sorted(self.store.removing_mounts.items()):
            parts = [relative(MOUNT_RECORDS, name)]
            if removing is not None:
                parts = self.dir_parts(removing.mount_id, kept_dirs) + self.dir_parts(removing.init_id, kept_dirs) + parts
            orphans.append(self.orphan(STALE_MOUNT, parts, in_progress=True))
        return orphans


def is_write_set(name: str) -> bool:
    """The layer store's temporary directory of a layer being registered (``tmp/write-set-<digits>``)."""
    return name.startswith("write-set-") and name[len("write-set-"):].isdigit()


def classify(store: Overlay2Store, mountinfo_paths: Optional[List[str]] = None) -> Classification:
    mounted = mounted_dirs(store.data_root, mountinfo_paths or ["/proc/self/mountinfo"])
    return _Classifier(store, mounted).classify()
