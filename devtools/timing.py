"""The benchmarks' helpers: medians of repeated runs (warm cache unless a setup rebuilds), and their result file."""

from __future__ import annotations

import gc
import json
import statistics
import time
from typing import Any, Callable, Dict, Optional


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


def write_result(path: str, result: Dict[str, Any]) -> None:
    """A benchmark's result as JSON in ``path`` (the file the README's figures come from), and on stdout."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1)
        handle.write("\n")
    print(json.dumps(result, indent=1))
