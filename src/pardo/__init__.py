"""pardo: run one function over many inputs in parallel, with joblib's API.

``from pardo import Parallel, delayed`` is a drop-in for ``from joblib import Parallel, delayed``.
This module only re-exports; importing it starts nothing. The parts a plain ``Parallel`` call
does not need (Memory and hashing, dump/load, the ssh cluster) are imported on first use
(PEP 562), because every process worker runs this module before its first task: eager imports
here cost each worker's start-up (and the caller's) ~60 ms.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
from pardo._parallel import Parallel
from pardo._parallel_config import effective_n_jobs, parallel_backend, parallel_config
from pardo._task import delayed
from pardo.backends import Backend, register_parallel_backend

if TYPE_CHECKING:
    from pardo._arrays._persist import dump, load
    from pardo._memory._jhash import hash
    from pardo._memory._memory import Memory
    from pardo._memory._policy import expires_after
    from pardo._memory._results import MemorizedResult
    from pardo._memory._store import StoreBackendBase, register_store_backend
    from pardo.backends._dask._ssh import ssh_cluster

#: Public name -> the module it is imported from on first use.
_LAZY = {
    "dump": "pardo._arrays._persist",
    "load": "pardo._arrays._persist",
    "hash": "pardo._memory._jhash",
    "Memory": "pardo._memory._memory",
    "expires_after": "pardo._memory._policy",
    "MemorizedResult": "pardo._memory._results",
    "StoreBackendBase": "pardo._memory._store",
    "register_store_backend": "pardo._memory._store",
    "ssh_cluster": "pardo.backends._dask._ssh",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'pardo' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups find it without calling here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


ParallelBackendBase = Backend

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
