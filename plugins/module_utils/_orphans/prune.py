# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Deciding which orphans may go, and removing or quarantining them without following symlinks.

Safety gates, in order, each with a stable code (``reason_code``) beside its message: the kind was asked for
(``kind_not_selected``); no damaged record might own it (``unknown_owner``); old enough (``too_young``, by
the newest mtime inside); not newer than the running daemon's start (``in_flight``); not a kind the running
daemon holds in memory (``daemon_holds``); not mounted (``mounted``); a chain goes only with its children
(``parent_stays``); within the byte ceiling (``over_budget``); never the last layer directory
(``last_layer_dir``). Removal walks directory file descriptors opened with O_NOFOLLOW from the data-root
down, so a path swapped for a symlink is never followed; a failure is ``removal_failed`` or
``quarantine_failed``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._store.discovery import owners, running_dockerds
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import (
    HELD_BY_RUNNING_DAEMON,
    Orphan,
    UNREFERENCED_CHAIN,
)
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir, check_component, describe_os_error

REMOVED = "removed"
WOULD_REMOVE = "would_remove"
QUARANTINED = "quarantined"
SKIPPED = "skipped"

# reason codes: why an orphan goes, or why it stays
UNREFERENCED = "unreferenced"
KIND_NOT_SELECTED = "kind_not_selected"
UNKNOWN_OWNER = "unknown_owner"
TOO_YOUNG = "too_young"
IN_FLIGHT = "in_flight"
DAEMON_HOLDS = "daemon_holds"
MOUNTED = "mounted"
PARENT_STAYS = "parent_stays"
OVER_BUDGET = "over_budget"
LAST_LAYER_DIR = "last_layer_dir"
REMOVAL_FAILED = "removal_failed"
QUARANTINE_FAILED = "quarantine_failed"
CONTAINERD_RECLAIMS = "containerd_reclaims"
REASON_CODES = (UNREFERENCED, KIND_NOT_SELECTED, UNKNOWN_OWNER, TOO_YOUNG, IN_FLIGHT, DAEMON_HOLDS, MOUNTED,
                PARENT_STAYS, OVER_BUDGET, LAST_LAYER_DIR, REMOVAL_FAILED, QUARANTINE_FAILED, CONTAINERD_RECLAIMS)

# a process start time is known to a clock tick past the boot time, which /proc/stat gives in whole seconds
START_TIME_MARGIN = 2.0

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


# -- the daemon ----------------------------------------------------------------
@dataclass
class Daemon:
    pid: int
    started_at: float  # epoch seconds
    name: str = "dockerd"


def running_daemons(data_root: str, found: Optional[Sequence[Any]] = None) -> List[Daemon]:
    """The running dockerds whose store is this data-root (matched by inode, so also across mount namespaces;
    a userns-remapped or rootless daemon by its own store), among ``found`` (``_discovery`` daemons already
    discovered) or the running ones now."""
    return [Daemon(owner.pid, owner.started_at)
            for owner in owners(data_root, running_dockerds() if found is None else list(found))
            if owner.pid is not None and owner.started_at is not None]


# -- decisions -----------------------------------------------------------------
@dataclass
class Gates:
    kinds: Sequence[str]
    min_age: float
    now: float
    daemon: Optional[Daemon]
    layer_dirs: int  # the store's layer directories now (overlay2/): a run never removes the last one
    max_remove_bytes: Optional[int] = None


@dataclass
class Decision:
    orphan: Orphan
    action: str
    reason_code: str
    reason: str

    def as_dict(self) -> Dict[str, object]:
        result = self.orphan.as_dict()
        result.update(action=self.action, reason_code=self.reason_code, reason=self.reason)
        return result

    def keep(self, code: str, reason: str) -> None:
        self.action, self.reason_code, self.reason = SKIPPED, code, reason


def decide(orphans: List[Orphan], gates: Gates, check_mode: bool, quarantine: bool) -> List[Decision]:
    decisions: List[Decision] = []
    budget = gates.max_remove_bytes
    dirs_left = gates.layer_dirs
    staying_chains: Set[str] = set()
    go = QUARANTINED if quarantine else REMOVED
    for orphan in orphans:  # chains come children first, so a staying child is known before its parent
        blocked = blocked_by(orphan, gates, staying_chains)
        if blocked is None and budget is not None and orphan.usage.bytes > budget:
            blocked = OVER_BUDGET, "max_remove_bytes reached (%d bytes left, this needs %d)" % (budget, orphan.usage.bytes)
        dirs = orphan.layer_dirs
        if blocked is None and dirs and dirs >= dirs_left:
            blocked = LAST_LAYER_DIR, "would leave overlay2/ without layer directories (newer engines then switch stores)"
        if blocked is not None:
            decisions.append(Decision(orphan, SKIPPED, blocked[0], blocked[1]))
            if orphan.kind == UNREFERENCED_CHAIN and orphan.parent_chain:
                staying_chains.add(orphan.parent_chain)
            continue
        if budget is not None:
            budget -= orphan.usage.bytes
        dirs_left -= dirs
        decisions.append(Decision(orphan, WOULD_REMOVE if check_mode else go, UNREFERENCED, "unreferenced and old enough"))
    return decisions


