"""The contract every backend meets: open a pool, ``submit(batch) -> Future``, close it.

Lifecycle, as ``Parallel`` drives it::

    backend.configure(n_jobs, settings)    open (or reuse) the pool; returns the worker count
      backend.start_call()                 once per Parallel call
        backend.submit(batch) -> Future    many times; the Future resolves to a BatchResult
      backend.stop_call()                  end of the call (also after errors)
    backend.terminate()                    end of the call, or of the ``with Parallel()`` block
    backend.abort_everything()             on error / Ctrl-C / dropped generator: stop work now

Backends never see ``Parallel``; what they need arrives as ``CallSettings``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pardo._config import resolve_n_jobs

__all__ = ["Backend", "CallSettings"]


@dataclass(frozen=True)
class CallSettings:
    """Per-call options a backend may use (process backends use most of them)."""

    temp_folder: str | None = None
    max_nbytes: int | None = 1024**2
    mmap_mode: str | None = "r"
    inner_max_num_threads: int | None = None
    verbose: int = 0
    task_timeout: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Backend(ABC):
    """Base class of pardo backends (joblib's ``ParallelBackendBase`` counterpart).

    Subclasses set the class flags and implement ``submit``; the others have working defaults.
    Keyword arguments given to ``Parallel(**backend_kwargs)`` or ``parallel_config`` arrive in
    ``__init__``; ``initializer``/``initargs`` are understood by every built-in backend.
    """

    name: ClassVar[str] = "base"
    default_n_jobs: ClassVar[int] = 1
    uses_threads: ClassVar[bool] = False
    supports_sharedmem: ClassVar[bool] = False
    supports_timeout: ClassVar[bool] = True
    supports_task_timeout: ClassVar[bool] = False
    supports_return_generator: ClassVar[bool] = True
    supports_inner_max_num_threads: ClassVar[bool] = False
    #: Seconds a batch should take; the auto batch size aims at it (see pardo._batching).
    batch_target: ClassVar[float] = 0.5

    def __init__(
        self,
        nesting_level: int | None = None,
        *,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        **params: Any,
    ) -> None:
        self.nesting_level = nesting_level or 0
        self.initializer = initializer
        self.initargs = tuple(initargs)
        self.params = params
        self.n_jobs = 1

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_jobs={self.n_jobs})"

    def effective_n_jobs(self, n_jobs: int) -> int:
        """Workers this backend would use for ``n_jobs`` (already validated, non-zero)."""
        return resolve_n_jobs(n_jobs)

    def configure(self, n_jobs: int, settings: CallSettings) -> int:
        """Open or reuse the pool for ``n_jobs`` workers; return how many there are."""
        self.n_jobs = self.effective_n_jobs(n_jobs)
        return self.n_jobs

    def start_call(self) -> None:
        """Called before the first submit of each call."""

    @abstractmethod
    def submit(self, batch: Callable[[], Any]) -> Future[Any]:
        """Run ``batch()`` somewhere; the Future holds its return value or exception."""

    def stop_call(self) -> None:
        """Called after each call, whatever its outcome; per-call resources go here."""

    def terminate(self) -> None:
        """Release the pool and everything else ``configure`` opened."""

    def abort_everything(self) -> None:
        """Stop all work at once (error, Ctrl-C, dropped generator); then ``terminate``."""
        self.terminate()

    def get_nested_backend(self) -> tuple[str, int | None]:
        """Backend name and n_jobs that tasks see as their default (joblib's nesting rule)."""
        return ("threading" if self.nesting_level == 0 else "sequential"), None

    def recover(self) -> None:
        """Make ``submit`` work again after a worker died (rebuild a broken pool); else no-op."""

    def check_workers(self) -> BaseException | None:
        """Polled while the dispatch loop waits: an error if a worker died, else None."""
        return None

    def worker_pids(self) -> list[int]:
        """Pids of live worker processes (empty for in-process backends)."""
        return []
