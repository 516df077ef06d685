"""The fleet path as a user runs it: the audit keeps a small result per host in a jsonfile fact cache, sliced
runs share that cache, and ``strata.overlay2.report`` builds the report from it without contacting a host; the
same through community.general's redis cache."""

from __future__ import annotations

import glob
import json
import os
import sqlite3
import subprocess
import time

import pytest
from ansible.plugins.loader import cache_loader

from tests.support import fleet, redis
from tests.unit.plugins.module_utils._metrics.test_textfile import PROMTOOL

HOSTS = 30


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """30 hosts, each with its own store: every tenth corrupt, every fifth (the others) with leftovers."""
    base = tmp_path_factory.mktemp("fleet")
    found = {}
    for number in range(1, HOSTS + 1):
        kind = "corrupt" if number % 10 == 0 else "orphans" if number % 5 == 0 else "clean"
        found["host%02d" % number] = fleet.make_store(str(base / ("host%02d" % number) / "docker"), kind)
    return found


@pytest.fixture(scope="module")
def textfiles(stores, tmp_path_factory):
    """A node_exporter textfile directory per host (on one machine, each host needs its own)."""
    base = tmp_path_factory.mktemp("textfile")
    found = {host: str(base / host) for host in stores}
    for directory in found.values():
        os.makedirs(directory)
    return found


@pytest.fixture(scope="module")
def inventory(stores, textfiles, tmp_path_factory):
    """The 30 audited hosts, each writing its metrics, and one that is never audited (no store)."""
    return fleet.write_inventory(
        str(tmp_path_factory.mktemp("inventory") / "hosts.ini"), dict(stores, never=None),
        {host: {"overlay2_audit_prometheus_dir": path, "orphan_cleanup_data_root": stores[host],
                "compliance_data_root": stores[host]} for host, path in textfiles.items()})


@pytest.fixture(scope="module")
def unsliced(collections_path, inventory, tmp_path_factory):
    work = tmp_path_factory.mktemp("unsliced")
    fleet.audit(collections_path, str(work / "cache"), inventory, limits=["fleet:!never"])
    return work, fleet.report(collections_path, str(work / "cache"), inventory, str(work / "report"))


def test_three_concurrent_slices_sharing_one_cache_report_what_one_run_does(collections_path, inventory,
                                                                            unsliced, tmp_path):
    names = ["host%02d" % number for number in range(1, HOSTS + 1)]
    slices = [",".join(names[start::3]) for start in range(3)]  # interleaved, as no slice sees the others' hosts
    fleet.audit(collections_path, str(tmp_path / "cache"), inventory, limits=slices)
    sliced = fleet.report(collections_path, str(tmp_path / "cache"), inventory, str(tmp_path / "report"))
    _work, whole = unsliced
    assert fleet.without_times(sliced) == fleet.without_times(whole)
    assert sliced["totals"]["audited_hosts"] == HOSTS and sliced["not_audited"] == ["never"]
    assert sliced["totals"]["corrupt_hosts"] == 3
    assert {row["host"] for row in sliced["hosts"] if row["orphan_bytes"]} == {"host05", "host15", "host25"}


def test_each_host_keeps_a_small_result_and_not_its_whole_map(unsliced):
    work, _report = unsliced
    sizes = {os.path.basename(path): os.path.getsize(path) for path in glob.glob(str(work / "cache" / "*"))}
    assert len(sizes) >= HOSTS  # an entry per audited host (and one for the report's localhost)
    assert max(sizes.values()) < 16 * 1024, sizes


def test_the_report_lists_the_corrupt_hosts_with_their_changed_file_and_keeps_a_history(unsliced):
    work, report = unsliced
    corrupt = [row for row in report["hosts"] if row["verdict"] == "corrupt"]
    assert [row["host"] for row in corrupt] == ["host10", "host20", "host30"]
    assert all(row["out_of_policy"] and not row["stale"] for row in corrupt)
    assert any("opt/data.bin" in problem for problem in corrupt[0]["corrupt"][0]["problems"])
    page = (work / "report" / "report.html").read_text(encoding="utf-8")
    assert "not audited: no result kept" in page and "opt/data.bin" in page
    with sqlite3.connect(str(work / "report" / "history.sqlite3")) as db:
        rows = db.execute("SELECT host, verdict, corrupt_layers FROM host_runs ORDER BY host").fetchall()
    assert len(rows) == HOSTS and rows[9] == ("host10", "corrupt", 1)


