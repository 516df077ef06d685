"""layer_verify's core on synthetic stores: exact stream rebuild, and each kind of damage named precisely."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import verify
from ansible_collections.strata.overlay2.plugins.module_utils._verify.report import SelectionError

from tests.support.synthstore import SyntheticStore, directory, file, hardlink, opaque, symlink, whiteout


def run(root, **options):
    return verify(Overlay2Store.load(root), **options)


def problems(report):
    """(kind, path) of every problem, with the chain id or image it is attached to."""
    return sorted((verdict.chain_id or verdict.images[0] if verdict.images else verdict.chain_id, p.kind, p.path)
                  for verdict in report.corrupt for p in verdict.problems)


def kinds_and_paths(report):
    return sorted((p.kind, p.path) for verdict in report.corrupt for p in verdict.problems)


def diff_file(sample, layer, name):
    return os.path.join(sample.synth.overlay(layer.cache_id, "diff"), name)


CLEAN_BYTES = 1004 + 4 + 5 + 4 + 4 + 4096 + 10


def test_a_clean_store_verifies_with_every_byte_read_once(sample):
    report = run(sample.root)
    assert report.ok and report.corrupt == []
    assert (report.checked_layers, report.checked_images) == (4, 3)
    # the base layer is used by three images and read once: 1004 + 4 + 5 (base) + 4 + 4 (app1) + 4096 (app2) + 10
    assert report.bytes_verified == CLEAN_BYTES


def test_streams_with_awkward_members_rebuild_exactly(tmp_path):
    synth = SyntheticStore(os.path.join(str(tmp_path), "d"))
    long_name = "deep/" + "/".join(["a-rather-long-directory-name-%02d" % i for i in range(6)]) + "/file.txt"
    layer = synth.add_layer([
        file("caf\udce9.txt", "not utf-8 name\n"),  # written as name_raw
        file("empty"),
        file(long_name, "needs a PAX header\n"),
        file("sparse.bin", b"\0" * (3 << 20)),
        file("data.bin", bytes(range(256)) * 4096),
        hardlink("data.hardlink", "data.bin"),
        symlink("link", "data.bin"),
        directory("dir"), opaque("dir"), file("dir/x", "x"), whiteout("gone"),
    ])
    synth.add_image([layer], ["awkward:1"])
    with gzip.open(os.path.join(synth.layerdb(layer.chain_id), "tar-split.json.gz")) as handle:
        assert any("name_raw" in json.loads(line) for line in handle)
    report = run(synth.root)
    assert report.ok, kinds_and_paths(report)
    assert report.bytes_verified == 15 + 19 + (3 << 20) + 256 * 4096 + 1


def test_one_changed_byte_names_the_file_and_its_layer(sample):
    path = diff_file(sample, sample.base, "etc/conf/keep")
    with open(path, "r+b") as handle:
        handle.write(b"K")
    report = run(sample.root)
    assert kinds_and_paths(report) == [
        ("digest_mismatch", os.path.join(sample.synth.layerdb(sample.base.chain_id), "tar-split.json.gz")),
        ("file_modified", path)]
    (verdict,) = report.corrupt
    assert verdict.chain_id == sample.base.chain_id and verdict.cache_id == sample.base.cache_id
    assert sorted(verdict.images) == sorted(sample.images.values())
    assert "CRC-64" in verdict.problems[1].detail


def test_a_truncated_file_is_reported_with_its_size(sample):
    path = diff_file(sample, sample.app, "opt/data.bin")
    os.truncate(path, 100)
    report = run(sample.root)
    assert [problem[0] for problem in kinds_and_paths(report)] == ["digest_mismatch", "file_modified"]
    assert report.corrupt[0].problems[1].detail == "size 100, the layer recorded 4096"
    assert report.corrupt[0].images == [sample.images["app"]]


def test_a_deleted_file_is_missing(sample):
    path = diff_file(sample, sample.tool, "usr/bin/tool")
    os.unlink(path)
    assert [kind for kind, p in kinds_and_paths(run(sample.root)) if p == path] == ["file_missing"]
    assert [problem[0] for problem in kinds_and_paths(run(sample.root))] == ["digest_mismatch", "file_missing"]


def test_a_deleted_empty_file_is_missing_though_the_digest_still_matches(sample):
    path = diff_file(sample, sample.app, "opt/empty")
    os.unlink(path)
    assert kinds_and_paths(run(sample.root)) == [("file_missing", path)]


def test_an_added_file_is_seen_though_the_digest_cannot_see_it(sample):
    path = diff_file(sample, sample.base, "etc/cron.d/backdoor")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as handle:
        handle.write("* * * * * root sh\n")
    assert kinds_and_paths(run(sample.root)) == [("file_added", path)]


def test_a_removed_opaque_marker_is_missing(sample):
    os.removexattr(sample.synth.overlay(sample.app.parent.cache_id, "diff", "etc/conf"), "trusted.overlay.opaque")
    assert kinds_and_paths(run(sample.root)) == [
        ("file_missing", diff_file(sample, sample.app.parent, "etc/conf/.wh..wh..opq"))]


def test_a_changed_layerdb_diff_is_metadata_only(sample):
    record = sample.synth.layerdb(sample.tool.chain_id)
    with open(os.path.join(record, "diff"), "w") as handle:
        handle.write("sha256:" + "0" * 64)
    found = kinds_and_paths(run(sample.root))
    assert {problem[0] for problem in found} == {"metadata"}
    assert {problem[1] for problem in found} == {record, os.path.join(record, "diff")}


def test_a_deleted_cache_directory_is_metadata_on_that_layer_only(sample):
    import shutil
    shutil.rmtree(sample.synth.overlay(sample.tool.cache_id))
    report = run(sample.root)
    # the layer record is damaged: it names a directory that is gone (the prune keeps every directory)
    assert kinds_and_paths(report) == [("metadata", sample.synth.layerdb(sample.tool.chain_id))]
    assert report.corrupt[0].images == [sample.images["tool"]]


def test_a_replaced_image_config_is_metadata_on_that_image(sample):
    content = sample.synth.path("image/overlay2/imagedb/content/sha256")
    with open(os.path.join(content, sample.images["base"][7:]), "rb") as handle:
        original = json.load(handle)
    original["config"] = {"Cmd": ["sh", "-c", "evil"]}
    with open(os.path.join(content, sample.images["tool"][7:]), "w") as handle:
        json.dump(original, handle)
    report = run(sample.root)
    assert kinds_and_paths(report) == [("metadata", os.path.join(content, sample.images["tool"][7:]))]
    assert report.corrupt[0].images == [sample.images["tool"]] and report.corrupt[0].chain_id is None


def test_a_broken_link_and_lower_file_are_metadata(sample):
    middle = sample.app.parent
    os.unlink(sample.synth.path("overlay2", "l", middle.link))
    os.symlink("../%s/diff" % sample.base.cache_id, sample.synth.path("overlay2", "l", middle.link))
    with open(sample.synth.overlay(sample.app.cache_id, "lower"), "w") as handle:
        handle.write("l/" + sample.base.link)
    found = kinds_and_paths(run(sample.root))
    assert found == sorted([("metadata", sample.synth.path("overlay2", "l", middle.link)),
                            ("metadata", sample.synth.overlay(sample.app.cache_id, "lower"))])


def test_a_tar_split_name_that_climbs_out_is_never_opened(sample, tmp_path):
    record = sample.synth.layerdb(sample.tool.chain_id)
    with gzip.open(os.path.join(record, "tar-split.json.gz")) as handle:
        lines = [json.loads(line) for line in handle]
    for line in lines:
        if line.get("name") == "usr/bin/tool":
            line["name"] = "../../../../../../../../etc/passwd"
    with gzip.open(os.path.join(record, "tar-split.json.gz"), "wt") as handle:
        handle.writelines(json.dumps(line) + "\n" for line in lines)
    clean_bytes = run(sample.root, layers=[c for c in Overlay2Store.load(sample.root).layers if c != sample.tool.chain_id]
                      ).bytes_verified
    report = run(sample.root)
    assert "member name leaves the layer" in report.corrupt[0].problems[1].detail
    assert report.bytes_verified == clean_bytes  # the tool's 10 bytes were read from nowhere


def test_a_file_swapped_for_a_symlink_is_not_followed(sample, tmp_path):
    outside = os.path.join(str(tmp_path), "outside")
    with open(outside, "w") as handle:
        handle.write("#!/bin/sh\n")  # same bytes: following it would make the digest match
    path = diff_file(sample, sample.tool, "usr/bin/tool")
    os.unlink(path)
    os.symlink(outside, path)
    found = run(sample.root).corrupt[0].problems
    assert [(p.kind, p.path, p.detail) for p in found[1:]] == [("file_modified", path, "is a symlink (not followed)")]


def test_a_corrupt_tar_split_is_a_metadata_problem_and_the_other_layers_still_verify(sample):
    with open(os.path.join(sample.synth.layerdb(sample.tool.chain_id), "tar-split.json.gz"), "wb") as handle:
        handle.write(b"garbage")
    report = run(sample.root)
    assert [(v.chain_id, [p.kind for p in v.problems]) for v in report.corrupt] == [(sample.tool.chain_id, ["metadata"])]
    assert report.checked_layers == 4


def test_selection_by_tag_short_id_and_chain(sample):
    by_tag = run(sample.root, images=["example/tool:1"])
    assert (by_tag.checked_images, by_tag.checked_layers) == (1, 2)
    assert run(sample.root, images=[sample.images["app"][7:19]]).checked_layers == 3
    assert run(sample.root, layers=[sample.base.chain_id]).checked_layers == 1
    assert run(sample.root, images=["example/base"]).checked_layers == 1  # repo means repo:latest
    with pytest.raises(SelectionError, match="not in the store"):
        run(sample.root, images=["example/ghost:1"])
    with pytest.raises(SelectionError, match="not in the layer database"):
        run(sample.root, layers=["sha256:" + "0" * 64])


def test_metadata_only_reads_no_content(sample):
    os.truncate(diff_file(sample, sample.app, "opt/data.bin"), 1)
    report = run(sample.root, content=False)
    assert report.ok and report.bytes_verified == 0


@pytest.mark.parametrize("workers", [1, 3, 16])
def test_the_verdict_does_not_depend_on_the_number_of_workers(sample, workers):
    os.truncate(diff_file(sample, sample.app, "opt/data.bin"), 1)
    with open(diff_file(sample, sample.base, "etc/conf/keep"), "w") as handle:
        handle.write("KEEP\n")
    assert problems(run(sample.root, workers=workers)) == problems(run(sample.root, workers=1))
    assert len(run(sample.root, workers=workers).corrupt) == 2


def test_layers_are_shared_out_by_cost_so_each_worker_gets_bytes_and_entries(tmp_path):
    from ansible_collections.strata.overlay2.plugins.module_utils._util.parallel import partition
    from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import layer_cost
    synth = SyntheticStore(os.path.join(str(tmp_path), "d"))
    big = [synth.add_layer([file("big%d" % i, b"x" * (2000000 * (i + 1)))]) for i in range(2)]
    many = [synth.add_layer([file("f%d/%d" % (i, j), "x") for j in range(3000)]) for i in range(2)]
    store = Overlay2Store.load(synth.root)
    layers = list(store.layers.values())
    costs = {layer.chain_id: layer_cost(store, layer) for layer in layers}
    assert min(costs[l.chain_id] for l in many) > costs[big[0].chain_id]  # 3000 entries outweigh 2 MB
    shares = partition(layers, 2, lambda layer: costs[layer.chain_id])
    assert sorted(l.chain_id for share in shares for l in share) == sorted(store.layers)
    for share in shares:  # one layer of many entries and one of many bytes each
        assert len({l.chain_id for l in share} & {l.chain_id for l in many}) == 1
        assert len({l.chain_id for l in share} & {l.chain_id for l in big}) == 1
