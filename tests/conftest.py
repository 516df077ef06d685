"""Make the collection importable as ansible_collections.strata.overlay2 and the dev tools as devtools."""

from __future__ import annotations

import os
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def _collection_root() -> str:
    parts = REPO.split(os.sep)
    if parts[-3:-1] == ["ansible_collections", "strata"] and parts[-1] == "overlay2":
        return os.sep.join(parts[:-3])
    build = os.path.join(REPO, "build")
    link = os.path.join(build, "ansible_collections", "strata", "overlay2")
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(REPO, link)
    return build


for path in (_collection_root(), REPO):
    if path not in sys.path:
        sys.path.insert(0, path)


@pytest.fixture(scope="session")
def collections_path():
    """The collection built with ansible-galaxy and installed from its tarball, as a user gets it."""
    from devtools.collection import build_and_install  # pylint: disable=import-outside-toplevel

    with tempfile.TemporaryDirectory(prefix="strata-collection-") as workdir:
        yield build_and_install(workdir)

