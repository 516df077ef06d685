# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The overlay2 graph-driver store: its layout (every path of it is built here) and its reader.

``Overlay2Store.load(data_root)`` reads image configs, tags, the layer database, container mounts and
configs, and the overlay2 directories with their short links. Nothing is written. Every id read from disk is
validated before it is used as a path component (see ``_util.ids``) and every file is opened without
following symlinks (see ``_util.safefs``). One bad entry becomes a ``Finding`` and the rest of the store is
still read; only a data-root that is missing or holds another layout raises ``StoreError``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Dict, Iterable, List, Optional, Set, Tuple

from ansible_collections.strata.overlay2.plugins.module_utils._store.buildkit import UNKNOWN, read_ownership
from ansible_collections.strata.overlay2.plugins.module_utils._store.containers import read_containers
from ansible_collections.strata.overlay2.plugins.module_utils._store.model import (
    CONFIG_LIMIT,
    MIGHT_NAME_CHAINS,
    MIGHT_NAME_DIRS,
    Image,
    Layer,
    Store,
    StoreError,
    resolve_data_root,
)
from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import (
    InvalidId,
    chain_ids,
    checked_lower,
    hex_of,
    is_cache_id,
    is_hex64,
    is_link_id,
    lower_ids,
    parse_cache_id,
    parse_digest,
    parse_init_id,
    parse_mount_id,
    removal_origin,
    removing_chain,
    shorten,
)
from ansible_collections.strata.overlay2.plugins.module_utils._util.parallel import map_chunks, split_exactly, worker_count
from ansible_collections.strata.overlay2.plugins.module_utils._util.safefs import (
    SafeDir,
    describe_os_error,
    Read,
    present,
    read_record_at,
)

MAX_LOWER_DEPTH = 128  # the overlay2 driver refuses a layer with more lower layers than this
LAYER_FILES = ("diff", "cache-id", "size", "parent")  # what a layerdb record holds (parent: not in a base layer)
OVERLAY_DIR_FILES = ("link", "lower")  # what an overlay2 directory holds besides its trees (lower: not in a base)
ENTRIES_PER_WORKER = 1500  # a directory of records is read by one more process for each this many entries

# The layout below the data-root: every part of the store, as path components
IMAGE_CONFIGS = ("image", "overlay2", "imagedb", "content", "sha256")  # <image id hex>: the image's config
IMAGE_METADATA = ("image", "overlay2", "imagedb", "metadata", "sha256")  # <image id hex>/parent
TAG_STORE = ("image", "overlay2")  # repositories.json
LAYER_RECORDS = ("image", "overlay2", "layerdb", "sha256")  # <chain id hex>/{diff,cache-id,size,parent,...}
MOUNT_RECORDS = ("image", "overlay2", "layerdb", "mounts")  # <container id>/{mount-id,init-id,parent}
WRITE_SETS = ("image", "overlay2", "layerdb", "tmp")  # write-set-<n>: a layer being registered
LAYER_DIRS = ("overlay2",)  # <cache-id or mount-id>/{diff,work,merged,link,lower}
LINKS = ("overlay2", "l")  # <link id> -> ../<dir>/diff
LAYER_RECORDS_PATH, MOUNT_RECORDS_PATH = "/".join(LAYER_RECORDS), "/".join(MOUNT_RECORDS)


def relative(where: Tuple[str, ...], *names: str) -> str:
    """A part of the layout below the data-root, as a relative path."""
    return "/".join(where + names)


# where a store of this kind keeps its data, relative to a data-root: another kind's store sees them as its own
STORE_PATHS = (relative(LAYER_DIRS), relative(TAG_STORE))


def missing_dir(name: str) -> str:
    """What is wrong with a layer or mount record that names a directory that is not in overlay2/."""
    return "names overlay2/%s, which does not exist" % name


def shared_dir(name: str, others: List[str]) -> str:
    """What is wrong with a layer or mount record that names a directory other records name too."""
    return "names overlay2/%s, which %s names too" % (name, " and ".join(others))


def config_mismatch(image: Image) -> str:
    """What is wrong with an overlay2 image config whose bytes do not hash to its name (its id)."""
    return "config content hashes to %s, not to its name" % image.config_digest


