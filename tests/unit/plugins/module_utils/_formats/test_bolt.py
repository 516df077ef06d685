"""The bbolt reader: on the databases the engines wrote, on written ones of every page shape, and on broken ones."""

from __future__ import annotations

import json
import os
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.strata.overlay2.plugins.module_utils._formats import bolt as _bolt
from ansible_collections.strata.overlay2.plugins.module_utils._formats.bolt import (
    BoltError,
    BoltFile,
    Bucket,
    BusyDatabase,
    PAGE_HEADER,
    fnv1a64,
    read_steadily,
    read_together_steadily,
)
from tests.support.boltwriter import bolt_bytes

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))), "fixtures", "bolt")
ENGINES = sorted(os.listdir(FIXTURES))
DATABASES = ("containerdmeta.db", "metadata_v2.db", "snapshots.db")


def read(data: bytes) -> BoltFile:
    return BoltFile(data, "test.db")


def as_tree(bucket: Bucket) -> dict:
    return {key: as_tree(value) if isinstance(value, Bucket) else value for key, value in bucket.items()}


def engine_db(engine: str, name: str) -> bytes:
    with open(os.path.join(FIXTURES, engine, name), "rb") as handle:
        return handle.read()


def engine_facts(engine: str) -> dict:
    with open(os.path.join(FIXTURES, engine, "engine.json"), encoding="utf-8") as handle:
        return json.load(handle)


# -- the engines' own files -----------------------------------------------------------------------
def test_fixtures_come_from_both_engines_of_the_test_bed():
    assert {engine_facts(engine)["engine"].rsplit(".", 1)[0] for engine in ENGINES} == {"20.10", "28.5"}


@pytest.mark.parametrize("engine", ENGINES)
def test_every_build_cache_record_the_engine_listed_is_a_record_and_a_lease(engine):
    listed = set(engine_facts(engine)["build_cache_records"])
    main = read(engine_db(engine, "metadata_v2.db")).root().bucket(b"_main")
    leases = read(engine_db(engine, "containerdmeta.db")).root().bucket(b"v1", b"buildkit", b"leases")
    assert len(listed) == 7 and listed <= {key.decode() for key, _value in main.items()}
    assert listed <= {key.decode() for key, _value in leases.items()}


@pytest.mark.parametrize("engine", ENGINES)
def test_every_committed_snapshot_names_a_directory_the_store_has(engine):
    snapshots = read(engine_db(engine, "snapshots.db")).root()
    committed = {bucket.value(b"committed").decode() for _key, bucket in snapshots.buckets()
                 if bucket.value(b"committed")}
    exported = {bucket.value(b"chainid").decode() for _key, bucket in snapshots.buckets() if bucket.value(b"chainid")}
    facts = engine_facts(engine)
    assert len(committed) == 3 and committed <= set(facts["dirs"])
    assert exported == set(facts["chains"])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", DATABASES)
def test_get_finds_every_key_that_iteration_finds(engine, name):
    db = read(engine_db(engine, name))
    for path, value in db.root().walk():
        parent = db.root().bucket(*path[:-1])
        found = parent.get(path[-1])
        assert (isinstance(found, Bucket) if value is None else found == value), path
    assert db.root().get(b"\xff no such key") is None


@pytest.mark.parametrize("engine", ENGINES)
def test_a_torn_newest_meta_page_falls_back_to_the_older_one(engine):
    data = bytearray(engine_db(engine, "snapshots.db"))
    newest = read(bytes(data)).meta
    page_size = newest.page_size
    data[newest.page * page_size + PAGE_HEADER.size + 40] ^= 0xFF  # inside txid: the checksum no longer matches
    fallback = read(bytes(data)).meta
    assert fallback.page != newest.page and fallback.txid == newest.txid - 1


# -- written files: every page shape ---------------------------------------------------------------
TREE = {
    b"inline": {b"a": b"1", b"b": b""},
    b"wide": {b"k%04d" % i: b"v%d" % i for i in range(300)},
    b"deep": {b"one": {b"two": {b"three": {b"leaf": b"x"}}}},
    b"big": {b"blob": os.urandom(3 * 4096 + 17), b"small": b"s"},
    b"empty": {},
}


def test_written_trees_read_back_exactly_with_branches_inline_buckets_and_overflow():
    data = bolt_bytes(TREE, fanout=16)
    assert as_tree(read(data).root()) == TREE
    wide = read(data).root().bucket(b"wide")
    assert wide.get(b"k0299") == b"v299" and wide.get(b"k0300") is None and wide.get(b"a") is None
    assert read(data).root().bucket(b"inline").inline is not None


def test_the_older_tree_is_read_when_the_newer_meta_is_torn():
    data = bytearray(bolt_bytes({b"new": {b"k": b"v"}}, previous={b"old": {b"k": b"v"}}))
    assert list(as_tree(read(bytes(data)).root())) == [b"new"]
    data[4096 + PAGE_HEADER.size] ^= 1  # meta page 1's magic
    assert list(as_tree(read(bytes(data)).root())) == [b"old"]


