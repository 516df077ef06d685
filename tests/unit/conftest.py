"""Small synthetic stores in the engine's on-disk format."""

from __future__ import annotations

import os

import pytest

from tests.support.leftovers import Leftovers
from tests.support.samples import SampleStore, build_sample


@pytest.fixture
def sample(tmp_path) -> SampleStore:
    return build_sample(os.path.join(str(tmp_path), "docker"))


@pytest.fixture
def leftovers(sample) -> Leftovers:
    return Leftovers(sample)
