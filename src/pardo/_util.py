"""Small public helpers that need both the config and the backend registry."""

from __future__ import annotations

from pardo._config import check_n_jobs, get_config
from pardo.backends import get_default_backend, make_backend

__all__ = ["effective_n_jobs"]


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