def test_a_second_report_run_shows_each_host_s_change_and_an_old_audit_as_stale(collections_path, inventory,
                                                                                unsliced, tmp_path):
    work, _report = unsliced
    dest = str(work / "report")
    time.sleep(1.1)  # every audit is then older than a max_age of 0 seconds
    again = fleet.report(collections_path, str(work / "cache"), inventory, dest, ["overlay2_report_max_age=0"])
    assert len(again["history"]["runs"]) == 2
    assert again["history"]["changes"]["host01"][again["hosts"][0]["data_root"]]["layers_bytes"] == 0
    assert again["totals"]["stale_hosts"] == HOSTS and all(row["stale"] for row in again["hosts"])
    with open(os.path.join(dest, "fleet.json"), encoding="utf-8") as handle:
        assert json.load(handle)["stale_hosts"][0] == "host01"


def test_each_host_s_figures_reach_its_textfile_collector_as_promtool_reads_them(unsliced, textfiles):
    _work, report = unsliced
    rows = {row["host"]: row for row in report["hosts"]}
    for host, directory in textfiles.items():
        assert os.listdir(directory) == ["strata_overlay2.prom"], host  # the temporary file was renamed
        path = os.path.join(directory, "strata_overlay2.prom")
        if os.path.exists(PROMTOOL):
            with open(path, "rb") as handle:
                checked = subprocess.run([PROMTOOL, "check", "metrics"], stdin=handle, capture_output=True,
                                         check=False)
            assert checked.returncode == 0, checked.stdout + checked.stderr
        with open(path, encoding="utf-8") as handle:
            samples = dict(line.rsplit(" ", 1) for line in handle.read().splitlines() if not line.startswith("#"))
        labels = '{data_root="%s",store="overlay2"}' % rows[host]["data_root"]
        assert int(samples["strata_overlay2_layers_bytes" + labels]) == rows[host]["layers_size"]
        assert int(samples["strata_overlay2_orphan_bytes" + labels]) == rows[host]["orphan_bytes"]
        assert int(samples["strata_overlay2_corrupt_layers" + labels]) == rows[host]["corrupt_layers"]


def test_the_cleanup_and_compliance_outcomes_of_a_sliced_run_reach_the_report(collections_path, inventory, unsliced,
                                                                              tmp_path):
    """The compliance checks, then the cleanup (its plan, in check mode) of three hosts, each a --limit run sharing
    the audit's cache: the report shows their outcomes beside the audit's, and the host that fails a check is out
    of policy. (One after the other: the cache keeps one entry per host, and of two runs on the same host at the
    same time the last to write wins.)"""
    work, _report = unsliced
    cache = str(work / "cache")
    fleet.finish(fleet.playbook(collections_path, cache, "compliance", inventory,
                                ["compliance_fail=false", "compliance_junit_dir=%s" % (tmp_path / "junit")],
                                "host01,host05,host10"))
    fleet.finish(fleet.playbook(collections_path, cache, "cleanup", inventory,
                                ["orphan_cleanup_min_age=0", "orphan_cleanup_verify=false"], "host01,host05,host10",
                                check=True))
    report = fleet.report(collections_path, cache, inventory, str(tmp_path / "report"))
    compliance = {item["host"]: item for item in report["compliance"]}
    cleanup = {item["host"]: item for item in report["cleanup"]}
    assert sorted(compliance) == sorted(cleanup) == ["host01", "host05", "host10"]
    assert compliance["host10"]["failed"] >= 1 and compliance["host01"]["failed"] == 0
    assert cleanup["host05"]["orphans"] > 0 and cleanup["host01"]["orphans"] == 0
    assert all(item["check_mode"] and item["reclaimed_bytes"] == 0 for item in cleanup.values())
    assert {row["host"] for row in report["hosts"] if row["out_of_policy"]} == {"host10", "host20", "host30"}


