#!/usr/bin/env python
"""Where the facts core's time goes on a large synthetic store: phases, system calls and Python work.

Generates the store of ``benchmarks/run`` (tests/support/synthstore.generate, 10,000 layers by default) and reports:
  - the wall time of each phase of one facts run as the module runs it (the store read by as many processes
    as there are CPUs), medians of --repeat runs;
  - a profile of the same run in one process (cProfile): the calls into the kernel by kind with their count
    and time, id validation (regular expressions), JSON, and the rest, as shares of the profiled time;
  - the floor: the same opens, reads, closes and readlinks of the layer database, the overlay2 directories and
    their links in a bare loop, in one process, without building anything (what reading these files costs on
    this machine before any Python work); and beside it, what an index of those files would still pay to be
    trusted (each file checked unchanged by one lstat instead of being read);
  - on a containerd image store of the same size (tests/support/ctdstore.generate), the wall time of each phase of
    one facts run in one process (the databases, the blobs, the shaping, the orphans), and the facts core as
    the module runs it.
Writes benchmarks/results/profile.md and profile.json.

    .venv/bin/python benchmarks/where_time_goes.py [--layers 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, Iterable, Iterator, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from ansible_collections.strata.overlay2.plugins.module_utils._store import containerd as _containerd  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._facts import gather as _facts  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._util import parallel as _parallel  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._store import overlay2 as _store  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.containerd import classify as classify_containerd  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store  # noqa: E402  pylint: disable=wrong-import-position
from tests.support.ctdstore import generate as generate_containerd  # noqa: E402  pylint: disable=wrong-import-position
from tests.support.synthstore import generate  # noqa: E402  pylint: disable=wrong-import-position
from devtools.timing import median_seconds  # noqa: E402  pylint: disable=wrong-import-position

RESULTS = os.path.join(REPO, "benchmarks", "results")
PHASES = {  # loader method -> what it reads
    "read_records": "read: image configs, layer records, overlay2 directories and links (shared out)",
    "load_image_parents": "read: image parents",
    "load_tags": "read: tags",
    "load_mounts": "read: container mounts",
    "load_containers": "read: container configs",
    "load_buildkit": "read: BuildKit's databases",
}
CONTAINERD_PHASES = {  # reader method -> what it reads
    "read_meta": "read: containerd's meta.db (namespaces, images, blobs, snapshots, leases)",
    "read_backend": "read: the snapshotter's metadata.db",
    "list_files": "list: blob, ingest and snapshot directories (after the databases)",
    "load_images": "read: index, manifest and config blobs; images and layers built",
    "load_containers": "read: container configs",
}
BUILTIN_POSIX = "<built-in method posix."
SYSCALLS = ("open", "read", "close", "readlink", "lstat", "fstat", "stat", "scandir", "listdir", "readv", "fork",
            "waitpid", "pipe", "write")


@contextlib.contextmanager
def timing(cls: type, names: Iterable[str], samples: Dict[str, List[float]]) -> Iterator[None]:
    """Each named method of ``cls`` appends its wall seconds to ``samples[name]`` while the block runs."""
    originals = {name: getattr(cls, name) for name in names}

    def timed(name: str, method: Callable) -> Callable:
        def run(self, *args, **kwargs):
            started = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                samples.setdefault(name, []).append(time.perf_counter() - started)
        return run

    try:
        for name, method in originals.items():
            setattr(cls, name, timed(name, method))
        yield
    finally:
        for name, method in originals.items():
            setattr(cls, name, method)


@contextlib.contextmanager
def one_process() -> Iterator[None]:
    workers = _parallel.MAX_WORKERS
    _parallel.MAX_WORKERS = 1
    try:
        yield
    finally:
        _parallel.MAX_WORKERS = workers


def phase_times(root: str, repeat: int) -> Dict[str, float]:
    """Median wall seconds of each loader phase, and of the facts' joins and shaping, in one facts run."""
    samples: Dict[str, List[float]] = {}
    with timing(_store._Loader, PHASES, samples):  # pylint: disable=protected-access
        _facts.gather(_store.Overlay2Store.load(root))
        samples.clear()
        for _attempt in range(repeat):
            started = time.perf_counter()
            store = _store.Overlay2Store.load(root)
            loaded = time.perf_counter()
            _facts.gather(store)
            done = time.perf_counter()
            samples.setdefault("load (all phases)", []).append(loaded - started)
            samples.setdefault("joins, shaping and orphans", []).append(done - loaded)
            samples.setdefault("facts core", []).append(done - started)
            del store
            gc.collect()
    per_run = {PHASES.get(name, name): values[-repeat:] for name, values in samples.items()}
    medians = {name: statistics.median(values) for name, values in per_run.items()}
    with one_process():
        medians["load in one process (for comparison)"] = median_seconds(lambda: _store.Overlay2Store.load(root), repeat)
    return medians


