"""The fleet report built from what each host keeps: bounded results, not audited, stale, failed and unreadable
hosts, out of policy, and a page that stays usable at fleet scale."""

from __future__ import annotations

import copy
import datetime
import json
import re

import pytest

from ansible_collections.strata.overlay2.plugins.plugin_utils import _fleet
from ansible_collections.strata.overlay2.plugins.plugin_utils._report import (
    FOLD_AFTER, bounded, cut_lists, host_summary, render_html)

from tests.unit.plugins.plugin_utils.test_fleet_report import results_of, tamper

NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.timezone.utc)
WEEK = 7 * 86400.0


def kept(row, host, run_at="2026-12-07T11:00:00Z", **extra):
    """A host's overlay2_audit fact, as the audit role keeps it."""
    return dict({"schema": 1, "role": "overlay2_audit", "host": host, "run_at": run_at,
                 "rows": [dict(bounded(row, 10), host=host)]}, **extra)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """A clean store's summary and a corrupt one's, from real facts and verification."""
    from tests.support.samples import build_sample  # pylint: disable=import-outside-toplevel

    clean = build_sample(str(tmp_path_factory.mktemp("clean") / "docker"))
    broken = build_sample(str(tmp_path_factory.mktemp("broken") / "docker"))
    tamper(broken)
    return {"clean": host_summary(*results_of(clean.root)), "corrupt": host_summary(*results_of(broken.root))}


def test_a_bounded_summary_keeps_the_first_entries_and_counts_them_all(rows):
    row = copy.deepcopy(rows["corrupt"])
    entry = row["corrupt"][0]
    row["corrupt"] = [dict(entry, problems=["p%d" % n for n in range(40)], images=["i%d" % n for n in range(9)])
                      for _number in range(100)]
    row["warnings"] = ["w%d" % n for n in range(500)]
    row["list_totals"] = {key: len(row[key]) for key in row["list_totals"]}
    small = bounded(row, 10)
    assert len(small["corrupt"]) == 10 and small["list_totals"]["corrupt"] == 100
    assert small["corrupt"][0]["problems"] == ["p0", "p1", "p2"] and small["corrupt"][0]["problems_total"] == 40
    assert len(small["warnings"]) == 10 and small["list_totals"]["warnings"] == 500
    assert len(json.dumps(small)) < len(json.dumps(row)) / 10


def test_a_host_s_detail_cut_to_a_limit_keeps_each_list_s_first_entries_and_says_what_went(tmp_path):
    """The facts of a store of 600 layers: every list (however deep) at most 40 entries, the first ones as they
    were, and ``truncated`` counting what went, place by place; under the limit, the document as it was."""
    from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather  # pylint: disable=import-outside-toplevel
    from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store  # pylint: disable=import-outside-toplevel
    from tests.support.synthstore import generate  # pylint: disable=import-outside-toplevel

    generate(str(tmp_path / "docker"), 600)
    facts = json.loads(json.dumps(gather(load_store(str(tmp_path / "docker")), orphans=True)))
    document = {"overlay2": facts, "verify": None}
    cut = cut_lists(document, 40)

    def lists(value, where=""):
        if isinstance(value, dict):
            for key, item in value.items():
                yield from lists(item, where + "." + key)
        elif isinstance(value, list):
            yield where, value
            for item in value:
                yield from lists(item, where + "[]")

    assert all(len(found) <= 40 for _where, found in lists(cut))
    assert cut["truncated"]["overlay2.layers"] == {"lists": 1, "dropped": len(facts["layers"]) - 40}
    assert cut["overlay2"]["summary"] == facts["summary"] and cut["verify"] is None
    kept = [layer for layer in facts["layers"][:40] if all(len(v) <= 40 for v in layer.values() if isinstance(v, list))]
    assert kept and all(layer in cut["overlay2"]["layers"] for layer in kept)
    dropped = sum(len(found) - 40 for _where, found in lists(document) if len(found) > 40)
    assert sum(place["dropped"] for place in cut["truncated"].values()) <= dropped  # inner lists of dropped entries
    assert len(json.dumps(cut)) < len(json.dumps(document)) / 2
    whole = cut_lists(document, 100000)
    assert whole.pop("truncated") == {} and whole == document


def test_hosts_without_a_result_are_not_audited_old_ones_stale_and_failed_ones_named(rows):
    found = [_fleet.from_facts("a", {"overlay2_audit": kept(rows["clean"], "a")}),
             _fleet.from_facts("b", {"overlay2_audit": kept(rows["clean"], "b", run_at="2026-11-01T00:00:00Z")}),
             _fleet.from_facts("c", None), _fleet.from_facts("d", {"other_fact": 1})]
    report = _fleet.build(found, NOW, WEEK, failed=["d"])
    assert report["not_audited"] == ["c"] and report["failed_hosts"] == ["d"]
    assert report["missing_hosts"] == ["c", "d"] and report["stale_hosts"] == ["b"]
    assert [(row["host"], row["stale"]) for row in report["hosts"]] == [("a", False), ("b", True)]
    totals = report["totals"]
    assert (totals["hosts"], totals["audited_hosts"], totals["stale_hosts"], totals["not_audited_hosts"]) == (4, 2, 1, 1)
    assert _fleet.problem_hosts(report) == ["b", "c", "d"]


