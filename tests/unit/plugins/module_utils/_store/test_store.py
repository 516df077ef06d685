"""The store model on synthetic stores, good and bad: every bad entry is a finding, never a traceback."""

from __future__ import annotations

import os

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._store.model import StoreError
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store

from tests.support.synthstore import SyntheticStore, file


def findings(store, kind=None):
    return [(f.kind, f.path, f.message) for f in store.findings if kind is None or f.kind == kind]


def kinds_and_paths(store):
    return [(f.kind, f.path) for f in store.findings]


def kinds(store):
    return sorted(f.kind for f in store.findings)


def layerdb(sample, layer, name=""):
    return os.path.join(sample.synth.layerdb(layer.chain_id), name)


def test_a_clean_store_loads_every_part_without_findings(sample):
    store = Overlay2Store.load(sample.root)
    assert findings(store) == []
    assert set(store.images) == set(sample.images.values())
    assert len(store.layers) == 4
    assert store.images[sample.images["base"]].tags == ["example/base:1", "example/base:latest"]
    assert [layer.chain_id for layer in store.chain(sample.app.chain_id)] == [
        layer.chain_id for layer in sample.app.chain()]
    assert {mount.mount_id for mount in store.mounts.values()} == {
        c["mount_id"] for c in sample.containers.values()}
    web = store.containers[sample.containers["web"]["id"]]
    assert (web.name, web.running, web.image_id) == ("web", True, sample.images["app"])
    assert store.dirs[sample.base.cache_id].link == sample.base.link
    assert store.links[sample.base.link] == sample.base.cache_id


def test_a_symlinked_data_root_is_resolved_once(sample, tmp_path):
    alias = os.path.join(str(tmp_path), "alias")
    os.symlink(sample.root, alias)
    assert Overlay2Store.load(alias).data_root == os.path.realpath(sample.root)


@pytest.mark.parametrize("data_root, message", [
    ("/nonexistent/docker", "does not exist"),
    ("relative/docker", "must be an absolute path"),
    ("/", "resolves to /"),
])
def test_unusable_data_roots_fail_clearly(data_root, message):
    with pytest.raises(StoreError, match=message):
        Overlay2Store.load(data_root)


def test_a_file_as_data_root_fails_clearly(tmp_path):
    path = os.path.join(str(tmp_path), "file")
    open(path, "w").close()
    with pytest.raises(StoreError, match="is not a directory"):
        Overlay2Store.load(path)


def test_another_graph_driver_is_named(tmp_path):
    os.makedirs(os.path.join(str(tmp_path), "image", "btrfs"))
    with pytest.raises(StoreError, match=r"another storage driver \(btrfs\)"):
        Overlay2Store.load(str(tmp_path))


def test_the_containerd_image_store_is_recognised(tmp_path):
    os.makedirs(os.path.join(str(tmp_path), "containers"))
    os.makedirs(os.path.join(str(tmp_path), "containerd", "daemon"))
    with pytest.raises(StoreError, match="containerd image store"):
        Overlay2Store.load(str(tmp_path))


def test_an_empty_directory_is_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="not a Docker data-root"):
        Overlay2Store.load(str(tmp_path))


def test_a_truncated_image_config_is_one_finding_and_the_other_images_remain(sample):
    path = sample.synth.path("image/overlay2/imagedb/content/sha256", sample.images["tool"][7:])
    with open(path, "r+b") as handle:
        handle.truncate(20)
    store = Overlay2Store.load(sample.root)
    assert findings(store) == [("invalid", path, findings(store)[0][2])]
    assert "not a valid image config" in findings(store)[0][2]
    assert set(store.images) == {sample.images["base"], sample.images["app"]}


def test_a_config_with_a_bad_diff_id_is_refused(sample):
    path = sample.synth.path("image/overlay2/imagedb/content/sha256", sample.images["tool"][7:])
    with open(path, "w") as handle:
        handle.write('{"rootfs": {"type": "layers", "diff_ids": ["sha256:../../../etc"]}}')
    store = Overlay2Store.load(sample.root)
    assert kinds_and_paths(store) == [("invalid", path)]


def test_a_missing_cache_id_leaves_the_layer_without_a_directory(sample):
    os.unlink(layerdb(sample, sample.tool, "cache-id"))
    store = Overlay2Store.load(sample.root)
    assert kinds_and_paths(store) == [("missing", layerdb(sample, sample.tool, "cache-id"))]
    assert store.layers[sample.tool.chain_id].cache_id is None


@pytest.mark.parametrize("hostile", ["../../etc", "/etc", "../" * 10 + "etc/shadow", "a" * 64 + "/../../x"])
def test_a_cache_id_that_would_climb_out_is_never_used(sample, hostile):
    with open(layerdb(sample, sample.tool, "cache-id"), "w") as handle:
        handle.write(hostile)
    store = Overlay2Store.load(sample.root)
    assert store.layers[sample.tool.chain_id].cache_id is None
    assert findings(store)[0][:2] == ("invalid", layerdb(sample, sample.tool, "cache-id"))


def test_a_mount_id_that_would_climb_out_drops_the_mount_only(sample):
    web = sample.containers["web"]["id"]
    path = sample.synth.path("image/overlay2/layerdb/mounts", web, "mount-id")
    with open(path, "w") as handle:
        handle.write("../../etc")
    store = Overlay2Store.load(sample.root)
    assert web not in store.mounts and web in store.containers
    assert kinds_and_paths(store) == [("invalid", path)]
    (damaged,) = store.damaged
    assert (damaged.code, damaged.containers, damaged.might_name) == ("mount", {web}, {"dirs"})


