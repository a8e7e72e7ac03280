"""Run batches on a thread pool: shared memory, no pickling; good for code that releases the GIL."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar

from pardo.backends._base import Backend, CallSettings

__all__ = ["ThreadingBackend", "backend_class"]


class ThreadingBackend(Backend):
    """A ``ThreadPoolExecutor`` per call (or per ``with Parallel()`` block).

    Each batch runs in a copy of the caller's ``contextvars`` context, so context variables set
    by the caller are visible in tasks. Threads cannot be killed, so ``task_timeout`` is refused.
    """

    name: ClassVar[str] = "threading"
    uses_threads: ClassVar[bool] = True
    supports_sharedmem: ClassVar[bool] = True
    # Measured by benchmarks/run.py --only tiny (threads): past ~20 ms per batch the
    # per-batch hand-off cost (~20 µs) is already below 0.1% and longer batches only hurt balance.
    batch_target: ClassVar[float] = 0.02

    _pool: ThreadPoolExecutor | None = None

    def configure(self, n_jobs: int, settings: CallSettings) -> int:
        n = self.effective_n_jobs(n_jobs)
        if self._pool is None or n != self.n_jobs:
            self.terminate()
            self._pool = ThreadPoolExecutor(
                n,
                thread_name_prefix="pardo-worker",
                initializer=self.initializer,
                initargs=self.initargs,
            )
        self.n_jobs = n
        return n

    def submit(self, batch: Callable[[], Any]) -> Future[Any]:
        assert self._pool is not None, "configure() opens the pool before submit()"
        return self._pool.submit(contextvars.copy_context().run, batch)

    def terminate(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def abort_everything(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # Running threads cannot be stopped; queued batches are dropped and we do not wait.
            pool.shutdown(wait=False, cancel_futures=True)


backend_class = ThreadingBackend
