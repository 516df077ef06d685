"""overlay2_facts, run as a user runs it (installed collection, playbook), against what the engine says."""

from __future__ import annotations

import json
import os
import signal

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import chain_ids
from devtools.collection import run_playbook, target_pythons


def gather(engine, collections_path, tmp_dir, **extra):
    run_playbook(collections_path, "strata.overlay2.facts",
                 dict(dict(overlay2_data_root=engine.data_root, overlay2_container_sizes=True,
                           overlay2_facts_dest=str(tmp_dir)), **extra))
    with open(os.path.join(str(tmp_dir), "localhost.json"), encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def facts(engine, collections_path, tmp_path_factory):
    return gather(engine, collections_path, tmp_path_factory.mktemp("facts"))


def the_map(facts):
    """The facts without ``usage``: where the disk went is measured live (a running engine's databases and
    logs change between two reads), so it is checked to add up instead of compared."""
    found = dict(facts)
    usage = found.pop("usage")
    total = usage["total"]["bytes"]
    assert total > 0 and sum(c["bytes"] for c in usage["categories"].values()) + usage["unattributed"]["bytes"] == total
    return found


def by_id(items, key="id"):
    return {item[key]: item for item in items}


def graph_dirs(data):
    return (data["UpperDir"], data.get("LowerDir", ""), data["WorkDir"], data["MergedDir"])


def test_the_store_is_big_enough_to_mean_something(facts):
    assert len(facts["images"]) >= 5 and len(facts["layers"]) >= 10 and len(facts["containers"]) >= 3
    assert facts["warnings"] == []
    assert facts["data_root"] == os.path.realpath(facts["data_root"]) and facts["driver"] == "overlay2"


def test_every_image_matches_docker_image_inspect(engine, facts):
    images = by_id(facts["images"])
    inspected = engine.inspect(*engine.image_ids())
    assert sorted(images) == sorted(image["Id"] for image in inspected)
    for image in inspected:
        mine = images[image["Id"]]
        assert mine["diff_ids"] == image["RootFS"]["Layers"]
        assert mine["chain_ids"] == chain_ids(image["RootFS"]["Layers"])
        assert mine["tags"] == sorted(image["RepoTags"])
        assert mine["digests"] == sorted(image["RepoDigests"])
        assert (mine["parent"] or "") == image["Parent"]
        top = os.path.dirname(mine["upper_dir"])
        assert graph_dirs(image["GraphDriver"]["Data"]) == (
            mine["upper_dir"], ":".join(mine["lower_dirs"]), top + "/work", top + "/merged")


def test_every_container_matches_docker_inspect(engine, facts):
    containers = by_id(facts["containers"])
    inspected = engine.inspect(*engine.container_ids())
    assert sorted(containers) == sorted(container["Id"] for container in inspected)
    assert {c["running"] for c in facts["containers"]} == {True, False}
    for container in inspected:
        mine = containers[container["Id"]]
        assert (mine["name"], mine["image_id"], mine["running"]) == (
            container["Name"].lstrip("/"), container["Image"], container["State"]["Running"])
        assert graph_dirs(container["GraphDriver"]["Data"]) == (
            mine["upper_dir"], ":".join(mine["lower_dirs"]), mine["work_dir"], mine["merged_dir"])
        assert mine["lower_dirs"][0] == os.path.join(facts["data_root"], "overlay2", mine["init_id"], "diff")


def test_container_sizes_match_docker_ps_size(engine, facts):
    sizes = {c["Id"]: c.get("SizeRw", 0) for c in engine.api("/containers/json?all=1&size=1")}
    assert {c["id"]: c["rw_size"] for c in facts["containers"]} == sizes
    assert any(size > 0 for size in sizes.values())


def test_sizes_and_sharing_match_the_engines_disk_usage(engine, facts):
    usage = engine.api("/system/df")
    images = by_id(facts["images"])
    listed = [image for image in facts["images"] if not image["intermediate"]]
    assert sorted(image["id"] for image in listed) == sorted(image["Id"] for image in usage["Images"])
    for image in usage["Images"]:
        mine = images[image["Id"]]
        assert (mine["size"], mine["shared_size"], len(mine["containers"])) == (
            image["Size"], image["SharedSize"], image["Containers"])
    summary = facts["summary"]
    assert summary["layers_size"] == usage["LayersSize"]
    assert (summary["images"], summary["containers"]) == (len(usage["Images"]), len(usage["Containers"]))
    in_use = sum(i["Size"] - i["SharedSize"] for i in usage["Images"] if i["Containers"])
    assert summary["reclaimable_size"] == usage["LayersSize"] - in_use
    assert 0 < summary["shared_size"] < summary["layers_size"]


def test_layers_match_the_images_that_use_them(engine, facts):
    inspected = engine.inspect(*engine.image_ids())
    users = {}
    for image in inspected:
        for chain_id in chain_ids(image["RootFS"]["Layers"]):
            users.setdefault(chain_id, set()).add(image["Id"])
    layers = by_id(facts["layers"], "chain_id")
    assert set(layers) == set(users)
    for chain_id, layer in layers.items():
        assert set(layer["images"]) == users[chain_id]
        assert layer["diff_dir"].endswith("/" + layer["cache_id"] + "/diff") and os.path.isdir(layer["diff_dir"])
        assert os.readlink(os.path.join(facts["data_root"], "overlay2", "l", layer["link"])) == (
            "../%s/diff" % layer["cache_id"])
    assert any(len(layer["cache_id"]) == 25 for layer in layers.values()), "BuildKit layers are part of the store"
    top_of = {image["Id"]: image["GraphDriver"]["Data"]["UpperDir"] for image in inspected}
    for image in facts["images"]:
        assert layers[image["top_chain_id"]]["diff_dir"] == top_of[image["id"]]


@pytest.mark.parametrize("python", sorted(set(target_pythons()) - {"system"}))
def test_other_target_pythons_gather_the_same_facts(engine, collections_path, facts, tmp_path, python):
    other = gather(engine, collections_path, tmp_path, ansible_python_interpreter=target_pythons()[python])
    assert the_map(other) == the_map(facts)


def test_a_data_root_of_another_layout_fails_the_task_with_a_clear_message(collections_path, tmp_path):
    os.makedirs(os.path.join(str(tmp_path), "image", "vfs"))
    result = run_playbook(collections_path, "strata.overlay2.facts", {"overlay2_data_root": str(tmp_path)},
                          check=False)
    assert result.returncode == 2
    assert "holds the image store of another storage driver (vfs), not overlay2" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_the_facts_are_the_same_with_the_daemon_stopped(engine, collections_path, facts, tmp_path):
    pid = engine.process.pid
    engine.stop(signal.SIGTERM)
    try:
        stopped = gather(engine, collections_path, tmp_path)
    finally:
        engine.start()
    facts, stopped = the_map(facts), the_map(stopped)
    for container in facts["containers"] + stopped["containers"]:
        container.pop("running")  # a clean stop records every container as stopped
    running_daemon, stopped_daemon = facts.pop("daemon"), stopped.pop("daemon")
    assert running_daemon["pid"] == pid and running_daemon["store_root"] == engine.data_root
    assert stopped_daemon is None  # an explicit data_root that no running daemon owns
    facts.pop("daemons"), stopped.pop("daemons")
    assert stopped == facts
