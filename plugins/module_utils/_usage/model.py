# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Where the disk went: every byte below the data-root claimed by exactly one category.

A store's backend says which paths (relative to a root: the data-root, and the containerd root when it is
elsewhere) belong to which category (``Claims``); ``_usage.walk`` walks each root once, as ``du -sx`` does, and
adds every inode to the most specific claim above it. The directories on the way to a claim are the engine's
metadata; what no claim covers is ``unattributed``, with its largest paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Set, Tuple

IMAGE_LAYERS = "image_layers"
CONTAINER_LAYERS = "container_layers"
CONTAINER_LOGS = "container_logs"
VOLUMES = "volumes"
BUILDKIT = "buildkit"
CONTAINERD_CONTENT = "containerd_content"
CONTAINERD_SNAPSHOTS = "containerd_snapshots"
ORPHANS = "orphans"
METADATA = "metadata"
OTHER_STORE = "other_store"
CATEGORIES = (IMAGE_LAYERS, CONTAINER_LAYERS, CONTAINER_LOGS, VOLUMES, BUILDKIT, CONTAINERD_CONTENT,
              CONTAINERD_SNAPSHOTS, ORPHANS, METADATA, OTHER_STORE)
UNATTRIBUTED = "unattributed"
LARGEST = 10  # entries listed per category detail, and unattributed paths


@dataclass(frozen=True)
class Claim:
    """A category, and what within it (an image layer's sharing, a container, a volume, an orphan kind)."""

    category: str
    detail: str = ""


Inside = Callable[[str], Optional[Claim]]  # a claimed directory's rule for its children, by name


@dataclass
class Claims:
    """The claims below one root, by path relative to it (no leading or trailing slash)."""

    root: str
    paths: Dict[str, Claim] = field(default_factory=dict)
    inside: Dict[str, Inside] = field(default_factory=dict)  # rules for the children of claimed directories
    ancestors: Set[str] = field(default_factory=set)  # every proper ancestor of a claim

    def claim(self, relative: str, category: str, detail: str = "", inside: Optional[Inside] = None) -> None:
        self.paths[relative] = Claim(category, detail)
        if inside is not None:
            self.inside[relative] = inside
        parent = relative.rpartition("/")[0]
        while parent and parent not in self.ancestors:
            self.ancestors.add(parent)
            parent = parent.rpartition("/")[0]


@dataclass
class Bytes:
    allocated: int = 0  # st_blocks * 512, as du counts
    apparent: int = 0  # st_size, as du --apparent-size counts

    def add(self, allocated: int, apparent: int) -> None:
        self.allocated += allocated
        self.apparent += apparent

    def as_dict(self) -> Dict[str, int]:
        return {"bytes": self.allocated, "apparent_bytes": self.apparent}


@dataclass
class Tally:
    """What the walk found: bytes by claim, and by the unattributed path at the top of each unclaimed tree."""

    by_claim: Dict[Claim, Bytes] = field(default_factory=dict)
    unattributed: Dict[str, Bytes] = field(default_factory=dict)
    unreadable: List[Tuple[str, str]] = field(default_factory=list)  # (path, why)

    def of(self, claim: Claim) -> Bytes:
        found = self.by_claim.get(claim)
        if found is None:
            found = self.by_claim[claim] = Bytes()
        return found

    def unclaimed(self, path: str) -> Bytes:
        found = self.unattributed.get(path)
        if found is None:
            found = self.unattributed[path] = Bytes()
        return found

    def merge(self, other: "Tally") -> None:
        for claim, counted in other.by_claim.items():
            self.of(claim).add(counted.allocated, counted.apparent)
        for path, counted in other.unattributed.items():
            self.unclaimed(path).add(counted.allocated, counted.apparent)
        self.unreadable.extend(other.unreadable)


Describe = Callable[[str, str, Bytes], Dict[str, object]]  # category, detail, bytes -> an entry of its largest


def usage_facts(tally: Tally, roots: List[str], describe: Optional[Dict[str, Describe]] = None,
                split: Optional[Dict[str, str]] = None) -> Dict[str, object]:
    """The facts' ``usage``: ``total``, ``categories.<name>`` (with the largest details where ``describe`` has a
    category, or its bytes by detail under the key ``split`` gives), ``unattributed`` with its largest paths,
    the ``roots`` walked and what could not be read."""
    describe = describe or {}
    split = split or {}
    total = Bytes()
    categories: Dict[str, Dict[str, object]] = {}
    for name in CATEGORIES:
        counted = Bytes()
        details = []
        for claim, found in tally.by_claim.items():
            if claim.category == name:
                counted.add(found.allocated, found.apparent)
                if claim.detail:
                    details.append((claim.detail, found))
        entry: Dict[str, object] = counted.as_dict()
        if name in describe:
            details.sort(key=lambda item: (-item[1].allocated, item[0]))
            entry["largest"] = [describe[name](name, detail, found) for detail, found in details[:LARGEST]]
            entry["count"] = len(details)
        if name in split:
            entry[split[name]] = {detail: found.as_dict() for detail, found in sorted(details)}
        categories[name] = entry
        total.add(counted.allocated, counted.apparent)
    left = Bytes()
    for found in tally.unattributed.values():
        left.add(found.allocated, found.apparent)
    total.add(left.allocated, left.apparent)
    largest = sorted(tally.unattributed.items(), key=lambda item: (-item[1].allocated, item[0]))[:LARGEST]
    unattributed: Dict[str, object] = left.as_dict()
    unattributed["largest"] = [dict(path=path, **found.as_dict()) for path, found in largest]
    return {"total": total.as_dict(), "roots": list(roots), "categories": categories, "unattributed": unattributed,
            "unreadable": [{"path": path, "reason": why} for path, why in tally.unreadable]}
