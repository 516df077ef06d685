"""The containerd image store source: engine-made stores of both layouts, and synthetic ones of the same shape.

The engine-made stores (``tests/support/containerd_fixtures.py``) keep the databases, the JSON blobs, the snapshot
directories (empty) and the container configs of a real dockerd 28.5 / containerd 2.1, run_alongside what the engine
answered. The synthetic stores (``tests/support/ctdstore.py``) have every file, so verification and pruning can be
pinned on them; that their shape is the engine's is the first test here.
"""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import json
import os
import tarfile
import time

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._store import containerd as _containerd
from ansible_collections.strata.overlay2.plugins.module_utils._util import parallel as _parallel
from ansible_collections.strata.overlay2.plugins.module_utils._formats.bolt import BoltFile
from ansible_collections.strata.overlay2.plugins.module_utils._store.containerd import (
    BlobRecords,
    ContainerdReader,
    ContainerdStore,
    SnapshotUsage,
    familiar,
    go_time,
    varint,
)
from ansible_collections.strata.overlay2.plugins.module_utils._facts.containerd import gather
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.containerd import classify
from ansible_collections.strata.overlay2.plugins.module_utils._verify.containerd import verify
from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import chain_ids
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import StoreError
from tests.support import ctdstore
from tests.support.ctdstore import CONTENT, SNAPSHOTTER, SynthStore

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "containerd")
LAYOUTS = ["managed", "system"]


def unpack_fixture(layout, tmp_path):
    with tarfile.open(os.path.join(FIXTURES, layout + ".tar.gz")) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(str(tmp_path), filter="data")
        else:  # pragma: no cover  (Pythons without extraction filters)
            archive.extractall(str(tmp_path))
    with open(os.path.join(str(tmp_path), "engine.json"), encoding="utf-8") as handle:
        answers = json.load(handle)
    data_root = os.path.join(str(tmp_path), "data-root")
    ctd_root = os.path.join(str(tmp_path), "containerd-root")
    if layout == "managed":  # dockerd's own containerd lives below the data-root
        os.makedirs(os.path.join(data_root, "containerd"))
        os.rename(ctd_root, os.path.join(data_root, "containerd", "daemon"))
        return load_store(data_root), answers
    return load_store(data_root, containerd_root=ctd_root), answers


@pytest.fixture(params=LAYOUTS)
def engine_store(request, tmp_path):
    return unpack_fixture(request.param, tmp_path)


# -- encodings ---------------------------------------------------------------------------------------------
def test_the_encodings_are_gos():
    assert varint(bytes.fromhex("bea98b01")) == 1141343 and varint(b"\x08") == 4
    stamp = datetime.datetime(2026, 11, 29, 11, 39, 33, 718484, tzinfo=datetime.timezone.utc).timestamp()
    assert go_time(bytes.fromhex("010000000ee29e05f52ad333c5ffff")) == pytest.approx(stamp, abs=1e-6)
    assert familiar("docker.io/library/base:1") == "base:1" and familiar("docker.io/org/app:1") == "org/app:1"
    assert familiar("registry.example:5000/a/b:1") == "registry.example:5000/a/b:1"


# -- the engine's own stores -------------------------------------------------------------------------------
def test_engine_made_stores_give_what_the_engine_answered(engine_store):
    store, answers = engine_store
    facts = gather(store, container_sizes=True)
    assert facts["store"] == "containerd" and facts["warnings"] == []
    listed = {image["Id"]: image for image in answers["images_json"]}
    mine = {image["id"]: image for image in facts["images"]}
    assert sorted(mine) == sorted(listed)
    for inspected in answers["image_inspect"]:
        entry = mine[inspected["Id"]]
        assert entry["diff_ids"] == inspected["RootFS"]["Layers"]
        assert entry["chain_ids"] == chain_ids(inspected["RootFS"]["Layers"])
        assert entry["tags"] == sorted(inspected["RepoTags"]) and entry["digests"] == sorted(inspected["RepoDigests"])
        assert (entry["parent"] or "") == inspected["Parent"]
        assert (entry["size"], entry["shared_size"]) == (listed[entry["id"]]["Size"], listed[entry["id"]]["SharedSize"])
    active = sum(SnapshotUsage(store.parts)(s) for s in store.parts.snapshots.values() if s.kind == "active")
    assert facts["summary"]["layers_size"] - active == answers["system_df"]["LayersSize"] - answers["active_usage"]
    assert facts["summary"]["images"] == answers["system_df"]["Images"]
    assert [c["id"] for c in facts["containers"]] == sorted(c["Id"] for c in answers["containers"])
    assert facts["orphans"]["entries"] == [] and facts["orphans"]["buildkit_state"] == "read"


