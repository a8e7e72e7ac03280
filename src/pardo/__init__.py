"""pardo: run one function over many inputs in parallel, with joblib's API.

``from pardo import Parallel, delayed`` is a drop-in for ``from joblib import Parallel, delayed``.
This module only re-exports, each name on first use; importing it starts nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pardo._arrays._persist import dump, load
    from pardo._config import cpu_count
    from pardo._context import register_context_propagator
    from pardo._errors import (
        PardoError,
        RemoteTraceback,
        TaskError,
        TaskPicklingError,
        TaskTimeout,
        TaskTimeoutError,
        TempFolderError,
        TerminatedWorkerError,
        TimeoutError,
        WorkerDiedError,
    )
    from pardo._grid import product, zip
    from pardo._memory._jhash import hash
    from pardo._memory._memory import Memory
    from pardo._memory._policy import expires_after
    from pardo._memory._results import MemorizedResult
    from pardo._memory._store import StoreBackendBase, register_store_backend
    from pardo._parallel import Parallel
    from pardo._parallel_config import effective_n_jobs, parallel_backend, parallel_config
    from pardo._task import delayed
    from pardo.backends import Backend, register_parallel_backend
    from pardo.backends._dask._ssh import ssh_cluster

    ParallelBackendBase = Backend

#: Where each public name lives. Imported on first use (PEP 562): a worker process that
#: unpickles its first batch imports ``pardo._task`` and so runs this file, and must not pay
#: for the front, the engine and numpy-side helpers it never uses (benchmarks/RESULTS.md,
#: "Cold start": ~195 of a worker's ~214 ms of imports at load, before this).
_WHERE = {
    "Backend": "pardo.backends",
    "ParallelBackendBase": "pardo.backends",
    "register_parallel_backend": "pardo.backends",
    "Parallel": "pardo._parallel",
    "cpu_count": "pardo._config",
    "delayed": "pardo._task",
    "dump": "pardo._arrays._persist",
    "load": "pardo._arrays._persist",
    "effective_n_jobs": "pardo._parallel_config",
    "parallel_backend": "pardo._parallel_config",
    "parallel_config": "pardo._parallel_config",
    "product": "pardo._grid",
    "zip": "pardo._grid",
    "register_context_propagator": "pardo._context",
    "hash": "pardo._memory._jhash",
    "Memory": "pardo._memory._memory",
    "expires_after": "pardo._memory._policy",
    "MemorizedResult": "pardo._memory._results",
    "StoreBackendBase": "pardo._memory._store",
    "register_store_backend": "pardo._memory._store",
    "ssh_cluster": "pardo.backends._dask._ssh",
    **dict.fromkeys(
        (
            "PardoError",
            "RemoteTraceback",
            "TaskError",
            "TaskPicklingError",
            "TaskTimeout",
            "TaskTimeoutError",
            "TempFolderError",
            "TerminatedWorkerError",
            "TimeoutError",
            "WorkerDiedError",
        ),
        "pardo._errors",
    ),
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        msg = f"module 'pardo' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(
        importlib.import_module(where), "Backend" if name == "ParallelBackendBase" else name
    )
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "Backend",
    "MemorizedResult",
    "Memory",
    "Parallel",
    "ParallelBackendBase",
    "PardoError",
    "RemoteTraceback",
    "StoreBackendBase",
    "TaskError",
    "TaskPicklingError",
    "TaskTimeout",
    "TaskTimeoutError",
    "TempFolderError",
    "TerminatedWorkerError",
    "TimeoutError",
    "WorkerDiedError",
    "cpu_count",
    "delayed",
    "dump",
    "effective_n_jobs",
    "expires_after",
    "hash",
    "load",
    "parallel_backend",
    "parallel_config",
    "product",
    "register_context_propagator",
    "register_parallel_backend",
    "register_store_backend",
    "ssh_cluster",
    "zip",
]

__version__ = "0.1.0"
