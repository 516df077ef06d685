"""Speed work changes no answer: the cores' JSON on fixed synthetic stores (overlay2 and containerd) equals what was recorded before it
(tests/support/golden.py --write records it; tests/unit/fixtures/golden/), read by one process or shared out among several."""

from __future__ import annotations

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._store import containerd as _containerd
from ansible_collections.strata.overlay2.plugins.module_utils._util import parallel as _parallel
from ansible_collections.strata.overlay2.plugins.module_utils._store import model as _model
from ansible_collections.strata.overlay2.plugins.module_utils._store import overlay2 as _store
from tests.support.golden import STORES, compare


@pytest.mark.parametrize("store", STORES)
def test_the_answers_on_a_fixed_store_are_byte_for_byte_the_recorded_ones(store):
    assert compare(store, write=False)


@pytest.mark.parametrize("store", STORES)
def test_the_answers_are_the_same_when_the_work_is_shared_out_among_processes(store, monkeypatch):
    monkeypatch.setattr(_parallel, "available_cpus", lambda: 3)
    monkeypatch.setattr(_store, "ENTRIES_PER_WORKER", 2)  # three processes even for a directory of six entries
    monkeypatch.setattr(_model, "ORPHANS_ALONGSIDE_LAYERS", 1)  # and the orphans classified beside the facts
    monkeypatch.setattr(_containerd, "SECOND_PROCESS_BYTES", 0)  # and meta.db's content records beside the rest
    forked = []
    real_map = _parallel.map_chunks

    def counting_map(func, chunks):
        forked.append(len(chunks))
        return real_map(func, chunks)

    monkeypatch.setattr(_store, "map_chunks", counting_map)
    monkeypatch.setattr(_parallel, "map_chunks", counting_map)  # what run_alongside() runs
    assert compare(store, write=False)
    if store == "containerd":
        assert forked.count(2) >= 2  # meta.db read by two, and the facts and the orphans
    else:
        assert forked and max(forked) == 3
        assert 2 in forked  # the facts and the orphans
