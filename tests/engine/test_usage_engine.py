"""Where the disk went (``usage``), on stores real engines wrote: every byte below the data-root (and the
containerd root) in one category, the total what ``du -sx`` says, and each category what ``du`` says of the
paths the engine itself names for it (``docker inspect``: log paths, volume mountpoints, layer directories).

Engines: 20.10 and 28.5 on the overlay2 store, 28.5 with the containerd store, dockerd's own containerd (layout a) and a system
containerd beside it (layout b). Each has containers that wrote logs (one rotated by its log options, one not),
a named and an anonymous volume, a BuildKit build's cache and a leaked directory.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store
from ansible_collections.strata.overlay2.plugins.module_utils._usage.model import CATEGORIES
from devtools.sandbox import ChrootEngine, Engine, build, import_base

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


def check(engine: Engine, containers: dict, containerd_root=None) -> dict:
    leaked = os.path.join(engine.data_root, "overlay2", "c" * 64, "diff")  # a pull cut short (classic store)
    if not engine.containerd_store:
        os.makedirs(leaked)
        with open(os.path.join(leaked, "left"), "wb") as handle:
            handle.write(b"l" * 70000)
        os.utime(os.path.dirname(leaked), (1000, 1000))
    options = {"containerd_root": containerd_root} if containerd_root else {}
    usage = gather(load_store(engine.data_root, **options), usage=True)["usage"]
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
        log_path = host(engine, engine.inspect(containers[name])[0]["LogPath"])
        copies = [os.path.join(os.path.dirname(log_path), entry) for entry in os.listdir(os.path.dirname(log_path))
                  if entry.startswith(os.path.basename(log_path))]
        assert logs[name]["bytes"] == du(*copies) and logs[name]["rotation"] is rotation
        assert logs[name]["apparent_bytes"] == du(*copies, apparent=True)
    assert len([path for path in os.listdir(os.path.dirname(log_path)) if ".log." in path]) == 0  # plain: none
    volumes = {entry["name"]: entry for entry in categories["volumes"]["largest"]}
    for volume in engine.api("/volumes")["Volumes"]:
        directory = os.path.dirname(host(engine, volume["Mountpoint"]))
        assert volumes[volume["Name"]]["bytes"] == du(directory), volume["Name"]
        assert volumes[volume["Name"]]["apparent_bytes"] == du(directory, apparent=True), volume["Name"]
    assert volumes["named"]["anonymous"] is False and volumes["named"]["in_use"] is True
    assert sum(entry["anonymous"] for entry in volumes.values()) == 1
    assert categories["buildkit"]["bytes"] >= du(os.path.join(engine.data_root, "buildkit"))
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
        image_dirs = set()
        for image in engine.api("/images/json"):
            image_dirs |= layer_dirs(engine, engine.api("/images/%s/json" % image["Id"])["GraphDriver"])
        assert categories["image_layers"]["bytes"] == du(*image_dirs)
        assert categories["image_layers"]["apparent_bytes"] == du(*image_dirs, apparent=True)
        container_dirs = set()
        for container in engine.inspect(*engine.container_ids()):
            upper = container["GraphDriver"]["Data"]["UpperDir"]
            container_dirs |= {os.path.dirname(host(engine, upper)), os.path.dirname(host(engine, upper)) + "-init"}
        assert categories["container_layers"]["bytes"] == du(*container_dirs)
        assert categories["container_layers"]["apparent_bytes"] == du(*container_dirs, apparent=True)
        assert categories["orphans"]["by_kind"]["unreferenced_dir"]["bytes"] == \
            du(os.path.join(engine.data_root, "overlay2", "c" * 64))


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
        assert categories["containerd_content"]["bytes"] == du(content) > 0
        assert categories["containerd_content"]["apparent_bytes"] == du(content, apparent=True)
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
