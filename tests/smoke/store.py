#!/usr/bin/env python
"""Write the smoke stores:  tests/smoke/store.py PATH

``PATH/overlay2``: the unit tests' sample store (three images over a shared base, a running and an exited
container) with one leftover of each kind the prune knows: an unreferenced chain, an unreferenced directory, a
``-removing`` record, a write-set, a dangling link and a stale mount. ``PATH/containerd``: a containerd image
store of the engine's shape (two images, a whiteout, an opaque directory, a container, an ingest in flight)
with a snapshot directory and an ingest no database knows. Every file is dated one day back, so that the same
stores give the same answers whenever they are read.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from tests.support.ctdstore import CONTENT, SNAPSHOTTER  # noqa: E402  pylint: disable=wrong-import-position
from tests.support.mutations import prepare_containerd_store  # noqa: E402  pylint: disable=wrong-import-position
from tests.support.samples import build_sample  # noqa: E402  pylint: disable=wrong-import-position
from tests.support.synthstore import file, write  # noqa: E402  pylint: disable=wrong-import-position


def make(path: str) -> None:
    make_overlay2(os.path.join(path, "overlay2"))
    make_containerd(os.path.join(path, "containerd"))
    old = time.time() - 86400
    for parent, dirs, names in os.walk(path):
        for name in dirs + names:
            os.utime(os.path.join(parent, name), (old, old), follow_symlinks=False)
        os.utime(parent, (old, old))


def make_containerd(root: str) -> None:
    prepare_containerd_store(root)
    ctd = os.path.join(root, "containerd", "daemon")
    for directory, name, size in ((os.path.join(SNAPSHOTTER, "snapshots", "9999", "fs"), "partial", 7000),
                                  (os.path.join(CONTENT, "ingest", "ef" * 32), "data", 5000)):
        os.makedirs(os.path.join(ctd, directory))
        write(os.path.join(ctd, directory, name), "p" * size)  # what no database knows


def make_overlay2(root: str) -> None:
    sample = build_sample(root)
    synth = sample.synth
    synth.add_layer([file("loaded/chain", "c" * 4000)], parent=sample.base)  # unreferenced chain
    name = synth.next_hex()  # unreferenced directory
    synth.make_overlay_dir(name, None)
    write(synth.overlay(name, "diff", "partial"), "x" * 9000)
    removing = synth.add_layer([file("loaded/removing", "r" * 3000)], parent=sample.base)
    record = synth.layerdb(removing.chain_id)
    os.rename(record, "%s-%s-removing" % (record, synth.next_hex()))
    write_set = synth.path("image/overlay2/layerdb/tmp/write-set-123456")
    os.makedirs(write_set)
    cache_id = synth.next_hex()
    synth.make_overlay_dir(cache_id, None)
    write(os.path.join(write_set, "cache-id"), cache_id)
    os.symlink("../%s/diff" % ("e" * 64), synth.path("overlay2/l", "DANGLING" + "A" * 18))  # dangling link
    shutil.rmtree(synth.path("containers", sample.containers["job"]["id"]))  # stale mount


if __name__ == "__main__":
    make(sys.argv[1])