def containerd_phase_times(root: str, repeat: int) -> Dict[str, float]:
    """Median wall seconds of each phase of one facts run on a containerd store, in one process (so that the
    phases add up), and of the facts core as the module runs it (meta.db's content records and the orphans in a
    second process), the two runs taken in turn so that both meet the same machine."""
    samples: Dict[str, List[float]] = {}
    as_module = "facts core as the module runs it (%d CPUs)" % _parallel.available_cpus()
    for _attempt in range(repeat + 1):
        gc.collect()  # each run starts with the last one's store gone, so that both meet the same heap
        with one_process(), timing(_containerd.ContainerdReader, CONTAINERD_PHASES, samples):
            started = time.perf_counter()
            store = load_store(root)
            loaded = time.perf_counter()
            _facts.gather(store, orphans=False)
            shaped = time.perf_counter()
            classify_containerd(store)
            done = time.perf_counter()
        del store
        gc.collect()
        samples.setdefault("load (all phases)", []).append(loaded - started)
        samples.setdefault("shaping: images, layers, containers, sizes", []).append(shaped - loaded)
        samples.setdefault("orphan classification", []).append(done - shaped)
        samples.setdefault("facts core in one process", []).append(done - started)
        started = time.perf_counter()
        _facts.gather(load_store(root))
        samples.setdefault(as_module, []).append(time.perf_counter() - started)
    return {CONTAINERD_PHASES.get(name, name): statistics.median(values[-repeat:]) for name, values in samples.items()}


FLAGS_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FLAGS_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _read_bare(dir_fd: int, name: str) -> None:
    try:
        fd = os.open(name, FLAGS_FILE, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    try:
        os.read(fd, 8192)
    finally:
        os.close(fd)


def _lstat_bare(dir_fd: int, name: str) -> None:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return


def floor(root: str, per_file: Callable[[int, str], None] = _read_bare,
          per_link: Callable[[int, str], object] = lambda fd, name: os.readlink(name, dir_fd=fd)) -> None:
    """The metadata files the loader reads, read in a bare loop (no validation, no model); with ``per_file`` and
    ``per_link`` given, what else is done to each file and link instead of reading it."""
    for part, names, has_links in (("image/overlay2/layerdb/sha256", ("diff", "cache-id", "size", "parent"), False),
                                   ("overlay2", ("link", "lower"), True)):
        parent = os.open(os.path.join(root, part), FLAGS_DIR)
        try:
            for entry in os.scandir(parent):
                if entry.name == "l" or not entry.is_dir(follow_symlinks=False):
                    continue
                fd = os.open(entry.name, FLAGS_DIR, dir_fd=parent)
                for name in names:
                    per_file(fd, name)
                os.close(fd)
            if has_links:
                links = os.open("l", FLAGS_DIR, dir_fd=parent)
                for entry in os.scandir(links):
                    per_link(links, entry.name)
                os.close(links)
        finally:
            os.close(parent)


def index_floor(root: str) -> None:
    """What an index of those files, checked file by file before it is trusted, would still cost: the same
    directories opened, and one lstat of each file and link instead of reading it (loading the index, and
    anything built from it, not counted)."""
    floor(root, _lstat_bare, _lstat_bare)


def profile(root: str) -> Dict[str, Dict[str, float]]:
    """One facts run in one process under cProfile: time and calls by kind."""
    with one_process():
        profiler = cProfile.Profile()
        profiler.enable()
        _facts.gather(_store.Overlay2Store.load(root))
        profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in stats.values())  # tottime of every function: the profiled run
    kinds: Dict[str, Dict[str, float]] = {}

    def add(kind: str, calls: int, seconds: float) -> None:
        entry = kinds.setdefault(kind, {"calls": 0, "seconds": 0.0})
        entry["calls"] += calls
        entry["seconds"] += seconds

    for (filename, _line, function), (_primitive, calls, own, _cumulative, _callers) in stats.items():
        if filename == "~" and function.startswith(BUILTIN_POSIX) and function[len(BUILTIN_POSIX):-1] in SYSCALLS:
            add("system call: " + function[len(BUILTIN_POSIX):-1], calls, own)
        elif "re.Pattern" in function:
            add("id validation (regular expressions)", calls, own)
        elif os.sep + "json" + os.sep in filename or "json" in function:
            add("JSON", calls, own)
        else:
            add("other Python (parsing, checks, joins, shaping)", calls, own)
    for entry in kinds.values():
        entry["share"] = entry["seconds"] / total
    return {"total_profiled_s": {"calls": sum(e["calls"] for e in kinds.values()), "seconds": total, "share": 1.0},
            **dict(sorted(kinds.items(), key=lambda item: -item[1]["seconds"]))}


