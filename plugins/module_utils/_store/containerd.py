# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The second source of the store model: Docker's containerd image store (containerd-snapshotter mode).

Reads, never writes: containerd's metadata database (``io.containerd.metadata.v1.bolt/meta.db``), the overlayfs
snapshotter's database (``io.containerd.snapshotter.v1.overlayfs/metadata.db``), the content store's blobs
and ingests, and the engine's ``containers/<id>/config.v2.json``. The result fills the same ``Store`` as the
overlay2 reader (images, layers, containers, findings, damaged records) plus ``Store.containerd``, the parts
only this store has (snapshots, blobs, leases, ingests). Every id read from a database is validated before
it becomes a path: snapshot ids are decimal, digests are ``sha256:<64 hex>``.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import platform
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._formats.bolt import (
    BoltError,
    BoltFile,
    Bucket,
    Meta,
    Result,
    read_steadily,
)
from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import (
    InvalidId,
    chain_ids,
    hex_of,
    is_hex64,
    parse_digest,
    shorten,
)
from ansible_collections.strata.overlay2.plugins.module_utils._util.parallel import run_alongside, worker_count
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir, describe_os_error, disk_usage
from ansible_collections.strata.overlay2.plugins.module_utils._store.containers import read_containers
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import PARENT, Image, Layer, Notes, Store, walk_parents

NAMESPACE = "moby"  # dockerd's namespace in containerd (``--containerd-namespace``)
SNAPSHOTTER = "overlayfs"
META_DB = ("io.containerd.metadata.v1.bolt", "meta.db")
SNAPSHOTTER_DIR = "io.containerd.snapshotter.v1.overlayfs"
CONTENT_DIR = "io.containerd.content.v1.content"
# the directories whose entries are compared with the databases' records, listed before and after reading them
BLOB_FILES, INGEST_DIRS, SNAPSHOT_DIRS = "blobs", "ingest", "snapshots"
LISTINGS = {BLOB_FILES: (CONTENT_DIR, "blobs", "sha256"), INGEST_DIRS: (CONTENT_DIR, "ingest"),
            SNAPSHOT_DIRS: (SNAPSHOTTER_DIR, "snapshots")}
MANAGED_ROOT = ("containerd", "daemon")  # layout (a): dockerd's own containerd, below the data-root
# where a store of this kind keeps its data, relative to a data-root (dockerd's own containerd)
STORE_PATHS = tuple("/".join(MANAGED_ROOT + (name,)) for name in (CONTENT_DIR, SNAPSHOTTER_DIR))
SYSTEM_ROOT = "/var/lib/containerd"  # layout (b): a system containerd's default root
BLOB_LIMIT = 64 << 20  # an index, manifest or config blob larger than this is refused
# the parts that reading meta.db fills, emptied again when a commit overlapped the read
META_FIELDS = ("records_any_namespace", "ingest_records", "leases", "image_records", "blobs", "snapshots",
               "task_containers")
# a store whose snapshotter database is this large (about 2,000 snapshots) has a second process read meta.db's
# content records while this one reads the rest of meta.db and the snapshotter's database
SECOND_PROCESS_BYTES = 1 << 20

VIEW, ACTIVE, COMMITTED = "view", "active", "committed"
_KINDS = {1: VIEW, 2: ACTIVE, 3: COMMITTED}
GO_EPOCH_OFFSET = 62135596800  # seconds from 0001-01-01 to 1970-01-01

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
ATTESTATION = "attestation-manifest"
DANGLING_PREFIX = "moby-dangling@"
PARENT_LABEL = "org.mobyproject.image.parent"
EXPIRE_LABEL = "containerd.io/gc.expire"
UNCOMPRESSED_LABEL = "containerd.io/uncompressed"
SNAPSHOT_REF_LABEL = "containerd.io/gc.ref.snapshot." + SNAPSHOTTER
CONTENT_REF_PREFIX = "containerd.io/gc.ref.content"
GC_ROOT_LABEL = "containerd.io/gc.root"


class ShapeError(ValueError):
    """A database does not have the shape this reader knows."""


# -- encodings -----------------------------------------------------------------------------------------------
def varint(data: bytes) -> int:
    """Go's ``binary.PutVarint`` (zig-zag)."""
    value = uvarint(data)
    return (value >> 1) ^ -(value & 1)


def uvarint(data: bytes) -> int:
    """Go's ``binary.PutUvarint``."""
    result = shift = 0
    for index, byte in enumerate(data):
        if index >= 10:
            break
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result
        shift += 7
    raise ShapeError("not a varint: %s" % shorten(data.hex()))


def go_time(data: Optional[bytes]) -> Optional[float]:
    """Go's ``time.MarshalBinary`` as Unix seconds, or None when absent or of another shape."""
    if not data or data[0] not in (1, 2) or len(data) < 15:
        return None
    seconds, nanos = struct.unpack(">qi", data[1:13])
    return seconds - GO_EPOCH_OFFSET + nanos / 1e9


