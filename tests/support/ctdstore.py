"""Write synthetic containerd image stores (Docker's containerd-snapshotter mode) for unit tests and scale.

The layout is the one the engine writes (see ``_containerd`` and the engine-made fixtures in
``tests/unit/fixtures/containerd``): ``meta.db`` with images, content records with their GC labels, snapshots
and leases in namespace ``moby``; the overlayfs snapshotter's ``metadata.db``; gzip layer blobs, configs and
manifests in the content store; every layer unpacked into ``snapshots/<id>/fs``; containers with a
``config.v2.json``, their ``-init`` (committed) and RW (active) snapshots and their lease. That the shape is
the engine's is a unit test (``test_containerd_format``): every bucket kind holds the same keys as in the
engine-made stores.

    store = SynthStore(data_root)
    base = store.image("docker.io/library/base:1", [{"bin/sh": b"..."}])
    store.image("docker.io/library/app:1", [{"etc/a": b"1"}, {"etc/.wh.a": None}], parent=base)
    store.container(base)
    store.write()
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import struct
import tarfile
import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple, Union

from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import chain_ids
from tests.support.boltwriter import write_bolt

CONTENT = "io.containerd.content.v1.content"
SNAPSHOTTER = "io.containerd.snapshotter.v1.overlayfs"
META = "io.containerd.metadata.v1.bolt"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
EPOCH = 1795000000  # a fixed creation time (2026-11), as Unix seconds

Files = Dict[str, Optional[bytes]]  # tar member name -> content (None: a directory; ".wh.X": a whiteout)


def uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varint(value: int) -> bytes:
    return uvarint((value << 1) ^ (value >> 63))


def go_time(unix: float) -> bytes:
    seconds = int(unix) + 62135596800
    nanos = int((unix - int(unix)) * 1e9)
    return b"\x01" + seconds.to_bytes(8, "big") + nanos.to_bytes(4, "big") + b"\xff\xff"


def gzip_bytes(raw: bytes) -> bytes:
    """gzip with a fixed header (no name, no time, OS 255): the same bytes on every Python (``gzip.compress``
    writes another OS byte from 3.13 on, which would change every digest of the store)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = compressor.compress(raw) + compressor.flush()
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body + struct.pack("<II", zlib.crc32(raw), len(raw) & 0xFFFFFFFF)


