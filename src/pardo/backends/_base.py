"""The contract every backend meets: open a pool, ``submit(batch) -> Future``, close it.

Lifecycle, as ``Parallel`` drives it::

    backend.configure(n_jobs, settings)    open (or reuse) the pool; returns the worker count
      backend.start_call()                 once per Parallel call
        backend.submit(batch) -> Future    many times; the Future resolves to a BatchResult
      backend.stop_call()                  end of the call (also after errors)
    backend.terminate()                    end of the call, or of the ``with Parallel()`` block
    backend.abort_everything()             on error / Ctrl-C / dropped generator: stop work now

Fault hooks, used by the dispatch loop (process backends implement them; the defaults suit
in-process backends): ``check_workers`` (polled: which workers died), ``running`` (which batch
each worker is running, from the status board), ``kill_worker`` (for ``task_timeout``) and
``recover`` (replace the pool after a death; everything in flight on it is lost).

Backends never see ``Parallel``; what they need arrives as ``CallSettings``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, ClassVar

from pardo._config import resolve_n_jobs

__all__ = ["Backend", "CallSettings", "WorkerDeath"]


@dataclass(frozen=True)
class WorkerDeath:
    """A worker process that died: its pid and exit code (negative: killed by that signal)."""

    pid: int
    exitcode: int | None


@dataclass(frozen=True)
class CallSettings:
    """Per-call options a backend may use (process backends use most of them)."""

    temp_folder: str | None = None
    max_nbytes: int | None = 1024**2
    mmap_mode: str | None = "r"
    inner_max_num_threads: int | None = None


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
    #: Whether ``task_timeout`` can be enforced: workers are processes that ``kill_worker`` kills.
    supports_task_timeout: ClassVar[bool] = False
    #: Whether ``inner_max_num_threads`` caps BLAS/OpenMP threads in this backend's workers.
    supports_inner_max_num_threads: ClassVar[bool] = False
    #: Tasks run in the caller's own thread, one after the other (no pool at all): context
    #: propagators have nothing to restore, and one worker needs no other backend.
    runs_inline: ClassVar[bool] = False
    #: Workers are processes that run one batch at a time, so the front may have them record
    #: what tasks print and log (swapping ``sys.stdout`` there is safe) and replay it here.
    records_worker_output: ClassVar[bool] = False
    #: One worker process runs several batches at once on its threads (dask), so recording
    #: must route output by thread instead of swapping ``sys.stdout`` for a batch.
    worker_runs_batches_on_threads: ClassVar[bool] = False
    #: The name joblib's verbose lines use for this backend ("Using backend X with ..."); None
    #: means the class name, which is what joblib prints for a backend class.
    verbose_label: ClassVar[str | None] = None
    #: Runs on a cluster it does not start itself (dask): tests give it one, tools can tell.
    needs_cluster: ClassVar[bool] = False
    #: Seconds a batch should take; the auto batch size aims at it (see pardo._engine._batching).
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

    def check_workers(self) -> list[WorkerDeath]:
        """Polled while the dispatch loop waits: workers that died since the pool was built."""
        return []

    def running(self) -> dict[int, tuple[int, float]]:
        """``{worker pid: (first task index, time.monotonic() it began)}`` of running batches.

        Empty when the backend cannot tell (then a death cannot be blamed on one batch).
        """
        return {}

    def kill_worker(self, pid: int) -> None:
        """Kill worker ``pid`` (its task ran past ``task_timeout``); ``recover`` replaces it."""
        msg = f"{type(self).__name__} cannot kill a worker (pid {pid}): it has no worker processes"
        raise NotImplementedError(msg)

    def recover(self) -> None:
        """Replace the pool after a worker died; every batch submitted before is then lost.

        In-process backends have nothing to replace.
        """

    def worker_pids(self) -> list[int]:
        """Pids of live worker processes (empty for in-process backends)."""
        return []
