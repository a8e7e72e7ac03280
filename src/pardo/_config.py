"""Ground floor: the active configuration's ContextVar, n_jobs arithmetic, CPU count, thread caps.

Everything here is read by backends and by the front alike, so it imports nothing of pardo's (the
``parallel_config`` blocks that write the configuration live in ``_parallel_config``, above the
backend registry). The active configuration is a plain dict of the keys some enclosing
``parallel_config`` set, held in a ``ContextVar``. A new thread starts with an empty context, so the configuration is per thread, as
joblib's ``threading.local`` one is; unlike a thread-local it can also be captured and carried into
tasks (``contextvars.copy_context``). Explicit ``Parallel`` arguments always win over it.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from typing import Any

__all__ = [
    "CONFIG",
    "check_choice",
    "check_n_jobs",
    "cpu_count",
    "env_thread_caps",
    "get_config",
    "resolve_n_jobs",
]

CONFIG: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "pardo_config", default={}
)


def get_config() -> Mapping[str, Any]:
    """The keys set by the enclosing ``parallel_config`` blocks (innermost wins)."""
    return CONFIG.get()


def cpu_count(only_physical_cores: bool = False) -> int:
    """CPUs this process may use: affinity and cgroup quota aware (loky's count).

    1 on a Python without ``_multiprocessing`` (loky cannot load there), as in joblib.
    """
    try:
        from loky import cpu_count as loky_cpu_count
    except ImportError:
        return 1

    return int(loky_cpu_count(only_physical_cores=only_physical_cores))


def check_n_jobs(n_jobs: object) -> int | None:
    """Validate an ``n_jobs`` value as joblib does: int-like, never 0."""
    if n_jobs is None:
        return None
    if isinstance(n_jobs, bool):
        msg = f"n_jobs must be an int or None, got {n_jobs!r}"
        raise ValueError(msg)
    try:
        value: int = int(n_jobs)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        msg = f"n_jobs could not be converted to int: {n_jobs!r} (use a non-zero int or None)"
        raise ValueError(msg) from None
    if value == 0:
        msg = "n_jobs == 0 in Parallel has no meaning: use a positive count, or -1 for all CPUs"
        raise ValueError(msg)
    return value


def resolve_n_jobs(n_jobs: int, cpus: int | None = None) -> int:
    """Turn a validated non-zero ``n_jobs`` into a worker count: -1 all CPUs, -2 all but one..."""
    if n_jobs > 0:
        return n_jobs
    total = cpu_count() if cpus is None else cpus
    return max(total + 1 + n_jobs, 1)


def check_choice(name: str, value: object, allowed: tuple[object, ...]) -> None:
    """Raise ``ValueError`` naming ``name``, its value and the allowed values unless it is one."""
    if value not in allowed:
        msg = f"{name}={value!r} is not valid; expected one of {allowed!r}"
        raise ValueError(msg)


def env_thread_caps(n_threads: int) -> dict[str, str]:
    """Environment that caps BLAS/OpenMP pools at ``n_threads``, leaving the user's settings alone."""
    names = (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "BLIS_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMBA_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    )
    caps = {name: str(n_threads) for name in names if name not in os.environ}
    caps.setdefault("ENABLE_IPC", "1")
    return caps
