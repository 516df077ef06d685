"""The fleet report and the compliance checks, from real facts and verify results of synthetic stores."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
from xml.etree import ElementTree

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import verify
from ansible_collections.strata.overlay2.plugins.plugin_utils._compliance import evaluate, junit_xml, repository
from ansible_collections.strata.overlay2.plugins.plugin_utils._report import (
    CORRUPT, NOT_VERIFIED, VERIFIED, ReportError, fleet_report, host_summary, render_html)

from ansible.errors import AnsibleFilterError

FILTER_NAMES = ("overlay2_host_summary", "overlay2_fleet_report", "overlay2_report_html", "overlay2_compliance", "overlay2_cis_checks",
                "overlay2_junit")
# one plugin file per filter, each named after its filter (Galaxy lists filter plugins by file)
FILTERS = {name: importlib.import_module("ansible_collections.strata.overlay2.plugins.filter." + name)
           .FilterModule().filters()[name] for name in FILTER_NAMES}


def results_of(root, drift=False):
    """What the audit role holds for a host: the facts (with each container's drift when asked) and the
    layer_verify result, as JSON would carry them."""
    store = Overlay2Store.load(root)
    facts = gather(store, drift_paths=["/bin", "/usr", "/etc"] if drift else None, usage=True)
    verdict = verify(Overlay2Store.load(root)).as_dict()
    return json.loads(json.dumps(facts)), json.loads(json.dumps(verdict))


def tamper(sample):
    """Change one byte of opt/data.bin in the app image's top layer (under the running container web)."""
    path = os.path.join(sample.synth.overlay(sample.app.cache_id, "diff"), "opt", "data.bin")
    with open(path, "r+b") as handle:
        handle.seek(100)
        handle.write(b"X")
    return sample.app.chain_id


def checks_by_name(checks):
    return {check["name"]: check for check in checks}


def test_a_clean_host_is_summarised_with_the_engines_sizes_and_verified(sample):
    facts, verdict = results_of(sample.root)
    row = host_summary(facts, verdict, "web-1")
    assert row["verdict"] == VERIFIED and row["corrupt"] == []
    assert (row["images"], row["layers"], row["containers"]) == (3, 4, 2)
    assert row["layers_size"] == facts["summary"]["layers_size"]
    assert row["unique_size"] == facts["summary"]["layers_size"] - facts["summary"]["shared_size"]
    assert [image["unique_size"] for image in row["image_list"]] == sorted(
        (image["unique_size"] for image in row["image_list"]), reverse=True)
    assert row["checked_layers"] == verdict["checked_layers"] == 4


def test_without_a_verdict_the_host_is_not_verified(sample):
    facts, _verdict = results_of(sample.root)
    assert host_summary(facts, None, "h")["verdict"] == NOT_VERIFIED


def test_a_tampered_layer_is_named_with_its_images_and_file(sample):
    chain_id = tamper(sample)
    facts, verdict = results_of(sample.root)
    row = host_summary(facts, verdict, "h")
    assert row["verdict"] == CORRUPT
    (entry,) = row["corrupt"]
    assert entry["chain_id"] == chain_id
    assert entry["images"] == ["example/app:2"]
    assert any("opt/data.bin" in problem for problem in entry["problems"])


def test_the_fleet_ranks_images_across_hosts_and_lists_hosts_without_data(sample, tmp_path):
    clean = build_second(tmp_path)
    rows = [host_summary(*results_of(sample.root), "b-host"), host_summary(*results_of(clean), "a-host")]
    report = fleet_report(rows, missing=["gone"], generated="2026-11-27T00:00:00Z", largest=3)
    assert [row["host"] for row in report["hosts"]] == ["a-host", "b-host"]
    assert report["missing_hosts"] == ["gone"]
    assert report["totals"]["hosts"] == 3
    assert report["totals"]["images"] == 6
    sizes = [item["unique_size"] for item in report["largest_images"]]
    assert len(sizes) == 3 and sizes == sorted(sizes, reverse=True)


def build_second(tmp_path):
    from tests.support.samples import build_sample  # pylint: disable=import-outside-toplevel
    return build_sample(os.path.join(str(tmp_path), "second")).root


def test_the_page_is_self_contained_with_a_row_and_a_section_per_host(sample):
    chain_id = tamper(sample)
    report = fleet_report([host_summary(*results_of(sample.root), "<h&1>")], missing=["down"])
    page = render_html(report)
    assert "<script" not in page and "<link" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert page.count('class="host-row"') == 1 and page.count('class="host-row missing"') == 1
    assert 'data-host="&lt;h&amp;1&gt;"' in page  # names are escaped
    assert page.count("<svg") == 4 and 'id="chart-hosts"' in page and 'id="chart-images"' in page
    assert chain_id in page and "opt/data.bin" in page
    usage = report["hosts"][0]["usage"]
    assert usage["total"] == sum(usage["categories"].values()) > 0  # every byte in one category, unattributed too
    fleet = page[page.index('id="chart-usage"'):]
    fleet = fleet[:fleet.index("</svg>")]
    assert sum(int(value) for value in re.findall(r'data-bytes="(\d+)"', fleet)) == usage["total"]
    ElementTree.fromstring(page[page.index("<svg"):page.index("</svg>") + 6])  # the chart is well-formed XML


def test_two_stores_of_one_host_are_two_rows_under_it_with_their_own_anchors(sample, tmp_path):
    other = os.path.join(str(tmp_path), "other")
    subprocess.run(["cp", "-a", sample.root, other], check=True)  # whiteouts are devices: cp copies them
    rows = [host_summary(*results_of(root), "web1") for root in (sample.root, other)]
    report = fleet_report(rows + [host_summary(*results_of(sample.root), "web2")])
    assert [(row["host"], row["data_root"]) for row in report["hosts"]] == sorted(
        [("web1", sample.root), ("web1", other), ("web2", sample.root)])
    assert report["totals"]["hosts"] == 2 and report["totals"]["stores"] == 3
    page = render_html(report)
    anchors = re.findall(r'<details class="host-detail" id="([^"]+)"', page)
    assert sorted(anchors) == ["host-web1", "host-web1-2", "host-web2"]
    assert all('href="#%s"' % anchor in page for anchor in anchors)
    assert "web1 %s" % other in page  # the chart tells the two stores of web1 apart


def test_bad_input_is_a_clear_filter_error():
    with pytest.raises(AnsibleFilterError, match="overlay2_host_summary: the overlay2 facts must be a dict"):
        FILTERS["overlay2_host_summary"]("not facts")
    with pytest.raises(AnsibleFilterError, match="no 'ok'"):
        FILTERS["overlay2_host_summary"]({"summary": {}}, {"skipped": True})
    with pytest.raises(AnsibleFilterError, match="unknown policy keys: max_depth"):
        FILTERS["overlay2_compliance"]({}, None, {"max_depth": 3})
    with pytest.raises(ReportError, match="non-negative integer"):
        evaluate({}, None, {"max_layer_depth": -1})


def log_options(sample, container, options, log=""):
    """Give a container log options (as ``docker run --log-opt`` leaves them in hostconfig.json) and a log."""
    directory = os.path.join(sample.root, "containers", sample.containers[container]["id"])
    with open(os.path.join(directory, "hostconfig.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    config["LogConfig"] = {"Type": "json-file", "Config": options}
    with open(os.path.join(directory, "hostconfig.json"), "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    with open(os.path.join(directory, sample.containers[container]["id"] + "-json.log"), "w") as handle:
        handle.write(log)


def test_a_clean_host_passes_every_rule_it_is_given(sample):
    for container in ("web", "job"):
        log_options(sample, container, {"max-size": "10m", "max-file": "3"}, "a line\n" * 10)
    facts, verdict = results_of(sample.root, drift=True)
    policy = {"max_orphan_bytes": 0, "allowed_repositories": ["example/*"], "max_layer_depth": 3,
              "no_container_drift": True, "max_container_log_bytes": 1 << 20, "container_log_rotation": True}
    checks = checks_by_name(evaluate(facts, verdict, policy))
    assert {name: check["status"] for name, check in checks.items()} == dict.fromkeys(checks, "passed")


def test_unset_rules_are_skipped_not_passed(sample):
    facts, verdict = results_of(sample.root)
    checks = checks_by_name(evaluate(facts, verdict, {}))
    assert [name for name, check in checks.items() if check["status"] == "skipped"] == [
        "orphan_bytes", "allowed_repositories", "layer_depth", "no_container_drift", "container_log_bytes",
        "container_log_rotation"]


def test_logs_over_the_limit_and_logs_never_rotated_fail_naming_their_containers(sample):
    log_options(sample, "web", {}, "x" * 200000)  # json-file without max-size: grows for ever
    log_options(sample, "job", {"max-size": "1m"}, "y" * 100)
    facts, verdict = results_of(sample.root)
    checks = checks_by_name(evaluate(facts, verdict, {"max_container_log_bytes": 100000,
                                                      "container_log_rotation": True}))
    assert checks["container_log_bytes"]["status"] == "failed"
    assert checks["container_log_bytes"]["details"] == ["container web (%s): 196.0 KiB of logs"
                                                        % sample.containers["web"]["id"][:12]]
    assert checks["container_log_rotation"]["details"] == ["container web (%s): its logs are not rotated"
                                                           % sample.containers["web"]["id"][:12]]
    facts.pop("usage")
    assert evaluate(facts, verdict, {"container_log_rotation": True})[-1]["message"] == \
        "the facts were gathered without usage"


def test_each_rule_fails_on_what_breaks_it(sample):
    chain_id = tamper(sample)
    facts, verdict = results_of(sample.root)
    checks = checks_by_name(evaluate(facts, verdict, {"allowed_repositories": ["example/base"],
                                                      "max_layer_depth": 2}))
    assert checks["layers_verify"]["status"] == "failed"
    assert any(chain_id in detail and "opt/data.bin" in detail for detail in checks["layers_verify"]["details"])
    assert checks["no_container_on_corrupt_image"]["status"] == "failed"
    assert "container web" in checks["no_container_on_corrupt_image"]["details"][0]
    assert [detail.split(" ")[0] for detail in checks["allowed_repositories"]["details"]] == [
        "example/app:2", "example/tool:1"]
    assert checks["layer_depth"]["details"] == ["example/app:2: 3 layers"]


def test_orphan_limit_needs_the_orphans_gathered(sample):
    facts, verdict = results_of(sample.root)
    facts["summary"]["orphan_bytes"] = None
    assert checks_by_name(evaluate(facts, verdict, {"max_orphan_bytes": 10}))["orphan_bytes"]["status"] == "failed"


def test_a_skipped_verify_task_fails_the_verify_rules_instead_of_passing_them(sample):
    facts, _verdict = results_of(sample.root)
    checks = checks_by_name(evaluate(facts, {"skipped": True, "changed": False}, {}))
    assert checks["layers_verify"]["status"] == "failed"
    assert checks["no_container_on_corrupt_image"]["status"] == "failed"


@pytest.mark.parametrize("reference, expected", [
    ("busybox:latest", "busybox"),
    ("registry:5000/team/app:1.2", "registry:5000/team/app"),
    ("registry:5000/team/app", "registry:5000/team/app"),
    ("app@sha256:" + "a" * 64, "app"),
])
def test_repository_of_a_reference(reference, expected):
    assert repository(reference) == expected


def test_junit_carries_failures_with_details_and_skips(sample):
    chain_id = tamper(sample)
    facts, verdict = results_of(sample.root)
    xml = junit_xml(evaluate(facts, verdict, {"max_layer_depth": 10}), "node-1", "2026-11-27T00:00:00")
    suite = ElementTree.fromstring(xml.split("\n", 1)[1]).find("testsuite")
    assert (suite.get("hostname"), suite.get("tests"), suite.get("failures"), suite.get("skipped")) == (
        "node-1", "8", "2", "5")
    failure = suite.find("testcase[@name='layers_verify']/failure")
    assert chain_id in failure.text and "opt/data.bin" in failure.text
    assert suite.find("testcase[@name='layer_depth']/failure") is None
    assert suite.find("testcase[@name='orphan_bytes']/skipped") is not None


def test_benchmark_controls_become_one_check_each_and_junit_test_cases(tmp_path):
    from ansible_collections.strata.overlay2.plugins.module_utils._cis.catalogue import Waiver, select  # pylint: disable=import-outside-toplevel
    from ansible_collections.strata.overlay2.plugins.module_utils._cis.benchmark import evaluate as cis  # pylint: disable=import-outside-toplevel
    from tests.support.synthstore import SyntheticStore, file  # pylint: disable=import-outside-toplevel
    store = SyntheticStore(str(tmp_path))
    store.add_image([store.add_layer([file("bin/tool", b"t", 0o4755)])], tags=["strata/suid:1"])
    waiver = Waiver.parse({"control": "4.8", "target": "strata/*", "reason": "needed"})
    report = cis(Overlay2Store.load(str(tmp_path)), None, select(["4.1", "4.8", "5.7", "7.1"]), [waiver])
    checks = FILTERS["overlay2_cis_checks"](report.as_dict()["controls"])
    assert [(c["name"].split()[0], c["status"]) for c in checks] == [
        ("4.1", "failed"), ("4.8", "passed"), ("5.7", "skipped"), ("7.1", "skipped")]
    assert checks[0]["details"] == ["strata/suid:1: runs as root (no USER)"] and checks[1]["message"] == "waived: needed"
    xml = ElementTree.fromstring(junit_xml(checks, "node-1"))
    assert [case.get("name") for case in xml.iter("testcase")][0] == "4.1 Ensure that a user for the container has been created"
    with pytest.raises(AnsibleFilterError, match="not a cis_benchmark control"):
        FILTERS["overlay2_cis_checks"]([{"id": "4.1", "status": "maybe"}])


def test_the_report_shows_a_control_by_host_matrix_of_the_benchmark(sample, tmp_path):
    from ansible_collections.strata.overlay2.plugins.module_utils._cis.catalogue import Waiver, select  # pylint: disable=import-outside-toplevel
    from ansible_collections.strata.overlay2.plugins.module_utils._cis.benchmark import evaluate as cis  # pylint: disable=import-outside-toplevel
    facts, verdict = results_of(sample.root)
    controls = select(["4.1", "4.6", "5.7"])
    strict = json.loads(json.dumps(cis(Overlay2Store.load(sample.root), None, controls, []).as_dict()))
    waived = json.loads(json.dumps(cis(Overlay2Store.load(sample.root), None, controls,
                                       [Waiver.parse({"control": "4.1", "reason": "known"})]).as_dict()))
    rows = [FILTERS["overlay2_host_summary"](facts, verdict, "node-1", {"controls": strict["controls"]}),
            FILTERS["overlay2_host_summary"](facts, verdict, "node-2", {"controls": waived["controls"]}),
            FILTERS["overlay2_host_summary"](facts, verdict, "node-3")]
    assert rows[2]["cis"] is None and rows[0]["cis"][0]["failing"]
    page = FILTERS["overlay2_report_html"](FILTERS["overlay2_fleet_report"](rows))
    matrix = page.split('<table id="cis-matrix">', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'<th class="cis-host">([^<]+)</th>', matrix) == ["node-1", "node-2"]
    assert re.findall(r'<tr data-control="([^"]+)">', matrix) == ["4.1", "4.6", "5.7"]
    row_41 = matrix.split('data-control="4.1"', 1)[1].split("</tr>", 1)[0]
    assert re.findall(r'data-status="([a-z_]+)"', row_41) == ["fail", "waived"]
    assert "cis-matrix" not in FILTERS["overlay2_report_html"](FILTERS["overlay2_fleet_report"](rows[2:]))
