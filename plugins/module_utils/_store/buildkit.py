# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""What dockerd's built-in BuildKit owns in a classic overlay2 store, read from its bolt databases.

BuildKit (the "moby" worker, engines 20.10 to 28.x in graph-driver mode) keeps three bolt files under
``<data-root>/buildkit/`` that together say which snapshots its build cache holds::

    containerdmeta.db  v1/<namespace>/leases/<lease>/snapshots/<snapshotter>/<snapshot id>   the lease roots
    metadata_v2.db     _main/<record>/{cache.snapshot, cache.equalMutable, cache.deleted}     the live records
    snapshots.db       <snapshot>/{committed, chainid, parent}, <graph id>/parent             snapshot -> directory

The roots are the snapshots of every lease and of every live record (a record that is no equal-mutable view
and not being deleted; its snapshot is ``cache.snapshot``, else the record id). A root ``sha256:<chain>`` is a
layer chain. Any other root resolves through snapshots.db: its ``chainid`` (when exported as a layer), its
directory (``committed``, else the snapshot id itself) and, recursively, its parent. The layer chains found
are closed over their ancestors by the classifier, which knows the layer database.

Engines 18.09 to 19.03 keep BuildKit's first record format instead: ``metadata.db`` (the same ``_main/<record>``
buckets, without ``cache.snapshot``), ``cache.db`` and ``snapshots.db``, and neither ``containerdmeta.db`` nor
``metadata_v2.db`` (Engine 20.10 migrates them at its first start: BuildKit's ``cache/migrate_v2.go`` gives every
record a lease on the snapshot named by its id, deleted and equal-mutable records included). Read by that rule,
every record of ``metadata.db`` is a root, its snapshot its id; a ``metadata.db`` without records owns nothing.

Unknown is not unowned: a database that is missing where BuildKit state exists, that cannot be read, that
has a shape this reader does not know, or that names an id that does not validate gives ``Ownership`` with
``state == UNKNOWN`` and the reason; then everything BuildKit might own must stay.
"""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass, field
from typing import Dict, Optional, Set, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._formats.bolt import (
    READ_ATTEMPTS,
    BoltError,
    BoltFile,
    Bucket,
    BusyDatabase,
    read_together_steadily,
)
from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import is_buildkit_id, is_cache_id, is_hex64, shorten
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir, describe_os_error

ABSENT = "absent"  # no buildkit/ directory: BuildKit owns nothing here
READ = "read"  # the databases were read; ``chains`` and ``dirs`` are exact
UNKNOWN = "unknown"  # BuildKit state exists but could not be read: it might own any chain or directory

DATABASES = ("containerdmeta.db", "metadata_v2.db", "snapshots.db")
FIRST_FORMAT = "metadata.db"  # engines 18.09 to 19.03: BuildKit's records before metadata_v2.db
MAX_SNAPSHOT_DEPTH = 1024  # parents followed from one root; a real build cache is a few hundred deep


class ShapeError(Exception):
    """A database read fine but holds something this reader does not know how to interpret."""


class Unopenable(Exception):
    """One of the databases could not be opened (``path``: which one)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__("%s: %s" % (path, reason))
        self.path = path
        self.reason = reason


@dataclass
class Ownership:
    state: str
    path: str  # the buildkit/ directory
    reason: str = ""  # why the state is UNKNOWN, naming the file
    culprit: str = ""  # the file that made it UNKNOWN
    chains: Set[str] = field(default_factory=set)  # ``sha256:<chain>`` held by the build cache (ancestors not added)
    dirs: Set[str] = field(default_factory=set)  # overlay2 directory names held by the build cache
    roots: int = 0  # distinct root snapshots
    records: int = 0  # live cache records in metadata_v2.db


def read_ownership(root: SafeDir) -> Ownership:
    """BuildKit's ownership in the data-root open as ``root``; never raises for what is on disk."""
    path = root.join("buildkit")
    try:
        directory = root.subdir("buildkit")
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return Ownership(ABSENT, path)
        return Ownership(UNKNOWN, path, "%s: %s" % (path, describe_os_error(exc)), path)
    with directory:
        try:
            if first_format(directory):
                return _read_first_format(directory, path)
            return read_together_steadily([lambda name=name: _open(directory, name) for name in DATABASES],
                                          lambda databases: _resolve(path, dict(zip(DATABASES, databases))))
        except Unopenable as exc:
            return Ownership(UNKNOWN, path, "%s: %s" % (exc.path, exc.reason), exc.path)
        except BusyDatabase:
            return Ownership(UNKNOWN, path, "%s changed while it was read, %d times in a row (BuildKit is busy "
                             "writing it); read it again later" % (path, READ_ATTEMPTS), path)
        except (BoltError, ShapeError) as exc:
            return Ownership(UNKNOWN, path, "%s: %s" % (path, exc), path)