def test_keys_are_the_keys_that_iteration_finds_in_every_page_shape():
    root = read(bolt_bytes(TREE, fanout=16)).root()
    for name in TREE:
        bucket = root.bucket(name)
        assert list(bucket.keys()) == [key for key, _value in bucket.items()]
    assert list(root.keys()) == sorted(TREE)  # bbolt keeps keys in byte order


def test_a_value_where_a_bucket_is_expected_is_a_clear_error():
    root = read(bolt_bytes({b"v1": {b"leases": b"not a bucket"}})).root()
    with pytest.raises(BoltError, match="is a value, not a bucket"):
        root.bucket(b"v1", b"leases")


# -- hostile files --------------------------------------------------------------------------------
def page_of(data: bytearray, page_id: int, page_size: int = 4096) -> int:
    return page_id * page_size


@pytest.mark.parametrize("data, message", [
    (b"", "too short"),
    (b"\0" * 8192, "no valid meta page"),
    (bolt_bytes({b"a": {b"k": b"v"}})[:4096 * 3], "truncated"),
])
def test_files_that_are_not_whole_databases_are_refused(data, message):
    with pytest.raises(BoltError, match=message):
        as_tree(read(data).root())


def rewrite_root_page(data: bytearray, mutate) -> bytes:
    """Apply ``mutate(data, root_page_offset)`` to the root page the newest meta names."""
    meta = read(bytes(data)).meta
    mutate(data, meta.root * meta.page_size)
    return bytes(data)


def test_a_page_id_out_of_range_is_refused():
    def point_outside(data, offset):  # the first element of a leaf holding buckets: its bucket's root page
        struct.pack_into("<Q", data, offset, 999)  # the page's own id no longer matches
    data = rewrite_root_page(bytearray(bolt_bytes({b"a": {b"k%03d" % i: b"v" * 100 for i in range(60)}})),
                             point_outside)
    with pytest.raises(BoltError, match="says it is page 999"):
        as_tree(read(data).root())


def test_a_branch_that_points_at_itself_is_a_cycle_not_a_hang():
    data = bytearray(bolt_bytes({b"k%04d" % i: b"v" for i in range(200)}, fanout=8))
    meta = read(bytes(data)).meta
    offset = meta.root * meta.page_size
    assert PAGE_HEADER.unpack_from(data, offset)[1] == 0x01  # the root is a branch page
    struct.pack_into("<Q", data, offset + PAGE_HEADER.size + 8, meta.root)  # its first child: itself
    started = time.monotonic()
    with pytest.raises(BoltError, match="twice|loops"):
        as_tree(read(bytes(data)).root())
    with pytest.raises(BoltError, match="twice|loops"):
        read(bytes(data)).root().get(b"k0000")
    assert time.monotonic() - started < 5


def test_an_absurd_element_count_is_refused():
    data = bytearray(bolt_bytes({b"a": {b"k": b"v" * 2000}}))
    meta = read(bytes(data)).meta
    struct.pack_into("<H", data, meta.root * meta.page_size + 10, 65535)
    with pytest.raises(BoltError, match="more than it can hold"):
        as_tree(read(bytes(data)).root())


@pytest.mark.parametrize("tree, field, message", [
    ({b"k": b"v"}, 1, "key 0 lies outside its page"),  # pos: the key starts past the page
    ({b"k": b"v"}, 3, "value of key 0 lies outside its page"),  # vsize: the value runs past the page
    ({b"a": {b"k": b"v"}}, 3, "bucket b'a' has a header that does not fit"),  # an inline bucket past the page
])
def test_an_element_that_runs_past_its_page_is_refused_and_named(tree, field, message):
    def stretch(data, offset):  # the first leaf element's header: flags, pos, ksize, vsize (u32 each)
        struct.pack_into("<I", data, offset + PAGE_HEADER.size + 4 * field, 1 << 20)
    data = rewrite_root_page(bytearray(bolt_bytes(tree)), stretch)
    with pytest.raises(BoltError, match=message):
        as_tree(read(data).root())


def test_the_first_of_a_repeated_key_is_the_one_found():
    def repeat(data, offset):  # the second element's key takes the first's place: both are b"a"
        first_pos, first_ksize = struct.unpack_from("<II", data, offset + PAGE_HEADER.size + 4)
        struct.pack_into("<II", data, offset + PAGE_HEADER.size + 16 + 4, first_pos - 16, first_ksize)
    data = rewrite_root_page(bytearray(bolt_bytes({b"a": b"first", b"b": b"second"})), repeat)
    root = read(data).root()
    assert [key for key, _value in root.items()] == [b"a", b"a"]
    assert root.get(b"a") == b"first"


def test_the_checksum_is_fnv1a_64():
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(engine=st.sampled_from(ENGINES), name=st.sampled_from(DATABASES),
       flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), min_size=1, max_size=12))
def test_any_corruption_of_an_engine_database_gives_an_answer_or_a_bolt_error(engine, name, flips):
    data = bytearray(engine_db(engine, name))
    for position, mask in flips:
        data[position % len(data)] ^= mask
    try:
        db = read(bytes(data))
        for _path, _value in db.root().walk():
            pass
    except BoltError:
        pass


