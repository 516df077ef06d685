"""The report's history: each run's figures per store in SQLite, the trend and each store's change, retention,
and a database that is not ours left exactly as it was."""

from __future__ import annotations

import sqlite3

import pytest

from ansible_collections.strata.overlay2.plugins.plugin_utils import _history

COLUMNS = {"run_at", "host", "data_root", "store", "images", "layers", "layers_bytes", "orphan_bytes",
           "corrupt_layers", "verdict"}


def report(run_at, layers_size=1000, orphan_bytes=10, hosts=("a", "b")):
    rows = [{"host": host, "data_root": "/var/lib/docker", "store": "overlay2", "run_at": run_at, "images": 2,
             "layers": 3, "layers_size": layers_size, "orphan_bytes": orphan_bytes, "corrupt_layers": 0,
             "verdict": "verified", "out_of_policy": False} for host in hosts]
    return {"generated": run_at, "hosts": rows,
            "totals": {"hosts": len(hosts), "audited_hosts": len(hosts), "stale_hosts": 0, "not_audited_hosts": 0,
                       "out_of_policy_hosts": 0}}


def test_the_documented_table_holds_a_row_per_store_and_run(tmp_path):
    path = str(tmp_path / "history.sqlite3")
    _history.record(path, report("2026-12-01T00:00:00Z"), 400)
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(host_runs)")}
        count = db.execute("SELECT COUNT(*) FROM host_runs").fetchone()[0]
    assert COLUMNS <= columns and count == 2


def test_a_second_run_shows_the_trend_and_each_store_s_change(tmp_path):
    path = str(tmp_path / "history.sqlite3")
    _history.record(path, report("2026-12-01T00:00:00Z"), 400)
    second = _history.record(path, report("2026-12-08T00:00:00Z", layers_size=5000, orphan_bytes=None,
                                          hosts=("a", "b", "c")), 400)
    assert [run["layers_bytes"] for run in second["runs"]] == [2000, 15000]
    change = second["changes"]["a"]["/var/lib/docker"]
    assert change == {"since": "2026-12-01T00:00:00Z", "images": 0, "layers": 0, "layers_bytes": 4000,
                      "orphan_bytes": None, "corrupt_layers": 0}
    assert "c" not in second["changes"]  # no run before this one holds it


def test_runs_older_than_the_retention_are_dropped(tmp_path):
    path = str(tmp_path / "history.sqlite3")
    for day in ("01", "05", "09"):
        _history.record(path, report("2026-12-%sT00:00:00Z" % day), 5)
    assert [run["run_at"] for run in _history.runs_of(path)] == ["2026-12-05T00:00:00Z", "2026-12-09T00:00:00Z"]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT MIN(run_at) FROM host_runs").fetchone()[0] == "2026-12-05T00:00:00Z"


def write_foreign(path):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE accounts (id INTEGER)")
        db.execute("INSERT INTO accounts VALUES (1)")


@pytest.mark.parametrize("make, message", [
    (write_foreign, "something else"),
    (lambda path: open(path, "wb").write(b"not a database at all, just bytes" * 10), "cannot keep the history"),
])
def test_a_database_that_is_not_ours_is_left_exactly_as_it_was(tmp_path, make, message):
    path = str(tmp_path / "history.sqlite3")
    make(path)
    before = open(path, "rb").read()
    with pytest.raises(_history.HistoryError, match=message):
        _history.record(path, report("2026-12-01T00:00:00Z"), 400)
    assert open(path, "rb").read() == before


def test_a_history_of_a_newer_schema_is_left_as_it_is(tmp_path):
    path = str(tmp_path / "history.sqlite3")
    _history.record(path, report("2026-12-01T00:00:00Z"), 400)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE strata_overlay2 SET value = '9' WHERE key = 'schema'")
    with pytest.raises(_history.HistoryError, match="newer"):
        _history.record(path, report("2026-12-02T00:00:00Z"), 400)
    assert len(_history.runs_of(path)) == 1
