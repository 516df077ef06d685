#!/usr/bin/env python
"""Write the smoke store:  tests/smoke/store.py PATH

The unit tests' sample store (three images over a shared base, a running and an exited container) with one
leftover of each kind the prune knows: an unreferenced chain, an unreferenced directory, a ``-removing``
record, a write-set, a dangling link and a stale mount. Every file is dated one day back, so that the same
store gives the same answer whenever it is read.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position

make_importable()

from devtools.samples import build_sample  # noqa: E402  pylint: disable=wrong-import-position
from devtools.synthstore import file, write  # noqa: E402  pylint: disable=wrong-import-position


def make(root: str) -> None:
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
    old = time.time() - 86400
    for parent, dirs, names in os.walk(root):
        for name in dirs + names:
            os.utime(os.path.join(parent, name), (old, old), follow_symlinks=False)
    os.utime(root, (old, old))


if __name__ == "__main__":
    make(sys.argv[1])
