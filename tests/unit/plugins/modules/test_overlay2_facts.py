"""overlay2_facts' main: the facts it returns are the store model's, shaped once; bad input fails cleanly."""

from __future__ import annotations

import os

from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from ansible_collections.strata.overlay2.plugins.modules.overlay2_facts import main

from tests.support.module_runner import run_module


def test_the_facts_are_the_store_as_gather_shapes_it(sample):
    done = run_module(main, data_root=sample.root)
    assert not done.failed and done.result["changed"] is False
    facts = done.result["ansible_facts"]["overlay2"]
    expected = gather(Overlay2Store.load(sample.root))
    assert facts["summary"] == expected["summary"] and facts["store"] == "overlay2"
    assert [image["id"] for image in facts["images"]] == [image["id"] for image in expected["images"]]
    assert sorted(c["name"] for c in facts["containers"]) == ["job", "web"]
    assert facts["orphans"]["entries"] == []


def test_orphans_off_leaves_the_section_out_and_sizes_on_measure_containers(sample):
    facts = run_module(main, data_root=sample.root, orphans=False, container_sizes=True).result["ansible_facts"]["overlay2"]
    assert facts["orphans"] is None and facts["summary"]["orphan_bytes"] is None
    web = [c for c in facts["containers"] if c["name"] == "web"][0]
    assert web["rw_size"] >= 300


def test_a_data_root_that_is_not_a_store_fails_with_the_reason(tmp_path):
    done = run_module(main, data_root=str(tmp_path))
    assert done.failed and "not a Docker data-root" in done.result["msg"]
    assert all("data_root" in daemon for daemon in done.result["daemons"])  # every daemon found, to choose from


def test_gather_subset_returns_the_parts_asked_for_and_all_has_usage(sample):
    def keys(**args):
        done = run_module(main, data_root=sample.root, **args)
        assert not done.failed, done.result
        return set(done.result["ansible_facts"]["overlay2"])

    always = {"data_root", "driver", "store", "warnings", "warnings_count"}
    everything = keys()
    assert everything == always | {"images", "layers", "containers", "orphans", "summary", "orphan_totals", "daemon",
                                   "daemons", "usage"}
    assert keys(gather_subset=["summary"]) == always | {"summary", "orphan_totals"}
    assert keys(gather_subset=["!usage", "!daemons"]) == everything - {"usage", "daemon", "daemons"}
    failed = run_module(main, data_root=sample.root, gather_subset=["sizes"])
    assert failed.failed and "unknown part 'sizes'" in failed.result["msg"]


def test_the_summary_alone_is_the_same_summary_with_orphan_totals_and_the_first_warnings(leftovers):
    leftovers.every_kind()
    for number in range(30):  # entries the store does not know: one warning each
        os.makedirs(os.path.join(leftovers.sample.root, "overlay2", "not-a-layer-%d" % number))
    full = run_module(main, data_root=leftovers.sample.root).result["ansible_facts"]["overlay2"]
    small = run_module(main, data_root=leftovers.sample.root,
                       gather_subset=["summary"]).result["ansible_facts"]["overlay2"]
    assert small["summary"] == full["summary"] and small["summary"]["orphan_bytes"] > 0
    assert small["orphan_totals"] == full["orphan_totals"]
    assert {kind: found["count"] for kind, found in small["orphan_totals"].items() if found["count"]} == \
        {kind: count for kind, count in full["orphans"]["by_kind"].items() if count}
    assert sum(found["bytes"] for found in small["orphan_totals"].values()) == full["orphans"]["bytes"]
    assert small["warnings_count"] == full["warnings_count"] == len(full["warnings"]) >= 30
    assert small["warnings"] == full["warnings"][:20]
