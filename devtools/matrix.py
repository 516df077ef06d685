#!/usr/bin/env python
"""The support matrix: every ansible-core the collection claims, with the Pythons each runs on and drives.

    devtools/matrix.py venv  [CORE...]   one virtualenv per core under .venvs/ (made once, then reused)
    devtools/matrix.py sanity [CORE...]  ansible-test sanity with that core (devtools/sanity.sh)
    devtools/matrix.py unit  [CORE...]   the unit tests with that core: those an ansible-core can change (the
                                         modules' main, filters, plugin_utils) on every core, the others once
                                         per controller Python not run yet (module_utils never imports ansible)
    devtools/matrix.py smoke [CORE...]   the four modules on a store with one leftover of each kind, on every
                                         target Python of every core; the JSON must be the same everywhere
    devtools/matrix.py legs              print the matrix (README's table comes from here)

The development virtualenv (.venv, the newest core) runs everything else; these legs are the older cores.
Interpreters are found by devtools/pythons.py (PATH, then pyenv).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from devtools.pythons import find  # noqa: E402  pylint: disable=wrong-import-position
from devtools.results import normalized  # noqa: E402  pylint: disable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENVS = os.path.join(REPO, ".venvs")

# core -> (controller Python of the leg, the target Pythons it is tested with, the target range it supports)
LEGS: Dict[str, Tuple[str, Tuple[str, ...], Tuple[str, str]]] = {
    "2.17": ("3.12", ("3.8", "3.11", "3.12"), ("3.7", "3.12")),
    "2.18": ("3.12", ("3.8", "3.11", "3.13"), ("3.8", "3.13")),
    "2.19": ("3.11", ("3.8", "3.11", "3.13"), ("3.8", "3.13")),
    "2.20": ("3.13", ("3.9", "3.11", "3.13"), ("3.9", "3.14")),
    "2.21": ("3.13", ("3.9", "3.11", "3.13"), ("3.9", "3.14")),
}
# the coming core, tested before its release: sanity and the unit tests (not part of the support claim yet)
NEXT: Dict[str, Tuple[str, Tuple[str, ...], Tuple[str, str]]] = {
    "2.22": ("3.13", ("3.9", "3.11", "3.13"), ("3.9", "3.14")),
}
PINS = {"2.22": "ansible-core==2.22.0rc1"}  # a release candidate is taken only when named
NEWEST = "2.21"  # the development virtualenv's core (requirements-dev.txt)
DEVELOPMENT_PYTHON = LEGS[NEWEST][0]  # make unit runs every unit test there
# the unit tests whose outcome an ansible-core can change: the rest run once per controller Python
CORE_DEPENDENT_TESTS = ("tests/unit/plugins/modules", "tests/unit/plugins/filter", "tests/unit/plugins/plugin_utils",
                        "tests/unit/plugins/module_utils/_facts/test_drift.py")
UNIT_PACKAGES = ("pytest>=8,<9", "hypothesis>=6,<7")


def venv_of(core: str) -> str:
    return os.path.join(REPO, ".venv") if core == NEWEST else os.path.join(VENVS, "core-" + core)


def interpreter(version: str) -> str:
    found = find(version)
    if found is None:
        raise SystemExit("python%s not found (PATH or pyenv): the %s leg needs it" % (version, version))
    return found


def leg(core: str) -> Tuple[str, Tuple[str, ...], Tuple[str, str]]:
    return LEGS[core] if core in LEGS else NEXT[core]


def ensure_venv(core: str) -> str:
    """The leg's virtualenv with ansible-core CORE and the unit tests' packages; made once."""
    venv = venv_of(core)
    marker = os.path.join(venv, ".strata-core-" + core)
    if os.path.exists(marker):
        index_only_requirements(venv)
        return venv
    if core == NEWEST:
        raise SystemExit("%s is the development virtualenv: make venv makes it" % venv)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([interpreter(leg(core)[0]), "-m", "venv", venv], check=True)
    subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    PINS.get(core, "ansible-core==%s.*" % core)] + list(UNIT_PACKAGES), check=True)
    index_only_requirements(venv)
    with open(marker, "w", encoding="ascii"):
        pass
    return venv


def index_only_requirements(venv: str) -> None:
    """A sanity test's requirement that ansible-test pins to an archive outside the package index (2.22.0rc1
    takes pylint's ``dill`` from a GitHub snapshot) is taken from the index instead: this machine reaches the
    index only. The released cores pin nothing of the kind."""
    pattern = os.path.join(venv, "lib", "python*", "site-packages", "ansible_test", "_data", "requirements", "*.txt")
    for path in glob.glob(pattern):
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
        rewritten = [line.split(" @ ", 1)[0] if re.match(r"^[A-Za-z0-9_.-]+ @ https?://", line) else line
                     for line in lines]
        if rewritten != lines:
            print("matrix: %s takes %s from the package index" % (
                os.path.basename(path), ", ".join(l for l, o in zip(rewritten, lines) if l != o)), flush=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write("\n".join(rewritten))


def core_version(venv: str) -> str:
    return subprocess.run([os.path.join(venv, "bin", "python"), "-c",
                           "from ansible.release import __version__; print(__version__)"],
                          capture_output=True, text=True, check=True).stdout.strip()


def supported_targets(core: str) -> List[str]:
    """The target Pythons of a leg that this machine has."""
    return [version for version in LEGS[core][1] if find(version)]


# -- legs ------------------------------------------------------------------------------------------
Outcome = TypeVar("Outcome")
Leg = Tuple[str, Callable[[], Outcome]]  # what is run: its name, and what runs it


class LegFailed(Exception):
    """A leg that did not pass: its message says what it printed."""


def side_by_side(what: str, legs: Sequence[Leg]) -> List[Outcome]:
    """Each leg's outcome, in order, the legs run as many at once as there are CPUs (each leg runs one process
    at a time: pytest, pylint, ansible-playbook, ...). Every leg runs, whatever the others do; SystemExit names
    those that failed, after each one's message was printed."""
    width = max(1, min(len(os.sched_getaffinity(0)), len(legs)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=width) as pool:
        futures = [pool.submit(run) for _name, run in legs]
        failed: List[str] = []
        for (name, _run), future in zip(legs, futures):
            try:
                future.result()
            except (LegFailed, SystemExit) as exc:
                print("---- %s %s: FAILED ----\n%s" % (what, name, exc), flush=True)
                failed.append(name)
    if failed:
        raise SystemExit("%s failed: %s" % (what, ", ".join(failed)))
    return [future.result() for future in futures]


def command_leg(what: str, name: str, command: List[str], env: Dict[str, str]) -> Leg:
    """A leg that runs ``command`` from the repository; its output is printed whole when it passes, and is the
    failure's message when it does not."""
    def run() -> None:
        result = subprocess.run(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, check=False)
        if result.returncode != 0:
            raise LegFailed("exit status %d\n%s" % (result.returncode, result.stdout))
        print("---- %s %s: ok ----\n%s" % (what, name, result.stdout), flush=True)
    return name, run


def run_sanity(cores: List[str]) -> None:
    """Each core's sanity leg (devtools/sanity.sh: its own copy of the tree, its own ansible-test home), the
    legs side by side; the virtualenvs are made first, one at a time."""
    legs: List[Leg] = []
    for core in cores:
        venv = ensure_venv(core)
        controller = leg(core)[0]
        targets = " ".join(v for v in leg(core)[1] if v not in (controller, "3.11"))
        legs.append(command_leg("sanity", "with ansible-core %s" % core, [os.path.join(REPO, "devtools", "sanity.sh")],
                                dict(os.environ, VENV=venv, SANITY_PYTHON=controller, SANITY_TARGETS=targets)))
    side_by_side("sanity", legs)


def run_unit(cores: List[str]) -> None:
    """Each core's unit tests: all of them on a controller Python not run yet (the development one ran them
    all in ``make unit``), else those an ansible-core can change; the cores side by side, each pytest with a
    temporary directory of its own. The virtualenvs are made first, one at a time."""
    pythons_run = {DEVELOPMENT_PYTHON}
    legs: List[Leg] = []
    work = tempfile.mkdtemp(prefix="strata-matrix-unit-")
    try:
        for core in cores:
            venv = ensure_venv(core)
            controller = leg(core)[0]
            paths = [os.path.join(REPO, "tests", "unit")] if controller not in pythons_run else \
                [os.path.join(REPO, path) for path in CORE_DEPENDENT_TESTS]
            pythons_run.add(controller)
            which = "every test" if len(paths) == 1 else "the core-dependent tests"
            legs.append(command_leg("unit:", "ansible-core %s on Python %s: %s" % (core_version(venv), controller, which),
                                    [os.path.join(venv, "bin", "python"), "-m", "pytest", "-p", "no:cacheprovider",
                                     "-q", "--basetemp", os.path.join(work, core)] + paths, dict(os.environ)))
        side_by_side("unit:", legs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


SMOKE_PLAYBOOK = os.path.join(REPO, "tests", "smoke", "smoke.yml")
VOLATILE = {"seconds", "newest_mtime", "invocation", "started_at", "_ansible_no_log", "_ansible_verbose_always",
            "deprecations", "quarantine"}


def smoke_once(core: str, target: str, store: str, workdir: str) -> Dict[str, Any]:
    """The smoke playbook with CORE's controller against a copy of ``store``, modules on Python ``target``."""
    venv = venv_of(core)
    root = os.path.join(workdir, "store")
    shutil.rmtree(root, ignore_errors=True)
    subprocess.run(["cp", "-a", store, root], check=True)
    collections = os.path.join(REPO, "build")
    output = os.path.join(workdir, "result.json")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    env.pop("PYTHONPATH", None)
    result = subprocess.run([os.path.join(venv, "bin", "ansible-playbook"), SMOKE_PLAYBOOK, "-i", "localhost,",
                             "-c", "local", "-e", json.dumps({"ansible_python_interpreter": interpreter(target),
                                                              "smoke_root": root, "smoke_output": output})],
                            env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LegFailed("smoke %s/%s failed:\n%s\n%s" % (core, target, result.stdout[-3000:], result.stderr[-2000:]))
    with open(output, encoding="utf-8") as handle:
        return normalized(json.load(handle), root, VOLATILE)


def make_smoke_store(path: str) -> str:
    """The sample store with one leftover of each kind (see tests/smoke/store.py)."""
    subprocess.run([os.path.join(venv_of(NEWEST), "bin", "python"), os.path.join(REPO, "tests", "smoke", "store.py"),
                    path], check=True)
    return path


def run_smoke(cores: List[str], report: Optional[str] = None) -> Dict[str, Any]:
    link = os.path.join(REPO, "build", "ansible_collections", "strata", "overlay2")
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(REPO, link)
    work = tempfile.mkdtemp(prefix="strata-smoke-")
    try:
        store = make_smoke_store(os.path.join(work, "reference"))
        pairs: List[Tuple[str, str]] = []
        for core in cores:
            if core != NEWEST:
                ensure_venv(core)
            pairs.extend((core, target) for target in supported_targets(core))

        def smoke(pair: Tuple[str, str]) -> Leg:
            """One pair, in a directory of its own (its copy of the store, its result)."""
            core, target = pair

            def run() -> Dict[str, Any]:
                workdir = os.path.join(work, "%s-%s" % pair)
                os.mkdir(workdir)
                result = smoke_once(core, target, store, workdir)
                print("smoke: ansible-core %s (%s) -> Python %s: ok" % (core_version(venv_of(core)), LEGS[core][0],
                                                                        target), flush=True)
                return result
            return "%s/%s" % pair, run

        results: Dict[Tuple[str, str], Any] = dict(zip(pairs, side_by_side("smoke", [smoke(pair) for pair in pairs])))
        first_pair, first = next(iter(results.items()))
        differing = [pair for pair, value in results.items() if value != first]
        summary = {"pairs": ["%s/%s" % pair for pair in results], "same_json": not differing,
                   "reference": "%s/%s" % first_pair}
        if report:
            with open(report, "w", encoding="utf-8") as handle:
                json.dump({"summary": summary, "result": first}, handle, indent=1, sort_keys=True)
        if differing:
            pair = differing[0]
            raise SystemExit("smoke results differ: %s/%s vs %s/%s:\n%s\n---\n%s" % (
                first_pair + pair + (json.dumps(first, sort_keys=True)[:3000],
                                     json.dumps(results[pair], sort_keys=True)[:3000])))
        return summary
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("action", choices=("venv", "sanity", "unit", "smoke", "legs"))
    parser.add_argument("cores", nargs="*")
    parser.add_argument("--report", help="smoke: write the reference result and the pairs here")
    args = parser.parse_args()
    cores = args.cores or sorted(LEGS)
    unknown = [core for core in cores if core not in LEGS and core not in NEXT]
    if unknown:
        parser.error("unknown ansible-core %s; the matrix has %s" % (", ".join(unknown), ", ".join(sorted(LEGS) + sorted(NEXT))))
    if args.action == "smoke" and any(core in NEXT for core in cores):
        parser.error("the smoke test runs on the supported cores only (%s)" % ", ".join(sorted(LEGS)))
    if args.action == "legs":
        for core in sorted(LEGS) + sorted(NEXT):
            controller, targets, (oldest, newest) = leg(core)
            print("ansible-core %s%s: controller Python %s; targets %s to %s, tested on %s"
                  % (core, " (%s, sanity and unit tests)" % PINS[core] if core in NEXT else "", controller, oldest,
                     newest, ", ".join(targets)))
    elif args.action == "venv":
        for core in cores:
            print(ensure_venv(core))
    elif args.action == "sanity":
        run_sanity(cores)
    elif args.action == "unit":
        run_unit(cores)
    else:
        print(json.dumps(run_smoke(cores, args.report), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
