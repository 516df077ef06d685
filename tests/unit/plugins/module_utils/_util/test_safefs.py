from __future__ import annotations

import errno
import os

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import read_record_at, replace_file


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


def test_a_replaced_file_is_written_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    replace_file(str(target), "new", mode=0o640)
    assert target.read_text() == "new"
    assert os.stat(str(target)).st_mode & 0o777 == 0o640
    assert sorted(os.listdir(str(tmp_path))) == ["report.json"]


def test_a_symlink_at_the_path_is_replaced_never_written_through(tmp_path):
    (tmp_path / "outside").write_text("secret")
    os.symlink(str(tmp_path / "outside"), str(tmp_path / "report.json"))
    replace_file(str(tmp_path / "report.json"), "new")
    assert not os.path.islink(str(tmp_path / "report.json"))
    assert (tmp_path / "outside").read_text() == "secret"


def test_a_named_temporary_left_by_a_kill_is_taken_over_not_left_beside(tmp_path):
    (tmp_path / "manifest.json.tmp").write_text('{"cut": "short')  # what a kill between write and rename leaves
    replace_file(str(tmp_path / "manifest.json"), "{}", temporary_name="manifest.json.tmp")
    assert (tmp_path / "manifest.json").read_text() == "{}"
    assert sorted(os.listdir(str(tmp_path))) == ["manifest.json"]


def test_a_symlink_planted_at_the_temporary_name_is_removed_not_followed(tmp_path):
    (tmp_path / "outside").write_text("secret")
    run = tmp_path / "run"
    run.mkdir()
    os.symlink(str(tmp_path / "outside"), str(run / "manifest.json.tmp"))
    replace_file(str(run / "manifest.json"), "{}", temporary_name="manifest.json.tmp")
    assert (tmp_path / "outside").read_text() == "secret"
    assert (run / "manifest.json").read_text() == "{}"
    assert sorted(os.listdir(str(run))) == ["manifest.json"]


def test_a_write_that_fails_removes_its_temporary_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "manifest.json"
    target.write_text("old")

    def refuse(_fd):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", refuse)
    for name in (None, "manifest.json.tmp"):
        with pytest.raises(OSError):
            replace_file(str(target), "new", temporary_name=name)
        assert target.read_text() == "old"
        assert sorted(os.listdir(str(tmp_path))) == ["manifest.json"]
