# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Read files under a directory file descriptor without following symlinks.

Every open goes through ``openat(dir_fd, name, O_NOFOLLOW)`` with a single
path component, so a symlink planted anywhere below the data-root is refused
instead of followed, and no name read from disk can climb out with ``..``.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
from typing import Iterator, List, Optional, Sequence, Union

SMALL_FILE_LIMIT = 1 << 20  # metadata files are a few bytes; refuse anything absurd

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


# how overlayfs marks a directory that hides what the layers below have there: trusted.* as root, user.* rootless
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")


def is_opaque(fd: int, names: Sequence[str] = OPAQUE_XATTRS) -> bool:
    """Whether the open directory ``fd`` is an opaque overlay directory."""
    for name in names:
        try:
            if os.getxattr(fd, name) == b"y":
                return True
        except OSError:
            continue
    return False


class UnsafeName(ValueError):
    """A name that is not a single, plain path component."""


class FileTooLarge(OSError):
    """A file exceeds the size limit given for it."""


def check_component(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise UnsafeName("not a single path component: %r" % (name,))
    return name


def describe_os_error(exc: OSError) -> str:
    """A short reason for an OSError, naming symlinks plainly."""
    if exc.errno == errno.ELOOP:
        return "is a symlink (not followed)"
    if exc.errno == errno.ENOTDIR:
        return "is not a directory"
    if exc.errno == errno.ENOENT:
        return "does not exist"
    return exc.strerror or str(exc)


def _open_dir_at(dir_fd: int, name: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        # O_DIRECTORY wins over O_NOFOLLOW on Linux: a symlink gives ENOTDIR; name it for what it is
        if exc.errno == errno.ENOTDIR and stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode):
            raise OSError(errno.ELOOP, "is a symlink (not followed)") from exc
        raise


def _read_small_fd(fd: int, limit: int) -> bytes:
    """Metadata: usually one small read; the file type is checked only when a read says nothing."""
    data = os.read(fd, min(limit + 1, 8192))  # a large request would allocate its whole buffer every time
    if not data:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "is not a regular file")
        return data
    if len(data) < 8192:
        return data
    return _read_rest(fd, data, limit)