def test_the_classic_builders_init_snapshots_are_in_the_image_stack_but_in_no_layer(engine_store):
    store, _answers = engine_store
    facts = gather(store)
    classic = next(image for image in facts["images"] if "strata/classic:1" in image["tags"])
    assert len(classic["lower_dirs"]) + 1 > len(classic["chain_ids"])  # -init snapshots under each RUN layer
    inits = [s for s in store.parts.stack(classic["top_chain_id"]) if s.key.endswith("-init")]
    assert inits and not any(s.key in store.layers for s in inits)


def test_without_its_layer_blobs_a_store_verifies_by_metadata_and_says_so(engine_store):
    store, _answers = engine_store
    report = verify(store).as_dict()
    assert report["ok"] and report["corrupt"] == []
    assert report["checked_layers"] == 0 and report["checked_blobs"] > 0
    assert {item["code"] for item in report["unverifiable"]} == {"blob_missing"}
    assert len(report["unverifiable"]) == len(store.layers)


def test_the_synthetic_store_has_the_engines_shape(tmp_path):
    """Every kind of bucket the synthetic writer makes holds the keys the engine's hold."""
    engine_root = str(tmp_path / "engine")
    os.makedirs(engine_root)
    engine, _answers = unpack_fixture("managed", engine_root)
    synthetic = small_store(str(tmp_path / "synthetic"))

    def shapes(root):
        found = {}
        with open(os.path.join(root, "io.containerd.metadata.v1.bolt", "meta.db"), "rb") as handle:
            meta = BoltFile(handle.read())
        ns = meta.root().bucket(b"v1", b"moby")
        kinds = {"image": ns.bucket(b"images"), "blob": ns.bucket(b"content", b"blob"),
                 "snapshot": ns.bucket(b"snapshots", b"overlayfs")}
        for kind, bucket in kinds.items():
            keys = set()
            for _name, record in bucket.items():
                keys |= {key for key, _value in record.items()} - {b"labels", b"children"}
            found[kind] = keys
        target = next(record for _name, record in kinds["image"].items()).bucket(b"target")
        found["target"] = {key for key, _value in target.items()}
        with open(os.path.join(root, SNAPSHOTTER, "metadata.db"), "rb") as handle:
            backend = BoltFile(handle.read())
        found["backend"] = set()
        for _name, record in backend.root().bucket(b"v1", b"snapshots").items():
            found["backend"] |= {key for key, _value in record.items()} - {b"labels"}
        return found
    assert shapes(synthetic.ctd_root) == shapes(engine.parts.root)


# -- synthetic stores: verification ------------------------------------------------------------------------
BASE = {"bin": None, "bin/sh": b"#!shell\n" * 64, "etc": None, "etc/a.conf": b"a=1\n", "etc/old": b"old\n"}
TOP = {"etc": None, "etc/.wh.old": None, "etc/b.conf": b"b=2\n", "opt": None, "opt/.wh..wh..opq": None,
       "opt/new": b"new\n"}


def small_store(root, compress=True):
    store = SynthStore(root)
    base = store.image("docker.io/library/base:1", [BASE], compress=compress)
    app = store.image("docker.io/library/app:1", [TOP], parent=base, compress=compress)
    store.container(app, "c1")
    store.write()
    return store


def snapshot_fs(store, chain_id):
    return os.path.join(store.parts.root, SNAPSHOTTER, "snapshots", store.parts.snapshots[chain_id].id, "fs")


def test_a_clean_store_verifies_with_whiteouts_and_opaque_directories(tmp_path):
    small_store(str(tmp_path))
    report = verify(load_store(str(tmp_path))).as_dict()
    assert report["ok"] and report["unverifiable"] == [] and report["checked_layers"] == 2


