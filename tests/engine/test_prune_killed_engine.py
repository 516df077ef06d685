"""A prune killed at any removal call, on stores real engines wrote (issue #28): the next prune finishes it, and
the engine then starts and runs every image.

Each store gets a leftover of every kind the prune removes, made the way a crash leaves it (an image whose
config is gone before its layers were released, a ``-removing`` record of an ``rmi`` cut short, a container
removed before its mount, a directory and a write-set of a pull cut short, a dangling link; on the containerd
store, snapshot directories and ingests no record names). With the daemon stopped, copies of the store are
pruned with the prune killed at its K-th removal call, for every K, then pruned again; then the same is done
on the store itself, at one kill point, and the daemon starts on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._backends.registry import backend_for
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store
from ansible_collections.strata.overlay2.plugins.modules.orphan_layer_prune import main
from devtools.sandbox import ChrootEngine, Engine, build, import_base

from tests.support.engine_leftovers import KEPT, crash_material, plant_containerd, plant_overlay2
from tests.support.killpoints import run_killed_at
from tests.support.module_runner import run_module


def tree(root: str) -> dict:
    found = {}
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(parent, name)
            info = os.lstat(path)
            found[os.path.relpath(path, root)] = (info.st_mode, os.readlink(path) if os.path.islink(path) else
                                                  (info.st_size if not os.path.isdir(path) else 0))
    return found


def prune(root: str) -> dict:
    done = run_module(main, data_root=root, min_age="0")
    assert not done.failed, done.result
    return done.result


def killed_and_finished(root: str, kill_at: int) -> dict:
    killed, _calls = run_killed_at(kill_at, lambda: prune(root))
    assert killed, kill_at
    again = prune(root)
    assert again["blocking"] == [] and again["kept"] == [], (kill_at, again["blocking"], again["kept"])
    return again


def sweep(engine: Engine, work: str) -> None:
    """Every kill point on copies of the stopped store, then one on the store itself; the daemon then starts."""
    template = os.path.join(work, "template")
    subprocess.run(["cp", "-a", engine.data_root, template], check=True)
    whole = os.path.join(work, "whole")
    subprocess.run(["cp", "-a", template, whole], check=True)
    killed, calls = run_killed_at(0, lambda: prune(whole))
    assert not killed and calls > 10
    print("kill points: %d removal calls" % calls)
    expected = tree(whole)
    assert backend_for(load_store(whole)).verify(None, None, True, 1).ok
    for kill_at in range(1, calls + 1):
        copy = os.path.join(work, "k%d" % kill_at)
        subprocess.run(["cp", "-a", template, copy], check=True)
        killed_and_finished(copy, kill_at)
        assert tree(copy) == expected, kill_at
        assert backend_for(load_store(copy)).verify(None, None, True, 1).ok, kill_at
        shutil.rmtree(copy)
    again = killed_and_finished(engine.data_root, calls // 2)
    assert any(orphan["in_progress"] for orphan in again["orphans"])
    assert tree(engine.data_root) == expected


def every_image_runs(engine: Engine, kept_container: str) -> None:
    images = [image["Id"] for image in engine.api("/images/json")]
    assert len(images) >= 2
    for image in images:
        engine.docker("run", "--rm", "--network", "none", image, "true")
    engine.docker("start", kept_container)
    assert engine.inspect(kept_container)[0]["State"]["Running"]
    engine.docker("stop", "-t", "0", kept_container)


def make_store(engine: Engine) -> tuple:
    import_base(engine)
    build(engine, "strata/kept:1", KEPT)
    kept = engine.docker("create", "--network", "none", "--name", "kept", "strata/kept:1", "sleep", "600").strip()
    doomed, gone = crash_material(engine)
    return kept, gone, doomed


def test_overlay2_on_engine_20_10(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("the engine tests start a dockerd and need root")
    with Engine() as engine:
        kept, gone, doomed = make_store(engine)
        engine.stop()
        plant_overlay2(engine, doomed, gone)
        sweep(engine, str(tmp_path))
        engine.start()
        every_image_runs(engine, kept)
        assert "strata/doomed:1" not in json.dumps(engine.api("/images/json"))


def test_the_containerd_store_on_engine_28_5(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("the engine tests start a dockerd and need root")
    from devtools.fleet import suite_root  # pylint: disable=import-outside-toplevel
    with ChrootEngine(suite_root("testing"), containerd_store=True) as engine:
        kept, _gone, _doomed = make_store(engine)
        engine.stop()
        plant_containerd(engine)
        sweep(engine, str(tmp_path))
        engine.start()
        every_image_runs(engine, kept)
