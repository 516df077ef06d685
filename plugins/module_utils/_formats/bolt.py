# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""A read-only reader of bbolt databases (BuildKit's and containerd's), standard library only.

File format (bbolt, little-endian throughout)::

    page       = id u64 | flags u16 | count u16 | overflow u32 | data...   (spans 1 + overflow pages)
    meta       = magic u32 (0xED0CDAED) | version u32 (2) | page_size u32 | flags u32
                 | root bucket (root page u64, sequence u64) | freelist u64 | high water page u64
                 | txid u64 | checksum u64 (FNV-1a 64 of the 56 bytes before it)
    branch     = count x (pos u32 | ksize u32 | page u64); pos is relative to the element
    leaf       = count x (flags u32 | pos u32 | ksize u32 | vsize u32); flags & 1: the value is a bucket
    bucket     = root page u64 | sequence u64 [| an inline page when root page is 0]

Pages 0 and 1 are meta pages; the valid one with the higher txid is the current state, so a torn write of
one falls back to the other. Only pages reachable from the current root are read: keys deleted in an
earlier transaction, which stay readable in free pages, are never seen.

Hostile files give ``BoltError`` with a message, never another exception, a loop or unbounded work: every
page id is checked against the file and the meta's high water mark, every element against its page, a
page reached twice in one bucket's tree is a cycle, and nesting is bounded.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
import struct
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

MAGIC = 0xED0CDAED
VERSION = 2
BRANCH_PAGE = 0x01
LEAF_PAGE = 0x02
META_PAGE = 0x04
BUCKET_LEAF_FLAG = 0x01

PAGE_HEADER = struct.Struct("<QHHI")  # id, flags, count, overflow
META = struct.Struct("<IIIIQQQQQQ")  # magic, version, page size, flags, root, sequence, freelist, high water, txid, checksum
BRANCH_ELEMENT = struct.Struct("<IIQ")  # pos, ksize, page id
LEAF_ELEMENT = struct.Struct("<IIII")  # flags, pos, ksize, vsize
BUCKET_HEADER = struct.Struct("<QQ")  # root page id, sequence

MIN_PAGE_SIZE = 512
MAX_PAGE_SIZE = 1 << 20
MAX_NESTING = 64  # buckets inside buckets; real schemas nest fewer than 10 deep
MAX_TREE_DEPTH = 64  # branch levels inside one bucket's tree
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1

Value = Union[bytes, "Bucket"]
Page = Union[bytes, memoryview]  # a page of the mapping, or an inline bucket's bytes


class BoltError(Exception):
    """The file is not a bbolt database this reader can trust, with a message saying where and why."""


def fnv1a64(data: bytes) -> int:
    value = _FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & _MASK64
    return value


@dataclass(frozen=True)
class Meta:
    page: int  # 0 or 1
    page_size: int
    root: int
    freelist: int
    high_water: int  # pages below this id are in use by the file
    txid: int


def _parse_meta(data: bytes, offset: int, page: int) -> Tuple[Optional[Meta], str]:
    """The meta stored in the page at ``offset``, or None with the reason it is not valid."""
    start = offset + PAGE_HEADER.size
    if len(data) < start + META.size:
        return None, "meta page %d is truncated" % page
    _pid, flags, _count, _overflow = PAGE_HEADER.unpack_from(data, offset)
    magic, version, page_size, _flags, root, _seq, freelist, high_water, txid, checksum = META.unpack_from(data, start)
    if magic != MAGIC:
        return None, "meta page %d has no bbolt magic" % page
    if version != VERSION:
        return None, "meta page %d has bbolt version %d, not %d" % (page, version, VERSION)
    if fnv1a64(bytes(data[start:start + META.size - 8])) != checksum:
        return None, "meta page %d fails its checksum (a torn write?)" % page
    if not flags & META_PAGE:
        return None, "page %d is not flagged as a meta page" % page
    if page_size < MIN_PAGE_SIZE or page_size > MAX_PAGE_SIZE or page_size & (page_size - 1):
        return None, "meta page %d gives an impossible page size %d" % (page, page_size)
    return Meta(page, page_size, root, freelist, high_water, txid), ""


