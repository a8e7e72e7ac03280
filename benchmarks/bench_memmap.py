"""Benchmark: one large float64 array sent to many tasks, pardo vs joblib (both on loky).

Each task reduces one slice of the array. Every repetition of every engine runs in a fresh
Python process, which warms its pool up with a tiny call first, then times the one call that
matters; a second fresh process per repetition makes the same call while a sampling thread
records the PSS (proportional set size: shared pages split
between the processes mapping them) of that process and all its children. "extra" is the peak
minus the PSS just before the call, so it counts what sending the array cost: pickled copies,
pages of the temp file that workers mapped, temporary buffers. "with temp files" counts the
whole temp file on /dev/shm as well, mapped or not, each page once (PSS without its shared-memory
part, plus what /dev/shm holds): the memory the call really took. "spread" is max/min - 1 of
the wall times.

    python benchmarks/bench_memmap.py                # 200 MB array, 40 tasks, 5 repetitions
    python benchmarks/bench_memmap.py --big          # and a 2 GB array, once per engine
    python benchmarks/bench_memmap.py --reps 9 --n-jobs 4
    python benchmarks/bench_memmap.py --cold-pages   # without prefault() (see there)
    python benchmarks/bench_memmap.py --calls 5      # 5 calls in one ``with Parallel()`` block
    python benchmarks/bench_memmap.py --calls 5 --change   # a[0] changed between the calls
    python benchmarks/bench_memmap.py --write-pieces       # the write with its digest, per piece

Prints a markdown table of medians and the ratio to joblib.

``--calls N`` times N calls of the tasks inside one ``with Parallel(n_jobs) as p:`` block, the
way a loop over cross-validation folds or hyperparameters is written, with no prefaulting (the
pages of the first write are part of the cost). Only times are taken (no memory runs), and each
run checks every call's result against the array as it was at that call: ``--change`` shows
that joblib then returns results computed on the first call's copy.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

ENGINES = ("pardo", "joblib")
#: Seconds between two PSS samples; reading smaps of a few processes takes about a millisecond.
SAMPLE_SECONDS = 0.005


def slice_sum(data: Any, start: int, stop: int) -> float:
    """The task: reduce one slice (touches its pages once)."""
    return float(data[start:stop].sum())


def warm_up(small: Any) -> int:
    """Makes a worker import numpy, so that the timed call measures only sharing. The 20 ms
    hold lets a few of these reach every worker (instant ones all land on the first)."""
    time.sleep(0.02)
    return int(small.size)


def tree_memory() -> tuple[int, int]:
    """(PSS, PSS without shared memory + /dev/shm usage) of this process and its descendants.

    The second counts each page of the temp files once, whether or not a worker maps it.
    """
    import psutil
    from _harness import _rollup, _shm_used

    me = psutil.Process()
    pss = pss_shmem = 0
    for proc in [me, *me.children(recursive=True)]:
        rollup = _rollup(proc.pid)
        if rollup is not None:
            pss += rollup["Pss"]
            pss_shmem += rollup.get("Pss_Shmem", 0)
    return pss, pss - pss_shmem + _shm_used()


class PeakSampler(threading.Thread):
    """Samples ``tree_memory`` until stopped; ``peak`` holds the largest values seen."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = tree_memory()
        self._stop_event = threading.Event()

    def _sample(self) -> None:
        self.peak = tuple(map(max, self.peak, tree_memory()))  # type: ignore[assignment]

    def run(self) -> None:
        while not self._stop_event.is_set():
            self._sample()
            self._stop_event.wait(SAMPLE_SECONDS)

    def stop(self) -> tuple[int, int]:
        self._stop_event.set()
        self.join()
        self._sample()
        return self.peak


