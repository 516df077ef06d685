"""Mutations of every file kind of a store, shared by the property tests and the long fuzz run (devtools/fuzz.py)."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
from typing import Callable, Dict, List

from ansible_collections.strata.overlay2.plugins.module_utils._facts import gather
from ansible_collections.strata.overlay2.plugins.module_utils._orphans import classify
from ansible_collections.strata.overlay2.plugins.module_utils._store import Store
from ansible_collections.strata.overlay2.plugins.module_utils._verify import verify
from devtools.samples import build_sample

FILE_KINDS = ("image config", "repositories.json", "diff", "size", "cache-id", "parent", "mount-id", "init-id",
              "link", "lower", "config.v2.json", "tar-split.json.gz", "tar-split content", "buildkit database")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDKIT_FIXTURE = os.path.join(REPO, "tests", "unit", "fixtures", "bolt", "engine-28.5")


def prepare_store(root: str) -> None:
    """The sample store, with the BuildKit databases a real 28.5 engine wrote beside it."""
    build_sample(root)
    os.makedirs(os.path.join(root, "buildkit"))
    for name in ("containerdmeta.db", "metadata_v2.db", "snapshots.db"):
        shutil.copyfile(os.path.join(BUILDKIT_FIXTURE, name), os.path.join(root, "buildkit", name))


METADATA_NAMES = ("diff", "size", "cache-id", "parent", "mount-id", "init-id", "link", "lower")


def files_of_kind(root: str) -> Dict[str, List[str]]:
    """Every file of each kind in a store, by walking it."""
    found = {kind: [] for kind in FILE_KINDS}  # type: Dict[str, List[str]]
    for parent, _dirs, names in os.walk(root):
        relative = os.path.relpath(parent, root)
        for name in names:
            path = os.path.join(parent, name)
            if relative.endswith("imagedb/content/sha256"):
                found["image config"].append(path)
            elif name == "repositories.json":
                found["repositories.json"].append(path)
            elif name == "config.v2.json":
                found["config.v2.json"].append(path)
            elif name == "tar-split.json.gz":
                found["tar-split.json.gz"].append(path)
                found["tar-split content"].append(path)
            elif relative == "buildkit" and name.endswith(".db"):
                found["buildkit database"].append(path)
            elif name in METADATA_NAMES and "/diff" not in relative:
                found[name].append(path)
    return found


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One of: random bytes, a truncation, a flipped byte, an insertion, emptiness, a hostile id."""
    choice = rng.randrange(7)
    if choice == 0:
        return bytes(rng.randrange(256) for _byte in range(rng.randrange(1, 200)))
    if choice == 1 and data:
        return data[:rng.randrange(len(data))]
    if choice == 2 and data:
        index = rng.randrange(len(data))
        return data[:index] + bytes([data[index] ^ (1 << rng.randrange(8))]) + data[index + 1:]
    if choice == 3:
        index = rng.randrange(len(data) + 1)
        return data[:index] + rng.choice([b"\0", b"../", b"/", b"\xff\xfe", b'"', b"}", b"\n"]) + data[index:]
    if choice == 4:
        return b""
    if choice == 5:
        return rng.choice([b"../../../../etc/passwd", b"/etc/shadow", b"a" * 64 + b"\0", b"sha256:" + b"../" * 20,
                           b"l/../../etc:l/AAAA", b'{"rootfs": {"diff_ids": ["sha256:/etc"]}}', b"-1", b"9" * 40])
    return data + bytes(rng.randrange(256) for _byte in range(rng.randrange(1, 50)))


def mutate_file(path: str, kind: str, rng: random.Random) -> None:
    with open(path, "rb") as handle:
        data = handle.read()
    if kind == "tar-split content":
        lines = gzip.decompress(data).splitlines(keepends=True)
        index = rng.randrange(len(lines))
        if rng.random() < 0.5:
            entry = json.loads(lines[index])
            key = rng.choice(sorted(entry))
            entry[key] = rng.choice([None, -1, "../../etc/passwd", "\0", 10 ** 12, [], {}, "@@@", "AAAA"])
            lines[index] = json.dumps(entry).encode() + b"\n"
        else:
            lines[index] = mutate(lines[index], rng)
        data = gzip.compress(b"".join(lines))
    elif kind == "buildkit database" and rng.random() < 0.7:  # flips inside pages reach the page parsers
        flipped = bytearray(data)
        for _flip in range(rng.randrange(1, 9)):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        data = bytes(flipped)
    else:
        data = mutate(data, rng)
    with open(path, "wb") as handle:
        handle.write(data)


def exercise(root: str) -> Dict[str, object]:
    """Everything the modules do with a store; any exception here is a bug."""
    store = Store.load(root)
    facts = gather(store, container_sizes=True)
    report = verify(Store.load(root))
    orphans = classify(Store.load(root))
    result = {"facts": facts, "verify": report.as_dict(), "orphans": orphans.facts()}
    json.dumps(result)
    return result


def run_once(root: str, rng: random.Random, kind: str) -> Callable[[], None]:
    """Mutate one file of ``kind``; return a function that puts it back."""
    paths = files_of_kind(root)[kind]
    path = rng.choice(paths)
    with open(path, "rb") as handle:
        original = handle.read()
    mutate_file(path, kind, rng)

    def restore() -> None:
        with open(path, "wb") as handle:
            handle.write(original)
    return restore
