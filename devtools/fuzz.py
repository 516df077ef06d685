"""A longer mutation run than make test's, by hand:  .venv/bin/python devtools/fuzz.py --examples 20000 [--seed N]

Each example mutates one file of one kind in a sample store, runs every module core on it (facts, verify,
orphan classification) and puts the file back. Any exception is printed with its seed and kind, and the
run exits non-zero.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from tests.support.mutations import FILE_KINDS, exercise, prepare_store, run_once  # noqa: E402  pylint: disable=wrong-import-position


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--examples", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    options = parser.parse_args()
    work = tempfile.mkdtemp(prefix="strata-fuzz-")
    root = os.path.join(work, "docker")
    prepare_store(root)
    failures = 0
    started = time.monotonic()
    try:
        for number in range(options.examples):
            seed = options.seed * 1000003 + number
            rng = random.Random(seed)
            kind = rng.choice(FILE_KINDS)
            restore = run_once(root, rng, kind)
            try:
                exercise(root)
            except Exception:  # pylint: disable=broad-except
                failures += 1
                print("seed %d, kind %s:\n%s" % (seed, kind, traceback.format_exc()))
            finally:
                restore()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    print("%d examples (seed %d) in %.0f s: %d failures" % (options.examples, options.seed, elapsed, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
