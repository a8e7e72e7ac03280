"""What a workload is (``Workload``, ``Column``) and the pieces most workloads share.

A workload's ``measure(engine, n_jobs, reps, params)`` runs inside a fresh benchmark process
(started by ``_harness``) and returns one dict of metrics per repetition; ``t0``/``t1`` in it mark
the timed window (``time.monotonic``, the same clock in every process) so that the parent's
memory sampler can tell the baseline from the peak. ``columns`` turn the medians of all engines
into one markdown table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from _engines import Engine, make_engine, reference_engines
from _tasks import trivial

__all__ = ["VS_JOBLIB", "WALL", "Column", "Medians", "Rep", "Workload", "metric", "timed_maps"]

Rep = dict[str, Any]
Medians = dict[str, dict[str, Any]]
ColumnValue = Callable[[str, Medians, dict[str, Any]], Any]


@dataclass(frozen=True)
class Column:
    """One table column: a header and a function of (engine, medians of all engines, context).

    The context holds ``n_jobs`` and the workload's ``params``.
    """

    header: str
    value: ColumnValue
    fmt: str = "{:.3g}"


@dataclass(frozen=True)
class Workload:
    """One row of issue 6's list: engines to run, sizes, the child-side measurement, the table."""

    name: str
    title: str  # formatted with the params
    engines: tuple[str, ...]
    reps: int
    sizes: Callable[[bool, float], dict[str, Any]]  # (quick, spin turns per second) -> params
    measure: Callable[[str, int, int, dict[str, Any]], list[Rep]]
    columns: tuple[Column, ...]
    fresh_per_rep: bool = False  # a new process per repetition (cold starts, peak memory)
    memory: bool = False  # sample the process tree's memory while it runs
    needs_serial: bool = False  # a column divides by the serial engine's time
    primary: str = "wall"  # the metric whose spread over repetitions the table shows


def warm_up(engine: Engine, n_jobs: int) -> None:
    """Start every worker and import the task module there, outside the timed window."""
    engine.map(trivial, [(i,) for i in range(4 * n_jobs)])


def timed_maps(
    name: str,
    n_jobs: int,
    reps: int,
    func: Callable[..., Any],
    items: Sequence[tuple[Any, ...]],
    expected: list[Any],
    try_chunksizes: bool = False,
) -> list[Rep]:
    """``reps`` timed ``engine.map`` calls on a warm engine; per rep the best chunk size if asked."""
    engine = make_engine(name, n_jobs)
    engine.open()
    try:
        warm_up(engine, n_jobs)
        out = []
        for _ in range(reps):
            tries: list[Rep] = []
            for chunksize in engine.chunksizes if try_chunksizes else (None,):
                t0 = time.monotonic()
                results = engine.map(func, items, chunksize)
                t1 = time.monotonic()
                ok = results == expected
                tries.append(
                    {"wall": t1 - t0, "t0": t0, "t1": t1, "ok": ok, "chunksize": chunksize}
                )
            best = min(tries, key=lambda rep: float(rep["wall"]))
            best["ok"] = all(rep["ok"] for rep in tries)
            best["chunksize"] = str(best["chunksize"] or "default")
            out.append(best)
        return out
    finally:
        engine.close()


def metric(key: str, scale: float = 1.0) -> ColumnValue:
    """Column value: the engine's median of ``key`` (times ``scale`` when it is a number)."""

    def value(engine: str, medians: Medians, ctx: dict[str, Any]) -> Any:
        got = medians.get(engine, {}).get(key)
        return got * scale if isinstance(got, (int, float)) else got

    return value


def vs_joblib(key: str) -> ColumnValue:
    """Column value: the engine's ``key`` over its joblib reference's (see ``reference_engines``)."""

    def value(engine: str, medians: Medians, ctx: dict[str, Any]) -> float | None:
        if engine.startswith("joblib-"):
            return None
        mine = medians.get(engine, {}).get(key)
        for ref in reference_engines(engine):
            theirs = medians.get(ref, {}).get(key)
            if isinstance(mine, float) and isinstance(theirs, float) and theirs > 0:
                return mine / theirs
        return None

    return value


WALL = Column("wall (s)", metric("wall"))
VS_JOBLIB = Column("time vs joblib", vs_joblib("wall"), "{:.2f}x")