@dataclass
class Mount:
    container_id: str
    mount_id: str
    init_id: Optional[str]
    parent: Optional[str]

    @property
    def dir_names(self) -> List[str]:
        """The container's overlay2 directories: its writable layer, and its init layer when it has one."""
        return [self.mount_id] + ([self.init_id] if self.init_id else [])


@dataclass
class OverlayDir:
    name: str
    link: Optional[str]
    lower_text: str = ""  # the ``lower`` file, checked (``l/<id>:l/<id>...``, topmost first); "" without one
    lower_unknown: bool = False  # the ``lower`` file exists but could not be read or parsed

    @property
    def lower(self) -> List[str]:
        """The link ids of the ``lower`` file, topmost first (split when asked: one string per directory is
        kept, and sent between processes, instead of a list of ids)."""
        return lower_ids(self.lower_text)


@dataclass
class Overlay2Store(Store):
    """The overlay2 store: the model, plus what only it has, and the paths of its layout."""

    kind: ClassVar[str] = "overlay2"

    removing: List[str] = field(default_factory=list)  # layerdb ``*-removing`` dir names
    # what a removal of this collection's renamed and did not finish (``_util.ids.removal_name``): overlay2
    # directories, and mount records with what they still name (None: nothing more can be read of it)
    removing_dirs: List[str] = field(default_factory=list)
    removing_mounts: Dict[str, Optional[Mount]] = field(default_factory=dict)
    mounts: Dict[str, Mount] = field(default_factory=dict)
    dirs: Dict[str, OverlayDir] = field(default_factory=dict)
    links: Dict[str, Optional[str]] = field(default_factory=dict)  # link id -> dir name (None: dangling or foreign)

    # -- paths (plain concatenation: the data-root is absolute with no trailing slash, names are validated ids) --
    def path(self, where: Tuple[str, ...], *names: str) -> str:
        return self.data_root + "/" + relative(where, *names)

    def dir_path(self, name: str, *rest: str) -> str:
        return "/".join((self.data_root, "overlay2", name) + rest)

    def diff_dir(self, name: str) -> str:
        return self.data_root + "/overlay2/" + name + "/diff"

    def layer_path(self, chain_id: str) -> str:
        return self.data_root + "/" + LAYER_RECORDS_PATH + "/" + hex_of(chain_id)

    def mount_path(self, container_id: str) -> str:
        return self.data_root + "/" + MOUNT_RECORDS_PATH + "/" + container_id

    def config_path(self, image_id: str) -> str:
        return self.path(IMAGE_CONFIGS, hex_of(image_id))

    # -- loading -----------------------------------------------------------
    @classmethod
    def load(cls, data_root: str) -> "Overlay2Store":
        root_path = resolve_data_root(data_root)
        store = cls(data_root=root_path)
        with SafeDir.open(root_path) as root:
            check_layout(root)
            _Loader(store, root).load()
        return store


def check_layout(root: SafeDir) -> None:
    """Raise StoreError naming what was found when the data-root is not an overlay2 graph-driver store."""
    drivers: List[str] = []
    if root.exists("image"):
        try:
            with root.subdir("image") as image_dir:
                drivers = image_dir.names()
        except OSError as exc:
            raise StoreError("cannot read %s: %s" % (root.join("image"), describe_os_error(exc)))
    if "overlay2" in drivers:
        return
    if drivers:
        raise StoreError(
            "%s holds the image store of another storage driver (%s), not overlay2"
            % (root.path, ", ".join(shorten(name) for name in drivers)))
    if any(root.exists(name) for name in ("containerd", "containers", "engine-id")):
        raise StoreError(
            "%s is a Docker data-root without an image/overlay2 layer store: the engine keeps its images "
            "in the containerd image store (containerd's overlayfs snapshotter); read it with store=containerd "
            "or store=auto" % root.path)
    raise StoreError("%s is not a Docker data-root: image/overlay2 not found" % root.path)


EntryReader = Callable[["_Loader", SafeDir, str, bool], None]


@dataclass
class _Listing:
    """One record directory of the bulk read: what opening it found, the directory (None when it could not be
    opened), its entries listed once, and their reader."""

    head: "_Loader"
    directory: Optional[SafeDir]
    entries: List[Tuple[str, bool]]
    body: EntryReader
    weight: float  # an entry's cost relative to a layer record's


@dataclass
class _Found:
    """What one loader read: the partial store, and the images whose configs it found broken."""

    store: Overlay2Store
    broken_images: Set[str]


