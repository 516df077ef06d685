"""cis_benchmark's main: every control of the profile gets one verdict, waivers apply, bad waivers fail."""

from __future__ import annotations

from ansible_collections.strata.overlay2.plugins.modules.cis_benchmark import main

from tests.support.module_runner import run_module


def statuses(result):
    return {control["id"]: control["status"] for control in result["controls"]}


def test_every_control_of_the_profile_gets_one_verdict(sample):
    done = run_module(main, data_root=sample.root, profile=["level1", "level2"])
    assert not done.failed and done.result["changed"] is False
    found = statuses(done.result)
    assert len(found) == len(done.result["controls"]) > 50
    assert set(found.values()) <= {"pass", "fail", "not_applicable", "manual", "waived"}
    assert sorted(done.result["failed_controls"]) == sorted(k for k, v in found.items() if v == "fail")


def test_a_waiver_turns_a_failing_control_into_waived(sample):
    failing = [k for k, v in statuses(run_module(main, data_root=sample.root).result).items() if v == "fail"]
    assert failing
    waiver = {"control": failing[0], "reason": "accepted until the rebuild", "expires": "2999-01-01"}
    assert statuses(run_module(main, data_root=sample.root, waivers=[waiver]).result)[failing[0]] == "waived"


def test_a_waiver_without_a_known_control_fails(sample):
    done = run_module(main, data_root=sample.root, waivers=[{"control": "99.99", "reason": "x"}])
    assert done.failed
