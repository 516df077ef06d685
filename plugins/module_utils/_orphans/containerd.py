# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Classification of a containerd image store: what containerd's own references keep, and what they do not.

The references are containerd's garbage-collection roots, followed the way its collector follows them, and
then some more (unknown is not unowned): image records (targets), unexpired leases, containers with a task,
``containerd.io/gc.root`` labels, the engine's containers (their RW and ``-init`` snapshots) and BuildKit's
records (``buildkit/containerd-overlayfs/metadata_v2.db``); from there ``gc.ref.content*`` and
``gc.ref.snapshot.overlayfs`` labels, the digests inside the index, manifest and config JSON, and snapshot
parents. Orphans come in two families:

- **files** no database knows: ``unknown_snapshot_dir`` (a directory under ``snapshots/`` whose id the
  snapshotter's metadata does not hold: a crash between mkdir and commit, ``new-*``, ``rm-*``) and
  ``stale_ingest`` (an ``ingest/`` entry with no record); removing them needs no database write;
- **records** in containerd's databases nothing references: ``unreferenced_snapshot``, ``unpack_leftover``
  (``extract-*`` snapshots of an unpack cut short), ``unreferenced_blob`` and ``unrecorded_blob_file`` (a blob
  file with no record in any namespace). These are reported with the command that lets containerd reclaim
  them; the collection never writes a bolt file.
"""

from __future__ import annotations

import errno
import hashlib
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Set

from ansible_collections.strata.overlay2.plugins.module_utils._formats.bolt import BoltError, BoltFile, read_steadily
from ansible_collections.strata.overlay2.plugins.module_utils._store.buildkit import ABSENT, READ, UNKNOWN, ShapeError, live_records
from ansible_collections.strata.overlay2.plugins.module_utils._store.containerd import (
    BLOB_FILES,
    CONTENT_DIR,
    CONTENT_REF_PREFIX,
    GC_ROOT_LABEL,
    INGEST_DIRS,
    SNAPSHOT_DIRS,
    SNAPSHOT_REF_LABEL,
    SNAPSHOTTER_DIR,
    ContainerdStore,
    Snapshot,
    SnapshotUsage,
    is_snapshot_id,
    referenced_digests,
)
from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import (
    InvalidId,
    is_hex64,
    parse_digest,
    removal_origin,
    shorten,
)
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.model import (
    BuildKitCache,
    ContainerdOrphan,
    Orphan,
    Usage,
    orphan_facts,
    tree_usage,
)
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir, describe_os_error
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import DamagedRecord

UNKNOWN_SNAPSHOT_DIR = "unknown_snapshot_dir"
STALE_INGEST = "stale_ingest"
UNREFERENCED_SNAPSHOT = "unreferenced_snapshot"
UNPACK_LEFTOVER = "unpack_leftover"
UNREFERENCED_BLOB = "unreferenced_blob"
UNRECORDED_BLOB_FILE = "unrecorded_blob_file"
FILE_KINDS = (UNKNOWN_SNAPSHOT_DIR, STALE_INGEST)  # removable without a database write
RECORD_KINDS = (UNREFERENCED_SNAPSHOT, UNPACK_LEFTOVER, UNREFERENCED_BLOB, UNRECORDED_BLOB_FILE)
CONTAINERD_ORPHAN_KINDS = FILE_KINDS + RECORD_KINDS

# containerd makes a directory or blob file before the commit that records it, and a commit waits for the disk:
# an unrecorded entry changed this recently is taken for a write in progress, not for an orphan
IN_FLIGHT_SECONDS = 10.0

# damaged records that leave containerd's own references unknown (every record orphan stays), and those that
# leave the snapshotter's directories unknown (every snapshot directory stays)
META_RECORDS = ("containerd_meta", "store_part", "image_record", "image_config")
BACKEND_RECORDS = ("snapshotter_meta", "snapshot_record", "store_part")
BUILDKIT_DB = ("buildkit", "containerd-overlayfs", "metadata_v2.db")


@dataclass
class ContainerdClassification:
    orphans: List[Orphan]
    buildkit: BuildKitCache
    blocking: List[DamagedRecord]
    kept_snapshots: Set[str] = field(default_factory=set)
    kept_blobs: Set[str] = field(default_factory=set)

    def facts(self) -> Dict[str, object]:
        return orphan_facts(self.orphans, self.buildkit, self.blocking, CONTAINERD_ORPHAN_KINDS)


def buildkit_snapshots(store: ContainerdStore) -> BuildKitCache:
    """BuildKit's live records in this mode (``buildkit/containerd-overlayfs/metadata_v2.db``), read by the same
    rule as in overlay2 mode (``_buildkit.live_records``): their snapshot keys, in ``dirs``."""
    usage = Usage()
    path = store.data_root + "/" + "/".join(BUILDKIT_DB)
    try:
        root = SafeDir.open(store.data_root + "/buildkit/containerd-overlayfs")
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return BuildKitCache(ABSENT, "", set(), set(), usage)
        return BuildKitCache(UNKNOWN, "%s: %s" % (path, describe_os_error(exc)), set(), set(), usage)
    with root:
        if not root.exists(BUILDKIT_DB[-1]):
            return BuildKitCache(ABSENT, "", set(), set(), usage)
        try:
            _count, keys = read_steadily(lambda: BoltFile.open_at(root.fd, BUILDKIT_DB[-1], path),
                                         lambda db: live_records(db.root()))
        except (BoltError, ShapeError) as exc:
            return BuildKitCache(UNKNOWN, "%s: %s" % (path, exc), set(), set(), usage)
        except OSError as exc:
            return BuildKitCache(UNKNOWN, "%s: %s" % (path, describe_os_error(exc)), set(), set(), usage)
    return BuildKitCache(READ, "", set(), keys, usage)


class _Classifier:
    def __init__(self, store: ContainerdStore, usage_of: Callable[[Snapshot], int], now: float) -> None:
        self.store = store
        self.parts = store.parts
        self.usage_of = usage_of
        self.now = now
        self.blocking = list(store.damaged)
        self.snapshots: Set[str] = set()
        self.blobs: Set[str] = set()
        self.pending_blobs: List[str] = []
        self.pending_snapshots: List[str] = []

    # -- the references --------------------------------------------------------------------------------------
    def keep_blob(self, digest: Optional[str]) -> None:
        if digest and digest not in self.blobs:
            self.blobs.add(digest)
            self.pending_blobs.append(digest)

    def keep_snapshot(self, key: Optional[str]) -> None:
        if key and key not in self.snapshots:
            self.snapshots.add(key)
            self.pending_snapshots.append(key)

    def follow_labels(self, labels: Dict[str, str]) -> None:
        for name, value in labels.items():
            if name.startswith(CONTENT_REF_PREFIX):
                try:
                    self.keep_blob(parse_digest(value, "content reference"))
                except InvalidId:
                    continue
            elif name == SNAPSHOT_REF_LABEL:
                self.keep_snapshot(value)

    def follow_json(self, digest: str) -> None:
        document = self.parts.blob_json.get(digest)
        if document:
            for found in referenced_digests(document, ("manifests", "config", "layers")):
                self.keep_blob(found)

    def close(self) -> None:
        while self.pending_blobs or self.pending_snapshots:
            while self.pending_blobs:
                digest = self.pending_blobs.pop()
                record = self.parts.blobs.get(digest)
                if record is not None:
                    self.follow_labels(record.labels)
                self.follow_json(digest)
            while self.pending_snapshots:
                snapshot = self.parts.snapshots.get(self.pending_snapshots.pop())
                if snapshot is not None:
                    self.keep_snapshot(snapshot.parent)
                    self.follow_labels(snapshot.labels)

    def roots(self, buildkit: BuildKitCache) -> Set[str]:
        """Mark everything referenced; returns the snapshots that images and containers alone reach."""
        for record in self.parts.image_records.values():
            self.keep_blob(record.target)
            self.follow_labels(record.labels)
        for image in self.store.images.values():
            self.keep_snapshot(image.top_chain_id)
        for container_id in list(self.store.containers) + sorted(self.parts.task_containers):
            self.keep_snapshot(container_id)
            self.keep_snapshot(container_id + "-init")
        self.close()
        used = set(self.snapshots)
        for lease in self.parts.leases.values():
            expires = lease.expires
            if lease.namespace != self.parts.namespace or (expires is not None and expires < self.now):
                continue
            for key in lease.snapshots:
                self.keep_snapshot(key)
            for digest in lease.content:
                self.keep_blob(digest)
        for blob in self.parts.blobs.values():
            if GC_ROOT_LABEL in blob.labels:
                self.keep_blob(blob.digest)
        for snapshot in self.parts.snapshots.values():
            if GC_ROOT_LABEL in snapshot.labels:
                self.keep_snapshot(snapshot.key)
        for key in buildkit.dirs:
            self.keep_snapshot(key)
            self.keep_snapshot(key + "-view")
        self.close()
        return used

    def buildkit_only(self, buildkit: BuildKitCache, used: Set[str]) -> BuildKitCache:
        """BuildKit's snapshots (with their parents) that no image or container reaches, and their usage."""
        held: Set[str] = set()
        for key in buildkit.dirs:
            held.update(snapshot.key for snapshot in self.parts.stack(key))
        held -= used
        usage = Usage(sum(self.usage_of(self.parts.snapshots[key]) for key in held), 0.0)
        return BuildKitCache(buildkit.state, buildkit.reason, set(), held, usage)

    # -- the orphans -----------------------------------------------------------------------------------------
    def orphan(self, kind: str, relative: str, usage: Usage, command: Optional[str] = None,
               blocked: Optional[List[str]] = None, in_progress: bool = False) -> Orphan:
        return ContainerdOrphan(kind=kind, path=self.parts.root + "/" + relative, parts=[relative], usage=usage,
                                blocked_by=list(blocked or []), command=command, in_progress=in_progress)

    def classify(self) -> ContainerdClassification:
        buildkit = buildkit_snapshots(self.store)
        meta_unknown = [r.path for r in self.blocking if r.code in META_RECORDS]
        backend_unknown = [r.path for r in self.blocking if r.code in BACKEND_RECORDS]
        used = self.roots(buildkit)
        buildkit = self.buildkit_only(buildkit, used)
        orphans: List[Orphan] = []
        orphans.extend(self.unknown_snapshot_dirs(backend_unknown))
        orphans.extend(self.stale_ingests(meta_unknown))
        if buildkit.state == UNKNOWN:
            self.blocking.append(DamagedRecord("buildkit", self.store.data_root + "/" + "/".join(BUILDKIT_DB),
                                               buildkit.reason, might_name=frozenset(("snapshots",))))
        if not meta_unknown and buildkit.state != UNKNOWN:
            orphans.extend(self.record_orphans())
        return ContainerdClassification(orphans, buildkit, self.blocking, set(self.snapshots), set(self.blobs))

    def unknown_snapshot_dirs(self, blocked: List[str]) -> List[Orphan]:
        known = {backend.id for backend in self.parts.backend.values()}
        found = []
        steady = set(self.parts.steady(SNAPSHOT_DIRS, self.parts.snapshot_dirs))
        for name in self.parts.snapshot_dirs:
            if name in known:
                continue
            origin = removal_origin(name)
            if origin is not None and is_snapshot_dir_name(origin):  # a removal of ours, cut short: finish it
                relative = SNAPSHOTTER_DIR + "/snapshots/" + name
                usage = tree_usage(self.parts.root + "/" + relative)
                found.append(self.orphan(UNKNOWN_SNAPSHOT_DIR, relative, usage, blocked=blocked, in_progress=True))
                continue
            if not is_snapshot_dir_name(name):
                self.store.note("unexpected", self.parts.snapshot_dir(shorten(name)), "not a snapshot directory")
                continue
            if name not in steady:
                continue  # made or removed while the store was read: in flight
            relative = SNAPSHOTTER_DIR + "/snapshots/" + name
            usage = tree_usage(self.parts.root + "/" + relative)
            if self.settled(usage):
                found.append(self.orphan(UNKNOWN_SNAPSHOT_DIR, relative, usage, blocked=blocked))
        return found

    def settled(self, usage: Usage) -> bool:
        """Whether an entry no record names is still there and has not changed for ``IN_FLIGHT_SECONDS``:
        not a write whose record is still being committed."""
        return 0 < usage.newest_mtime <= self.now - IN_FLIGHT_SECONDS

    def stale_ingests(self, blocked: List[str]) -> List[Orphan]:
        """Ingest directories no record names. A directory's name is the sha256 of its backend ref, so the
        records decide, not the (writable, damageable) ``ref`` file inside it."""
        recorded = set(self.parts.ingest_records)
        for lease in self.parts.leases.values():
            recorded.update(lease.ingests)
        names = {hashlib.sha256(ref.encode("utf-8", "surrogateescape")).hexdigest() for ref in recorded}
        found = []
        steady = set(self.parts.steady(INGEST_DIRS, self.parts.ingest_dirs))
        for name in self.parts.ingest_dirs:
            if is_hex64(removal_origin(name) or ""):  # a removal of ours, cut short: finish it
                relative = CONTENT_DIR + "/ingest/" + name
                usage = tree_usage(self.parts.root + "/" + relative)
                found.append(self.orphan(STALE_INGEST, relative, usage, blocked=blocked, in_progress=True))
                continue
            if not is_hex64(name):
                self.store.note("unexpected", self.parts.ingest_root + "/" + shorten(name), "not an ingest")
                continue
            if name in names or name not in steady:  # recorded, or begun or committed while the store was read
                continue
            relative = CONTENT_DIR + "/ingest/" + name
            usage = tree_usage(self.parts.root + "/" + relative)
            if self.settled(usage):
                found.append(self.orphan(STALE_INGEST, relative, usage, blocked=blocked))
        return found

    def record_orphans(self) -> List[Orphan]:
        found = []
        ns = self.parts.namespace
        for key, snapshot in sorted(self.parts.snapshots.items()):
            if key in self.snapshots:
                continue
            kind = UNPACK_LEFTOVER if key.startswith("extract-") else UNREFERENCED_SNAPSHOT
            relative = SNAPSHOTTER_DIR + "/snapshots/" + (snapshot.id or "?")
            usage = Usage(self.usage_of(snapshot), snapshot.created or 0.0)
            command = "ctr --namespace %s snapshots --snapshotter overlayfs rm '%s'" % (ns, key)
            found.append(self.orphan(kind, relative, usage, command))
        for digest, blob in sorted(self.parts.blobs.items()):
            if digest in self.blobs:
                continue
            relative = CONTENT_DIR + "/blobs/sha256/" + digest.split(":", 1)[1]
            found.append(self.orphan(UNREFERENCED_BLOB, relative, Usage(blob.size, blob.created or 0.0),
                                     "ctr --namespace %s content rm %s" % (ns, digest)))
        for digest in self.parts.steady(BLOB_FILES, sorted(self.parts.blob_files - self.parts.records_any_namespace)):
            relative = CONTENT_DIR + "/blobs/sha256/" + digest.split(":", 1)[1]
            usage = tree_usage(self.parts.root + "/" + relative)
            if not self.settled(usage):
                continue
            found.append(self.orphan(UNRECORDED_BLOB_FILE, relative, usage,
                                     "containerd's content garbage collection removes it at its next run "
                                     "(after any content removal, e.g. docker image rm)"))
        return found


def is_snapshot_dir_name(name: str) -> bool:
    """A name the overlayfs snapshotter gives a directory under ``snapshots/``: an id, ``new-*`` or ``rm-*``."""
    return (is_snapshot_id(name) or name.startswith(("new-", "rm-"))) and "/" not in name


def classify(store: ContainerdStore, usage_of: Optional[Callable[[Snapshot], int]] = None,
             now: Optional[float] = None) -> ContainerdClassification:
    usage = usage_of or SnapshotUsage(store.parts)
    return _Classifier(store, usage, time.time() if now is None else now).classify()