@pytest.mark.parametrize("damage, kind, name", [
    ("edit", "file_modified", "etc/b.conf"),
    ("chmod", "file_modified", "etc/b.conf"),
    ("remove", "file_missing", "etc/b.conf"),
    ("add", "file_added", "etc/planted"),
    ("whiteout", "file_missing", "etc/.wh.old"),
    ("opaque", "file_missing", "opt/.wh..wh..opq"),
])
def test_each_change_to_a_snapshot_is_named_with_its_layer(tmp_path, damage, kind, name):
    small_store(str(tmp_path))
    store = load_store(str(tmp_path))
    app = next(image for image in store.images.values() if "app:1" in image.tags)
    top = app.chain_ids[-1]
    fs = snapshot_fs(store, top)
    path = os.path.join(fs, name)
    if damage == "edit":
        with open(path, "r+b") as handle:
            handle.write(b"B")
    elif damage == "chmod":
        os.chmod(path, 0o600)
    elif damage == "remove":
        os.unlink(path)
    elif damage == "add":
        with open(path, "wb") as handle:
            handle.write(b"x")
    elif damage == "whiteout":
        os.unlink(os.path.join(fs, "etc", "old"))
    else:
        os.removexattr(os.path.join(fs, "opt"), "trusted.overlay.opaque")
    report = verify(load_store(str(tmp_path))).as_dict()
    assert [verdict["chain_id"] for verdict in report["corrupt"]] == [top]
    assert app.id in report["corrupt"][0]["images"]
    assert [(p["kind"], p["path"]) for p in report["corrupt"][0]["problems"]] == [(kind, path)]


def test_a_changed_layer_blob_is_a_digest_mismatch_of_that_layer_only(tmp_path):
    small_store(str(tmp_path))
    store = load_store(str(tmp_path))
    base = next(image for image in store.images.values() if "base:1" in image.tags)
    layer = store.layers[base.chain_ids[0]]
    path = store.parts.blob_path(layer.blob)
    raw = gzip.decompress(open(path, "rb").read())
    with open(path, "wb") as handle:
        handle.write(gzip.compress(raw.replace(b"a=1", b"a=2"), mtime=0))
    report = verify(load_store(str(tmp_path))).as_dict()
    assert [verdict["chain_id"] for verdict in report["corrupt"]] == [layer.chain_id]
    kinds = [(p["kind"], p["path"]) for p in report["corrupt"][0]["problems"]]
    assert ("digest_mismatch", path) in kinds
    assert ("file_modified", os.path.join(snapshot_fs(store, layer.chain_id), "etc/a.conf")) in kinds


def rewrite_blob(synthetic, digest, change):
    path = os.path.join(synthetic.ctd_root, CONTENT, "blobs", "sha256", digest[7:])
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    change(document)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    return path


@pytest.mark.parametrize("layers", [5, None, "sha256:" + "a" * 64, {"digest": "sha256:" + "a" * 64}])
def test_a_manifest_whose_layers_are_not_a_list_is_invalid_and_its_image_is_kept_whole(tmp_path, layers):
    synthetic = small_store(str(tmp_path))
    base, app = synthetic.images
    path = rewrite_blob(synthetic, app.target, lambda manifest: manifest.update(layers=layers))
    store = load_store(str(tmp_path))
    assert [(f.kind, f.path) for f in store.findings] == [("invalid", path)]
    assert list(store.images) == [base.target]  # the other image is read all the same
    assert app.target in store.parts.unreadable_images  # what it names is kept, unknown
    assert classify(store).orphans == []


@pytest.mark.parametrize("diff_ids", [None, "", {}, ["sha256:" + "a" * 64, 5]])
def test_a_config_whose_diff_ids_are_not_a_list_of_digests_is_damaged_and_blocks(tmp_path, diff_ids):
    synthetic = small_store(str(tmp_path))
    _base, app = synthetic.images
    path = rewrite_blob(synthetic, app.config_digest, lambda config: config["rootfs"].update(diff_ids=diff_ids))
    store = load_store(str(tmp_path))
    assert [(f.kind, f.path) for f in store.findings] == [("invalid", path)]
    assert [(record.code, record.path) for record in store.damaged] == [("image_config", path)]


def test_zstd_and_missing_blobs_are_unverifiable_never_corrupt_or_verified(tmp_path):
    small_store(str(tmp_path))
    store = load_store(str(tmp_path))
    base_layer, top_layer = (store.layers[c] for c in next(
        image for image in store.images.values() if "app:1" in image.tags).chain_ids)
    os.unlink(store.parts.blob_path(base_layer.blob))
    zstd = b"\x28\xb5\x2f\xfd" + b"\0" * 64
    top_path = store.parts.blob_path(top_layer.blob)
    with open(top_path, "wb") as handle:
        handle.write(zstd)
    report = verify(load_store(str(tmp_path))).as_dict()
    codes = {item["chain_id"]: item["code"] for item in report["unverifiable"]}
    assert codes == {base_layer.chain_id: "blob_missing", top_layer.chain_id: "compression_unsupported"}
    assert report["checked_layers"] == 0 and report["corrupt"] == [] and report["ok"]


