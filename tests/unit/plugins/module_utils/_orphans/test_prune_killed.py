"""A prune killed at any removal call leaves nothing that stops the next one (issue #28).

For every K, a prune over a store with every orphan kind (both stores; deleting, and quarantining on the same
file system and on another) is killed at its K-th removal call; then the prune runs again. Each time: nothing
blocks it, it leaves the store exactly as one uninterrupted prune does, every layer verifies, and what the
quarantines hold is what one uninterrupted prune moves, each orphan in one run, as its manifest says.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._backends.registry import backend_for
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store
from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import REMOVAL_MARK, removing_chain
from ansible_collections.strata.overlay2.plugins.modules.orphan_layer_prune import main

from tests.support.ctdstore import CONTENT, SNAPSHOTTER, SynthStore
from tests.support.killpoints import removal_syscalls, run_killed_at
from tests.support.leftovers import Leftovers
from tests.support.module_runner import run_module
from tests.support.samples import build_sample

LONG_AGO = time.time() - 7 * 86400
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 5))


# -- stores with every kind the prune removes -------------------------------------------------------------
def age(root: str) -> None:
    """Everything written a week ago: old enough for ``min_age: 1h``, so only a resumed removal passes a gate
    that its own half-done work (newer mtimes) would close."""
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            os.utime(os.path.join(parent, name), (LONG_AGO, LONG_AGO), follow_symlinks=False)
    os.utime(root, (LONG_AGO, LONG_AGO))


def overlay2_store(root: str) -> str:
    Leftovers(build_sample(root)).every_kind()
    age(root)
    return root


def containerd_store(root: str) -> str:
    synthetic = SynthStore(root)
    base = synthetic.image("docker.io/library/k:1", [{"bin": None, "bin/k": b"k" * 3000, "etc": None}])
    synthetic.container(synthetic.image("docker.io/library/k:2", [{"srv": None, "srv/a/b": b"ab\n"}], parent=base))
    synthetic.write()
    snapshots = os.path.join(synthetic.ctd_root, SNAPSHOTTER, "snapshots")
    for name in ("9999", "new-17", "rm-18"):  # a crash between mkdir and commit; containerd's own leftovers
        for below in ("fs/usr/lib", "fs/etc", "work/work"):
            os.makedirs(os.path.join(snapshots, name, below))
        with open(os.path.join(snapshots, name, "fs", "usr", "lib", "x.so"), "wb") as handle:
            handle.write(b"x" * 9000)
    for digest in ("ab" * 32, "cd" * 32):
        ingest = os.path.join(synthetic.ctd_root, CONTENT, "ingest", digest)
        os.makedirs(ingest)
        for name, data in (("data", b"d" * 5000), ("ref", b"moby/1/gone"), ("total", b"9")):
            with open(os.path.join(ingest, name), "wb") as handle:
                handle.write(data)
    age(root)
    return root


STORES = {"overlay2": overlay2_store, "containerd": containerd_store}


# -- what a prune leaves ----------------------------------------------------------------------------------
def tree(root: str, skip: Tuple[str, ...] = ()) -> Dict[str, Tuple]:
    """Every path below ``root`` with what it is (not when): the store as a prune leaves it."""
    found: Dict[str, Tuple] = {}
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(parent, name)
            relative = os.path.relpath(path, root)
            if relative in skip:
                continue
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                found[relative] = ("link", os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    found[relative] = ("file", hashlib.sha256(handle.read()).hexdigest(), stat.S_IMODE(info.st_mode))
            else:
                found[relative] = (stat.S_IFMT(info.st_mode), info.st_rdev if not stat.S_ISDIR(info.st_mode) else 0)
    return found


def quarantined(quarantine: str) -> Dict[str, Tuple]:
    """Everything the runs under ``quarantine`` hold, by its path relative to the data-root (not per run)."""
    found: Dict[str, Tuple] = {}
    for run in sorted(os.listdir(quarantine)) if os.path.isdir(quarantine) else []:
        for relative, what in tree(os.path.join(quarantine, run), skip=("journal.jsonl", "manifest.json")).items():
            assert relative not in found or found[relative] == what, "%s is in two runs" % relative
            found[relative] = what
    return found


def assert_manifests_match_the_runs(quarantine: str) -> None:
    """Each run's manifest: complete, every part it lists is there, and nothing is there that it does not list."""
    for run in os.listdir(quarantine):
        path = os.path.join(quarantine, run)
        with open(os.path.join(path, "manifest.json"), encoding="utf-8") as handle:
            manifest = json.load(handle)
        assert manifest["incomplete"] == [], run
        parts = [part for entry in manifest["moved"] for part in entry["parts"]]
        assert all(os.path.lexists(os.path.join(path, part)) for part in parts), run
        held = tree(path, skip=("journal.jsonl", "manifest.json"))
        assert all(any(name == part or name.startswith(part + "/") or part.startswith(name + "/")
                       for part in parts) for name in held), run


def prune(root: str, quarantine: Optional[str]) -> dict:
    args = {"data_root": root, "min_age": "1h"}
    if quarantine:
        args["quarantine_dir"] = quarantine
    done = run_module(main, **args)
    assert not done.failed, done.result
    return done.result


def every_layer_verifies(root: str) -> bool:
    return backend_for(load_store(root)).verify(None, None, True, 1).ok


