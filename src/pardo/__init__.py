"""pardo: run one function over many inputs in parallel, with joblib's API.

``from pardo import Parallel, delayed`` is a drop-in for ``from joblib import Parallel, delayed``.
This module only re-exports; importing it starts nothing.
"""

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
