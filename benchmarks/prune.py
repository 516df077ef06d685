"""orphan_layer_prune's speed: classification on synthetic stores of growing size, and removal against rm -rf.

    .venv/bin/python benchmarks/prune.py [--sizes 1000 10000] [--repeat 3]

Classification is what runs inside the module before any gate: reading the store and classifying every
object (the same code gives overlay2_facts its orphans section). Removal removes the same tree as
``rm -rf`` does, rebuilt before every run, and the two are compared in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import classify  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.removal import remove_part  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import SafeDir  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store  # noqa: E402  pylint: disable=wrong-import-position
from tests.support.synthstore import generate  # noqa: E402  pylint: disable=wrong-import-position
from devtools.timing import median_seconds  # noqa: E402  pylint: disable=wrong-import-position


def make_tree(path: str, dirs: int = 40, files: int = 1000) -> None:
    for number in range(dirs):
        directory = os.path.join(path, "diff", "d%d" % number)
        os.makedirs(directory)
        for index in range(files):
            with open(os.path.join(directory, "f%d" % index), "wb") as handle:
                handle.write(b"x" * (index % 7 * 100))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results", "prune.json"))
    options = parser.parse_args()
    results: Dict[str, List] = {"stores": []}
    with tempfile.TemporaryDirectory(prefix="strata-bench-") as work:
        for size in options.sizes:
            root = os.path.join(work, "store-%d" % size)
            shape = generate(root, size)
            store = Overlay2Store.load(root)
            found = classify(store)
            row = dict(shape, orphans=len(found.orphans),
                       classify_s=median_seconds(lambda: classify(Overlay2Store.load(root)), options.repeat),
                       facts_s=median_seconds(lambda: gather(Overlay2Store.load(root)), options.repeat))
            results["stores"].append(row)
            print("%(layers)6d layers %(images)5d images %(containers)4d containers %(orphans)4d orphans: "
                  "classification %(classify_s).3f s, facts with orphans %(facts_s).3f s" % row)
        ours_runs, rm_runs = [], []
        with SafeDir.open(work) as top:
            for attempt in range(max(options.repeat, 5)):  # alternate, so that drift hits both alike
                make_tree(os.path.join(work, "ours"))
                make_tree(os.path.join(work, "theirs"))
                for who in (("ours", "theirs") if attempt % 2 else ("theirs", "ours")):
                    start = time.perf_counter()
                    if who == "ours":
                        remove_part(top, "ours")
                        ours_runs.append(time.perf_counter() - start)
                    else:
                        subprocess.run(["rm", "-rf", os.path.join(work, "theirs")], check=True)
                        rm_runs.append(time.perf_counter() - start)
        ours, rm_rf = statistics.median(ours_runs), statistics.median(rm_runs)
        shutil.rmtree(os.path.join(work, "ours"), ignore_errors=True)
    results["removal"] = {"files": 40000, "ours_s": ours, "rm_rf_s": rm_rf, "ratio_rm_rf_over_ours": rm_rf / ours}
    print("removing a 40,000-file tree: ours %.3f s, rm -rf %.3f s (ours takes %.2fx the time of rm -rf)"
          % (ours, rm_rf, ours / rm_rf))
    os.makedirs(os.path.dirname(options.output), exist_ok=True)
    with open(options.output, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
