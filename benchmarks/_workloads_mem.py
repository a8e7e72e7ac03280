"""Workloads about memory and start-up: bigarg (4), startup (5) and generator (6) of issue 6.

Each repetition runs in a fresh process (``fresh_per_rep``): a cold start is only cold once, and
a process's peak memory only says something about the call it was started for. The parent's
sampler adds ``tree_pss_growth`` / ``root_rss_growth`` / ``system_growth`` (bytes) to each rep.
"""

from __future__ import annotations

import gc
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

from _engines import JOBLIB, PARDO, make_engine
from _spec import VS_JOBLIB, WALL, Column, Medians, Rep, Workload, metric, vs_joblib, warm_up
from _tasks import SHARED, blob, chunk_sum, chunk_sum_shared, numpy_ready, trivial

__all__ = ["BIGARG", "GENERATOR", "STARTUP"]

MB = 1024 * 1024
#: Seconds to wait before a timed call: the parent samples memory every 20 ms, and the baseline
#: (its last sample before the call) must come after the setup (array, pool, warm-up).
SETTLE = 0.06


def _is_parallel(name: str) -> bool:
    return name.startswith(("pardo-", "joblib-"))


def _mb(key: str) -> Any:
    return metric(key, 1 / MB)


def _of_array(engine: str, medians: Medians, ctx: dict[str, Any]) -> float | None:
    grown = medians.get(engine, {}).get("extra_growth")
    return None if grown is None else float(grown) / ctx["params"]["nbytes"]


# -- 4. bigarg -------------------------------------------------------------------------------------


def _bigarg(name: str, n_jobs: int, reps: int, p: dict[str, Any]) -> list[Rep]:
    import numpy as np

    n, parts = p["nbytes"] // 8, p["parts"]
    array = np.arange(n, dtype=np.int64)
    # Peers without memmapping get the array the way their users would: a fork-inherited global.
    shared = not _is_parallel(name) and make_engine(name, n_jobs).forks
    if shared:
        SHARED["array"] = array
    engine = make_engine(name, n_jobs)
    engine.open()
    try:
        # Every worker imports numpy before the timed call: it measures how the array travels,
        # not the ~40 ms numpy's import takes in each fresh worker.
        engine.map(numpy_ready, [(i,) for i in range(2 * n_jobs)])
        out = []
        for _ in range(reps):
            func: Callable[..., int] = chunk_sum_shared if shared else chunk_sum
            items: list[tuple[Any, ...]] = [(i, parts) for i in range(parts)]
            if not shared:
                items = [(array, *args) for args in items]
            gc.collect()
            time.sleep(SETTLE)
            t0 = time.monotonic()
            results = engine.map(func, items)
            t1 = time.monotonic()
            how = "fork-inherited global" if shared else "array as argument"
            ok = sum(results) == n * (n - 1) // 2
            out.append({"wall": t1 - t0, "t0": t0, "t1": t1, "ok": ok, "how": how})
        return out
    finally:
        engine.close()


BIGARG = Workload(
    "bigarg",
    "a {nbytes_mb:.0f} MB int64 array sent to {parts} tasks (each sums a slice)",
    (*PARDO, *JOBLIB, "mp-pool", "mpire", "serial"),
    reps=3,
    sizes=lambda quick, rate: {
        "nbytes": (8 if quick else 200) * MB,
        "nbytes_mb": 8 if quick else 200,
        "parts": 8 if quick else 40,
    },
    measure=_bigarg,
    columns=(
        WALL,
        Column("extra memory (MB)", _mb("extra_growth"), "{:.0f}"),
        Column("x array", _of_array, "{:.2f}"),
        Column("system growth (MB)", _mb("system_growth"), "{:.0f}"),
        VS_JOBLIB,
        Column("array passed as", metric("how"), "{}"),
    ),
    fresh_per_rep=True,
    memory=True,
)


# -- 5. startup -------------------------------------------------------------------------------------


