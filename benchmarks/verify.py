"""layer_verify's core against sha256sum and docker save, on one store, in one run.

The store: a sandbox engine with images holding large random files and many small files. Timed, warm
cache, medians of --repeat runs:
  - layer_verify's core (metadata + content, all CPUs, and one worker);
  - ``sha256sum`` over the same files (what an operator would run by hand; one process);
  - ``docker save`` of the same images to /dev/null (the engine's own path that rebuilds and checks the streams).
The physical limit is measured too: one ``sha256sum`` and one OpenSSL (hashlib) pass over the largest file,
times the number of CPUs.

    .venv/bin/python benchmarks/verify.py [--megabytes 1024] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from typing import List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import verify  # noqa: E402  pylint: disable=wrong-import-position
from devtools.timing import median_seconds  # noqa: E402  pylint: disable=wrong-import-position
from devtools.sandbox import DOCKER, Engine, build, import_base  # noqa: E402  pylint: disable=wrong-import-position


def build_store(engine: Engine, megabytes: int) -> List[str]:
    """A shared base with one large layer, then four images each with large and many small files of their own."""
    import_base(engine)
    share = max(megabytes // 8, 1)
    own = max((megabytes - share) // 4, 2)
    build(engine, "strata/bench-base:1", """FROM strata/base:1.0
RUN mkdir /shared && head -c %d /dev/urandom > /shared/blob
""" % (share << 20))
    tags = []
    for number in range(4):
        tag = "strata/bench-%d:1" % number
        build(engine, tag, """FROM strata/bench-base:1
RUN mkdir /data && head -c %d /dev/urandom > /data/blob-%d
RUN mkdir /small && i=0; while [ $i -lt 2000 ]; do echo "file $i of image %d" > /small/$i; i=$((i+1)); done
RUN head -c %d /dev/urandom > /data/second-%d
""" % ((own * 3 // 4) << 20, number, number, (own - own * 3 // 4) << 20, number))
        tags.append(tag)
    return tags


def regular_files(diff_dirs: List[str]) -> List[str]:
    files = []
    for diff_dir in diff_dirs:
        for parent, _dirs, names in os.walk(diff_dir):
            for name in names:
                path = os.path.join(parent, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    files.append(path)
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", default=os.path.join(REPO, "benchmarks", "results", "verify.json"))
    options = parser.parse_args()
    cpus = os.cpu_count() or 1
    with Engine() as engine:
        tags = build_store(engine, options.megabytes)
        store = Overlay2Store.load(engine.data_root)
        report = verify(store)
        if not report.ok:
            raise SystemExit("the benchmark store does not verify: %s" % report.as_dict()["corrupt"])
        files = regular_files([store.diff_dir(layer.cache_id) for layer in store.layers.values() if layer.cache_id])
        largest = max(files, key=os.path.getsize)
        file_list = "\0".join(files).encode()

        def sha256sum_all() -> None:
            subprocess.run(["xargs", "-0", "sha256sum"], input=file_list, stdout=subprocess.DEVNULL, check=True)

        def openssl_one() -> None:
            with open(largest, "rb") as handle:
                hashlib.file_digest(handle, "sha256") if hasattr(hashlib, "file_digest") else hashlib.sha256(handle.read())

        def sha256sum_one() -> None:
            subprocess.run(["sha256sum", largest], stdout=subprocess.DEVNULL, check=True)

        def docker_save() -> None:
            subprocess.run([DOCKER, "save"] + tags, env=engine.env, stdout=subprocess.DEVNULL, check=True)

        results = {
            "store": {"images": len(store.images), "layers": len(store.layers), "files": len(files),
                      "bytes_verified": report.bytes_verified, "cpus": cpus},
            "verify_core_s": median_seconds(lambda: verify(Overlay2Store.load(engine.data_root)), options.repeat),
            "verify_core_one_worker_s": median_seconds(lambda: verify(Overlay2Store.load(engine.data_root), workers=1), options.repeat),
            "sha256sum_same_files_s": median_seconds(sha256sum_all, options.repeat),
            "docker_save_s": median_seconds(docker_save, options.repeat),
            "largest_file_bytes": os.path.getsize(largest),
            "sha256sum_one_file_s": median_seconds(sha256sum_one, options.repeat),
            "openssl_one_file_s": median_seconds(openssl_one, options.repeat),
        }
    size = results["store"]["bytes_verified"]
    rate = size / results["verify_core_s"]
    sha256sum_rate = results["largest_file_bytes"] / results["sha256sum_one_file_s"]
    openssl_rate = results["largest_file_bytes"] / results["openssl_one_file_s"]
    results.update({
        "verify_mb_s": rate / 1e6,
        "speedup_vs_docker_save": results["docker_save_s"] / results["verify_core_s"],
        "speedup_vs_sha256sum": results["sha256sum_same_files_s"] / results["verify_core_s"],
        "sha256sum_limit_mb_s": cpus * sha256sum_rate / 1e6,
        "openssl_limit_mb_s": cpus * openssl_rate / 1e6,
        "fraction_of_sha256sum_limit": rate / (cpus * sha256sum_rate),
        "fraction_of_openssl_limit": rate / (cpus * openssl_rate),
    })
    os.makedirs(os.path.dirname(options.output), exist_ok=True)
    with open(options.output, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    print("store: %(images)d images, %(layers)d layers, %(files)d files, %(bytes_verified)d bytes, %(cpus)d CPUs"
          % results["store"])
    rows = [("layer_verify core, %d workers" % cpus, results["verify_core_s"]),
            ("layer_verify core, 1 worker", results["verify_core_one_worker_s"]),
            ("sha256sum over the same files", results["sha256sum_same_files_s"]),
            ("docker save of the same images > /dev/null", results["docker_save_s"])]
    for label, seconds in rows:
        print("%-46s %8.3f s  %8.1f MB/s" % (label, seconds, size / seconds / 1e6))
    print("layer_verify is %.1fx faster than docker save and %.1fx faster than sha256sum"
          % (results["speedup_vs_docker_save"], results["speedup_vs_sha256sum"]))
    print("limit, %d CPUs x one sha256sum: %.0f MB/s -> layer_verify reaches %.2fx of it"
          % (cpus, results["sha256sum_limit_mb_s"], results["fraction_of_sha256sum_limit"]))
    print("limit, %d CPUs x one OpenSSL sha256: %.0f MB/s -> layer_verify reaches %.2fx of it"
          % (cpus, results["openssl_limit_mb_s"], results["fraction_of_openssl_limit"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
