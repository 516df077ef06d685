# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""What every store's orphan classification gives: orphans with their usage, BuildKit's cache, and the facts'
``orphans`` section. Each store classifies its own (``_orphans.overlay2``, ``_orphans.containerd``); deciding
what may go is ``_orphans.prune``'s job."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set

from ansible_collections.strata.overlay2.plugins.module_utils._store.model import DamagedRecord
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import walk_stats


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
    path: str  # the object's main path
    parts: List[str]  # every path removing it removes, relative to the store's prune root, children before parents
    usage: Usage = field(default_factory=Usage)
    chain_id: Optional[str] = None
    parent_chain: Optional[str] = None  # for chains: the parent chain, which must stay if this one stays
    mounted: bool = False
    blocked_by: List[str] = field(default_factory=list)  # damaged records that might own it (their paths)
    layer_dirs: int = 0  # the store's layer directories among ``parts`` (a prune never removes the last one)
    command: Optional[str] = None  # a record another program's database holds: how that program reclaims it
    in_progress: bool = False  # what an earlier prune renamed for removal and did not finish (``_orphans.removal``)

    def as_dict(self) -> Dict[str, object]:
        root = self.path[:-len(self.parts[-1]) - 1]
        return {"kind": self.kind, "path": self.path, "bytes": self.usage.bytes,
                "newest_mtime": self.usage.newest_mtime,
                "paths": [os.path.join(root, part) for part in self.parts],
                "blocked_by": list(self.blocked_by), "in_progress": self.in_progress}


@dataclass
class ContainerdOrphan(Orphan):
    """An orphan of the containerd image store: its entry always says whether a record of containerd's holds it
    (``command``: how containerd reclaims it) or not (None: a file no database knows)."""

    def as_dict(self) -> Dict[str, object]:
        entry = super().as_dict()
        entry["command"] = self.command
        return entry


@dataclass
class BuildKitCache:
    """What BuildKit's build cache holds here, left to ``docker builder prune``."""

    state: str  # absent | read | unknown (see ``_buildkit``)
    reason: str
    chains: Set[str]  # layer chains it owns, ancestors included, that no image or container uses
    dirs: Set[str]  # overlay2 directories it owns that no image or container uses
    usage: Usage

    def facts(self) -> Dict[str, object]:
        return {"state": self.state, "reason": self.reason, "chains": len(self.chains), "dirs": len(self.dirs),
                "bytes": self.usage.bytes}


def orphan_facts(orphans: List[Orphan], buildkit: BuildKitCache, blocking: List[DamagedRecord],
                 kinds: Sequence[str]) -> Dict[str, object]:
    """The facts' ``orphans`` section, the same for both stores (``kinds``: the store's orphan kinds)."""
    return {
        "entries": [orphan.as_dict() for orphan in orphans],
        "bytes": sum(orphan.usage.bytes for orphan in orphans),
        "by_kind": {kind: sum(1 for o in orphans if o.kind == kind) for kind in kinds},
        "buildkit_dirs": len(buildkit.dirs),
        "buildkit_chains": len(buildkit.chains),
        "buildkit_bytes": buildkit.usage.bytes,
        "buildkit_state": buildkit.state,
        "blocking": [record.as_dict() for record in blocking],
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
