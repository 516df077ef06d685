"""The browser check itself: it passes a report built from real module results and fails broken pages."""

from __future__ import annotations

import os
import shutil

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import verify
from ansible_collections.strata.overlay2.plugins.plugin_utils._report import fleet_report, host_summary, render_html

from tests.support.samples import build_sample
from tests.browser.check_report import CHROMEDRIVER, CHROMIUM, problems, read_report

pytestmark = pytest.mark.skipif(not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
                                reason="needs Debian's chromium and chromium-driver (make deps installs them)")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A two-host report: host-a clean, host-b with one byte changed under its running container."""
    rows = []
    for host in ("host-a", "host-b"):
        sample = build_sample(str(tmp_path_factory.mktemp(host) / "docker"))
        if host == "host-b":
            path = os.path.join(sample.synth.overlay(sample.app.cache_id, "diff"), "opt", "data.bin")
            with open(path, "r+b") as handle:
                handle.write(b"X")
        rows.append(host_summary(gather(Overlay2Store.load(sample.root)), verify(Overlay2Store.load(sample.root)).as_dict(), host))
    return render_html(fleet_report(rows, generated="2026-11-27T00:00:00Z"))


def check(tmp_path, html, **expected):
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    return problems(read_report(str(path)), ["host-a", "host-b"], ["host-b"], **expected)


def test_the_report_renders_its_table_charts_and_the_changed_file(page, tmp_path):
    assert check(tmp_path, page, expect=["opt/data.bin"]) == []


def test_a_page_without_charts_is_caught(page, tmp_path):
    broken = page.replace('id="chart-hosts"', 'id="chart-gone"').replace('class="bar"', 'class="nobar"')
    found = check(tmp_path, broken)
    assert any("chart hosts is missing" in problem for problem in found)
    assert any("chart images renders no bars" in problem for problem in found)


def test_a_missing_row_a_wrong_verdict_and_an_outside_resource_are_caught(page, tmp_path):
    broken = page.replace('data-host="host-a"', 'data-host="other"', 1).replace(
        ">corrupt<", ">verified<").replace("</head>", "<link rel=stylesheet href='http://127.0.0.1:9/x.css'></head>")
    found = " | ".join(check(tmp_path, broken))
    assert "table rows" in found and "host host-b shows 'verified'" in found and "outside resources" in found


def test_at_fleet_scale_the_browser_lists_every_problem_host_and_folds_the_rest(tmp_path):
    """300 hosts from real results: 3 corrupt, 3 stale, 2 not audited; the rest folded, distributions drawn."""
    import datetime  # pylint: disable=import-outside-toplevel

    from ansible_collections.strata.overlay2.plugins.plugin_utils import _fleet  # pylint: disable=import-outside-toplevel
    from ansible_collections.strata.overlay2.plugins.plugin_utils._report import bounded  # pylint: disable=import-outside-toplevel

    rows = {}
    for kind in ("clean", "corrupt"):
        sample = build_sample(str(tmp_path / kind / "docker"))
        if kind == "corrupt":
            with open(os.path.join(sample.synth.overlay(sample.app.cache_id, "diff"), "opt", "data.bin"), "r+b") as handle:
                handle.write(b"X")
        rows[kind] = bounded(host_summary(gather(Overlay2Store.load(sample.root)),
                                          verify(Overlay2Store.load(sample.root)).as_dict()), 10)
    found = []
    for number in range(300):
        host = "node%03d" % number
        kind = "corrupt" if number % 100 == 1 else "clean"
        run_at = "2026-01-01T00:00:00Z" if number % 100 == 2 else "2026-12-07T11:00:00Z"
        row = dict(rows[kind], orphan_bytes=number * 4096) if number % 10 == 3 else rows[kind]
        facts = None if number % 150 == 4 else {"overlay2_audit": {"schema": 1, "run_at": run_at, "rows": [row]}}
        found.append(_fleet.from_facts(host, facts))
    report = _fleet.build(found, datetime.datetime(2026, 12, 7, 12, tzinfo=datetime.timezone.utc), 7 * 86400)
    path = tmp_path / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    dom = read_report(str(path))
    assert sorted(dom["hosts"]) == _fleet.problem_hosts(report) and len(dom["hosts"]) == 8
    assert len(dom["others"]) == 292 and dom["others_folded"]
    layers, orphans = dom["fleet_charts"]["layers"], dom["fleet_charts"]["orphans"]
    assert layers["width"] > 0 and layers["visible_bars"] == 1  # every store the same size: one bucket
    assert orphans["width"] > 0 and orphans["visible_bars"] == 7  # 12 KiB to 1.2 MiB: 7 powers of two
    assert dom["verdicts"]["node001"] == "corrupt" and "opt/data.bin" in dom["text"]
    assert dom["external"] == 0 and not [name for name in dom["fetched"] if not name.startswith("file:")]
