"""Leftovers of each kind planted in a sample store, the way a dying daemon leaves them, and the prune's plan
for a store with every gate open unless a test closes one."""

from __future__ import annotations

import os
import shutil
import time

from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import ORPHAN_KINDS, classify
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import Gates, decide
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store

from tests.support.synthstore import file, write


class Leftovers:
    """Plants each kind of leftover in a sample store, the way a dying daemon leaves them."""

    def __init__(self, sample):
        self.sample = sample
        self.synth = sample.synth

    def chain(self, depth=1):
        """Committed layers of an image that was never written (a load cut short)."""
        parent = self.sample.base
        layers = []
        for number in range(depth):
            parent = self.synth.add_layer([file("loaded/%d" % number, self.synth.next_hex().encode() * 80)], parent=parent)
            layers.append(parent)
        return layers

    def directory(self):
        name = self.synth.next_hex()
        self.synth.make_overlay_dir(name, None)
        write(self.synth.overlay(name, "diff", "partial"), "x" * 9000)
        return name

    def removing(self):
        layer = self.chain()[0]
        record = self.synth.layerdb(layer.chain_id)
        renamed = "%s-%s-removing" % (record, self.synth.next_hex())
        os.rename(record, renamed)
        return renamed, layer

    def write_set(self, cache_id=None):
        record = self.synth.path("image/overlay2/layerdb/tmp/write-set-123456")
        os.makedirs(record)
        cache_id = cache_id or self.directory()
        write(os.path.join(record, "cache-id"), cache_id)
        write(os.path.join(record, "diff"), "sha256:" + "d" * 64)
        return record, cache_id

    def dangling_link(self):
        link = self.synth.path("overlay2/l", "DANGLING" + "A" * 18)
        os.symlink("../%s/diff" % ("e" * 64), link)
        return link

    def stale_mount(self):
        container = self.sample.containers["job"]
        shutil.rmtree(self.synth.path("containers", container["id"]))
        return container

    def every_kind(self):
        """One leftover of each kind (a chain of two)."""
        self.chain(depth=2)
        self.directory()
        self.removing()
        self.write_set()
        self.dangling_link()
        self.stale_mount()


def gates(store, **overrides):
    values = dict(kinds=ORPHAN_KINDS, min_age=0, now=time.time() + 5, daemon=None, layer_dirs=len(store.dirs))
    values.update(overrides)
    return Gates(**values)


def plan(root, check_mode=False, quarantine=False, **overrides):
    store = Overlay2Store.load(root)
    return decide(classify(store).orphans, gates(store, **overrides), check_mode, quarantine)


def kinds_of(root):
    return sorted(orphan.kind for orphan in classify(Overlay2Store.load(root)).orphans)
