"""The front's configuration blocks: ``parallel_config``, ``parallel_backend``, ``effective_n_jobs``.

They sit above the backend registry (they check and build backends by name) and write the
ground-floor ``ContextVar`` in ``_config``; backends only ever read that.
"""

from __future__ import annotations

import contextvars
import math
import os
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

from pardo._config import CONFIG, check_choice, check_n_jobs, get_config
from pardo._errors import UnsupportedSettingError
from pardo._memsize import parse_nbytes
from pardo._report._bars import check_progress
from pardo.backends import (
    Backend,
    backend_type,
    check_backend_name,
    get_default_backend,
    make_backend,
)

__all__ = [
    "ActiveSettings",
    "check_inner_max_num_threads",
    "effective_n_jobs",
    "memmap_threshold",
    "parallel_backend",
    "parallel_config",
    "validate_settings",
]

MMAP_MODES = (None, "r+", "r", "w+", "c")
PREFER = (None, "threads", "processes")
REQUIRE = (None, "sharedmem")


def validate_settings(settings: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the first setting whose value is not allowed."""
    if "n_jobs" in settings:
        check_n_jobs(settings["n_jobs"])
    if "mmap_mode" in settings:
        check_choice("mmap_mode", settings["mmap_mode"], MMAP_MODES)
    if "prefer" in settings:
        _check_hint("prefer", settings["prefer"], PREFER, "backend hint")
    if "require" in settings:
        _check_hint("require", settings["require"], REQUIRE, "backend constraint")
    if settings.get("prefer") == "processes" and settings.get("require") == "sharedmem":
        msg = "prefer='processes' and require='sharedmem' conflict: shared memory needs threads"
        raise ValueError(msg)
    if "max_nbytes" in settings and settings["max_nbytes"] is not None:
        memmap_threshold(settings["max_nbytes"])
    if "verbose" in settings and not isinstance(settings["verbose"], (int, float)):
        msg = f"verbose must be a number (0: silent, 10, 50, ...), got {settings['verbose']!r}"
        raise ValueError(msg)
    folder = settings.get("temp_folder")
    if folder is not None and not isinstance(folder, (str, os.PathLike)):
        msg = f"temp_folder must be a path (str or os.PathLike) or None, got {folder!r}"
        raise ValueError(msg)
    if "progress" in settings:
        check_progress(settings["progress"])


def memmap_threshold(value: object) -> int:
    """``max_nbytes`` in bytes: joblib's forms ("1M", ints, floats such as ``1e6``).

    A negative number memmaps every array, as ``0`` does (joblib compares ``nbytes > value``).
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return max(int(value), 0)  # nbytes > 1.5 exactly when nbytes > 1: flooring keeps it
    return parse_nbytes(value)


def _check_hint(name: str, value: object, allowed: tuple[str | None, ...], what: str) -> None:
    if value not in allowed:
        # "prefer=wrong is not a valid" is joblib's phrase (code written for joblib matches it).
        msg = f"{name}={value} is not a valid {what}: got {value!r}, expected one of {allowed!r}"
        raise ValueError(msg)


def check_inner_max_num_threads(backend: Any, value: object) -> None:
    """Raise unless ``backend`` can cap its workers' BLAS/OpenMP threads at ``value``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"inner_max_num_threads={value!r} is not valid; expected an int >= 1 or None"
        raise ValueError(msg)
    kind = backend_type(backend)
    if kind is None:  # a factory function: only the instance tells
        kind = type(make_backend(backend))
    if not kind.supports_inner_max_num_threads:
        # joblib's phrase, "X does not accept setting the inner_max_num_threads argument".
        msg = (
            f"{kind.__name__} does not accept setting the inner_max_num_threads argument: only "
            "the process backends ('loky', 'multiprocessing') cap their workers' BLAS/OpenMP "
            "threads; for threads in this process, use threadpoolctl"
        )
        raise UnsupportedSettingError(msg)


class ActiveSettings(Mapping[str, Any]):
    """What ``with parallel_config(...) as config`` gives: the active settings, read-only.

    As in joblib, ``config["backend"]`` is a backend instance (with the nesting level a task
    sees) when a backend is set; it is built on first read, so entering a block stays cheap.
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self._settings = settings
        self._backend: Backend | None = None

    def __getitem__(self, key: str) -> Any:
        value = self._settings[key]
        if key == "backend" and value is not None and not isinstance(value, Backend):
            if self._backend is None:
                level = int(self._settings.get("nesting_level", 0))
                params = self._settings.get("backend_params", {})
                self._backend = make_backend(value, params, level)
            return self._backend
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._settings)

    def __len__(self) -> int:
        return len(self._settings)


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
            check_backend_name(backend)
            check_inner_max_num_threads(backend, inner_max_num_threads)
            settings["backend"] = backend
            settings["backend_params"] = dict(backend_params)
            settings["inner_max_num_threads"] = inner_max_num_threads
        self._settings = settings
        self._token: contextvars.Token[Mapping[str, Any]] | None = None

    def __enter__(self) -> Mapping[str, Any]:
        merged = {**CONFIG.get(), **self._settings}
        self._token = CONFIG.set(merged)
        return ActiveSettings(merged)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            CONFIG.reset(self._token)
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
        config = super().__enter__()
        return config["backend"], config["n_jobs"]


def effective_n_jobs(n_jobs: int | None = -1) -> int:
    """How many workers ``Parallel(n_jobs=n_jobs)`` would use with the active backend."""
    if n_jobs == 1:
        return 1
    config = get_config()
    value = check_n_jobs(n_jobs if n_jobs is not None else config.get("n_jobs"))
    name = config.get("backend") or get_default_backend()
    backend = make_backend(name, config.get("backend_params"), int(config.get("nesting_level", 0)))
    try:
        return backend.effective_n_jobs(value if value is not None else backend.default_n_jobs)
    finally:
        # Asking may have opened something (a dask client from an address): close it again.
        backend.terminate()
