"""The functions the benchmark tasks run, importable by name in every worker process.

Each returns something the workload can check cheaply, so an engine that loses, duplicates or
reorders results shows as wrong in the table instead of as fast.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = [
    "SHARED",
    "blob",
    "calibrate",
    "chunk_sum",
    "chunk_sum_shared",
    "numpy_ready",
    "spin",
    "trivial",
]

#: The fork idiom for big inputs: set before a fork-based pool starts, inherited by its workers
#: (the "bigarg" workload's mp-pool and mpire rows). Nothing else writes it.
SHARED: dict[str, Any] = {}


def trivial(x: int) -> int:
    """The cheapest task there is: dispatch overhead is all that is left to measure."""
    return x


def numpy_ready(x: int) -> int:
    """Import numpy and hold the worker 20 ms, so that a warm-up of a few of these reaches
    every worker of the pool (trivial tasks all land on the first one to ask)."""
    import numpy  # noqa: F401

    time.sleep(0.02)
    return x


def spin(n: int) -> int:
    """Pure-Python CPU work of ``n`` loop turns (holds the GIL); returns ``n`` to check it ran."""
    acc = 0
    for i in range(n):
        acc ^= i
    return n if acc >= 0 else -1


def calibrate(seconds: float = 0.05) -> float:
    """Turns of ``spin`` per second on this machine (best of five short runs)."""
    n = 100_000
    best = float("inf")
    for _ in range(5):
        begin = time.perf_counter()
        spin(n)
        best = min(best, time.perf_counter() - begin)
    return n / best


def chunk_sum(array: Any, index: int, parts: int) -> int:
    """Sum of the ``index``-th of ``parts`` contiguous slices of ``array`` (touches 1/parts of it)."""
    step = -(-len(array) // parts)
    return int(array[index * step : (index + 1) * step].sum())


def chunk_sum_shared(index: int, parts: int) -> int:
    """``chunk_sum`` on the array a fork-based pool inherited through ``SHARED``."""
    return chunk_sum(SHARED["array"], index, parts)


def blob(index: int, nbytes: int) -> bytes:
    """A fresh ``nbytes`` result that starts with ``index`` (so order can be checked)."""
    return index.to_bytes(8, "little") + bytes(nbytes - 8)
