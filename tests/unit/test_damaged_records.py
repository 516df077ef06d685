"""Unknown is not unowned: each kind of damaged reference record blocks what it might name, and only that.

Every case damages one record of the sample store (two images sharing a base, a running container on the
app image, an exited one on the base) beside real leftovers, then plans a prune with every gate open
(min_age 0, no daemon). Nothing any image or container uses may be planned, the record must be named, and
the leftovers that no damaged record could name (a dangling link) still go.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import time

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import ORPHAN_KINDS, classify
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import (
    REMOVED,
    SKIPPED,
    UNKNOWN_OWNER,
    Gates,
    decide,
    execute,
)
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import verify
from tests.support.synthstore import file, write


def in_use(sample) -> set:
    """Every path an image or container of the sample uses, as the synthetic store wrote it."""
    paths = set()
    for layer in (sample.app, sample.tool):
        for current in layer.chain():
            paths.add(sample.synth.layerdb(current.chain_id))
            paths.add(sample.synth.overlay(current.cache_id))
    for container in sample.containers.values():
        paths.add(sample.synth.path("image/overlay2/layerdb/mounts", container["id"]))
        paths.add(sample.synth.overlay(container["mount_id"]))
        paths.add(sample.synth.overlay(container["mount_id"] + "-init"))
    return paths


def plant_leftovers(sample):
    """An unreferenced chain and directory, and a dangling link."""
    leaked = sample.synth.add_layer([file("leaked", "x" * 5000)], parent=sample.base)
    name = sample.synth.next_hex()
    sample.synth.make_overlay_dir(name, None)
    link = sample.synth.path("overlay2/l", "DANGLING" + "A" * 18)
    os.symlink("../%s/diff" % ("e" * 64), link)
    return leaked, name, link


def web(sample, name):
    return sample.synth.path("image/overlay2/layerdb/mounts", sample.containers["web"]["id"], name)


DAMAGE = {
    # name: (path of the record, what to write there, the might_name the record gets)
    "layer cache-id": (lambda s: os.path.join(s.synth.layerdb(s.app.chain_id), "cache-id"), "../../../x", ["dirs"]),
    # a valid id, but not of this layer's directory: the directory it named before is unknown
    "layer cache-id of no directory": (lambda s: os.path.join(s.synth.layerdb(s.tool.chain_id), "cache-id"), "f" * 64,
                                       ["dirs"]),
    "layer parent": (lambda s: os.path.join(s.synth.layerdb(s.app.chain_id), "parent"), "garbage", ["chains"]),
    "layer diff": (lambda s: os.path.join(s.synth.layerdb(s.app.chain_id), "diff"), "\0\0\0", []),
    "mount-id": (lambda s: web(s, "mount-id"), "/var/lib/docker/overlay2/x", ["dirs"]),
    "init-id": (lambda s: web(s, "init-id"), "truncat", ["dirs"]),
    "mount parent": (lambda s: web(s, "parent"), "sha256:", ["chains"]),
    "image config": (lambda s: config_path(s, "app"), "{not json", ["chains"]),
    # valid, but not what the engine wrote: the tool image no longer lists its own layer
    "image config edited": (lambda s: config_path(s, "tool"), lambda s: edited_config(s, "tool"), ["chains"]),
    "container config": (lambda s: s.synth.path("containers", s.containers["web"]["id"], "config.v2.json"),
                         "", []),
    "buildkit database": (lambda s: s.synth.path("buildkit", "snapshots.db"), "not bolt", ["chains", "dirs"]),
}


def config_path(sample, image):
    return sample.synth.path("image/overlay2/imagedb/content/sha256", sample.images[image][7:])


def edited_config(sample, image):
    """The image's config without its top layer: valid JSON that no longer hashes to the image's id."""
    with open(config_path(sample, image), encoding="utf-8") as handle:
        config = json.load(handle)
    config["rootfs"]["diff_ids"] = config["rootfs"]["diff_ids"][:-1]
    return json.dumps(config)


def damage(sample, case):
    path_of, content, might_name = DAMAGE[case]
    path = path_of(sample)
    if callable(content):
        content = content(sample)
    if case == "buildkit database":
        from tests.support.boltwriter import write_buildkit  # pylint: disable=import-outside-toplevel
        write_buildkit(sample.root, {}, {}, {})
    write(path, content)
    return path, might_name


def plan(root):
    store = Overlay2Store.load(root)
    gates = Gates(kinds=ORPHAN_KINDS, min_age=0, now=time.time() + 5, daemon=None, layer_dirs=len(store.dirs))
    classification = classify(store)
    return classification, decide(classification.orphans, gates, False, False)


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_a_damaged_record_blocks_what_it_might_name_and_is_named(sample, case):
    _leaked, _name, link = plant_leftovers(sample)
    path, might_name = damage(sample, case)
    classification, decisions = plan(sample.root)
    record = [r for r in classification.blocking if r.path in (path, os.path.dirname(path))]
    assert len(record) == 1 and sorted(record[0].might_name) == might_name
    going = {p for d in decisions if d.action == REMOVED for p in d.orphan.as_dict()["paths"]}
    assert not going & in_use(sample)
    assert link in going  # nothing names a dangling link
    for decision in decisions:
        if decision.action == SKIPPED:
            assert decision.reason_code == UNKNOWN_OWNER and decision.orphan.blocked_by == [record[0].path]
    if might_name:
        assert any(d.reason_code == UNKNOWN_OWNER for d in decisions)


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_pruning_around_a_damaged_record_loses_nothing_in_use(sample, case):
    plant_leftovers(sample)
    damage(sample, case)
    before = {p for p in in_use(sample) if os.path.lexists(p)}
    _classification, decisions = plan(sample.root)
    outcome = execute(sample.root, decisions)
    assert outcome.errors == []
    assert {p for p in before if os.path.lexists(p)} == before


def test_a_damaged_cache_id_of_an_unused_chain_keeps_the_chain_and_every_directory(sample):
    leaked, name, _link = plant_leftovers(sample)
    write(os.path.join(sample.synth.layerdb(leaked.chain_id), "cache-id"), "../../../x")
    _classification, decisions = plan(sample.root)
    kept = {d.orphan.path: d.reason_code for d in decisions if d.action == SKIPPED}
    assert kept == {sample.synth.overlay(name): UNKNOWN_OWNER, sample.synth.overlay(leaked.cache_id): UNKNOWN_OWNER}
    assert sample.synth.layerdb(leaked.chain_id) not in {d.orphan.path for d in decisions}  # never an orphan


def test_a_lower_file_of_a_kept_directory_that_cannot_be_read_keeps_every_directory(sample):
    _leaked, name, _link = plant_leftovers(sample)
    write(sample.synth.overlay(sample.app.cache_id, "lower"), "garbage")
    classification, decisions = plan(sample.root)
    assert [r.code for r in classification.blocking] == ["lower"]
    assert {d.orphan.path: d.reason_code for d in decisions if d.orphan.kind == "unreferenced_dir"} == {
        sample.synth.overlay(name): UNKNOWN_OWNER}


@pytest.mark.parametrize("case", ["layer cache-id", "layer cache-id of no directory", "layer parent", "layer diff",
                                  "mount-id", "init-id", "mount parent", "image config", "image config edited",
                                  "container config"])
def test_layer_verify_reports_the_damaged_record_as_metadata(sample, case):
    path, _might_name = damage(sample, case)
    report = verify(Overlay2Store.load(sample.root), content=False)
    assert not report.ok
    assert any(p.kind == "metadata" and p.path in (path, os.path.dirname(path))
               for verdict in report.corrupt for p in verdict.problems)


def test_a_lower_file_longer_than_the_driver_allows_is_a_warning(sample):
    write(sample.synth.overlay(sample.app.cache_id, "lower"), ":".join(["l/" + "A" * 26] * 10000))
    store = Overlay2Store.load(sample.root)
    assert [(f.kind, f.path) for f in store.findings if "at most 128" in f.message] == [
        ("invalid", sample.synth.overlay(sample.app.cache_id, "lower"))]


def test_two_layer_records_naming_one_directory_are_both_damaged_and_keep_every_directory(sample):
    """The engine gives each layer a directory of its own: a cache-id copied from another layer hides which
    directory the record named before (here the tool layer's, which nothing else names)."""
    with open(os.path.join(sample.synth.layerdb(sample.base.chain_id), "cache-id"), encoding="utf-8") as handle:
        write(os.path.join(sample.synth.layerdb(sample.tool.chain_id), "cache-id"), handle.read())
    classification, decisions = plan(sample.root)
    assert sorted(r.path for r in classification.blocking) == sorted(
        sample.synth.layerdb(layer.chain_id) for layer in (sample.base, sample.tool))
    assert {d.orphan.path: d.reason_code for d in decisions} == {sample.synth.overlay(sample.tool.cache_id): UNKNOWN_OWNER}


# -- records changed to other valid values: which directory they named before is unknown -----------------
def mount_file(sample, container, name):
    return sample.synth.path("image/overlay2/layerdb/mounts", sample.containers[container]["id"], name)


def point_mount_at(sample, container, mount_id):
    write(mount_file(sample, container, "mount-id"), mount_id)
    write(mount_file(sample, container, "init-id"), mount_id + "-init")


def set_dead(sample, container):
    path = sample.synth.path("containers", sample.containers[container]["id"], "config.v2.json")
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    config["State"].update(Running=False, Dead=True)
    write(path, json.dumps(config))


def assert_kept_for(sample, decisions, record_path):
    going = {p for d in decisions if d.action == REMOVED for p in d.orphan.as_dict()["paths"]}
    assert not going & in_use(sample)
    assert [(d.reason_code, d.orphan.blocked_by) for d in decisions if d.orphan.kind == "unreferenced_dir"] and all(
        d.reason_code == UNKNOWN_OWNER and record_path in d.orphan.blocked_by
        for d in decisions if d.orphan.kind == "unreferenced_dir")


@pytest.mark.parametrize("target", ["no directory", "the other container's directories"])
def test_a_mount_record_naming_directories_not_its_own_keeps_every_directory(sample, target):
    """The job container's mount (consistent mount-id and init-id) moved to a directory that is not there, or
    to the web container's: its own two directories, which nothing else names, must stay."""
    point_mount_at(sample, "job", "d" * 64 if target == "no directory" else sample.containers["web"]["mount_id"])
    classification, decisions = plan(sample.root)
    record = sample.synth.path("image/overlay2/layerdb/mounts", sample.containers["job"]["id"])
    assert record in [r.path for r in classification.blocking]
    assert_kept_for(sample, decisions, record)
    report = verify(Overlay2Store.load(sample.root), content=False)
    assert [p.path for verdict in report.corrupt for p in verdict.problems].count(record) == 1


def test_a_container_that_is_not_dead_without_its_mount_record_keeps_every_directory(sample):
    record = sample.synth.path("image/overlay2/layerdb/mounts", sample.containers["web"]["id"])
    shutil.rmtree(record)
    classification, decisions = plan(sample.root)
    assert [(r.code, r.path) for r in classification.blocking] == [("mount", record)]
    assert_kept_for(sample, decisions, record)


def test_a_dead_container_whose_directories_are_gone_is_an_interrupted_removal_not_damage(sample):
    """The engine marks a container dead, removes its directories, then its mount record: a crash between
    leaves this, and ``docker rm`` finishes it."""
    set_dead(sample, "job")
    for name in (sample.containers["job"]["mount_id"], sample.containers["job"]["mount_id"] + "-init"):
        shutil.rmtree(sample.synth.overlay(name))
    _leaked, name, _link = plant_leftovers(sample)
    classification, decisions = plan(sample.root)
    assert classification.blocking == []
    assert sample.synth.overlay(name) in {d.orphan.path for d in decisions if d.action == REMOVED}
    report = verify(Overlay2Store.load(sample.root), content=False)  # still not what the engine left complete
    assert [(p.path, p.detail) for verdict in report.corrupt for p in verdict.problems] == [
        (sample.synth.overlay(directory), "the container's overlay2 directory is missing")
        for directory in (sample.containers["job"]["mount_id"], sample.containers["job"]["mount_id"] + "-init")]


def valid_swaps(sample):
    """Every layer and mount record file of the sample with each other value of its kind the store holds, and
    a fresh valid one: (what it describes, the files to write)."""
    root = sample.root
    kinds = {
        "cache-id": (glob.glob(os.path.join(root, "image/overlay2/layerdb/sha256/*/cache-id")), ["f" * 64, "a" * 25]),
        "layer parent": (glob.glob(os.path.join(root, "image/overlay2/layerdb/sha256/*/parent")), ["sha256:" + "e" * 64]),
        "diff": (glob.glob(os.path.join(root, "image/overlay2/layerdb/sha256/*/diff")), ["sha256:" + "e" * 64]),
        "mount parent": (glob.glob(os.path.join(root, "image/overlay2/layerdb/mounts/*/parent")), ["sha256:" + "e" * 64]),
        "mount-id": (glob.glob(os.path.join(root, "image/overlay2/layerdb/mounts/*/mount-id")), ["d" * 64]),
        "link": (glob.glob(os.path.join(root, "overlay2/*/link")), ["Z" * 26]),
        "lower": (glob.glob(os.path.join(root, "overlay2/*/lower")), ["l/" + "Z" * 26]),
    }
    for kind, (paths, fresh) in sorted(kinds.items()):
        values = sorted({read(path) for path in paths}) + fresh
        for path in sorted(paths):
            for value in values:
                if value == read(path):
                    continue
                writes = {path: value}
                if kind == "mount-id":  # the engine checks init-id against mount-id: change both, as it would
                    writes[os.path.join(os.path.dirname(path), "init-id")] = value + "-init"
                yield "%s %s = %s" % (kind, os.path.relpath(path, root), value), writes


def read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def test_a_record_changed_to_another_valid_value_never_frees_what_is_in_use(sample):
    """Unknown is not unowned, for records that still validate: each layer and mount record file, in turn,
    given each other value of its kind (another record's, or a fresh one); nothing in use may be planned."""
    used = in_use(sample)
    freed = []
    swaps = list(valid_swaps(sample))
    for what, writes in swaps:
        before = {path: read(path) for path in writes}
        for path, value in writes.items():
            write(path, value)
        try:
            _classification, decisions = plan(sample.root)
        finally:
            for path, value in before.items():
                write(path, value)
        going = {p for d in decisions if d.action == REMOVED for p in d.orphan.as_dict()["paths"]}
        if going & used:
            freed.append((what, sorted(going & used)))
    assert len(swaps) > 100 and freed == []


def test_verify_reports_every_damaged_record_of_one_mount(sample):
    """A mount whose parent is garbage and whose directories are not there is two damaged records: both shown."""
    point_mount_at(sample, "job", "d" * 64)
    write(mount_file(sample, "job", "parent"), "garbage")
    record = sample.synth.path("image/overlay2/layerdb/mounts", sample.containers["job"]["id"])
    report = verify(Overlay2Store.load(sample.root), content=False)
    details = [p.detail for verdict in report.corrupt for p in verdict.problems if p.path == record]
    assert len(details) == 2 and any("garbage" in d for d in details) and any("does not exist" in d for d in details)


def test_mount_records_that_cannot_be_listed_keep_every_directory_and_are_one_record(sample):
    _leaked, _name, link = plant_leftovers(sample)
    mounts = sample.synth.path("image/overlay2/layerdb/mounts")
    shutil.rmtree(mounts)
    write(mounts, "not a directory")
    classification, decisions = plan(sample.root)
    assert [(r.code, r.path) for r in classification.blocking] == [("store_part", mounts)]
    assert_kept_for(sample, decisions, mounts)
    assert link in {p for d in decisions if d.action == REMOVED for p in d.orphan.as_dict()["paths"]}


def test_a_layer_record_renamed_to_removing_while_an_image_names_it_stays_with_its_directory(sample):
    """The engine renames a layer's record to ``-removing`` only after the last image naming it is gone: the
    tool image still names this one, so the rename was not a removal, and the layer stays."""
    record = sample.synth.layerdb(sample.tool.chain_id)
    os.rename(record, record + "-" + "a" * 64 + "-removing")
    _classification, decisions = plan(sample.root)
    going = {p for d in decisions if d.action == REMOVED for p in d.orphan.as_dict()["paths"]}
    assert decisions == [] and not going & in_use(sample)


def test_a_removal_leftover_of_a_chain_made_again_still_goes_and_the_new_directory_stays(sample):
    """A ``docker rmi`` cut short, then the same image pulled again: the chain has a new record and directory,
    and the old ``-removing`` record (with its old, half-removed directory) is the leftover."""
    record = sample.synth.layerdb(sample.tool.chain_id)
    leftover = record + "-" + "a" * 64 + "-removing"
    shutil.copytree(record, leftover)
    old_dir = sample.synth.next_hex()
    sample.synth.make_overlay_dir(old_dir, None)
    write(os.path.join(leftover, "cache-id"), old_dir)
    _classification, decisions = plan(sample.root)
    assert [(d.action, d.orphan.kind) for d in decisions] == [(REMOVED, "removing")]
    paths = set(decisions[0].orphan.as_dict()["paths"])
    assert {leftover, sample.synth.overlay(old_dir)} <= paths and not paths & in_use(sample)
