#!/usr/bin/env python
"""Two versions of the cores on the same stores, interleaved: the working tree against another commit.

    .venv/bin/python benchmarks/ab.py REV [--layers 10000] [--rounds 5]

A refactor must not cost speed, and this machine's speed drifts by 10 to 40 percent between runs, more than
two runs of ``benchmarks/run`` apart can tell from a change. Here both versions read the same synthetic
stores (an overlay2 store from ``tests/support/synthstore.generate`` and a containerd image store from
``tests/support/ctdstore.generate``) in turn, each in a new process, round after round (which goes first
alternates), so that drift falls on both alike. Each process times the facts core (orphans included), the
orphan classification and the verification core, medians of 3 (verification: 1) after a warm-up. Prints each
measure's median over the rounds per version and their ratio; writes benchmarks/results/ab.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from tests.support.ctdstore import generate as generate_containerd  # noqa: E402  pylint: disable=wrong-import-position
from tests.support.synthstore import generate  # noqa: E402  pylint: disable=wrong-import-position

RESULTS = os.path.join(REPO, "benchmarks", "results")
# Run in the tree of either version: its own module_utils, through the entry points both layouts have.
CHILD = r'''
import json, sys
sys.path.insert(0, ".")
from devtools.paths import make_importable
make_importable()
from devtools.timing import median_seconds
MU = "ansible_collections.strata.overlay2.plugins.module_utils."
try:  # the store interface (one backend per store)
    from importlib import import_module
    load_store = import_module(MU + "_store.detect").load_store
    gather = import_module(MU + "_facts.gather").gather
    backend_for = import_module(MU + "_backends.registry").backend_for
    classify = lambda store: backend_for(store).classify()
    verify = lambda store: backend_for(store).verify(None, None, True, None)
except ImportError:  # the flat layout before it
    load_store = import_module(MU + "_source").load_store
    gather = import_module(MU + "_facts").gather
    by_kind = {"overlay2": (import_module(MU + "_orphans").classify, import_module(MU + "_verify").verify),
               "containerd": (import_module(MU + "_containerd_orphans").classify,
                              import_module(MU + "_containerd_verify").verify)}
    classify = lambda store: by_kind[store.kind][0](store)
    verify = lambda store: by_kind[store.kind][1](store)
overlay2, containerd = sys.argv[1], sys.argv[2]
print(json.dumps({
    "overlay2 facts core": median_seconds(lambda: gather(load_store(overlay2)), 3),
    "overlay2 orphan classification": median_seconds(lambda: classify(load_store(overlay2)), 3),
    "overlay2 layer_verify core": median_seconds(lambda: verify(load_store(overlay2)), 1),
    "containerd facts core": median_seconds(lambda: gather(load_store(containerd)), 3),
    "containerd orphan classification": median_seconds(lambda: classify(load_store(containerd)), 3),
}))
'''


def run_version(tree: str, overlay2: str, containerd: str) -> Dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, overlay2, containerd], cwd=tree, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("rev", help="the commit to compare the working tree with")
    parser.add_argument("--layers", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="strata-ab-") as work:
        other = os.path.join(work, "other")
        subprocess.run(["git", "-C", REPO, "worktree", "add", "-q", "--detach", other, args.rev], check=True)
        try:
            overlay2, containerd = os.path.join(work, "overlay2"), os.path.join(work, "containerd")
            shape = generate(overlay2, args.layers)
            generate_containerd(containerd, args.layers)
            samples: Dict[str, List[Dict[str, float]]] = {args.rev: [], "working tree": []}
            for number in range(args.rounds):
                order = [(args.rev, other), ("working tree", REPO)]
                for name, tree in order if number % 2 == 0 else reversed(order):
                    samples[name].append(run_version(tree, overlay2, containerd))
                    print("round %d: %s done" % (number + 1, name), flush=True)
        finally:
            subprocess.run(["git", "-C", REPO, "worktree", "remove", "--force", other], check=False)
    measures = list(samples["working tree"][0])
    rows = {measure: {name: statistics.median(s[measure] for s in runs) for name, runs in samples.items()}
            for measure in measures}
    print("\nStore: %(layers)d layers, %(images)d images, %(containers)d containers; %(rounds)d rounds, interleaved"
          % dict(shape, rounds=args.rounds))
    print("| Measure | %s | working tree | working tree / %s |" % (args.rev, args.rev))
    print("| --- | --- | --- | --- |")
    for measure, row in rows.items():
        ratio = row["working tree"] / row[args.rev]
        print("| %s | %.3f s | %.3f s | %.2f |" % (measure, row[args.rev], row["working tree"], ratio))
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "ab.json"), "w", encoding="utf-8") as handle:
        json.dump({"rev": args.rev, "shape": shape, "rounds": args.rounds, "medians": rows, "samples": samples},
                  handle, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