def go_time_text(text: Optional[str]) -> Optional[float]:
    """An RFC 3339 time as containerd writes it (``expireat`` labels, ingest ``startedat``), or None."""
    if not text:
        return None
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    if "." in value:  # Python < 3.11 takes at most 6 fractional digits
        head, _dot, tail = value.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        zone = tail[len(digits):]
        value = head + "." + (digits[:6] or "0") + zone
    try:
        return datetime.datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def is_snapshot_id(value: str) -> bool:
    return value.isdigit() and value.isascii() and len(value) <= 19 and not value.startswith("0")


def host_architecture() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64"}.get(machine, machine)


def familiar(name: str) -> str:
    """``docker.io/library/base:1`` -> ``base:1``; ``docker.io/org/app:1`` -> ``org/app:1`` (the CLI's form)."""
    if name.startswith("docker.io/"):
        name = name[len("docker.io/"):]
        if name.startswith("library/") and "/" not in name[len("library/"):]:
            name = name[len("library/"):]
    return name


# -- OCI documents (index, manifest, config) as JSON: any value may be of any type ------------------------------
def json_list(document: Dict[str, Any], key: str) -> List[Any]:
    """The list a document holds under ``key``; empty when the key is absent or holds something else."""
    value = document.get(key)
    return value if isinstance(value, list) else []


def json_object(value: Any) -> Dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def referenced_digests(document: Dict[str, Any], keys: Sequence[str]) -> List[str]:
    """The valid digests named by a document's descriptors under ``keys``, in that order ("config" holds one
    descriptor, "manifests" and "layers" a list); a descriptor without a valid digest names nothing."""
    found: List[str] = []
    for key in keys:
        for entry in [document.get(key)] if key == "config" else json_list(document, key):
            if isinstance(entry, dict):
                try:
                    found.append(parse_digest(str(entry.get("digest")), "digest"))
                except InvalidId:
                    continue
    return found


# -- the parts of the store only containerd has ---------------------------------------------------------------
@dataclass
class Snapshot:
    """A snapshot of namespace ``moby``: its key there, and what the snapshotter knows of it."""

    key: str
    backend_key: Optional[str]
    parent: Optional[str]  # the parent's key in the namespace
    created: Optional[float]
    labels: Dict[str, str] = field(default_factory=dict)
    id: Optional[str] = None  # the directory name under snapshots/ (decimal)
    kind: Optional[str] = None  # view | active | committed
    size: Optional[int] = None  # stored usage of a committed snapshot
    inodes: Optional[int] = None


@dataclass
class Blob:
    digest: str
    size: int
    labels: Dict[str, str] = field(default_factory=dict)
    created: Optional[float] = None


@dataclass
class BlobRecords:
    """The namespace's content records (meta.db ``content/blob``), with the state of meta.db they were read
    from: read apart from the rest of meta.db on a large store, and taken only when that state is the one the
    rest was read from (see ``ContainerdReader.load``)."""

    state: Optional[Meta] = None  # None: not read
    blobs: Dict[str, Blob] = field(default_factory=dict)
    recorded: Set[str] = field(default_factory=set)  # every key, valid or not


@dataclass
class Lease:
    id: str
    namespace: str
    created: Optional[float]
    labels: Dict[str, str]
    snapshots: Set[str] = field(default_factory=set)  # keys of snapshotter overlayfs
    content: Set[str] = field(default_factory=set)
    ingests: Set[str] = field(default_factory=set)

    @property
    def expires(self) -> Optional[float]:
        return go_time_text(self.labels.get(EXPIRE_LABEL))


@dataclass
class ImageRecord:
    name: str
    target: str
    media_type: str
    size: int
    created: Optional[float]
    updated: Optional[float]
    labels: Dict[str, str] = field(default_factory=dict)


@dataclass
class BackendSnapshot:
    backend_key: str
    id: str
    kind: Optional[str]
    parent: Optional[str]
    size: Optional[int]
    inodes: Optional[int]
    created: Optional[float]