def test_a_redis_fact_cache_gives_the_report_what_a_jsonfile_one_does(collections_path, inventory, unsliced,
                                                                      tmp_path):
    """Three hosts audited into a Redis server's fact cache (community.general.redis, as a controller configures
    it): the report reads them through that plugin, their rows as the jsonfile run's, every other host not
    audited."""
    if not os.path.exists(redis.BINARY):
        pytest.skip("%s is missing (Debian's redis-tools: make system-deps)" % redis.BINARY)
    pytest.importorskip("redis", reason="the redis Python client (requirements-dev.txt)")
    audited = ["host01", "host05", "host10"]
    with redis.server(str(tmp_path)) as connection:
        cache = fleet.FactCache("community.general.redis", connection, fleet.shipped_collections())
        fleet.audit(collections_path, cache, inventory, limits=[",".join(audited)])
        from_redis = fleet.report(collections_path, cache, inventory, str(tmp_path / "report"))
    _work, whole = unsliced

    def rows(report: dict) -> list:
        return [row for row in fleet.without_times(report)["hosts"] if row["host"] in audited]

    assert [row["host"] for row in rows(from_redis)] == audited
    assert rows(from_redis) == rows(whole)
    assert from_redis["totals"]["audited_hosts"] == 3 and from_redis["totals"]["corrupt_hosts"] == 1
    assert len(from_redis["not_audited"]) == HOSTS - 3 + 1 and "never" in from_redis["not_audited"]


def test_a_host_s_detail_file_keeps_a_bounded_number_of_entries_a_list(collections_path, inventory, tmp_path):
    """With overlay2_audit_host_file_items, hosts/<host>.json holds at most that many entries of each list, and
    its ``truncated`` counts what went; the store's figures in it are whole."""
    reports = tmp_path / "report"
    fleet.audit(collections_path, str(tmp_path / "cache"), inventory, limits=["host05,host10"],
                extra=("overlay2_audit_keep_facts=false", "overlay2_audit_report_dir=%s" % reports,
                       "overlay2_audit_host_file_items=2"))
    for host in ("host05", "host10"):
        with open(str(reports / "hosts" / (host + ".json")), encoding="utf-8") as handle:
            detail = json.load(handle)
        assert detail["overlay2"]["summary"]["layers"] > 2 and len(detail["overlay2"]["layers"]) == 2
        assert detail["truncated"]["overlay2.layers"]["dropped"] == detail["overlay2"]["summary"]["layers"] - 2
        assert detail["verify"] is not None and detail["summary"]["host"] == host

        def longest(value):
            if isinstance(value, dict):
                return max([longest(item) for item in value.values()] + [0])
            if isinstance(value, list):
                return max([len(value)] + [longest(item) for item in value])
            return 0

        assert longest({key: value for key, value in detail.items() if key != "truncated"}) <= 2


def test_the_fleet_settings_leave_the_lists_out_and_keep_the_same_result(collections_path, inventory, unsliced,
                                                                         tmp_path, monkeypatch):
    """With neither the whole map nor the host files kept (the fleet's settings, as the unsliced run has them), the
    audit's facts task gathers no layer and no container list; each host's result, and so its report row, is what
    the audit keeping the whole map gives."""
    audited = ["host01", "host05", "host10"]
    cache = tmp_path / "cache"
    fleet.audit(collections_path, str(cache), inventory, limits=[",".join(audited)],
                extra=("overlay2_audit_keep_facts=true", "overlay2_audit_host_files=false",
                       "overlay2_audit_report=false"))
    monkeypatch.setenv("ANSIBLE_CACHE_PLUGIN_CONNECTION", str(cache))
    monkeypatch.setenv("ANSIBLE_CACHE_PLUGIN_TIMEOUT", "0")
    kept = cache_loader.get("jsonfile")  # as the controller reads it, whatever the entries' format
    for host in audited:
        facts = kept.get(host)["overlay2"]  # the whole map, kept
        assert facts["layers"] and len(facts["containers"]) == facts["summary"]["containers"]
    whole = fleet.report(collections_path, str(cache), inventory, str(tmp_path / "report"))
    _work, lean = unsliced

    def rows(report: dict) -> list:
        return [row for row in fleet.without_times(report)["hosts"] if row["host"] in audited]

    assert [row["host"] for row in rows(whole)] == audited
    assert rows(whole) == rows(lean)