def _read_rest(fd: int, head: bytes, limit: int) -> bytes:
    """``head`` plus the rest of the file, in 1 MiB reads, stopping one byte past ``limit``."""
    chunks = [head]
    total = len(head)
    while total <= limit:
        chunk = os.read(fd, min(limit + 1 - total, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _read_large_fd(fd: int, limit: int) -> bytes:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise OSError(errno.EINVAL, "is not a regular file")
    if info.st_size > limit:
        raise FileTooLarge(errno.EFBIG, "is larger than %d bytes" % limit)
    return _read_rest(fd, b"", limit)


def _read_regular_at(dir_fd: int, name: str, limit: int) -> bytes:
    """A regular file below a directory descriptor, refusing symlinks, devices, FIFOs and oversize files."""
    fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    try:
        data = _read_small_fd(fd, limit) if limit <= SMALL_FILE_LIMIT else _read_large_fd(fd, limit)
        if len(data) > limit:
            raise FileTooLarge(errno.EFBIG, "is larger than %d bytes" % limit)
        return data
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise OSError(errno.EINVAL, "is not a regular file") from exc
        raise
    finally:
        os.close(fd)


_FIRST_READ = 8192


def read_small_at(dir_fd: int, name: str, limit: int = SMALL_FILE_LIMIT) -> bytes:
    """A small regular file below a directory descriptor, never through a symlink (literal names only).

    The common case (a few bytes of metadata) is one open, one read and one close; anything else (empty, large,
    not a regular file) is read again by the careful path, which says what it is.
    """
    if limit >= _FIRST_READ:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        try:
            data = os.read(fd, _FIRST_READ)
        except OSError:
            data = b""
        finally:
            os.close(fd)
        if 0 < len(data) < _FIRST_READ:
            return data
    return _read_regular_at(dir_fd, name, limit)


Read = Union[bytes, OSError]  # a file's bytes, or why it could not be read


def present(read: Read) -> bool:
    """Whether a file exists, from what reading it gave (a file that could not be read is still there)."""
    return isinstance(read, bytes) or read.errno != errno.ENOENT


def read_record_at(dir_fd: int, name: str, files: Sequence[str]) -> List[Read]:
    """The small files of one record directory (a validated single component below ``dir_fd``), each as
    ``read_small_at`` reads it or the OSError that reading it raised, in the order of ``files`` (a missing
    file's ENOENT says it is absent, so nothing is looked up twice). The directory is opened once, never through
    a symlink; OSError when it cannot be opened."""
    record = _open_dir_at(dir_fd, name)
    found: List[Read] = []
    try:
        for file_name in files:
            try:
                found.append(read_small_at(record, file_name))
            except OSError as exc:
                found.append(exc)
    finally:
        os.close(record)
    return found


class SafeDir:
    """An open directory; every child is reached by one openat() that never follows a symlink."""

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path

    @classmethod
    def open(cls, path: str) -> "SafeDir":
        """Open ``path`` (already resolved by the caller) as the root of safe access."""
        return cls(os.open(path, _DIR_FLAGS), path)

    def __enter__(self) -> "SafeDir":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def join(self, *names: str) -> str:
        return os.path.join(self.path, *names)

    def subdir(self, *names: str) -> "SafeDir":
        """Open a descendant directory one component at a time, refusing symlinks."""
        fd = self.fd
        path = self.path
        try:
            for name in names:
                new_fd = _open_dir_at(fd, check_component(name))
                if fd != self.fd:
                    os.close(fd)
                fd = new_fd
                path = os.path.join(path, name)
        except BaseException:
            if fd != self.fd:
                os.close(fd)
            raise
        if fd == self.fd:
            fd = os.dup(fd)
        return SafeDir(fd, path)

    def read_bytes(self, name: str, limit: int = SMALL_FILE_LIMIT) -> bytes:
        """The content of a regular file, refusing symlinks, devices, FIFOs and oversize files."""
        return _read_regular_at(self.fd, check_component(name), limit)

    def read_text(self, name: str, limit: int = SMALL_FILE_LIMIT) -> str:
        """A small text file, decoded strictly as UTF-8 (UnicodeDecodeError otherwise)."""
        return self.read_bytes(name, limit).decode("utf-8")

    def read_optional(self, name: str, limit: int = SMALL_FILE_LIMIT) -> Optional[str]:
        """Like read_text, but None when the file does not exist."""
        try:
            return self.read_text(name, limit)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise

    def entries(self) -> Iterator[os.DirEntry]:
        """The directory's entries (``entry.name`` only; use lstat-style checks on them)."""
        with os.scandir(self.fd) as iterator:
            yield from iterator

    def names(self) -> List[str]:
        return sorted(os.listdir(self.fd))

    def readlink(self, name: str) -> str:
        return os.readlink(check_component(name), dir_fd=self.fd)

    def lstat(self, name: str) -> os.stat_result:
        return os.lstat(check_component(name), dir_fd=self.fd)

    def exists(self, name: str) -> bool:
        try:
            self.lstat(name)
        except OSError:
            return False
        return True


def walk_stats(path: str) -> Iterator[os.stat_result]:
    """lstat results of ``path`` and, when it is a real directory, of everything below it; symlinks not followed."""
    try:
        top = os.lstat(path)
    except OSError:
        return
    yield top
    if not stat.S_ISDIR(top.st_mode):
        return
    pending = [path]
    while pending:
        current = pending.pop()
        try:
            iterator = os.scandir(current)
        except OSError:
            continue
        with iterator:
            for entry in iterator:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                yield info
                if stat.S_ISDIR(info.st_mode):
                    pending.append(entry.path)


def _unique_inodes(path: str, with_top: bool) -> Iterator[os.stat_result]:
    """lstat results of a directory tree, each inode once (the top directory itself only ``with_top``); nothing
    when ``path`` is not a directory."""
    seen = set()
    stats = walk_stats(path)
    top = next(stats, None)
    if top is None or not stat.S_ISDIR(top.st_mode):
        return
    for info in itertools.chain((top,), stats) if with_top else stats:
        key = (info.st_dev, info.st_ino)
        if key not in seen:
            seen.add(key)
            yield info


def tree_size(path: str) -> int:
    """Bytes of a tree as the engine counts them: st_size of every non-directory, hard links once.

    Symlinks are counted as links (their own size), never followed; a path that is not a directory (a diff dir
    swapped for a symlink) counts nothing.
    """
    return sum(info.st_size for info in _unique_inodes(path, False) if not stat.S_ISDIR(info.st_mode))


def disk_usage(path: str) -> int:
    """Allocated bytes of a tree as containerd's snapshotter counts them: st_blocks * 512 of every unique
    inode, the top directory included; symlinks not followed. A path that is not a directory counts nothing."""
    return sum(info.st_blocks * 512 for info in _unique_inodes(path, True))


def replace_file(path: str, text: str, mode: int = 0o644, temporary_name: Optional[str] = None) -> None:
    """Replace ``path`` with ``text`` atomically: a temporary file in the same directory, synced, then renamed
    over ``path``; a power cut leaves the old file or the new one, whole. A symlink at ``path`` is replaced,
    never followed.

    The temporary is named ``.<name>.*.tmp`` at random (a reader matching ``*<suffix>`` never sees it, and two
    writers never share one), or ``temporary_name`` where one writer owns the directory: what a kill left under
    that name is removed, never followed, and the next write takes its place, so kills leave no strays."""
    directory = os.path.dirname(path) or "."
    if temporary_name is None:
        import tempfile  # pylint: disable=import-outside-toplevel

        handle, temporary = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    else:
        temporary = os.path.join(directory, check_component(temporary_name))
        try:
            os.unlink(temporary)  # a kill's leftover (a symlink planted there is removed, not followed)
        except FileNotFoundError:
            pass
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise
