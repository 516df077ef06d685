"""Where the disk went (``usage``), on stores real engines wrote: every byte below the data-root (and the
containerd root) in one category, the total what ``du -sx`` says, and each category what ``du`` says of the
paths the engine itself names for it (``docker inspect``: log paths, volume mountpoints, layer directories).

Engines: 20.10 and 28.5 on the overlay2 store, 28.5 with the containerd store, dockerd's own containerd (layout
a) and a system containerd beside it (layout b). Each has containers that wrote logs (one rotated by its log
options, one not), a named and an anonymous volume, a BuildKit build's cache and, planted with the daemon
stopped, a leftover of every orphan kind its store has.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store
from ansible_collections.strata.overlay2.plugins.module_utils._usage.model import CATEGORIES
from devtools.sandbox import ChrootEngine, Engine, build, import_base

from tests.support.engine_leftovers import crash_material, plant_containerd, plant_overlay2

CHATTY = "i=0; while [ $i -lt 600 ]; do echo line $i of a log that is long enough to rotate; i=$((i+1)); done"


def du(*paths, apparent=False):
    command = ["du", "-scx", "--block-size=1"] + (["--apparent-size"] if apparent else []) + list(paths)
    return int(subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1].split()[0])


def populate(engine: Engine) -> dict:
    import_base(engine)
    build(engine, "strata/cached:1", "FROM strata/base:1.0\nRUN echo built > /built && head -c 200000 /dev/zero > /z\n",
          buildkit=True)
    rotated = engine.docker("run", "-d", "--network", "none", "--log-opt", "max-size=4k", "--log-opt", "max-file=3",
                            "--name", "rotated", "strata/base:1.0", "sh", "-c", CHATTY).strip()
    plain = engine.docker("run", "-d", "--network", "none", "--name", "plain", "-v", "named:/data", "-v", "/anon",
                          "strata/base:1.0", "sh", "-c",
                          CHATTY + "; head -c 300000 /dev/zero > /data/blob; echo a > /anon/a").strip()
    for container in (rotated, plain):
        engine.docker("wait", container)  # stopped: nothing writes while the store is measured
    return {"rotated": rotated, "plain": plain}


def host(engine: Engine, path: str) -> str:
    return engine.root + path if isinstance(engine, ChrootEngine) else path


def engine_view(engine: Engine, containers: dict) -> dict:
    """What the engine names, asked while it runs: each container's log copies, each volume's directory, the
    images' and containers' layer directories."""
    logs = {}
    for name, container_id in containers.items():
        log_path = host(engine, engine.inspect(container_id)[0]["LogPath"])
        logs[name] = [os.path.join(os.path.dirname(log_path), entry) for entry in os.listdir(os.path.dirname(log_path))
                      if entry.startswith(os.path.basename(log_path))]
    volumes = {volume["Name"]: os.path.dirname(host(engine, volume["Mountpoint"]))
               for volume in engine.api("/volumes")["Volumes"]}
    images, layers = set(), set()
    for image in engine.api("/images/json"):
        images |= layer_dirs(engine, engine.api("/images/%s/json" % image["Id"])["GraphDriver"])
    for container in engine.inspect(*engine.container_ids()):
        upper = (container["GraphDriver"]["Data"] or {}).get("UpperDir")
        if upper:
            layers |= {os.path.dirname(host(engine, upper)), os.path.dirname(host(engine, upper)) + "-init"}
    return {"logs": logs, "volumes": volumes, "image_dirs": images, "container_dirs": layers}


def check(engine: Engine, containers: dict, containerd_root=None) -> dict:
    """With the daemon stopped and a leftover of every kind planted: the usage adds up to du and each category
    is du of what the engine named (and the orphans du of what the classification names)."""
    view = engine_view(engine, containers)  # before the crashes' material: what they leave is no one's
    crash = crash_material(engine) if not engine.containerd_store else None
    engine.stop()
    if crash:
        plant_overlay2(engine, *crash)
    else:
        plant_containerd(engine)
    options = {"containerd_root": containerd_root} if containerd_root else {}
    facts = gather(load_store(engine.data_root, **options), usage=True)
    usage = facts["usage"]
    roots = [engine.data_root] + ([containerd_root] if containerd_root else [])
    assert usage["roots"] == roots
    assert usage["total"] == {"bytes": du(*roots), "apparent_bytes": du(*roots, apparent=True)}
    for key in ("bytes", "apparent_bytes"):
        assert sum(usage["categories"][name][key] for name in CATEGORIES) + usage["unattributed"][key] == \
            usage["total"][key]
    assert usage["unattributed"]["bytes"] == 0, usage["unattributed"]
    categories = usage["categories"]
    logs = {entry["name"]: entry for entry in categories["container_logs"]["largest"]}
    for name, rotation in (("rotated", True), ("plain", False)):
        assert logs[name]["bytes"] == du(*view["logs"][name]) and logs[name]["rotation"] is rotation
        assert logs[name]["apparent_bytes"] == du(*view["logs"][name], apparent=True)
    assert len(view["logs"]["rotated"]) > 1 and len(view["logs"]["plain"]) == 1  # rotated copies, and none
    assert [entry["name"] for entry in categories["container_logs"]["not_rotated"]] == ["plain"]
    volumes = {entry["name"]: entry for entry in categories["volumes"]["largest"]}
    for name, directory in view["volumes"].items():
        assert volumes[name]["bytes"] == du(directory), name
        assert volumes[name]["apparent_bytes"] == du(directory, apparent=True), name
    assert volumes["named"]["anonymous"] is False and volumes["named"]["in_use"] is True
    assert sum(entry["anonymous"] for entry in volumes.values()) == 1
    assert categories["buildkit"]["bytes"] >= du(os.path.join(engine.data_root, "buildkit"))
    kinds = {}
    for orphan in facts["orphans"]["entries"]:
        kinds.setdefault(orphan["kind"], []).extend(orphan["paths"])
    expected_kinds = ({"unreferenced_chain", "removing", "stale_mount", "unreferenced_dir", "write_set",
                       "dangling_link"} if crash else {"unknown_snapshot_dir", "stale_ingest"})
    assert expected_kinds <= set(kinds)
    for kind, paths in kinds.items():
        assert categories["orphans"]["by_kind"][kind]["bytes"] == du(*paths), kind
        assert categories["orphans"]["by_kind"][kind]["apparent_bytes"] == du(*paths, apparent=True), kind
    categories["view"] = view
    return categories


def layer_dirs(engine: Engine, graph_driver: dict) -> set:
    data = graph_driver["Data"] or {}
    found = set()
    for key in ("LowerDir", "UpperDir"):
        for path in (data.get(key) or "").split(":"):
            if path:
                found.add(os.path.dirname(host(engine, path)))
    return found


@pytest.mark.parametrize("version", ["20.10", "28.5"])
def test_on_the_overlay2_store_every_category_is_what_the_engine_names(version):
    if os.geteuid() != 0:
        pytest.fail("the engine tests start a dockerd and need root")
    from devtools.fleet import suite_root  # pylint: disable=import-outside-toplevel
    with (Engine() if version == "20.10" else ChrootEngine(suite_root("testing"))) as engine:
        containers = populate(engine)
        categories = check(engine, containers)
        view = categories["view"]
        for name, paths in (("image_layers", view["image_dirs"]), ("container_layers", view["container_dirs"])):
            assert categories[name]["bytes"] == du(*paths), name
            assert categories[name]["apparent_bytes"] == du(*paths, apparent=True), name


@pytest.mark.parametrize("layout", ["managed", "system"])
def test_on_engine_28_5_with_the_containerd_store_both_layouts_add_up(layout):
    if os.geteuid() != 0:
        pytest.fail("the engine tests start a dockerd and need root")
    from devtools.fleet import suite_root  # pylint: disable=import-outside-toplevel
    engine = ChrootEngine(suite_root("testing"), containerd_store=True, system_containerd=layout == "system")
    with engine:
        containers = populate(engine)
        ctd_root = engine.containerd_root if layout == "system" else None
        categories = check(engine, containers, ctd_root)
        content = os.path.join(engine.containerd_root, "io.containerd.content.v1.content")
        planted = [os.path.join(content, "ingest", digest) for digest in ("ab" * 32, "cd" * 32)]  # orphans
        for key, apparent in (("bytes", False), ("apparent_bytes", True)):
            assert categories["containerd_content"][key] == \
                du(content, apparent=apparent) - du(*planted, apparent=apparent) > 0
        assert categories["image_layers"]["bytes"] > 0 and categories["container_layers"]["count"] == 2


def test_a_host_that_switched_store_counts_the_store_it_left_as_other_store():
    """Engine 28.5 used the overlay2 store, then was switched to the containerd store on the same data-root:
    the overlay2 store stays on disk, unseen by the engine (moby/moby#21925's missing gigabytes)."""
    if os.geteuid() != 0:
        pytest.fail("the engine tests start a dockerd and need root")
    from devtools.fleet import suite_root  # pylint: disable=import-outside-toplevel
    engine = ChrootEngine(suite_root("testing"))
    with engine:
        import_base(engine)
        build(engine, "strata/left:1", "FROM strata/base:1.0\nRUN head -c 400000 /dev/zero > /left\n")
        engine.stop()
        engine.containerd_store = True
        engine.start()
        import_base(engine)
        assert engine.api("/info")["DriverStatus"][0][1] == "io.containerd.snapshotter.v1"
        usage = gather(load_store(engine.data_root, store="containerd"), usage=True)["usage"]
        left = [os.path.join(engine.data_root, "overlay2"), os.path.join(engine.data_root, "image", "overlay2")]
        assert usage["categories"]["other_store"]["bytes"] == du(*left) > 400000
        assert usage["categories"]["other_store"]["apparent_bytes"] == du(*left, apparent=True)
        assert usage["total"]["bytes"] == du(engine.data_root) and usage["unattributed"]["bytes"] == 0
        # read as the overlay2 store it was, the containerd store is the other one
        usage = gather(load_store(engine.data_root, store="overlay2"), usage=True)["usage"]
        daemon = os.path.join(engine.data_root, "containerd", "daemon")
        stores = ("io.containerd.content.v1.content", "io.containerd.snapshotter.v1.overlayfs")
        now = [os.path.join(daemon, name) for name in stores]
        assert usage["categories"]["other_store"]["bytes"] == du(*now) > 0
        assert usage["total"]["bytes"] == du(engine.data_root) and usage["unattributed"]["bytes"] == 0


def test_the_daemons_log_options_rotate_a_container_that_gave_none():
    """The engine writes the daemon's log options into a container's hostconfig.json when it creates it: a
    container run without --log-opt on a daemon with ``--log-opt max-size`` rotates its logs."""
    if os.geteuid() != 0:
        pytest.fail("the engine tests start a dockerd and need root")
    with Engine(extra_args=["--log-opt", "max-size=8k", "--log-opt", "max-file=2"]) as engine:
        import_base(engine)
        container = engine.docker("run", "-d", "--network", "none", "--name", "quiet", "strata/base:1.0", "sh", "-c",
                                  CHATTY).strip()
        engine.docker("wait", container)
        logs = gather(load_store(engine.data_root), usage=True)["usage"]["categories"]["container_logs"]
        assert [(entry["name"], entry["rotation"]) for entry in logs["largest"]] == [("quiet", True)]
        assert logs["not_rotated"] == [] and logs["rotation_unknown"] == []
