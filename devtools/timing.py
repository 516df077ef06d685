"""The one timing helper of the benchmarks: medians of repeated runs, warm cache unless a setup rebuilds."""

from __future__ import annotations

import gc
import statistics
import time
from typing import Callable, Optional


def median_seconds(action: Callable[[], object], repeat: int, setup: Optional[Callable[[], object]] = None) -> float:
    """Median wall time of ``action``; a first untimed run warms caches when there is no ``setup``."""
    if setup is None:
        action()
    samples = []
    for _attempt in range(repeat):
        if setup is not None:
            setup()
        gc.collect()  # each sample starts without the garbage of the last: as a module starts, in a new process
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)
