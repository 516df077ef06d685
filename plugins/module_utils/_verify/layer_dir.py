# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""A layer's directory as its tar members see it: member names as path components, the directory's entries
walked without following symlinks, and a regular file's bytes read in large chunks. Both stores' content
checks compare a layer's tar stream with one of these."""

from __future__ import annotations

import errno
import os
import stat
from typing import Dict, List, Optional, Sequence, Set, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir, is_opaque

OPAQUE_XATTR = "trusted.overlay.opaque"
OPAQUE_MARKER = ".wh..wh..opq"
WHITEOUT_PREFIX = ".wh."


def split_member_name(name: str) -> Optional[List[str]]:
    """A tar member name as path components inside the layer ([] for the root, ``./``), or None when it would leave it."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if any(part == ".." or "\0" in part for part in parts):
        return None
    return parts


class DiffTree:
    """The files of one diff directory, opened one component at a time without following symlinks."""

    def __init__(self, root: SafeDir) -> None:
        self.root = root
        self.dirs: Dict[Tuple[str, ...], SafeDir] = {}

    def directory(self, parts: Sequence[str]) -> SafeDir:
        key = tuple(parts)
        if not key:
            return self.root
        cached = self.dirs.get(key)
        if cached is None:
            if len(self.dirs) > 256:
                self.close_dirs()
            cached = self.directory(parts[:-1]).subdir(parts[-1])
            self.dirs[key] = cached
        return cached

    def open_file(self, parts: Sequence[str]) -> int:
        directory = self.directory(parts[:-1])
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0),
                       dir_fd=directory.fd)

    def close_dirs(self) -> None:
        for directory in self.dirs.values():
            directory.close()
        self.dirs.clear()


def read_regular(tree: DiffTree, parts: Sequence[str], buffer: bytearray, sink) -> int:
    """Feed a regular file's content to ``sink`` in large chunks; returns the bytes read."""
    fd = tree.open_file(parts)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "is not a regular file")
        view = memoryview(buffer)
        total = 0
        while True:
            count = os.readv(fd, [buffer])
            if not count:
                return total
            sink(view[:count])
            total += count
            if total == info.st_size and count < len(buffer):
                return total  # a short read at the recorded size is the end: spare the extra read
    finally:
        os.close(fd)


def list_diff_dir(root: SafeDir) -> Tuple[Set[str], Set[str]]:
    """(every entry, non-directories) of a diff dir as tar names: whiteouts as .wh.<name>, opaque dirs with .wh..wh..opq."""
    everything: Set[str] = set()
    files: Set[str] = set()
    pending: List[Tuple[str, SafeDir]] = [("", root)]
    while pending:
        prefix, directory = pending.pop()
        try:
            if prefix and is_opaque(directory.fd, (OPAQUE_XATTR,)):
                everything.add(prefix + OPAQUE_MARKER)
            for entry in directory.entries():
                name = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    everything.add(name)
                    try:
                        pending.append((name + "/", directory.subdir(entry.name)))
                    except OSError:
                        pass
                    continue
                if not entry.is_file(follow_symlinks=False) and not entry.is_symlink():
                    info = entry.stat(follow_symlinks=False)
                    if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                        name = prefix + WHITEOUT_PREFIX + entry.name
                everything.add(name)
                files.add(name)
        finally:
            if directory is not root:
                directory.close()
    return everything, files