def test_an_uncompressed_layer_verifies(tmp_path):
    small_store(str(tmp_path), compress=False)
    report = verify(load_store(str(tmp_path))).as_dict()
    assert report["ok"] and report["unverifiable"] == [] and report["checked_layers"] == 2


# -- synthetic stores: orphans -----------------------------------------------------------------------------
def plant(path, old=True):
    """A directory with one file, written long ago (``old``) or just now."""
    os.makedirs(path)
    with open(os.path.join(path, "data"), "wb") as handle:
        handle.write(b"x" * 5000)
    if old:
        for name in (os.path.join(path, "data"), path):
            os.utime(name, (1000, 1000))
    return path


def stray_blob(ctd, old=True):
    """A blob file that no record names."""
    stray = os.path.join(ctd, CONTENT, "blobs", "sha256", "cd" * 32)
    with open(stray, "wb") as handle:
        handle.write(b"no record")
    if old:
        os.utime(stray, (1000, 1000))
    return stray


def test_files_no_database_knows_are_orphans_and_records_are_left_to_containerd(tmp_path):
    synthetic = small_store(str(tmp_path))
    ctd = synthetic.ctd_root
    planted = [plant(os.path.join(ctd, SNAPSHOTTER, "snapshots", "9999")),
               plant(os.path.join(ctd, SNAPSHOTTER, "snapshots", "new-42")),
               plant(os.path.join(ctd, CONTENT, "ingest", "ab" * 32))]
    stray = stray_blob(ctd)
    facts = classify(load_store(str(tmp_path))).facts()
    kinds = {entry["path"]: (entry["kind"], entry["command"]) for entry in facts["entries"]}
    assert kinds == {planted[0]: ("unknown_snapshot_dir", None), planted[1]: ("unknown_snapshot_dir", None),
                     planted[2]: ("stale_ingest", None),
                     stray: ("unrecorded_blob_file", kinds[stray][1])}
    assert "garbage collection" in kinds[stray][1]
    assert facts["bytes"] >= 3 * 5000


def test_an_image_removed_from_the_database_leaves_records_for_containerd(tmp_path):
    """Images whose record is gone: their blobs and snapshots are records nothing references."""
    synthetic = SynthStore(str(tmp_path))
    synthetic.image("docker.io/library/base:1", [BASE])
    gone = synthetic.image("docker.io/library/gone:1", [TOP])
    synthetic.write()
    meta = os.path.join(synthetic.ctd_root, "io.containerd.metadata.v1.bolt", "meta.db")
    tree_without = rewrite_without_image(synthetic, "docker.io/library/gone:1")
    ctdstore.write_bolt(meta, tree_without)
    facts = classify(load_store(str(tmp_path))).facts()
    by_kind = {}
    for entry in facts["entries"]:
        by_kind.setdefault(entry["kind"], []).append(entry)
    assert len(by_kind["unreferenced_snapshot"]) == 1 and len(by_kind["unreferenced_blob"]) == 3  # manifest, config, layer
    assert all(entry["command"].startswith("ctr --namespace moby ") for entry in facts["entries"])
    assert gone.target in {entry["path"].replace(synthetic.ctd_root + "/" + CONTENT + "/blobs/sha256/", "sha256:")
                           for entry in by_kind["unreferenced_blob"]}


def rewrite_without_image(synthetic, name):
    """The synthetic store's meta.db tree, written again without one image record."""
    images = [image for image in synthetic.images if name not in image.names]
    synthetic.images = images
    records = {}
    for image in images:
        for image_name in image.names:
            records[image_name.encode()] = {
                b"createdat": ctdstore.go_time(ctdstore.EPOCH), b"updatedat": ctdstore.go_time(ctdstore.EPOCH),
                b"target": {b"digest": image.target.encode(), b"mediatype": ctdstore.MANIFEST_TYPE.encode(),
                            b"size": ctdstore.varint(len(synthetic.blobs[image.target][0]))}}
    return {b"v1": {b"version": ctdstore.varint(4), b"moby": {
        b"images": records,
        b"content": {b"blob": {d.encode(): synthetic.content_record(data, labels)
                               for d, (data, labels) in synthetic.blobs.items()}},
        b"snapshots": {b"overlayfs": {key.encode(): synthetic.snapshot_record(key) for key in synthetic.snapshots}},
    }}}