@dataclass
class ContainerdParts:
    """What the containerd image store holds besides images, layers and containers."""

    root: str  # containerd's root directory
    namespace: str
    layout: str  # managed | system | explicit
    snapshots: Dict[str, Snapshot] = field(default_factory=dict)  # by key in the namespace
    backend: Dict[str, BackendSnapshot] = field(default_factory=dict)  # by the snapshotter's key
    blobs: Dict[str, Blob] = field(default_factory=dict)  # the namespace's content records
    records_any_namespace: Set[str] = field(default_factory=set)  # digests with a record in some namespace
    blob_files: Set[str] = field(default_factory=set)  # digests with a file under blobs/sha256
    leases: Dict[Tuple[str, str], Lease] = field(default_factory=dict)  # (namespace, id)
    ingest_records: Dict[str, Optional[float]] = field(default_factory=dict)  # backend ref -> expires
    ingest_dirs: List[str] = field(default_factory=list)
    snapshot_dirs: List[str] = field(default_factory=list)
    # the same three directories listed before the databases were read (see ``steady``)
    listed_before: Dict[str, Set[str]] = field(default_factory=dict)
    image_records: Dict[str, ImageRecord] = field(default_factory=dict)
    task_containers: Set[str] = field(default_factory=set)  # containers with a task (meta.db containers/)
    blob_json: Dict[str, dict] = field(default_factory=dict)  # parsed index/manifest/config blobs
    unreadable_images: Dict[str, List[str]] = field(default_factory=dict)  # target -> the blobs read for it

    # -- paths (the root is absolute, names are validated) --
    @property
    def snapshots_root(self) -> str:
        return self.root + "/" + SNAPSHOTTER_DIR + "/snapshots"

    def snapshot_dir(self, snapshot_id: str, *rest: str) -> str:
        return "/".join((self.snapshots_root, snapshot_id) + rest)

    def snapshot_fs(self, snapshot_id: str) -> str:
        """The directory that holds a snapshot's files (its upper directory, when active)."""
        return self.snapshots_root + "/" + snapshot_id + "/fs"

    def blob_path(self, digest: str) -> str:
        return self.root + "/" + CONTENT_DIR + "/blobs/sha256/" + hex_of(digest)

    @property
    def ingest_root(self) -> str:
        return self.root + "/" + CONTENT_DIR + "/ingest"

    def steady(self, listing: str, names: Iterable[str]) -> List[str]:
        """The names that were listed both before the databases were read and after: there all along.
        containerd creates an ingest or a snapshot directory before the record that names it is committed,
        and removes a blob or snapshot directory after its record is gone, so a name seen only once came or
        went while the store was read: in flight, never an orphan."""
        before = self.listed_before.get(listing, set())
        return [name for name in names if name in before]

    def fs_dir(self, key: Optional[str]) -> Optional[str]:
        snapshot = self.snapshots.get(key) if key else None
        if snapshot is None or snapshot.id is None:
            return None
        return self.snapshot_fs(snapshot.id)

    def stack(self, key: Optional[str]) -> List[Snapshot]:
        """A snapshot and its parents, nearest first; stops at a gap or a loop."""
        return walk_parents(key, self.snapshots.get, PARENT)


@dataclass
class ContainerdStore(Store):
    """The containerd image store: the model, plus the parts only it has (snapshots, blobs, leases, ingests),
    whose paths ``ContainerdParts`` builds."""

    kind: ClassVar[str] = "containerd"

    parts: ContainerdParts = field(default_factory=lambda: ContainerdParts(root="", namespace="", layout=""))

    def layer_path(self, chain_id: str) -> str:
        return self.parts.fs_dir(chain_id) or self.parts.snapshots_root


class SnapshotUsage:
    """A snapshot's usage as the snapshotter reports it, each active snapshot measured once: committed as
    stored at commit, active measured now (``fs/``), views 0."""

    def __init__(self, parts: ContainerdParts) -> None:
        self.parts = parts
        self.live: Dict[str, int] = {}

    def __call__(self, snapshot: Snapshot) -> int:
        if snapshot.kind == COMMITTED:
            return snapshot.size or 0
        if snapshot.kind == ACTIVE and snapshot.id is not None:
            if snapshot.key not in self.live:
                self.live[snapshot.key] = disk_usage(self.parts.snapshot_fs(snapshot.id))
            return self.live[snapshot.key]
        return 0


# -- reading the databases ------------------------------------------------------------------------------------
def _text(value: Optional[bytes], what: str) -> str:
    if value is None:
        raise ShapeError("%s is missing" % what)
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ShapeError("%s is not UTF-8" % what) from exc


