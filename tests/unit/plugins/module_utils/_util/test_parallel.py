"""Work shared out among forked processes gives the serial answer, whatever happens to a child."""

from __future__ import annotations

import os
import signal

import pytest

from ansible_collections.strata.overlay2.plugins.module_utils._util import parallel as _parallel
from ansible_collections.strata.overlay2.plugins.module_utils._util.parallel import (
    map_chunks, partition, split, split_exactly, worker_count)


def test_chunks_are_contiguous_in_order_and_cover_everything():
    for count, parts in ((0, 2), (1, 3), (10, 2), (9809, 2), (100, 4), (7, 3)):
        chunks = split(list(range(count)), parts)
        assert [item for chunk in chunks for item in chunk] == list(range(count))
        assert len(chunks) == max(1, min(parts, count))
        assert all(chunks) or count == 0


def test_the_first_chunk_the_one_read_here_is_a_little_longer():
    chunks = split(list(range(1000)), 2)
    assert len(chunks[0]) > len(chunks[1]) > 400


def test_results_come_back_in_chunk_order_from_other_processes():
    results = map_chunks(lambda chunk: (os.getpid(), [n * n for n in chunk]), split(list(range(100)), 3))
    assert [n for _pid, part in results for n in part] == [n * n for n in range(100)]
    pids = [pid for pid, _part in results]
    assert pids[0] == os.getpid() and len(set(pids)) == 3


def test_a_child_that_fails_has_its_chunk_redone_here_where_the_error_surfaces():
    parent = os.getpid()

    def only_here(chunk):
        if os.getpid() != parent:
            raise RuntimeError("a child cannot do this")
        return sum(chunk)

    assert map_chunks(only_here, [[1, 2], [3, 4], [5]]) == [3, 7, 5]

    def broken(chunk):
        if 4 in chunk:
            raise ValueError("bad chunk")
        return chunk

    with pytest.raises(ValueError, match="bad chunk"):
        map_chunks(broken, [[1], [4]])


def test_a_killed_child_and_an_unpicklable_result_are_redone_here():
    parent = os.getpid()

    def dies(chunk):
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return chunk

    assert map_chunks(dies, [[1], [2], [3]]) == [[1], [2], [3]]
    assert map_chunks(lambda chunk: (lambda: chunk) if os.getpid() != parent else chunk, [[1], [2]]) == [[1], [2]]


def test_without_fork_everything_runs_here(monkeypatch):
    def refused():
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refused)
    assert map_chunks(lambda chunk: (os.getpid(), chunk), [[1], [2]]) == [(os.getpid(), [1]), (os.getpid(), [2])]


def test_workers_follow_the_cpus_the_items_and_a_given_limit(monkeypatch):
    monkeypatch.setattr(_parallel, "available_cpus", lambda: 2)
    assert worker_count(10000, 1500) == 2
    assert worker_count(2000, 1500) == 1
    assert worker_count(10000, 1500, workers=1) == 1
    assert worker_count(10000, 1, workers=3) == 3
    monkeypatch.setattr(_parallel, "available_cpus", lambda: 64)
    assert worker_count(10 ** 6, 1) == _parallel.MAX_WORKERS


def test_groups_balance_weight_and_keep_order():
    items = [1, 9, 2, 8, 3, 7]
    groups = partition(items, 2, float)
    assert sorted(item for group in groups for item in group) == sorted(items)
    assert sum(groups[0]) == sum(groups[1]) == 15
    assert all(group == [item for item in items if item in group] for group in groups)


def test_when_the_share_done_here_fails_the_children_are_stopped_and_reaped():
    parent = os.getpid()

    def slow_elsewhere(chunk):
        if os.getpid() != parent:
            import time  # pylint: disable=import-outside-toplevel
            time.sleep(60)
            return chunk
        raise KeyError("here")

    with pytest.raises(KeyError):
        map_chunks(slow_elsewhere, [[1], [2], [3]])
    with pytest.raises(ChildProcessError):  # no child left, not even a zombie
        os.waitpid(-1, os.WNOHANG)


def test_beside_runs_the_second_task_in_a_child_only_when_apart():
    from ansible_collections.strata.overlay2.plugins.module_utils._util.parallel import run_alongside
    assert run_alongside(os.getpid, os.getpid, in_second_process=False) == (os.getpid(), os.getpid())
    here, elsewhere = run_alongside(os.getpid, os.getpid, in_second_process=True)
    assert here == os.getpid() and elsewhere != here


def test_split_exactly_gives_one_run_per_process_even_with_fewer_items():
    assert split_exactly([1, 2, 3, 4, 5], 2) == split([1, 2, 3, 4, 5], 2)
    assert split_exactly([1], 3) == [[1], [], []]
    assert split_exactly([], 2) == [[], []]
