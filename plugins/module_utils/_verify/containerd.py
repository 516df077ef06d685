# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Verification of a containerd image store, with the findings and report of ``_verify``.

There is no tar-split here; the compressed layer is kept instead. For each image: every content blob it
reaches (index, manifests, config, layers) hashes to its digest. For each layer: its blob, decompressed, hashes
to the layer's DiffID, and each tar member is compared with the layer's own snapshot (``snapshots/<id>/fs``
of ``sha256:<chainID>``): type, mode, owner, size, content, link target, hard links, whiteouts and opaque
directories in their on-disk form; anything in ``fs/`` the tar does not name is ``file_added``. Layers are
checked one by one, never as the merged stack (the classic builder puts ``-init`` snapshots into it).

A layer that cannot be checked is ``unverifiable`` with a code, never corrupt and never verified:
``compression_unsupported`` (zstd and other compressions the standard library does not read),
``blob_missing`` (the engine dropped the compressed blob: metadata only), ``not_unpacked`` (no snapshot).
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import stat
import tarfile
import time
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._store.containerd import CONTENT_DIR, SNAPSHOTTER_DIR, ContainerdParts, ContainerdStore
from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import hex_of
from ansible_collections.strata.overlay2.plugins.module_utils._util.parallel import map_chunks, partition, worker_count
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir, describe_os_error
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Image, Layer
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

COMPRESSION_UNSUPPORTED = "compression_unsupported"
BLOB_MISSING = "blob_missing"
NOT_UNPACKED = "not_unpacked"
UNVERIFIABLE_CODES = (COMPRESSION_UNSUPPORTED, BLOB_MISSING, NOT_UNPACKED)

IMAGE_RECORDS = ("image_record", "image_config")  # damaged records that are an image's corruption
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP, ZSTD, NONE = "gzip", "zstd", "no compression"


DECOMPRESSORS = {GZIP: lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"), NONE: lambda raw: raw}
STREAM_ERRORS: Tuple[type, ...] = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, ValueError)
try:  # zstd streams, where the standard library reads them (Python 3.14 and newer)
    from compression import zstd as _zstd  # type: ignore  # pylint: disable=import-error
    DECOMPRESSORS[ZSTD] = lambda raw: _zstd.ZstdFile(raw, mode="rb")
    STREAM_ERRORS += (_zstd.ZstdError,)
except ImportError:
    pass


@dataclass
class Unverifiable:
    chain_id: str
    code: str
    reason: str

    def as_dict(self) -> Dict[str, str]:
        return {"chain_id": self.chain_id, "code": self.code, "reason": self.reason}


@dataclass
class ContainerdReport(Report):
    unverifiable: List[Unverifiable] = field(default_factory=list)
    checked_blobs: int = 0

    def as_dict(self) -> Dict[str, object]:
        result = super().as_dict()
        result["unverifiable"] = [item.as_dict() for item in self.unverifiable]
        result["checked_blobs"] = self.checked_blobs
        return result


class _Hashing:
    """A read-only stream that hashes what passes through it."""

    def __init__(self, raw, hasher) -> None:
        self.raw = raw
        self.hasher = hasher
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.hasher.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(BUFFER_SIZE):
            pass