# -- reading a database its owner is writing ----------------------------------------------------------------
class Owner:
    """Stands for containerd or BuildKit: commits a new state into the file in place, as bbolt does, while
    the reader has it open (the mapping shows the writes)."""

    def __init__(self, path):
        self.path = path
        self.txid = 2
        self.commit(b"first")

    def commit(self, value):
        self.txid += 2
        data = bolt_bytes({b"records": {b"key": value}}, txid=self.txid)
        with open(self.path, "r+b" if os.path.exists(self.path) else "wb") as handle:
            handle.write(data)

    def open(self):
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return BoltFile.from_fd(fd, self.path)
        finally:
            os.close(fd)


def value_of(db):
    return db.root().bucket(b"records").value(b"key")


def test_a_read_that_a_commit_overlapped_is_taken_back_and_done_again(tmp_path):
    owner, seen, undone = Owner(str(tmp_path / "meta.db")), [], []

    def read(db):
        seen.append(value_of(db))
        if len(seen) == 1:
            owner.commit(b"second")  # the owner commits while the first read is under way
        return value_of(db)

    assert read_steadily(owner.open, read, lambda: undone.append(True)) == b"second"
    assert seen == [b"first", b"second"] and undone == [True]


def test_an_error_from_a_torn_read_is_not_believed_but_one_from_a_steady_read_is(tmp_path):
    owner, calls = Owner(str(tmp_path / "meta.db")), []

    def torn_once(db):
        calls.append(1)
        if len(calls) == 1:
            owner.commit(b"second")
            raise BoltError("a page that the commit reused")
        return value_of(db)

    assert read_steadily(owner.open, torn_once) == b"second" and len(calls) == 2

    def always_fails(_db):
        calls.append(1)
        raise BoltError("really damaged")

    del calls[:]
    with pytest.raises(BoltError, match="really damaged"):
        read_steadily(owner.open, always_fails)
    assert len(calls) == 1


def test_a_database_that_changes_under_every_read_is_busy_not_read(tmp_path, monkeypatch):
    owner = Owner(str(tmp_path / "meta.db"))
    monkeypatch.setattr(_bolt, "RETRY_PAUSE", 0)

    def read(db):
        owner.commit(b"again")
        return value_of(db)

    monkeypatch.setattr(BoltFile, "steady_copy", lambda self: None)  # a commit during every copy, too
    with pytest.raises(BusyDatabase, match="changed while it was read, 5 times in a row"):
        read_steadily(owner.open, read)


def test_databases_read_together_are_read_again_when_any_of_them_was_committed_to(tmp_path):
    first, second, seen = Owner(str(tmp_path / "a.db")), Owner(str(tmp_path / "b.db")), []

    def read(databases):
        seen.append([value_of(db) for db in databases])
        if len(seen) == 1:
            second.commit(b"second")
        return seen[-1]

    assert read_together_steadily([first.open, second.open], read) == [b"first", b"second"]
    assert seen == [[b"first", b"first"], [b"first", b"second"]]


def test_no_database_is_copied_after_a_copy_that_a_commit_overlapped(tmp_path, monkeypatch):
    first, second, copied = Owner(str(tmp_path / "a.db")), Owner(str(tmp_path / "b.db")), []
    monkeypatch.setattr(_bolt, "RETRY_PAUSE", 0)
    steady_copy = BoltFile.steady_copy

    def copy_once_overlapped(self):
        copied.append(os.path.basename(self.name))
        return None if copied == ["a.db"] else steady_copy(self)

    def read(databases):
        if len(copied) == 0:
            first.commit(b"again")  # the first read overlaps a commit: the next works on copies
        return [value_of(db) for db in databases]

    monkeypatch.setattr(BoltFile, "steady_copy", copy_once_overlapped)
    assert read_together_steadily([first.open, second.open], read) == [b"again", b"first"]
    assert copied == ["a.db", "a.db", "b.db"]  # the second database was not copied in the failed attempt


def test_databases_opened_before_one_that_cannot_be_are_closed(tmp_path, monkeypatch):
    owner, closed = Owner(str(tmp_path / "a.db")), []
    close = BoltFile.close
    monkeypatch.setattr(BoltFile, "close", lambda self: (closed.append(self.name), close(self)))
    with pytest.raises(FileNotFoundError):
        read_together_steadily([owner.open, Owner(str(tmp_path / "b.db")).open,
                                lambda: os.open(str(tmp_path / "gone.db"), os.O_RDONLY)], lambda databases: None)
    assert closed == [owner.path, str(tmp_path / "b.db")]


def test_a_steady_copy_is_the_state_committed_when_it_was_taken(tmp_path):
    owner = Owner(str(tmp_path / "meta.db"))
    with owner.open() as live:
        copy = live.steady_copy()
        owner.commit(b"second")
        assert live.changed_since_open() and value_of(copy) == b"first"
        assert live.steady_copy() is not None and value_of(live.steady_copy()) == b"second"
