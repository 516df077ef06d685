"""The prune's decisions (its gates and their reason codes) and its removals, on synthetic stores."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import classify
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import (
    QUARANTINED,
    REMOVED,
    SKIPPED,
    PruneError,
    Daemon,
    decide,
    execute,
)
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import verify

from tests.support.leftovers import gates, kinds_of, plan
from tests.support.synthstore import file, write


def test_anything_changed_since_the_running_daemon_started_is_in_flight(leftovers):
    leftovers.write_set()
    leftovers.directory()
    daemon = Daemon(pid=4242, started_at=time.time() - 3600)
    decisions = plan(leftovers.sample.root, daemon=daemon)
    assert {(d.action, d.reason.split(":")[0]) for d in decisions} == {
        (SKIPPED, "changed since the running dockerd (pid 4242) started")}


def test_old_leftovers_go_under_a_running_daemon_except_what_it_holds_in_memory(leftovers):
    leftovers.chain()
    leftovers.directory()
    leftovers.dangling_link()
    old = time.time() - 7200
    for parent, dirs, files in os.walk(leftovers.synth.root):
        for name in dirs + files:
            os.utime(os.path.join(parent, name), (old, old), follow_symlinks=False)
    decisions = plan(leftovers.sample.root, daemon=Daemon(pid=4242, started_at=time.time() - 3600))
    assert sorted((d.orphan.kind, d.action) for d in decisions) == [
        ("dangling_link", REMOVED), ("unreferenced_chain", SKIPPED), ("unreferenced_dir", REMOVED)]


def test_min_age_kinds_and_the_byte_ceiling_hold(leftovers):
    leftovers.chain()
    leftovers.directory()
    assert {d.action for d in plan(leftovers.sample.root, min_age=3600)} == {SKIPPED}
    by_kind = {d.orphan.kind: d.action for d in plan(leftovers.sample.root, kinds=["unreferenced_dir"])}
    assert by_kind == {"unreferenced_chain": SKIPPED, "unreferenced_dir": REMOVED}
    ceiling = {d.action for d in plan(leftovers.sample.root, max_remove_bytes=4096)}
    assert ceiling == {SKIPPED}


def test_a_parent_stays_when_its_child_stays(leftovers):
    child = leftovers.chain(depth=2)[1]
    decisions = plan(leftovers.sample.root, max_remove_bytes=0)  # the child cannot go
    assert [(d.orphan.chain_id, d.action, d.reason) for d in decisions][1] == (
        child.parent.chain_id, SKIPPED, "parent of a layer that stays")


def test_a_mounted_directory_stays(leftovers):
    name = leftovers.directory()
    store = Overlay2Store.load(leftovers.sample.root)
    mountinfo = os.path.join(leftovers.synth.root, "mountinfo")
    write(mountinfo, "1 2 0:1 / %s rw - overlay overlay rw\n" % leftovers.synth.overlay(name, "merged"))
    (orphan,) = classify(store, [mountinfo]).orphans
    assert orphan.mounted
    (decision,) = decide([orphan], gates(store), False, False)
    assert (decision.action, decision.reason) == (SKIPPED, "mounted")


def test_the_last_layer_directory_is_never_removed(tmp_path):
    from tests.support.synthstore import SyntheticStore
    synth = SyntheticStore(os.path.join(str(tmp_path), "d"))
    synth.add_layer([file("a", "a")])  # a chain no image uses: the only directory in overlay2/
    decisions = plan(synth.root)
    assert [(d.action, d.reason.split(" (")[0]) for d in decisions] == [
        (SKIPPED, "would leave overlay2/ without layer directories")]


# -- hostile stores -----------------------------------------------------------------------------
def test_a_symlink_inside_an_orphan_is_removed_not_followed(leftovers, tmp_path):
    precious = os.path.join(str(tmp_path), "precious")
    os.makedirs(precious)
    write(os.path.join(precious, "keep"), "keep")
    name = leftovers.directory()
    os.symlink(precious, leftovers.synth.overlay(name, "diff", "escape"))
    os.symlink(os.path.join(precious, "keep"), leftovers.synth.overlay(name, "diff", "escape-file"))
    execute(leftovers.sample.root, plan(leftovers.sample.root))
    assert not os.path.exists(leftovers.synth.overlay(name))
    assert open(os.path.join(precious, "keep")).read() == "keep"


def test_a_wide_orphan_is_removed_branch_by_branch_without_following_links(leftovers, tmp_path):
    precious = os.path.join(str(tmp_path), "precious")
    os.makedirs(precious)
    write(os.path.join(precious, "keep"), "keep")
    name = leftovers.directory()
    for branch in range(6):
        directory = leftovers.synth.overlay(name, "diff", "branch%d" % branch, "deeper")
        os.makedirs(directory)
        for index in range(50):
            write(os.path.join(directory, "f%d" % index), "x")
        os.symlink(precious, os.path.join(directory, "escape"))
    outcome = execute(leftovers.sample.root, plan(leftovers.sample.root))
    assert outcome.errors == [] and not os.path.exists(leftovers.synth.overlay(name))
    assert os.listdir(precious) == ["keep"]


def test_an_orphan_swapped_for_a_symlink_after_classification_is_not_followed(leftovers, tmp_path):
    precious = os.path.join(str(tmp_path), "precious")
    os.makedirs(os.path.join(precious, "diff"))
    write(os.path.join(precious, "diff", "keep"), "keep")
    name = leftovers.directory()
    decisions = plan(leftovers.sample.root)
    shutil.rmtree(leftovers.synth.overlay(name))
    os.symlink(precious, leftovers.synth.overlay(name))  # the swap, between the check and the delete
    execute(leftovers.sample.root, decisions)
    assert open(os.path.join(precious, "diff", "keep")).read() == "keep"
    assert not os.path.lexists(leftovers.synth.overlay(name))


def test_a_symlinked_layerdb_directory_is_never_entered(leftovers, tmp_path):
    precious = os.path.join(str(tmp_path), "precious")
    os.makedirs(precious)
    write(os.path.join(precious, "cache-id"), leftovers.sample.base.cache_id)
    os.symlink(precious, leftovers.synth.path("image/overlay2/layerdb/tmp/write-set-999"))
    execute(leftovers.sample.root, plan(leftovers.sample.root))
    assert os.path.exists(os.path.join(precious, "cache-id"))
    assert os.path.isdir(leftovers.synth.overlay(leftovers.sample.base.cache_id))


def test_a_quarantine_that_cannot_be_made_stops_the_prune_before_anything_moves(leftovers, tmp_path):
    leftovers.chain()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    before = kinds_of(leftovers.sample.root)
    decisions = plan(leftovers.sample.root, quarantine=True)
    with pytest.raises(PruneError, match="cannot create the quarantine .*a-file/.*nothing was moved"):
        execute(leftovers.sample.root, decisions, str(blocker))
    assert before and kinds_of(leftovers.sample.root) == before
    assert {d.action for d in decisions} == {SKIPPED}  # the result says they stayed, not that they moved


def test_quarantine_moves_with_a_manifest_so_it_can_be_undone(leftovers, tmp_path):
    (layer,) = leftovers.chain()
    quarantine = os.path.join(str(tmp_path), "quarantine")
    outcome = execute(leftovers.sample.root, plan(leftovers.sample.root, quarantine=True), quarantine)
    assert [d.action for d in outcome.decisions] == [QUARANTINED]
    with open(os.path.join(outcome.quarantine, "manifest.json")) as handle:
        manifest = json.load(handle)
    assert manifest["moved"][0]["parts"][-1] == "image/overlay2/layerdb/sha256/" + layer.chain_id[7:]
    assert os.path.isfile(os.path.join(outcome.quarantine, "overlay2", layer.cache_id, "diff", "loaded", "0"))
    assert kinds_of(leftovers.sample.root) == [] and verify(Overlay2Store.load(leftovers.sample.root)).ok


def test_the_manifest_reaches_the_disk_before_it_is_renamed_into_place(leftovers, tmp_path, monkeypatch):
    leftovers.chain()
    quarantine = os.path.join(str(tmp_path), "quarantine")
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.basename(os.readlink("/proc/self/fd/%d" % fd))))
        real_fsync(fd)

    def replace(source, destination):
        events.append(("replace", os.path.basename(source), os.path.basename(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    outcome = execute(leftovers.sample.root, plan(leftovers.sample.root, quarantine=True), quarantine)
    assert ("replace", "manifest.json.tmp", "manifest.json") in events
    renamed = events.index(("replace", "manifest.json.tmp", "manifest.json"))
    assert ("fsync", "manifest.json.tmp") in events[:renamed]
    with open(os.path.join(outcome.quarantine, "manifest.json")) as handle:
        assert json.load(handle)["incomplete"] == []


def test_every_reason_code_is_documented_where_playbooks_read_it():
    import re  # pylint: disable=import-outside-toplevel

    import yaml  # pylint: disable=import-outside-toplevel

    from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import REASON_CODES
    from ansible_collections.strata.overlay2.plugins.modules import orphan_layer_prune

    returned = yaml.safe_load(orphan_layer_prune.RETURN)["orphans"]["contains"]["reason_code"]["description"]
    assert set(re.findall(r"V\((\w+)\)", " ".join(returned))) == set(REASON_CODES)
    assert all("V(%s)" % code in orphan_layer_prune.DOCUMENTATION for code in REASON_CODES)
