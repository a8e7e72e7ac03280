"""Where one tiny task's time goes: each stage of the per-task path timed alone, then the real call.

    python benchmarks/profile_tiny.py [--n 100000] [--profile]

Stages, each on ``n`` tasks of ``trivial(x) = x`` cut into the batch sizes a real call uses
(``--batch``, default 10,000), timed with ``perf_counter`` and the GC paused in this process (the worker's stages
run here too: the same code a loky worker runs, without the pipe):

parent: building ``delayed(trivial)(i)`` from a generator (the caller's floor), reading it into
the look-ahead, cutting batches, pickling them; worker: unpickling a batch, running it,
pickling the results; parent: unpickling the results and extending the result list. The real
call ``Parallel(n_jobs=2)(delayed(trivial)(i) for i in range(n))`` on a warm pool is timed last;
what it costs beyond the sum of the stages is the pipes, the wake-ups and the waiting.
``--profile`` adds a cProfile of the real call in the parent (top 15 by own time).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pickle
import pstats
import sys
import time
from collections.abc import Callable
from itertools import islice
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))

from _tasks import trivial


def _best(fn: Callable[[], Any], reps: int = 5) -> float:
    """Best of ``reps`` timings, with the cyclic GC paused as pardo pauses it while reading."""
    times = []
    for _ in range(reps):
        gc.disable()
        begin = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begin)
        gc.enable()
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    n, size = args.n, args.batch

    import pardo
    from pardo._task import Batch

    delayed = pardo.delayed
    tasks = [delayed(trivial)(i) for i in range(n)]
    batches = [Batch(tasks[i : i + size], i, {}) for i in range(0, n, size)]
    payloads = [pickle.dumps(b, protocol=pickle.HIGHEST_PROTOCOL) for b in batches]
    loaded = [pickle.loads(p) for p in payloads]
    outcomes = [b() for b in loaded]
    encoded = [pickle.dumps(o, protocol=pickle.HIGHEST_PROTOCOL) for o in outcomes]

    def cut() -> None:
        it = iter(tasks)
        while chunk := list(islice(it, size)):
            Batch(chunk, 0, {})

    def extend() -> None:
        out: list[Any] = []
        for raw in encoded:
            out.extend(pickle.loads(raw).results)

    stages = [
        ("caller: delayed(trivial)(i) from a generator", "parent", lambda: list(delayed(trivial)(i) for i in range(n))),
        ("read into the look-ahead and cut batches", "parent", cut),
        ("pickle the batches (columns)", "parent", lambda: [pickle.dumps(b, protocol=5) for b in batches]),
        ("unpickle a batch", "worker", lambda: [pickle.loads(p) for p in payloads]),
        ("run the tasks (Batch.__call__)", "worker", lambda: [b() for b in loaded]),
        ("pickle the results", "worker", lambda: [pickle.dumps(o, protocol=5) for o in outcomes]),
        ("unpickle the results, extend the list", "parent", extend),
    ]
    print(f"{n:,} tasks of trivial(x), batches of {size:,}; µs per task (best of 5)")
    print("| stage | side | µs/task |\n|---|---|---|")
    total = 0.0
    for label, side, fn in stages:
        us = _best(fn) / n * 1e6
        total += us
        print(f"| {label} | {side} | {us:.3f} |")
    print(f"| sum of the stages | | {total:.3f} |")

    par = pardo.Parallel
    par(n_jobs=2)(delayed(trivial)(i) for i in range(1000))  # start and warm the pool

    def real() -> None:
        par(n_jobs=2)(delayed(trivial)(i) for i in range(n))

    times = []
    for _ in range(5):  # the real call manages the GC itself
        begin = time.perf_counter()
        real()
        times.append(time.perf_counter() - begin)
    us = min(times) / n * 1e6
    print(f"| the real call, Parallel(n_jobs=2) on a warm loky pool | both | {us:.3f} |")
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(real)
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
