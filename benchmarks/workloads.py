"""The seven workloads of issue 6 and the registry ``WORKLOADS`` that ``run.py`` walks.

CPU-bound ones live here (tiny, medium, coarse, skewed); the ones about memory and start-up
(bigarg, startup, generator) live in ``_workloads_mem``. Sizes come in two flavours: the full
ones the issue names, and ``quick`` ones that only prove every engine and column still work.
"""

from __future__ import annotations

import random
from typing import Any

from _engines import JOBLIB, PARDO
from _spec import VS_JOBLIB, WALL, Column, Medians, Rep, Workload, metric, timed_maps
from _tasks import spin, trivial
from _workloads_mem import BIGARG, GENERATOR, STARTUP

__all__ = ["WORKLOADS", "skewed_durations"]

PROCESS_PEERS = ("mp-pool", "cf-process", "mpire")
# Thread engines are left out of CPU-bound workloads: pure Python holds the GIL, so they would
# only measure the GIL.
CPU_ENGINES = (*PARDO[:2], *JOBLIB[:2], *PROCESS_PEERS, "serial")


# -- 1. tiny -------------------------------------------------------------------------------------


def _tiny(name: str, n_jobs: int, reps: int, p: dict[str, Any]) -> list[Rep]:
    items = [(i,) for i in range(p["n"])]
    return timed_maps(name, n_jobs, reps, trivial, items, list(range(p["n"])), True)


def _per_task_us(engine: str, medians: Medians, ctx: dict[str, Any]) -> float | None:
    wall = medians.get(engine, {}).get("wall")
    return None if wall is None else float(wall) / ctx["params"]["n"] * 1e6


TINY = Workload(
    "tiny",
    "{n:,} calls of a trivial function (dispatch overhead per task)",
    (*PARDO, *JOBLIB, *PROCESS_PEERS, "cf-thread", "mpire-threading", "serial"),
    reps=5,
    sizes=lambda quick, rate: {"n": 2_000 if quick else 100_000},
    measure=_tiny,
    columns=(
        WALL,
        Column("µs/task", _per_task_us),
        VS_JOBLIB,
        Column("best chunksize", metric("chunksize"), "{}"),
    ),
)


# -- 2. medium, 3. coarse, 7. skewed: CPU-bound pure Python ---------------------------------------


def _spin_many(name: str, n_jobs: int, reps: int, p: dict[str, Any]) -> list[Rep]:
    items = [(t,) for t in p["turns"]]
    return timed_maps(name, n_jobs, reps, spin, items, list(p["turns"]))


def _efficiency(engine: str, medians: Medians, ctx: dict[str, Any]) -> float | None:
    serial, wall = medians.get("serial", {}).get("wall"), medians.get(engine, {}).get("wall")
    if engine == "serial" or not serial or not wall:
        return None
    return float(serial / (ctx["n_jobs"] * wall))


def _uniform(n: int, seconds: float, rate: float) -> dict[str, Any]:
    return {"n": n, "seconds": seconds, "turns": [max(1, int(seconds * rate))] * n}


EFFICIENCY = Column("efficiency", _efficiency, "{:.0%}")

MEDIUM = Workload(
    "medium",
    "{n:,} tasks of ~1 ms pure Python (efficiency = serial / (n_jobs x wall))",
    CPU_ENGINES,
    reps=3,
    sizes=lambda quick, rate: _uniform(40 if quick else 2_000, 0.001, rate),
    measure=_spin_many,
    columns=(WALL, EFFICIENCY, VS_JOBLIB),
    needs_serial=True,
)

COARSE = Workload(
    "coarse",
    "{n:,} tasks of ~{seconds} s pure Python (efficiency; no straggler tail)",
    CPU_ENGINES,
    reps=3,
    sizes=lambda quick, rate: _uniform(4 if quick else 16, 0.01 if quick else 0.25, rate),
    measure=_spin_many,
    columns=(WALL, EFFICIENCY, VS_JOBLIB),
    needs_serial=True,
)


def skewed_durations(n: int, total: float, alpha: float = 1.5, seed: int = 6) -> list[float]:
    """``n`` Pareto(``alpha``) durations in draw order (fixed seed), scaled to sum to ``total``."""
    rng = random.Random(seed)
    draws = [rng.paretovariate(alpha) for _ in range(n)]
    scale = total / sum(draws)
    return [d * scale for d in draws]


def _skewed_sizes(quick: bool, rate: float) -> dict[str, Any]:
    n, seconds = (50, 0.05) if quick else (1_000, 2.0)
    turns = [max(1, int(d * rate)) for d in skewed_durations(n, seconds)]
    return {"n": n, "seconds": seconds, "turns": turns}


def _stretch(engine: str, medians: Medians, ctx: dict[str, Any]) -> float | None:
    """Wall time over the best any schedule could do: max(serial / n_jobs, longest task)."""
    serial, wall = medians.get("serial", {}).get("wall"), medians.get(engine, {}).get("wall")
    if engine == "serial" or not serial or not wall:
        return None
    turns = ctx["params"]["turns"]
    bound = max(serial / ctx["n_jobs"], serial * max(turns) / sum(turns))
    return float(wall / bound)


SKEWED = Workload(
    "skewed",
    "{n:,} tasks with Pareto(1.5) durations, {seconds} s of serial work in all",
    CPU_ENGINES,
    reps=3,
    sizes=_skewed_sizes,
    measure=_spin_many,
    columns=(WALL, Column("wall / ideal", _stretch, "{:.2f}"), VS_JOBLIB),
    needs_serial=True,
)

WORKLOADS: dict[str, Workload] = {
    w.name: w for w in (TINY, MEDIUM, COARSE, BIGARG, STARTUP, GENERATOR, SKEWED)
}
