"""orphan_layer_prune's main: check mode predicts ``changed`` and removes nothing; the prune then removes what
it predicted; bad options fail before anything is read."""

from __future__ import annotations

import os

from ansible_collections.strata.overlay2.plugins.modules.orphan_layer_prune import main

from tests.support.module_runner import run_module


def test_check_mode_predicts_what_the_prune_then_does(leftovers):
    name = leftovers.directory()
    root = leftovers.sample.root
    planned = run_module(main, data_root=root, min_age="0", _ansible_check_mode=True, _ansible_diff=True)
    assert not planned.failed and planned.result["changed"] is True
    assert [o["action"] for o in planned.result["orphans"]] == ["would_remove"]
    assert os.path.isdir(os.path.join(root, "overlay2", name))
    assert os.path.join(root, "overlay2", name) in planned.result["diff"]["before"]
    done = run_module(main, data_root=root, min_age="0")
    assert done.result["changed"] is True and [o["action"] for o in done.result["orphans"]] == ["removed"]
    assert done.result["reclaimed_bytes"] == planned.result["would_reclaim_bytes"] > 0
    assert not os.path.exists(os.path.join(root, "overlay2", name))
    again = run_module(main, data_root=root, min_age="0", _ansible_check_mode=True)
    assert again.result["changed"] is False and again.result["orphans"] == []


def test_what_a_gate_keeps_is_listed_with_its_code(leftovers):
    leftovers.directory()
    done = run_module(main, data_root=leftovers.sample.root)  # min_age defaults to 1h: just made, so too young
    assert done.result["changed"] is False
    assert [k["reason_code"] for k in done.result["kept"]] == ["too_young"]


def test_bad_options_fail_before_anything_is_read(sample, tmp_path):
    assert "min_age must be" in run_module(main, data_root=sample.root, min_age="soon").result["msg"]
    inside = os.path.join(sample.root, "quarantine")
    done = run_module(main, data_root=sample.root, quarantine_dir=inside)
    assert done.failed and done.result["msg"].startswith("quarantine_dir must be outside the data-root")
