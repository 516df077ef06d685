# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This plugin_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The report's history: every report run's figures per host in an SQLite database beside the report.

The schema is documented in docs/fleet.md. The database says whose it is (table ``strata_overlay2``); a file at
the path that is not ours, or ours at a newer schema, is left as it is and the report says why.
"""

from __future__ import annotations

import datetime
import os
import sqlite3
from typing import Any, Dict, List, Mapping, Sequence, Tuple

OWNER = "strata.overlay2 report history"
SCHEMA = 1
TABLES = """
CREATE TABLE IF NOT EXISTS strata_overlay2 (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  run_at TEXT PRIMARY KEY, hosts INTEGER NOT NULL, audited_hosts INTEGER NOT NULL, stale_hosts INTEGER NOT NULL,
  not_audited_hosts INTEGER NOT NULL, out_of_policy_hosts INTEGER NOT NULL, layers_bytes INTEGER NOT NULL,
  orphan_bytes INTEGER NOT NULL, corrupt_layers INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS host_runs (
  run_at TEXT NOT NULL REFERENCES runs (run_at) ON DELETE CASCADE, host TEXT NOT NULL, data_root TEXT NOT NULL,
  store TEXT NOT NULL, audited_at TEXT NOT NULL, images INTEGER NOT NULL, layers INTEGER NOT NULL,
  layers_bytes INTEGER NOT NULL, orphan_bytes INTEGER, corrupt_layers INTEGER NOT NULL, verdict TEXT NOT NULL,
  out_of_policy INTEGER NOT NULL, PRIMARY KEY (run_at, host, data_root));
CREATE INDEX IF NOT EXISTS host_runs_host ON host_runs (host, data_root, run_at);
"""
RUN_COLUMNS = ("run_at", "hosts", "audited_hosts", "stale_hosts", "not_audited_hosts", "out_of_policy_hosts",
               "layers_bytes", "orphan_bytes", "corrupt_layers")
CHANGE_KEYS = ("images", "layers", "layers_bytes", "orphan_bytes", "corrupt_layers")


class HistoryError(Exception):
    """The history cannot be kept at that path; nothing there was changed."""


def _claim(db: sqlite3.Connection, path: str) -> None:
    """Make the database ours if it is new; refuse one that belongs to something else or to a newer schema."""
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "strata_overlay2" not in tables:
        raise HistoryError("%s is an SQLite database of something else (tables %s): left as it is; choose another "
                           "history path" % (path, ", ".join(sorted(tables))))
    if "strata_overlay2" in tables:
        found = dict(db.execute("SELECT key, value FROM strata_overlay2"))
        if found.get("owner") != OWNER:
            raise HistoryError("%s does not say it is this report's history: left as it is" % path)
        if int(found.get("schema") or 0) > SCHEMA:
            raise HistoryError("%s has history schema %s, newer than this collection's %d: left as it is (upgrade "
                               "the collection on the controller)" % (path, found.get("schema"), SCHEMA))
    db.executescript(TABLES)
    db.executemany("INSERT OR REPLACE INTO strata_overlay2 (key, value) VALUES (?, ?)",
                   (("owner", OWNER), ("schema", str(SCHEMA))))


def _figures(row: Mapping[str, Any]) -> Tuple[Any, ...]:
    return (str(row["host"]), str(row.get("data_root")), str(row.get("store") or "overlay2"), str(row.get("run_at")),
            int(row.get("images") or 0), int(row.get("layers") or 0), int(row.get("layers_size") or 0),
            None if row.get("orphan_bytes") is None else int(row["orphan_bytes"]),
            int(row.get("corrupt_layers") or 0), str(row.get("verdict")), int(bool(row.get("out_of_policy"))))


def record(path: str, report: Mapping[str, Any], keep_days: float) -> Dict[str, Any]:
    """Add this report run to the history at ``path`` and drop runs older than ``keep_days``; return the runs
    kept (the fleet's trend) and each store's change since its previous run, keyed ``host`` then ``data_root``."""
    run_at = str(report["generated"])
    totals = report["totals"]
    figures = [_figures(row) for row in report["hosts"]]
    run = (run_at, int(totals.get("hosts") or 0), int(totals.get("audited_hosts") or 0),
           int(totals.get("stale_hosts") or 0), int(totals.get("not_audited_hosts") or 0),
           int(totals.get("out_of_policy_hosts") or 0), sum(item[6] for item in figures),
           sum(item[7] or 0 for item in figures), sum(item[8] for item in figures))
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise HistoryError("the history's directory %s does not exist" % directory)
    if os.path.lexists(path) and not os.path.isfile(path):
        raise HistoryError("%s is not a regular file: left as it is" % path)
    try:
        db = sqlite3.connect(path)
    except sqlite3.Error as exc:
        raise HistoryError("cannot open %s: %s" % (path, exc)) from exc
    try:
        with db:
            db.execute("PRAGMA foreign_keys = ON")
            _claim(db, path)
            previous = _previous(db, run_at)
            db.execute("DELETE FROM runs WHERE run_at = ?", (run_at,))
            db.execute("INSERT INTO runs (%s) VALUES (%s)" % (", ".join(RUN_COLUMNS), ", ".join("?" * len(run))), run)
            db.executemany("INSERT OR REPLACE INTO host_runs (run_at, host, data_root, store, audited_at, images, "
                           "layers, layers_bytes, orphan_bytes, corrupt_layers, verdict, out_of_policy) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [(run_at,) + item for item in figures])
            cutoff = _minus_days(run_at, keep_days)
            if cutoff:
                db.execute("DELETE FROM host_runs WHERE run_at < ?", (cutoff,))
                db.execute("DELETE FROM runs WHERE run_at < ?", (cutoff,))
            trend = [dict(zip(RUN_COLUMNS, values))
                     for values in db.execute("SELECT %s FROM runs ORDER BY run_at" % ", ".join(RUN_COLUMNS))]
    except sqlite3.DatabaseError as exc:
        raise HistoryError("cannot keep the history in %s: %s (nothing was changed)" % (path, exc)) from exc
    finally:
        db.close()
    return {"path": path, "runs": trend, "changes": _changes(report["hosts"], previous)}


def _previous(db: sqlite3.Connection, run_at: str) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """Each store's figures at the run before ``run_at``: the last run that holds that store."""
    columns = ("host", "data_root", "run_at") + CHANGE_KEYS
    query = ("SELECT h.host, h.data_root, h.run_at, h.images, h.layers, h.layers_bytes, h.orphan_bytes, "
             "h.corrupt_layers FROM host_runs h JOIN (SELECT host, data_root, MAX(run_at) AS last FROM host_runs "
             "WHERE run_at < ? GROUP BY host, data_root) p ON h.host = p.host AND h.data_root = p.data_root "
             "AND h.run_at = p.last")
    return {(values[0], values[1]): dict(zip(columns, values)) for values in db.execute(query, (run_at,))}


def _changes(rows: Sequence[Mapping[str, Any]], previous: Mapping[Tuple[str, str], Mapping[str, Any]]
             ) -> Dict[str, Dict[str, Dict[str, Any]]]:
    changes: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for row in rows:
        before = previous.get((str(row["host"]), str(row.get("data_root"))))
        if not before:
            continue
        now = {"images": row.get("images"), "layers": row.get("layers"), "layers_bytes": row.get("layers_size"),
               "orphan_bytes": row.get("orphan_bytes"), "corrupt_layers": row.get("corrupt_layers")}
        change: Dict[str, Any] = {"since": before["run_at"]}
        for key in CHANGE_KEYS:
            change[key] = (None if now[key] is None or before[key] is None
                           else int(now[key] or 0) - int(before[key] or 0))
        changes.setdefault(str(row["host"]), {})[str(row.get("data_root"))] = change
    return changes


def _minus_days(run_at: str, days: float) -> str:
    if days <= 0:
        return ""
    try:
        moment = datetime.datetime.fromisoformat(run_at.replace("Z", "+00:00"))
    except ValueError:
        return ""
    cutoff = moment - datetime.timedelta(days=days)
    return cutoff.astimezone(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def runs_of(path: str) -> List[Dict[str, Any]]:
    """The runs kept at ``path`` (for tests and tools); the database is opened read-only."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return [dict(zip(RUN_COLUMNS, values))
                for values in db.execute("SELECT %s FROM runs ORDER BY run_at" % ", ".join(RUN_COLUMNS))]
    finally:
        db.close()