@dataclass
class _Records:
    """What the bulk read found, each directory's parts in order: what opening it found, then each share."""

    configs: List[_Found]  # image configs
    layers: List[_Found]  # layer records
    dirs: List[_Found]  # overlay2 directories
    links: List[_Found]  # overlay2/l
    configs_listed: bool  # the image config directory could be opened
    overlay_names: Optional[Set[str]]  # the directories listed in overlay2/; None when it could not be listed


class _Loader:
    """Reads each part of the store into an Overlay2Store, turning every bad entry into a Finding."""

    def __init__(self, store: Overlay2Store, root: SafeDir) -> None:
        self.store = store
        self.root = root
        self.broken_images: Set[str] = set()  # already reported; their tags need no second finding
        self.known_chains: Dict[Tuple[Optional[str], str], str] = {}  # (parent, DiffID) -> chainID
        self.digests: Dict[str, str] = {}  # text as read -> the checked DiffID (see checked_digest)

    def load(self) -> None:
        with contextlib.ExitStack() as open_dirs:
            records = self.read_records(open_dirs)
        self.take(records.configs)
        self.load_image_parents(records.configs_listed)
        self.load_tags()
        self.take(records.layers)
        self.load_mounts()
        self.load_containers()
        self.take(records.dirs)
        self.take(records.links)
        self.check_dir_claims(records.overlay_names)
        self.load_buildkit()

    # what an unreadable part of the store might hold references to
    PART_MIGHT_NAME = {
        IMAGE_CONFIGS: (MIGHT_NAME_CHAINS,),
        LAYER_RECORDS: (MIGHT_NAME_CHAINS, MIGHT_NAME_DIRS),
        MOUNT_RECORDS: (MIGHT_NAME_CHAINS, MIGHT_NAME_DIRS),
    }

    # -- helpers -----------------------------------------------------------
    def open_dir(self, *names: str) -> Optional[SafeDir]:
        try:
            return self.root.subdir(*names)
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # a missing part of the store is simply empty
                self.store.note("unreadable", self.root.join(*names), describe_os_error(exc))
                might_name = self.PART_MIGHT_NAME.get(names)
                if might_name:
                    self.store.damage("store_part", self.root.join(*names), describe_os_error(exc), might_name)
            return None

    def read(self, directory: SafeDir, name: str, limit: int = 1 << 20) -> Optional[str]:
        """A file's text, or None with a finding when it is missing or unreadable."""
        try:
            return directory.read_text(name, limit)
        except OSError as exc:
            self.store.note("missing" if exc.errno == errno.ENOENT else "unreadable", directory.join(name), describe_os_error(exc))
        except UnicodeDecodeError:
            self.store.note("invalid", directory.join(name), "is not UTF-8 text")
        return None

    def read_optional(self, directory: SafeDir, name: str) -> Optional[str]:
        try:
            return directory.read_optional(name)
        except OSError as exc:
            self.store.note("unreadable", directory.join(name), describe_os_error(exc))
        except UnicodeDecodeError:
            self.store.note("invalid", directory.join(name), "is not UTF-8 text")
        return None

    def checked_digest(self, value: Any) -> str:
        """A DiffID of an image config, checked once however many images list it, and one string object for
        all of them: less memory, and a partial store sent back from another process carries each once."""
        known = self.digests.get(value) if isinstance(value, str) else None
        if known is None:
            digest = parse_digest(value, "rootfs.diff_ids entry")
            known = self.digests[value] = self.digests.setdefault(digest, digest)
        return known

    def unexpected(self, directory: SafeDir, name: str, why: str) -> None:
        self.store.note("unexpected", os.path.join(directory.path, shorten(name)), why)

    def part(self) -> "_Loader":
        """A loader of its own for one share of the records, merged later with ``take``."""
        return _Loader(Overlay2Store(data_root=self.store.data_root), self.root)

    def listing(self, open_dirs: contextlib.ExitStack, opener: Callable[["_Loader"], Optional[SafeDir]],
                body: "EntryReader", weight: float) -> "_Listing":
        """One record directory, opened by ``opener`` with a loader of its own (which keeps what opening it
        found), and its entries listed once."""
        head = self.part()
        directory = opener(head)
        if directory is None:
            return _Listing(head, None, [], body, weight)
        open_dirs.enter_context(directory)
        entries = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in directory.entries()]
        return _Listing(head, directory, entries, body, weight)

    def read_records(self, open_dirs: contextlib.ExitStack) -> "_Records":
        """The image configs, layer records, overlay2 directories and their links, each as a list of parts in
        directory order: what opening the directory found, then one share per process.

        A large store is read by several processes, each taking its share of all four directories at once (one
        fork for the whole read); merged in order, the parts make exactly the model (findings included) that
        one pass builds. An entry's ``weight`` is its cost relative to a layer record's.
        """
        configs = self.listing(open_dirs, lambda head: head.open_dir(*IMAGE_CONFIGS), _Loader.image_entry, 4.0)
        layers = self.listing(open_dirs, lambda head: head.open_dir(*LAYER_RECORDS), _Loader.layer_entry, 1.0)
        layer_dirs = self.listing(open_dirs, lambda head: head.open_dir(*LAYER_DIRS), _Loader.overlay_entry, 1.0)
        if layer_dirs.directory is None:
            layer_dirs.head.store.note("missing", self.root.join(*LAYER_DIRS), "the overlay2 directory is missing")
        links = self.listing(open_dirs, lambda head: head.open_links(layer_dirs.directory), _Loader.link_entry, 0.5)
        listings = [configs, layers, layer_dirs, links]
        weight = sum(len(listing.entries) * listing.weight for listing in listings)
        workers = worker_count(int(weight), ENTRIES_PER_WORKER)
        shares = [split_exactly(listing.entries, workers) for listing in listings]

        def read_share(indexes: List[int]) -> List[_Found]:
            """What one process reads: its share of each listing, in the order of ``listings``."""
            found = []
            for listing, chunks in zip(listings, shares):
                part = self.part()
                for name, is_dir in chunks[indexes[0]]:
                    listing.body(part, listing.directory, name, is_dir)
                found.append(part.found())
            return found

        read_by_worker = map_chunks(read_share, [[index] for index in range(workers)])
        config_parts, layer_parts, dir_parts, link_parts = [
            [listing.head.found()] + [found[position] for found in read_by_worker]
            for position, listing in enumerate(listings)]
        return _Records(configs=config_parts, layers=layer_parts, dirs=dir_parts, links=link_parts,
                        configs_listed=configs.directory is not None,
                        overlay_names={name for name, is_dir in layer_dirs.entries if is_dir}
                        if layer_dirs.directory is not None else None)

    def open_links(self, overlay: Optional[SafeDir]) -> Optional[SafeDir]:
        """``overlay2/l``, when the overlay2 directory could be opened (a finding when it cannot be)."""
        if overlay is None:
            return None
        try:
            return overlay.subdir("l")
        except OSError as exc:
            self.store.note("unreadable", overlay.join("l"), describe_os_error(exc))
            return None

    def found(self) -> _Found:
        """What this loader read, without what only sped up its reading (sent back from another process)."""
        return _Found(self.store, self.broken_images)

    def take(self, parts: List[_Found]) -> None:
        for part in parts:
            self.absorb(part.store, part.broken_images)

    def absorb(self, part: Overlay2Store, broken_images: Set[str]) -> None:
        """What a partial read found, appended after what this loader holds."""
        store = self.store
        store.images.update(part.images)
        store.layers.update(part.layers)
        store.removing.extend(part.removing)
        store.removing_dirs.extend(part.removing_dirs)
        store.mounts.update(part.mounts)
        store.containers.update(part.containers)
        store.dirs.update(part.dirs)
        store.links.update(part.links)
        store.image_parents.update(part.image_parents)
        store.findings.extend(part.findings)
        store.damaged.extend(part.damaged)
        self.broken_images |= broken_images

    # -- images ------------------------------------------------------------
    def load_image_parents(self, configs_listed: bool) -> None:
        if not configs_listed:
            return  # without image configs there is no parent to look up
        metadata = self.open_dir(*IMAGE_METADATA)
        if metadata is None:
            return
        with metadata:
            for name in metadata.names():
                if not is_hex64(name) or ("sha256:" + name) not in self.store.images:
                    continue
                try:
                    with metadata.subdir(name) as meta:
                        text = self.read_optional(meta, "parent")
                        if text is not None:
                            self.store.image_parents["sha256:" + name] = parse_digest(text, "image parent")
                except InvalidId as exc:
                    self.store.note("invalid", metadata.join(name, "parent"), str(exc))
                except OSError as exc:
                    self.store.note("unreadable", metadata.join(name), describe_os_error(exc))

    def image_entry(self, content: SafeDir, name: str, _is_dir: bool) -> None:
        if name.startswith(".tmp-"):
            return  # an atomic write in progress
        if not is_hex64(name):
            self.unexpected(content, name, "not an image id")
            return
        image = self.load_image(content, name)
        if image is None:
            self.broken_images.add("sha256:" + name)
        else:
            self.store.images[image.id] = image

    def load_image(self, content: SafeDir, name: str) -> Optional[Image]:
        path = content.join(name)
        try:
            raw = content.read_bytes(name, CONFIG_LIMIT)
        except OSError as exc:
            self.store.note("unreadable", path, describe_os_error(exc))
            self.store.damage("image_config", path, describe_os_error(exc), (MIGHT_NAME_CHAINS,))
            return None
        try:
            config = json.loads(raw.decode("utf-8"))
            diff_ids = config["rootfs"]["diff_ids"]
            if not isinstance(diff_ids, list):  # the engine writes a list, or no key when there is no layer
                raise TypeError("rootfs.diff_ids is not a list")
            diff_ids = [self.checked_digest(value) for value in diff_ids]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            message = "not a valid image config: %s" % shorten(str(exc))
            self.store.note("invalid", path, message)
            self.store.damage("image_config", path, message, (MIGHT_NAME_CHAINS,))
            return None
        created = config.get("created")
        image = Image(
            id="sha256:" + name,
            diff_ids=diff_ids,
            chain_ids=chain_ids(diff_ids, self.known_chains),
            created=created if isinstance(created, str) else None,
            config_digest="sha256:" + hashlib.sha256(raw).hexdigest(),
        )
        if image.config_digest != image.id:
            # Edited since the engine wrote it (the engine refuses such a config when it starts): the layers it
            # listed before are unknown. The image is still shown as it now reads; no chain may go meanwhile.
            message = config_mismatch(image)
            self.store.note("invalid", path, message)
            self.store.damage("image_config", path, message, (MIGHT_NAME_CHAINS,), chains=image.chain_ids)
        return image

    def load_tags(self) -> None:
        image_root = self.open_dir(*TAG_STORE)
        if image_root is None:
            return
        with image_root:
            text = self.read_optional(image_root, "repositories.json")
        if text is None:
            return
        path = self.store.path(TAG_STORE, "repositories.json")
        try:
            repositories = json.loads(text).get("Repositories") or {}
            if not isinstance(repositories, dict):
                raise TypeError("Repositories is not an object")
        except (ValueError, TypeError, AttributeError) as exc:
            self.store.note("invalid", path, "not a valid tag store: %s" % shorten(str(exc)))
            return
        for references in repositories.values():
            if not isinstance(references, dict):
                self.store.note("invalid", path, "a repository entry is not an object")
                continue
            for reference, image_id in references.items():
                try:
                    image_id = parse_digest(str(image_id), "image id of %s" % shorten(reference))
                except InvalidId as exc:
                    self.store.note("invalid", path, str(exc))
                    continue
                image = self.store.images.get(image_id)
                if image is None and image_id in self.broken_images:
                    continue
                if image is None:
                    self.store.dangling_tags.append((reference, image_id))
                    self.store.note("missing", path, "%s points at image %s, which is not in the image store"
                                    % (shorten(reference), image_id))
                    continue
                (image.digests if "@" in reference else image.tags).append(reference)
        for image in self.store.images.values():
            image.tags.sort()
            image.digests.sort()

    # -- layers ------------------------------------------------------------
    def layer_entry(self, layerdb: SafeDir, name: str, _is_dir: bool) -> None:
        if removing_chain(name):
            self.store.removing.append(name)
            return
        if not is_hex64(name):
            self.unexpected(layerdb, name, "not a chain id")
            return
        layer = self.load_layer(layerdb, name)
        if layer is not None:
            self.store.layers[layer.chain_id] = layer

    def load_layer(self, layerdb: SafeDir, name: str) -> Optional[Layer]:
        """One layerdb record; a damaged one is recorded with what it still names, and kept out of ``layers``
        only when its ``diff`` cannot be read (a layer without a DiffID joins nothing)."""
        path = layerdb.path + "/" + name  # os.path.join of a directory and one validated component
        chain_id = "sha256:" + name
        try:
            diff_raw, cache_raw, size_raw, parent_raw = read_record_at(layerdb.fd, name, LAYER_FILES)
        except OSError as exc:
            self.store.note("unreadable", path, describe_os_error(exc))
            self.store.damage("layer", path, describe_os_error(exc), (MIGHT_NAME_DIRS, MIGHT_NAME_CHAINS),
                              chains=[chain_id])
            return None
        diff_text = self.text_of(diff_raw, path, "diff")
        cache_text = self.text_of(cache_raw, path, "cache-id")
        size_text = self.text_of(size_raw, path, "size")
        parent_text = self.text_of(parent_raw, path, "parent", optional=True)
        parent_present = present(parent_raw)
        problems: List[str] = []
        might_name: Set[str] = set()
        diff_id = self.parse(diff_text, parse_digest, path, "diff", problems)
        cache_id = self.parse(cache_text, parse_cache_id, path, "cache-id", problems)
        if cache_id is None:
            might_name.add(MIGHT_NAME_DIRS)
        parent = None
        if parent_present:
            parent = self.parse(parent_text, parse_digest, path, "parent", problems)
            if parent is None:
                might_name.add(MIGHT_NAME_CHAINS)
        if problems:
            self.store.damage("layer", path, "; ".join(problems), might_name, chains=[chain_id, parent],
                              dirs=[cache_id])
        if diff_id is None:
            return None
        size = None
        if size_text is not None:
            try:
                size = int(size_text.strip())
                if size < 0:
                    raise ValueError(size_text)
            except ValueError:
                self.store.note("invalid", os.path.join(path, "size"), "not a byte count: %s" % shorten(size_text))
                size = None
        return Layer(chain_id=chain_id, diff_id=diff_id, parent=parent, cache_id=cache_id, size=size)

    def parse(self, text: Optional[str], parser, record: str, what: str, problems: List[str]) -> Optional[str]:
        """``parser(text)`` of the record's file ``what``, or None with a finding (and the problem listed)."""
        if text is None:  # read_at has already noted why
            problems.append("%s cannot be read" % what)
            return None
        try:
            return parser(text, what)
        except InvalidId as exc:
            self.store.note("invalid", os.path.join(record, what), str(exc))
            problems.append(str(exc))
            return None

    def text_of(self, read: Read, dir_path: str, name: str, optional: bool = False) -> Optional[str]:
        """A small file's text as ``read_record_at`` read it, or None (with a finding unless optional and absent)."""
        if isinstance(read, bytes):
            try:
                return read.decode("utf-8")
            except UnicodeDecodeError:
                self.store.note("invalid", dir_path + "/" + name, "is not UTF-8 text")
                return None
        if read.errno != errno.ENOENT:
            self.store.note("unreadable", dir_path + "/" + name, describe_os_error(read))
        elif not optional:
            self.store.note("missing", dir_path + "/" + name, describe_os_error(read))
        return None

    def check_dir_claims(self, overlay_names: Optional[Set[str]]) -> None:
        """Each layer and mount record names directories of its own, and they exist. The engine makes a layer's
        directory before its record, and renames the record away (``-removing``) before it removes the
        directory; it makes a container's directories and mount record before the container's config, and marks
        the container dead before it removes them (directories first). A record that breaks this was changed:
        the directories it named before are unknown, and no directory may be taken for unreferenced."""
        if overlay_names is None:
            return  # overlay2/ could not be listed: said so, and nothing in it may go
        claims: Dict[str, List[str]] = {}  # directory -> the records naming it (chain ids, container ids)
        for layer in self.store.layers.values():
            if layer.cache_id is not None:  # else damaged already
                claims.setdefault(layer.cache_id, []).append(layer.chain_id)
        for mount in self.store.mounts.values():
            for name in mount.dir_names:
                claims.setdefault(name, []).append("container " + mount.container_id)
        for layer in self.store.layers.values():  # a sound layer costs two look-ups
            cache_id = layer.cache_id
            if cache_id is not None and (cache_id not in overlay_names or len(claims[cache_id]) > 1):
                self.check_claim(self.store.layer_path(layer.chain_id), layer.chain_id, [cache_id],
                                 claims, overlay_names, "layer", chains=[layer.chain_id])
        for mount in self.store.mounts.values():
            container = self.store.containers.get(mount.container_id)
            self.check_claim(self.store.mount_path(mount.container_id), "container " + mount.container_id,
                             mount.dir_names, claims,
                             overlay_names if container is None or not container.dead else None, "mount",
                             containers=[mount.container_id])
        mounts_dir = self.root.join(*MOUNT_RECORDS)
        if any(record.path == mounts_dir for record in self.store.damaged):
            return  # the mount records could not be listed: said so, and that keeps every directory already
        damaged = {name for record in self.store.damaged for name in record.containers}
        for container in self.store.containers.values():
            if (container.id not in self.store.mounts and container.id not in damaged and not container.dead
                    and container.driver in ("overlay2", None)):
                message = "container %s is not dead and has no mount record" % container.id
                self.store.note("missing", self.store.mount_path(container.id), message)
                self.store.damage("mount", self.store.mount_path(container.id), message, (MIGHT_NAME_DIRS,),
                                  containers=[container.id])

    def check_claim(self, path: str, who: str, names: List[str], claims: Dict[str, List[str]],
                    overlay_names: Optional[Set[str]], code: str, chains: Iterable[str] = (),
                    containers: Iterable[str] = ()) -> None:
        """One record's directories: each its own, and there (``overlay_names`` None: need not be there)."""
        shared = [shared_dir(name, [o for o in claims[name] if o != who]) for name in names if len(claims[name]) > 1]
        missing = [missing_dir(name) for name in names
                   if overlay_names is not None and name not in overlay_names and len(claims[name]) == 1]
        if not shared and not missing:
            return
        message = "; ".join(shared + missing)
        self.store.note("invalid" if shared else "missing", path, message)
        self.store.damage(code, path, message, (MIGHT_NAME_DIRS,), chains=chains, dirs=names, containers=containers)

    # -- containers --------------------------------------------------------
    def load_mounts(self) -> None:
        mounts = self.open_dir(*MOUNT_RECORDS)
        if mounts is None:
            return
        with mounts:
            for entry in mounts.entries():
                name = entry.name
                if is_hex64(removal_origin(name) or "") and entry.is_dir(follow_symlinks=False):
                    self.store.removing_mounts[name] = self.load_removing_mount(mounts, name)
                    continue
                if not is_hex64(name):
                    self.unexpected(mounts, name, "not a container id")
                    continue
                mount = self.load_mount(mounts, name)
                if mount is not None:
                    self.store.mounts[name] = mount

    def load_mount(self, mounts: SafeDir, name: str) -> Optional[Mount]:
        """One container mount; a damaged one keeps its container's mount and what it still names."""
        try:
            directory = mounts.subdir(name)
        except OSError as exc:
            self.store.note("unreadable", mounts.join(name), describe_os_error(exc))
            self.store.damage("mount", mounts.join(name), describe_os_error(exc),
                              (MIGHT_NAME_DIRS, MIGHT_NAME_CHAINS), containers=[name])
            return None
        with directory:
            mount_text = self.read(directory, "mount-id")
            init_text = self.read_optional(directory, "init-id")
            parent_text = self.read_optional(directory, "parent")
            init_present = init_text is not None or directory.exists("init-id")
            parent_present = parent_text is not None or directory.exists("parent")
        problems: List[str] = []
        might_name: Set[str] = set()
        mount_id = self.parse(mount_text, parse_mount_id, directory.path, "mount-id", problems)
        init_id = None
        if mount_id is not None and init_present and init_text != "":
            init_id = self.parse(init_text, lambda text, _what: parse_init_id(text, mount_id),
                                 directory.path, "init-id", problems)
        if mount_id is None or (init_present and init_text != "" and init_id is None):
            might_name.add(MIGHT_NAME_DIRS)
        parent = None
        if parent_present and parent_text != "":
            parent = self.parse(parent_text, parse_digest, directory.path, "parent", problems)
            if parent is None:
                might_name.add(MIGHT_NAME_CHAINS)
        if problems:
            self.store.damage("mount", directory.path, "; ".join(problems), might_name, chains=[parent],
                              dirs=[mount_id, init_id], containers=[name])
        if mount_id is None:
            return None
        return Mount(container_id=name, mount_id=mount_id, init_id=init_id, parent=parent)

    def load_removing_mount(self, mounts: SafeDir, name: str) -> Optional[Mount]:
        """A mount record a removal of this collection's renamed: the directories it still names. The removal
        takes the directories before the record, so a record it has begun to empty names none any more."""
        try:
            with mounts.subdir(name) as directory:
                mount_id = parse_mount_id(directory.read_text("mount-id"), "mount-id")
                init_text = directory.read_text("init-id") if directory.exists("init-id") else ""
        except (OSError, UnicodeDecodeError, InvalidId):
            return None
        try:
            init_id = parse_init_id(init_text, mount_id) if init_text else None
        except InvalidId:
            init_id = None
        return Mount(container_id=removal_origin(name) or "", mount_id=mount_id, init_id=init_id, parent=None)

    def load_containers(self) -> None:
        read_containers(self.store, self.root)

    # -- overlay2 directories ----------------------------------------------
    def overlay_entry(self, overlay: SafeDir, name: str, is_dir: bool) -> None:
        if name == "l":
            return
        origin = removal_origin(name)
        if origin is not None and is_dir and is_cache_id(origin[:-len("-init")] if origin.endswith("-init") else origin):
            self.store.removing_dirs.append(name)
            return
        base = name[:-len("-init")] if name.endswith("-init") else name
        if not is_cache_id(base):
            self.unexpected(overlay, name, "not an overlay2 layer directory")
            return
        if not is_dir:
            self.unexpected(overlay, name, "is not a directory (not followed)")
            return
        self.load_overlay_dir(overlay, name)

    def load_overlay_dir(self, overlay: SafeDir, name: str) -> None:
        path = overlay.path + "/" + name  # os.path.join of a directory and one validated component
        try:
            link_raw, lower_raw = read_record_at(overlay.fd, name, OVERLAY_DIR_FILES)
        except OSError as exc:
            self.store.note("unreadable", path, describe_os_error(exc))
            return
        link = self.text_of(link_raw, path, "link", optional=True)
        lower = self.text_of(lower_raw, path, "lower", optional=True)
        lower_unknown = lower is None and present(lower_raw)
        if link is not None:
            link = link.strip()
            if not is_link_id(link):
                self.store.note("invalid", os.path.join(path, "link"), "not a 26-character link id: %s" % shorten(link))
                link = None
        lower_text = ""
        if lower:
            try:
                lower_text = checked_lower(lower)
            except InvalidId as exc:
                self.store.note("invalid", os.path.join(path, "lower"), str(exc))
                lower_unknown = True
        depth = lower_text.count(":") + 1 if lower_text else 0
        if depth > MAX_LOWER_DEPTH:
            self.store.note("invalid", os.path.join(path, "lower"), "lists %d lower layers; the overlay2 driver "
                            "mounts at most %d" % (depth, MAX_LOWER_DEPTH))
        self.store.dirs[name] = OverlayDir(name=name, link=link, lower_text=lower_text, lower_unknown=lower_unknown)

    def link_entry(self, links: SafeDir, name: str, _is_dir: bool) -> None:
        if not is_link_id(name):
            self.unexpected(links, name, "not a 26-character link id")
            return
        try:
            target = links.readlink(name)
        except OSError as exc:
            self.store.note("invalid", links.join(name), "not a symlink: %s" % describe_os_error(exc))
            return
        parts = target.split("/")
        if len(parts) == 3 and parts[0] == ".." and parts[2] == "diff":
            base = parts[1][:-len("-init")] if parts[1].endswith("-init") else parts[1]
            if is_cache_id(base):
                self.store.links[name] = parts[1]
                return
        self.store.links[name] = None
        self.store.note("invalid", links.join(name), "points outside overlay2/<dir>/diff: %s" % shorten(target))

    # -- BuildKit ----------------------------------------------------------
    def load_buildkit(self) -> None:
        ownership = read_ownership(self.root)
        self.store.buildkit = ownership
        if ownership.state == UNKNOWN:
            self.store.note("unreadable", ownership.culprit, ownership.reason)
            self.store.damage("buildkit", ownership.culprit, "BuildKit's ownership cannot be read: " + ownership.reason,
                              (MIGHT_NAME_DIRS, MIGHT_NAME_CHAINS))