def _choose_meta(data: bytes) -> Meta:
    if len(data) < PAGE_HEADER.size + META.size:
        raise BoltError("too short to be a bbolt database (%d bytes)" % len(data))
    first, why_first = _parse_meta(data, 0, 0)
    sizes = [first.page_size] if first else []
    sizes += [size for size in (4096, 8192, 16384, 65536, 2048, 1024, 512, 32768) if size not in sizes]
    second, why_second = None, "meta page 1 is beyond the end of the file"
    for size in sizes:  # page 1 sits one page in; when page 0 is torn, its page size is a guess
        if len(data) >= size + PAGE_HEADER.size + META.size:
            second, why_second = _parse_meta(data, size, 1)
            if second is not None and second.page_size == size:
                break
            second = None
    candidates = [meta for meta in (first, second) if meta is not None]
    if not candidates:
        raise BoltError("no valid meta page: %s; %s" % (why_first, why_second))
    return max(candidates, key=lambda meta: meta.txid)


READ_ATTEMPTS = 5  # reads of a database that its owner keeps committing to, before it counts as unreadable
RETRY_PAUSE = 0.005  # seconds before the third read, four times longer before each later one

Result = TypeVar("Result")


class BusyDatabase(BoltError):
    """Every read of a database overlapped a commit of its owner."""


def read_steadily(open_db: Callable[[], "BoltFile"], read: Callable[["BoltFile"], Result],
                  undo: Callable[[], None] = lambda: None, attempts: int = READ_ATTEMPTS) -> Result:
    """``read(db)`` over one committed state of a database that its owner may be writing.

    This reader takes no lock and the owner does not know it is there, so bbolt may reuse the pages of the
    state being read as soon as a second commit follows it (a busy containerd commits every few
    milliseconds). The first read goes through the mapping and is kept only if the meta pages still name the
    transaction it began with; an error it raised is not believed otherwise, since it may come from the torn
    state. Each later read works on a private copy taken while no commit happened (``steady_copy``), so what
    it finds is the database's; from the third read on, a short pause comes first. ``undo()`` takes back
    what a discarded read did.
    """
    return read_together_steadily([open_db], lambda databases: read(databases[0]), undo, attempts)


def read_together_steadily(open_each: Sequence[Callable[[], "BoltFile"]],
                           read: Callable[[List["BoltFile"]], Result], undo: Callable[[], None] = lambda: None,
                           attempts: int = READ_ATTEMPTS) -> Result:
    """``read(databases)`` over one committed state of each database, as ``read_steadily`` reads one: the
    databases are opened in order (an error opening one is raised, those opened before are closed), and a
    read that a commit to any of them overlapped is done again. The states are each database's own: bbolt
    has no transaction across files."""
    names = "bolt databases"
    for attempt in range(attempts):
        if attempt > 1:
            time.sleep(RETRY_PAUSE * 4 ** (attempt - 2))  # out of a burst of commits
        lives: List[BoltFile] = []
        try:
            for open_db in open_each:
                lives.append(open_db())
            names = ", ".join(live.name for live in lives)
            copies: List[BoltFile] = []
            for live in lives if attempt else ():
                copy = live.steady_copy()
                if copy is None:
                    break
                copies.append(copy)
            if len(copies) < len(lives) and attempt:
                continue  # a commit overlapped a copy: nothing was read
            try:
                result = read(copies or lives)
            except Exception:  # pylint: disable=broad-except  # judged below: raised again unless torn
                if copies or not any(live.changed_since_open() for live in lives):
                    raise
            else:
                if copies or not any(live.changed_since_open() for live in lives):
                    return result
        finally:
            for live in lives:
                live.close()
        undo()
    raise BusyDatabase("%s changed while it was read, %d times in a row (its owner is busy writing it); "
                       "read it again later" % (names, attempts))


