"""BuildKit's ownership, by the rule of the reference, on the engines' databases and on written ones."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._formats import bolt as _bolt
from ansible_collections.strata.overlay2.plugins.module_utils._store import buildkit as _buildkit
from ansible_collections.strata.overlay2.plugins.module_utils._formats.bolt import BoltFile
from ansible_collections.strata.overlay2.plugins.module_utils._store.buildkit import ABSENT, READ, UNKNOWN, read_ownership
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import classify
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from tests.support.boltwriter import bolt_bytes, write_buildkit
from tests.support.synthstore import file, write

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))), "fixtures", "bolt")
RUN1, RUN2, GRAPH1, GRAPH2, CACHE, SOURCE, VIEW, GONE = (
    "run1" + "a" * 21, "run2" + "b" * 21, "grp1" + "c" * 21, "grp2" + "d" * 21, "cach" + "e" * 21,
    "srce" + "f" * 21, "view" + "g" * 21, "gone" + "h" * 21)


def ownership_of(root: str):
    with SafeDir.open(root) as opened:
        return read_ownership(opened)


@pytest.mark.parametrize("engine", sorted(os.listdir(FIXTURES)))
def test_after_rmi_the_build_cache_owns_every_chain_and_every_buildkit_directory(engine, tmp_path):
    """What the engines show (reference, step 2): after rmi every chain stays, held only through the cache."""
    with open(os.path.join(FIXTURES, engine, "engine.json"), encoding="utf-8") as handle:
        facts = json.load(handle)
    shutil.copytree(os.path.join(FIXTURES, engine), str(tmp_path / "buildkit"))
    ownership = ownership_of(str(tmp_path))
    assert ownership.state == READ and ownership.records == 7
    assert ownership.chains == set(facts["chains"])
    assert ownership.dirs == {name for name in facts["dirs"] if len(name) == 25}


def test_no_buildkit_directory_means_it_owns_nothing(tmp_path):
    assert ownership_of(str(tmp_path)).state == ABSENT


@pytest.mark.parametrize("missing", ["containerdmeta.db", "metadata_v2.db", "snapshots.db"])
def test_a_database_missing_beside_the_others_makes_ownership_unknown(tmp_path, missing):
    directory = write_buildkit(str(tmp_path), {RUN1: [RUN1]}, {RUN1: {}}, {RUN1: {"committed": GRAPH1}})
    os.unlink(os.path.join(directory, missing))
    ownership = ownership_of(str(tmp_path))
    assert ownership.state == UNKNOWN and ownership.culprit == os.path.join(directory, missing)


def test_a_commit_while_the_databases_are_read_has_them_read_again_and_the_later_state_counts(
        tmp_path, monkeypatch):
    directory = write_buildkit(str(tmp_path), {RUN1: [RUN1]}, {RUN1: {}}, {RUN1: {"committed": GRAPH1}})
    resolve, reads = _buildkit._resolve, []

    def buildkit_commits_during_the_first_read(path, databases):
        reads.append(path)
        if len(reads) == 1:  # in place, as bbolt writes: the mapping being read shows it
            with open(os.path.join(directory, "snapshots.db"), "r+b") as handle:
                handle.write(bolt_bytes({RUN1.encode(): {b"committed": GRAPH2.encode()}}, txid=4))
        return resolve(path, databases)

    monkeypatch.setattr(_buildkit, "_resolve", buildkit_commits_during_the_first_read)
    ownership = ownership_of(str(tmp_path))
    assert len(reads) == 2 and ownership.state == READ and ownership.dirs == {GRAPH2}


def test_databases_committed_to_during_every_read_are_unknown_because_buildkit_is_busy(tmp_path, monkeypatch):
    write_buildkit(str(tmp_path), {RUN1: [RUN1]}, {RUN1: {}}, {RUN1: {"committed": GRAPH1}})
    monkeypatch.setattr(_bolt, "RETRY_PAUSE", 0)
    monkeypatch.setattr(BoltFile, "changed_since_open", lambda self: True)
    monkeypatch.setattr(BoltFile, "steady_copy", lambda self: None)  # a commit during every copy, too
    ownership = ownership_of(str(tmp_path))
    assert ownership.state == UNKNOWN and not ownership.dirs
    assert ownership.reason.endswith("buildkit changed while it was read, 5 times in a row (BuildKit is busy "
                                     "writing it); read it again later")


def test_leases_and_live_records_are_roots_resolved_through_snapshots(tmp_path):
    chain = "sha256:" + "1" * 64
    write_buildkit(str(tmp_path),
                   leases={RUN2: [RUN2], CACHE: [CACHE], "img" + "0" * 22: [chain]},
                   records={RUN2: {"cache.parent": RUN1}, CACHE: {"cache.recordType": "exec.cachemount"},
                            SOURCE: {}, VIEW: {"cache.equalMutable": SOURCE},
                            GONE: {"cache.deleted": True}},
                   snapshots={RUN1: {"committed": GRAPH1, "chainid": "sha256:" + "2" * 64},
                              GRAPH1: {"iscommitted": "", "parent": chain},
                              RUN2: {"committed": GRAPH2}, GRAPH2: {"iscommitted": "", "parent": RUN1},
                              CACHE: {"parent": ""}, "sha256:" + "9" * 64: {}})
    ownership = ownership_of(str(tmp_path))
    assert ownership.state == READ and ownership.records == 3  # RUN2, CACHE, SOURCE; not the view, not the deleted
    assert ownership.dirs == {GRAPH2, GRAPH1, CACHE, SOURCE}  # SOURCE has no bucket yet: its own directory
    assert ownership.chains == {chain, "sha256:" + "2" * 64}  # not the empty sha256: bucket of a look-up


@pytest.mark.parametrize("snapshots, message", [
    ({RUN1: {"committed": "../../etc"}}, "not a directory name"),
    ({RUN1: {"chainid": "sha256:nothex"}}, "not sha256"),
    ({RUN1: {"committed": GRAPH1}, GRAPH1: {"parent": RUN1}}, "loop"),
    ({RUN1: {"parent": "/etc/passwd"}}, "not an id this reader knows"),
])
def test_a_snapshot_record_that_does_not_validate_makes_ownership_unknown(tmp_path, snapshots, message):
    write_buildkit(str(tmp_path), {RUN1: [RUN1]}, {RUN1: {}}, snapshots)
    ownership = ownership_of(str(tmp_path))
    assert ownership.state == UNKNOWN and message in ownership.reason


# -- what the classifier makes of it ---------------------------------------------------------------
@pytest.fixture
def build_host(sample):
    """Two RUN layers BuildKit exported on top of the tool image, whose image was then removed."""
    synth = sample.synth
    run1 = synth.add_layer([file("run1", "1")], parent=sample.tool, cache_id=GRAPH1)
    run2 = synth.add_layer([file("run2", "2")], parent=run1, cache_id=GRAPH2)
    synth.make_overlay_dir(CACHE, None)
    write(synth.overlay(CACHE, "diff", "cached"), "kept by the cache mount")
    synth.make_overlay_dir(GONE, None)  # what a prune cut short leaks: no lease, no record, no bucket
    write_buildkit(synth.root, {RUN2: [RUN2], CACHE: [CACHE]}, {RUN2: {}, CACHE: {}},
                   {RUN1: {"committed": GRAPH1, "chainid": run1.chain_id}, GRAPH1: {"parent": sample.tool.chain_id},
                    RUN2: {"committed": GRAPH2, "chainid": run2.chain_id}, GRAPH2: {"parent": RUN1},
                    CACHE: {"parent": ""}})
    return sample, run1, run2


def test_what_the_build_cache_holds_is_not_an_orphan_and_a_leaked_buildkit_directory_is(build_host):
    sample, run1, run2 = build_host
    classification = classify(Overlay2Store.load(sample.root))
    assert [(o.kind, o.path) for o in classification.orphans] == [
        ("unreferenced_dir", sample.synth.overlay(GONE))]
    assert classification.buildkit.chains == {run1.chain_id, run2.chain_id}
    assert classification.buildkit.dirs == {GRAPH1, GRAPH2, CACHE} and classification.buildkit.usage.bytes > 0


def test_without_the_lease_the_chains_are_leaks_again(build_host):
    sample, run1, run2 = build_host
    write_buildkit(sample.root, {}, {}, {})
    kinds = {(o.kind, o.chain_id) for o in classify(Overlay2Store.load(sample.root)).orphans}
    assert {("unreferenced_chain", run1.chain_id), ("unreferenced_chain", run2.chain_id)} <= kinds


def test_an_unreadable_database_keeps_every_unreferenced_chain_and_directory(build_host):
    sample, _run1, _run2 = build_host
    write(sample.synth.path("buildkit", "metadata_v2.db"), "garbage")
    classification = classify(Overlay2Store.load(sample.root))
    assert classification.buildkit.state == UNKNOWN
    blocked_by = {tuple(o.blocked_by) for o in classification.orphans}
    assert classification.orphans and blocked_by == {(sample.synth.path("buildkit", "metadata_v2.db"),)}


# -- BuildKit's first record format (engines 18.09 to 19.03) ---------------------------------------------
def write_first_format(data_root, records, snapshots=None):
    """``buildkit/`` as engines 18.09 to 19.03 leave it: metadata.db (``_main`` records), cache.db and
    snapshots.db, and no containerdmeta.db or metadata_v2.db (what 20.10 migrates them to)."""
    from tests.support.boltwriter import write_bolt  # pylint: disable=import-outside-toplevel
    directory = os.path.join(data_root, "buildkit")
    os.makedirs(directory, exist_ok=True)
    write_bolt(os.path.join(directory, "metadata.db"), {b"_main": {
        record.encode(): {key.encode(): json.dumps({"value": value}).encode() for key, value in fields.items()}
        for record, fields in records.items()}, b"_index": {}})
    write_bolt(os.path.join(directory, "cache.db"), {b"_result": {}, b"_links": {}, b"_byresult": {}})
    if snapshots is not None:
        write_bolt(os.path.join(directory, "snapshots.db"),
                   {snapshot.encode(): {key.encode(): value.encode() for key, value in keys.items()}
                    for snapshot, keys in snapshots.items()})
    return directory


def test_first_format_databases_without_records_own_nothing_and_its_leaks_are_orphans(sample):
    write_first_format(sample.root, {}, {})
    ownership = ownership_of(sample.root)
    assert ownership.state == READ and not ownership.dirs and not ownership.chains
    os.makedirs(sample.synth.overlay(GRAPH1, "diff"))
    found = classify(Overlay2Store.load(sample.root))
    assert [o.kind for o in found.orphans] == ["unreferenced_dir"] and found.blocking == []


def test_first_format_records_are_roots_each_its_own_snapshot_deleted_and_views_included(tmp_path):
    chain = "sha256:" + "3" * 64
    write_first_format(str(tmp_path), {RUN1: {"cache.parent": ""}, VIEW: {"cache.equalMutable": SOURCE},
                                       GONE: {"cache.deleted": True}},
                       {RUN1: {"committed": GRAPH1, "chainid": chain}, GRAPH1: {"iscommitted": "", "parent": ""}})
    ownership = ownership_of(str(tmp_path))
    assert ownership.state == READ and ownership.records == 3
    assert ownership.dirs == {GRAPH1, VIEW, GONE} and ownership.chains == {chain}


@pytest.mark.parametrize("records, snapshots, message", [
    ({"../../etc": {}}, {}, "not an id this reader knows"),
    ({RUN1: {}}, None, "snapshots.db: missing"),
])
def test_a_first_format_store_that_cannot_be_read_keeps_what_buildkit_might_own(tmp_path, records, snapshots, message):
    write_first_format(str(tmp_path), records, snapshots)
    ownership = ownership_of(str(tmp_path))
    assert ownership.state == UNKNOWN and message in ownership.reason
