# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""One walk of a root, counted as ``du -sx --block-size=1`` counts it, each inode added to its claim.

Allocated bytes are ``st_blocks * 512`` and apparent bytes ``st_size``; an inode with more than one link is
counted once in the whole walk (every root of one ``usage`` shares ``seen``); symlinks are counted as
themselves and never followed; nothing on another file system is counted or entered (a running container's
``merged``, its ``shm``). Below a claim that has no claim inside it, a subtree is summed without looking up
a single path: the walk costs about what ``du`` costs.
"""

from __future__ import annotations

import os
import stat
from typing import List, Optional, Set, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._usage.model import (
    METADATA,
    Bytes,
    Claim,
    Claims,
    Tally,
)
from ansible_collections.strata.overlay2.plugins.module_utils._util.parallel import map_chunks, worker_count
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import describe_os_error

Seen = Set[Tuple[int, int]]
Linked = Tuple[int, int, int, int]  # an inode with several links: device, inode, allocated, apparent
Job = Tuple[str, int]  # a subtree summed whole: its path and the device of its root
_METADATA = Claim(METADATA)
JOBS_PER_WORKER = 2000  # subtrees are summed by one more process for each this many


def measure(roots: List[Claims], tally: Tally) -> None:
    """Walk each root once and add everything below it (itself included) to ``tally``: the directories where
    claims start are read here, the subtrees below them summed whole, shared among processes on a large store."""
    seen: Seen = set()
    jobs: List[Job] = []
    targets: List[Bytes] = []
    for claims in roots:
        _read_structure(claims, tally, seen, jobs, targets)
    workers = worker_count(len(jobs), JOBS_PER_WORKER)
    indexes = list(range(len(jobs)))
    chunks = [indexes[worker::workers] for worker in range(workers)]
    found: List[Tuple[int, int, int, List[Linked], List[Tuple[str, str]]]] = []
    for part in map_chunks(lambda chunk: [(index,) + _sum_tree(*jobs[index]) for index in chunk], chunks):
        found.extend(part)
    for index, allocated, apparent, linked, unreadable in sorted(found, key=lambda item: item[0]):
        target = targets[index]
        target.add(allocated, apparent)
        for device, inode, linked_allocated, linked_apparent in linked:
            if (device, inode) not in seen:
                seen.add((device, inode))
                target.add(linked_allocated, linked_apparent)
        tally.unreadable.extend(unreadable)


def _read_structure(claims: Claims, tally: Tally, seen: Seen, jobs: List[Job], targets: List[Bytes]) -> None:
    """The root and the directories on the way to claims, entry by entry; each subtree below is a job."""
    try:
        top = os.lstat(claims.root)
    except OSError as exc:
        tally.unreadable.append((claims.root, describe_os_error(exc)))
        return
    device = top.st_dev
    own_claim = claims.paths.get("")
    tally.of(own_claim or _METADATA).add(top.st_blocks * 512, top.st_size)
    if not stat.S_ISDIR(top.st_mode):
        return
    # directories to read entry by entry, because claims start below them: (path relative to the root, the
    # claim its unclaimed entries inherit: None when it is only on the way to claims, and they are unattributed)
    pending: List[Tuple[str, Optional[Claim]]] = [("", own_claim)]
    while pending:
        relative, inherited = pending.pop()
        rule = claims.inside.get(relative)
        path = claims.root + "/" + relative if relative else claims.root
        try:
            entries = list(os.scandir(path))
        except OSError as exc:
            tally.unreadable.append((path, describe_os_error(exc)))
            continue
        for entry in entries:
            below = relative + "/" + entry.name if relative else entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError as exc:
                tally.unreadable.append((entry.path, describe_os_error(exc)))
                continue
            if info.st_dev != device:
                continue
            is_dir = stat.S_ISDIR(info.st_mode)
            found = claims.paths.get(below) or (rule(entry.name) if rule is not None else None) or inherited
            on_the_way = below in claims.ancestors or below in claims.inside
            if found is None and not on_the_way:  # no claim covers it: counted under the top of its tree
                counted = tally.unclaimed(below)
            else:
                counted = tally.of(found or _METADATA)
            counted.add(*_own(info, seen))
            if not is_dir:
                continue
            if on_the_way:
                pending.append((below, found))
            else:
                jobs.append((entry.path, device))
                targets.append(counted)


def _own(info: os.stat_result, seen: Seen) -> Tuple[int, int]:
    """What one inode adds: nothing when another link to it was counted already."""
    if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
        key = (info.st_dev, info.st_ino)
        if key in seen:
            return 0, 0
        seen.add(key)
    return info.st_blocks * 512, info.st_size


def _sum_tree(path: str, device: int) -> Tuple[int, int, List[Linked], List[Tuple[str, str]]]:
    """Everything below the directory ``path``: allocated and apparent bytes of the inodes with one link, the
    inodes with several (counted by the caller, once in the whole walk), and what could not be read."""
    allocated = apparent = 0
    linked: List[Linked] = []
    unreadable: List[Tuple[str, str]] = []
    pending = [path]
    while pending:
        current = pending.pop()
        try:
            iterator = os.scandir(current)
        except OSError as exc:
            unreadable.append((current, describe_os_error(exc)))
            continue
        with iterator:
            for entry in iterator:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    unreadable.append((entry.path, describe_os_error(exc)))
                    continue
                if info.st_dev != device:
                    continue
                mode = info.st_mode
                if stat.S_ISDIR(mode):
                    pending.append(entry.path)
                elif info.st_nlink > 1:
                    linked.append((info.st_dev, info.st_ino, info.st_blocks * 512, info.st_size))
                    continue
                allocated += info.st_blocks * 512
                apparent += info.st_size
    return allocated, apparent, linked, unreadable
