"""The caller's defaults: ``parallel_config`` / ``parallel_backend``, and n_jobs arithmetic.

The active configuration is a plain dict of the keys some enclosing ``parallel_config`` set, held in
a ``ContextVar``. A new thread starts with an empty context, so the configuration is per thread, as
joblib's ``threading.local`` one is; unlike a thread-local it can also be captured and carried into
tasks (``contextvars.copy_context``). Explicit ``Parallel`` arguments always win over it.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any

__all__ = [
    "cpu_count",
    "get_config",
    "parallel_backend",
    "parallel_config",
    "resolve_n_jobs",
]

_CONFIG: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "pardo_config", default={}
)

_MMAP_MODES = (None, "r+", "r", "w+", "c")
_PREFER = (None, "threads", "processes")
_REQUIRE = (None, "sharedmem")


def get_config() -> Mapping[str, Any]:
    """The keys set by the enclosing ``parallel_config`` blocks (innermost wins)."""
    return _CONFIG.get()


def cpu_count(only_physical_cores: bool = False) -> int:
    """CPUs this process may use: affinity and cgroup quota aware (loky's count)."""
    from loky import cpu_count as loky_cpu_count

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


def _check_choice(name: str, value: object, allowed: tuple[object, ...]) -> None:
    if value not in allowed:
        msg = f"{name}={value!r} is not valid; expected one of {allowed!r}"
        raise ValueError(msg)


def validate_settings(settings: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the first setting whose value is not allowed."""
    if "n_jobs" in settings:
        check_n_jobs(settings["n_jobs"])
    if "mmap_mode" in settings:
        _check_choice("mmap_mode", settings["mmap_mode"], _MMAP_MODES)
    if "prefer" in settings:
        _check_choice("prefer", settings["prefer"], _PREFER)
    if "require" in settings:
        _check_choice("require", settings["require"], _REQUIRE)
    if settings.get("prefer") == "processes" and settings.get("require") == "sharedmem":
        msg = "prefer='processes' and require='sharedmem' conflict: shared memory needs threads"
        raise ValueError(msg)
    if "max_nbytes" in settings and settings["max_nbytes"] is not None:
        from pardo._memsize import parse_nbytes

        parse_nbytes(settings["max_nbytes"])
    if "verbose" in settings and not isinstance(settings["verbose"], int):
        msg = f"verbose must be an int, got {settings['verbose']!r}"
        raise ValueError(msg)
    if "progress" in settings:
        from pardo._bars import check_progress

        check_progress(settings["progress"])


_UNSET: Any = object()


class parallel_config:
    """Set defaults for every ``Parallel`` created inside the ``with`` block (this thread only).

    Args:
        backend: a backend name, a backend instance, or None to keep the enclosing one.
        n_jobs: default worker count for ``Parallel`` (see ``Parallel``).
        verbose: default verbosity.
        temp_folder: default folder for memmapped arrays.
        max_nbytes: default memmapping threshold.
        mmap_mode: default mode workers open memmaps with.
        prefer: default soft hint, "threads" or "processes".
        require: default hard constraint, "sharedmem".
        progress: default progress bar setting.
        inner_max_num_threads: cap on BLAS/OpenMP threads in each process worker.
        **backend_params: passed to the backend (only with a backend name).

    Keys left unset inherit from the enclosing block; explicit ``Parallel`` arguments win.
    Entering returns the resulting configuration mapping.
    """

    def __init__(
        self,
        backend: Any = None,
        *,
        n_jobs: Any = _UNSET,
        verbose: Any = _UNSET,
        temp_folder: Any = _UNSET,
        max_nbytes: Any = _UNSET,
        mmap_mode: Any = _UNSET,
        prefer: Any = _UNSET,
        require: Any = _UNSET,
        progress: Any = _UNSET,
        inner_max_num_threads: Any = None,
        **backend_params: Any,
    ) -> None:
        given = {
            "n_jobs": n_jobs,
            "verbose": verbose,
            "temp_folder": temp_folder,
            "max_nbytes": max_nbytes,
            "mmap_mode": mmap_mode,
            "prefer": prefer,
            "require": require,
            "progress": progress,
        }
        settings = {k: v for k, v in given.items() if v is not _UNSET}
        validate_settings(settings)
        if backend is None and (backend_params or inner_max_num_threads is not None):
            msg = (
                "inner_max_num_threads and backend parameters "
                f"{sorted(backend_params)} are only supported when backend is not None"
            )
            raise ValueError(msg)
        if backend is not None and not isinstance(backend, str) and backend_params:
            msg = (
                f"backend parameters {sorted(backend_params)} need a backend name, got {backend!r}"
            )
            raise ValueError(msg)
        if backend is not None:
            from pardo.backends import check_backend_name

            check_backend_name(backend)
            settings["backend"] = backend
            settings["backend_params"] = dict(backend_params)
            settings["inner_max_num_threads"] = inner_max_num_threads
        self._settings = settings
        self._token: contextvars.Token[Mapping[str, Any]] | None = None

    def __enter__(self) -> Mapping[str, Any]:
        merged = {**_CONFIG.get(), **self._settings}
        self._token = _CONFIG.set(merged)
        return merged

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _CONFIG.reset(self._token)
            self._token = None


class parallel_backend(parallel_config):
    """Older form of ``parallel_config``: ``n_jobs`` defaults to -1; yields ``(backend, n_jobs)``."""

    def __init__(
        self,
        backend: Any,
        n_jobs: int = -1,
        inner_max_num_threads: int | None = None,
        **backend_params: Any,
    ) -> None:
        super().__init__(
            backend,
            n_jobs=n_jobs,
            inner_max_num_threads=inner_max_num_threads,
            **backend_params,
        )

    def __enter__(self) -> tuple[Any, int]:  # type: ignore[override]
        from pardo.backends import make_backend

        config = super().__enter__()
        backend = make_backend(config["backend"], config.get("backend_params", {}))
        return backend, config["n_jobs"]


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
