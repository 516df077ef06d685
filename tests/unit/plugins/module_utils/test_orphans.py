"""Orphan classification and pruning on synthetic stores: what goes, what stays, and why."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import ORPHAN_KINDS, classify
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import (
    QUARANTINED,
    REMOVED,
    SKIPPED,
    PruneError,
    WOULD_REMOVE,
    Daemon,
    Gates,
    decide,
    execute,
)
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import verify

from tests.support.synthstore import file, write


class Leftovers:
    """Plants each kind of leftover in a sample store, the way a dying daemon leaves them."""

    def __init__(self, sample):
        self.sample = sample
        self.synth = sample.synth

    def chain(self, depth=1):
        """Committed layers of an image that was never written (a load cut short)."""
        parent = self.sample.base
        layers = []
        for number in range(depth):
            parent = self.synth.add_layer([file("loaded/%d" % number, self.synth.next_hex().encode() * 80)], parent=parent)
            layers.append(parent)
        return layers

    def directory(self):
        name = self.synth.next_hex()
        self.synth.make_overlay_dir(name, None)
        write(self.synth.overlay(name, "diff", "partial"), "x" * 9000)
        return name

    def removing(self):
        layer = self.chain()[0]
        record = self.synth.layerdb(layer.chain_id)
        renamed = "%s-%s-removing" % (record, self.synth.next_hex())
        os.rename(record, renamed)
        return renamed, layer

    def write_set(self, cache_id=None):
        record = self.synth.path("image/overlay2/layerdb/tmp/write-set-123456")
        os.makedirs(record)
        cache_id = cache_id or self.directory()
        write(os.path.join(record, "cache-id"), cache_id)
        write(os.path.join(record, "diff"), "sha256:" + "d" * 64)
        return record, cache_id

    def dangling_link(self):
        link = self.synth.path("overlay2/l", "DANGLING" + "A" * 18)
        os.symlink("../%s/diff" % ("e" * 64), link)
        return link

    def stale_mount(self):
        container = self.sample.containers["job"]
        shutil.rmtree(self.synth.path("containers", container["id"]))
        return container


@pytest.fixture
def leftovers(sample):
    return Leftovers(sample)


def gates(store, **overrides):
    values = dict(kinds=ORPHAN_KINDS, min_age=0, now=time.time() + 5, daemon=None, layer_dirs=len(store.dirs))
    values.update(overrides)
    return Gates(**values)


def plan(root, check_mode=False, quarantine=False, **overrides):
    store = Overlay2Store.load(root)
    return decide(classify(store).orphans, gates(store, **overrides), check_mode, quarantine)


def kinds_of(root):
    return sorted(orphan.kind for orphan in classify(Overlay2Store.load(root)).orphans)


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
    leftovers.chain(depth=2)
    leftovers.directory()
    leftovers.removing()
    leftovers.write_set()
    leftovers.dangling_link()
    leftovers.stale_mount()
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


def test_every_reason_code_is_documented_where_playbooks_read_it():
    import re  # pylint: disable=import-outside-toplevel

    import yaml  # pylint: disable=import-outside-toplevel

    from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import REASON_CODES
    from ansible_collections.strata.overlay2.plugins.modules import orphan_layer_prune

    returned = yaml.safe_load(orphan_layer_prune.RETURN)["orphans"]["contains"]["reason_code"]["description"]
    assert set(re.findall(r"V\((\w+)\)", " ".join(returned))) == set(REASON_CODES)
    assert all("V(%s)" % code in orphan_layer_prune.DOCUMENTATION for code in REASON_CODES)
