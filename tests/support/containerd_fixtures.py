"""Record engine-made containerd image stores for the unit tests (``tests/unit/fixtures/containerd/``).

Debian testing's dockerd 28.5 with containerd 2.1 and the ``containerd-snapshotter`` feature, in both layouts
(``managed``: dockerd's own containerd below the data-root; ``system``: a containerd started beside it), gets:
the busybox base (``docker import``), a classic-builder image with two RUN steps (its ``-init`` snapshots sit in
the image's snapshot stack), a BuildKit image with a whiteout, a second tag and a dangling image, one created
container. The engine's answers (``/images/json?all=1&shared-size=1``, ``/system/df``, ``docker image
inspect``, ``docker inspect -s``) are recorded beside the store, which is kept without its layer blobs and
snapshot files (the facts need the databases, the JSON blobs and the snapshot directories only) so that it
stays small. Run as root: ``python tests/support/containerd_fixtures.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
import tempfile
from typing import Any, Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from ansible_collections.strata.overlay2.plugins.module_utils._store.containerd import SnapshotUsage  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.strata.overlay2.plugins.module_utils._store.detect import load_store  # noqa: E402  pylint: disable=wrong-import-position
from devtools.sandbox import ChrootEngine, build, import_base  # noqa: E402  pylint: disable=wrong-import-position

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "tests", "unit", "fixtures", "containerd")
CLASSIC = """FROM strata/base:1.0
RUN mkdir -p /etc/app && echo one > /etc/app/a.txt
RUN rm /etc/app/a.txt && echo two > /etc/app/b.txt
"""
BUILDKIT = """FROM strata/base:1.0
RUN echo kept > /kept.txt && echo gone > /gone.txt
RUN rm /gone.txt
"""
CONTENT = "io.containerd.content.v1.content"
SNAPSHOTS = "io.containerd.snapshotter.v1.overlayfs"
JSON_LIMIT = 64 << 10


def populate(engine: ChrootEngine) -> Dict[str, Any]:
    import_base(engine)
    build(engine, "strata/classic:1", CLASSIC)
    build(engine, "strata/bk:1", BUILDKIT, buildkit=True)
    engine.docker("tag", "strata/bk:1", "strata/bk:latest")
    build(engine, "strata/bk:1", BUILDKIT + "RUN echo again > /again.txt\n", buildkit=True)  # the first dangles
    engine.docker("create", "--network", "none", "--name", "created", "strata/classic:1", "true")
    images = engine.api("/images/json?all=1&shared-size=1")
    containers = engine.container_ids()
    # what the active snapshots used when the engine answered (the fixture keeps their directories empty)
    store = load_store(engine.data_root, "containerd",
                       engine.containerd_root if engine.system_containerd else None)
    measure = SnapshotUsage(store.parts)
    active = sum(measure(snapshot) for snapshot in store.parts.snapshots.values() if snapshot.kind == "active")
    return {
        "active_usage": active,
        "engine": engine.version,
        "layout": "system" if engine.system_containerd else "managed",
        "images_json": images,
        "system_df": {"LayersSize": engine.api("/system/df")["LayersSize"],
                      "Images": len(engine.api("/system/df")["Images"])},
        "image_inspect": engine.inspect(*[image["Id"] for image in images]),
        "containers": [engine.api("/containers/%s/json?size=1" % cid) for cid in containers],
    }


def copy_store(engine: ChrootEngine, target: str, container_ids: List[str]) -> None:
    """The databases, JSON blobs, snapshot directories (empty) and the engine's container configs."""
    data_root = os.path.join(target, "data-root")
    ctd_root = os.path.join(target, "containerd-root")
    for cid in container_ids:
        source = os.path.join(engine.data_root, "containers", cid)
        os.makedirs(os.path.join(data_root, "containers", cid))
        for name in ("config.v2.json", "hostconfig.json"):
            shutil.copyfile(os.path.join(source, name), os.path.join(data_root, "containers", cid, name))
    buildkit = os.path.join(engine.data_root, "buildkit", "containerd-overlayfs", "metadata_v2.db")
    os.makedirs(os.path.join(data_root, "buildkit", "containerd-overlayfs"))
    shutil.copyfile(buildkit, os.path.join(data_root, "buildkit", "containerd-overlayfs", "metadata_v2.db"))
    source_root = engine.containerd_root
    for parts in (("io.containerd.metadata.v1.bolt", "meta.db"), (SNAPSHOTS, "metadata.db")):
        os.makedirs(os.path.join(ctd_root, *parts[:-1]), exist_ok=True)
        shutil.copyfile(os.path.join(source_root, *parts), os.path.join(ctd_root, *parts))
    blobs = os.path.join(source_root, CONTENT, "blobs", "sha256")
    os.makedirs(os.path.join(ctd_root, CONTENT, "blobs", "sha256"))
    os.makedirs(os.path.join(ctd_root, CONTENT, "ingest"))
    for name in os.listdir(blobs):
        path = os.path.join(blobs, name)
        if os.path.getsize(path) > JSON_LIMIT:
            continue
        with open(path, "rb") as handle:
            raw = handle.read()
        try:
            json.loads(raw.decode("utf-8"))
        except ValueError:
            continue
        with open(os.path.join(ctd_root, CONTENT, "blobs", "sha256", name), "wb") as handle:
            handle.write(raw)
    for name in os.listdir(os.path.join(source_root, SNAPSHOTS, "snapshots")):
        os.makedirs(os.path.join(ctd_root, SNAPSHOTS, "snapshots", name, "fs"))


def make(system: bool) -> str:
    from devtools.fleet import suite_root  # pylint: disable=import-outside-toplevel
    engine = ChrootEngine(suite_root("testing"), containerd_store=True, system_containerd=system)
    with engine:
        answers = populate(engine)
        engine.stop()
        work = tempfile.mkdtemp(prefix="strata-ctd-fixture-")
        try:
            copy_store(engine, work, [container["Id"] for container in answers["containers"]])
            with open(os.path.join(work, "engine.json"), "w", encoding="utf-8") as handle:
                json.dump(answers, handle, indent=1, sort_keys=True)
            os.makedirs(FIXTURES, exist_ok=True)
            archive = os.path.join(FIXTURES, answers["layout"] + ".tar.gz")
            with tarfile.open(archive, "w:gz") as tar:
                for name in sorted(os.listdir(work)):
                    tar.add(os.path.join(work, name), arcname=name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return archive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--layouts", default="managed,system")
    args = parser.parse_args()
    for layout in args.layouts.split(","):
        print(make(layout == "system"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