def open_blob(parts: ContainerdParts, digest: str):
    """A blob file opened one component at a time from the containerd root, never through a symlink."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    with SafeDir.open(parts.root) as root, root.subdir(CONTENT_DIR, "blobs", "sha256") as blobs:
        fd = os.open(hex_of(digest), flags, dir_fd=blobs.fd)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "is not a regular file")
    return os.fdopen(fd, "rb", buffering=BUFFER_SIZE)


def blob_digest(parts: ContainerdParts, digest: str) -> Tuple[Optional[str], int, Optional[str]]:
    """(sha256 of the file, its bytes, why it could not be read)."""
    hasher = hashlib.sha256()
    try:
        with open_blob(parts, digest) as handle:
            reader = _Hashing(handle, hasher)
            reader.drain()
            return "sha256:" + hasher.hexdigest(), reader.count, None
    except OSError as exc:
        return None, 0, describe_os_error(exc)


class _LayerCheck:
    """One layer: its blob's digest, its DiffID, and its tar members against its snapshot."""

    def __init__(self, store: ContainerdStore, layer: Layer) -> None:
        self.store = store
        self.parts = store.parts
        self.layer = layer
        self.problems: List[Problem] = []
        self.unverifiable: Optional[Unverifiable] = None
        self.bytes_read = 0
        self.fs_path = self.parts.snapshot_fs(layer.snapshot_id or "")

    def skip(self, code: str, reason: str) -> "_LayerCheck":
        self.unverifiable = Unverifiable(self.layer.chain_id, code, reason)
        return self

    def run(self) -> "_LayerCheck":
        layer = self.layer
        if layer.snapshot_id is None:
            return self.skip(NOT_UNPACKED, "the layer has no snapshot, so there are no files to check")
        if layer.blob is None or layer.blob not in self.parts.blob_files:
            return self.skip(BLOB_MISSING, "the compressed layer %s is not in the content store: its snapshot can "
                             "be checked by metadata only" % (layer.blob or "(none)"))
        try:
            with open_blob(self.parts, layer.blob) as handle:
                head = handle.peek(4)[:4]
                compression = GZIP if head.startswith(GZIP_MAGIC) else ZSTD if head.startswith(ZSTD_MAGIC) else \
                    NONE if not head or self.is_tar(handle) else "an unknown compression"
                if compression not in DECOMPRESSORS:
                    return self.skip(COMPRESSION_UNSUPPORTED, "the layer blob uses %s, which the Python standard "
                                     "library of this host cannot read" % compression)
                with SafeDir.open(self.parts.root) as ctd, \
                        ctd.subdir(SNAPSHOTTER_DIR, "snapshots", layer.snapshot_id, "fs") as root:
                    self.compare(handle, compression, root)
        except OSError as exc:
            self.problems.append(Problem(METADATA, self.fs_path, "cannot read the layer: %s" % describe_os_error(exc)))
        return self

    @staticmethod
    def is_tar(handle) -> bool:
        block = handle.peek(512)[:512]
        return len(block) >= 262 and block[257:262] == b"ustar"

    def compare(self, handle, compression: str, root: SafeDir) -> None:
        compressed_hash = hashlib.sha256()
        raw = _Hashing(handle, compressed_hash)
        diff_hash = hashlib.sha256()
        stream = DECOMPRESSORS[compression](raw)
        tar_stream = _Hashing(stream, diff_hash)
        tree = DiffTree(root)
        expected: Set[str] = set()
        try:
            try:
                with tarfile.open(fileobj=tar_stream, mode="r|") as archive:
                    for member in archive:
                        parts = split_member_name(member.name)
                        if parts is None:
                            self.problems.append(Problem(METADATA, self.parts.blob_path(self.layer.blob or ""),
                                                         "member name leaves the layer: %s" % member.name))
                            continue
                        if not parts:
                            continue
                        expected.add("/".join(parts))
                        self.compare_member(archive, member, parts, tree)
                tar_stream.drain()
                raw.drain()
            except STREAM_ERRORS as exc:
                self.problems.append(Problem(DIGEST_MISMATCH, self.parts.blob_path(self.layer.blob or ""),
                                             "the layer blob is not a readable tar stream: %s" % exc))
                return
            on_disk, disk_files = list_diff_dir(root)
        finally:
            tree.close_dirs()
        self.bytes_read += raw.count
        blob_digest_now = "sha256:" + compressed_hash.hexdigest()
        if blob_digest_now != self.layer.blob:
            self.problems.insert(0, Problem(DIGEST_MISMATCH, self.parts.blob_path(self.layer.blob or ""),
                                            "the blob hashes to %s" % blob_digest_now))
        diff_id = "sha256:" + diff_hash.hexdigest()
        if diff_id != self.layer.diff_id:
            self.problems.insert(0, Problem(DIGEST_MISMATCH, self.parts.blob_path(self.layer.blob or ""),
                                            "the decompressed layer hashes to %s, expected %s"
                                            % (diff_id, self.layer.diff_id)))
        known = {problem.path for problem in self.problems}
        for name in sorted(expected - on_disk):
            path = os.path.join(self.fs_path, name)
            if path not in known:
                self.problems.append(Problem(FILE_MISSING, path, "in the layer, not in its snapshot"))
        for name in sorted(disk_files - expected):
            self.problems.append(Problem(FILE_ADDED, os.path.join(self.fs_path, name), "not in the layer"))

    def compare_member(self, archive: tarfile.TarFile, member: tarfile.TarInfo, parts: List[str],
                       tree: DiffTree) -> None:
        name = parts[-1]
        if name.startswith(".wh."):
            return  # whiteouts and opaque markers: compared by name in their on-disk form
        path = os.path.join(self.fs_path, *parts)
        try:
            info = os.lstat(name, dir_fd=tree.directory(parts[:-1]).fd)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                self.problems.append(Problem(FILE_MISSING, path, "in the layer, not in its snapshot"))
            else:
                self.problems.append(Problem(FILE_MODIFIED, path, describe_os_error(exc)))
            return
        differences: List[str] = []
        wanted_type = {tarfile.REGTYPE: stat.S_IFREG, tarfile.AREGTYPE: stat.S_IFREG, tarfile.DIRTYPE: stat.S_IFDIR,
                       tarfile.SYMTYPE: stat.S_IFLNK, tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK,
                       tarfile.FIFOTYPE: stat.S_IFIFO, tarfile.LNKTYPE: stat.S_IFREG}.get(member.type)
        if wanted_type is not None and stat.S_IFMT(info.st_mode) != wanted_type:
            self.problems.append(Problem(FILE_MODIFIED, path, "type differs from the layer's"))
            return
        if stat.S_IMODE(info.st_mode) != (member.mode & 0o7777) and not member.issym() and not member.islnk():
            differences.append("mode %o, the layer has %o" % (stat.S_IMODE(info.st_mode), member.mode & 0o7777))
        if (info.st_uid, info.st_gid) != (member.uid, member.gid) and not member.islnk():
            differences.append("owner %d:%d, the layer has %d:%d" % (info.st_uid, info.st_gid, member.uid, member.gid))
        if member.issym():
            target = os.readlink(name, dir_fd=tree.directory(parts[:-1]).fd)
            if target != member.linkname:
                differences.append("link target %s, the layer has %s" % (target, member.linkname))
        elif member.islnk():
            other = split_member_name(member.linkname)
            try:
                other_info = os.lstat(other[-1], dir_fd=tree.directory(other[:-1]).fd) if other else None
            except OSError:
                other_info = None
            if other_info is None or (other_info.st_dev, other_info.st_ino) != (info.st_dev, info.st_ino):
                differences.append("not the same file as %s, as the layer's hard link says" % member.linkname)
        elif member.isreg():
            if info.st_size != member.size:
                differences.append("size %d, the layer has %d" % (info.st_size, member.size))
            else:
                expected = hashlib.sha256()
                source = archive.extractfile(member)
                while source is not None:
                    chunk = source.read(BUFFER_SIZE)
                    if not chunk:
                        break
                    expected.update(chunk)
                actual = hashlib.sha256()
                try:
                    self.bytes_read += read_regular(tree, parts, bytearray(min(BUFFER_SIZE, max(member.size, 1))),
                                                    actual.update)
                except OSError as exc:
                    differences.append(describe_os_error(exc))
                if actual.digest() != expected.digest():
                    differences.append("content differs from the layer's")
        if differences:
            self.problems.append(Problem(FILE_MODIFIED, path, "; ".join(differences)))


