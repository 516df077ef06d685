"""Hostile and broken stores: nothing is read, walked or removed outside the data-root, and limits hold."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import tarfile
import time
import tracemalloc

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._facts.gather import gather
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.overlay2 import ORPHAN_KINDS, classify
from ansible_collections.strata.overlay2.plugins.module_utils._orphans.prune import SKIPPED, Gates, decide, execute
from ansible_collections.strata.overlay2.plugins.module_utils._store.overlay2 import Overlay2Store
from ansible_collections.strata.overlay2.plugins.module_utils._formats.tarsplit import FILE, SEGMENT, Entry, encode_entry
from ansible_collections.strata.overlay2.plugins.module_utils._verify.overlay2 import verify

from tests.support.synthstore import SyntheticStore, write

HOSTILE_IDS = ["../../etc", "/etc/passwd", "a" * 64 + "\0", "a" * 32 + "/" + "a" * 31, "..", ""]


@pytest.mark.parametrize("name", ["cache-id", "parent", "diff"])
@pytest.mark.parametrize("value", HOSTILE_IDS)
def test_hostile_layer_records_are_refused_as_findings(sample, name, value):
    record = sample.synth.layerdb(sample.tool.chain_id)
    write(os.path.join(record, name), value)
    store = Overlay2Store.load(sample.root)
    assert [f.path for f in store.findings] == [os.path.join(record, name)]
    assert store.findings[0].kind in ("invalid", "missing")
    gather(store)
    verify(Overlay2Store.load(sample.root))


@pytest.mark.parametrize("name", ["mount-id", "init-id", "parent"])
@pytest.mark.parametrize("value", HOSTILE_IDS[:4])
def test_hostile_mount_records_are_refused_as_findings(sample, name, value):
    mounts = sample.synth.path("image/overlay2/layerdb/mounts", sample.containers["web"]["id"])
    write(os.path.join(mounts, name), value)
    store = Overlay2Store.load(sample.root)
    assert [(f.kind, f.path) for f in store.findings] == [("invalid", os.path.join(mounts, name))]


def test_a_link_file_or_lower_entry_that_climbs_out_is_refused(sample):
    write(sample.synth.overlay(sample.app.cache_id, "link"), "../../../etc/passwd")
    write(sample.synth.overlay(sample.app.cache_id, "lower"), "l/../../../etc")
    store = Overlay2Store.load(sample.root)
    expected = [sample.synth.overlay(sample.app.cache_id, "link"), sample.synth.overlay(sample.app.cache_id, "lower")]
    assert sorted(f.path for f in store.findings) == sorted(expected)


def test_a_diff_dir_swapped_for_a_symlink_is_neither_walked_nor_hashed(sample, tmp_path):
    outside = os.path.join(str(tmp_path), "outside")
    os.makedirs(outside)
    write(os.path.join(outside, "secret"), "s" * 10000)
    mount = sample.containers["web"]["mount_id"]
    for directory in (sample.synth.overlay(mount, "diff"), sample.synth.overlay(sample.tool.cache_id, "diff")):
        subprocess.run(["rm", "-rf", directory], check=True)
        os.symlink(outside, directory)
    web = [c for c in gather(Overlay2Store.load(sample.root), container_sizes=True)["containers"] if c["mount_id"] == mount]
    assert web[0]["rw_size"] == 0
    report = verify(Overlay2Store.load(sample.root))
    (verdict,) = report.corrupt
    assert [p.detail for p in verdict.problems] == ["cannot open the layer's diff directory: is a symlink (not followed)"]


def test_an_oversize_image_config_is_refused_without_being_read(sample):
    path = sample.synth.path("image/overlay2/imagedb/content/sha256", sample.images["tool"][7:])
    with open(path, "r+b") as handle:
        handle.truncate(300 << 20)  # sparse: 300 MB that would cost as much memory if loaded
    tracemalloc.start()
    store = Overlay2Store.load(sample.root)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [f.message for f in store.findings] == ["is larger than %d bytes" % (64 << 20)]
    assert peak < 16 << 20


def test_a_multi_gigabyte_layer_is_hashed_in_bounded_memory(tmp_path):
    synth = SyntheticStore(os.path.join(str(tmp_path), "d"))
    size = 2 << 30
    info = tarfile.TarInfo("big.bin")
    info.size, info.mtime = size, 0
    header = info.tobuf(tarfile.PAX_FORMAT)
    tail = b"\0" * ((512 - size % 512) % 512) + b"\0" * 1024
    digest = hashlib.sha256(header)
    zeros = bytes(1 << 24)
    for _chunk in range(size // len(zeros)):
        digest.update(zeros)
    digest.update(tail)
    diff_id = "sha256:" + digest.hexdigest()
    cache_id = synth.next_hex()
    synth.make_overlay_dir(cache_id, None)
    with open(synth.overlay(cache_id, "diff", "big.bin"), "wb") as handle:
        handle.truncate(size)  # sparse: no disk, all zeros
    record = synth.layerdb(diff_id)
    os.makedirs(record)
    for name, value in (("diff", diff_id), ("size", str(size)), ("cache-id", cache_id)):
        write(os.path.join(record, name), value)
    lines = [Entry(SEGMENT, 0, header), Entry(FILE, 1, None, name="big.bin", size=size), Entry(SEGMENT, 2, tail)]
    with open(os.path.join(record, "tar-split.json.gz"), "wb") as handle:
        handle.write(gzip.compress(b"".join(encode_entry(line) for line in lines)))
    tracemalloc.start()
    report = verify(Overlay2Store.load(synth.root), workers=2)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert report.ok and report.bytes_verified == size
    assert peak < 32 << 20, peak  # buffers of 1 MiB per worker, not the layer


def test_a_read_only_file_system_gives_reasons_and_the_rest_still_goes(sample):
    synth = sample.synth
    dead = synth.next_hex()
    synth.make_overlay_dir(dead, None)
    write_set = synth.path("image/overlay2/layerdb/tmp/write-set-42")
    os.makedirs(write_set)
    overlay = synth.path("overlay2")
    subprocess.run(["mount", "--bind", overlay, overlay], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", overlay], check=True)
        store = Overlay2Store.load(sample.root)
        gates = Gates(kinds=ORPHAN_KINDS, min_age=0, now=time.time() + 5, daemon=None, layer_dirs=len(store.dirs))
        outcome = execute(store.data_root, decide(classify(store).orphans, gates, False, False))
    finally:
        subprocess.run(["umount", overlay], check=True)
    by_kind = {d.orphan.kind: (d.action, d.reason) for d in outcome.decisions}
    assert by_kind["unreferenced_dir"] == (SKIPPED, "removal failed, the rest kept: Read-only file system")
    assert by_kind["write_set"][0] == "removed" and not os.path.exists(write_set)
    assert os.path.isdir(synth.overlay(dead)) and len(outcome.errors) == 1


def test_a_tar_split_of_a_hundred_thousand_entries_is_streamed(tmp_path):
    synth = SyntheticStore(os.path.join(str(tmp_path), "d"))
    digest = hashlib.sha256()
    lines = []
    for position in range(120000):
        payload = (b"%064d" % position) * 4  # 256 bytes of stream per entry
        digest.update(payload)
        lines.append(encode_entry(Entry(SEGMENT, position, payload)))
    raw = b"".join(lines)
    diff_id = "sha256:" + digest.hexdigest()
    cache_id = synth.next_hex()
    synth.make_overlay_dir(cache_id, None)
    record = synth.layerdb(diff_id)
    os.makedirs(record)
    for name, value in (("diff", diff_id), ("size", "0"), ("cache-id", cache_id)):
        write(os.path.join(record, name), value)
    with open(os.path.join(record, "tar-split.json.gz"), "wb") as handle:
        handle.write(gzip.compress(raw, compresslevel=1))
    del lines
    tracemalloc.start()
    report = verify(Overlay2Store.load(synth.root), workers=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert report.ok
    assert peak < len(raw) // 10, (peak, len(raw))  # read line by line, never the whole
