"""Speed work changes no answer: the cores' JSON on fixed synthetic stores (overlay2 and containerd) equals what was recorded before it
(devtools/golden.py --write records it; tests/unit/fixtures/golden/)."""

from __future__ import annotations

import pytest

from devtools.golden import STORES, compare


@pytest.mark.parametrize("store", STORES)
def test_the_answers_on_a_fixed_store_are_byte_for_byte_the_recorded_ones(store):
    assert compare(store, write=False)