def check_blobs(store: ContainerdStore, images: Sequence[Image], whole_store: bool) -> Tuple[List[Verdict], int]:
    """Every index, manifest and config blob of the images hashes to its digest (layer blobs: per layer); an
    image whose blobs could not be read is one verdict with what was found about them."""
    parts = store.parts
    users: Dict[str, List[str]] = {}
    for image in images:
        wanted = ([image.id] if image.id not in image.manifests else []) + list(image.manifests)
        for digest in wanted + ([image.config_digest] if image.config_digest else []):
            users.setdefault(digest, []).append(image.id)
    if whole_store:
        for target, digests in parts.unreadable_images.items():
            for digest in digests:
                users.setdefault(digest, []).append(target)
    verdicts: Dict[Tuple[str, ...], Verdict] = {}

    def report(digest: str, problem: Problem) -> None:
        key = tuple(sorted(set(users[digest])))
        verdicts.setdefault(key, Verdict(None, None, None, images=list(key))).problems.append(problem)

    for digest in sorted(users):
        path = parts.blob_path(digest)
        if digest not in parts.blob_files:
            if not any(digest in image.manifests and digest != image.manifest_digest for image in images):
                report(digest, Problem(FILE_MISSING, path, "the blob is not in the content store"))
            continue
        actual, _count, error = blob_digest(parts, digest)
        if error is not None:
            report(digest, Problem(METADATA, path, error))
        elif actual != digest:
            report(digest, Problem(DIGEST_MISMATCH, path, "the blob hashes to %s" % actual))
    if whole_store:
        by_path = {parts.blob_path(digest): digest for digest in users}
        for record in store.damaged:
            if record.code not in IMAGE_RECORDS:
                continue  # the snapshot databases: a store warning (a running engine changes them between reads)
            digest = by_path.get(record.path)
            if digest is not None:
                report(digest, Problem(METADATA, record.path, record.message))
            else:
                verdicts.setdefault((record.path,), Verdict(None, None, None)).problems.append(
                    Problem(METADATA, record.path, record.message))
    return list(verdicts.values()), len(users)