def _labels(bucket: Bucket, name: bytes = b"labels") -> Dict[str, str]:
    labels = bucket.bucket(name)
    result: Dict[str, str] = {}
    if labels is None:
        return result
    for key, value in labels.items():
        if isinstance(value, bytes):
            result[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return result


def _keys(bucket: Optional[Bucket]) -> Set[str]:
    if bucket is None:
        return set()
    return {key.decode("utf-8", "replace") for key in bucket.keys()}


def open_bolt(directory: SafeDir, *names: str) -> BoltFile:
    *parents, file_name = names
    if parents:
        with directory.subdir(*parents) as parent:
            return BoltFile.open_at(parent.fd, file_name, parent.join(file_name))
    return BoltFile.open_at(directory.fd, file_name, directory.join(file_name))


def namespace_names(root: SafeDir) -> Optional[List[str]]:
    """The namespaces of the meta.db below ``root``; None when it cannot be read."""
    def names(db: BoltFile) -> Optional[List[str]]:
        v1 = db.root().bucket(b"v1")
        return None if v1 is None else [key.decode("utf-8", "replace") for key, _bucket in v1.buckets()]

    try:
        return read_steadily(lambda: open_bolt(root, *META_DB), names)
    except (OSError, BoltError):
        return None


def snapshot_keys(root: SafeDir, namespace: str) -> Optional[Set[str]]:
    try:
        return read_steadily(lambda: open_bolt(root, *META_DB), lambda db: _keys(
            db.root().bucket(b"v1", namespace.encode(), b"snapshots", SNAPSHOTTER.encode())))
    except (OSError, BoltError):
        return None


class ContainerdReader:
    """Fills a ``Store`` from a containerd root; every bad entry becomes a finding, the rest is still read."""

    def __init__(self, store: ContainerdStore, data_root: SafeDir, ctd_root: SafeDir, namespace: str, layout: str) -> None:
        self.store = store
        self.data_root = data_root
        self.ctd = ctd_root
        self.parts = ContainerdParts(root=ctd_root.path, namespace=namespace, layout=layout)
        store.parts = self.parts
        self.namespace = namespace.encode()
        self.blob_dir: Optional[SafeDir] = None  # the content store's blobs/sha256, opened once
        self.read_ahead: Dict[str, dict] = {}  # blobs parsed before they are asked for (see ``load``)
        self.known_chains: Dict[Tuple[Optional[str], str], str] = {}  # (parent, DiffID) -> chainID
        self.content_records_alongside = False  # meta.db's content records read by themselves (see ``load``)
        self.meta_state: Optional[Meta] = None  # the state of meta.db read; None: it could not be read
        self.meta_mark = (0, 0)  # (findings, damaged records) before meta.db's

    def load(self) -> None:
        self.parts.listed_before = {listing: set(self.list_dir(*names, quiet=True))
                                    for listing, names in LISTINGS.items()}
        # where it pays, a child reads meta.db's content records meanwhile (about half the work of the two)
        self.content_records_alongside = self.snapshotter_db_large_enough_for_two_processes()
        try:
            if self.content_records_alongside:
                snapshotter, content = run_alongside(self.load_databases,
                                                     lambda: self.store.set_aside(self.read_content_records_alone), True)
                self.take_content_records_read_alongside(*content)
            else:
                snapshotter = self.load_databases()
            self.parts.backend, snapshotter_notes = snapshotter
            self.store.put_back(snapshotter_notes)  # after meta.db's findings, where one pass puts them
            self.join_snapshots()
            self.list_files()
            self.check_snapshot_dirs()
            self.load_images()
        finally:
            self.read_ahead.clear()
            if self.blob_dir is not None:
                self.blob_dir.close()
        self.load_containers()

    def load_databases(self) -> Tuple[Dict[str, BackendSnapshot], Notes]:
        """meta.db, then the snapshotter's database with its findings set aside; with the content records
        read apart, the images' blobs are read ahead meanwhile."""
        self.load_meta()
        backend = self.store.set_aside(self.load_backend)
        if self.content_records_alongside:
            self.read_image_blobs_ahead()
        return backend

    def take_content_records_read_alongside(self, blobs: BlobRecords, notes: Notes) -> None:
        """The content records read apart, where one pass puts them, when they come from the state of meta.db
        that the rest was read from; else (a commit came between, or meta.db could not be read once) meta.db is
        read again here, all of it in one state."""
        if self.meta_state is None:
            return  # meta.db could not be read: it has said so, and no record from it counts
        if blobs.state == self.meta_state:
            self.take_blobs(blobs)
            self.store.put_back(notes)
            return
        self.take_back(self.meta_mark, META_FIELDS)
        self.content_records_alongside = False
        self.load_meta()

    def snapshotter_db_large_enough_for_two_processes(self) -> bool:
        try:
            with self.ctd.subdir(SNAPSHOTTER_DIR) as snapshotter:
                backend_size = snapshotter.lstat("metadata.db").st_size
        except OSError:
            return False
        return backend_size >= SECOND_PROCESS_BYTES and worker_count(2, 1) > 1

    def load_meta(self) -> None:
        meta_path = self.ctd.join(*META_DB)
        self.meta_mark = self.findings_mark()
        self.meta_state = None
        try:
            self.meta_state = self.read_steadily(META_DB, self.read_meta, META_FIELDS)
        except (OSError, BoltError, ShapeError) as exc:
            message = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
            self.store.note("unreadable", meta_path, message)
            self.store.damage("containerd_meta", meta_path, "containerd's metadata cannot be read: " + message,
                              ("dirs", "chains", "mounts", "content"))

    def load_backend(self) -> Dict[str, BackendSnapshot]:
        """The snapshotter's records."""
        backend_path = self.ctd.join(SNAPSHOTTER_DIR, "metadata.db")
        try:
            self.read_steadily((SNAPSHOTTER_DIR, "metadata.db"), self.read_backend, ("backend",))
        except (OSError, BoltError, ShapeError) as exc:
            message = describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
            self.store.note("unreadable", backend_path, message)
            self.store.damage("snapshotter_meta", backend_path, "the snapshotter's metadata cannot be read: "
                              + message, ("dirs",))
        return self.parts.backend

    def read_steadily(self, names: Tuple[str, ...], read: Callable[[BoltFile], Result],
                      fields: Tuple[str, ...]) -> Result:
        """``read`` one committed state of a database containerd may be writing (see ``_bolt.read_steadily``);
        a read that a commit overlapped is taken back (the ``fields`` of the parts it fills, its findings)."""
        mark = self.findings_mark()
        return read_steadily(lambda: open_bolt(self.ctd, *names), read, lambda: self.take_back(mark, fields))

    def findings_mark(self) -> Tuple[int, int]:
        return len(self.store.findings), len(self.store.damaged)

    def take_back(self, mark: Tuple[int, int], fields: Tuple[str, ...]) -> None:
        """What a read said since ``mark`` taken back, and the ``fields`` of the parts it filled emptied."""
        del self.store.findings[mark[0]:]
        del self.store.damaged[mark[1]:]
        for name in fields:
            setattr(self.parts, name, type(getattr(self.parts, name))())

    # -- meta.db ------------------------------------------------------------------------------------------
    def read_meta(self, meta: BoltFile) -> Meta:
        """Reads meta.db into the parts (the content records only when they are not read apart); the state
        read."""
        v1 = meta.root().bucket(b"v1")
        if v1 is None:
            raise ShapeError("meta.db has no v1 bucket")
        for name, bucket in v1.buckets():
            namespace = name.decode("utf-8", "replace")
            content = bucket.bucket(b"content", b"blob") if name != self.namespace else None  # in read_blobs
            for digest in (content.keys() if content else ()):
                self.parts.records_any_namespace.add(digest.decode("utf-8", "replace"))
            ingests = bucket.bucket(b"content", b"ingests")
            for ref, record in (ingests.items() if ingests else ()):
                if isinstance(record, Bucket):
                    backend_ref = record.value(b"ref")
                    expires = go_time(record.value(b"expireat"))
                    self.parts.ingest_records[(backend_ref or ref).decode("utf-8", "replace")] = expires
            leases = bucket.bucket(b"leases")
            for lease_id, record in (leases.items() if leases else ()):
                if isinstance(record, Bucket):
                    self.read_lease(namespace, lease_id.decode("utf-8", "replace"), record)
        ns = v1.bucket(self.namespace)
        if ns is None:
            self.store.note("missing", self.ctd.join(*META_DB), "namespace %s is not in containerd's metadata"
                            % self.parts.namespace)
            return meta.meta
        self.read_images(ns)
        self.read_snapshots(ns)
        self.parts.task_containers = _keys(ns.bucket(b"containers"))
        if not self.content_records_alongside:  # last: the findings of those read apart are put back after all the others
            self.take_blobs(self.read_blobs(ns))
        return meta.meta

    def read_lease(self, namespace: str, lease_id: str, record: Bucket) -> None:
        lease = Lease(id=lease_id, namespace=namespace, created=go_time(record.value(b"createdat")),
                      labels=_labels(record))
        lease.snapshots = _keys(record.bucket(b"snapshots", SNAPSHOTTER.encode()))
        lease.content = _keys(record.bucket(b"content"))
        lease.ingests = _keys(record.bucket(b"ingests"))
        self.parts.leases[(namespace, lease_id)] = lease

    def read_images(self, ns: Bucket) -> None:
        images = ns.bucket(b"images")
        for name_raw, record in (images.items() if images else ()):
            name = name_raw.decode("utf-8", "replace")
            where = "%s: image %s" % (self.ctd.join(*META_DB), shorten(name))
            if not isinstance(record, Bucket):
                self.store.note("invalid", where, "is not a bucket")
                continue
            target = record.bucket(b"target")
            try:
                if target is None:
                    raise ShapeError("has no target")
                digest = parse_digest(_text(target.value(b"digest"), "target digest"), "image target")
                media_type = _text(target.value(b"mediatype"), "target media type")
                size = varint(target.value(b"size") or b"\x00")
            except (ShapeError, InvalidId, BoltError) as exc:
                self.store.note("invalid", where, str(exc))
                self.store.damage("image_record", where, str(exc), ("content", "chains"))
                continue
            self.parts.image_records[name] = ImageRecord(
                name=name, target=digest, media_type=media_type, size=size,
                created=go_time(record.value(b"createdat")), updated=go_time(record.value(b"updatedat")),
                labels=_labels(record))

    def read_blobs(self, ns: Bucket) -> BlobRecords:
        found = BlobRecords(state=ns.db.meta)
        blobs = ns.bucket(b"content", b"blob")
        for digest_raw, record in (blobs.items() if blobs else ()):
            text = digest_raw.decode("utf-8", "replace")
            found.recorded.add(text)
            try:
                digest = parse_digest(text, "content digest")
            except InvalidId as exc:
                self.store.note("invalid", self.ctd.join(*META_DB), str(exc))
                continue
            if not isinstance(record, Bucket):
                continue
            try:
                size = varint(record.value(b"size") or b"\x00")
            except ShapeError as exc:
                self.store.note("invalid", self.ctd.join(*META_DB), "blob %s: %s" % (digest, exc))
                size = 0
            found.blobs[digest] = Blob(digest, size, _labels(record), go_time(record.value(b"createdat")))
        return found

    def take_blobs(self, found: BlobRecords) -> None:
        self.parts.blobs = found.blobs
        self.parts.records_any_namespace |= found.recorded

    def read_content_records_alone(self) -> BlobRecords:
        """The namespace's content records, read by themselves from meta.db (see ``load``); not read (no
        state) when meta.db cannot be read once: ``load_meta`` reads it again and says why."""
        def read(meta: BoltFile) -> BlobRecords:
            ns = meta.root().bucket(b"v1", self.namespace)
            return self.read_blobs(ns) if ns is not None else BlobRecords(state=meta.meta)

        try:
            return self.read_steadily(META_DB, read, ())
        except (OSError, BoltError, ShapeError):
            return BlobRecords()

    def read_snapshots(self, ns: Bucket) -> None:
        snapshots = ns.bucket(b"snapshots", SNAPSHOTTER.encode())
        for key_raw, record in (snapshots.items() if snapshots else ()):
            if not isinstance(record, Bucket):
                continue
            key = key_raw.decode("utf-8", "replace")
            name = record.value(b"name")
            parent = record.value(b"parent")
            self.parts.snapshots[key] = Snapshot(
                key=key,
                backend_key=name.decode("utf-8", "replace") if name else None,
                parent=parent.decode("utf-8", "replace") if parent else None,
                created=go_time(record.value(b"createdat")),
                labels=_labels(record))

    # -- the snapshotter's metadata.db --------------------------------------------------------------------
    def read_backend(self, backend: BoltFile) -> None:
        snapshots = backend.root().bucket(b"v1", b"snapshots")
        if snapshots is None:  # the snapshotter always has it, even empty: this is not a shape we know
            raise ShapeError("metadata.db has no v1/snapshots bucket")
        backend_path = self.ctd.join(SNAPSHOTTER_DIR, "metadata.db")
        for key_raw, record in snapshots.items():
            if not isinstance(record, Bucket):
                raise ShapeError("metadata.db: snapshot %s is a value, not a bucket" % shorten(key_raw))
            key = key_raw.decode("utf-8", "replace")
            try:
                snapshot_id = str(uvarint(record.value(b"id") or b""))
            except ShapeError as exc:
                where = "%s: snapshot %s" % (backend_path, shorten(key))
                self.store.note("invalid", where, str(exc))
                self.store.damage("snapshot_record", where, str(exc), ("dirs",))
                continue
            kind_raw = record.value(b"kind")
            size = record.value(b"size")
            inodes = record.value(b"inodes")
            parent = record.value(b"parent")
            try:
                self.parts.backend[key] = BackendSnapshot(
                    backend_key=key, id=snapshot_id, kind=_KINDS.get(kind_raw[0]) if kind_raw else None,
                    parent=parent.decode("utf-8", "replace") if parent else None,
                    size=varint(size) if size else None, inodes=varint(inodes) if inodes else None,
                    created=go_time(record.value(b"createdat")))
            except ShapeError as exc:
                self.store.note("invalid", "%s: snapshot %s" % (backend_path, shorten(key)), str(exc))

    def join_snapshots(self) -> None:
        backend_path = self.ctd.join(SNAPSHOTTER_DIR, "metadata.db")
        unreadable = any(record.path == backend_path for record in self.store.damaged)
        for snapshot in self.parts.snapshots.values():
            backend = self.parts.backend.get(snapshot.backend_key or "")
            if backend is None:
                if unreadable:
                    continue
                message = ("snapshot %s (%s) is not in the snapshotter's metadata (created or removed while the "
                           "store was read, or a damaged database)" % (shorten(snapshot.key),
                                                                       shorten(snapshot.backend_key)))
                self.store.note("missing", backend_path, message)
                # the two databases disagree: the directory of that snapshot is unknown, and any might be it
                self.store.damage("snapshot_record", backend_path, message, ("dirs",))
                continue
            snapshot.id, snapshot.kind = backend.id, backend.kind
            snapshot.size, snapshot.inodes = backend.size, backend.inodes

    # -- files ----------------------------------------------------------------------------------------------
    def list_files(self) -> None:
        self.parts.blob_files = {"sha256:" + name for name in self.list_dir(*LISTINGS[BLOB_FILES]) if is_hex64(name)}
        self.parts.listed_before[BLOB_FILES] = {"sha256:" + name for name in self.parts.listed_before[BLOB_FILES]}
        self.parts.ingest_dirs = sorted(self.list_dir(*LISTINGS[INGEST_DIRS]))
        self.parts.snapshot_dirs = sorted(self.list_dir(*LISTINGS[SNAPSHOT_DIRS]))

    def check_snapshot_dirs(self) -> None:
        """Each snapshot record names its own directory, and that directory exists. A record whose id was
        changed would otherwise leave a live directory looking unknown: where this does not hold, the
        snapshotter's database is damaged and no directory may be taken for unknown."""
        snapshots = self.ctd.join(SNAPSHOTTER_DIR, "snapshots")
        if any(record.path == snapshots for record in self.store.damaged):
            return  # not listed: nothing to compare with (already said why)
        owners: Dict[str, List[str]] = {}
        for key, backend in self.parts.backend.items():
            owners.setdefault(backend.id, []).append(key)
        present = set(self.parts.snapshot_dirs)
        shared = sorted((snapshot_id for snapshot_id, keys in owners.items() if len(keys) > 1), key=int)
        # a directory listed before the databases were read and gone after was removed after its record: in flight
        listed_before = self.parts.listed_before.get(SNAPSHOT_DIRS, set())
        missing = sorted((snapshot_id for snapshot_id in owners
                          if snapshot_id not in present and snapshot_id not in listed_before), key=int)
        backend_path = self.ctd.join(SNAPSHOTTER_DIR, "metadata.db")
        for ids, what in ((shared, "named by more than one snapshot record"),
                          (missing, "named by a snapshot record but missing")):
            if ids:
                message = "%d snapshot directories %s (%s%s): the snapshotter's records do not match its " \
                          "directories" % (len(ids), what, ", ".join("snapshots/" + i for i in ids[:5]),
                                           ", ..." if len(ids) > 5 else "")
                self.store.note("invalid", backend_path, message)
                self.store.damage("snapshot_record", backend_path, message, ("dirs",))

    def list_dir(self, *names: str, quiet: bool = False) -> List[str]:
        try:
            with self.ctd.subdir(*names) as directory:
                return directory.names()
        except OSError as exc:
            if exc.errno != errno.ENOENT and not quiet:
                self.store.note("unreadable", self.ctd.join(*names), describe_os_error(exc))
                self.store.damage("store_part", self.ctd.join(*names), describe_os_error(exc), ("dirs", "content"))
            return []

    def read_blob_json(self, digest: str) -> Optional[dict]:
        """An index, manifest or config blob, parsed (once); None, and a finding, when it cannot be."""
        cached = self.parts.blob_json.get(digest)
        if cached is not None:
            return cached
        value = self.read_ahead.pop(digest, None)
        if value is None:
            path = self.parts.blob_path(digest)
            try:
                value = self.parse_blob(digest)
            except OSError as exc:
                kind = "missing" if exc.errno == errno.ENOENT else "unreadable"
                self.store.note(kind, path, describe_os_error(exc))
                return None
            except (ValueError, UnicodeDecodeError) as exc:
                self.store.note("invalid", path, "not a JSON document: %s" % shorten(str(exc)))
                return None
        self.parts.blob_json[digest] = value
        return value

    def parse_blob(self, digest: str) -> dict:
        if self.blob_dir is None:
            self.blob_dir = self.ctd.subdir(CONTENT_DIR, "blobs", "sha256")
        value = json.loads(self.blob_dir.read_bytes(hex_of(digest), BLOB_LIMIT).decode("utf-8"))
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        return value

    def read_image_blobs_ahead(self) -> None:
        """Every image's index, manifests and config parsed into ``read_ahead``, quietly, while the child
        reads the content records; ``read_blob_json`` takes them from there, and reads again (saying what is
        wrong) any that is not there. A blob's content is its digest's, so when it was read does not matter."""
        pending = sorted({record.target for record in self.parts.image_records.values()}, reverse=True)
        seen = set(pending)
        while pending:
            digest = pending.pop()
            try:
                document = self.read_ahead[digest] = self.parse_blob(digest)
            except (OSError, ValueError, UnicodeDecodeError):
                continue
            for found in referenced_digests(document, ("manifests", "config")):
                if found not in seen:
                    seen.add(found)
                    pending.append(found)

    # -- images ---------------------------------------------------------------------------------------------
    def load_images(self) -> None:
        by_target: Dict[str, List[ImageRecord]] = {}
        for record in self.parts.image_records.values():
            by_target.setdefault(record.target, []).append(record)
        for target, records in sorted(by_target.items()):
            image = self.load_image(target, records)
            if image is not None:
                self.store.images[image.id] = image
                self.add_layers(image)

    def platform_manifest(self, target: str, media_type: str) -> Tuple[Optional[str], List[str]]:
        """The manifest the engine uses for this host, and every manifest of the target (for sizes)."""
        if media_type not in INDEX_TYPES:
            return target, [target]
        index = self.read_blob_json(target)
        if index is None:
            return None, []
        manifests: List[str] = []
        chosen: Optional[str] = None
        arch = host_architecture()
        for entry in json_list(index, "manifests"):
            if not isinstance(entry, dict):
                continue
            try:
                digest = parse_digest(str(entry.get("digest")), "manifest digest")
            except InvalidId:
                continue
            manifests.append(digest)
            annotations = json_object(entry.get("annotations"))
            wanted = json_object(entry.get("platform"))
            if annotations.get("vnd.docker.reference.type") == ATTESTATION:
                continue
            if chosen is None and wanted.get("os", "linux") == "linux" and wanted.get("architecture", arch) == arch:
                chosen = digest
        return chosen, manifests

    def load_image(self, target: str, records: List[ImageRecord]) -> Optional[Image]:
        names = sorted(record.name for record in records)
        where = "%s: image %s" % (self.ctd.join(*META_DB), shorten(names[0]))
        manifest_digest, manifests = self.platform_manifest(target, records[0].media_type)
        self.parts.unreadable_images[target] = [target] + [m for m in [manifest_digest] if m]
        manifest = self.read_blob_json(manifest_digest) if manifest_digest else None
        if manifest is None:
            self.store.note("missing", where, "no manifest for this platform can be read")
            return None
        try:
            config_digest = parse_digest(str(json_object(manifest.get("config")).get("digest")), "config digest")
            layers = manifest.get("layers", [])
            if not isinstance(layers, list):
                raise TypeError("the manifest's layers are not a list")
            layer_blobs = [parse_digest(str(json_object(layer).get("digest")), "layer digest") for layer in layers]
        except (InvalidId, TypeError) as exc:
            self.store.note("invalid", self.parts.blob_path(manifest_digest), str(exc))
            return None
        for other in manifests:
            if other != manifest_digest and other in self.parts.blob_files:
                self.read_blob_json(other)  # sized with the image; attestation manifests may be absent
        self.parts.unreadable_images[target].append(config_digest)
        config = self.read_blob_json(config_digest)
        if config is None:
            self.store.damage("image_config", self.parts.blob_path(config_digest), "the config cannot be read",
                              ("chains",))
            return None
        try:
            listed = config["rootfs"]["diff_ids"]
            if not isinstance(listed, list):
                raise TypeError("rootfs.diff_ids is not a list")
            diff_ids = [parse_digest(value, "rootfs.diff_ids entry") for value in listed]
        except (KeyError, TypeError, InvalidId) as exc:
            message = "not a valid image config: %s" % shorten(str(exc))
            self.store.note("invalid", self.parts.blob_path(config_digest), message)
            self.store.damage("image_config", self.parts.blob_path(config_digest), message, ("chains",))
            return None
        tags: List[str] = []
        digests: List[str] = []
        parent = None
        for record in records:
            if record.name.startswith(DANGLING_PREFIX):
                continue
            tags.append(familiar(record.name))
            repository = record.name.rsplit(":", 1)[0] if ":" in record.name.split("/")[-1] else record.name
            digests.append(familiar(repository) + "@" + target)
        for record in records:
            if PARENT_LABEL in record.labels:
                try:
                    parent = parse_digest(record.labels[PARENT_LABEL], "image parent")
                except InvalidId as exc:
                    self.store.note("invalid", where, str(exc))
        created = config.get("created")
        del self.parts.unreadable_images[target]
        image = Image(id=target, diff_ids=diff_ids, chain_ids=chain_ids(diff_ids, self.known_chains),
                      tags=sorted(set(tags)),
                      digests=sorted(set(digests)), parent=parent,
                      created=created if isinstance(created, str) else None, config_digest=config_digest,
                      manifest_digest=manifest_digest, manifests=manifests, layer_blobs=layer_blobs, names=names)
        if parent:
            self.store.image_parents[target] = parent
        return image

    def add_layers(self, image: Image) -> None:
        parent = None
        for index, (chain_id, diff_id) in enumerate(zip(image.chain_ids, image.diff_ids)):
            layer = self.store.layers.get(chain_id)
            if layer is None:
                key = chain_id
                snapshot = self.parts.snapshots.get(key)
                blob = image.layer_blobs[index] if index < len(image.layer_blobs) else None
                record = self.parts.blobs.get(blob) if blob else None
                layer = Layer(chain_id=chain_id, diff_id=diff_id, parent=parent, cache_id=None,
                              size=snapshot.size if snapshot else None, snapshot_key=key if snapshot else None,
                              snapshot_id=snapshot.id if snapshot else None, blob=blob,
                              compressed_size=record.size if record else None)
                self.store.layers[chain_id] = layer
            parent = chain_id

    # -- containers -----------------------------------------------------------------------------------------
    def load_containers(self) -> None:
        read_containers(self.store, self.data_root)


def candidate_roots(data_root: str, extra: Iterable[str] = ()) -> List[Tuple[str, str]]:
    """Where a containerd root for this data-root may be: (path, layout), most likely first."""
    found = [(os.path.join(data_root, *MANAGED_ROOT), "managed")]
    for path in extra:
        found.append((path, "system"))
    found.append((SYSTEM_ROOT, "system"))
    seen: Set[str] = set()
    unique = []
    for path, layout in found:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            unique.append((path, layout))
    return unique