def layer_tar(files: Files) -> bytes:
    """A layer tar as the engine writes one: sorted members, root-owned, whiteouts as empty files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            content = files[name]
            info = tarfile.TarInfo(name)
            info.mtime = EPOCH
            if content is None and not name.rsplit("/", 1)[-1].startswith(".wh."):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                continue
            data = content or b""
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unpack(files: Files, target: str) -> None:
    """The layer as the overlayfs snapshotter unpacks it: whiteouts as 0/0 character devices."""
    os.makedirs(target, exist_ok=True)
    for name in sorted(files):
        path = os.path.join(target, name)
        base = os.path.basename(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if base == ".wh..wh..opq":
            os.setxattr(os.path.dirname(path), "trusted.overlay.opaque", b"y")
        elif base.startswith(".wh."):
            os.mknod(os.path.join(os.path.dirname(path), base[4:]), stat.S_IFCHR | 0o000, os.makedev(0, 0))
        elif files[name] is None:
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o755)
        else:
            with open(path, "wb") as handle:
                handle.write(files[name] or b"")
            os.chmod(path, 0o644)
        os.utime(path if not base.startswith(".wh.") else os.path.dirname(path), (EPOCH, EPOCH))


def written_at_epoch(root: str) -> None:
    """Every file and directory below ``root`` dated ``EPOCH``, as a store that has been at rest since then
    (not one whose files containerd is writing now; see ``_containerd_orphans.IN_FLIGHT_SECONDS``)."""
    for directory, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            os.utime(os.path.join(directory, name), (EPOCH, EPOCH), follow_symlinks=False)
        os.utime(directory, (EPOCH, EPOCH))


def usage(path: str) -> Tuple[int, int]:
    """(bytes as st_blocks * 512 of unique inodes, the directory included; inodes), as the snapshotter counts."""
    seen = set()
    total = 0
    for root, dirs, names in os.walk(path):
        for name in [root] + [os.path.join(root, n) for n in dirs + names]:
            info = os.lstat(name)
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512
    return total, len(seen)


@dataclass
class Image:
    names: List[str]
    layers: List[Files]
    config: Dict[str, object] = field(default_factory=dict)
    diff_ids: List[str] = field(default_factory=list)
    blobs: List[str] = field(default_factory=list)
    config_digest: str = ""
    target: str = ""

    @property
    def chain_ids(self) -> List[str]:
        return chain_ids(self.diff_ids)


class SynthStore:
    """A containerd image store under ``data_root`` (layout a: ``<data_root>/containerd/daemon``)."""

    def __init__(self, data_root: str, ctd_root: Optional[str] = None, namespace: str = "moby") -> None:
        self.data_root = data_root
        self.ctd_root = ctd_root or os.path.join(data_root, "containerd", "daemon")
        self.namespace = namespace
        self.images: List[Image] = []
        self.containers: List[Tuple[str, str, Image]] = []
        self.blobs: Dict[str, Tuple[bytes, Dict[bytes, bytes]]] = {}
        self.snapshots: Dict[str, Dict[str, object]] = {}  # key -> parent, kind, id, size
        self.leases: Dict[str, Dict[bytes, object]] = {}
        self.ingests: Dict[str, bytes] = {}  # backend ref -> the bytes written so far
        self.next_id = 1
        self.seq = 1

    # -- content -------------------------------------------------------------------------------------------
    def blob(self, data: bytes, labels: Optional[Dict[str, str]] = None) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[digest] = (data, {k.encode(): v.encode() for k, v in (labels or {}).items()})
        return digest

    def image(self, name: str, layers: List[Files], parent: Optional[Image] = None,
              compress: Union[bool, Callable[[bytes], bytes]] = True) -> Image:
        """An image of ``layers`` on top of ``parent``'s (which it then shares), tagged ``name``; its layers
        are gzip-compressed (``compress`` True), stored as plain tars (False) or compressed by ``compress``."""
        image = Image(names=[name], layers=(parent.layers if parent else []) + list(layers))
        image.diff_ids = list(parent.diff_ids) if parent else []
        image.blobs = list(parent.blobs) if parent else []
        for files in layers:
            raw = layer_tar(files)
            diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
            data = compress(raw) if callable(compress) else gzip_bytes(raw) if compress else raw
            image.blobs.append(self.blob(data, {"containerd.io/uncompressed": diff_id}))
            image.diff_ids.append(diff_id)
        image.config = {"architecture": "amd64", "os": "linux", "created": "2026-11-01T00:00:00Z",
                        "config": {"Cmd": ["/bin/sh"]},
                        "rootfs": {"type": "layers", "diff_ids": image.diff_ids}}
        self.images.append(image)
        return image

    def container(self, image: Image, name: str = "") -> str:
        """A created container of ``image`` (its -init and RW snapshots, its lease, its config.v2.json)."""
        cid = hashlib.sha256(("container %d" % len(self.containers)).encode()).hexdigest()
        self.containers.append((cid, name or "c-" + cid[:6], image))
        return cid

    def ingest(self, digest: str, data: bytes) -> str:
        """A write in progress, as ``docker load`` leaves one: the ingest directory, its record and the lease
        (24 h) that holds it."""
        ref = "%s/1/tar-blobs/%s" % (self.namespace, digest.replace(":", "/"))
        self.ingests[ref] = data
        self.leases["123456789-abcd"] = {b"createdat": go_time(EPOCH),
                                         b"labels": {b"containerd.io/gc.expire": b"2099-01-01T00:00:00Z"},
                                         b"ingests": {ref.encode(): b""}}
        return ref

    # -- writing -------------------------------------------------------------------------------------------
    def snapshot(self, key: str, parent: Optional[str], files: Optional[Files], kind: int) -> str:
        snapshot_id = str(self.next_id)
        self.next_id += 1
        path = os.path.join(self.ctd_root, SNAPSHOTTER, "snapshots", snapshot_id)
        os.makedirs(os.path.join(path, "fs"))
        if kind == 2:
            os.makedirs(os.path.join(path, "work"))
        if files:
            unpack(files, os.path.join(path, "fs"))
        size, inodes = usage(os.path.join(path, "fs"))
        self.snapshots[key] = {"parent": parent, "kind": kind, "id": snapshot_id, "size": size, "inodes": inodes,
                               "seq": self.seq}
        self.seq += 1
        return snapshot_id

    def write(self) -> None:
        os.makedirs(os.path.join(self.ctd_root, META), exist_ok=True)
        os.makedirs(os.path.join(self.ctd_root, CONTENT, "blobs", "sha256"), exist_ok=True)
        os.makedirs(os.path.join(self.ctd_root, CONTENT, "ingest"), exist_ok=True)
        os.makedirs(os.path.join(self.ctd_root, SNAPSHOTTER, "snapshots"), exist_ok=True)
        image_records: Dict[bytes, object] = {}
        for image in self.images:
            chains = image.chain_ids
            for index, chain_id in enumerate(chains):
                if chain_id not in self.snapshots:
                    self.snapshot(chain_id, chains[index - 1] if index else None, image.layers[index], 3)
            config = json.dumps(image.config, sort_keys=True).encode()
            image.config_digest = self.blob(config, {"containerd.io/gc.ref.snapshot.overlayfs": chains[-1]}
                                            if chains else {})
            manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                        "config": {"mediaType": CONFIG_TYPE, "digest": image.config_digest, "size": len(config)},
                        "layers": [{"mediaType": LAYER_TYPE, "digest": digest, "size": len(self.blobs[digest][0])}
                                   for digest in image.blobs]}
            raw = json.dumps(manifest, sort_keys=True).encode()
            labels = {"containerd.io/gc.ref.content.config": image.config_digest}
            labels.update(("containerd.io/gc.ref.content.l.%d" % i, d) for i, d in enumerate(image.blobs))
            image.target = self.blob(raw, labels)
            for name in image.names:
                image_records[name.encode()] = {
                    b"createdat": go_time(EPOCH), b"updatedat": go_time(EPOCH),
                    b"target": {b"digest": image.target.encode(), b"mediatype": MANIFEST_TYPE.encode(),
                                b"size": varint(len(raw))}}
        for cid, name, image in self.containers:
            top = image.chain_ids[-1]
            self.snapshot(cid + "-init", top, {".dockerenv": b"", "etc/hostname": b""}, 3)
            self.snapshot(cid, cid + "-init", None, 2)
            self.leases[cid] = {b"createdat": go_time(EPOCH),
                                b"snapshots": {b"overlayfs": {cid.encode(): b"", (cid + "-init").encode(): b""}}}
            self.write_container(cid, name, image)
        for ref, data in self.ingests.items():
            directory = os.path.join(self.ctd_root, CONTENT, "ingest", hashlib.sha256(ref.encode()).hexdigest())
            os.makedirs(directory)
            for name, value in (("ref", ref.encode()), ("data", data), ("total", str(len(data) * 2).encode())):
                with open(os.path.join(directory, name), "wb") as handle:
                    handle.write(value)
        for digest, (data, _labels) in self.blobs.items():
            with open(os.path.join(self.ctd_root, CONTENT, "blobs", "sha256", digest[7:]), "wb") as handle:
                handle.write(data)
        ns = self.namespace.encode()
        meta = {b"v1": {b"version": varint(4), ns: {
            b"images": image_records,
            b"content": {b"blob": {
                digest.encode(): self.content_record(data, labels) for digest, (data, labels) in self.blobs.items()},
                b"ingests": {ref.encode(): {b"ref": ref.encode()} for ref in self.ingests}},
            b"snapshots": {b"overlayfs": {key.encode(): self.snapshot_record(key) for key in self.snapshots}},
            b"leases": {cid.encode(): lease for cid, lease in self.leases.items()},
        }}}
        write_bolt(os.path.join(self.ctd_root, META, "meta.db"), meta)
        backend = {b"v1": {b"snapshots": {self.backend_key(key).encode(): self.backend_record(key)
                                          for key in self.snapshots}}}
        write_bolt(os.path.join(self.ctd_root, SNAPSHOTTER, "metadata.db"), backend)
        written_at_epoch(self.ctd_root)

    @staticmethod
    def content_record(data: bytes, labels: Dict[bytes, bytes]) -> Dict[bytes, object]:
        record = {b"createdat": go_time(EPOCH), b"updatedat": go_time(EPOCH), b"size": varint(len(data))}
        if labels:
            record[b"labels"] = labels
        return record

    def snapshot_record(self, key: str) -> Dict[bytes, object]:
        record: Dict[bytes, object] = {b"name": self.backend_key(key).encode(), b"createdat": go_time(EPOCH),
                                       b"updatedat": go_time(EPOCH)}
        parent = self.snapshots[key]["parent"]
        if parent:
            record[b"parent"] = str(parent).encode()
        return record

    def backend_record(self, key: str) -> Dict[bytes, object]:
        entry = self.snapshots[key]
        record: Dict[bytes, object] = {b"id": uvarint(int(str(entry["id"]))), b"kind": bytes([int(str(entry["kind"]))]),
                                       b"createdat": go_time(EPOCH), b"updatedat": go_time(EPOCH)}
        if entry["parent"]:
            record[b"parent"] = self.backend_key(str(entry["parent"])).encode()
        if entry["kind"] == 3:
            record[b"size"] = varint(int(str(entry["size"])))
            record[b"inodes"] = varint(int(str(entry["inodes"])))
        return record

    def backend_key(self, key: str) -> str:
        return "%s/%d/%s" % (self.namespace, self.snapshots[key]["seq"], key)

    def write_container(self, cid: str, name: str, image: Image) -> None:
        directory = os.path.join(self.data_root, "containers", cid)
        os.makedirs(directory)
        config = {"ID": cid, "Name": "/" + name, "Image": image.target, "Driver": "overlayfs",
                  "State": {"Running": False, "Pid": 0},
                  "ImageManifest": {"mediaType": MANIFEST_TYPE, "digest": image.target}}
        with open(os.path.join(directory, "config.v2.json"), "w", encoding="utf-8") as handle:
            json.dump(config, handle)


def scale_layer(rng, made: int, step: int) -> Files:
    """Most layers change a file or two; one in ten holds dozens of small files (as ``synthstore``'s)."""
    files: Files = {"app/%d/%d.txt" % (made, step): ("%d-%d\n" % (made, step)).encode()}
    if rng.random() < 0.10:
        files.update(("lib/%d/%d/m%d.py" % (made, step, index), ("# module %d\n" % index * rng.randint(1, 40)).encode())
                     for index in range(rng.randint(20, 120)))
    return files


def generate(data_root: str, layers: int, seed: str = "scale") -> Dict[str, int]:
    """A containerd image store of about ``layers`` layers shaped like ``synthstore.generate``'s build server:
    twenty one-layer bases; images stacking 1 to 40 layers on a base, each chain cut into up to three tagged
    images; a quarter of the images with a created container; one leftover snapshot dir per hundred layers."""
    import random  # pylint: disable=import-outside-toplevel

    rng = random.Random(seed)
    store = SynthStore(data_root)
    bases = [store.image("docker.io/base/b%d:1" % n, [{"bin/tool%d" % n: bytes(rng.randrange(256) for _byte in range(64))}])
             for n in range(min(20, layers))]
    made = len(bases)
    images = len(bases)
    while made < layers:
        depth = rng.randint(1, 40)
        base = rng.choice(bases)
        chain = [scale_layer(rng, made, step) for step in range(depth)]
        made += depth
        for cut in sorted({depth} | {rng.randint(1, depth) for _cut in range(2)}):
            image = store.image("docker.io/build/app-%d:%d" % (made, cut), chain[:cut], parent=base)
            images += 1
            if rng.random() < 0.25:
                store.container(image)
    store.write()
    leftovers = max(layers // 100, 1)
    snapshots = os.path.join(store.ctd_root, SNAPSHOTTER, "snapshots")
    for number in range(leftovers):
        os.makedirs(os.path.join(snapshots, str(900000 + number), "fs"))
    return {"layers": made, "images": images, "containers": len(store.containers), "leftovers": leftovers}
