"""Memory benchmarks: pardo.Memory against joblib.Memory and diskcache's memoize.

Each measurement runs in a fresh Python process (``--one``); the table shows medians.

    python benchmarks/bench_memory.py            # 200 MB arrays, entries up to 10,000
    python benchmarks/bench_memory.py --quick    # small sizes, to check that it runs
    python benchmarks/bench_memory.py --entries 10 1000 100000

Rows: key of a 200 MB float64 array (pardo's cache key vs ``joblib.hash``); hit latency with a
small argument, with a 200 MB argument, and for a 200 MB result with ``mmap_mode="r"``; four
processes calling one slow function with the same argument at once (how many computed it, and
the wall time); hit latency by number of entries in the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

ENGINES = ("pardo", "joblib", "diskcache")


def _cache(engine: str, folder: str, mmap: bool = False) -> Any:
    if engine == "pardo":
        import pardo

        memory = pardo.Memory(folder, verbose=0, mmap_mode="r" if mmap else None)
        return lambda f: memory.cache(f)
    if engine == "joblib":
        import joblib

        memory = joblib.Memory(folder, verbose=0, mmap_mode="r" if mmap else None)
        return lambda f: memory.cache(f)
    import diskcache

    cache = diskcache.Cache(folder)
    return lambda f: cache.memoize()(f)


def _hits(f: Any, arg: Any, n: int) -> float:
    f(arg)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        f(arg)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def identity(x: Any) -> Any:
    return 0


def ones(n: int) -> Any:
    import numpy as np

    return np.ones(n)


def one(scenario: str, engine: str, size: int, extra: int) -> dict[str, Any]:
    import numpy as np

    folder = tempfile.mkdtemp(prefix="bench-memory-")
    if scenario == "key":
        array = np.random.default_rng(0).random(size // 8)
        if engine == "pardo":
            from pardo._memory._keys import call_key

            fn: Any = lambda: call_key((array,))  # noqa: E731
        else:
            import joblib

            fn = lambda: joblib.hash(array)  # noqa: E731
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return {"seconds": statistics.median(times), "GB/s": size / statistics.median(times) / 1e9}
    if scenario == "hit_small":
        return {"seconds": _hits(_cache(engine, folder)(identity), 1, 2000)}
    if scenario == "hit_bigarg":
        array = np.random.default_rng(0).random(size // 8)
        return {"seconds": _hits(_cache(engine, folder)(identity), array, 5)}
    if scenario == "hit_mmap":
        return {"seconds": _hits(_cache(engine, folder, mmap=True)(ones), size // 8, 20)}
    if scenario == "entries":
        f = _cache(engine, folder)(identity)
        for i in range(extra):
            f(i)
        times = []
        for i in range(0, extra, max(1, extra // 200)):
            start = time.perf_counter()
            f(i)
            times.append(time.perf_counter() - start)
        return {"seconds": statistics.median(times)}
    raise SystemExit(f"unknown scenario {scenario}")


_CONCURRENT = """
import os, sys, time
sys.path.insert(0, {here!r})
import bench_memory as b
deco = b._cache({engine!r}, {folder!r})
def slow(x):
    open(os.path.join({marks!r}, str(os.getpid())), "w").close()
    time.sleep(0.5)
    return x
slow.__module__ = "bench_concurrent"
deco(slow)(1)
"""


def concurrent(engine: str, n: int = 4) -> dict[str, Any]:
    folder, marks = tempfile.mkdtemp(), tempfile.mkdtemp()
    here = os.path.dirname(os.path.abspath(__file__))
    code = _CONCURRENT.format(here=here, engine=engine, folder=folder, marks=marks)
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]
    for p in procs:
        p.wait(timeout=120)
    return {"seconds": time.perf_counter() - start, "computed": len(os.listdir(marks))}


def run(scenario: str, engine: str, size: int, extra: int, reps: int) -> dict[str, Any]:
    results = []
    for _ in range(reps):
        out = subprocess.run(
            [sys.executable, __file__, "--one", scenario, engine, str(size), str(extra)],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if out.returncode:
            return {"error": out.stderr.strip().splitlines()[-1:]}
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", nargs=4)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--entries", type=int, nargs="*", default=[10, 1000, 10000])
    args = parser.parse_args()
    if args.one:
        scenario, engine, size, extra = args.one
        print(json.dumps(one(scenario, engine, int(size), int(extra))))
        return
    size = 2_000_000 if args.quick else 200_000_000
    entries = [10, 100] if args.quick else args.entries
    reps = 1 if args.quick else args.reps
    print(f"machine load: {os.getloadavg()}, size {size / 1e6:.0f} MB, {reps} reps (medians)\n")
    print("| measurement | pardo | joblib | diskcache | pardo / joblib |")
    print("|---|---|---|---|---|")

    def row(label: str, cells: dict[str, Any], key: str = "seconds", fmt: str = "us") -> None:
        def show(v: Any) -> str:
            if not isinstance(v, dict) or key not in v:
                return "n/a" if v is None else f"error {v.get('error')}"
            x = v[key]
            return f"{x * 1e6:.1f} µs" if fmt == "us" else f"{x:.3g}"

        p, j = cells.get("pardo"), cells.get("joblib")
        ratio = f"{p[key] / j[key]:.3f}x" if p and j and key in p and key in j and j[key] else ""
        print(
            f"| {label} | {show(p)} | {show(j)} | {show(cells.get('diskcache'))} | {ratio} |",
            flush=True,
        )

    row(
        "key of the array (GB/s)",
        {e: run("key", e, size, 0, reps) for e in ("pardo", "joblib")},
        "GB/s",
        "g",
    )
    for scenario, label in (
        ("hit_small", "hit, small argument"),
        ("hit_bigarg", "hit, array argument"),
        ("hit_mmap", "hit, array result, mmap_mode='r'"),
    ):
        engines = ("pardo", "joblib") if scenario == "hit_mmap" else ENGINES
        row(label, {e: run(scenario, e, size, 0, reps) for e in engines})
    cc = {e: concurrent(e) for e in ENGINES}
    row("4 concurrent callers: computations", cc, "computed", "g")
    row("4 concurrent callers: wall (s)", cc, "seconds", "g")
    for n in entries:
        row(f"hit with {n} entries", {e: run("entries", e, 0, n, 1) for e in ENGINES})


if __name__ == "__main__":
    main()