def blocked_by(orphan: Orphan, gates: Gates, staying_chains: Set[str]) -> Optional[Tuple[str, str]]:
    """(reason code, message) of the first gate that keeps the orphan, or None when it may go."""
    if orphan.command is not None:  # a record in containerd's databases, whatever the kinds: never written here
        return CONTAINERD_RECLAIMS, "a record in containerd's database holds it; let containerd reclaim it: " + \
            orphan.command
    if orphan.kind not in gates.kinds:
        return KIND_NOT_SELECTED, "kind %s not selected" % orphan.kind
    if orphan.blocked_by:
        return UNKNOWN_OWNER, ("a damaged record might still own it; repair or remove %s first"
                               % ", ".join(orphan.blocked_by[:3]) + (" (and %d more)" % (len(orphan.blocked_by) - 3)
                                                                     if len(orphan.blocked_by) > 3 else ""))
    age = gates.now - orphan.usage.newest_mtime
    if age < gates.min_age:
        return TOO_YOUNG, "newest change %.0f s ago, younger than min_age (%.0f s)" % (max(age, 0), gates.min_age)
    if gates.daemon is not None:
        if orphan.usage.newest_mtime >= gates.daemon.started_at - START_TIME_MARGIN:
            return IN_FLIGHT, "changed since the running %s (pid %d) started: may be in flight" % (
                gates.daemon.name, gates.daemon.pid)
        if orphan.kind in HELD_BY_RUNNING_DAEMON:
            return DAEMON_HOLDS, ("the running dockerd (pid %d) holds it in memory; prune it with the daemon stopped"
                                  % gates.daemon.pid)
    if orphan.mounted:
        return MOUNTED, "mounted"
    if orphan.kind == UNREFERENCED_CHAIN and orphan.chain_id in staying_chains:
        return PARENT_STAYS, "parent of a layer that stays"
    return None


# -- removal -------------------------------------------------------------------
def _remove_tree_at(parent_fd: int, name: str) -> None:
    """Remove ``name`` under ``parent_fd`` and everything below it, never following a symlink.

    Each directory is opened with O_NOFOLLOW relative to its parent's descriptor and must still be the
    inode that was listed (and on the same device) before its entries are unlinked.
    """
    info = os.lstat(check_component(name), dir_fd=parent_fd)
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(name, dir_fd=parent_fd)
        return
    stack: List = [(parent_fd, name, info.st_ino, None)]
    device = info.st_dev
    while stack:
        owner_fd, entry_name, inode, fd = stack.pop()
        if fd is None:
            fd = os.open(entry_name, _DIR_FLAGS, dir_fd=owner_fd)
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != (device, inode):
                os.close(fd)
                raise OSError(errno.ESTALE, "%s changed while being removed" % entry_name)
        subdirs = []
        for entry_name_below in os.listdir(fd):
            try:
                os.unlink(entry_name_below, dir_fd=fd)  # unlink never follows; a directory refuses with EISDIR
            except IsADirectoryError:
                subdirs.append((entry_name_below, os.lstat(entry_name_below, dir_fd=fd).st_ino))
        if subdirs:
            stack.append((owner_fd, entry_name, inode, fd))
            for sub_name, sub_inode in subdirs:
                stack.append((fd, sub_name, sub_inode, None))
            continue
        os.close(fd)
        os.rmdir(entry_name, dir_fd=owner_fd)


def _open_checked(owner_fd: int, name: str, device: int, inode: int) -> int:
    fd = os.open(name, _DIR_FLAGS, dir_fd=owner_fd)
    opened = os.fstat(fd)
    if (opened.st_dev, opened.st_ino) != (device, inode):
        os.close(fd)
        raise OSError(errno.ESTALE, "%s changed while being removed" % name)
    return fd


def _remove_tree_fanned_out(parent_fd: int, name: str, workers: int) -> None:
    """Like _remove_tree_at, but where the tree fans out, its branches are removed on several threads.

    It descends while a directory holds a single subdirectory (overlay2/<id>/diff/...), unlinking the files
    on the way; at the first directory with several subdirectories, each branch goes to a worker.
    """
    info = os.lstat(check_component(name), dir_fd=parent_fd)
    if workers < 2 or not stat.S_ISDIR(info.st_mode):
        _remove_tree_at(parent_fd, name)
        return
    path: List = []
    owner_fd, current, inode = parent_fd, name, info.st_ino
    try:
        while True:
            fd = _open_checked(owner_fd, current, info.st_dev, inode)
            path.append((owner_fd, current, fd))
            subdirs = []
            for below in os.listdir(fd):
                try:
                    os.unlink(below, dir_fd=fd)
                except IsADirectoryError:
                    subdirs.append(below)
            if len(subdirs) != 1:
                break
            owner_fd, current = fd, subdirs[0]
            inode = os.lstat(current, dir_fd=fd).st_ino
        if subdirs:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for _result in pool.map(lambda branch: _remove_tree_at(fd, branch), subdirs):
                    pass
        while path:
            owner_fd, current, fd = path.pop()
            os.close(fd)
            os.rmdir(current, dir_fd=owner_fd)
    finally:
        for _owner, _name, fd in path:
            os.close(fd)


