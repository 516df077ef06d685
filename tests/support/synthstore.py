"""Write a Docker data-root in the on-disk format the engine writes (overlay2 graph driver).

Layers are real tar streams: their DiffID is the sha256 of the stream and their
tar-split.json.gz rebuilds it exactly from the diff directory, as the engine's
``docker save`` does. Used by the unit tests (small, hostile stores) and by the
scale benchmarks (large ones).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import chain_ids, hex_of, next_chain_id
from ansible_collections.strata.overlay2.plugins.module_utils._formats.tarsplit import FILE, SEGMENT, Entry, crc64, encode_entry

MTIME = 1700000000


@dataclass
class Item:
    """One member of a layer: file, dir, symlink, hardlink, whiteout (of ``path``) or opaque (dir ``path``)."""

    path: str
    kind: str = "file"
    data: bytes = b""
    target: str = ""
    mode: int = 0o644


def file(path: str, data: Union[bytes, str] = b"", mode: int = 0o644) -> Item:
    return Item(path, "file", data.encode() if isinstance(data, str) else data, mode=mode)


def directory(path: str) -> Item:
    return Item(path, "dir", mode=0o755)


def symlink(path: str, target: str) -> Item:
    return Item(path, "symlink", target=target, mode=0o777)


def hardlink(path: str, target: str) -> Item:
    return Item(path, "hardlink", target=target)


def whiteout(path: str) -> Item:
    return Item(path, "whiteout")


def opaque(path: str) -> Item:
    return Item(path, "opaque", mode=0o755)


@dataclass
class Layer:
    chain_id: str
    diff_id: str
    cache_id: str
    link: str
    parent: Optional["Layer"]
    size: int

    def chain(self) -> List["Layer"]:
        """This layer and its ancestors, topmost first."""
        layers = []
        current: Optional[Layer] = self
        while current is not None:
            layers.append(current)
            current = current.parent
        return layers


@dataclass
class SyntheticStore:
    root: str
    seed: str = "strata"
    counter: int = 0
    repositories: Dict[str, Dict[str, str]] = field(default_factory=dict)
    layers: Dict[str, Layer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for part in ("image/overlay2/imagedb/content/sha256", "image/overlay2/imagedb/metadata/sha256",
                     "image/overlay2/layerdb/sha256", "image/overlay2/layerdb/mounts",
                     "image/overlay2/layerdb/tmp", "overlay2/l", "containers"):
            os.makedirs(os.path.join(self.root, part), exist_ok=True)
        self.write_repositories()

    # -- ids ---------------------------------------------------------------
    def next_hex(self) -> str:
        self.counter += 1
        return hashlib.sha256(("%s/%d" % (self.seed, self.counter)).encode()).hexdigest()

    def next_link(self) -> str:
        return base64.b32encode(bytes.fromhex(self.next_hex())).decode()[:26]

    # -- paths -------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def layerdb(self, chain_id: str) -> str:
        return self.path("image/overlay2/layerdb/sha256", hex_of(chain_id))

    def overlay(self, name: str, *rest: str) -> str:
        return self.path("overlay2", name, *rest)

    # -- layers ------------------------------------------------------------
    def add_layer(self, items: Sequence[Item], parent: Optional[Layer] = None, cache_id: Optional[str] = None) -> Layer:
        tar_bytes = build_tar(items)
        diff_id = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
        chain_id = next_chain_id(parent.chain_id if parent else None, diff_id)
        cache_id = cache_id or self.next_hex()
        link = self.make_overlay_dir(cache_id, parent)
        extract(items, self.overlay(cache_id, "diff"))
        size = diff_size(self.overlay(cache_id, "diff"))
        directory_path = self.layerdb(chain_id)
        os.makedirs(directory_path)
        write(os.path.join(directory_path, "diff"), diff_id)
        write(os.path.join(directory_path, "size"), str(size))
        write(os.path.join(directory_path, "cache-id"), cache_id)
        if parent:
            write(os.path.join(directory_path, "parent"), parent.chain_id)
        with open(os.path.join(directory_path, "tar-split.json.gz"), "wb") as handle:
            handle.write(gzip.compress(tar_split(tar_bytes)))
        layer = Layer(chain_id, diff_id, cache_id, link, parent, size)
        self.layers[chain_id] = layer
        return layer

    def make_overlay_dir(self, name: str, parent: Optional[Layer], lower_links: Optional[List[str]] = None) -> str:
        os.makedirs(self.overlay(name, "diff"))
        link = self.next_link()
        write(self.overlay(name, "link"), link)
        os.symlink("../%s/diff" % name, self.path("overlay2", "l", link))
        lowers = lower_links if lower_links is not None else ([layer.link for layer in parent.chain()] if parent else [])
        if lowers:
            write(self.overlay(name, "lower"), ":".join("l/" + lid for lid in lowers))
            os.makedirs(self.overlay(name, "work"))
        if parent is not None:
            write(self.overlay(parent.cache_id, "committed"), "")
        return link

    # -- images ------------------------------------------------------------
    def add_image(self, layers: Sequence[Layer], tags: Sequence[str] = (), parent_image: Optional[str] = None,
                  extra: Optional[dict] = None) -> str:
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": "2026-11-27T00:00:00Z",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        }
        config.update(extra or {})
        raw = json.dumps(config, separators=(",", ":")).encode()
        image_hex = hashlib.sha256(raw).hexdigest()
        with open(self.path("image/overlay2/imagedb/content/sha256", image_hex), "wb") as handle:
            handle.write(raw)
        if parent_image:
            meta = self.path("image/overlay2/imagedb/metadata/sha256", image_hex)
            os.makedirs(meta, exist_ok=True)
            write(os.path.join(meta, "parent"), parent_image)
        assert [layer.chain_id for layer in layers] == chain_ids(layer.diff_id for layer in layers)
        for tag in tags:
            self.tag(tag, "sha256:" + image_hex)
        return "sha256:" + image_hex

    def tag(self, reference: str, image_id: str) -> None:
        repository = reference.split("@", maxsplit=1)[0].rsplit(":", 1)[0]
        self.repositories.setdefault(repository, {})[reference] = image_id
        self.write_repositories()

    def write_repositories(self) -> None:
        write(self.path("image/overlay2/repositories.json"), json.dumps({"Repositories": self.repositories}))

    # -- containers --------------------------------------------------------
    def add_container(self, image_id: str, top: Optional[Layer], name: str, running: bool = False,
                      rw_files: Sequence[Item] = ()) -> Dict[str, str]:
        container_id = self.next_hex()
        mount_id = self.next_hex()
        image_links = [layer.link for layer in top.chain()] if top else []
        init_link = self.make_overlay_dir(mount_id + "-init", None, image_links)
        extract([file(".dockerenv"), directory("etc"), file("etc/hosts"), file("etc/hostname")],
                self.overlay(mount_id + "-init", "diff"))
        self.make_overlay_dir(mount_id, None, [init_link] + image_links)
        extract(rw_files, self.overlay(mount_id, "diff"))
        mounts = self.path("image/overlay2/layerdb/mounts", container_id)
        os.makedirs(mounts)
        write(os.path.join(mounts, "mount-id"), mount_id)
        write(os.path.join(mounts, "init-id"), mount_id + "-init")
        if top:
            write(os.path.join(mounts, "parent"), top.chain_id)
        os.makedirs(self.path("containers", container_id, "checkpoints"))
        write(self.path("containers", container_id, "config.v2.json"), json.dumps(container_config(
            container_id, name, image_id, running)))
        write(self.path("containers", container_id, "hostconfig.json"), json.dumps(HOST_CONFIG))
        return {"id": container_id, "mount_id": mount_id}


ZERO_TIME = "0001-01-01T00:00:00Z"
HOST_CONFIG = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}}, "NetworkMode": "none",
    "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
    "VolumeDriver": "", "VolumesFrom": None, "CgroupnsMode": "host", "Dns": [], "DnsOptions": [], "DnsSearch": [],
    "IpcMode": "private", "Cgroup": "", "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
    "PublishAllPorts": False, "ReadonlyRootfs": False, "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864,
    "Runtime": "runc", "ConsoleSize": [0, 0], "Isolation": "", "Devices": [],
    "MaskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
    "ReadonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
}


def container_config(container_id: str, name: str, image_id: str, running: bool) -> dict:
    """config.v2.json with the fields dockerd needs to restore a container (a thinner one makes 20.10 panic)."""
    return {
        "StreamConfig": {},
        "State": {"Running": running, "Paused": False, "Restarting": False, "OOMKilled": False,
                  "RemovalInProgress": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
                  "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME, "Health": None},
        "ID": container_id, "Created": "2026-11-27T00:00:00Z", "Managed": False, "Path": "sh", "Args": [],
        "Config": {"Hostname": container_id[:12], "Domainname": "", "User": "", "AttachStdin": False,
                   "AttachStdout": True, "AttachStderr": True, "Tty": False, "OpenStdin": False,
                   "StdinOnce": False, "Env": None, "Cmd": ["sh"], "Image": image_id, "Volumes": None,
                   "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": {}},
        "Image": image_id,
        "NetworkSettings": {"Bridge": "", "SandboxID": "", "HairpinMode": False, "Networks": {}, "Ports": None,
                            "SandboxKey": ""},
        "LogPath": "", "Name": "/" + name, "Driver": "overlay2", "OS": "linux", "MountLabel": "",
        "ProcessLabel": "", "RestartCount": 0, "HasBeenStartedBefore": False, "HasBeenManuallyStopped": False,
        "MountPoints": {}, "AppArmorProfile": "", "HostnamePath": "", "HostsPath": "", "ShmPath": "",
        "ResolvConfPath": "", "SeccompProfile": "", "NoNewPrivileges": False,
    }


def write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def build_tar(items: Sequence[Item]) -> bytes:
    """The layer's tar stream, as the engine would see it: whiteouts as .wh. files, opaque dirs as .wh..wh..opq."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as archive:
        for item in items:
            info = tarfile.TarInfo(item.path)
            info.mtime = MTIME
            info.mode = item.mode
            data = None
            if item.kind == "file":
                info.size = len(item.data)
                data = io.BytesIO(item.data)
            elif item.kind in ("dir", "opaque"):
                info.type = tarfile.DIRTYPE
            elif item.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = item.target
            elif item.kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = item.target
            elif item.kind == "whiteout":
                head, tail = os.path.split(item.path)
                info.name = os.path.join(head, ".wh." + tail)
            archive.addfile(info, data)
            if item.kind == "opaque":
                marker = tarfile.TarInfo(os.path.join(item.path, ".wh..wh..opq"))
                marker.mtime = MTIME
                archive.addfile(marker)
    return buffer.getvalue()


