"""overlay2_facts' core against the engine's API route, on one store, in one run.

The operator's alternative to the facts is the engine's own view: ``docker system df -v`` for sizes and
sharing, plus ``docker image inspect`` of every image and ``docker inspect`` of every container for the
directories. Both sides read the same sandbox store; each is timed several times and the medians compared.

    .venv/bin/python benchmarks/facts.py [--extra-images N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store  # noqa: E402  pylint: disable=wrong-import-position
from devtools.timing import median_seconds  # noqa: E402  pylint: disable=wrong-import-position
from devtools.sandbox import Engine, build, build_samples  # noqa: E402  pylint: disable=wrong-import-position


def engine_route(engine: Engine) -> None:
    engine.docker("system", "df", "-v")
    engine.docker("image", "inspect", *engine.image_ids())
    engine.docker("inspect", *engine.container_ids())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--extra-images", type=int, default=55, help="images built on top of the samples")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results", "facts.json"))
    options = parser.parse_args()
    with Engine() as engine:
        build_samples(engine)
        for number in range(options.extra_images):
            build(engine, "strata/extra-%d:1" % number,
                  "FROM strata/app-%s:1.0\nRUN echo %d > /extra && mkdir -p /x/%d\n" % ("ab"[number % 2], number, number))
        facts = gather(Overlay2Store.load(engine.data_root))
        shape = {key: facts["summary"][key] for key in ("images", "layers", "containers")}
        results = {
            "store": shape,
            "facts_core_s": median_seconds(lambda: gather(Overlay2Store.load(engine.data_root)), options.repeat),
            "engine_api_route_s": median_seconds(lambda: engine_route(engine), options.repeat),
            "docker_system_df_v_s": median_seconds(lambda: engine.docker("system", "df", "-v"), options.repeat),
        }
    results["speedup_vs_engine_route"] = results["engine_api_route_s"] / results["facts_core_s"]
    results["speedup_vs_system_df_v"] = results["docker_system_df_v_s"] / results["facts_core_s"]
    os.makedirs(os.path.dirname(options.output), exist_ok=True)
    with open(options.output, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    print("store: %(images)d images, %(layers)d layers, %(containers)d containers" % shape)
    print("%-52s %10s" % ("median of %d runs" % options.repeat, "seconds"))
    print("%-52s %10.4f" % ("overlay2_facts core (read store + join)", results["facts_core_s"]))
    print("%-52s %10.4f" % ("docker system df -v + image inspect + inspect", results["engine_api_route_s"]))
    print("%-52s %10.4f" % ("docker system df -v alone", results["docker_system_df_v_s"]))
    print("facts core is %.1fx faster than the engine route, %.1fx faster than docker system df -v"
          % (results["speedup_vs_engine_route"], results["speedup_vs_system_df_v"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
