# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""The store model every module reads through, the same for every store: images, layers, containers, findings
and damaged records.

Each store's reader fills a ``Store`` of its own kind (``_store.overlay2.Overlay2Store``,
``_store.containerd.ContainerdStore``), which adds what only that store has and builds every path of that
store's layout; ``_backends`` binds each kind to its side of facts, verification, orphans and CIS reads.
Nothing here knows a path of either store.
"""

from __future__ import annotations

import operator
import os
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Dict, FrozenSet, Iterable, List, Optional, Set, Tuple, TypeVar

from ansible_collections.strata.overlay2.plugins.module_utils._store.buildkit import Ownership
from ansible_collections.strata.overlay2.plugins.module_utils._util.parallel import run_alongside, worker_count

CONFIG_LIMIT = 64 << 20  # an image config or container config larger than this is refused
ORPHANS_ALONGSIDE_LAYERS = 1000  # from twice this many layers, a second process classifies while the facts are shaped

# What a damaged reference record might name, when the part that names it could not be read
MIGHT_NAME_DIRS = "dirs"  # any layer directory
MIGHT_NAME_CHAINS = "chains"  # any layer chain
MIGHT_NAME_MOUNTS = "mounts"  # any container mount

PARENT = operator.attrgetter("parent")  # a layer's or a snapshot's parent key (one C call per step of a walk)
Shaped = TypeVar("Shaped")
Node = TypeVar("Node")


class StoreError(Exception):
    """The data-root cannot be read as an overlay2 store at all."""


@dataclass
class Finding:
    """One entry that could not be read or does not fit the format."""

    kind: str  # unreadable | invalid | missing | unexpected
    path: str
    message: str

    def as_dict(self) -> Dict[str, str]:
        return {"kind": self.kind, "path": self.path, "message": self.message}


@dataclass
class DamagedRecord:
    """A reference record that could not be read or is invalid: the owner of something is unknown.

    What it names and could be read stays (``chains`` with their ancestors, ``dirs``, the mounts of
    ``containers``); for each reference that could not be read, ``might_name`` holds the class of objects it
    might have named, none of which may be removed while the record stays as it is.
    """

    code: str  # layer | mount | image_config | container_config | lower | buildkit | store_part
    path: str
    message: str
    chains: Set[str] = field(default_factory=set)
    dirs: Set[str] = field(default_factory=set)
    containers: Set[str] = field(default_factory=set)
    might_name: FrozenSet[str] = frozenset()

    def as_dict(self) -> Dict[str, object]:
        return {"code": self.code, "path": self.path, "message": self.message,
                "might_name": sorted(self.might_name)}


@dataclass
class Notes:
    """Findings and damaged records set aside (``Store.set_aside``)."""

    findings: List[Finding]
    damaged: List[DamagedRecord]


@dataclass
class Image:
    id: str
    diff_ids: List[str]
    chain_ids: List[str]
    tags: List[str] = field(default_factory=list)
    digests: List[str] = field(default_factory=list)
    parent: Optional[str] = None
    created: Optional[str] = None
    config_digest: Optional[str] = None  # sha256 of the config file's bytes; equals id when intact
    # the containerd image store only: the id is the target (an index or a manifest)
    manifest_digest: Optional[str] = None  # the manifest of this host's platform
    manifests: List[str] = field(default_factory=list)  # every manifest of the target, attestations included
    layer_blobs: List[str] = field(default_factory=list)  # the compressed layers, bottom first
    names: List[str] = field(default_factory=list)  # containerd's image records naming this target

    @property
    def top_chain_id(self) -> Optional[str]:
        return self.chain_ids[-1] if self.chain_ids else None


@dataclass
class Layer:
    chain_id: str
    diff_id: str
    parent: Optional[str]
    cache_id: Optional[str]
    size: Optional[int]
    # the containerd image store only
    snapshot_key: Optional[str] = None  # the snapshot's key in the namespace (``sha256:<chainID>``)
    snapshot_id: Optional[str] = None  # its directory under snapshots/
    blob: Optional[str] = None  # the compressed layer blob of the first image that names this layer
    compressed_size: Optional[int] = None


@dataclass
class Container:
    id: str
    name: str
    image_id: Optional[str]
    running: bool
    driver: Optional[str]
    dead: bool = False  # State.Dead: a removal was interrupted; its directories go before its mount record
    volumes: List[str] = field(default_factory=list)  # the names of the volumes it mounts


def walk_parents(start: Optional[str], lookup: Callable[[str], Optional[Node]],
                 parent_of: Callable[[Node], Optional[str]],
                 on_loop: Optional[Callable[[str], None]] = None) -> List[Node]:
    """What ``start`` names and its parents, nearest first (a layer's parents, or a snapshot's); stops at a gap,
    or at a loop (``on_loop`` is told where)."""
    found: List[Node] = []
    seen: Set[str] = set()
    key = start
    while key is not None:
        if key in seen:
            if on_loop is not None:
                on_loop(key)
            break
        seen.add(key)
        node = lookup(key)
        if node is None:
            break
        found.append(node)
        key = parent_of(node)
    return found


@dataclass
class Store:
    """What every store holds, read from disk. A store of each kind adds the parts only it has and builds the
    paths of its own layout (``layer_path``); code shared by the stores uses only what is here."""

    kind: ClassVar[str] = ""  # each kind's model names itself: the facts' ``store`` (overlay2 | containerd)
    data_root: str
    images: Dict[str, Image] = field(default_factory=dict)
    layers: Dict[str, Layer] = field(default_factory=dict)
    containers: Dict[str, Container] = field(default_factory=dict)
    image_parents: Dict[str, str] = field(default_factory=dict)
    dangling_tags: List[Tuple[str, str]] = field(default_factory=list)  # (reference, image id not in the store)
    findings: List[Finding] = field(default_factory=list)
    damaged: List[DamagedRecord] = field(default_factory=list)
    buildkit: Optional[Ownership] = None

    def layer_path(self, chain_id: str) -> str:
        """Where the store records the layer ``chain_id`` (the path its findings name)."""
        raise NotImplementedError

    # -- joins -------------------------------------------------------------
    def chain(self, top_chain_id: Optional[str]) -> List[Layer]:
        """The layers of a chain, topmost first; stops (with a finding) at a gap or a loop."""
        return walk_parents(top_chain_id, self.layers.get, PARENT, self._chain_loops)

    def _chain_loops(self, chain_id: str) -> None:
        self.note("invalid", self.layer_path(chain_id), "parent chain loops back to itself")

    def image_layers(self, image: Image) -> Optional[List[Layer]]:
        """The image's layers bottom first, or None when one is missing from the layer database."""
        layers = []
        for chain_id in image.chain_ids:
            layer = self.layers.get(chain_id)
            if layer is None:
                return None
            layers.append(layer)
        return layers

    def children_of_images(self) -> Dict[str, List[str]]:
        children: Dict[str, List[str]] = {}
        for child, parent in self.image_parents.items():
            children.setdefault(parent, []).append(child)
        return children

    # -- findings ----------------------------------------------------------
    def note(self, kind: str, path: str, message: str) -> None:
        self.findings.append(Finding(kind, path, message))

    def damage(self, code: str, path: str, message: str, might_name: Iterable[str] = (),
               chains: Iterable[Optional[str]] = (), dirs: Iterable[Optional[str]] = (),
               containers: Iterable[str] = ()) -> None:
        self.damaged.append(DamagedRecord(code, path, message, {c for c in chains if c}, {d for d in dirs if d},
                                          set(containers), frozenset(might_name)))

    def set_aside(self, action: Callable[[], Any]) -> Tuple[Any, Notes]:
        """``action()``, and the findings and damaged records it added, taken back out of the store so that
        the caller can ``put_back`` them where one pass would have added them (the action may have run in
        another process; see ``_util.parallel.run_alongside``)."""
        findings, damaged = len(self.findings), len(self.damaged)
        result = action()
        added = Notes(self.findings[findings:], self.damaged[damaged:])
        del self.findings[findings:]
        del self.damaged[damaged:]
        return result, added

    def put_back(self, notes: Notes) -> None:
        self.findings.extend(notes.findings)
        self.damaged.extend(notes.damaged)

    def shaped_with_orphans(self, shape: Callable[[], Shaped],
                            orphans: Optional[Callable[[], Any]]) -> Tuple[Shaped, Any]:
        """``(shape(), orphans())``, ``orphans`` being the facts' orphan section (None: not asked for, and None
        given). On a large store the orphans are classified by a second process while this one shapes; either
        way their findings come after the shaping's, where one pass puts them."""
        if orphans is None:
            return shape(), None
        in_second_process = worker_count(len(self.layers), ORPHANS_ALONGSIDE_LAYERS) > 1
        shaped, (section, notes) = run_alongside(shape, lambda: self.set_aside(orphans), in_second_process)
        self.put_back(notes)
        return shaped, section


def resolve_data_root(data_root: str) -> str:
    if not data_root or not os.path.isabs(data_root):
        raise StoreError("data_root must be an absolute path, got %r" % (data_root,))
    real = os.path.realpath(data_root)
    if real == "/":
        raise StoreError("data_root %s resolves to /; refusing to treat the whole file system as a Docker store" % data_root)
    if not os.path.exists(real):
        raise StoreError("data_root %s does not exist" % data_root)
    if not os.path.isdir(real):
        raise StoreError("data_root %s is not a directory" % data_root)
    return real