def tar_split(tar_bytes: bytes) -> bytes:
    """The tar-split lines of a tar stream: raw segments between the members' contents, file entries for them."""
    lines = []
    position = 0
    offset = 0
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r", encoding="utf-8", errors="surrogateescape") as archive:
        for member in archive:
            lines.append(encode_entry(Entry(SEGMENT, position, tar_bytes[offset:member.offset_data])))
            position += 1
            content = tar_bytes[member.offset_data:member.offset_data + member.size] if member.isreg() else b""
            payload = crc64(content).to_bytes(8, "big") if content else None
            name = member.name + "/" if member.isdir() else member.name
            lines.append(encode_entry(Entry(FILE, position, payload, name=name, size=len(content))))
            position += 1
            offset = member.offset_data + len(content)
    lines.append(encode_entry(Entry(SEGMENT, position, tar_bytes[offset:])))
    return b"".join(lines)


def extract(items: Sequence[Item], target: str) -> None:
    """Write items into a diff directory as the overlay2 driver stores them."""
    os.makedirs(target, exist_ok=True)
    for item in items:
        path = os.path.join(target, item.path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if item.kind == "file":
            with open(path, "wb") as handle:
                handle.write(item.data)
            os.chmod(path, item.mode)
        elif item.kind in ("dir", "opaque"):
            os.makedirs(path, exist_ok=True)
            if item.kind == "opaque":
                os.setxattr(path, "trusted.overlay.opaque", b"y")
        elif item.kind == "symlink":
            os.symlink(item.target, path)
        elif item.kind == "hardlink":
            os.link(os.path.join(target, item.target), path)
        elif item.kind == "whiteout":
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))
        os.utime(path, (MTIME, MTIME), follow_symlinks=False)


