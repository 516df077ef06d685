"""overlay2_facts' ``usage`` against ``du -sx``, the tool an operator runs instead, in one run.

    .venv/bin/python benchmarks/usage.py [--layers 10000] [--repeat 5]

On the synthetic 10,000-layer store of ``benchmarks/run`` (leftovers of every kind included), three things are
timed, interleaved round by round so that the machine's drift falls on all of them alike: ``du -sx
--block-size=1`` of the data-root; the ``usage`` part alone (classification, claims and the walk); and the
whole module core with and without it (``gather``). The results are ratios to ``du``; ``usage_cost_ratio_to_du``
is what asking for ``usage`` adds to the facts, over du's time. The totals are checked equal to du's before
anything is timed.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position
from devtools.timing import write_result  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from ansible_collections.strata.overlay2.plugins.module_utils._backends.registry import backend_for  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather, usage_of  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store  # noqa: E402  pylint: disable=wrong-import-position
from tests.support.synthstore import generate  # noqa: E402  pylint: disable=wrong-import-position


def du(root: str) -> int:
    output = subprocess.run(["du", "-sx", "--block-size=1", root], capture_output=True, text=True, check=True).stdout
    return int(output.split()[0])


def timed(action: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--layers", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results", "usage.json"))
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="strata-bench-") as work:
        root = os.path.join(work, "store")
        shape = generate(root, options.layers)
        store = load_store(root)
        usage = usage_of(backend_for(store))
        assert usage["total"]["bytes"] == du(root), (usage["total"], du(root))
        files = int(subprocess.run("find %s -xdev | wc -l" % root, shell=True, capture_output=True, text=True,
                                   check=True).stdout)
        runs = {
            "du -sx": lambda: du(root),
            "usage part (read, classify, walk)": lambda: usage_of(backend_for(load_store(root))),
            "facts without usage": lambda: gather(load_store(root)),
            "facts with usage": lambda: gather(load_store(root), usage=True),
        }
        samples: Dict[str, List[float]] = {name: [] for name in runs}
        for name, action in runs.items():  # warm the page cache and the imports
            action()
        for _round in range(options.repeat):
            for name, action in runs.items():
                samples[name].append(timed(action))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["du -sx"]
    result = {
        "store": dict(shape, entries=files, bytes=usage["total"]["bytes"]),
        "median_seconds": {name: round(value, 3) for name, value in medians.items()},
        "ratio_to_du": {name: round(value / base, 2) for name, value in medians.items()},
        "usage_cost_in_facts": round(medians["facts with usage"] - medians["facts without usage"], 3),
        "usage_cost_ratio_to_du": round((medians["facts with usage"] - medians["facts without usage"]) / base, 2),
        "repeat": options.repeat,
    }
    write_result(options.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