# -- meta.db's content records read apart ------------------------------------------------------------------
def store_with_notes_everywhere(root):
    """A small store with findings in meta.db's images and content records and in the snapshotter's database,
    so the order in which they are reported shows where each part's findings went."""
    synthetic = small_store(root)
    tree = rewrite_without_image(synthetic, "none")
    ns = tree[b"v1"][b"moby"]
    ns[b"images"][b"docker.io/library/flat:1"] = b"not a bucket"
    ns[b"images"][b"docker.io/library/aimless:1"] = {b"createdat": ctdstore.go_time(ctdstore.EPOCH)}
    ns[b"content"][b"blob"][b"sha256:not-a-digest"] = {b"size": ctdstore.varint(1)}
    ns[b"content"][b"blob"][("sha256:" + "0" * 64).encode()] = {b"size": b"\xff"}  # a varint cut short
    ctdstore.write_bolt(os.path.join(synthetic.ctd_root, "io.containerd.metadata.v1.bolt", "meta.db"), tree)
    backend = {synthetic.backend_key(key).encode(): synthetic.backend_record(key) for key in synthetic.snapshots}
    backend[b"moby/9999/idless"] = {b"kind": b"\x03"}
    ctdstore.write_bolt(os.path.join(synthetic.ctd_root, SNAPSHOTTER, "metadata.db"),
                        {b"v1": {b"snapshots": backend}})
    return synthetic


def everything_said(store):
    return ([finding.as_dict() for finding in store.findings], [record.code for record in store.damaged],
            json.dumps(gather(store), sort_keys=True))


def blobs_apart(monkeypatch):
    """Loads from here on read meta.db's content records in a second process; ``forks`` counts the reads."""
    monkeypatch.setattr(_parallel, "available_cpus", lambda: 2)
    monkeypatch.setattr(_containerd, "SECOND_PROCESS_BYTES", 0)
    forks = []
    run_alongside = _containerd.run_alongside

    def counting_alongside(main, other, in_second_process):
        forks.append(in_second_process)
        return run_alongside(main, other, in_second_process)

    monkeypatch.setattr(_containerd, "run_alongside", counting_alongside)
    return forks


def test_content_records_read_apart_are_reported_where_one_pass_reports_them(tmp_path, monkeypatch):
    store_with_notes_everywhere(str(tmp_path))
    one_pass = load_store(str(tmp_path))
    assert one_pass.parts.blobs and "sha256:not-a-digest" in one_pass.parts.records_any_namespace
    said = [(os.path.basename(finding.path.split(":")[0]), finding.message[:12]) for finding in one_pass.findings]
    assert said == [("meta.db", "has no targe"), ("meta.db", "is not a buc"),  # images, content records, then
                    ("meta.db", "blob sha256:"), ("meta.db", "content dige"),  # the snapshotter's
                    ("metadata.db", "not a varint")]
    forks = blobs_apart(monkeypatch)
    apart = load_store(str(tmp_path))
    assert forks == [True]
    assert everything_said(apart) == everything_said(one_pass)
    assert apart.parts.blobs == one_pass.parts.blobs
    assert apart.parts.records_any_namespace == one_pass.parts.records_any_namespace


