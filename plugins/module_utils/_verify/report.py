# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""What every store's verification reports, and how the images and layers to verify are chosen: each finding is
a typed ``Problem`` attached to the layer, image or container it concerns (checking is read-only, kept apart
from any repair)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple  # noqa: F401 (type comments)

from ansible_collections.strata.overlay2.plugins.module_utils._store.model import Image, Store
from ansible_collections.strata.overlay2.plugins.module_utils._util.ids import is_hex64, shorten

PER_LAYER_COST = 100000  # opening a layer's record, diff dir and tar-split costs about as much as hashing this many bytes
BUFFER_SIZE = 1 << 20  # what one read of a layer's file or blob takes

DIGEST_MISMATCH = "digest_mismatch"
FILE_MODIFIED = "file_modified"
FILE_MISSING = "file_missing"
FILE_ADDED = "file_added"
METADATA = "metadata"


class SelectionError(ValueError):
    """An image or layer asked for is not in the store."""


@dataclass
class Problem:
    kind: str
    path: str
    detail: str

    def as_dict(self) -> Dict[str, str]:
        return {"kind": self.kind, "path": self.path, "detail": self.detail}


@dataclass
class Verdict:
    """What was found about one layer (or, with ``chain_id`` None, one image or container record)."""

    chain_id: Optional[str]
    diff_id: Optional[str]
    cache_id: Optional[str]
    images: List[str] = field(default_factory=list)
    containers: List[str] = field(default_factory=list)
    problems: List[Problem] = field(default_factory=list)
    bytes_read: int = 0

    def as_dict(self) -> Dict[str, object]:
        return {
            "chain_id": self.chain_id,
            "diff_id": self.diff_id,
            "cache_id": self.cache_id,
            "images": sorted(self.images),
            "containers": sorted(self.containers),
            "problems": [problem.as_dict() for problem in self.problems],
        }


@dataclass
class Report:
    checked_layers: int
    checked_images: int
    bytes_verified: int
    seconds: float
    corrupt: List[Verdict]

    @property
    def ok(self) -> bool:
        return not self.corrupt

    def as_dict(self) -> Dict[str, object]:
        return {
            "checked_layers": self.checked_layers,
            "checked_images": self.checked_images,
            "bytes_verified": self.bytes_verified,
            "seconds": round(self.seconds, 3),
            "corrupt": [verdict.as_dict() for verdict in self.corrupt],
            "ok": self.ok,
        }


# -- selection ---------------------------------------------------------------
def resolve_image(store: Store, reference: str) -> Image:
    """An image by full id, 64 hex, unique short id, ``repo:tag``, ``repo`` (``:latest``) or ``repo@digest``."""
    value = reference.strip()
    if value.startswith("sha256:") and value in store.images:
        return store.images[value]
    if is_hex64(value) and "sha256:" + value in store.images:
        return store.images["sha256:" + value]
    candidates = [value]
    if "@" not in value and ":" not in value.rsplit("/", 1)[-1]:
        candidates.append(value + ":latest")
    for image in store.images.values():
        if any(candidate in image.tags or candidate in image.digests for candidate in candidates):
            return image
    prefix = value[len("sha256:"):] if value.startswith("sha256:") else value
    if len(prefix) >= 4 and all(c in "0123456789abcdef" for c in prefix):
        matches = [image for image in store.images.values() if image.id[7:].startswith(prefix)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise SelectionError("image id prefix %s is ambiguous (%d images)" % (prefix, len(matches)))
    raise SelectionError("image %s is not in the store" % shorten(reference))


def select(store: Store, images: Optional[Sequence[str]], layers: Optional[Sequence[str]]
           ) -> Tuple[List[Image], List[str]]:
    """The images and chainIDs to verify; everything when neither is given."""
    if not images and not layers:
        return list(store.images.values()), sorted(store.layers)
    chosen_images = [resolve_image(store, reference) for reference in images or []]
    chains: Set[str] = set()
    for image in chosen_images:
        chains.update(chain for chain in image.chain_ids if chain in store.layers)
    for reference in layers or []:
        chain_id = reference if reference.startswith("sha256:") else "sha256:" + reference
        if chain_id not in store.layers:
            raise SelectionError("layer %s is not in the layer database" % shorten(reference))
        chains.add(chain_id)
    return chosen_images, sorted(chains)


# -- metadata ----------------------------------------------------------------
