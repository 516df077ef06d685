"""The containerd image store: the facts core and layer_verify's core against the engine's own tools, one run.

Debian testing's dockerd 28.5 with containerd 2.1 and the ``containerd-snapshotter`` feature (from the
debootstrap'd root, in a chroot) holds the sample images, 20 more built on them, and four images of large
random files and many small ones. Timed on that store, warm cache, medians:

- the facts core (``overlay2_facts`` without Ansible: read the store, join, size, classify orphans) against the
  engine route: ``docker system df -v`` plus ``docker image inspect`` of every image and ``docker inspect``
  of every container (which in this mode show no directories at all);
- layer_verify's core (every blob's digest, every layer decompressed against its DiffID and compared with its
  snapshot, file by file) against ``docker save`` of every image to /dev/null.

    .venv/bin/python benchmarks/containerd.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from ansible_collections.strata.overlay2.plugins.module_utils._verify.containerd import verify  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store  # noqa: E402  pylint: disable=wrong-import-position
from devtools.fleet import suite_root  # noqa: E402  pylint: disable=wrong-import-position
from devtools.sandbox import ChrootEngine, build, build_samples  # noqa: E402  pylint: disable=wrong-import-position
from devtools.timing import median_seconds  # noqa: E402  pylint: disable=wrong-import-position

LARGE = """FROM strata/base:1.0
RUN dd if=/dev/urandom of=/big.bin bs=1048576 count={mb} 2>/dev/null && mkdir /many \\
    && for n in $(seq 1 {files}); do echo "file $n of {tag}" > /many/f$n; done
"""


def engine_route(engine: ChrootEngine) -> None:
    engine.docker("system", "df", "-v")
    engine.docker("image", "inspect", *engine.image_ids())
    engine.docker("inspect", *engine.container_ids())


def save_all(engine: ChrootEngine) -> None:
    subprocess.run(engine.docker_command() + ["save"] + engine.image_ids(), env=engine.env,
                   check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--large-images", type=int, default=4)
    parser.add_argument("--large-mb", type=int, default=48)
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results", "containerd.json"))
    options = parser.parse_args()
    with ChrootEngine(suite_root("testing"), containerd_store=True) as engine:
        build_samples(engine)
        for number in range(20):
            build(engine, "strata/extra-%d:1" % number,
                  "FROM strata/app-%s:1.0\nRUN echo %d > /extra && mkdir -p /x/%d\n" % ("ab"[number % 2], number, number))
        for number in range(options.large_images):
            build(engine, "strata/large-%d:1" % number,
                  LARGE.format(mb=options.large_mb, files=500, tag=number), buildkit=True)
        store = load_store(engine.data_root)
        facts = gather(store)
        report = verify(load_store(engine.data_root))
        assert report.ok and not report.unverifiable, report.as_dict()
        shape = {key: facts["summary"][key] for key in ("images", "layers", "containers", "layers_size",
                                                        "content_size", "snapshots_size")}
        results = {
            "engine": engine.version,
            "store": shape,
            "verified_bytes": report.bytes_verified,
            "facts_core_s": median_seconds(lambda: gather(load_store(engine.data_root)), options.repeat),
            "engine_route_s": median_seconds(lambda: engine_route(engine), options.repeat),
            "verify_core_s": median_seconds(lambda: verify(load_store(engine.data_root)), max(3, options.repeat // 2)),
            "docker_save_s": median_seconds(lambda: save_all(engine), max(3, options.repeat // 2)),
        }
    results["facts_ratio"] = results["facts_core_s"] / results["engine_route_s"]
    results["verify_ratio"] = results["verify_core_s"] / results["docker_save_s"]
    os.makedirs(os.path.dirname(options.output), exist_ok=True)
    with open(options.output, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    print("store: %(images)d images, %(layers)d layers, %(containers)d containers, LayersSize %(layers_size)d" % shape)
    print("facts core %.4f s vs engine route %.4f s: %.3fx the time" % (
        results["facts_core_s"], results["engine_route_s"], results["facts_ratio"]))
    print("verify core %.3f s vs docker save %.3f s: %.3fx the time (%d bytes verified)" % (
        results["verify_core_s"], results["docker_save_s"], results["verify_ratio"], results["verified_bytes"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