@pytest.mark.parametrize("read_apart", ["from_another_state", "not_at_all"])
def test_content_records_read_from_another_state_of_meta_db_are_not_mixed_in(tmp_path, monkeypatch, read_apart):
    """A commit between the two reads (or a read that failed) and meta.db is read again here, all of it in the
    later state: nothing the child found is taken, not even its findings, and nothing of the earlier state."""
    synthetic = store_with_notes_everywhere(str(tmp_path))
    blobs_apart(monkeypatch)
    read_content_records_alone = ContainerdReader.read_content_records_alone
    meta_reads = []
    load_meta = ContainerdReader.load_meta

    def then_an_image_is_removed(reader):
        meta_reads.append(reader.content_records_alongside)
        load_meta(reader)
        if len(meta_reads) == 1:
            tree = rewrite_without_image(synthetic, "docker.io/library/app:1")
            ctdstore.write_bolt(os.path.join(synthetic.ctd_root, "io.containerd.metadata.v1.bolt", "meta.db"), tree)

    def elsewhere_and_earlier(reader):
        found = read_content_records_alone(reader)
        reader.store.note("invalid", "/from/the/child", "a finding of the other state")
        state = None if read_apart == "not_at_all" else dataclasses.replace(found.state, txid=found.state.txid - 1)
        bogus = _containerd.Blob("sha256:" + "e" * 64, 1)
        return BlobRecords(state, {bogus.digest: bogus}, {bogus.digest})

    monkeypatch.setattr(ContainerdReader, "read_content_records_alone", elsewhere_and_earlier)
    monkeypatch.setattr(ContainerdReader, "load_meta", then_an_image_is_removed)
    again = load_store(str(tmp_path))
    assert meta_reads == [True, False]
    monkeypatch.undo()
    later = load_store(str(tmp_path))
    assert "docker.io/library/app:1" not in later.parts.image_records
    assert everything_said(again) == everything_said(later)
    assert "sha256:" + "e" * 64 not in again.parts.records_any_namespace


def test_image_blobs_read_ahead_are_quiet_and_only_those_asked_for_are_kept(tmp_path, monkeypatch):
    """While the child reads the content records, this process parses the images' blobs ahead: a broken or
    missing one is still reported once, where one pass reports it, and nothing read ahead is kept unasked."""
    synthetic = small_store(str(tmp_path))
    base, app = synthetic.images
    blobs = os.path.join(synthetic.ctd_root, CONTENT, "blobs", "sha256")
    with open(os.path.join(blobs, app.config_digest[7:]), "wb") as handle:
        handle.write(b"{not json")
    os.unlink(os.path.join(blobs, base.target[7:]))
    one_pass = load_store(str(tmp_path))
    assert sorted(finding.kind for finding in one_pass.findings) == ["invalid", "missing", "missing"]  # + the image
    forks = blobs_apart(monkeypatch)
    asked = []
    parse_blob = ContainerdReader.parse_blob
    monkeypatch.setattr(ContainerdReader, "parse_blob", lambda reader, digest: asked.append(digest) or
                        parse_blob(reader, digest))
    apart = load_store(str(tmp_path))
    assert forks == [True] and everything_said(apart) == everything_said(one_pass)
    assert apart.parts.blob_json.keys() == one_pass.parts.blob_json.keys()
    assert sorted(asked) == sorted([app.target, app.config_digest, base.target,  # ahead: each once; then again
                                    app.config_digest, base.target])  # those that failed, to say why


def test_an_unreadable_meta_db_says_so_once_when_its_content_records_are_read_apart(tmp_path, monkeypatch):
    synthetic = small_store(str(tmp_path))
    with open(os.path.join(synthetic.ctd_root, "io.containerd.metadata.v1.bolt", "meta.db"), "r+b") as handle:
        handle.truncate(4096)
    one_pass = load_store(str(tmp_path))
    assert [record.code for record in one_pass.damaged] == ["containerd_meta"]
    forks = blobs_apart(monkeypatch)
    apart = load_store(str(tmp_path))
    assert forks == [True] and everything_said(apart) == everything_said(one_pass)
    assert not apart.parts.blobs and not apart.parts.records_any_namespace


# -- hostile stores ----------------------------------------------------------------------------------------
def test_an_unreadable_meta_db_is_reported_and_blocks_every_record_orphan(tmp_path):
    synthetic = small_store(str(tmp_path))
    meta = os.path.join(synthetic.ctd_root, "io.containerd.metadata.v1.bolt", "meta.db")
    with open(meta, "r+b") as handle:
        handle.truncate(4096)
    plant(os.path.join(synthetic.ctd_root, SNAPSHOTTER, "snapshots", "9999"))
    store = load_store(str(tmp_path), "containerd")
    facts = gather(store)
    assert any("meta.db" in warning["path"] for warning in facts["warnings"])
    entries = facts["orphans"]["entries"]
    assert all(entry["kind"] in ("unknown_snapshot_dir", "stale_ingest") for entry in entries)
    assert facts["orphans"]["blocking"]