def test_a_metadata_file_that_is_a_symlink_is_not_followed(sample, tmp_path):
    secret = os.path.join(str(tmp_path), "secret")
    with open(secret, "w") as handle:
        handle.write("sha256:" + "e" * 64)
    diff = layerdb(sample, sample.tool, "diff")
    os.unlink(diff)
    os.symlink(secret, diff)
    store = Overlay2Store.load(sample.root)
    assert sample.tool.chain_id not in store.layers
    assert findings(store) == [("unreadable", diff, "is a symlink (not followed)")]


def test_a_layer_directory_that_is_a_symlink_is_not_entered(sample, tmp_path):
    outside = os.path.join(str(tmp_path), "outside")
    os.rename(layerdb(sample, sample.tool), outside)
    os.symlink(outside, layerdb(sample, sample.tool).rstrip("/"))
    store = Overlay2Store.load(sample.root)
    assert sample.tool.chain_id not in store.layers
    assert findings(store)[0][2] == "is a symlink (not followed)"


def test_a_link_pointing_outside_is_reported_and_not_resolved(sample):
    link = sample.synth.path("overlay2", "l", "A" * 26)
    os.symlink("/etc", link)
    store = Overlay2Store.load(sample.root)
    assert store.links["A" * 26] is None
    assert findings(store) == [("invalid", link, "points outside overlay2/<dir>/diff: /etc")]


def test_a_fifo_is_refused_without_blocking(sample):
    size = layerdb(sample, sample.tool, "size")
    os.unlink(size)
    os.mkfifo(size)
    store = Overlay2Store.load(sample.root)
    assert findings(store) == [("unreadable", size, "is not a regular file")]
    assert store.layers[sample.tool.chain_id].size is None


def test_an_absurdly_large_metadata_file_is_refused(sample):
    with open(layerdb(sample, sample.tool, "size"), "w") as handle:
        handle.write("1" * (2 << 20))
    store = Overlay2Store.load(sample.root)
    assert findings(store)[0][2].startswith("is larger than")


def test_names_and_contents_that_are_not_utf8_are_findings(sample):
    os.makedirs(os.path.join(sample.root.encode(), b"overlay2", b"caf\xe9"))
    with open(layerdb(sample, sample.tool, "diff"), "wb") as handle:
        handle.write(b"sha256:\xff\xfe")
    store = Overlay2Store.load(sample.root)
    assert sorted((f.kind, f.message) for f in store.findings) == [
        ("invalid", "is not UTF-8 text"), ("unexpected", "not an overlay2 layer directory")]
    assert all(isinstance(f.path, str) for f in store.findings)


def test_tags_that_point_nowhere_and_a_broken_tag_store_are_findings(sample):
    sample.synth.tag("example/ghost:1", "sha256:" + "f" * 64)
    store = Overlay2Store.load(sample.root)
    assert kinds(store) == ["missing"]
    with open(sample.synth.path("image/overlay2/repositories.json"), "w") as handle:
        handle.write("{broken")
    store = Overlay2Store.load(sample.root)
    assert kinds(store) == ["invalid"]
    assert all(not image.tags for image in store.images.values())


def test_a_parent_chain_that_loops_ends_with_a_finding(sample):
    with open(layerdb(sample, sample.tool, "parent"), "w") as handle:
        handle.write(sample.tool.chain_id)
    store = Overlay2Store.load(sample.root)
    assert [layer.chain_id for layer in store.chain(sample.tool.chain_id)] == [sample.tool.chain_id]
    assert findings(store)[0][2] == "parent chain loops back to itself"


def test_unexpected_entries_are_reported_by_name(sample):
    synth = sample.synth
    open(synth.path("image/overlay2/layerdb/sha256", "notachain"), "w").close()
    os.makedirs(synth.path("containers", "x" * 64))
    os.makedirs(synth.path("image/overlay2/layerdb/sha256", "a" * 64 + "-" + "b" * 64 + "-removing"))
    open(synth.path("image/overlay2/imagedb/content/sha256", ".tmp-abc123"), "w").close()
    store = Overlay2Store.load(sample.root)
    assert kinds(store) == ["unexpected", "unexpected"]
    assert store.removing == ["a" * 64 + "-" + "b" * 64 + "-removing"]


def test_a_bad_container_config_drops_that_container_only(sample):
    job = sample.containers["job"]["id"]
    with open(sample.synth.path("containers", job, "config.v2.json"), "w") as handle:
        handle.write('{"Name": 5, "State": {}}')
    store = Overlay2Store.load(sample.root)
    assert job not in store.containers and sample.containers["web"]["id"] in store.containers
    assert findings(store)[0][0] == "invalid"


def test_a_missing_overlay2_directory_is_a_finding(tmp_path):
    synth = SyntheticStore(os.path.join(str(tmp_path), "d"))
    synth.add_image([synth.add_layer([file("x", "1")])], ["x:1"])
    os.rename(synth.path("overlay2"), synth.path("overlay2.gone"))
    store = Overlay2Store.load(synth.root)
    assert findings(store) == [("missing", synth.path("overlay2"), "the overlay2 directory is missing")]
    assert len(store.images) == 1
