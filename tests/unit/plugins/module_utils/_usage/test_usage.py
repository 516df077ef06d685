"""Where the disk went (``usage``): every byte below the data-root in one category, the total what du says."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._backends.registry import backend_for
from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather
from ansible_collections.strata.overlay2.plugins.module_utils._facts.subset import PARTS, resolve
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.model import tree_usage
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store
from ansible_collections.strata.overlay2.plugins.module_utils._usage.model import CATEGORIES

from tests.support.ctdstore import CONTENT, SNAPSHOTTER, SynthStore


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def du(*paths, apparent=False):
    """What ``du -sx --block-size=1`` says of the paths together (an inode with several links once)."""
    command = ["du", "-scx", "--block-size=1"] + (["--apparent-size"] if apparent else []) + list(paths)
    return int(subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1].split()[0])


def usage_of(root, **options):
    return gather(load_store(root, **options), usage=True)["usage"]


def assert_adds_up_to_du(usage, *roots):
    total = usage["total"]
    assert total["bytes"] == du(*roots) and total["apparent_bytes"] == du(*roots, apparent=True)
    for key in ("bytes", "apparent_bytes"):
        assert sum(usage["categories"][name][key] for name in CATEGORIES) + usage["unattributed"][key] == total[key]


def plant_logs_and_volumes(root, containers):
    web, job = containers["web"]["id"], containers["job"]["id"]
    write(os.path.join(root, "containers", web, web + "-json.log"), "line\n" * 3000)
    write(os.path.join(root, "containers", web, web + "-json.log.1"), "old\n" * 9000)
    if os.path.isdir(os.path.join(root, "containers", job)):
        write(os.path.join(root, "containers", job, "local-logs", "container.log"), "l" * 5000)
    with open(os.path.join(root, "containers", web, "hostconfig.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    config["LogConfig"] = {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
    write(os.path.join(root, "containers", web, "hostconfig.json"), json.dumps(config))
    write(os.path.join(root, "volumes", "data", "_data", "db.bin"), "v" * 20000)
    write(os.path.join(root, "volumes", "f" * 64, "_data", "cache"), "a" * 7000)
    write(os.path.join(root, "volumes", "metadata.db"), "\0" * 32768)


def test_every_byte_of_a_store_with_every_leftover_is_in_one_category_and_the_total_is_dus(leftovers):
    root = leftovers.sample.root
    leftovers.every_kind()
    plant_logs_and_volumes(root, leftovers.sample.containers)
    usage = usage_of(root)
    assert_adds_up_to_du(usage, root)
    assert usage["unattributed"]["bytes"] == 0 and usage["unreadable"] == []
    categories = usage["categories"]
    classification = backend_for(load_store(root)).classify()
    by_kind = {}
    for orphan in classification.orphans:
        by_kind[orphan.kind] = by_kind.get(orphan.kind, 0) + sum(tree_usage(os.path.join(root, part)).bytes
                                                                 for part in orphan.parts)
    assert {kind: found["bytes"] for kind, found in categories["orphans"]["by_kind"].items()} == by_kind
    store = load_store(root)
    mounts = [store.dir_path(name) for mount in store.mounts.values() if mount.container_id in store.containers
              for name in mount.dir_names]
    assert categories["container_layers"]["bytes"] == du(*mounts)
    image_dirs = {store.dir_path(store.layers[chain].cache_id) for image in store.images.values()
                  for chain in image.chain_ids}
    assert categories["image_layers"]["bytes"] == du(*image_dirs) > 0
    shared = categories["image_layers"]["by_sharing"]["shared"]["bytes"]
    assert shared == du(store.dir_path(store.layers[leftovers.sample.base.chain_id].cache_id))


def test_logs_and_volumes_are_listed_with_who_writes_them_and_whether_they_rotate(sample):
    plant_logs_and_volumes(sample.root, sample.containers)
    categories = usage_of(sample.root)["categories"]
    web, job = sample.containers["web"]["id"], sample.containers["job"]["id"]
    logs = {entry["name"]: entry for entry in categories["container_logs"]["largest"]}
    assert logs["web"]["bytes"] == du(*[os.path.join(sample.root, "containers", web, web + suffix)
                                        for suffix in ("-json.log", "-json.log.1")])
    assert logs["web"]["rotation"] is True and logs["job"]["rotation"] is False
    assert logs["job"]["bytes"] == du(os.path.join(sample.root, "containers", job, "local-logs"))
    volumes = {entry["name"]: entry for entry in categories["volumes"]["largest"]}
    assert volumes["data"]["anonymous"] is False and volumes["f" * 64]["anonymous"] is True
    assert volumes["data"]["bytes"] == du(os.path.join(sample.root, "volumes", "data"))
    assert categories["volumes"]["bytes"] == du(os.path.join(sample.root, "volumes", "data"),
                                                os.path.join(sample.root, "volumes", "f" * 64))


def test_a_hard_link_across_categories_is_counted_once_and_what_no_one_claims_is_named(sample):
    root = sample.root
    write(os.path.join(root, "volumes", "data", "_data", "big"), "b" * 50000)
    os.link(os.path.join(root, "volumes", "data", "_data", "big"), os.path.join(root, "stray-hardlink"))
    write(os.path.join(root, "backup-of-something", "x.tar"), "t" * 80000)
    usage = usage_of(root)
    assert_adds_up_to_du(usage, root)
    named = {entry["path"]: entry["bytes"] for entry in usage["unattributed"]["largest"]}
    assert named["backup-of-something"] == du(os.path.join(root, "backup-of-something"))


def test_what_is_mounted_inside_is_not_counted_as_du_x_does_not(sample):
    merged = os.path.join(sample.root, "overlay2", sample.containers["web"]["mount_id"], "merged")
    os.makedirs(merged, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "strata-usage-test", merged], check=True)
    try:
        write(os.path.join(merged, "inside"), "m" * 100000)
        usage = usage_of(sample.root)
        assert_adds_up_to_du(usage, sample.root)
    finally:
        subprocess.run(["umount", merged], check=True)


@pytest.mark.parametrize("layout", ["managed", "system"])
def test_the_containerd_store_counts_its_content_its_snapshots_and_its_own_root(tmp_path, layout):
    data_root = str(tmp_path / "data-root")
    ctd_root = str(tmp_path / "containerd") if layout == "system" else None
    synthetic = SynthStore(data_root, ctd_root)
    base = synthetic.image("docker.io/library/k:1", [{"bin": None, "bin/k": b"k" * 30000}])
    synthetic.image("docker.io/library/k:2", [{"srv": None, "srv/a": b"a" * 9000}], parent=base)
    synthetic.container(base, "c1")
    synthetic.write()
    leftover = os.path.join(synthetic.ctd_root, SNAPSHOTTER, "snapshots", "9999")
    write(os.path.join(leftover, "fs", "x"), "x" * 12000)
    for path in (os.path.join(leftover, "fs", "x"), os.path.join(leftover, "fs"), leftover):
        os.utime(path, (1000, 1000))
    write(os.path.join(data_root, "overlay2", "a" * 64, "diff", "old"), "o" * 40000)  # the store it switched from
    usage = usage_of(data_root, **({"containerd_root": ctd_root} if ctd_root else {}))
    roots = [data_root] + ([ctd_root] if ctd_root else [])
    assert usage["roots"] == roots
    assert_adds_up_to_du(usage, *roots)
    categories = usage["categories"]
    assert categories["containerd_content"]["bytes"] == du(os.path.join(synthetic.ctd_root, CONTENT)) > 0
    assert categories["orphans"]["by_kind"]["unknown_snapshot_dir"]["bytes"] == du(leftover)
    assert categories["other_store"]["bytes"] == du(os.path.join(data_root, "overlay2"))
    assert categories["image_layers"]["bytes"] > 30000 and categories["container_layers"]["count"] == 1
    assert usage["unattributed"]["bytes"] == 0


def test_gather_subset_reads_as_setup_does():
    assert resolve(["all"]) == resolve(["all", "!usage", "usage"]) == set(PARTS)
    assert resolve(["!usage", "usage"]) == {"usage"}  # not only exclusions: starts from nothing
    assert resolve(["summary"]) == {"summary"}
    assert "usage" not in resolve(["!usage"]) and "images" in resolve(["!usage"])
    assert resolve(["all", "!images", "!layers"]) == resolve(["all"]) - {"images", "layers"}
    with pytest.raises(ValueError, match="unknown part 'sizes'"):
        resolve(["sizes"])
