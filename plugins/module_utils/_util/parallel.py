# Copyright (c) strata.overlay2 contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# This module_utils is PRIVATE to the strata.overlay2 collection. It may change
# without notice; do not import it from other collections.

"""Independent read-and-parse work on several CPUs, with the answer of the serial run.

Reading a store is tens of thousands of small ``openat``/``read`` calls, each followed by a little Python; a
thread holds the GIL for the Python part, so only processes use a second core. ``map_chunks`` runs the first
chunk here and each other chunk in a ``fork()``ed child that inherits the open directory descriptors, sends
back its pickled result and leaves with ``os._exit`` (no exit handlers, no stdio flush). Results come back in
chunk order, so a caller that merges them in order gets exactly what one process would have built. A child
that cannot be started or does not deliver (fork refused, killed, an exception, a result that does not
pickle) has its chunk redone here; an exception then surfaces as it would have serially. Standard library
only; POSIX ``fork``.
"""

from __future__ import annotations

import os
import pickle
import signal
from typing import Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_WORKERS = 4  # beyond this the merge and the transfer cost more than the reading saves
_ERROR_EXIT = 3
FIRST_SHARE = 1.3  # the first chunk's length relative to each other chunk's


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worker_count(items: int, min_per_worker: int, workers: Optional[int] = None) -> int:
    """How many processes ``items`` are worth: at least ``min_per_worker`` items each, and at most ``workers``
    when given, else at most the CPUs and ``MAX_WORKERS``; 1 where ``fork`` is missing."""
    if not hasattr(os, "fork") or min_per_worker < 1:
        return 1
    limit = workers if workers is not None else min(available_cpus(), MAX_WORKERS)
    return max(1, min(limit, items // min_per_worker))


def split(items: Sequence[Item], parts: int) -> List[List[Item]]:
    """``items`` in ``parts`` contiguous runs, in order; the first (read here, while the children also pickle
    what they found) a little longer than the others."""
    parts = max(1, min(parts, len(items)))
    if parts == 1:
        return [list(items)]
    rest = int(len(items) / (parts + FIRST_SHARE - 1))
    first = len(items) - rest * (parts - 1)
    chunks = [list(items[:first])]
    for index in range(parts - 1):
        chunks.append(list(items[first + index * rest:first + (index + 1) * rest]))
    return chunks


def split_exactly(items: Sequence[Item], parts: int) -> List[List[Item]]:
    """``split`` into exactly ``parts`` runs, the missing ones (fewer items than parts) empty."""
    chunks = split(items, parts) if items else []
    return chunks + [[] for _missing in range(parts - len(chunks))]


def partition(items: Sequence[Item], parts: int, weight: Callable[[Item], float]) -> List[List[Item]]:
    """``items`` in ``parts`` groups of nearly equal total weight (heaviest first, each to the lightest group);
    each group keeps the items' order."""
    parts = max(1, min(parts, len(items)))
    if parts == 1:
        return [list(items)]
    weights = [weight(item) for item in items]
    loads = [0.0] * parts
    owner: Dict[int, int] = {}
    for index in sorted(range(len(items)), key=lambda i: -weights[i]):
        lightest = loads.index(min(loads))
        owner[index] = lightest
        loads[lightest] += weights[index]
    return [[item for index, item in enumerate(items) if owner[index] == group] for group in range(parts)]


def map_chunks(func: Callable[[List[Item]], Result], chunks: Sequence[List[Item]]) -> List[Result]:
    """``[func(chunk) for chunk in chunks]``, the chunks after the first in forked children."""
    if len(chunks) < 2:
        return [func(list(chunk)) for chunk in chunks]
    children = [_start(func, chunk) for chunk in chunks[1:]]
    try:
        first = func(list(chunks[0]))
    except BaseException:
        for child in children:  # nobody will read what they find: stop them now
            _stop(child)
        raise
    delivered = [_collect(child) for child in children]
    results = [first]
    for chunk, outcome in zip(chunks[1:], delivered):
        results.append(outcome[0] if outcome is not None else func(list(chunk)))
    return results


First = TypeVar("First")
Second = TypeVar("Second")


def run_alongside(main: Callable[[], First], other: Callable[[], Second],
                  in_second_process: bool) -> Tuple[First, Second]:
    """``(main(), other())``; with ``in_second_process``, ``other`` runs in a forked child meanwhile."""
    if not in_second_process:
        return main(), other()
    first, second = map_chunks(lambda task: task[0](), [[main], [other]])
    return first, second  # type: ignore[return-value]


_Child = Optional[Tuple[int, int]]  # (pid, read end of its pipe), or None when it could not be started


def _start(func: Callable[[List[Item]], Result], chunk: List[Item]) -> _Child:
    try:
        read_end, write_end = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:  # the child: compute, send, leave without running anything of the parent's
        status = _ERROR_EXIT
        try:
            os.close(read_end)
            payload = pickle.dumps(func(chunk), protocol=pickle.HIGHEST_PROTOCOL)
            view = memoryview(payload)
            while view:
                view = view[os.write(write_end, view):]
            status = 0
        except BaseException:  # pylint: disable=broad-except  # the parent redoes the chunk and sees it
            pass
        finally:
            os._exit(status)  # pylint: disable=protected-access
    os.close(write_end)
    return pid, read_end


def _stop(child: _Child) -> None:
    if child is None:
        return
    pid, read_end = child
    os.close(read_end)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _collect(child: _Child) -> Optional[Tuple[object]]:
    """The child's result as a 1-tuple, or None when it did not deliver one."""
    if child is None:
        return None
    pid, read_end = child
    chunks = []
    try:
        while True:
            data = os.read(read_end, 1 << 20)
            if not data:
                break
            chunks.append(data)
    except OSError:
        chunks = []
    finally:
        os.close(read_end)
    try:
        _pid, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    if status != 0 or not chunks:
        return None
    try:
        return (pickle.loads(b"".join(chunks)),)
    except Exception:  # pylint: disable=broad-except  # a truncated payload: redo the chunk here
        return None
