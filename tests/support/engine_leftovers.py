"""Leftovers of every kind the prune removes, made on a real engine's store the way crashes leave them.

``crash_material`` builds what the crashes need while the daemon runs (an image to lose, a container to lose);
with the daemon stopped, ``plant_overlay2`` leaves an image whose config went before its layers were released
(one layer record already renamed ``-removing``), a container whose config went before its mount record, a
directory and a write-set of a pull cut short and a dangling link; ``plant_containerd`` leaves snapshot
directories and ingests no containerd record names.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import chain_ids, is_hex64
from devtools.sandbox import Engine, build

LAYERDB = "image/overlay2/layerdb"
DOOMED = "FROM strata/base:1.0\nRUN echo one > /one && mkdir -p /d/e && echo f > /d/e/f\nRUN echo two > /two\n"
KEPT = "FROM strata/base:1.0\nRUN echo kept > /kept\n"


def write(path: str, content: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(content)


def plant_overlay2(engine: Engine, doomed_id: str, gone_container: str) -> None:
    """Leftovers of each overlay2 kind, with the daemon stopped, as crashes leave them."""
    root = engine.data_root
    chains = sorted(name for name in os.listdir(os.path.join(root, LAYERDB, "sha256")) if is_hex64(name))
    top = chain_of_top_layer(root, doomed_id)
    tags_path = os.path.join(root, "image/overlay2/repositories.json")
    with open(tags_path, encoding="utf-8") as handle:
        tags = json.load(handle)
    tags["Repositories"].pop("strata/doomed", None)
    tagged = {image_id for references in tags["Repositories"].values() for image_id in references.values()}
    # ``docker rmi`` cut short after the image and its untagged parents (the classic builder's intermediate
    # images) went and before their layers were released; its top layer's record renamed already (``-removing``)
    current = doomed_id
    while current and current not in tagged:
        hex_id = current.split(":")[1]
        parent_file = os.path.join(root, "image/overlay2/imagedb/metadata/sha256", hex_id, "parent")
        parent = open(parent_file, encoding="utf-8").read().strip() if os.path.exists(parent_file) else ""
        shutil.rmtree(os.path.join(root, "image/overlay2/imagedb/metadata/sha256", hex_id), ignore_errors=True)
        os.unlink(os.path.join(root, "image/overlay2/imagedb/content/sha256", hex_id))
        current = parent
    write(tags_path, json.dumps(tags))
    assert top in chains
    os.rename(os.path.join(root, LAYERDB, "sha256", top),
              os.path.join(root, LAYERDB, "sha256", "%s-%s-removing" % (top, "7" * 64)))
    # ``docker rm`` cut short after the container's config went: its mount record and directories stay
    shutil.rmtree(os.path.join(root, "containers", gone_container))
    # a pull cut short: a directory with its link and no record, and a write-set naming another
    for name, link in (("a" * 64, "PULLEDLINKAAAAAAAAAAAAAAAA"), ("b" * 64, "WRITESETLINKAAAAAAAAAAAAAA")):
        write(os.path.join(root, "overlay2", name, "diff", "usr", "lib", "pulled.so"), "x" * 20000)
        write(os.path.join(root, "overlay2", name, "link"), link)
        os.mkdir(os.path.join(root, "overlay2", name, "work"))
        os.symlink("../%s/diff" % name, os.path.join(root, "overlay2", "l", link))
    write(os.path.join(root, LAYERDB, "tmp", "write-set-424242", "cache-id"), "b" * 64)
    os.symlink("../%s/diff" % ("e" * 64), os.path.join(root, "overlay2", "l", "DANGLINGLINKAAAAAAAAAAAAAA"))


def chain_of_top_layer(root: str, image_id: str) -> str:
    with open(os.path.join(root, "image/overlay2/imagedb/content/sha256", image_id.split(":")[1]),
              encoding="utf-8") as handle:
        diff_ids = json.load(handle)["rootfs"]["diff_ids"]
    return chain_ids(diff_ids)[-1].split(":")[1]


def plant_containerd(engine: Engine) -> None:
    """Files no containerd database knows: snapshot directories of a crash between mkdir and commit and of
    containerd's own removals, and ingests without a record."""
    root = engine.containerd_root
    for name in ("9999", "new-4242", "rm-4243"):
        write(os.path.join(root, "io.containerd.snapshotter.v1.overlayfs/snapshots", name, "fs/usr/lib/x.so"), "x" * 9000)
        os.makedirs(os.path.join(root, "io.containerd.snapshotter.v1.overlayfs/snapshots", name, "work/work"))
    for digest in ("ab" * 32, "cd" * 32):
        for name, data in (("data", "d" * 5000), ("ref", "moby/1/gone"), ("total", "9")):
            write(os.path.join(root, "io.containerd.content.v1.content/ingest", digest, name), data)
    week_ago = time.time() - 7 * 86400  # settled: not a write whose record is still being committed
    for top in ("io.containerd.snapshotter.v1.overlayfs/snapshots", "io.containerd.content.v1.content/ingest"):
        for parent, dirs, files in os.walk(os.path.join(root, top)):
            for name in dirs + files:
                os.utime(os.path.join(parent, name), (week_ago, week_ago), follow_symlinks=False)


def crash_material(engine: Engine) -> Tuple[str, str]:
    """An image and a container for ``plant_overlay2`` to lose (the base image imported already): their ids."""
    build(engine, "strata/doomed:1", DOOMED)
    gone = engine.docker("create", "--network", "none", "--name", "gone", "strata/base:1.0", "true").strip()
    return engine.api("/images/strata/doomed:1/json")["Id"], gone