class BoltFile:
    """An open bbolt database; ``root()`` is its top-level bucket."""

    def __init__(self, data: Union[bytes, mmap.mmap], name: str = "bolt database") -> None:
        self._data = data
        self.name = name
        self.leaves: Dict[int, Dict[bytes, Value]] = {}  # leaf pages met by look-ups, read once
        self.meta = _choose_meta(data)
        self.pages = len(data) // self.meta.page_size
        if self.meta.high_water > self.pages:
            # bbolt grows the file before it commits a meta that uses the pages: fewer means truncation
            raise BoltError("%s is truncated: the meta uses %d pages, the file holds %d"
                            % (name, self.meta.high_water, self.pages))

    @classmethod
    def from_fd(cls, fd: int, name: str) -> "BoltFile":
        """Map an open regular file read-only (the caller keeps and closes ``fd``)."""
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BoltError("%s is not a regular file" % name)
        if info.st_size == 0:
            raise BoltError("%s is empty" % name)
        try:
            data = mmap.mmap(fd, info.st_size, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise BoltError("%s cannot be mapped: %s" % (name, exc)) from exc
        return cls(data, name)

    @classmethod
    def open_at(cls, dir_fd: int, file_name: str, name: str) -> "BoltFile":
        """Open ``file_name`` below a directory descriptor without following a symlink."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(file_name, flags, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise BoltError("%s is a symlink (not followed)" % name) from exc
            raise
        try:
            return cls.from_fd(fd, name)
        finally:
            os.close(fd)

    def steady_copy(self) -> Optional["BoltFile"]:
        """A private copy of the committed state the file holds now, or None when a commit overlapped the copy.
        The pages of the latest state stay untouched until the owner's next commit, so an unchanged meta
        around the copy means a whole state was copied."""
        try:
            before = _choose_meta(self._data).txid
            data = bytes(self._data)
            if _choose_meta(self._data).txid != before:
                return None
        except BoltError:  # the meta pages are being written
            return None
        return BoltFile(data, self.name)

    def changed_since_open(self) -> bool:
        """Whether the owner has committed since this file was opened (the mapping shows its writes)."""
        try:
            return _choose_meta(self._data).txid != self.meta.txid
        except BoltError:  # the meta pages are being written: a commit is under way
            return True

    def close(self) -> None:
        if isinstance(self._data, mmap.mmap):
            try:
                self._data.close()
            except BufferError:  # views of its pages are still referenced (a traceback): unmapped when they go
                pass

    def __enter__(self) -> "BoltFile":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def root(self) -> "Bucket":
        return Bucket(self, self.meta.root, None, ())

    # -- pages -------------------------------------------------------------
    def page(self, page_id: int, where: "Describe") -> memoryview:
        """The bytes of one page with its overflow pages, checked against the file; ``where()`` says who points
        at it, when that is needed for an error."""
        if page_id < 2 or page_id >= self.meta.high_water:
            raise BoltError("%s: %s points at page %d, outside the database (2..%d)"
                            % (self.name, where(), page_id, self.meta.high_water - 1))
        offset = page_id * self.meta.page_size
        stored_id, _flags, _count, overflow = PAGE_HEADER.unpack_from(self._data, offset)
        if stored_id != page_id:
            raise BoltError("%s: page %d says it is page %d" % (self.name, page_id, stored_id))
        end_page = page_id + 1 + overflow
        if end_page > self.meta.high_water:
            raise BoltError("%s: page %d overflows past the end of the database (%d more pages)"
                            % (self.name, page_id, overflow))
        return memoryview(self._data)[offset:end_page * self.meta.page_size]


Describe = Callable[[], str]  # where a page lies, for an error message; built only when one is raised


def _elements(page: memoryview, size: int, what: Describe) -> Tuple[int, int]:
    """(flags, count) of a page whose ``count`` elements of ``size`` bytes must fit in it."""
    if len(page) < PAGE_HEADER.size:
        raise BoltError("%s is shorter than a page header" % what())
    _pid, flags, count, _overflow = PAGE_HEADER.unpack_from(page, 0)
    if PAGE_HEADER.size + count * size > len(page):
        raise BoltError("%s claims %d elements, more than it can hold" % (what(), count))
    return flags, count


def _first_of_each(items: List[Tuple[bytes, Value]]) -> Dict[bytes, Value]:
    """Keys to values; where a damaged page repeats a key, the first stands (as a search in key order finds it)."""
    return dict(reversed(items))


_LEAF_HEADERS: Dict[int, struct.Struct] = {}


def _leaf_headers(count: int) -> struct.Struct:
    """The element headers of a leaf page with ``count`` elements, as one struct (flags, pos, ksize, vsize each)."""
    headers = _LEAF_HEADERS.get(count)
    if headers is None:
        headers = _LEAF_HEADERS[count] = struct.Struct("<%dI" % (4 * count))
    return headers


class Bucket:
    """A bucket: keys in order, each with a bytes value or a nested ``Bucket``."""

    __slots__ = ("db", "root_page", "inline", "path", "_one_leaf")

    def __init__(self, db: BoltFile, root: int, inline: Optional[bytes], path: Tuple[bytes, ...]) -> None:
        if len(path) > MAX_NESTING:
            raise BoltError("%s: buckets nested deeper than %d (a loop?)" % (db.name, MAX_NESTING))
        self.db = db
        self.root_page = root
        self.inline = inline
        self.path = path
        # the keys of a bucket held in one leaf (inline, or a root page that is a leaf), once a look-up read them
        self._one_leaf: Optional[Dict[bytes, Value]] = None

    @property
    def name(self) -> str:
        return "/".join(part.decode("utf-8", "replace") for part in self.path) or "<root>"

    def _where(self) -> str:
        return "%s: bucket %s" % (self.db.name, self.name)

    def _inline_what(self) -> str:
        return "%s (inline)" % self._where()

    def _page_what(self, page_id: int) -> Describe:
        return lambda: "%s, page %d" % (self._where(), page_id)

    # -- iteration ---------------------------------------------------------
    def keys(self) -> Iterator[bytes]:
        """Every key, in key order, without building the values' nested buckets."""
        for page, what in self._pages(set()):
            for key, _value in self._leaf_items(page, what, keys_only=True):
                yield key

    def items(self, seen: Optional[set] = None) -> Iterator[Tuple[bytes, Value]]:
        """Every key with its value (bytes) or nested bucket, in key order.

        ``seen`` (page ids) may be shared across the buckets of one walk: in a sound file every page belongs
        to one bucket's tree, so a page met twice anywhere is a cycle.
        """
        for page, what in self._pages(set() if seen is None else seen):
            yield from self._leaf_items(page, what)

    def _pages(self, seen: set) -> Iterator[Tuple[Page, Describe]]:
        """This bucket's leaf pages in key order (an inline bucket's one), each with who to blame for it."""
        if self.inline is not None:
            yield self.inline, self._inline_what
            return
        for page_id, page in self._leaves(seen):
            yield page, self._page_what(page_id)

    def _leaves(self, seen: set) -> Iterator[Tuple[int, memoryview]]:
        """This bucket's leaf pages in key order, with their ids (a tree bucket's: not inline)."""
        stack = [(self.root_page, 0)]  # depth-first, children pushed in reverse to keep key order
        while stack:
            page_id, depth = stack.pop()
            if page_id in seen:
                raise BoltError("%s reaches page %d twice (a cycle)" % (self._where(), page_id))
            if depth > MAX_TREE_DEPTH:
                raise BoltError("%s is more than %d levels deep" % (self._where(), MAX_TREE_DEPTH))
            seen.add(page_id)
            page = self.db.page(page_id, self._where)
            flags = PAGE_HEADER.unpack_from(page, 0)[1]
            if flags & BRANCH_PAGE:
                children = [child for _key, child in self._branch_elements(page, page_id)]
                stack.extend((child, depth + 1) for child in reversed(children))
            elif flags & LEAF_PAGE:
                yield page_id, page
            else:
                raise BoltError("%s: page %d is neither a branch nor a leaf (flags %#x)"
                                % (self._where(), page_id, flags))

    def _branch_elements(self, page: memoryview, page_id: int) -> List[Tuple[bytes, int]]:
        def what() -> str:
            return "%s, branch page %d" % (self._where(), page_id)

        _flags, count = _elements(page, BRANCH_ELEMENT.size, what)
        result = []
        unpack = BRANCH_ELEMENT.unpack_from
        end = len(page)
        for index in range(count):
            at = PAGE_HEADER.size + index * BRANCH_ELEMENT.size
            pos, ksize, child = unpack(page, at)
            start = at + pos
            if start + ksize > end:
                raise BoltError("%s, key %d lies outside its page" % (what(), index))
            result.append((bytes(page[start:start + ksize]), child))
        return result

    def _leaf_items(self, page: Page, what: Describe, keys_only: bool = False) -> List[Tuple[bytes, Value]]:
        """The keys and values of one leaf page, in order: the page is copied once and its element headers
        unpacked in one call, so each key or value costs one slice. With ``keys_only``, each value is b""
        (nested buckets are not built), every element still checked against its page."""
        flags, count = _elements(page, LEAF_ELEMENT.size, what)
        if not flags & LEAF_PAGE:
            raise BoltError("%s is not a leaf page (flags %#x)" % (what(), flags))
        data = bytes(page)
        end = len(data)
        headers = iter(_leaf_headers(count).unpack_from(data, PAGE_HEADER.size))
        found: List[Tuple[bytes, Value]] = []
        add = found.append
        at = PAGE_HEADER.size
        for element_flags, pos, ksize, vsize in zip(headers, headers, headers, headers):
            key_at = at + pos
            value_at = key_at + ksize
            value_end = value_at + vsize
            if value_end > end:
                self._outside(data, at, value_at, element_flags, what)
            if keys_only:
                add((data[key_at:value_at], b""))
            elif element_flags & BUCKET_LEAF_FLAG:
                key = data[key_at:value_at]
                add((key, self._child(data, value_at, vsize, key, what)))
            else:
                add((data[key_at:value_at], data[value_at:value_end]))
            at += 16  # LEAF_ELEMENT.size
        return found

    @staticmethod
    def _outside(data: bytes, at: int, value_at: int, element_flags: int, what: Describe) -> None:
        """Raise the error for an element whose key or value runs past the end of its page."""
        index = (at - PAGE_HEADER.size) // LEAF_ELEMENT.size
        if value_at > len(data):
            raise BoltError("%s, key %d lies outside its page" % (what(), index))
        if element_flags & BUCKET_LEAF_FLAG:
            key_at = value_at - LEAF_ELEMENT.unpack_from(data, at)[2]
            raise BoltError("%s: bucket %r has a header that does not fit" % (what(), data[key_at:value_at]))
        raise BoltError("%s, value of key %d lies outside its page" % (what(), index))

    def _child(self, data: bytes, start: int, size: int, key: bytes, what: Describe) -> "Bucket":
        if size < BUCKET_HEADER.size:
            raise BoltError("%s: bucket %r has a header that does not fit" % (what(), key))
        root, _sequence = BUCKET_HEADER.unpack_from(data, start)
        path = self.path + (key,)
        if root == 0:
            return Bucket(self.db, 0, data[start + BUCKET_HEADER.size:start + size], path)
        return Bucket(self.db, root, None, path)

    # -- look-ups ----------------------------------------------------------
    def get(self, key: bytes) -> Optional[Value]:
        """The value or bucket under ``key``, or None; a binary search down the tree to a leaf, whose keys
        are read (and checked, all of them) once."""
        if self.inline is not None:
            if self._one_leaf is None:
                self._one_leaf = _first_of_each(self._leaf_items(self.inline, self._inline_what))
            return self._one_leaf.get(key)
        seen = set()
        page_id = self.root_page
        while True:
            if page_id in seen or len(seen) > MAX_TREE_DEPTH:
                raise BoltError("%s: the search for %r loops or is too deep" % (self._where(), key))
            seen.add(page_id)
            leaf = self.db.leaves.get(page_id)
            if leaf is None:
                page = self.db.page(page_id, self._where)
                flags = PAGE_HEADER.unpack_from(page, 0)[1]
                if flags & LEAF_PAGE:
                    leaf = self.db.leaves[page_id] = _first_of_each(self._leaf_items(page, self._page_what(page_id)))
                elif not flags & BRANCH_PAGE:
                    raise BoltError("%s: page %d is neither a branch nor a leaf (flags %#x)"
                                    % (self._where(), page_id, flags))
            if leaf is not None:
                if page_id == self.root_page:  # a bucket of one leaf: its later look-ups need no search
                    self._one_leaf = leaf
                return leaf.get(key)
            elements = self._branch_elements(page, page_id)
            if not elements:
                return None
            low, high = 0, len(elements) - 1  # the last element whose key is <= key (else the first)
            while low < high:
                middle = (low + high + 1) // 2
                if elements[middle][0] <= key:
                    low = middle
                else:
                    high = middle - 1
            page_id = elements[low][1]

    def bucket(self, *names: bytes) -> Optional["Bucket"]:
        """A nested bucket by path, or None where a name is missing; a plain value there is an error."""
        current = self
        for name in names:
            known = current._one_leaf  # a bucket of one leaf read before: no search
            value = current.get(name) if known is None else known.get(name)
            if value is None:
                return None
            if not isinstance(value, Bucket):
                raise BoltError("%s: %r is a value, not a bucket" % (current._where(), name))
            current = value
        return current

    def value(self, key: bytes) -> Optional[bytes]:
        """A plain value, or None when absent; a bucket there is an error."""
        known = self._one_leaf  # a bucket of one leaf read before: no search
        found = self.get(key) if known is None else known.get(key)
        if found.__class__ is Bucket:
            raise BoltError("%s: %r is a bucket, not a value" % (self._where(), key))
        return found

    def buckets(self) -> Iterator[Tuple[bytes, "Bucket"]]:
        """The nested buckets only."""
        for key, value in self.items():
            if isinstance(value, Bucket):
                yield key, value

    def walk(self) -> Iterator[Tuple[Tuple[bytes, ...], Optional[bytes]]]:
        """Every path below this bucket: a bucket as (path, None), a value as (path, bytes).

        A bucket's own keys come before those of the buckets nested in it.
        """
        stack: List[Bucket] = [self]
        seen: set = set()
        while stack:
            bucket = stack.pop()
            nested = []
            for key, value in bucket.items(seen):
                if isinstance(value, Bucket):
                    yield value.path, None
                    nested.append(value)
                else:
                    yield bucket.path + (key,), value
            stack.extend(reversed(nested))