def test_a_result_this_collection_cannot_read_is_named_and_the_rest_of_the_report_stands(rows):
    found = [_fleet.from_facts("new", {"overlay2_audit": kept(rows["clean"], "new", schema=2)}),
             _fleet.from_facts("odd", {"overlay2_audit": "text"}),
             _fleet.from_facts("notime", {"overlay2_audit": kept(rows["clean"], "notime", run_at="yesterday")}),
             _fleet.from_facts("ok", {"overlay2_audit": kept(rows["clean"], "ok")})]
    report = _fleet.build(found, NOW, WEEK)
    reasons = {item["host"]: item["reason"] for item in report["unreadable"]}
    assert "schema 2" in reasons["new"] and "not a dict" in reasons["odd"] and "run_at" in reasons["notime"]
    assert [row["host"] for row in report["hosts"]] == ["ok"] and report["not_audited"] == ["new", "notime", "odd"]


def test_a_corrupt_layer_a_failing_control_or_a_failed_compliance_check_puts_a_host_out_of_policy(rows):
    failing_cis = dict(rows["clean"], cis=[{"id": "5.1", "title": "t", "status": "fail", "failing": ["x"]}])
    compliance = {"schema": 1, "run_at": "2026-12-07T11:00:00Z", "failed": 2, "failed_checks": ["a", "b"]}
    found = [_fleet.from_facts("corrupt", {"overlay2_audit": kept(rows["corrupt"], "corrupt")}),
             _fleet.from_facts("cis", {"overlay2_audit": kept(failing_cis, "cis")}),
             _fleet.from_facts("judged", {"overlay2_audit": kept(rows["clean"], "judged"),
                                          "compliance_outcome": compliance}),
             _fleet.from_facts("fine", {"overlay2_audit": kept(rows["clean"], "fine")})]
    report = _fleet.build(found, NOW, WEEK)
    assert {row["host"]: row["out_of_policy"] for row in report["hosts"]} == {
        "cis": True, "corrupt": True, "fine": False, "judged": True}
    assert report["totals"]["out_of_policy_hosts"] == 3 and report["totals"]["corrupt_layers"] == 1
    assert report["compliance"][0]["host"] == "judged"


@pytest.mark.parametrize("text, seconds", [("7d", 604800), ("90m", 5400), ("3600", 3600), ("2w", 1209600),
                                           ("0", 0), ("1.5h", 5400)])
def test_max_age_reads_as_the_other_durations_do(text, seconds):
    assert _fleet.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "week", "-1d", "7y"])
def test_a_max_age_that_is_not_a_duration_is_refused(text):
    with pytest.raises(ValueError, match="not a duration"):
        _fleet.parse_duration(text)


def fleet_of(rows, hosts):
    """``hosts`` hosts: every 100th corrupt, every 10th with orphans, one not audited."""
    found = []
    for number in range(hosts):
        name = "host%05d" % number
        row = dict(rows["corrupt" if number % 100 == 7 else "clean"])
        if number % 10 == 3:
            row = dict(row, orphan_bytes=(number + 1) * 1048576)
        found.append(_fleet.from_facts(name, {"overlay2_audit": kept(row, name)} if number != 5 else None))
    return _fleet.build(found, NOW, WEEK)


def test_a_small_fleet_shows_a_row_a_bar_and_a_section_per_host(rows):
    page = render_html(fleet_of(rows, 20))
    assert page.count('class="host-row"') == 19 and page.count('class="host-row missing"') == 1
    assert 'id="chart-hosts"' in page and page.count('class="host-detail"') == 19


def test_at_fleet_scale_the_problem_hosts_come_first_and_the_rest_is_counted_and_folded(rows):
    hosts = 1000
    assert hosts > FOLD_AFTER
    report = fleet_of(rows, hosts)
    page = render_html(report)
    listed = re.findall(r'<tr class="host-row[^"]*" data-host="([^"]+)"', page)
    assert listed == ["host%05d" % n for n in range(hosts) if n % 100 == 7] + ["host00005"]
    assert page.count('class="other-row"') == hosts - 1 - 10
    assert '<details id="others"><summary>%d hosts without problems' % (hosts - 11) in page
    assert 'id="chart-hosts"' not in page and 'id="chart-layers-dist"' in page and 'id="chart-orphans-dist"' in page
    bars = re.findall(r'id="chart-orphans-dist".*?</svg>', page)[0].count('class="bar"')
    assert 1 < bars < 20  # powers of two of the orphan bytes, not a bar per host
    assert page.count('class="host-detail"') == 10


def test_each_store_s_change_since_its_previous_run_is_on_its_row_folded_or_not(rows, tmp_path):
    from ansible_collections.strata.overlay2.plugins.plugin_utils import _history  # pylint: disable=import-outside-toplevel

    path = str(tmp_path / "history.sqlite3")
    first = fleet_of(rows, 200)
    first["generated"] = "2026-11-30T12:00:00Z"
    _history.record(path, first, 400)
    second = fleet_of(rows, 200)
    for row in second["hosts"]:
        if row["host"] in ("host00013", "host00107"):  # one folded, one corrupt (listed first)
            row["orphan_bytes"] = (row["orphan_bytes"] or 0) + 5 * 1048576
    second["history"] = _history.record(path, second, 400)
    page = render_html(second)
    for host in ("host00013", "host00107"):
        row_html = re.search(r'<tr class="[a-z-]+" data-host="%s">.*?</tr>' % host, page).group(0)
        assert "orphans +5.0 MiB" in row_html and "since 2026-11-30T12:00:00Z" in row_html
    assert page.count('class="change"') == 2 and 'id="chart-trend"' in page
