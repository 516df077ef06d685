# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Verification of an overlay2 store: metadata consistency, and every layer's content against its DiffID.

Checking is read-only and kept apart from any repair. Every finding is a typed
``Problem`` attached to the layer, image or container it concerns.

The content check rebuilds a layer's tar stream the way the engine does for
``docker save`` (tar-split segments plus the files of the layer's diff
directory) and compares its sha256 with the DiffID. Only when they differ are
the files located, by size and CRC-64 against the tar-split entries. A walk of
the diff directory finds files the tar-split does not list, which the stream
digest cannot see.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from typing import IO, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import next_chain_id, shorten
from ansible_collections.strata.overlay2.plugins.module_utils._util.parallel import map_chunks, partition, worker_count
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir, describe_os_error
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Image, Layer
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import (
    LAYER_DIRS,
    LAYER_RECORDS,
    LINKS,
    TAG_STORE,
    Overlay2Store,
    config_mismatch,
    missing_dir,
)
from ansible_collections.strata.overlay2.plugins.module_utils._verify.layer_dir import (
    DiffTree,
    list_diff_dir,
    read_regular,
    split_member_name,
)
from ansible_collections.strata.overlay2.plugins.module_utils._verify.report import (
    BUFFER_SIZE,
    DIGEST_MISMATCH,
    FILE_ADDED,
    FILE_MISSING,
    FILE_MODIFIED,
    METADATA,
    PER_LAYER_COST,
    Problem,
    Report,
    Verdict,
    select,
)
from ansible_collections.strata.overlay2.plugins.module_utils._formats.tarsplit import (
    FILE,
    TarSplitError,
    crc64_update,
    iter_entries,
)

# -- metadata ----------------------------------------------------------------


class _Index:
    """Who uses which layer, and which DiffID the images expect of it."""

    def __init__(self, store: Overlay2Store) -> None:
        self.images_by_layer: Dict[str, List[str]] = {}
        self.expected_diff: Dict[str, str] = {}
        for image in store.images.values():
            for chain_id, diff_id in zip(image.chain_ids, image.diff_ids):
                self.images_by_layer.setdefault(chain_id, []).append(image.id)
                self.expected_diff.setdefault(chain_id, diff_id)
        self.containers_by_layer: Dict[str, List[str]] = {}
        for mount in store.mounts.values():
            for layer in store.chain(mount.parent):
                self.containers_by_layer.setdefault(layer.chain_id, []).append(mount.container_id)


def check_layer_metadata(store: Overlay2Store, index: _Index, layer: Layer) -> List[Problem]:
    problems: List[Problem] = []
    record = store.layer_path(layer.chain_id)
    computed = next_chain_id(layer.parent, layer.diff_id)
    if computed != layer.chain_id:
        problems.append(Problem(METADATA, record, "directory name is not the chainID of its parent and diff (%s)"
                                % computed))
    expected = index.expected_diff.get(layer.chain_id)
    if expected is not None and expected != layer.diff_id:
        problems.append(Problem(METADATA, os.path.join(record, "diff"),
                                "records %s, the image config says %s" % (layer.diff_id, expected)))
    if layer.parent is not None and layer.parent not in store.layers:
        problems.append(Problem(METADATA, os.path.join(record, "parent"),
                                "names %s, which is not in the layer database" % layer.parent))
    if layer.cache_id is None:
        problems.append(Problem(METADATA, os.path.join(record, "cache-id"), "missing or not a valid id"))
        return problems
    overlay_dir = store.dirs.get(layer.cache_id)
    if overlay_dir is None:  # the same words as the store's damaged record, which then adds nothing
        problems.append(Problem(METADATA, record, missing_dir(layer.cache_id)))
        return problems
    if overlay_dir.link is None:
        problems.append(Problem(METADATA, store.dir_path(layer.cache_id, "link"), "missing or not a link id"))
    elif store.links.get(overlay_dir.link) != layer.cache_id:
        problems.append(Problem(METADATA, store.path(LINKS, overlay_dir.link),
                                "does not point back to ../%s/diff" % layer.cache_id))
    expected_lower = parent_links(store, layer)
    if expected_lower is not None and overlay_dir.lower != expected_lower:
        problems.append(Problem(METADATA, store.dir_path(layer.cache_id, "lower"),
                                "lists %s, the parent chain's links are %s"
                                % (":".join(overlay_dir.lower) or "nothing", ":".join(expected_lower) or "nothing")))
    return problems


def parent_links(store: Overlay2Store, layer: Layer) -> Optional[List[str]]:
    """The link ids of the layer's ancestors, topmost first; None when one of them is unknown."""
    links = []
    for ancestor in store.chain(layer.parent):
        overlay_dir = store.dirs.get(ancestor.cache_id) if ancestor.cache_id else None
        if overlay_dir is None or overlay_dir.link is None:
            return None
        links.append(overlay_dir.link)
    return links