def prefault(nbytes: int) -> None:
    """Write and delete ``nbytes`` of /dev/shm, so that the timed call's temp file gets pages
    the hypervisor already backs.

    On this virtual machine the first touch of a guest page the host has not backed (or took
    back through free page reporting) costs 0.5 to 3 s per GB, at random; left in, it decides the
    2 GB comparison by which engine got fresher pages. Both engines get the same treatment.
    """
    import numpy as np

    zeros = memoryview(np.zeros(64 * 1024**2, np.uint8))
    with tempfile.NamedTemporaryFile(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as f:
        for _ in range(0, nbytes, len(zeros)):
            f.write(zeros)
        f.flush()


@dataclass(frozen=True)
class Setup:
    """One workload: array size, tasks, workers, and whether the temp file's pages are warmed."""

    megabytes: int
    n_tasks: int
    n_jobs: int
    warm_pages: bool = True
    calls: int = 1
    change: bool = False

    def argv(self) -> list[str]:
        argv = ["--mb", str(self.megabytes), "--tasks", str(self.n_tasks)]
        argv += ["--n-jobs", str(self.n_jobs), "--calls", str(self.calls)]
        argv += ["--change"] if self.change else []
        return argv + ([] if self.warm_pages else ["--cold-pages"])


def child(engine: str, setup: Setup, sample: bool) -> dict[str, Any]:
    """One measured call in this (fresh) process; with ``sample``, its memory, else its time.

    Sampling reads /proc/PID/smaps_rollup of every process every 5 ms, which walks their page
    tables: on 2 CPUs that slows the call down, so times come from runs without the sampler.
    """
    import numpy as np

    if engine == "pardo":
        from pardo import Parallel, delayed
    else:
        from joblib import Parallel, delayed  # type: ignore[no-redef]
    n_jobs = setup.n_jobs
    data = np.random.default_rng(0).random(setup.megabytes * 1024**2 // 8)
    bounds = np.linspace(0, data.size, setup.n_tasks + 1).astype(int)
    Parallel(n_jobs=n_jobs)(delayed(warm_up)(np.ones(i + 1)) for i in range(2 * n_jobs))
    if setup.calls > 1:
        return managed_calls(Parallel, delayed, data, bounds, setup)
    if setup.warm_pages:
        prefault(data.nbytes)
    baseline = tree_memory() if sample else (0, 0)
    sampler = PeakSampler() if sample else None
    if sampler is not None:
        sampler.start()
    start = time.perf_counter()
    sums = Parallel(n_jobs=n_jobs)(
        delayed(slice_sum)(data, int(lo), int(hi)) for lo, hi in itertools.pairwise(bounds)
    )
    wall = time.perf_counter() - start
    if not np.isclose(sum(sums), data.sum()):
        raise SystemExit(f"{engine}: wrong results")
    if sampler is None:
        return {"wall": wall, "array": int(data.nbytes)}
    extra, with_files = (p - b for p, b in zip(sampler.stop(), baseline, strict=True))
    return {"extra": extra, "with_files": with_files, "array": int(data.nbytes)}


def managed_calls(
    parallel: Any, delayed: Any, data: Any, bounds: Any, setup: Setup
) -> dict[str, Any]:
    """``setup.calls`` calls in one ``with Parallel()`` block; wall time of the whole block.

    Each call's total is checked against the array as it was then (computed before the timing,
    so that summing 200 MB in the parent is not part of it).
    """
    import numpy as np

    pairs = [(int(lo), int(hi)) for lo, hi in itertools.pairwise(bounds)]
    base, first = float(data.sum()), float(data[0])
    expected = [
        base - first + call * 1e9 if setup.change and call else base for call in range(setup.calls)
    ]
    totals = []
    start = time.perf_counter()
    with parallel(n_jobs=setup.n_jobs) as p:
        for call in range(setup.calls):
            if setup.change and call:
                data[0] = (
                    call * 1e9
                )  # an in-place change between two calls (large: isclose sees it)
            totals.append(sum(p(delayed(slice_sum)(data, lo, hi) for lo, hi in pairs)))
    wall = time.perf_counter() - start
    right = sum(bool(np.isclose(t, e)) for t, e in zip(totals, expected, strict=True))
    if not setup.change and right != setup.calls:
        raise SystemExit("wrong results")
    return {"wall": wall, "array": int(data.nbytes), "right": right, "calls": setup.calls}


def run_child(engine: str, setup: Setup, sample: bool) -> dict[str, Any]:
    here = os.path.dirname(os.path.abspath(__file__))
    cmd = [sys.executable, os.path.join(here, "bench_memmap.py"), "--child", engine]
    cmd += setup.argv() + (["--sample"] if sample else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=here)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(setup: Setup, reps: int) -> dict[str, list[Any]]:
    """``reps`` timed runs and ``reps`` sampled runs per engine, merged pairwise."""
    runs: dict[str, list[Any]] = {engine: [] for engine in ENGINES}
    for rep in range(reps):
        # Interleaved, and in turns first: the first large write after another process freed
        # as much memory is faster, and drifts of the machine should hit both engines alike.
        for engine in ENGINES if rep % 2 == 0 else ENGINES[::-1]:
            timed = run_child(engine, setup, sample=False)
            if setup.calls > 1:
                runs[engine].append(timed)
            else:
                runs[engine].append({**timed, **run_child(engine, setup, sample=True)})
    return runs


def calls_table(title: str, runs: dict[str, list[Any]]) -> str:
    med = {e: statistics.median(r["wall"] for r in rs) for e, rs in runs.items()}
    lines = [
        f"**{title}** ({len(runs['pardo'])} runs per engine, medians)",
        "",
        "| engine | wall (s) | vs joblib | spread | calls with right results |",
        "|---|---|---|---|---|",
    ]
    for engine, rs in runs.items():
        walls = [r["wall"] for r in rs]
        right = min(r["right"] for r in rs)
        lines.append(
            f"| {engine} | {med[engine]:.3f} | {med[engine] / med['joblib']:.2f}x "
            f"| {max(walls) / min(walls) - 1:.0%} | {right} of {rs[0]['calls']} |"
        )
    return "\n".join(lines)


def table(title: str, runs: dict[str, list[Any]]) -> str:
    array = runs["pardo"][0]["array"]
    keys = ("wall", "extra", "with_files")
    med = {e: {k: statistics.median(r[k] for r in rs) for k in keys} for e, rs in runs.items()}
    spread = {
        e: max(r["wall"] for r in rs) / min(r["wall"] for r in rs) - 1 for e, rs in runs.items()
    }
    lines = [
        f"**{title}** ({len(runs['pardo'])} runs per engine, medians)",
        "",
        "| engine | wall (s) | vs joblib | spread | peak extra PSS (MB) | / array | "
        "with temp files (MB) | / array |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for engine, m in med.items():
        lines.append(
            f"| {engine} | {m['wall']:.3f} | {m['wall'] / med['joblib']['wall']:.2f}x "
            f"| {spread[engine]:.0%} | {m['extra'] / 1e6:.0f} | {m['extra'] / array:.2f}x "
            f"| {m['with_files'] / 1e6:.0f} | {m['with_files'] / array:.2f}x |"
        )
    return "\n".join(lines)


def write_pieces(megabytes: int, reps: int) -> str:
    """How the temp-file write costs with the digest taken on the way, per piece size.

    Sets ``pardo._arrays._bytes.HASH_PIECE_BYTES``: one plain ``write()`` of the array against
    writes of pieces each hashed (xxh3-128) just before it is written.
    """
    import numpy as np

    from pardo._arrays._bytes import hashing, new_hasher, write_array

    data = np.random.default_rng(0).random(megabytes * 1024**2 // 8)
    root = "/dev/shm" if os.path.isdir("/dev/shm") else None
    times: dict[str, list[float]] = {}
    for _ in range(reps):
        for label, piece in [
            ("one write(), no digest", 0),
            *((f"{k} KiB pieces, hashed", k) for k in (256, 1024, 4096)),
        ]:
            with tempfile.NamedTemporaryFile(dir=root) as file:
                start = time.perf_counter()
                if piece:
                    hashed = hashing(file.write, new_hasher())
                    for at in range(0, data.nbytes, piece * 1024):
                        hashed(memoryview(data).cast("B")[at : at + piece * 1024])
                else:
                    write_array(data, file.write)
                file.flush()
                times.setdefault(label, []).append(time.perf_counter() - start)
    lines = [
        f"**writing {megabytes} MiB to {root or 'the temp folder'}** ({reps} runs, medians)",
        "",
    ]
    lines += ["| how | ms |", "|---|---|"]
    lines += [f"| {k} | {statistics.median(v) * 1e3:.1f} |" for k, v in times.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--sample", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mb", type=int, default=200, help="array size in MiB (default 200)")
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1, help="calls in one with-Parallel block")
    parser.add_argument("--change", action="store_true", help="change a[0] between the calls")
    parser.add_argument("--write-pieces", action="store_true", help="only time the digest")
    parser.add_argument("--big", action="store_true", help="also a 2 GiB array")
    parser.add_argument("--big-reps", type=int, default=1, help="runs per engine with --big")
    parser.add_argument(
        "--cold-pages",
        action="store_true",
        help="skip the write that makes the hypervisor back the temp file's pages first",
    )
    args = parser.parse_args()
    warm = not args.cold_pages and args.calls == 1
    setup = Setup(args.mb, args.tasks, args.n_jobs, warm, args.calls, args.change)
    if args.child:
        print(json.dumps(child(args.child, setup, args.sample)))
        return
    if args.write_pieces:
        print(write_pieces(args.mb, args.reps))
        return
    if args.calls > 1:
        what = "a[0] changed between calls" if args.change else "unchanged array"
        info = f"n_jobs={args.n_jobs}, {args.tasks} tasks per call, {os.cpu_count()} CPUs"
        title = f"{args.calls} calls in one with-Parallel block, {args.mb} MiB, {what}, {info}"
        print(calls_table(title, measure(setup, args.reps)))
        return
    pages = "cold pages" if args.cold_pages else "pages prefaulted"
    info = f"n_jobs={args.n_jobs}, {args.tasks} tasks, {os.cpu_count()} CPUs, {pages}"
    print(table(f"{args.mb} MiB float64 array, {info}", measure(setup, args.reps)))
    if args.big:
        big = Setup(2048, args.tasks, args.n_jobs, setup.warm_pages)
        print()
        print(table(f"2 GiB float64 array, {info}", measure(big, args.big_reps)))


if __name__ == "__main__":
    main()
