"""Write small bbolt database files for tests: the layout the engine's bolt files have (see ``_bolt``).

    write_bolt(path, {b"_main": {b"<record>": {b"cache.snapshot": b'{"value":"..."}'}}})

A tree is a dict: bytes values are values, dict values are nested buckets. Like bbolt, a bucket with no
nested buckets that fits in a quarter page is stored inline in its parent's leaf; larger buckets get leaf
pages (with overflow pages when one element is big), and a bucket with more than ``fanout`` keys is split
over several leaves under one branch page. ``previous`` writes a second, older tree that meta page 0 points
at (meta page 1, with the higher txid, points at ``tree``), so a test can tear the newest meta and see the
reader fall back. The files this writes are read back by the reader and compared with what the engines'
own files look like in ``tests/unit/plugins/module_utils/_formats/test_bolt.py``; they are never given to an engine.
"""

from __future__ import annotations

import struct
from typing import Dict, List, Optional, Tuple, Union

from ansible_collections.strata.overlay2.plugins.module_utils._formats.bolt import (
    BRANCH_ELEMENT,
    BRANCH_PAGE,
    BUCKET_HEADER,
    BUCKET_LEAF_FLAG,
    LEAF_ELEMENT,
    LEAF_PAGE,
    MAGIC,
    META,
    META_PAGE,
    PAGE_HEADER,
    VERSION,
    fnv1a64,
)

Tree = Dict[bytes, Union[bytes, "Tree"]]
FREELIST_PAGE = 0x10


class _Writer:
    def __init__(self, page_size: int, fanout: int) -> None:
        self.page_size = page_size
        self.fanout = fanout
        self.pages: Dict[int, bytes] = {}
        self.next_page = 3  # 0 and 1: meta, 2: freelist

    def allocate(self, body_flags: int, count: int, body: bytes) -> int:
        """Store a page (header + body) at the next free id, with overflow pages as needed."""
        size = PAGE_HEADER.size + len(body)
        span = -(-size // self.page_size)
        page_id = self.next_page
        self.next_page += span
        header = PAGE_HEADER.pack(page_id, body_flags, count, span - 1)
        self.pages[page_id] = (header + body).ljust(span * self.page_size, b"\0")
        return page_id

    def leaf_body(self, items: List[Tuple[bytes, int, bytes]]) -> bytes:
        """Elements then their key/value bytes; ``pos`` is relative to each element."""
        elements = b""
        data = b""
        base = len(items) * LEAF_ELEMENT.size
        for index, (key, flags, value) in enumerate(items):
            pos = base + len(data) - index * LEAF_ELEMENT.size
            elements += LEAF_ELEMENT.pack(flags, pos, len(key), len(value))
            data += key + value
        return elements + data

    def bucket_value(self, tree: Tree) -> bytes:
        """A nested bucket as the value stored in its parent's leaf."""
        if all(isinstance(v, bytes) for v in tree.values()):
            items = [(k, 0, v) for k, v in sorted(tree.items())]
            inline = PAGE_HEADER.pack(0, LEAF_PAGE, len(items), 0) + self.leaf_body(items)
            if BUCKET_HEADER.size + len(inline) <= self.page_size // 4:
                return BUCKET_HEADER.pack(0, 0) + inline
        return BUCKET_HEADER.pack(self.write_tree(tree), 0)

    def write_tree(self, tree: Tree) -> int:
        """A bucket's pages; returns its root page id."""
        items: List[Tuple[bytes, int, bytes]] = []
        for key, value in sorted(tree.items()):
            if isinstance(value, dict):
                items.append((key, BUCKET_LEAF_FLAG, self.bucket_value(value)))
            else:
                items.append((key, 0, value))
        chunks = [items[i:i + self.fanout] for i in range(0, len(items), self.fanout)] or [[]]
        leaves = [(chunk[0][0] if chunk else b"", self.allocate(LEAF_PAGE, len(chunk), self.leaf_body(chunk)))
                  for chunk in chunks]
        if len(leaves) == 1:
            return leaves[0][1]
        elements = b""
        data = b""
        base = len(leaves) * BRANCH_ELEMENT.size
        for index, (key, child) in enumerate(leaves):
            elements += BRANCH_ELEMENT.pack(base + len(data) - index * BRANCH_ELEMENT.size, len(key), child)
            data += key
        return self.allocate(BRANCH_PAGE, len(leaves), elements + data)

    def meta(self, page_id: int, root: int, txid: int, high_water: int) -> bytes:
        fields = (MAGIC, VERSION, self.page_size, 0, root, 0, 2, high_water, txid)
        packed = struct.pack("<IIIIQQQQQ", *fields)
        body = packed + struct.pack("<Q", fnv1a64(packed))
        assert len(body) == META.size
        return (PAGE_HEADER.pack(page_id, META_PAGE, 0, 0) + body).ljust(self.page_size, b"\0")


def bolt_bytes(tree: Tree, previous: Optional[Tree] = None, page_size: int = 4096, fanout: int = 64,
               txid: int = 2) -> bytes:
    """The file; ``txid`` is the newest transaction's (a later one stands for a commit by the owner)."""
    writer = _Writer(page_size, fanout)
    older_root = writer.write_tree(previous) if previous is not None else None
    root = writer.write_tree(tree)
    high_water = writer.next_page
    pages = [writer.meta(0, older_root if older_root is not None else root, txid - 1, high_water),
             writer.meta(1, root, txid, high_water),
             (PAGE_HEADER.pack(2, FREELIST_PAGE, 0, 0)).ljust(page_size, b"\0")]
    page_id = 3
    while page_id < high_water:
        page = writer.pages[page_id]
        pages.append(page)
        page_id += len(page) // page_size
    return b"".join(pages)


def write_bolt(path: str, tree: Tree, previous: Optional[Tree] = None, page_size: int = 4096,
               fanout: int = 64) -> None:
    with open(path, "wb") as handle:
        handle.write(bolt_bytes(tree, previous, page_size, fanout))


def write_buildkit(data_root: str, leases: Dict[str, List[str]], records: Dict[str, Dict[str, object]],
                   snapshots: Dict[str, Dict[str, str]]) -> str:
    """BuildKit's three databases under ``<data_root>/buildkit`` in the engines' schema (see ``_buildkit``).

    ``leases``: lease id -> snapshot ids; ``records``: record id -> fields (written as ``{"value": ...}``;
    None writes the empty value the engines use for a cleared field); ``snapshots``: snapshot or graph id ->
    its keys (``committed``, ``chainid``, ``parent``, ``size``).
    """
    import json  # pylint: disable=import-outside-toplevel
    import os  # pylint: disable=import-outside-toplevel

    directory = os.path.join(data_root, "buildkit")
    os.makedirs(directory, exist_ok=True)
    lease_tree = {lease.encode(): {b"createdat": b"\x01" + b"\0" * 14,
                                   b"snapshots": {b"default": {snapshot.encode(): b"" for snapshot in ids}}}
                  for lease, ids in leases.items()}
    write_bolt(os.path.join(directory, "containerdmeta.db"),
               {b"v1": {b"buildkit": {b"leases": lease_tree}} if leases else {}})
    main = {record.encode(): {key.encode(): b"" if value is None else json.dumps({"value": value}).encode()
                              for key, value in fields.items()}
            for record, fields in records.items()}
    write_bolt(os.path.join(directory, "metadata_v2.db"), {b"_main": main, b"_index": {}})
    write_bolt(os.path.join(directory, "snapshots.db"),
               {snapshot.encode(): {key.encode(): value.encode() for key, value in keys.items()}
                for snapshot, keys in snapshots.items()})
    return directory
