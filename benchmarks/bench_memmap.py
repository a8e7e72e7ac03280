"""Benchmark: one large float64 array sent to many tasks, pardo vs joblib (both on loky).

Each task reduces one slice of the array. Every repetition of every engine runs in a fresh
Python process, which warms its pool up with a tiny call first, then times the one call that
matters while a sampling thread records the PSS (proportional set size: shared pages split
between the processes mapping them) of that process and all its children. "extra" is the peak
minus the PSS just before the call, so it counts what sending the array cost: pickled copies,
pages of the temp file that workers mapped, temporary buffers.

    python benchmarks/bench_memmap.py                # 200 MB array, 40 tasks, 5 repetitions
    python benchmarks/bench_memmap.py --big          # and a 2 GB array, once per engine
    python benchmarks/bench_memmap.py --reps 9 --n-jobs 4

Prints a markdown table of medians and the ratio to joblib.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

ENGINES = ("pardo", "joblib")
#: Seconds between two PSS samples; reading smaps of a few processes takes about a millisecond.
SAMPLE_SECONDS = 0.005


def slice_sum(data: Any, start: int, stop: int) -> float:
    """The task: reduce one slice (touches its pages once)."""
    return float(data[start:stop].sum())


def warm_up(small: Any) -> int:
    """Starts a worker and makes it import numpy, so that the timed call measures only sharing."""
    return int(small.size)


def tree_pss() -> int:
    """PSS bytes of this process and all its descendants (processes that vanish are skipped)."""
    import psutil

    me = psutil.Process()
    total = 0
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            total += proc.memory_full_info().pss
    return total


class PeakSampler(threading.Thread):
    """Samples ``tree_pss`` until stopped; ``peak`` is the largest value seen."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = tree_pss()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, tree_pss())
            self._stop_event.wait(SAMPLE_SECONDS)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, tree_pss())
        return self.peak


def child(engine: str, megabytes: int, n_tasks: int, n_jobs: int) -> dict[str, Any]:
    """One measured call in this (fresh) process."""
    import numpy as np

    if engine == "pardo":
        from pardo import Parallel, delayed
    else:
        from joblib import Parallel, delayed  # type: ignore[no-redef]
    data = np.random.default_rng(0).random(megabytes * 1024**2 // 8)
    bounds = np.linspace(0, data.size, n_tasks + 1).astype(int)
    Parallel(n_jobs=n_jobs)(delayed(warm_up)(np.ones(i + 1)) for i in range(4 * n_jobs))
    baseline = tree_pss()
    sampler = PeakSampler()
    sampler.start()
    start = time.perf_counter()
    sums = Parallel(n_jobs=n_jobs)(
        delayed(slice_sum)(data, int(lo), int(hi)) for lo, hi in itertools.pairwise(bounds)
    )
    wall = time.perf_counter() - start
    peak = sampler.stop()
    if not np.isclose(sum(sums), data.sum()):
        raise SystemExit(f"{engine}: wrong results")
    return {"wall": wall, "extra": peak - baseline, "array": int(data.nbytes)}


def run_child(engine: str, megabytes: int, n_tasks: int, n_jobs: int) -> dict[str, Any]:
    here = os.path.dirname(os.path.abspath(__file__))
    cmd = [sys.executable, os.path.join(here, "bench_memmap.py"), "--child", engine]
    cmd += ["--mb", str(megabytes), "--tasks", str(n_tasks), "--n-jobs", str(n_jobs)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=here)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(megabytes: int, n_tasks: int, n_jobs: int, reps: int) -> dict[str, list[Any]]:
    runs: dict[str, list[Any]] = {engine: [] for engine in ENGINES}
    for rep in range(reps):
        # Interleaved, and in turns first: the first large write after another process freed
        # as much memory is faster, and drifts of the machine should hit both engines alike.
        for engine in ENGINES if rep % 2 == 0 else ENGINES[::-1]:
            runs[engine].append(run_child(engine, megabytes, n_tasks, n_jobs))
    return runs


def table(title: str, runs: dict[str, list[Any]]) -> str:
    array = runs["pardo"][0]["array"]
    med = {
        e: (statistics.median(r["wall"] for r in rs), statistics.median(r["extra"] for r in rs))
        for e, rs in runs.items()
    }
    lines = [
        f"**{title}** ({len(runs['pardo'])} runs per engine, medians)",
        "",
        "| engine | wall (s) | vs joblib | peak extra PSS (MB) | extra / array size | vs joblib |",
        "|---|---|---|---|---|---|",
    ]
    for engine, (wall, extra) in med.items():
        lines.append(
            f"| {engine} | {wall:.3f} | {wall / med['joblib'][0]:.2f}x | {extra / 1e6:.0f} "
            f"| {extra / array:.2f}x | {extra / max(med['joblib'][1], 1):.2f}x |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--mb", type=int, default=200, help="array size in MiB (default 200)")
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--big", action="store_true", help="also a 2 GiB array")
    parser.add_argument("--big-reps", type=int, default=1, help="runs per engine with --big")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.mb, args.tasks, args.n_jobs)))
        return
    info = f"n_jobs={args.n_jobs}, {args.tasks} tasks, {os.cpu_count()} CPUs"
    runs = measure(args.mb, args.tasks, args.n_jobs, args.reps)
    print(table(f"{args.mb} MiB float64 array, {info}", runs))
    if args.big:
        print()
        print(
            table(
                f"2 GiB float64 array, {info}",
                measure(2048, args.tasks, args.n_jobs, args.big_reps),
            )
        )


if __name__ == "__main__":
    main()
