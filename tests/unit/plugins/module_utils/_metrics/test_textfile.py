"""The audit's figures for node_exporter: the exposition format promtool accepts, one sample per store, and a
file replaced atomically (never a half-written .prom, never through a symlink)."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._metrics.textfile import render
from ansible_collections.strata.overlay2.plugins.modules import overlay2_metrics

from tests.support.module_runner import run_module

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))))
PROMTOOL = os.environ.get("PROMTOOL", os.path.join(REPO, ".cache", "promtool", "root", "usr", "bin", "promtool"))

ROWS = [
    {"data_root": "/var/lib/docker", "store": "overlay2", "images": 3, "layers": 4, "containers": 2,
     "layers_size": 5130, "shared_size": 1020, "orphan_bytes": 9000, "corrupt_layers": 1, "verdict": "corrupt",
     "list_totals": {"warnings": 2}},
    {"data_root": '/srv/odd "dir"\\x', "store": "containerd", "images": 1, "layers": 1, "containers": 0,
     "layers_size": 10, "shared_size": 0, "orphan_bytes": None, "corrupt_layers": 0, "verdict": "not verified",
     "warnings": []},
]
AUDIT = {"schema": 1, "run_at": "2026-12-07T10:00:00Z", "rows": ROWS}


def samples(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_every_store_has_its_gauges_and_what_was_not_measured_is_absent():
    text = render(ROWS, 1796637600)
    lines = samples(text)
    assert 'strata_overlay2_layers_bytes{data_root="/var/lib/docker",store="overlay2"} 5130' in lines
    assert 'strata_overlay2_orphan_bytes{data_root="/var/lib/docker",store="overlay2"} 9000' in lines
    assert 'strata_overlay2_corrupt_layers{data_root="/var/lib/docker",store="overlay2"} 1' in lines
    assert 'strata_overlay2_warnings{data_root="/var/lib/docker",store="overlay2"} 2' in lines
    assert 'strata_overlay2_last_run_timestamp_seconds{data_root="/var/lib/docker",store="overlay2"} 1796637600' in lines
    odd = [line for line in lines if "containerd" in line]
    assert all('data_root="/srv/odd \\"dir\\"\\\\x"' in line for line in odd)
    assert not any(line.startswith(("strata_overlay2_orphan_bytes", "strata_overlay2_corrupt_layers")) for line in odd)
    assert text.count("# TYPE strata_overlay2_layers_bytes gauge") == 1


@pytest.mark.skipif(not os.path.exists(PROMTOOL), reason="promtool comes with make deps (devtools/promtool.sh)")
def test_promtool_accepts_the_file(tmp_path):
    result = run_module(overlay2_metrics.main, path=str(tmp_path), audit=AUDIT)
    with open(result.result["path"], "rb") as handle:
        checked = subprocess.run([PROMTOOL, "check", "metrics"], stdin=handle, capture_output=True, text=True,
                                 check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert result.result["samples"] == len(samples(open(result.result["path"], encoding="utf-8").read()))


def test_the_file_is_replaced_by_a_rename_and_a_symlink_there_is_not_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    collector = tmp_path / "collector"
    collector.mkdir()
    (collector / "strata_overlay2.prom").symlink_to(outside)
    result = run_module(overlay2_metrics.main, path=str(collector), audit=AUDIT)
    assert not result.failed and result.result["changed"]
    assert outside.read_text() == "keep me"
    target = collector / "strata_overlay2.prom"
    assert not target.is_symlink() and oct(target.stat().st_mode & 0o777) == "0o644"
    assert sorted(os.listdir(collector)) == ["strata_overlay2.prom"]  # no temporary file left behind


def test_check_mode_predicts_the_change_and_writes_nothing_and_the_same_figures_change_nothing(tmp_path):
    predicted = run_module(overlay2_metrics.main, path=str(tmp_path), audit=AUDIT, _ansible_check_mode=True)
    assert predicted.result["changed"] and os.listdir(tmp_path) == []
    assert run_module(overlay2_metrics.main, path=str(tmp_path), audit=AUDIT).result["changed"]
    assert not run_module(overlay2_metrics.main, path=str(tmp_path), audit=AUDIT).result["changed"]
    moved = dict(AUDIT, run_at="2026-12-08T10:00:00Z")
    assert run_module(overlay2_metrics.main, path=str(tmp_path), audit=moved, _ansible_check_mode=True).result["changed"]


@pytest.mark.parametrize("args, code", [
    ({"file_name": "metrics.txt"}, "bad_file_name"),
    ({"file_name": "../x.prom"}, "bad_file_name"),
    ({"audit": {"rows": ROWS}}, "bad_audit"),
    ({"audit": {"run_at": "2026-12-07T10:00:00Z", "rows": "nope"}}, "bad_audit"),
])
def test_bad_input_is_refused_with_a_code_and_nothing_written(tmp_path, args, code):
    result = run_module(overlay2_metrics.main, **dict({"path": str(tmp_path), "audit": AUDIT}, **args))
    assert result.failed and result.result["code"] == code and os.listdir(tmp_path) == []


def test_a_missing_directory_is_named(tmp_path):
    result = run_module(overlay2_metrics.main, path=str(tmp_path / "absent"), audit=AUDIT)
    assert result.failed and result.result["code"] == "no_directory"