def check_images(store: Overlay2Store, images: Iterable[Image]) -> List[Verdict]:
    verdicts = []
    for image in images:
        problems = []
        if image.config_digest != image.id:
            problems.append(Problem(METADATA, store.config_path(image.id), config_mismatch(image)))
        missing = [chain_id for chain_id in image.chain_ids if chain_id not in store.layers]
        if missing:
            problems.append(Problem(METADATA, store.layer_path(missing[0]),
                                    "the image's layer %s is not in the layer database" % missing[0]))
        if problems:
            verdicts.append(Verdict(None, None, None, images=[image.id], problems=problems))
    repositories = store.path(TAG_STORE, "repositories.json")
    for reference, image_id in store.dangling_tags:
        verdicts.append(Verdict(None, None, None, problems=[
            Problem(METADATA, repositories, "%s points at %s, which is not in the image store"
                    % (shorten(reference), image_id))]))
    return verdicts


RECORD_CODES = ("layer", "mount", "image_config", "container_config")


def check_damaged_records(store: Overlay2Store, verdicts: Dict[str, Verdict], whole_store: bool) -> List[Verdict]:
    """Records the store could not read or that do not fit the format (image configs, layer and mount
    records, container configs), as metadata problems: on the layer's verdict when it is being verified,
    otherwise as verdicts of their own (only when the whole store is verified)."""
    found: List[Verdict] = []
    for record in store.damaged:
        if record.code not in RECORD_CODES:
            continue
        problem = Problem(METADATA, record.path, record.message)
        chain_id = None
        if record.code == "layer":
            chain_id = "sha256:" + os.path.basename(record.path)
            if chain_id in verdicts:
                if all(p.path != record.path for p in verdicts[chain_id].problems):
                    verdicts[chain_id].problems.append(problem)
                continue
        if not whole_store:
            continue
        image_id = "sha256:" + os.path.basename(record.path) if record.code == "image_config" else None
        if image_id in store.images:
            continue  # a config that reads but was edited: its image's verdict says so (``check_images``)
        if record.code == "mount" and os.path.basename(record.path) in store.mounts:
            continue  # a mount that reads, damaged all the same: its verdict says so (``check_containers``)
        found.append(Verdict(chain_id, None, sorted(record.dirs)[0] if record.dirs else None,
                             images=[image_id] if image_id else [], containers=sorted(record.containers),
                             problems=[problem]))
    return found


def check_containers(store: Overlay2Store) -> List[Verdict]:
    verdicts = []
    damaged: Dict[str, List[Problem]] = {}  # a mount record's path -> what its damaged records say
    for record in store.damaged:
        if record.code == "mount":
            damaged.setdefault(record.path, []).append(Problem(METADATA, record.path, record.message))
    for mount in store.mounts.values():
        problems = []
        if mount.parent is not None:
            chain = store.chain(mount.parent)
            if not chain or chain[-1].parent is not None:
                problems.append(Problem(METADATA, store.mount_path(mount.container_id) + "/parent",
                                        "the container's layer chain from %s is incomplete" % mount.parent))
        problems.extend(damaged.get(store.mount_path(mount.container_id), []))
        container = store.containers.get(mount.container_id)
        if container is not None and container.dead:  # an interrupted removal: the store does not call it damage
            for name in mount.dir_names:
                if name not in store.dirs:
                    problems.append(Problem(METADATA, store.dir_path(name),
                                            "the container's overlay2 directory is missing"))
        if problems:
            verdicts.append(Verdict(mount.parent, None, None, containers=[mount.container_id], problems=problems))
    return verdicts


class StoreDirs:
    """The data-root and the two directories every layer's check starts from, opened once for many layers.

    Where ``overlay2/`` or the layer database cannot be opened, each layer's check opens its path from the
    data-root again, so that each reports the reason itself.
    """

    def __init__(self, root: SafeDir) -> None:
        self.root = root
        self.overlay = self._subdir(*LAYER_DIRS)
        self.layerdb = self._subdir(*LAYER_RECORDS)

    @classmethod
    def open(cls, data_root: str) -> "StoreDirs":
        return cls(SafeDir.open(data_root))

    def _subdir(self, *names: str) -> Optional[SafeDir]:
        try:
            return self.root.subdir(*names)
        except OSError:
            return None

    def diff_dir(self, cache_id: str) -> SafeDir:
        if self.overlay is None:
            return self.root.subdir(*LAYER_DIRS, cache_id, "diff")
        return self.overlay.subdir(cache_id, "diff")

    def layer_record(self, chain_id: str) -> SafeDir:
        if self.layerdb is None:
            return self.root.subdir(*LAYER_RECORDS, chain_id[7:])
        return self.layerdb.subdir(chain_id[7:])

    def __enter__(self) -> "StoreDirs":
        return self

    def __exit__(self, *exc_info: object) -> None:
        for directory in (self.overlay, self.layerdb, self.root):
            if directory is not None:
                directory.close()