def remove_part(root: SafeDir, part: str, workers: int = 2) -> None:
    """Remove one relative path below the data-root; a part already gone is fine."""
    components = part.split("/")
    try:
        with root.subdir(*components[:-1]) as parent:
            _remove_tree_fanned_out(parent.fd, components[-1], workers)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def quarantine_part(root: SafeDir, part: str, target_root: str) -> None:
    """Move one relative path into the quarantine, keeping its relative path; copy where rename cannot."""
    components = part.split("/")
    destination = os.path.join(target_root, *components)
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    try:
        with root.subdir(*components[:-1]) as parent:
            try:
                os.rename(components[-1], destination, src_dir_fd=parent.fd)
            except OSError as exc:
                if exc.errno != errno.EXDEV:  # dockerd bind-mounts overlay2/ onto itself
                    raise
                _copy_tree_at(parent.fd, components[-1], destination)
                _remove_tree_at(parent.fd, components[-1])
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def _copy_tree_at(parent_fd: int, name: str, destination: str) -> None:
    info = os.lstat(name, dir_fd=parent_fd)
    if stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(name, dir_fd=parent_fd), destination)
    elif stat.S_ISREG(info.st_mode):
        source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=parent_fd)
        with os.fdopen(source, "rb") as reader, open(destination, "xb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
    elif stat.S_ISDIR(info.st_mode):
        os.mkdir(destination)
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        try:
            for entry in os.scandir(fd):
                _copy_tree_at(fd, entry.name, os.path.join(destination, entry.name))
            try:
                os.setxattr(destination, "trusted.overlay.opaque", os.getxattr(fd, "trusted.overlay.opaque"))
            except OSError:
                pass
        finally:
            os.close(fd)
    else:  # whiteouts are character devices 0/0
        os.mknod(destination, info.st_mode, info.st_rdev)
    if not stat.S_ISLNK(info.st_mode):
        os.chmod(destination, stat.S_IMODE(info.st_mode))
    os.utime(destination, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)


@dataclass
class Outcome:
    decisions: List[Decision]
    reclaimed_bytes: int
    errors: List[str]
    quarantine: Optional[str] = None


class PruneError(OSError):
    """The prune cannot start (nothing was removed or moved)."""


def execute(data_root: str, decisions: List[Decision], quarantine_dir: Optional[str] = None) -> Outcome:
    """Carry out the decisions; a failure turns that orphan into a skipped one and the rest go on.

    Raises PruneError, before touching anything, when the quarantine cannot be created.
    """
    reclaimed = 0
    errors: List[str] = []
    manifest: List[Dict[str, object]] = []
    target_root: Optional[str] = None
    if quarantine_dir and any(d.action == QUARANTINED for d in decisions):
        target_root = os.path.join(quarantine_dir, time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-%d" % os.getpid())
        try:
            os.makedirs(target_root)
        except OSError as exc:
            message = "cannot create the quarantine %s: %s; nothing was moved" % (target_root, describe_os_error(exc))
            for decision in decisions:
                if decision.action == QUARANTINED:
                    decision.keep(QUARANTINE_FAILED, message)
            raise PruneError(message) from exc
    with SafeDir.open(data_root) as root:
        for decision in decisions:
            if decision.action not in (REMOVED, QUARANTINED):
                continue
            try:
                for part in decision.orphan.parts:
                    if target_root:
                        quarantine_part(root, part, target_root)
                    else:
                        remove_part(root, part)
            except OSError as exc:
                message = "%s: %s" % (decision.orphan.path, describe_os_error(exc))
                errors.append(message)
                decision.keep(QUARANTINE_FAILED if target_root else REMOVAL_FAILED,
                              "removal failed, the rest kept: " + describe_os_error(exc))
                continue
            reclaimed += decision.orphan.usage.bytes
            if target_root:
                manifest.append({"kind": decision.orphan.kind, "parts": decision.orphan.parts,
                                 "bytes": decision.orphan.usage.bytes})
    if target_root:
        try:
            with open(os.path.join(target_root, "manifest.json"), "w", encoding="utf-8") as handle:
                json.dump({"data_root": data_root, "moved": manifest,
                           "restore": "move each part back to <data_root>/<part> with the daemon stopped"},
                          handle, indent=2)
        except OSError as exc:
            errors.append("%s/manifest.json (the moves are done; the manifest is not): %s"
                          % (target_root, describe_os_error(exc)))
    return Outcome(decisions, reclaimed, errors, target_root)