def report(shape: Dict[str, int], phases: Dict[str, float], kinds: Dict[str, Dict[str, float]],
           containerd_shape: Dict[str, int], containerd_phases: Dict[str, float]) -> str:
    lines = ["Store: %(layers)d layers, %(images)d images, %(containers)d containers (tests/support/synthstore.generate)"
             % shape, "", "| Phase of one facts run (%d CPUs) | Seconds (median) |" % _parallel.available_cpus(),
             "| --- | --- |"]
    lines.extend("| %s | %.3f |" % (name, seconds) for name, seconds in phases.items())
    lines.extend(["", "| In one process, profiled (cProfile adds a cost to every Python call, so Python's share is "
                  "overstated) | Calls | Share of the profiled time |", "| --- | --- | --- |"])
    lines.extend("| %s | %d | %.0f%% |" % (kind, entry["calls"], 100 * entry["share"])
                 for kind, entry in kinds.items() if kind != "total_profiled_s")
    lines.extend(["", "containerd store: %(layers)d layers, %(images)d images, %(containers)d containers "
                  "(tests/support/ctdstore.generate)" % containerd_shape, "",
                  "| Phase of one facts run on the containerd store, in one process | Seconds (median) |",
                  "| --- | --- |"])
    lines.extend("| %s | %.3f |" % (name, seconds) for name, seconds in containerd_phases.items())
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--layers", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="strata-profile-") as work:
        root = os.path.join(work, "docker")
        shape = generate(root, options.layers)
        phases = phase_times(root, options.repeat)
        floor_seconds = median_seconds(lambda: floor(root), options.repeat)
        phases["floor: the same files read in a bare loop, one process"] = floor_seconds
        phases["floor of an index checked file by file: the same directories, one lstat per file, one process"] = \
            median_seconds(lambda: index_floor(root), options.repeat)
        kinds = profile(root)
        containerd_root = os.path.join(work, "containerd-store")
        containerd_shape = generate_containerd(containerd_root, options.layers)
        containerd_phases = containerd_phase_times(containerd_root, options.repeat)
    text = report(shape, phases, kinds, containerd_shape, containerd_phases)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "profile.json"), "w", encoding="utf-8") as handle:
        json.dump({"store": shape, "phases": phases, "profile": kinds, "containerd_store": containerd_shape,
                   "containerd_phases": containerd_phases}, handle, indent=2)
    with open(os.path.join(RESULTS, "profile.md"), "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
