"""orphan_layer_prune against real leftovers: a dockerd killed mid-load and mid-rmi, and planted links.

What the leftovers are is derived from the engine's own view (``docker inspect`` of every image and
container), not from the classifier under test; their bytes from ``du``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import chain_ids
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import classify
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import Gates, decide, execute, running_daemons
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import verify
from devtools.collection import run_module
from devtools.sandbox import DOCKER, Engine, build, build_samples

LAYERDB = "image/overlay2/layerdb"


def big_image_dockerfile(layers: int, megabytes: int) -> str:
    steps = "".join("RUN mkdir -p /big%d && head -c %d /dev/urandom > /big%d/blob && i=0; "
                    "while [ $i -lt 200 ]; do echo $i > /big%d/f$i; i=$((i+1)); done\n"
                    % (n, megabytes << 20, n, n) for n in range(layers))
    return "FROM strata/base:1.0\n" + steps


def count(path):
    try:
        return len(os.listdir(path))
    except OSError:
        return 0


def kill_when(engine: Engine, command, reached, what: str, poll: float) -> None:
    """Run a docker command and SIGKILL dockerd the moment ``reached()`` holds; Missed if it finished first."""
    process = subprocess.Popen([DOCKER] + command, env=engine.env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        while process.poll() is None:
            if reached():
                engine.kill()
                return
            time.sleep(poll)
        raise Missed("the %s finished before it could be cut short" % what)
    finally:
        process.wait(30)


def kill_mid_load(engine: Engine, archive: str) -> None:
    """SIGKILL dockerd once two layers of the load are committed and the next is being extracted."""
    sha = os.path.join(engine.data_root, LAYERDB, "sha256")
    tmp = os.path.join(engine.data_root, LAYERDB, "tmp")
    before = count(sha)
    kill_when(engine, ["load", "-i", archive], lambda: count(sha) - before >= 2 and count(tmp) > 0, "load", 0.005)


def kill_mid_rmi(engine: Engine, image: str) -> None:
    """SIGKILL dockerd while a layer of the image is being removed (its layerdb dir renamed *-removing)."""
    sha = os.path.join(engine.data_root, LAYERDB, "sha256")
    kill_when(engine, ["rmi", image], lambda: any(name.endswith("-removing") for name in os.listdir(sha)),
              "rmi", 0.002)


MANY_FILES = ("FROM strata/base:1.0\nRUN mkdir /many && cd /many && i=0; "
              "while [ $i -lt 20000 ]; do echo $i > f$i; i=$((i+1)); done\n")


class Missed(Exception):
    """The operation finished before dockerd could be killed in the middle of it."""


def cut_short(engine: Engine, kill) -> bool:
    """Run a kill-in-the-middle; True (and the engine restarted) when it hit, False when the window was missed."""
    try:
        kill()
    except Missed:
        return False
    engine.start()
    return True


def on_disk(engine: Engine) -> set:
    root = engine.data_root
    paths = set()
    for name in os.listdir(os.path.join(root, "overlay2")):
        if name != "l" and len(name.split("-", maxsplit=1)[0]) != 25:  # BuildKit's own dirs are not ours to judge
            paths.add("overlay2/" + name)
    for part in ("sha256", "tmp", "mounts"):
        paths.update("%s/%s/%s" % (LAYERDB, part, name) for name in os.listdir(os.path.join(root, LAYERDB, part)))
    return paths


def leftovers(engine: Engine) -> set:
    """What the engine does not reference, plus l/ links whose directory is gone or unreferenced."""
    referenced = engine.referenced_paths()
    parents = set()
    for path in referenced:  # a referenced chain's ancestors are referenced too
        if path.startswith(LAYERDB + "/sha256/"):
            current = os.path.join(engine.data_root, path)
            while os.path.exists(os.path.join(current, "parent")):
                parent = open(os.path.join(current, "parent"), encoding="ascii").read()[7:]
                parents.add(LAYERDB + "/sha256/" + parent)
                current = os.path.join(engine.data_root, LAYERDB, "sha256", parent)
    found = on_disk(engine) - referenced - parents
    links = os.path.join(engine.data_root, "overlay2", "l")
    for link in os.listdir(links):
        target = os.readlink(os.path.join(links, link)).split("/")[1]
        if "overlay2/" + target in found or not os.path.isdir(os.path.join(engine.data_root, "overlay2", target)):
            found.add("overlay2/l/" + link)
    return found


def du_bytes(root: str, paths) -> int:
    output = subprocess.run(["du", "-s", "-B1", "-c", "--"] + [os.path.join(root, p) for p in sorted(paths)],
                            capture_output=True, text=True, check=True).stdout
    return int(output.strip().splitlines()[-1].split()[0])


@pytest.fixture(scope="module")
def faulty():
    """A busy store, then real leftovers: dockerd killed mid-load and mid-rmi, and dangling links."""
    with Engine() as engine:
        build_samples(engine)
        build(engine, "strata/big:1", big_image_dockerfile(4, 60))
        build(engine, "strata/many:1", MANY_FILES)
        archive = os.path.join(engine.base, "big.tar")
        engine.docker("save", "-o", archive, "strata/big:1")
        engine.docker("rmi", "strata/big:1")
        engine.docker("stop", "-t", "0", "running-a", "running-c")  # no container processes outlive a SIGKILL
        for _attempt in range(3):  # the window is a few seconds wide; a miss is retried, not failed
            if cut_short(engine, lambda: kill_mid_load(engine, archive)):
                break
            engine.docker("rmi", "strata/big:1")
        else:
            raise AssertionError("three loads finished before they could be cut short")
        for _attempt in range(3):
            if cut_short(engine, lambda: kill_mid_rmi(engine, "strata/many:1")):
                break
            build(engine, "strata/many:1", MANY_FILES)
        else:
            raise AssertionError("three removals finished before they could be cut short")
        for number in range(2):  # links left by an earlier daemon: older than this one's start
            link = os.path.join(engine.data_root, "overlay2", "l", "DANGLINGLINK%dAAAAAAAAAAAAA" % (number + 2))
            os.symlink("../%s/diff" % ("%064x" % number), link)
            os.utime(link, (time.time() - 3600,) * 2, follow_symlinks=False)
        engine.docker("start", "running-a", "running-c")
        engine.expected = leftovers(engine)
        yield engine
        engine.docker("stop", "-t", "0", *engine.container_ids(), check=False)


def test_the_faults_left_every_kind_of_leftover(faulty):
    kinds = {orphan.kind for orphan in classify(Overlay2Store.load(faulty.data_root)).orphans}
    assert {"unreferenced_chain", "write_set", "removing", "dangling_link"} <= kinds
    assert len(faulty.expected) >= 6


def test_check_mode_under_the_running_daemon_reports_and_keeps_everything(faulty, collections_path, tmp_path):
    before = on_disk(faulty)
    result = run_module(collections_path, "strata.overlay2.orphan_layer_prune",
                        {"data_root": faulty.data_root, "min_age": "0"}, str(tmp_path), check_mode=True)
    assert result["changed"] is True and result["reclaimed_bytes"] == 0  # check mode predicts the change
    assert result["daemon"]["pid"] == faulty.process.pid
    chains = [o for o in result["orphans"] if o["kind"] == "unreferenced_chain"]
    assert chains and {o["reason_code"] for o in chains} <= {"daemon_holds", "in_flight"}
    assert all("dockerd (pid %d)" % faulty.process.pid in o["reason"] for o in chains)
    assert {o["action"] for o in result["orphans"] if o["kind"] == "dangling_link"} == {"would_remove"}
    assert result["diff"]["before"] and on_disk(faulty) == before
    assert result["buildkit"]["state"] == "read" and result["buildkit"]["dirs"] > 0 and result["blocking"] == []
    # What stays is listed as kept; Ansible would read a key named "skipped" as a skipped task.
    assert {o["path"] for o in result["kept"]} == {o["path"] for o in result["orphans"] if o["action"] == "skipped"}
    assert result["kept"] and "skipped" not in result


def test_with_the_daemon_stopped_the_prune_reclaims_exactly_the_leftovers(faulty, collections_path, tmp_path):
    faulty.docker("stop", "-t", "0", "running-a", "running-c")
    faulty.stop(signal.SIGTERM)
    try:
        assert running_daemons(faulty.data_root) == []
        # a clean shutdown finishes cut-short deletions itself (*-removing): count what is still there
        present = {path for path in faulty.expected if os.path.lexists(os.path.join(faulty.data_root, path))}
        expected_bytes = du_bytes(faulty.data_root, present)
        result = run_module(collections_path, "strata.overlay2.orphan_layer_prune",
                            {"data_root": faulty.data_root, "min_age": "0"}, str(tmp_path))
    finally:
        faulty.start()
    assert result["changed"] is True and result["kept"] == []
    removed = {os.path.relpath(path, faulty.data_root) for o in result["orphans"] for path in o["paths"]}
    assert removed == present
    assert result["reclaimed_bytes"] == expected_bytes > 100 << 20
    assert {"unreferenced_chain", "unreferenced_dir", "dangling_link"} <= {o["kind"] for o in result["orphans"]}
    assert not any(os.path.lexists(os.path.join(faulty.data_root, p)) for p in faulty.expected)


def test_every_image_still_runs_and_saves_and_every_container_starts(faulty):
    assert verify(Overlay2Store.load(faulty.data_root)).ok
    for image_id in faulty.image_ids():
        assert faulty.run_docker("save", image_id).returncode == 0
    for tag in ("strata/base:1.0", "strata/app-a:1.0", "strata/app-b:1.0", "strata/app-c:1.0", "strata/app-d:1.0"):
        assert faulty.docker("run", "--rm", "--network", "none", tag, "cat", "/etc/os-release").startswith("NAME=")
    for container in faulty.container_ids():
        faulty.docker("start", container)
    states = [c["State"]["Status"] for c in faulty.inspect(*faulty.container_ids())]
    assert states.count("running") >= 2 and "dead" not in states


def test_a_buildkit_rebuild_still_hits_its_cache(faulty):
    from devtools.sandbox import SAMPLE_IMAGES
    dockerfile, files = SAMPLE_IMAGES["strata/app-c:1.0"][:2]
    context = os.path.join(faulty.base, "rebuild")
    os.makedirs(context)
    with open(os.path.join(context, "Dockerfile"), "w", encoding="utf-8") as handle:
        handle.write(dockerfile)
    for name, content in files.items():
        with open(os.path.join(context, name), "wb") as handle:
            handle.write(content)
    result = subprocess.run([DOCKER, "build", "--network", "none", "--progress", "plain", "-t", "strata/app-c:1.0",
                             context], env=dict(faulty.env, DOCKER_BUILDKIT="1"), capture_output=True, text=True,
                            check=True)
    assert result.stderr.count("CACHED") >= 3, result.stderr


def test_a_second_run_finds_nothing(faulty, collections_path, tmp_path):
    result = run_module(collections_path, "strata.overlay2.orphan_layer_prune",
                        {"data_root": faulty.data_root, "min_age": "0"}, str(tmp_path))
    assert result["changed"] is False and result["orphans"] == [], result["orphans"]


def test_a_prune_while_the_engine_loads_and_builds_loses_nothing(faulty):
    archive = os.path.join(faulty.base, "big.tar")
    errors = []
    done = threading.Event()

    def churn():
        try:
            for round_number in range(3):
                faulty.docker("load", "-i", archive)
                build(faulty, "strata/churn:%d" % round_number,
                      "FROM strata/big:1\nRUN echo %d > /churn && head -c 3000000 /dev/urandom > /noise\n" % round_number,
                      buildkit=bool(round_number % 2))
                faulty.docker("rmi", "strata/big:1")
        except Exception as exc:  # pylint: disable=broad-except
            errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=churn)
    worker.start()
    prunes = 0
    while not done.is_set():
        store = Overlay2Store.load(faulty.data_root)
        daemons = running_daemons(faulty.data_root)
        gates = Gates(kinds=("unreferenced_dir", "unreferenced_chain", "removing", "write_set", "dangling_link",
                             "stale_mount"), min_age=0, now=time.time(), daemon=daemons[0] if daemons else None,
                      layer_dirs=len(store.dirs))
        execute(store.data_root, decide(classify(store).orphans, gates, False, False))
        prunes += 1
    worker.join()
    assert errors == [] and prunes >= 3
    assert verify(Overlay2Store.load(faulty.data_root)).ok
    for round_number in range(3):
        assert faulty.docker("run", "--rm", "--network", "none", "strata/churn:%d" % round_number,
                             "cat", "/churn").strip() == str(round_number)


def test_an_edited_image_config_keeps_its_layers_and_putting_it_back_restores_the_image(
        faulty, collections_path, tmp_path):
    """An image config edited on disk (its top layer no longer listed) hashes to another id: the engine refuses
    it at start, and the prune keeps every chain, the one no longer listed too; with the original bytes put
    back, the engine has the whole image again."""
    tag = "strata/edited:1"
    build(faulty, tag, "FROM strata/base:1.0\nRUN echo edited > /edited.txt\n")  # no BuildKit: no other owner
    image = faulty.inspect(tag)[0]
    top = chain_ids(image["RootFS"]["Layers"])[-1]
    config = os.path.join(faulty.data_root, "image/overlay2/imagedb/content/sha256", image["Id"][7:])
    layer = os.path.join(faulty.data_root, LAYERDB, "sha256", top[7:])
    with open(os.path.join(layer, "cache-id"), encoding="utf-8") as handle:
        top_dir = os.path.join(faulty.data_root, "overlay2", handle.read())
    with open(config, "rb") as handle:
        original = handle.read()
    edited = json.loads(original)
    edited["rootfs"]["diff_ids"] = edited["rootfs"]["diff_ids"][:-1]
    faulty.docker("stop", "-t", "0", *faulty.container_ids(), check=False)
    faulty.stop(signal.SIGTERM)
    try:
        with open(config, "w", encoding="utf-8") as handle:
            json.dump(edited, handle)
        result = run_module(collections_path, "strata.overlay2.orphan_layer_prune",
                            {"data_root": faulty.data_root, "min_age": "0"}, str(tmp_path))
        faulty.start()
        refused = faulty.run_docker("image", "inspect", tag)
        faulty.stop(signal.SIGTERM)
    finally:
        with open(config, "wb") as handle:
            handle.write(original)
        if faulty.process is None:  # stopped above and not started again
            faulty.start()
    assert refused.returncode != 0  # the engine does not take an edited config for the image
    assert [(r["code"], r["path"]) for r in result["blocking"]] == [("image_config", config)]
    kept = {o["path"]: o for o in result["kept"]}
    assert kept[layer]["reason_code"] == "unknown_owner" and kept[layer]["blocked_by"] == [config]
    assert os.path.isdir(layer) and os.path.isdir(top_dir)
    assert faulty.docker("run", "--rm", "--network", "none", tag, "cat", "/edited.txt").strip() == "edited"
    assert verify(Overlay2Store.load(faulty.data_root)).ok
