"""Trace one call: per-worker timeline of tasks, the batches the parent cut, and the idle gaps.

    python benchmarks/trace_batches.py [--ms 1] [--n 2000] [--engine pardo|joblib] [--skewed]

A call as users write it (a new ``Parallel(n_jobs=2)``, a generator of ``delayed(f)(x)``), in a
fresh process, after one warm-up call. Each task records its worker pid and CLOCK_MONOTONIC
start and end (one clock for all processes on Linux); for pardo the parent also records when
each batch was cut and its size. Printed: batch sizes over the call, each worker's idle time
before its first task and after its last, and the gaps between consecutive tasks on a worker
(a gap > 50 µs is a batch boundary: the time from a batch's end to the next one's start).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from itertools import pairwise
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))

from _tasks import spin


def timed_spin(turns: int) -> tuple[int, float, float]:
    begin = time.monotonic()
    spin(turns)
    return os.getpid(), begin, time.monotonic()


def _turns_per_second() -> float:
    n = 200_000
    begin = time.perf_counter()
    spin(n)
    return n / (time.perf_counter() - begin)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ms", type=float, default=1.0)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--engine", default="pardo", choices=["pardo", "joblib"])
    parser.add_argument("--skewed", action="store_true", help="Pareto(1.5) durations, mean --ms")
    args = parser.parse_args()
    rate = _turns_per_second()
    if args.skewed:
        rng = random.Random(6)
        weights = [rng.paretovariate(1.5) for _ in range(args.n)]
        scale = args.ms * args.n / sum(weights)
        turns = [max(1, int(w * scale / 1e3 * rate)) for w in weights]
    else:
        turns = [max(1, int(args.ms / 1e3 * rate))] * args.n
    cuts: list[tuple[float, int, int]] = []
    if args.engine == "pardo":
        import pardo as lib
        from pardo._engine import _input

        original = _input.Feed.next_batch

        def traced(self: Any, n_completed: int) -> Any:
            batch = original(self, n_completed)
            if batch is not None:
                cuts.append((time.monotonic(), batch.start, len(batch)))
            return batch

        _input.Feed.next_batch = traced  # type: ignore[method-assign]
    else:
        import joblib as lib  # type: ignore[no-redef]
    # Warm the pool with tasks of 20 ms: trivial ones all ran on the worker that booted first,
    # and the other one was still booting when the timed call began (35 to 75 ms "idle before
    # first" on one worker, for pardo and joblib alike).
    warm = max(1, int(0.02 * rate))
    for _ in range(10):  # until both workers have run a task
        ran = lib.Parallel(n_jobs=2)(lib.delayed(timed_spin)(warm) for _ in range(8))
        if len({pid for pid, _, _ in ran}) == 2:
            break
    cuts.clear()
    t0 = time.monotonic()
    out = lib.Parallel(n_jobs=2)(lib.delayed(timed_spin)(t) for t in turns)
    t1 = time.monotonic()
    serial = sum(end - begin for _, begin, end in out)
    print(f"{args.engine}: {args.n} tasks of ~{args.ms} ms{' (skewed)' if args.skewed else ''}")
    print(f"wall {t1 - t0:.3f} s, task time {serial:.3f} s, efficiency {serial / 2 / (t1 - t0):.0%}")
    if cuts:
        sizes = [size for _, _, size in cuts]
        print(f"batches cut: {len(sizes)}; sizes in order: {sizes}")
    for pid in sorted({pid for pid, _, _ in out}):
        mine = sorted((b, e) for p, b, e in out if p == pid)
        gaps = [b2 - e1 for (_, e1), (b2, _) in pairwise(mine)]
        boundaries = [g for g in gaps if g > 50e-6]
        print(
            f"worker {pid}: {len(mine)} tasks, idle before first {1e3 * (mine[0][0] - t0):.1f} ms, "
            f"after last {1e3 * (t1 - mine[-1][1]):.1f} ms, {len(boundaries)} gaps > 50 µs "
            f"(sum {1e3 * sum(boundaries):.1f} ms, median "
            f"{1e3 * statistics.median(boundaries) if boundaries else 0:.2f} ms, "
            f"max {1e3 * max(boundaries, default=0):.1f} ms)"
        )
        big = [(i + 1, round(1e3 * g, 1)) for i, g in enumerate(gaps) if g > 1e-3]
        print(f"  gaps > 1 ms (tasks done on this worker before it, ms): {big}")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