def _median_call_time(call: Any, times: int, budget: float) -> float:
    samples: list[float] = []
    stop = time.monotonic() + budget
    while len(samples) < times and (len(samples) < 3 or time.monotonic() < stop):
        begin = time.perf_counter()
        call()
        samples.append(time.perf_counter() - begin)
    return statistics.median(samples)


def _startup(name: str, n_jobs: int, reps: int, p: dict[str, Any]) -> list[Rep]:
    two = [(0,), (1,)]
    engine = make_engine(name, n_jobs)
    begin = time.perf_counter()
    # Cold: the import, the pool and one call of 2 tasks, as a user's first lines would do it.
    engine.open()
    try:
        ok = engine.map(trivial, two) == [0, 1]
        cold = time.perf_counter() - begin
        engine.hold()
        warm = _median_call_time(
            lambda: engine.map_held(trivial, two), p["warm_calls"], p["budget"]
        )
        fresh = None
        if _is_parallel(name):
            call = lambda: engine.map(trivial, two)  # noqa: E731
            fresh = _median_call_time(call, p["fresh_calls"], p["budget"])
    finally:
        engine.close()
    return [{"cold": cold, "warm": warm, "warm_new": fresh, "ok": ok}]


STARTUP = Workload(
    "startup",
    "cold: import + first call of 2 tasks in a fresh interpreter; warm: a call of 2 tasks, "
    "median of up to {warm_calls}",
    (*PARDO, *JOBLIB, "loky", "mp-pool", "cf-process", "cf-thread", "mpire"),
    reps=3,
    sizes=lambda quick, rate: {
        "warm_calls": 5 if quick else 200,
        "fresh_calls": 3 if quick else 50,
        "budget": 0.2 if quick else 2.0,
    },
    measure=_startup,
    columns=(
        Column("cold (s)", metric("cold")),
        Column("cold vs joblib", vs_joblib("cold"), "{:.2f}x"),
        Column("warm, pool kept (ms)", metric("warm", 1e3)),
        Column("warm vs joblib", vs_joblib("warm"), "{:.2f}x"),
        Column("warm, new Parallel (ms)", metric("warm_new", 1e3)),
    ),
    fresh_per_rep=True,
    primary="cold",
)


# -- 6. generator ------------------------------------------------------------------------------------


def _generator(name: str, n_jobs: int, reps: int, p: dict[str, Any]) -> list[Rep]:
    import psutil

    n, size = p["n"], p["result_bytes"]
    engine = make_engine(name, n_jobs)
    engine.open()
    try:
        warm_up(engine, n_jobs)
        gc.collect()
        time.sleep(SETTLE)
        rss0 = psutil.Process().memory_info().rss
        peak0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        ok, count = True, 0
        t0 = time.monotonic()
        for index, result in enumerate(engine.imap(blob, ((i, size) for i in range(n)))):
            ok = ok and len(result) == size and int.from_bytes(result[:8], "little") == index
            count += 1
        t1 = time.monotonic()
        peak1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    finally:
        engine.close()
    rep: Rep = {"wall": t1 - t0, "t0": t0, "t1": t1, "ok": ok and count == n}
    # ru_maxrss is the exact peak, but only tells about this call if the call set a new peak.
    if peak1 > peak0:
        rep["root_rss_growth"] = peak1 - rss0
    return [rep]


GENERATOR = Workload(
    "generator",
    "{n:,} tasks returning {result_kb} KB each, consumed lazily (return_as='generator')",
    # joblib's multiprocessing backend refuses return_as="generator".
    (*PARDO, "joblib-loky", "joblib-threading", "mp-pool", "cf-process", "mpire", "serial"),
    reps=3,
    sizes=lambda quick, rate: {
        "n": 200 if quick else 20_000,
        "result_bytes": 100_000,
        "result_kb": 100,
    },
    measure=_generator,
    columns=(
        WALL,
        Column("parent peak growth (MB)", _mb("root_rss_growth"), "{:.1f}"),
        Column("tree PSS growth (MB)", _mb("tree_pss_growth"), "{:.0f}"),
        VS_JOBLIB,
    ),
    fresh_per_rep=True,
    memory=True,
)