def test_an_unreadable_snapshotter_db_keeps_every_snapshot_directory(tmp_path):
    synthetic = small_store(str(tmp_path))
    with open(os.path.join(synthetic.ctd_root, SNAPSHOTTER, "metadata.db"), "wb") as handle:
        handle.write(b"garbage" * 1000)
    facts = gather(load_store(str(tmp_path)))
    dirs = [entry for entry in facts["orphans"]["entries"] if entry["kind"] == "unknown_snapshot_dir"]
    assert dirs and all(entry["blocked_by"] for entry in dirs)


@pytest.mark.parametrize("new_id", ["duplicate", "unused"])
def test_a_snapshot_record_whose_id_changed_keeps_every_snapshot_directory(tmp_path, new_id):
    """A flipped id would leave the record's real directory unnamed: the records no longer match the
    directories (two records name one, or one names a directory that is not there), so none may go."""
    synthetic = small_store(str(tmp_path))
    keys = sorted(synthetic.snapshots, key=lambda key: int(str(synthetic.snapshots[key]["id"])))
    changed, other = keys[0], keys[1]
    real_dir = str(synthetic.snapshots[changed]["id"])
    synthetic.snapshots[changed]["id"] = synthetic.snapshots[other]["id"] if new_id == "duplicate" else "77"
    backend = {b"v1": {b"snapshots": {synthetic.backend_key(key).encode(): synthetic.backend_record(key)
                                      for key in synthetic.snapshots}}}
    ctdstore.write_bolt(os.path.join(synthetic.ctd_root, SNAPSHOTTER, "metadata.db"), backend)
    facts = gather(load_store(str(tmp_path)))
    dirs = {entry["path"].rsplit("/", 1)[1]: entry for entry in facts["orphans"]["entries"]
            if entry["kind"] == "unknown_snapshot_dir"}
    assert list(dirs) == [real_dir] and dirs[real_dir]["blocked_by"]
    assert any("do not match its directories" in warning["message"] for warning in facts["warnings"])


def test_a_symlinked_blob_or_snapshot_is_never_followed(tmp_path):
    synthetic = small_store(str(tmp_path))
    store = load_store(str(tmp_path))
    base = next(image for image in store.images.values() if "base:1" in image.tags)
    layer = store.layers[base.chain_ids[0]]
    outside = tmp_path / "outside"
    outside.mkdir()
    blob = store.parts.blob_path(layer.blob)
    os.rename(blob, str(outside / "blob"))
    os.symlink(str(outside / "blob"), blob)
    fs = snapshot_fs(store, layer.chain_id)
    os.rename(os.path.dirname(fs), str(outside / "snap"))
    os.symlink(str(outside / "snap"), os.path.dirname(fs))
    report = verify(load_store(str(tmp_path))).as_dict()
    problems = [p for verdict in report["corrupt"] for p in verdict["problems"]]
    assert problems and all(p["kind"] == "metadata" for p in problems)
    assert synthetic  # the store itself is unchanged


def test_a_data_root_with_containers_on_the_snapshotter_but_no_containerd_root_says_what_to_set(tmp_path):
    synthetic = small_store(str(tmp_path / "root"), )
    os.rename(synthetic.ctd_root, str(tmp_path / "elsewhere"))
    with pytest.raises(StoreError, match="containerd_root"):
        load_store(str(tmp_path / "root"))
    store = load_store(str(tmp_path / "root"), containerd_root=str(tmp_path / "elsewhere"))
    assert isinstance(store, ContainerdStore) and len(store.images) == 2


# -- the prune's gates on this store -----------------------------------------------------------------------
def test_the_prune_removes_only_files_and_keeps_records_and_what_a_running_containerd_may_be_writing(tmp_path):
    from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import (  # pylint: disable=import-outside-toplevel
        Daemon, Gates, decide, execute)
    synthetic = small_store(str(tmp_path))
    ctd = synthetic.ctd_root
    old = plant(os.path.join(ctd, SNAPSHOTTER, "snapshots", "9999"))
    young = plant(os.path.join(ctd, SNAPSHOTTER, "snapshots", "new-7"), old=False)
    for path in (young, os.path.join(young, "data")):  # after containerd started, before the in-flight window
        os.utime(path, (time.time() - 30, time.time() - 30))
    stray = stray_blob(ctd)
    store = load_store(str(tmp_path))
    orphans = classify(store).orphans
    daemon = Daemon(pid=1, started_at=time.time() - 60, name="containerd")
    gates = Gates(kinds=[o.kind for o in orphans], min_age=0, now=time.time(), daemon=daemon, layer_dirs=0)
    decisions = {d.orphan.path: d for d in decide(orphans, gates, check_mode=False, quarantine=False)}
    assert decisions[old].reason_code == "unreferenced"
    assert decisions[young].reason_code == "in_flight" and "containerd" in decisions[young].reason
    assert decisions[stray].reason_code == "containerd_reclaims" and decisions[stray].action == "skipped"
    outcome = execute(store.parts.root, list(decisions.values()))
    assert not os.path.exists(old) and os.path.exists(young) and os.path.exists(stray) and not outcome.errors
    assert verify(load_store(str(tmp_path))).ok