def first_format(directory: SafeDir) -> bool:
    """Whether ``buildkit/`` holds BuildKit's first record format (``metadata.db``) and not the second."""
    return directory.exists(FIRST_FORMAT) and not any(directory.exists(name) for name in DATABASES[:2])


def _read_first_format(directory: SafeDir, path: str) -> Ownership:
    """Ownership from ``metadata.db`` and, when it has records, ``snapshots.db``."""
    records, roots = read_together_steadily([lambda: _open(directory, FIRST_FORMAT)],
                                            lambda databases: first_format_records(databases[0].root()))
    ownership = Ownership(READ, path, roots=len(roots), records=records)
    if not roots:
        return ownership  # no record: nothing is BuildKit's

    def resolve(databases) -> Ownership:
        resolved = Ownership(READ, path, roots=len(roots), records=records)
        for snapshot_id in sorted(roots):
            _own(databases[0].root(), snapshot_id, resolved)
        return resolved
    return read_together_steadily([lambda: _open(directory, "snapshots.db")], resolve)


def first_format_records(root: Bucket) -> Tuple[int, Set[str]]:
    """(record count, their snapshot ids) of a first-format ``metadata.db``: every record is a root (the
    migration to the second format gives each a lease), its snapshot ``cache.snapshot`` where set, else its id."""
    main = _bucket_or_none(root, b"_main")
    if main is None:
        return 0, set()
    roots: Set[str] = set()
    count = 0
    for record_id, record in main.items():
        if not isinstance(record, Bucket):
            raise ShapeError("record %s is a value, not a bucket" % _text(record_id))
        name = _text(record_id)
        snapshot = _field(record, b"cache.snapshot", name)
        if snapshot is not None and not isinstance(snapshot, str):
            raise ShapeError("record %s: cache.snapshot is not a string" % name)
        roots.add(_snapshot_id((snapshot or name).encode("utf-8"), "record %s" % shorten(name)))
        count += 1
    return count, roots


