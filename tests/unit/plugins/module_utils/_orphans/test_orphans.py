"""Orphan classification on synthetic stores: what is an orphan, what stays, and why."""

from __future__ import annotations

import json
import os
import time

from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import classify
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import (
    REMOVED,
    WOULD_REMOVE,
    execute,
)
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import verify

from tests.support.leftovers import kinds_of, plan
from tests.support.synthstore import write


def test_a_clean_store_has_no_orphans(sample):
    classification = classify(Overlay2Store.load(sample.root))
    assert classification.orphans == [] and classification.blocking == []
    assert (classification.buildkit.state, classification.buildkit.chains, classification.buildkit.dirs) == (
        "absent", set(), set())
    assert len(classification.live_dirs) == len(Overlay2Store.load(sample.root).dirs)


def test_every_kind_of_leftover_is_named(leftovers):
    leftovers.chain()
    leftovers.directory()
    leftovers.removing()
    leftovers.write_set()
    leftovers.dangling_link()
    leftovers.stale_mount()
    assert kinds_of(leftovers.sample.root) == sorted(
        ["unreferenced_chain", "unreferenced_dir", "removing", "write_set", "dangling_link", "stale_mount"])


def test_an_orphan_carries_its_directory_and_link_and_their_bytes(leftovers):
    (layer,) = leftovers.chain()
    (orphan,) = classify(Overlay2Store.load(leftovers.sample.root)).orphans
    assert orphan.parts == ["overlay2/l/" + layer.link, "overlay2/" + layer.cache_id,
                            "image/overlay2/layerdb/sha256/" + layer.chain_id[7:]]
    assert orphan.usage.bytes >= 5120 and orphan.usage.newest_mtime > time.time() - 60


def test_a_deep_orphan_chain_goes_children_first_and_entirely(leftovers):
    layers = leftovers.chain(depth=3)
    orphans = classify(Overlay2Store.load(leftovers.sample.root)).orphans
    assert [o.chain_id for o in orphans] == [layer.chain_id for layer in reversed(layers)]
    outcome = execute(leftovers.sample.root, plan(leftovers.sample.root))
    assert outcome.errors == [] and kinds_of(leftovers.sample.root) == []


def test_pruning_reclaims_exactly_the_leftovers_and_the_store_still_verifies(leftovers):
    leftovers.every_kind()
    decisions = plan(leftovers.sample.root)
    assert {d.action for d in decisions} == {REMOVED}
    outcome = execute(leftovers.sample.root, decisions)
    assert outcome.reclaimed_bytes == sum(d.orphan.usage.bytes for d in decisions) > 30000
    assert kinds_of(leftovers.sample.root) == []
    assert verify(Overlay2Store.load(leftovers.sample.root)).ok
    assert not os.path.exists(leftovers.synth.path("image/overlay2/layerdb/tmp/write-set-123456"))


def test_check_mode_changes_nothing(leftovers):
    leftovers.chain()
    leftovers.directory()
    decisions = plan(leftovers.sample.root, check_mode=True)
    assert {d.action for d in decisions} == {WOULD_REMOVE}
    assert execute(leftovers.sample.root, decisions).reclaimed_bytes == 0
    assert len(kinds_of(leftovers.sample.root)) == 2


# -- the states the reference says a cleaner must leave alone ------------------------------------
def test_a_buildkit_database_that_is_not_bolt_keeps_every_unreferenced_directory(sample):
    sample.synth.make_overlay_dir("ussu1vy3wun3esv0p64nstmdi", None)
    os.makedirs(sample.synth.path("buildkit"))
    write(sample.synth.path("buildkit", "snapshots.db"), "bolt...ussu1vy3wun3esv0p64nstmdi...")
    classification = classify(Overlay2Store.load(sample.root))
    (orphan,) = classification.orphans
    assert orphan.kind == "unreferenced_dir" and orphan.blocked_by == [sample.synth.path("buildkit", "containerdmeta.db")]
    assert classification.buildkit.state == "unknown"


def test_a_chain_only_a_mount_uses_stays(leftovers):
    (layer,) = leftovers.chain()
    leftovers.synth.add_container("sha256:" + "c" * 64, layer, "from-deleted-image")
    assert kinds_of(leftovers.sample.root) == []


def test_a_chain_only_a_live_child_uses_stays(sample):
    # the tool layer's parent (base) would be used by the child even if no image listed base itself
    store = Overlay2Store.load(sample.root)
    assert sample.base.chain_id in classify(store).live_chains


def test_a_dead_containers_mount_stays(sample):
    job = sample.containers["job"]["id"]
    path = sample.synth.path("containers", job, "config.v2.json")
    with open(path) as handle:
        config = json.load(handle)
    config["State"]["Dead"] = True
    write(path, json.dumps(config))
    assert kinds_of(sample.root) == []


def test_a_directory_a_live_lower_file_lists_stays(leftovers):
    name = leftovers.directory()
    link = open(leftovers.synth.overlay(name, "link")).read()
    lower = leftovers.synth.overlay(leftovers.sample.app.cache_id, "lower")
    write(lower, open(lower).read() + ":l/" + link)
    assert kinds_of(leftovers.sample.root) == []


def test_a_write_set_never_takes_a_live_directory_with_it(leftovers):
    record, cache_id = leftovers.write_set(cache_id=leftovers.sample.base.cache_id)
    (orphan,) = classify(Overlay2Store.load(leftovers.sample.root)).orphans
    assert orphan.parts == ["image/overlay2/layerdb/tmp/write-set-123456"]
    execute(leftovers.sample.root, plan(leftovers.sample.root))
    assert os.path.isdir(leftovers.synth.overlay(cache_id)) and not os.path.exists(record)