def test_entries_written_while_the_store_is_read_are_in_flight_not_orphans(tmp_path, monkeypatch):
    """containerd makes a directory (or renames a blob into place) before the commit that records it, and
    removes one after: what appears during the read, or changed in the last seconds, is not an orphan."""
    synthetic = small_store(str(tmp_path))
    ctd = synthetic.ctd_root
    young = [plant(os.path.join(ctd, SNAPSHOTTER, "snapshots", "9998"), old=False),
             plant(os.path.join(ctd, CONTENT, "ingest", "ab" * 32), old=False), stray_blob(ctd, old=False)]
    settled = plant(os.path.join(ctd, SNAPSHOTTER, "snapshots", "9999"))
    late = []
    join_snapshots = ContainerdReader.join_snapshots

    def then_a_write_begins(reader):  # after both databases were read, before the directories are listed
        late.append(plant(os.path.join(ctd, CONTENT, "ingest", "ef" * 32)))
        join_snapshots(reader)

    monkeypatch.setattr(ContainerdReader, "join_snapshots", then_a_write_begins)
    store = load_store(str(tmp_path))
    assert late and os.path.isdir(late[0]) and all(os.path.exists(path) for path in young)
    assert [orphan.path for orphan in classify(store).orphans] == [settled]
    monkeypatch.undo()
    assert sorted(orphan.path for orphan in classify(load_store(str(tmp_path))).orphans) == sorted([settled] + late)
    assert sorted(orphan.path for orphan in classify(load_store(str(tmp_path)), now=time.time() + 11).orphans) == \
        sorted([settled] + late + young)


def test_an_ingest_with_a_record_is_in_flight_work_not_an_orphan(tmp_path):
    synthetic = SynthStore(str(tmp_path))
    synthetic.image("docker.io/library/base:1", [BASE])
    synthetic.write()
    ref = "moby/1/tar-blobs/sha256/" + "ef" * 32
    import hashlib  # pylint: disable=import-outside-toplevel
    ingest = plant(os.path.join(synthetic.ctd_root, CONTENT, "ingest", hashlib.sha256(ref.encode()).hexdigest()))
    with open(os.path.join(ingest, "ref"), "w", encoding="ascii") as handle:
        handle.write(ref)
    meta = os.path.join(synthetic.ctd_root, "io.containerd.metadata.v1.bolt", "meta.db")
    tree = rewrite_without_image(synthetic, "none")
    tree[b"v1"][b"moby"][b"content"][b"ingests"] = {ref.encode(): {b"ref": ref.encode()}}
    ctdstore.write_bolt(meta, tree)
    assert classify(load_store(str(tmp_path))).orphans == []
    with open(os.path.join(ingest, "ref"), "w", encoding="ascii") as handle:  # a damaged ref file changes nothing
        handle.write("garbage")
    assert classify(load_store(str(tmp_path))).orphans == []


def test_the_store_option_is_checked_and_overlay2_refuses_a_containerd_data_root(tmp_path):
    small_store(str(tmp_path))
    with pytest.raises(StoreError, match="store must be one of"):
        load_store(str(tmp_path), "zfs")
    with pytest.raises(StoreError, match="containerd image store"):
        load_store(str(tmp_path), "overlay2")


def test_the_discovered_daemons_containerd_root_is_weighed_not_trusted(tmp_path):
    synthetic = small_store(str(tmp_path / "root"))
    os.rename(synthetic.ctd_root, str(tmp_path / "system"))
    os.makedirs(str(tmp_path / "empty"))
    store = load_store(str(tmp_path / "root"), hints=[str(tmp_path / "empty"), str(tmp_path / "system")])
    assert store.parts.root == str(tmp_path / "system") and store.parts.layout == "system"
    with pytest.raises(StoreError, match="containerd_root"):
        load_store(str(tmp_path / "root"), hints=[str(tmp_path / "empty")])