def verify_content(store: Overlay2Store, layer: Layer, expected_diff: str, dirs: Optional[StoreDirs] = None
                   ) -> Tuple[List[Problem], int]:
    """Rebuild the layer's tar stream; on a mismatch, name the files. Returns (problems, bytes read)."""
    if dirs is None:
        try:
            with StoreDirs.open(store.data_root) as opened:
                return verify_content(store, layer, expected_diff, opened)
        except OSError as exc:
            return [Problem(METADATA, store.diff_dir(layer.cache_id or ""),
                            "cannot open the layer's diff directory: %s" % describe_os_error(exc))], 0
    diff_path = store.diff_dir(layer.cache_id or "")
    record = store.layer_path(layer.chain_id)
    try:
        with dirs.diff_dir(layer.cache_id or "") as diff:
            tree = DiffTree(diff)
            try:
                digest, bytes_read, expected, problems = _rebuild(store, layer, dirs, tree, diff_path)
                if digest is None:  # the tar-split could not be read: there is nothing to compare with
                    return problems, bytes_read
                on_disk, disk_files = list_diff_dir(diff)
                problems.extend(Problem(FILE_MISSING, os.path.join(diff_path, name), "listed in the layer's tar-split")
                                for name in sorted(expected - on_disk)
                                if not any(p.kind == FILE_MISSING and p.path.endswith("/" + name) for p in problems))
                problems.extend(Problem(FILE_ADDED, os.path.join(diff_path, name), "not listed in the layer's tar-split")
                                for name in sorted(disk_files - expected))
                if digest != expected_diff:
                    problems.insert(0, Problem(DIGEST_MISMATCH, os.path.join(record, "tar-split.json.gz"),
                                               "rebuilt stream hashes to %s, expected %s" % (digest, expected_diff)))
                    problems.extend(_locate_modified(dirs, layer.chain_id, tree, diff_path, problems))
            finally:
                tree.close_dirs()
    except OSError as exc:
        return [Problem(METADATA, diff_path, "cannot open the layer's diff directory: %s" % describe_os_error(exc))], 0
    return problems, bytes_read


def open_tar_split(dirs: StoreDirs, chain_id: str) -> IO[bytes]:
    """A layer's tar-split.json.gz, opened below the data-root without following any symlink."""
    with dirs.layer_record(chain_id) as record:
        fd = os.open("tar-split.json.gz", os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), dir_fd=record.fd)
    return os.fdopen(fd, "rb")


def _rebuild(store: Overlay2Store, layer: Layer, dirs: StoreDirs, tree: DiffTree, diff_path: str):
    problems: List[Problem] = []
    hasher = hashlib.sha256()
    buffer = bytearray(BUFFER_SIZE)
    expected: Set[str] = set()
    bytes_read = 0
    tar_split = os.path.join(store.layer_path(layer.chain_id), "tar-split.json.gz")
    try:
        with open_tar_split(dirs, layer.chain_id) as stream:
            for entry in iter_entries(stream):
                if entry.type != FILE:
                    hasher.update(entry.payload or b"")
                    continue
                parts = split_member_name(entry.name or "")
                if parts is None:
                    problems.append(Problem(METADATA, tar_split, "member name leaves the layer: %s" % shorten(entry.name)))
                    continue
                if not parts:  # the layer's root directory itself
                    continue
                expected.add("/".join(parts))
                if entry.size <= 0:
                    continue
                try:
                    bytes_read += read_regular(tree, parts, buffer, hasher.update)
                except OSError as exc:
                    kind = FILE_MISSING if exc.errno == errno.ENOENT else FILE_MODIFIED
                    problems.append(Problem(kind, os.path.join(diff_path, *parts), describe_os_error(exc)))
    except OSError as exc:
        problems.append(Problem(METADATA, tar_split, describe_os_error(exc)))
        return None, bytes_read, expected, problems
    except TarSplitError as exc:
        problems.append(Problem(METADATA, tar_split, str(exc)))
        return None, bytes_read, expected, problems
    return "sha256:" + hasher.hexdigest(), bytes_read, expected, problems


