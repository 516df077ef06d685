"""A real dockerd on a private data-root, with the sample store built once per session."""

from __future__ import annotations

import os
import pytest

from devtools.sandbox import Engine, build_samples


@pytest.fixture(scope="session")
def engine():
    if os.geteuid() != 0:
        pytest.fail("the engine tests start a dockerd and need root")
    with Engine() as running:
        running.samples = build_samples(running)
        yield running
