#!/usr/bin/env python
"""The cores' answers on fixed synthetic stores, to hold speed work to byte-for-byte the same results:

    tests/support/golden.py --write     record them in tests/unit/fixtures/golden/ (before changing a core)
    tests/support/golden.py             compare (tests/unit/test_golden.py does the same)

Stores: the unit tests' sample store with one leftover of each kind (tests/smoke/store.py), and a generated
build-server store of 300 layers (tests/support/synthstore.generate). Answers: overlay2_facts (container sizes and
orphans), layer_verify, the orphan classification and the prune's plan (check mode, no daemon), as JSON with
the store's path and the times that vary by run taken out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any, Dict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from ansible_collections.strata.overlay2.plugins.module_utils._orphans.containerd import CONTAINERD_ORPHAN_KINDS  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.containerd import classify as classify_containerd  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._verify.containerd import verify as verify_containerd  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import ORPHAN_KINDS, classify  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import Gates, decide  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import verify  # noqa: E402  pylint: disable=wrong-import-position
from devtools.results import normalized  # noqa: E402  pylint: disable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(REPO, "tests", "unit", "fixtures", "golden")
VARYING = {"seconds", "newest_mtime"}


STORES = ("sample", "generated", "containerd")


def build(name: str, work: str) -> str:
    """Write the store ``name`` below ``work``; returns its data-root."""
    if name in ("sample", "containerd"):  # the smoke stores (tests/smoke/store.py)
        import importlib.util  # pylint: disable=import-outside-toplevel
        spec = importlib.util.spec_from_file_location("smoke_store", os.path.join(REPO, "tests", "smoke", "store.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.make(work)
        return os.path.join(work, "overlay2" if name == "sample" else "containerd")
    from tests.support.synthstore import generate  # pylint: disable=import-outside-toplevel
    root = os.path.join(work, "docker")
    generate(root, 300, seed="golden")
    return root


def containerd_answers(root: str) -> Dict[str, Any]:
    store = load_store(root)
    classification = classify_containerd(load_store(root))
    gates = Gates(kinds=CONTAINERD_ORPHAN_KINDS, min_age=0, now=time.time() + 5, daemon=None, layer_dirs=0)
    plan = decide(classification.orphans, gates, check_mode=True, quarantine=False)
    return normalized({"facts": gather(store, container_sizes=True),
                       "verify": verify_containerd(load_store(root)).as_dict(),
                       "orphans": classification.facts(), "plan": [d.as_dict() for d in plan]}, root, VARYING)


def answers(root: str) -> Dict[str, Any]:
    store = Overlay2Store.load(root)
    classification = classify(Overlay2Store.load(root))
    gates = Gates(kinds=ORPHAN_KINDS, min_age=0, now=time.time() + 5, daemon=None, layer_dirs=len(store.dirs))
    plan = decide(classification.orphans, gates, check_mode=True, quarantine=False)
    return normalized({"facts": gather(store, container_sizes=True), "verify": verify(Overlay2Store.load(root)).as_dict(),
                       "orphans": classification.facts(), "plan": [d.as_dict() for d in plan]}, root, VARYING)


def compare(name: str, write: bool) -> bool:
    """Whether the answers on store ``name`` are the recorded ones (or record them, ``write``)."""
    work = tempfile.mkdtemp(prefix="strata-golden-")
    try:
        root = build(name, work)
        current = containerd_answers(root) if name == "containerd" else answers(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    path = os.path.join(GOLDEN, name + ".json")
    if write:
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(current, handle, indent=1, sort_keys=True)
            handle.write("\n")
        return True
    with open(path, encoding="utf-8") as handle:
        return json.load(handle) == current


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    results = {name: compare(name, args.write) for name in STORES}
    print(json.dumps(results))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
