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
