"""Timing helper shared by the benchmarks (run them as ``python bench/<name>.py``)."""

from __future__ import annotations

import time


def best_of(fn, repeats: int) -> float:
    """Wall seconds of the fastest of ``repeats`` calls of ``fn``: the least disturbed run."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
