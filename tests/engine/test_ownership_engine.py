"""Unknown is not unowned, on real engines (20.10 on the machine, 28.5 from Debian testing's root in a chroot).

- A BuildKit build (three RUN steps, one with a cache mount), ``docker rmi``, the prune with the daemon
  stopped: then the rebuild shows every step CACHED and exports, and the cache mount still holds its file.
- ``docker builder prune -a`` cut short by SIGKILL: what the engine itself can no longer remove (found on a
  copy of the data-root, where the prune is let finish) goes; everything BuildKit still records stays.
- Each kind of reference record damaged (truncated, garbage, an invalid id, a symlink): check mode and the
  real run remove nothing the engine's own inspect says is used, name the record, and every image runs after.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests.support.bolt_fixtures import BUILD_DOCKERFILE, build_with_buildkit
from devtools.collection import run_module
from devtools.sandbox import LAYERDB, ChrootEngine, Engine, import_base

PRUNE = "strata.overlay2.orphan_layer_prune"
ENGINES = ["20.10", "28.5"]
READ_CACHE = """FROM strata/bk-base:1
RUN --mount=type=cache,target=/cache,id=mycache cp /cache/c.txt /seen.txt
"""
WIDE_CACHE = "FROM strata/bk-base:1\n" + "".join(
    "RUN echo %d > /step%d && head -c 200000 /dev/zero > /fill%d\n" % (n, n, n) for n in range(30))


def make_engine(version: str) -> Engine:
    if version == "20.10":
        return Engine()
    from devtools.fleet import suite_root  # pylint: disable=import-outside-toplevel
    return ChrootEngine(suite_root("testing"))


@pytest.fixture(scope="module", params=ENGINES)
def build_host(request):
    """An engine that built BUILD_DOCKERFILE with BuildKit and then removed the image (the cache stays)."""
    if os.geteuid() != 0:
        pytest.fail("the engine tests start a dockerd and need root")
    engine = make_engine(request.param)
    with engine:
        import_base(engine, "strata/bk-base:1")
        build_with_buildkit(engine, "strata/bk-app:1", BUILD_DOCKERFILE)
        engine.docker("rmi", "strata/bk-app:1")
        engine.expected_version = request.param
        yield engine


def store_paths(engine: Engine) -> set:
    root = engine.data_root
    paths = {"overlay2/" + name for name in os.listdir(os.path.join(root, "overlay2")) if name != "l"}
    for part in ("sha256", "mounts"):
        directory = os.path.join(root, LAYERDB, part)
        if os.path.isdir(directory):
            paths.update("%s/%s/%s" % (LAYERDB, part, name) for name in os.listdir(directory))
    return paths


def prune(engine: Engine, collections_path, workdir, check_mode=False, **args):
    return run_module(collections_path, PRUNE, dict({"data_root": engine.data_root, "min_age": "0"}, **args),
                      str(workdir), check_mode=check_mode)


def steps(output: str) -> list:
    """The RUN steps of a plain-progress build, each with CACHED or DONE."""
    found = {}
    for line in output.splitlines():
        parts = line.split(" ", 2)
        if len(parts) >= 2 and parts[0].startswith("#") and "RUN " in line and "] RUN" in line:
            found.setdefault(parts[0], "")
        elif len(parts) >= 2 and parts[0] in found and parts[1] in ("CACHED", "DONE"):
            found[parts[0]] = parts[1]
    return list(found.values())


def test_the_engines_are_the_versions_the_fleet_runs(build_host):
    assert build_host.version.startswith(build_host.expected_version)


def test_with_the_daemon_stopped_the_prune_keeps_the_build_cache_and_the_rebuild_hits_it(
        build_host, collections_path, tmp_path):
    build_host.stop()
    before = store_paths(build_host)
    try:
        planned = prune(build_host, collections_path, tmp_path, check_mode=True)
        result = prune(build_host, collections_path, tmp_path)
    finally:
        build_host.start()
    assert planned["buildkit"]["state"] == result["buildkit"]["state"] == "read"
    assert result["buildkit"]["chains"] == 3 and result["buildkit"]["dirs"] >= 5 and result["buildkit"]["bytes"] > 0
    assert planned["orphans"] == [] and result["orphans"] == [] and result["changed"] is False
    assert store_paths(build_host) == before
    rebuild = build_with_buildkit(build_host, "strata/bk-app:1", BUILD_DOCKERFILE)
    assert steps(rebuild) == ["CACHED"] * 3, rebuild
    build_with_buildkit(build_host, "strata/bk-seen:1", READ_CACHE)
    assert build_host.docker("run", "--rm", "--network", "none", "strata/bk-seen:1", "cat", "/seen.txt") == "cached\n"
    build_host.docker("rmi", "strata/bk-app:1", "strata/bk-seen:1")


def leaked_by_the_engine(engine: Engine, version: str) -> set:
    """On a copy of the data-root, let ``docker builder prune -a`` finish: the overlay2 directories no image
    or container uses that are still there are what the engine itself can no longer remove."""
    copy = make_engine(version)
    shutil.rmtree(copy.data_root, ignore_errors=True)
    subprocess.run(["cp", "-a", engine.data_root, copy.data_root], check=True)
    with copy:
        copy.docker("builder", "prune", "-a", "-f")
        used = copy.referenced_paths()
        copy.stop()
        return {path for path in store_paths(copy) if path.startswith("overlay2/") and path not in used}


def kill_builder_prune(engine: Engine, delay: float) -> None:
    process = subprocess.Popen(engine.docker_command() + ["builder", "prune", "-a", "-f"], env=engine.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    engine.kill()
    process.wait(30)


def test_a_builder_prune_cut_short_loses_only_what_buildkit_no_longer_records(build_host, collections_path, tmp_path):
    """Everything the prune removes is something the engine itself can no longer remove: on a copy of the
    data-root where ``docker builder prune -a`` is let finish, each removed directory is still there. A
    directory that nothing records is planted beside whatever the cut-short prune leaked, so that the test
    always has a leak to find; and the build cache BuildKit still lists stays, and rebuilds from it."""
    for delay in (0.3, 0.15, 0.5, 0.2, 0.4, 0.1):  # the window is a fraction of a second; a miss is retried
        build_with_buildkit(build_host, "strata/bk-wide:1", WIDE_CACHE)
        build_host.docker("rmi", "strata/bk-wide:1")
        kill_builder_prune(build_host, delay)
        build_host.start()
        if not build_host.api("/system/df").get("BuildCache"):
            break  # the prune got far (or all the way): what it leaked, if anything, is on disk now
    planted = "overlay2/leakedbyprune0000000000aa"
    os.makedirs(os.path.join(build_host.data_root, planted, "diff"))
    records = sorted(r["ID"] for r in build_host.api("/system/df").get("BuildCache") or [])
    build_host.stop()
    old = time.time() - 7200
    os.utime(os.path.join(build_host.data_root, planted), (old, old))
    leaked = leaked_by_the_engine(build_host, build_host.expected_version)
    before = store_paths(build_host)
    try:
        result = prune(build_host, collections_path, tmp_path)
    finally:
        build_host.start()
    removed = {os.path.relpath(p, build_host.data_root) for o in result["orphans"] if o["action"] == "removed"
               for p in o["paths"]}
    removed_dirs = {p for p in removed if p.startswith("overlay2/") and not p.startswith("overlay2/l/")}
    summary = [(o["kind"], os.path.relpath(o["path"], build_host.data_root), o["action"], o["reason_code"])
               for o in result["orphans"]]
    print("engine %s: the engine leaves %d directories, the prune removed %s"
          % (build_host.expected_version, len(leaked), sorted(removed_dirs)))
    assert planted in removed_dirs and removed_dirs <= leaked, (summary, sorted(leaked))
    assert store_paths(build_host) == before - removed
    assert sorted(r["ID"] for r in build_host.api("/system/df").get("BuildCache") or []) == records
    rebuild = build_with_buildkit(build_host, "strata/bk-wide:1", WIDE_CACHE)  # what is still cached exports
    assert build_host.docker("run", "--rm", "--network", "none", "strata/bk-wide:1", "cat", "/step29") == "29\n"
    assert "layer does not exist" not in rebuild


# -- damaged records on a real store ------------------------------------------------------------
def truncate(path):
    with open(path, "r+b") as handle:
        handle.truncate(max(os.path.getsize(path) // 2, 1) - 1)


def garbage(path):
    with open(path, "wb") as handle:
        handle.write(b"\x00\xff garbage \xfe")


def invalid_id(path):
    with open(path, "w", encoding="ascii") as handle:
        handle.write("../../../x")


def symlink(path):
    os.unlink(path)
    os.symlink("/etc/hostname", path)


def records(engine: Engine, image: str, container: str) -> dict:
    """One record of each kind, of an image and a container the engine uses."""
    info = engine.inspect(image)[0]
    chain = os.path.join(engine.data_root, LAYERDB, "sha256")
    top = sorted(os.listdir(chain))  # any chain the image uses: its top one
    from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import chain_ids  # pylint: disable=import-outside-toplevel
    top_chain = chain_ids(info["RootFS"]["Layers"])[-1][7:]
    assert top_chain in top
    mount = os.path.join(engine.data_root, LAYERDB, "mounts", container)
    layer = os.path.join(chain, top_chain)
    return {
        "layer cache-id": (os.path.join(layer, "cache-id"), invalid_id),
        "layer parent": (os.path.join(layer, "parent"), truncate),
        "layer diff": (os.path.join(layer, "diff"), garbage),
        "mount-id": (os.path.join(mount, "mount-id"), symlink),
        "init-id": (os.path.join(mount, "init-id"), truncate),
        "mount parent": (os.path.join(mount, "parent"), invalid_id),
        "image config": (os.path.join(engine.data_root, "image/overlay2/imagedb/content/sha256", info["Id"][7:]),
                         garbage),
        "container config": (os.path.join(engine.data_root, "containers", container, "config.v2.json"), truncate),
        "buildkit database": (os.path.join(engine.data_root, "buildkit", "snapshots.db"), truncate),
    }


def plant_leftovers(engine: Engine) -> set:
    """An unreferenced directory and a dangling link, old enough for any gate."""
    name = "%064x" % 7
    directory = os.path.join(engine.data_root, "overlay2", name)
    os.makedirs(os.path.join(directory, "diff"), exist_ok=True)
    link = os.path.join(engine.data_root, "overlay2", "l", "DAMAGEDRECORDTEST" + "A" * 9)
    if not os.path.lexists(link):
        os.symlink("../%s/diff" % ("%064x" % 8), link)
    old = time.time() - 7200
    for path in (directory, os.path.join(directory, "diff")):
        os.utime(path, (old, old))
    os.utime(link, (old, old), follow_symlinks=False)
    return {"overlay2/" + name, "overlay2/l/" + os.path.basename(link)}


def test_a_damaged_record_of_each_kind_blocks_what_it_might_name_and_nothing_in_use_goes(
        build_host, collections_path, tmp_path):
    build_with_buildkit(build_host, "strata/bk-app:1", BUILD_DOCKERFILE)
    container = build_host.docker("create", "--network", "none", "--name", "damaged-target", "strata/bk-app:1",
                                  "cat", "/three.txt").strip()
    used = build_host.referenced_paths()
    cases = records(build_host, "strata/bk-app:1", container)
    build_host.stop()
    failures = []
    try:
        for case, (path, spoil) in sorted(cases.items()):
            saved = tmp_path / "saved"
            shutil.copyfile(path, str(saved), follow_symlinks=False)
            leftovers = plant_leftovers(build_host)
            spoil(path)
            try:
                planned = prune(build_host, collections_path, tmp_path, check_mode=True)
                result = prune(build_host, collections_path, tmp_path)
            finally:
                os.unlink(path)
                shutil.copyfile(str(saved), path)
            gone = {p for p in used if not os.path.lexists(os.path.join(build_host.data_root, p))}
            named = {r["path"] for r in result.get("blocking", [])}
            removed = {os.path.relpath(p, build_host.data_root) for o in result["orphans"]
                       if o["action"] == "removed" for p in o["paths"]}
            if gone or not ({path, os.path.dirname(path)} & named) or "overlay2/l/" + "DAMAGEDRECORDTEST" + "A" * 9 \
                    not in removed or planned.get("failed") or result.get("failed"):
                failures.append((case, gone, named, result.get("msg"), sorted(removed)))
            for kept in result["kept"]:
                assert kept["reason_code"] in ("unknown_owner", "parent_stays"), (case, kept)
            assert leftovers - removed <= {"overlay2/" + "%064x" % 7}
    finally:
        build_host.start()
    assert failures == []
    assert build_host.docker("start", "-a", "damaged-target") == "three\n"
    for image in ("strata/bk-base:1", "strata/bk-app:1"):
        assert build_host.docker("run", "--rm", "--network", "none", image, "cat", "/bin/busybox") != ""
    build_host.docker("rm", "damaged-target")
