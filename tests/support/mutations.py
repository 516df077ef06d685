"""Mutations of every file kind of a store, shared by the property tests and the long fuzz run (devtools/fuzz.py)."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
from typing import Any, Callable, Dict, Iterator, List, Tuple, Union

from ansible_collections.strata.overlay2.plugins.module_utils._orphans.containerd import classify as classify_containerd
from ansible_collections.strata.overlay2.plugins.module_utils._verify.containerd import verify as verify_containerd
from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import classify
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import verify
from tests.support.samples import build_sample

FILE_KINDS = ("image config", "repositories.json", "diff", "size", "cache-id", "parent", "mount-id", "init-id",
              "link", "lower", "config.v2.json", "tar-split.json.gz", "tar-split content", "buildkit database")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILDKIT_FIXTURE = os.path.join(REPO, "tests", "unit", "fixtures", "bolt", "engine-28.5")


def prepare_store(root: str) -> None:
    """The sample store, with the BuildKit databases a real 28.5 engine wrote beside it."""
    build_sample(root)
    os.makedirs(os.path.join(root, "buildkit"))
    for name in ("containerdmeta.db", "metadata_v2.db", "snapshots.db"):
        shutil.copyfile(os.path.join(BUILDKIT_FIXTURE, name), os.path.join(root, "buildkit", name))


# the containerd image store's file kinds (a synthetic store of the engine's shape, see tests/support/ctdstore.py)
CONTAINERD_FILE_KINDS = ("meta.db", "snapshotter metadata.db", "manifest or config blob", "layer blob",
                         "container config.v2.json", "ingest ref", "buildkit metadata_v2.db")
BOLT_KINDS = ("buildkit database", "meta.db", "snapshotter metadata.db", "buildkit metadata_v2.db")
CONTAINERD_FIXTURE = os.path.join(REPO, "tests", "unit", "fixtures", "containerd", "managed.tar.gz")


def prepare_containerd_store(root: str) -> None:
    """A synthetic containerd store (two images, a whiteout, an opaque dir, a container, an ingest in flight),
    with the BuildKit database a real 28.5 engine wrote in this mode."""
    import tarfile  # pylint: disable=import-outside-toplevel
    from tests.support.ctdstore import SynthStore  # pylint: disable=import-outside-toplevel
    store = SynthStore(root)
    base = store.image("docker.io/library/base:1", [{"bin": None, "bin/sh": b"sh" * 300, "etc": None,
                                                     "etc/old": b"old\n"}])
    app = store.image("docker.io/library/app:1", [{"etc": None, "etc/.wh.old": None, "etc/new": b"new\n",
                                                   "opt": None, "opt/.wh..wh..opq": None, "opt/x": b"x"}], parent=base)
    store.container(app, "c1")
    store.ingest("sha256:" + "cd" * 32, b"x" * 10)
    store.write()
    with tarfile.open(CONTAINERD_FIXTURE) as archive:
        member = archive.extractfile("data-root/buildkit/containerd-overlayfs/metadata_v2.db")
        os.makedirs(os.path.join(root, "buildkit", "containerd-overlayfs"))
        with open(os.path.join(root, "buildkit", "containerd-overlayfs", "metadata_v2.db"), "wb") as handle:
            handle.write(member.read() if member else b"")


def containerd_files_of_kind(root: str) -> Dict[str, List[str]]:
    found: Dict[str, List[str]] = {kind: [] for kind in CONTAINERD_FILE_KINDS}
    for parent, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(parent, name)
            if name == "meta.db":
                found["meta.db"].append(path)
            elif name == "metadata.db" and parent.endswith("overlayfs"):
                found["snapshotter metadata.db"].append(path)
            elif name == "metadata_v2.db":
                found["buildkit metadata_v2.db"].append(path)
            elif parent.endswith("blobs/sha256"):
                with open(path, "rb") as handle:
                    head = handle.read(1)
                found["manifest or config blob" if head == b"{" else "layer blob"].append(path)
            elif name == "config.v2.json":
                found["container config.v2.json"].append(path)
            elif name == "ref" and "/ingest/" in path:
                found["ingest ref"].append(path)
    return found


def exercise_containerd(root: str) -> Dict[str, object]:
    """Everything the modules do with a containerd store; any exception here is a bug."""
    facts = gather(load_store(root), container_sizes=True)
    report = verify_containerd(load_store(root))
    orphans = classify_containerd(load_store(root))
    result = {"facts": facts, "verify": report.as_dict(), "orphans": orphans.facts()}
    json.dumps(result)
    return result


def run_once_containerd(root: str, rng: random.Random, kind: str) -> Callable[[], None]:
    """``run_once`` on a containerd store."""
    return run_once(root, rng, kind, containerd_files_of_kind)


METADATA_NAMES = ("diff", "size", "cache-id", "parent", "mount-id", "init-id", "link", "lower")


def files_of_kind(root: str) -> Dict[str, List[str]]:
    """Every file of each kind in a store, by walking it."""
    found: Dict[str, List[str]] = {kind: [] for kind in FILE_KINDS}
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


# JSON documents: any value may be swapped for one of another type (a parser must check every type it meets)
JSON_KINDS = ("image config", "repositories.json", "config.v2.json", "manifest or config blob",
              "container config.v2.json")
WRONG_VALUES = (None, True, -1, 5, 1.5, "", "../../etc/passwd", [], [5], {}, {"digest": 5})
JsonPath = Tuple[Union[str, int], ...]


def json_paths(value: Any, path: JsonPath = ()) -> Iterator[JsonPath]:
    """Every position in a JSON value (the document itself excluded), depth first."""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield path + (key,)
        yield from json_paths(child, path + (key,))


def value_at(document: Any, path: JsonPath) -> Any:
    for key in path:
        document = document[key]
    return document


def replaced(document: Any, path: JsonPath, new: Any) -> Any:
    """A copy of ``document`` with the value at ``path`` replaced by ``new``."""
    copy = json.loads(json.dumps(document))
    value_at(copy, path[:-1])[path[-1]] = new
    return copy


def swap_a_json_value(data: bytes, rng: random.Random) -> bytes:
    document = json.loads(data)
    paths = list(json_paths(document))
    if not paths:
        return json.dumps(rng.choice(WRONG_VALUES)).encode()
    return json.dumps(replaced(document, rng.choice(paths), rng.choice(WRONG_VALUES))).encode()


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
    elif kind == "layer blob" and rng.random() < 0.5:  # a valid gzip stream of a changed tar
        raw = bytearray(gzip.decompress(data))
        if raw:
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        data = gzip.compress(bytes(raw), mtime=0)
    elif kind in JSON_KINDS and rng.random() < 0.5:
        data = swap_a_json_value(data, rng)
    elif kind in BOLT_KINDS and rng.random() < 0.7:  # flips inside pages reach the page parsers
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
    store = Overlay2Store.load(root)
    facts = gather(store, container_sizes=True)
    report = verify(Overlay2Store.load(root))
    orphans = classify(Overlay2Store.load(root))
    result = {"facts": facts, "verify": report.as_dict(), "orphans": orphans.facts()}
    json.dumps(result)
    return result


def run_once(root: str, rng: random.Random, kind: str,
             files_of: Callable[[str], Dict[str, List[str]]] = files_of_kind) -> Callable[[], None]:
    """Mutate one file of ``kind`` (as ``files_of`` lists them); return a function that puts it back."""
    paths = files_of(root)[kind]
    path = rng.choice(paths)
    with open(path, "rb") as handle:
        original = handle.read()
    mutate_file(path, kind, rng)

    def restore() -> None:
        with open(path, "wb") as handle:
            handle.write(original)
    return restore