class _Crc64:
    """A running CRC-64/ISO; pure Python, so used only to locate files after a digest mismatch."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, chunk: memoryview) -> None:
        self.value = crc64_update(self.value, chunk)


def _locate_modified(dirs: StoreDirs, chain_id: str, tree: DiffTree, diff_path: str,
                     known: List[Problem]) -> List[Problem]:
    """Second pass after a digest mismatch: compare each file's size and CRC-64 with its tar-split entry."""
    already = {problem.path for problem in known}
    found = []
    buffer = bytearray(BUFFER_SIZE)
    with open_tar_split(dirs, chain_id) as stream:
        for entry in iter_entries(stream):
            parts = split_member_name(entry.name or "") if entry.type == FILE else None
            if not parts or entry.size <= 0:
                continue
            path = os.path.join(diff_path, *parts)
            if path in already:
                continue
            crc = _Crc64()
            try:
                size = read_regular(tree, parts, buffer, crc.update)
            except OSError:
                continue
            if size != entry.size:
                found.append(Problem(FILE_MODIFIED, path, "size %d, the layer recorded %d" % (size, entry.size)))
            elif entry.crc is not None and crc.value != entry.crc:
                found.append(Problem(FILE_MODIFIED, path, "content differs (CRC-64 %016x, the layer recorded %016x)"
                                     % (crc.value, entry.crc)))
    return found


# -- the whole run -------------------------------------------------------------
PER_ENTRY_COST = 1000  # one compressed byte of tar-split (a few per entry) costs about as much as hashing this many


def layer_cost(store: Overlay2Store, layer: Layer) -> int:
    """What verifying a layer costs, in bytes hashed: its content plus its entries (the tar-split's compressed size
    stands for their number), which are parsed in Python and cost far more per byte."""
    try:
        entries = os.stat(os.path.join(store.layer_path(layer.chain_id), "tar-split.json.gz")).st_size
    except OSError:
        entries = 0
    return PER_LAYER_COST + (layer.size or 0) + PER_ENTRY_COST * entries


def verify_layers(store: Overlay2Store, layers: List[Layer], expected_diff: Dict[str, str], workers: Optional[int]
                  ) -> List[Tuple[str, List[Problem], int]]:
    """(chainID, problems, bytes read) of each layer's content. Parsing tar-split holds the GIL, so the layers
    are shared out by cost among processes (see ``_parallel``), one per CPU unless ``workers`` says otherwise."""
    def verify_share(share: List[Layer]) -> List[Tuple[str, List[Problem], int]]:
        def verify_each(dirs: Optional[StoreDirs]) -> List[Tuple[str, List[Problem], int]]:
            return [(layer.chain_id,) + verify_content(store, layer, expected_diff.get(layer.chain_id, layer.diff_id),
                                                       dirs) for layer in share]
        try:
            opened = StoreDirs.open(store.data_root)
        except OSError:
            return verify_each(None)  # each layer says why
        with opened:
            return verify_each(opened)

    shares = partition(layers, worker_count(len(layers), 1, workers), lambda layer: layer_cost(store, layer))
    return [result for share in map_chunks(verify_share, shares) for result in share]


def verify(store: Overlay2Store, images: Optional[Sequence[str]] = None, layers: Optional[Sequence[str]] = None,
           content: bool = True, workers: Optional[int] = None) -> Report:
    started = time.monotonic()
    chosen_images, chains = select(store, images, layers)
    index = _Index(store)
    verdicts: Dict[str, Verdict] = {}
    for chain_id in chains:
        layer = store.layers[chain_id]
        verdicts[chain_id] = Verdict(chain_id, layer.diff_id, layer.cache_id,
                                     images=list(index.images_by_layer.get(chain_id, [])),
                                     containers=list(index.containers_by_layer.get(chain_id, [])),
                                     problems=check_layer_metadata(store, index, layer))
    if content:
        runnable = [store.layers[chain_id] for chain_id in chains if store.layers[chain_id].cache_id in store.dirs]
        for chain_id, problems, bytes_read in verify_layers(store, runnable, index.expected_diff, workers):
            verdicts[chain_id].problems.extend(problems)
            verdicts[chain_id].bytes_read = bytes_read
    whole_store = not images and not layers
    corrupt_records = check_damaged_records(store, verdicts, whole_store)
    corrupt = [verdict for verdict in verdicts.values() if verdict.problems] + corrupt_records
    image_scope = chosen_images if images else list(store.images.values())
    corrupt.extend(check_images(store, image_scope))
    if whole_store:
        corrupt.extend(check_containers(store))
    checked_images = sum(1 for image in chosen_images if all(c in store.layers for c in image.chain_ids))
    return Report(
        checked_layers=len(chains),
        checked_images=checked_images,
        bytes_verified=sum(verdict.bytes_read for verdict in verdicts.values()),
        seconds=time.monotonic() - started,
        corrupt=corrupt,
    )
