"""cis_benchmark's core on the 10,000-layer synthetic store (2,000 images, 1,000 containers), against the engine's route to the same inputs, in
one run.

The operator's tool, docker-bench-security, reads sections 4 and 5 through the engine: ``docker inspect`` of
the containers and images, and ``docker history`` of every image (4.7, 4.9); it leaves 4.8 and 4.10 to a
person. The engine route here is that data gathering alone, done as cheaply as the CLI allows (one inspect
for all containers, one for all images, one history per image), with a dockerd started on the same store.
Our side is the whole evaluation, every control of level 2 included (4.8 from every layer's headers).

    .venv/bin/python benchmarks/cis.py [--layers N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from ansible_collections.strata.overlay2.plugins.module_utils._cis.catalogue import select  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._cis.benchmark import evaluate  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store  # noqa: E402  pylint: disable=wrong-import-position
from devtools.sandbox import Engine  # noqa: E402  pylint: disable=wrong-import-position
from tests.support.synthstore import generate  # noqa: E402  pylint: disable=wrong-import-position
from devtools.timing import median_seconds  # noqa: E402  pylint: disable=wrong-import-position


def ours(data_root: str) -> dict:
    return evaluate(load_store(data_root), None, select(["level2"]), []).as_dict()


def engine_route(engine: Engine, images: list, containers: list) -> None:
    if containers:
        engine.docker("inspect", *containers, timeout=3600)
    engine.docker("image", "inspect", *images, timeout=3600)
    for image in images:
        engine.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image, timeout=600)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--layers", type=int, default=10000)
    parser.add_argument("--images", type=int, default=2000, help="at least this many images")
    parser.add_argument("--containers", type=int, default=1000, help="at least this many containers")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results", "cis.json"))
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="strata-cis-bench-", dir="/var/tmp") as work:
        engine = Engine(os.path.join(work, "store"))
        shape = generate(engine.data_root, options.layers, min_images=options.images,
                         min_containers=options.containers)
        report = ours(engine.data_root)
        results = {"store": shape, "summary": report["summary"],
                   "cis_benchmark_core_s": median_seconds(lambda: ours(engine.data_root), options.repeat)}
        engine.start(timeout=600)
        try:
            images, containers = engine.image_ids(), engine.container_ids()
            results["engine_route_s"] = median_seconds(lambda: engine_route(engine, images, containers), 1)
            results["engine_route_calls"] = 2 + len(images)
        finally:
            engine.destroy()
    results["ratio_to_engine_route"] = results["cis_benchmark_core_s"] / results["engine_route_s"]
    os.makedirs(os.path.dirname(options.output), exist_ok=True)
    with open(options.output, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    print("store: %(layers)d layers, %(images)d images, %(containers)d containers" % shape)
    print("cis_benchmark core (every control, level 2): %.3f s" % results["cis_benchmark_core_s"])
    print("engine route (inspect + image inspect + %d x history): %.3f s; ratio %.4fx"
          % (len(images), results["engine_route_s"], results["ratio_to_engine_route"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
