from __future__ import annotations

import gzip
import io

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._tarsplit import (
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
