from __future__ import annotations

import errno
import os

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import read_record_at


@pytest.fixture(name="parent")
def parent_fixture(tmp_path):
    record = tmp_path / "record"
    record.mkdir()
    (record / "diff").write_text("sha256:" + "a" * 64)
    (record / "empty").write_text("")
    (record / "large").write_bytes(b"x" * 20000)
    (tmp_path / "outside").write_text("secret")
    os.symlink(str(tmp_path / "outside"), str(record / "linked"))
    os.mkfifo(str(record / "fifo"))
    (record / "subdir").mkdir()
    os.symlink("record", str(tmp_path / "record-link"))
    fd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def errno_of(read):
    assert isinstance(read, OSError), read
    return read.errno


def test_each_file_of_a_record_is_read_in_the_order_asked(parent):
    diff, empty, large = read_record_at(parent, "record", ("diff", "empty", "large"))
    assert diff == b"sha256:" + b"a" * 64
    assert empty == b""
    assert large == b"x" * 20000


def test_a_missing_file_gives_its_error_and_the_others_are_still_read(parent):
    missing, diff = read_record_at(parent, "record", ("parent", "diff"))
    assert errno_of(missing) == errno.ENOENT
    assert diff.startswith(b"sha256:")


def test_a_symlink_a_fifo_or_a_directory_is_never_read_as_a_file(parent):
    linked, fifo, subdir = read_record_at(parent, "record", ("linked", "fifo", "subdir"))
    assert errno_of(linked) == errno.ELOOP
    assert errno_of(fifo) == errno.EINVAL
    assert errno_of(subdir) == errno.EINVAL


def test_a_record_directory_that_is_a_symlink_is_not_followed(parent):
    with pytest.raises(OSError) as raised:
        read_record_at(parent, "record-link", ("diff",))
    assert raised.value.errno in (errno.ELOOP, errno.ENOTDIR)
