"""Make the collection importable as ansible_collections.strata.overlay2 and the dev tools as devtools."""

from __future__ import annotations

import os
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from devtools.paths import make_importable  # noqa: E402  pylint: disable=wrong-import-position

make_importable()


@pytest.fixture(scope="session")
def collections_path():
    """The collection built with ansible-galaxy and installed from its tarball, as a user gets it."""
    from devtools.collection import build_and_install  # pylint: disable=import-outside-toplevel

    with tempfile.TemporaryDirectory(prefix="strata-collection-") as workdir:
        yield build_and_install(workdir)
