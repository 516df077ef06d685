"""Make the working tree importable as ansible_collections.strata.overlay2 (tests, benchmarks, tools)."""

from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def collection_root() -> str:
    """A directory holding ansible_collections/strata/overlay2 that resolves to this working tree."""
    parts = REPO.split(os.sep)
    if parts[-3:] == ["ansible_collections", "strata", "overlay2"]:
        return os.sep.join(parts[:-3])
    build = os.path.join(REPO, "build")
    link = os.path.join(build, "ansible_collections", "strata", "overlay2")
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(REPO, link)
    return build


def make_importable() -> None:
    for path in (collection_root(), REPO):
        if path not in sys.path:
            sys.path.insert(0, path)
