# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The tar-split format: how the engine rebuilds a layer's exact tar stream.

``tar-split.json.gz`` holds one JSON object per line, in stream order: raw
segments (type 2: headers, padding, end blocks) and file entries (type 1: a
member whose content comes from the layer's diff directory, with its size and
the CRC-64/ISO of its content). The file is streamed line by line, never
loaded whole.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import zlib
from dataclasses import dataclass
from typing import IO, Iterator, List, Optional, Union

SEGMENT = 2
FILE = 1

MAX_LINE = 64 << 20  # a single entry larger than this is refused as corrupt
WHOLE_COMPRESSED = 1 << 20  # a tar-split up to this size ...
WHOLE_INFLATED = 4 << 20  # ... that inflates to at most this is read in one piece (most layers' are a few KB)

_raw_decode = json.JSONDecoder().raw_decode

_CRC64_ISO_REFLECTED = 0xD800000000000000
_MASK64 = 0xFFFFFFFFFFFFFFFF


def _crc64_table() -> List[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _bit in range(8):
            crc = (crc >> 1) ^ _CRC64_ISO_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc64_table()


def crc64_update(crc: int, data: Union[bytes, memoryview]) -> int:
    """Continue a CRC-64/ISO (reflected, init and xorout all ones); start with crc64_update(0, ...)."""
    crc = ~crc & _MASK64
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return ~crc & _MASK64


def crc64(data: bytes) -> int:
    return crc64_update(0, data)


class TarSplitError(ValueError):
    """The tar-split file cannot be parsed."""


@dataclass
class Entry:
    type: int
    position: int
    payload: Optional[bytes]
    name: Optional[str] = None  # file entries: the member name, surrogate-escaped when not UTF-8
    size: int = 0

    @property
    def crc(self) -> Optional[int]:
        """The CRC-64 recorded for a file entry's content, or None when none was recorded."""
        if self.type != FILE or not self.payload or len(self.payload) != 8:
            return None
        return int.from_bytes(self.payload, "big")


def _decode_bytes(value: object, what: str) -> Optional[bytes]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TarSplitError("%s is not base64 text" % what)
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise TarSplitError("%s is not valid base64: %s" % (what, exc)) from exc


def _json_of(line: bytes) -> object:
    """``json.loads(line)``. A UTF-8 line that is one object and its newline skips the detection of encoding
    and whitespace; anything else takes the long way, with json's own result or error."""
    if line[:1] == b"{":
        try:
            text = line.decode("utf-8")
            value, end = _raw_decode(text)
        except ValueError:  # UnicodeDecodeError included
            return json.loads(line)
        if end == len(text) or text[end:] == "\n":
            return value
    return json.loads(line)


def parse_line(line: bytes, number: int) -> Entry:
    try:
        raw = _json_of(line)
        kind = raw["type"]  # type: ignore[index]
        position = raw.get("position", 0)  # type: ignore[union-attr]
    except (UnicodeDecodeError, ValueError) as exc:
        raise TarSplitError("line %d is not JSON: %s" % (number, exc)) from exc
    except (KeyError, TypeError, AttributeError) as exc:
        raise TarSplitError("line %d is not a tar-split entry" % number) from exc
    if kind == SEGMENT:
        return Entry(SEGMENT, position, _decode_bytes(raw.get("payload"), "line %d payload" % number) or b"")
    if kind != FILE or not isinstance(position, int):
        raise TarSplitError("line %d has an unknown type or position" % number)
    size = raw.get("size", 0)
    if not isinstance(size, int) or size < 0:
        raise TarSplitError("line %d has an invalid size" % number)
    name = raw.get("name")
    name_raw = raw.get("name_raw")
    if name_raw is not None:
        name = os.fsdecode(_decode_bytes(name_raw, "line %d name_raw" % number) or b"")
    if not isinstance(name, str) or not name:
        raise TarSplitError("line %d is a file entry without a name" % number)
    return Entry(FILE, position, _decode_bytes(raw.get("payload"), "line %d payload" % number), name=name, size=size)


def iter_entries(stream: IO[bytes]) -> Iterator[Entry]:
    """Entries of a gzip-compressed tar-split stream, one line at a time.

    A small tar-split that is one intact gzip member is inflated in one piece; anything else (large, damaged,
    several members, not seekable) is streamed line by line, with the errors the streaming reader gives.
    """
    whole = _inflate_small(stream)
    lines = _lines_of(whole) if whole is not None else _stream_lines(stream)
    for number, line in enumerate(lines, 1):
        if line.strip():
            yield parse_line(line, number)


def _inflate_small(stream: IO[bytes]) -> Optional[bytes]:
    """The whole inflated stream when it is small and one intact member; otherwise None, rewound."""
    try:
        if not stream.seekable():
            return None
        compressed = stream.read(WHOLE_COMPRESSED + 1)
        # gzip's trailer gives the inflated size (mod 4 GiB): larger ones are streamed without a try
        if len(compressed) <= WHOLE_COMPRESSED and int.from_bytes(compressed[-4:], "little") <= WHOLE_INFLATED:
            inflater = zlib.decompressobj(wbits=31)
            data = inflater.decompress(compressed, WHOLE_INFLATED)
            if inflater.eof and not inflater.unused_data and not inflater.unconsumed_tail:
                return data
        stream.seek(0)
    except (OSError, zlib.error):
        try:
            stream.seek(0)
        except OSError as exc:
            raise TarSplitError("not a readable gzip stream: %s" % exc) from exc
    return None


def _lines_of(data: bytes) -> Iterator[bytes]:
    """Lines as ``readline`` gives them: each with its newline, the last one without when it has none."""
    start = 0
    end = data.find(b"\n")
    while end >= 0:
        yield data[start:end + 1]
        start = end + 1
        end = data.find(b"\n", start)
    if start < len(data):
        yield data[start:]


def _stream_lines(stream: IO[bytes]) -> Iterator[bytes]:
    try:
        with gzip.GzipFile(fileobj=stream, mode="rb") as lines:
            number = 0
            while True:
                line = lines.readline(MAX_LINE + 1)
                if not line:
                    return
                number += 1
                if len(line) > MAX_LINE:
                    raise TarSplitError("line %d is longer than %d bytes" % (number, MAX_LINE))
                yield line
    except (OSError, EOFError, zlib.error) as exc:
        raise TarSplitError("not a readable gzip stream: %s" % exc) from exc


def encode_entry(entry: Entry) -> bytes:
    """One line of tar-split, as the engine writes it (used by tests and the store generator)."""
    raw: dict = {"type": entry.type}
    if entry.type == FILE:
        if entry.name is None:
            raise TarSplitError("a file entry needs a name")
        try:
            entry.name.encode("utf-8")
            raw["name"] = entry.name
        except UnicodeEncodeError:
            raw["name_raw"] = base64.b64encode(os.fsencode(entry.name)).decode("ascii")
        if entry.size:
            raw["size"] = entry.size
    raw["payload"] = base64.b64encode(entry.payload).decode("ascii") if entry.payload is not None else None
    raw["position"] = entry.position
    return json.dumps(raw, separators=(",", ":")).encode("utf-8") + b"\n"