def diff_size(path: str) -> int:
    total = 0
    seen = set()
    for parent, dirs, files in os.walk(path):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(parent, d))]:
            info = os.lstat(os.path.join(parent, name))
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total


def layer_content(rng, made: int, step: int) -> List[Item]:
    """Most layers change a file or two; one in ten holds many small files; one in a hundred a large one."""
    items = [file("app/%d/%d.txt" % (made, step), "%d-%d\n" % (made, step))]
    roll = rng.random()
    if roll < 0.10:
        items.extend(file("lib/%d/%d/m%d.py" % (made, step, index), "# module %d\n" % index * rng.randint(1, 40))
                     for index in range(rng.randint(20, 120)))
    elif roll < 0.11:
        items.append(file("opt/%d/%d/blob.bin" % (made, step), bytes(rng.getrandbits(8) for _byte in range(4096))
                          * rng.randint(64, 512)))
    return items


def generate(root: str, layers: int, seed: str = "scale", min_images: int = 0,
             min_containers: int = 0) -> Dict[str, int]:
    """A store of about ``layers`` layers shaped like a build server's, with leftovers of every kind.

    Twenty base layers are shared by many images; images stack 1 to 40 layers on a base (a few reach 100);
    most layers change a file or two, one in ten holds dozens of small files, one in a hundred 0.25-2 MB;
    a quarter of the images have a container; about 3% of the layers are leftovers: unreferenced chains and
    directories, a write-set, *-removing records, dangling links and stale mounts. ``min_images`` and
    ``min_containers`` add images (another config on a chain the store has) and containers on them until
    the store holds that many.
    """
    import random  # pylint: disable=import-outside-toplevel

    rng = random.Random(seed)
    synth = SyntheticStore(root, seed=seed)
    bases = [synth.add_layer([directory("bin"), file("bin/tool%d" % n, b"\x7fELF" + bytes(rng.randrange(256) for _byte in range(64)))])
             for n in range(min(20, layers))]
    made = len(bases)
    images = containers = 0
    while made < layers * 0.97:
        depth = 100 if rng.random() < 0.01 else rng.randint(1, 40)
        top = rng.choice(bases)
        chain = [top]
        for step in range(depth):
            top = synth.add_layer(layer_content(rng, made, step), parent=top)
            chain.append(top)
            made += 1
        for cut in sorted({len(chain)} | {rng.randint(1, len(chain)) for _cut in range(2)}):
            image = synth.add_image(chain[:cut], ["build/app-%d:%d" % (made, cut)])
            images += 1
            if rng.random() < 0.25:
                synth.add_container(image, chain[cut - 1], "c%d" % images, running=rng.random() < 0.5)
                containers += 1
    chains = [layer for layer in synth.layers.values() if layer.parent is not None]
    while images < min_images or containers < min_containers:
        top = rng.choice(chains)
        image = synth.add_image(list(reversed(top.chain())), ["build/extra-%d:1" % images],
                                extra={"config": {"Cmd": ["sh"], "Env": ["EXTRA=%d" % images]}})
        images += 1
        if containers < min_containers:
            synth.add_container(image, top, "c%d" % images, running=rng.random() < 0.5)
            containers += 1
    leftovers = max(layers - made, 6)
    for number in range(leftovers):
        kind = number % 6
        if kind == 0:
            synth.add_layer([file("orphan/%d" % number, "o")], parent=rng.choice(bases))
        elif kind == 1:
            synth.make_overlay_dir(synth.next_hex(), None)
        elif kind == 2:
            record = synth.path("image/overlay2/layerdb/tmp/write-set-%d" % (1000 + number))
            os.makedirs(record)
            write(os.path.join(record, "cache-id"), synth.next_hex())
        elif kind == 3:
            layer = synth.add_layer([file("removing/%d" % number, "r")], parent=rng.choice(bases))
            os.rename(synth.layerdb(layer.chain_id), "%s-%s-removing" % (synth.layerdb(layer.chain_id), synth.next_hex()))
        elif kind == 4:
            os.symlink("../%s/diff" % synth.next_hex(), synth.path("overlay2", "l", synth.next_link()))
        else:
            gone = synth.add_container("sha256:" + "0" * 64, rng.choice(bases), "gone%d" % number)
            shutil.rmtree(synth.path("containers", gone["id"]))
    return {"layers": len(synth.layers), "images": images, "containers": containers, "leftovers": leftovers}