def _open(directory: SafeDir, name: str) -> BoltFile:
    path = directory.join(name)
    try:
        return BoltFile.open_at(directory.fd, name, path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise Unopenable(path, "missing while BuildKit state exists (buildkit/ is there)") from exc
        raise Unopenable(path, describe_os_error(exc)) from exc
    except BoltError as exc:
        raise Unopenable(path, str(exc)) from exc


def _resolve(path: str, databases: Dict[str, BoltFile]) -> Ownership:
    roots = lease_roots(databases["containerdmeta.db"].root())
    records, record_roots = live_records(databases["metadata_v2.db"].root())
    roots |= record_roots
    ownership = Ownership(READ, path, roots=len(roots), records=records)
    snapshots = databases["snapshots.db"].root()
    for snapshot_id in sorted(roots):
        _own(snapshots, snapshot_id, ownership)
    return ownership


def lease_roots(root: Bucket) -> Set[str]:
    """Snapshot ids of every lease: ``v1/<namespace>/leases/<lease>/snapshots/<snapshotter>/<id>``."""
    roots: Set[str] = set()
    v1 = _bucket_or_none(root, b"v1")
    if v1 is None:
        return roots
    for _namespace, namespace in v1.buckets():
        leases = _bucket_or_none(namespace, b"leases")
        if leases is None:
            continue
        for lease_id, lease in leases.items():
            if not isinstance(lease, Bucket):
                raise ShapeError("lease %s is a value, not a bucket" % _text(lease_id))
            snapshotters = _bucket_or_none(lease, b"snapshots")
            if snapshotters is None:
                continue
            for snapshotter_name, snapshotter in snapshotters.items():
                if not isinstance(snapshotter, Bucket):
                    raise ShapeError("lease %s: snapshotter %s is a value" % (_text(lease_id), _text(snapshotter_name)))
                for snapshot_id, value in snapshotter.items():
                    if isinstance(value, Bucket):
                        raise ShapeError("lease %s: snapshot %s is a bucket" % (_text(lease_id), _text(snapshot_id)))
                    roots.add(_snapshot_id(snapshot_id, "lease %s" % _text(lease_id)))
    return roots


def live_records(root: Bucket) -> Tuple[int, Set[str]]:
    """(live record count, their snapshot ids) from ``_main``: no equal-mutable view, not being deleted."""
    main = _bucket_or_none(root, b"_main")
    if main is None:
        return 0, set()
    count = 0
    roots: Set[str] = set()
    for record_id, record in main.items():
        name = _text(record_id)
        if not isinstance(record, Bucket):
            raise ShapeError("record %s is a value, not a bucket" % name)
        if not is_buildkit_id(name):
            raise ShapeError("record id %s is not a 25-character BuildKit id" % shorten(name))
        if _field(record, b"cache.equalMutable", name) or _field(record, b"cache.deleted", name) is True:
            continue
        snapshot = _field(record, b"cache.snapshot", name)
        if snapshot is not None and not isinstance(snapshot, str):
            raise ShapeError("record %s: cache.snapshot is not a string" % name)
        count += 1
        roots.add(_snapshot_id((snapshot or name).encode("utf-8"), "record %s" % name))
    return count, roots


def _own(snapshots: Bucket, snapshot_id: str, ownership: Ownership) -> None:
    """Add what ``snapshot_id`` holds (chain, directory, and its parents') to ``ownership``."""
    seen: Set[str] = set()
    current = snapshot_id
    while current:
        if current in seen:
            raise ShapeError("snapshot %s: the parents loop back to %s" % (snapshot_id, current))
        if len(seen) > MAX_SNAPSHOT_DEPTH:
            raise ShapeError("snapshot %s has more than %d parents" % (snapshot_id, MAX_SNAPSHOT_DEPTH))
        seen.add(current)
        if current.startswith("sha256:"):
            ownership.chains.add(current)
            return
        info = _bucket_or_none(snapshots, current.encode("utf-8"))
        if info is None:  # the directory is created before the bucket is written
            ownership.dirs.add(current)
            return
        chain = _plain(info, b"chainid", current)
        if chain:
            ownership.chains.add(_chain_id(chain, "snapshot %s chainid" % current))
        graph_id = _plain(info, b"committed", current) or current
        if not is_cache_id(graph_id):
            raise ShapeError("snapshot %s: committed %s is not a directory name" % (current, shorten(graph_id)))
        ownership.dirs.add(graph_id)
        graph = _bucket_or_none(snapshots, graph_id.encode("utf-8")) if graph_id != current else info
        parent = (_plain(graph, b"parent", graph_id) if graph is not None else "") or _plain(info, b"parent", current)
        current = _snapshot_id(parent.encode("utf-8"), "snapshot %s parent" % current) if parent else ""


# -- small readers ------------------------------------------------------------
def _bucket_or_none(bucket: Bucket, name: bytes) -> Optional[Bucket]:
    value = bucket.get(name)
    if value is None or isinstance(value, Bucket):
        return value
    raise ShapeError("%s/%s is a value, not a bucket" % (bucket.name, _text(name)))


def _plain(bucket: Bucket, key: bytes, where: str) -> str:
    value = bucket.get(key)
    if value is None:
        return ""
    if isinstance(value, Bucket):
        raise ShapeError("snapshot %s: %s is a bucket, not a value" % (where, _text(key)))
    return _text(value)


def _field(record: Bucket, key: bytes, name: str) -> object:
    """A metadata_v2.db field: JSON ``{"value": ...}``; an empty value reads as None."""
    raw = record.get(key)
    if raw is None or raw == b"":
        return None
    if isinstance(raw, Bucket):
        raise ShapeError("record %s: %s is a bucket, not a value" % (name, _text(key)))
    try:
        decoded = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise ShapeError("record %s: %s is not JSON" % (name, _text(key))) from exc
    if not isinstance(decoded, dict):
        raise ShapeError("record %s: %s is not a JSON object" % (name, _text(key)))
    return decoded.get("value")


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ShapeError("%s is not UTF-8" % shorten(raw)) from exc


def _chain_id(value: str, where: str) -> str:
    if value.startswith("sha256:") and is_hex64(value[7:]):
        return value
    raise ShapeError("%s is not sha256:<64 hex>: %s" % (where, shorten(value)))


def _snapshot_id(raw: bytes, where: str) -> str:
    """A snapshot id: a BuildKit id, a 64-hex directory name or ``sha256:<chain>``; anything else is unknown."""
    value = _text(raw)
    if value.startswith("sha256:"):
        return _chain_id(value, where)
    if is_cache_id(value):
        return value
    raise ShapeError("%s names snapshot %s, which is not an id this reader knows" % (where, shorten(value)))
