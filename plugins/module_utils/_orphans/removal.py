# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Removing (or quarantining) one orphan in an order that a kill at any moment cannot turn into damage.

The engine renames a layer record to ``<chainID>-<random>-removing`` before it deletes anything, and containerd's
snapshotter renames a snapshot to ``rm-<id>``: a removal cut short is then recognisable, and finished later. A
removal here does the same with one convention for every orphan of both stores:

1. the orphan's principal part (its record, else its directory; ``Orphan.parts[-1]``) is renamed in place to
   ``<name>-<mark><random>-removing`` (``_util.ids.removal_name``), unless it is a single link, which goes
   in one call anyway;
2. its other parts go, in order: the ``l/`` links, then the directories;
3. the renamed principal goes last.

Whatever a kill leaves between two system calls is the orphan as it was, or a principal under a removal name
that still names the parts not yet gone: never a record naming something that is not there. The classifiers
list such a leftover as the same kind of orphan with ``in_progress``; the prune finishes it at its next run,
past the gates that only decide whether to begin (kind, age, in flight, byte ceiling). Every step walks
directory descriptors opened with O_NOFOLLOW from the prune root down, so a path swapped for a symlink is
never followed.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional

from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import removal_name, removal_origin, removing_chain
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir, check_component

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
COPYING_SUFFIX = ".copying"  # a copy into the quarantine that is not complete yet


def renamed_part(part: str) -> str:
    """A fresh removal name for ``part`` (``_util.ids.removal_name`` of its last component); the engine's
    ``<chainID>-<random>-removing`` record takes the form ``<chainID>-<mark><random>-removing``."""
    parent, slash, name = part.rpartition("/")
    return parent + slash + removal_name(removing_chain(name) or name)


def begin(root: SafeDir, part: str, renamed: str) -> Optional[str]:
    """Step 1: rename the principal ``part`` to ``renamed`` (same directory). Returns what the principal is
    called now: ``renamed``; ``part`` itself when it is already a removal's or is not a directory (a link
    goes in one call); None when it is gone."""
    components = part.split("/")
    try:
        with root.subdir(*components[:-1]) as parent:
            info = os.lstat(check_component(components[-1]), dir_fd=parent.fd)
            if removal_origin(components[-1]) is not None or not stat.S_ISDIR(info.st_mode):
                return part
            os.rename(components[-1], renamed.rpartition("/")[2], src_dir_fd=parent.fd, dst_dir_fd=parent.fd)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    return renamed


def carry_out(root: SafeDir, parts: List[str], renamed: str, principal_as: str,
              move: Callable[[str, str], None]) -> None:
    """The three steps for one orphan. ``move(part now, part as kept)`` removes or quarantines one part: the
    other parts are kept under their own names, the principal as ``principal_as`` (the name it was found by)."""
    principal = begin(root, parts[-1], renamed)
    for part in parts[:-1]:
        move(part, part)
    if principal is not None:
        move(principal, principal_as)


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


def quarantine_part(root: SafeDir, part: str, target_root: str, keep_as: Optional[str] = None) -> None:
    """Move one relative path into the quarantine as ``keep_as`` (default: the same relative path); a part
    already gone is fine. Where a rename cannot (dockerd bind-mounts ``overlay2/`` onto itself), it is copied
    to ``<destination>.copying``, renamed into place, and then removed: a kill leaves the part still whole in
    the store, and at most a copy to be made again, or the copy whole and the part to be removed."""
    components = part.split("/")
    destination = os.path.join(target_root, *(keep_as or part).split("/"))
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    try:
        with root.subdir(*components[:-1]) as parent:
            if os.path.lexists(destination):  # moved by a run that was cut short before it removed the source
                _remove_tree_fanned_out(parent.fd, components[-1], 2)
                return
            try:
                os.rename(components[-1], destination, src_dir_fd=parent.fd)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                copying = destination + COPYING_SUFFIX
                discard_copy(copying)
                _copy_tree_at(parent.fd, components[-1], copying)
                os.rename(copying, destination)
                _remove_tree_fanned_out(parent.fd, components[-1], 2)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def discard_copy(copying: str) -> None:
    """Remove a copy into the quarantine that a kill left incomplete (``<destination>.copying``), if any."""
    if os.path.lexists(copying):
        with SafeDir.open(os.path.dirname(copying)) as holder:
            _remove_tree_at(holder.fd, os.path.basename(copying))


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
