from __future__ import annotations

import gzip
import io

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._formats.tarsplit import (
    FILE,
    SEGMENT,
    Entry,
    TarSplitError,
    crc64,
    crc64_update,
    encode_entry,
    iter_entries,
)


def test_crc64_iso_check_value():
    assert crc64(b"123456789") == 0xB90956C775A41001


def test_crc64_continues_across_chunks():
    assert crc64_update(crc64_update(0, b"1234"), b"56789") == crc64(b"123456789")


def test_entries_round_trip_including_names_that_are_not_utf8():
    entries = [Entry(SEGMENT, 0, b"header"), Entry(FILE, 1, b"\0" * 8, name="caf\udce9", size=3),
               Entry(FILE, 2, None, name="empty")]
    stream = io.BytesIO(gzip.compress(b"".join(encode_entry(entry) for entry in entries)))
    assert list(iter_entries(stream)) == entries


def test_name_raw_is_written_only_for_names_that_are_not_utf8():
    assert b'"name_raw"' in encode_entry(Entry(FILE, 0, None, name="caf\udce9"))
    assert b'"name":"ok"' in encode_entry(Entry(FILE, 0, None, name="ok"))


CORRUPT_TAR_SPLITS = {  # mtime=0: the same bytes, and so the same test ids, on every collection
    "not gzip": b"not gzip",
    "not json": gzip.compress(b"{not json}\n", mtime=0),
    "unknown type": gzip.compress(b'{"type":7}\n', mtime=0),
    "member without a name": gzip.compress(b'{"type":1,"position":0,"payload":null}\n', mtime=0),
    "payload not base64": gzip.compress(b'{"type":2,"position":0,"payload":"***"}\n', mtime=0),
    "truncated gzip": gzip.compress(b'{"type":2}\n', mtime=0)[:-6],
}


@pytest.mark.parametrize("content", list(CORRUPT_TAR_SPLITS.values()), ids=list(CORRUPT_TAR_SPLITS))
def test_corrupt_tar_split_raises_one_clear_error(content):
    with pytest.raises(TarSplitError):
        list(iter_entries(io.BytesIO(content)))


class _Unseekable(io.RawIOBase):
    """A stream that cannot seek, so the tar-split is read line by line (the long way)."""

    def __init__(self, data):
        super().__init__()
        self.inner = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, buffer):
        chunk = self.inner.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def _outcome(stream):
    entries = []
    try:
        for entry in iter_entries(stream):
            entries.append(entry)
    except TarSplitError as exc:
        return entries, str(exc)
    return entries, None


GOOD = b"".join(encode_entry(e) for e in [Entry(SEGMENT, 0, b"h" * 512), Entry(FILE, 1, b"\0" * 8, name="a/b", size=3),
                                          Entry(FILE, 2, None, name="caf\udce9")])
TARSPLITS = {
    "intact": gzip.compress(GOOD),
    "no newline at the end": gzip.compress(GOOD.rstrip(b"\n")),
    "blank lines": gzip.compress(b"\n" + GOOD + b"\n\n"),
    "two gzip members": gzip.compress(GOOD) + gzip.compress(GOOD),
    "truncated": gzip.compress(GOOD)[:-9],
    "garbage after it": gzip.compress(GOOD) + b"garbage",
    "a broken line": gzip.compress(GOOD + b'{"type": 2, "payload": \n' + GOOD),
    "extra data after an object": gzip.compress(b'{"type":2,"payload":null,"position":0} {}\n'),
    "an encoded surrogate": gzip.compress(b'{"type":1,"name":"\xed\xa0\x80","position":1}\n'),
    "not UTF-8": gzip.compress(b'{"type":1,"name":"\xff","position":1}\n'),
    "whitespace before": gzip.compress(b' {"type":2,"payload":null,"position":0}\n'),
    "not gzip": b"plain text\n",
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(TARSPLITS))
def test_a_small_tar_split_read_in_one_piece_gives_what_the_line_by_line_reader_gives(name):
    data = TARSPLITS[name]
    assert _outcome(io.BufferedReader(io.BytesIO(data))) == _outcome(io.BufferedReader(_Unseekable(data)))


def test_a_small_intact_tar_split_is_not_read_line_by_line_and_a_damaged_one_is(monkeypatch):
    from ansible_collections.strata.overlay2.plugins.module_utils._formats import tarsplit as _tarsplit
    streamed = []
    real = _tarsplit._stream_lines  # pylint: disable=protected-access
    monkeypatch.setattr(_tarsplit, "_stream_lines", lambda stream: streamed.append(1) or real(stream))
    assert len(list(iter_entries(io.BufferedReader(io.BytesIO(TARSPLITS["intact"]))))) == 3
    assert not streamed
    _outcome(io.BufferedReader(io.BytesIO(TARSPLITS["truncated"])))
    assert streamed
