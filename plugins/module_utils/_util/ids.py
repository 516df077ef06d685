# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Identifiers of Docker's layer store: validation and chainID computation.

Every id read from disk passes through one of the ``is_*`` checks here
before it becomes part of a path, so no file content can steer a path.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Dict, Iterable, List, Optional, Tuple

DIGEST_PREFIX = "sha256:"

_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
_BUILDKIT_ID = re.compile(r"\A[0-9a-z]{25}\Z")
_LINK_ID = re.compile(r"\A[A-Z2-7]{26}\Z")
_LOWER = re.compile(r"\Al/[A-Z2-7]{26}(?::l/[A-Z2-7]{26})*\Z")
_REMOVING = re.compile(r"\A([0-9a-f]{64})-([0-9a-f]{64})-removing\Z")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")  # match() anchors the start
_CACHE_ID = re.compile(r"(?:[0-9a-f]{64}|[0-9a-z]{25})\Z")


class InvalidId(ValueError):
    """A value read from disk is not an id of the expected form."""


def is_hex64(value: str) -> bool:
    return bool(_HEX64.match(value))


def is_buildkit_id(value: str) -> bool:
    """BuildKit names its overlay2 snapshots with 25 base36 characters."""
    return bool(_BUILDKIT_ID.match(value))


def is_cache_id(value: str) -> bool:
    """A layer's overlay2 directory: 64 hex (the engine) or 25 base36 (BuildKit)."""
    return _CACHE_ID.match(value) is not None


def is_link_id(value: str) -> bool:
    """The short name of an ``overlay2/l/`` symlink: 26 characters of base32."""
    return bool(_LINK_ID.match(value))


def checked_lower(text: str) -> str:
    """An overlay2 ``lower`` file's text (``l/<id>:l/<id>...``) stripped and checked; InvalidId otherwise."""
    value = text.strip()
    if not _LOWER.match(value):
        raise InvalidId("not l/<link id>[:l/<link id>...]: %s" % shorten(value))
    return value


def lower_ids(checked: str) -> List[str]:
    """The link ids of a checked ``lower`` text, topmost first."""
    return checked[2:].split(":l/") if checked else []


def removing_chain(name: str) -> Optional[str]:
    """The chainID hex of a ``<chainID>-<random>-removing`` layerdb directory."""
    match = _REMOVING.match(name)
    return match.group(1) if match else None


# A removal this collection began renames the object first to ``<name>-<mark><48 hex>-removing``, beside where it
# was: the engine's convention for layer records (``<chainID>-<64 hex>-removing``, which it also finishes),
# with the first 16 hex digits of the 64 fixed, so that the prune knows a removal of its own from the engine's.
REMOVAL_MARK = hashlib.sha256(b"strata.overlay2 removal in progress").hexdigest()[:16]
_OWN_REMOVAL = re.compile(r"\A(.+)-(%s[0-9a-f]{48})-removing\Z" % REMOVAL_MARK)


def removal_name(name: str) -> str:
    """The name ``name`` takes while this collection removes it (fresh random digits each time)."""
    return "%s-%s%s-removing" % (name, REMOVAL_MARK, secrets.token_hex(24))


def removal_origin(name: str) -> Optional[str]:
    """The name an object had before a removal of this collection's renamed it (None: not such a name). The
    caller validates it as whatever id that directory holds."""
    match = _OWN_REMOVAL.match(name)
    return match.group(1) if match else None


_VALID_DIGESTS: Dict[str, str] = {}  # texts found valid, each with its digest: a store repeats most
_VALID_DIGESTS_LIMIT = 1 << 18  # forgotten all at once beyond this many, to keep a long-lived process bounded


def parse_digest(text: str, what: str = "digest") -> str:
    """Return ``sha256:<hex>`` from ``text`` or raise InvalidId."""
    known = _VALID_DIGESTS.get(text) if text.__class__ is str else None
    if known is not None:
        return known
    if not isinstance(text, str):  # a value read from JSON may be of any type
        raise InvalidId("%s is not sha256:<64 hex>: %s" % (what, shorten(repr(text))))
    value = text.strip()
    if _DIGEST.match(value):
        if len(_VALID_DIGESTS) >= _VALID_DIGESTS_LIMIT:
            _VALID_DIGESTS.clear()
        _VALID_DIGESTS[text] = value
        return value
    raise InvalidId("%s is not sha256:<64 hex>: %s" % (what, shorten(value)))


def parse_cache_id(text: str, what: str = "cache-id") -> str:
    value = text.strip()
    if is_cache_id(value):
        return value
    raise InvalidId("%s is not a 64-hex or 25-character BuildKit id: %s" % (what, shorten(value)))


def parse_mount_id(text: str, what: str = "mount-id") -> str:
    value = text.strip()
    if is_hex64(value) or is_buildkit_id(value):
        return value
    raise InvalidId("%s is not a 64-hex id: %s" % (what, shorten(value)))


def parse_init_id(text: str, mount_id: str) -> str:
    value = text.strip()
    if value == mount_id + "-init":
        return value
    raise InvalidId("init-id is not '<mount-id>-init': %s" % shorten(value))


def hex_of(digest: str) -> str:
    """``sha256:<hex>`` -> ``<hex>``."""
    return digest[len(DIGEST_PREFIX):] if digest.startswith(DIGEST_PREFIX) else digest


def next_chain_id(parent: Optional[str], diff_id: str) -> str:
    """ChainID(n) = sha256("<ChainID(n-1)> <DiffID(n)>"); ChainID(1) = DiffID(1)."""
    if parent is None:
        return diff_id
    payload = ("%s %s" % (parent, diff_id)).encode("ascii")
    return DIGEST_PREFIX + hashlib.sha256(payload).hexdigest()


def chain_ids(diff_ids: Iterable[str], known: Optional[Dict[Tuple[Optional[str], str], str]] = None) -> List[str]:
    """The chainIDs of a list of DiffIDs, bottom layer first; ``known`` remembers (parent, DiffID) -> chainID
    across calls, as images of one store share most of their chains."""
    result: List[str] = []
    parent: Optional[str] = None
    memo: Dict[Tuple[Optional[str], str], str] = {} if known is None else known
    for diff_id in diff_ids:
        key = (parent, diff_id)
        chain = memo.get(key)
        if chain is None:
            chain = memo[key] = next_chain_id(parent, parse_digest(diff_id, "diff_id"))
        parent = chain
        result.append(chain)
    return result


def shorten(value: object, limit: int = 80) -> str:
    """A printable, bounded rendering of untrusted text for messages."""
    text = repr(value) if not isinstance(value, str) else value
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "..."
