"""layer_verify's main: an intact store verifies; a changed file fails the task, naming the file, unless told not to."""

from __future__ import annotations

import os

from ansible_collections.strata.overlay2.plugins.modules.layer_verify import main

from tests.support.module_runner import run_module


def changed_file(sample) -> str:
    path = os.path.join(sample.synth.overlay(sample.base.cache_id, "diff"), "etc", "conf", "keep")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("KEEP\n")  # same size, other bytes
    return path


def test_an_intact_store_verifies(sample):
    done = run_module(main, data_root=sample.root)
    assert not done.failed and done.result["ok"] is True and done.result["changed"] is False
    assert done.result["checked_layers"] == 4 and done.result["corrupt"] == []


def test_a_changed_file_fails_the_task_and_is_named(sample):
    path = changed_file(sample)
    done = run_module(main, data_root=sample.root)
    assert done.failed and done.result["msg"].startswith("1 corrupt: ")
    problems = done.result["corrupt"][0]["problems"]
    assert ("file_modified", path) in [(p["kind"], p["path"]) for p in problems]


def test_fail_on_corrupt_off_reports_without_failing(sample):
    changed_file(sample)
    done = run_module(main, data_root=sample.root, fail_on_corrupt=False)
    assert not done.failed and done.result["ok"] is False and len(done.result["corrupt"]) == 1


def test_an_image_not_in_the_store_and_a_bad_worker_count_fail_cleanly(sample):
    assert "not in the store" in run_module(main, data_root=sample.root, images=["nope:1"]).result["msg"]
    done = run_module(main, data_root=sample.root, workers=0)
    assert done.failed and done.result["msg"] == "workers must be at least 1, got 0"