def copy_of(template: str, target: str) -> str:
    subprocess.run(["cp", "-a", template, target], check=True)  # whiteouts, xattrs and mtimes too
    return target


# -- the sweep ----------------------------------------------------------------------------------------------
CASES = [("overlay2", None), ("overlay2", "same"), ("overlay2", "other"),
         ("containerd", None), ("containerd", "same"), ("containerd", "other")]


@pytest.mark.parametrize("kind,quarantine", CASES, ids=["-".join(filter(None, case)) for case in CASES])
def test_a_prune_killed_at_any_removal_call_is_finished_by_the_next(kind, quarantine, tmp_path):
    work = str(tmp_path)
    template = STORES[kind](os.path.join(work, "template"))
    elsewhere = tempfile.mkdtemp(prefix="strata-killed-", dir="/dev/shm") if quarantine == "other" else work
    try:
        def quarantine_for(name: str) -> Optional[str]:
            return os.path.join(elsewhere, name) if quarantine else None

        whole = copy_of(template, os.path.join(work, "whole"))
        killed, calls = run_killed_at(0, lambda: prune(whole, quarantine_for("q-whole")))
        assert not killed and calls > 10
        print("kill points (%s, %s): %d removal calls" % (kind, quarantine, calls))
        expected, expected_moved = tree(whole), quarantined(quarantine_for("q-whole") or "/nonexistent")
        assert tree(template) != expected and every_layer_verifies(whole)

        resumed = 0
        for kill_at in range(1, calls + 1):
            store, target = os.path.join(work, "k%d" % kill_at), quarantine_for("q%d" % kill_at)
            copy_of(template, store)
            killed, _calls = run_killed_at(kill_at, lambda: prune(store, target))  # pylint: disable=cell-var-from-loop
            assert killed, kill_at
            again = prune(store, target)
            assert again["blocking"] == [] and again["kept"] == [], (kill_at, again["blocking"], again["kept"])
            assert {o["reason_code"] for o in again["orphans"]} <= {"unreferenced", "resumed"}, kill_at
            resumed += sum(1 for o in again["orphans"] if o["in_progress"])
            assert tree(store) == expected, kill_at
            assert every_layer_verifies(store), kill_at
            if target:
                assert quarantined(target) == expected_moved, kill_at
                assert_manifests_match_the_runs(target)
                shutil.rmtree(target)
            shutil.rmtree(store)
        assert resumed >= calls // 3  # most kill points leave a removal in progress, and it is finished
    finally:
        if elsewhere != work:
            shutil.rmtree(elsewhere, ignore_errors=True)


# -- what a kill leaves, one case at a time --------------------------------------------------------------------
def test_a_chain_cut_short_is_left_as_the_engines_own_removing_record_and_the_next_run_finishes_it(tmp_path):
    root = str(tmp_path / "docker")
    leftovers = Leftovers(build_sample(root))
    (layer,) = leftovers.chain()
    age(root)
    killed, _calls = run_killed_at(2, lambda: prune_kinds(root, ["unreferenced_chain"]))  # renamed, one file gone
    assert killed
    records = os.listdir(os.path.join(root, "image", "overlay2", "layerdb", "sha256"))
    (left,) = [name for name in records if name.endswith("-removing")]
    assert removing_chain(left) == layer.chain_id[7:] and left.split("-")[1].startswith(REMOVAL_MARK)
    again = prune_kinds(root, ["unreferenced_chain"])  # a kind not asked for, and changed a moment ago: still goes
    assert [(o["kind"], o["in_progress"], o["reason_code"], o["action"]) for o in again["orphans"]] == [
        ("removing", True, "resumed", "removed")]
    assert not os.path.exists(os.path.join(root, "overlay2", layer.cache_id)) and every_layer_verifies(root)


def prune_kinds(root: str, kinds: List[str]) -> dict:
    done = run_module(main, data_root=root, min_age="1h", kinds=kinds)
    assert not done.failed, done.result
    return done.result


def test_the_engines_own_removing_records_still_wait_for_their_gates(tmp_path):
    """Only this collection's removals are resumed past the gates: the engine's ``-removing`` records (random
    digits) are a kind like the others."""
    root = str(tmp_path / "docker")
    leftovers = Leftovers(build_sample(root))
    leftovers.removing()
    result = prune_kinds(root, ["removing"])  # made just now: too young for min_age 1h
    assert [(o["in_progress"], o["reason_code"]) for o in result["orphans"]] == [(False, "too_young")]


def test_every_removal_system_call_goes_through_the_calls_the_sweep_counts(tmp_path):
    """The sweep kills at the K-th call of os.unlink, rmdir, rename, replace and remove; strace counts the
    same prune's unlink(at), rmdir and rename(at/at2) system calls, threads included: they agree."""
    template = overlay2_store(str(tmp_path / "template"))
    counted_here = copy_of(template, str(tmp_path / "a"))
    _killed, calls = run_killed_at(0, lambda: prune(counted_here, str(tmp_path / "qa")))
    traced = copy_of(template, str(tmp_path / "b"))
    code = ("import sys; sys.path[:0] = %r; from tests.support.module_runner import run_module; "
            "from ansible_collections.strata.overlay2.plugins.modules.orphan_layer_prune import main; "
            "assert not run_module(main, data_root=%r, min_age='1h', quarantine_dir=%r).failed"
            % ([p for p in sys.path if p], traced, str(tmp_path / "qb")))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    assert removal_syscalls(code, env) == calls