LayerResult = Tuple[str, List[Problem], int, Optional[Unverifiable]]  # chainID, problems, bytes read, why unverifiable


def check_layers(store: ContainerdStore, chains: List[str], workers: Optional[int]) -> List[LayerResult]:
    """Each layer's content check, the layers shared out by size among processes as on the overlay2 store
    (``_verify.verify_layers``); results in the order of ``chains``."""
    def check_share(share: List[str]) -> List[LayerResult]:
        found = []
        for chain_id in share:
            check = _LayerCheck(store, store.layers[chain_id]).run()
            found.append((chain_id, check.problems, check.bytes_read, check.unverifiable))
        return found

    def cost(chain_id: str) -> int:
        layer = store.layers[chain_id]
        return PER_LAYER_COST + (layer.size or 0) + (layer.compressed_size or 0)

    shares = partition(chains, worker_count(len(chains), 1, workers), cost)
    done = {result[0]: result for share in map_chunks(check_share, shares) for result in share}
    return [done[chain_id] for chain_id in chains]


def verify(store: ContainerdStore, images: Optional[Sequence[str]] = None, layers: Optional[Sequence[str]] = None,
           content: bool = True, workers: Optional[int] = None) -> ContainerdReport:
    started = time.monotonic()
    chosen_images, chains = select(store, images, layers)
    images_by_layer: Dict[str, List[str]] = {}
    for image in store.images.values():
        for chain_id in image.chain_ids:
            images_by_layer.setdefault(chain_id, []).append(image.id)
    containers_by_layer: Dict[str, List[str]] = {}
    parts = store.parts
    for container in store.containers.values():
        for snapshot in parts.stack(container.id)[1:]:
            containers_by_layer.setdefault(snapshot.key, []).append(container.id)
    verdicts = {chain_id: Verdict(chain_id, store.layers[chain_id].diff_id, None,
                                  images=list(images_by_layer.get(chain_id, [])),
                                  containers=list(containers_by_layer.get(chain_id, [])))
                for chain_id in chains}
    unverifiable: List[Unverifiable] = []
    whole_store = not images and not layers
    blob_verdicts, checked_blobs = check_blobs(store, chosen_images if images else list(store.images.values()),
                                               whole_store)
    if content:
        for chain_id, problems, bytes_read, skipped in check_layers(store, chains, workers):
            verdicts[chain_id].problems.extend(problems)
            verdicts[chain_id].bytes_read = bytes_read
            if skipped is not None:
                unverifiable.append(skipped)
    corrupt = [verdict for verdict in verdicts.values() if verdict.problems] + blob_verdicts
    return ContainerdReport(
        checked_layers=len(chains) - len(unverifiable),
        checked_images=len(chosen_images),
        bytes_verified=sum(verdict.bytes_read for verdict in verdicts.values()),
        seconds=time.monotonic() - started,
        corrupt=corrupt,
        unverifiable=unverifiable,
        checked_blobs=checked_blobs + sum(1 for chain in chains if store.layers[chain].blob),
    )
