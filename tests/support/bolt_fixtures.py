#!/usr/bin/env python
"""Make the engine-made bolt fixtures of the unit tests: BuildKit's databases after a build and an rmi.

    tests/support/bolt_fixtures.py [--engines 20.10,28.5]

For each engine (Debian 12's dockerd, and Debian testing's run from its debootstrap'd root), a private
dockerd builds ``BUILD_DOCKERFILE`` with BuildKit (three RUN steps, one with a cache mount) on an imported
busybox base, removes the image, and stops. Its ``buildkit/*.db`` files are copied to
``tests/unit/fixtures/bolt/engine-<version>/`` with ``engine.json``: what the engine itself said (the build
cache records of /system/df) and the store beside them (every layerdb chain with its cache-id, every
overlay2 directory). The unit tests hold the reader to those facts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Dict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from devtools.sandbox import ChrootEngine, Engine, import_base  # noqa: E402  pylint: disable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO, "tests", "unit", "fixtures", "bolt")
BUILD_DOCKERFILE = """FROM strata/bk-base:1
RUN echo one > /one.txt
RUN --mount=type=cache,target=/cache,id=mycache sh -c 'echo cached > /cache/c.txt; echo two > /two.txt'
RUN echo three > /three.txt
"""


def build_with_buildkit(engine: Engine, tag: str, dockerfile: str) -> str:
    """Build ``dockerfile`` with BuildKit; returns the build output (step lines with CACHED or DONE)."""
    context = os.path.join(engine.base, "ctx-" + tag.replace("/", "-").replace(":", "-"))
    os.makedirs(context, exist_ok=True)
    with open(os.path.join(context, "Dockerfile"), "w", encoding="utf-8") as handle:
        handle.write(dockerfile)
    result = engine.docker_result("build", "--network", "none", "--progress", "plain", "-t", tag,
                                  engine.inside(context), env={"DOCKER_BUILDKIT": "1"})
    if result.returncode != 0:
        raise RuntimeError("build of %s failed: %s" % (tag, result.stderr[-2000:]))
    return result.stderr


def store_listing(data_root: str) -> Dict[str, object]:
    layerdb = os.path.join(data_root, "image", "overlay2", "layerdb", "sha256")
    chains = {}
    for name in sorted(os.listdir(layerdb)):
        with open(os.path.join(layerdb, name, "cache-id"), encoding="ascii") as handle:
            chains["sha256:" + name] = handle.read()
    dirs = sorted(name for name in os.listdir(os.path.join(data_root, "overlay2")) if name != "l")
    return {"chains": chains, "dirs": dirs}


def make(engine: Engine) -> str:
    with engine:
        import_base(engine, "strata/bk-base:1")
        build_with_buildkit(engine, "strata/bk-app:1", BUILD_DOCKERFILE)
        engine.docker("rmi", "strata/bk-app:1")
        version = engine.version.split("+", maxsplit=1)[0]
        records = sorted(record["ID"] for record in engine.api("/system/df").get("BuildCache") or [])
        engine.stop()
        target = os.path.join(FIXTURES, "engine-" + ".".join(version.split(".")[:2]))
        os.makedirs(target, exist_ok=True)
        buildkit = os.path.join(engine.data_root, "buildkit")
        for name in ("containerdmeta.db", "metadata_v2.db", "snapshots.db"):
            shutil.copyfile(os.path.join(buildkit, name), os.path.join(target, name))
        facts = {"engine": version, "dockerfile": BUILD_DOCKERFILE, "build_cache_records": records}
        facts.update(store_listing(engine.data_root))
        with open(os.path.join(target, "engine.json"), "w", encoding="utf-8") as handle:
            json.dump(facts, handle, indent=1, sort_keys=True)
            handle.write("\n")
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--engines", default="20.10,28.5")
    args = parser.parse_args()
    for engine_name in args.engines.split(","):
        if engine_name == "20.10":
            print(make(Engine()))
        else:
            from devtools.fleet import suite_root  # pylint: disable=import-outside-toplevel
            print(make(ChrootEngine(suite_root("testing"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
