"""Run batches inline in the caller: the backend for n_jobs=1 and for nesting depth >= 2."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ClassVar

from pardo.backends._base import Backend, CallSettings

__all__ = ["SequentialBackend", "backend_class"]


class SequentialBackend(Backend):
    """No pool: ``submit`` runs the batch at once and returns a finished Future."""

    name: ClassVar[str] = "sequential"
    uses_threads: ClassVar[bool] = True
    supports_sharedmem: ClassVar[bool] = True
    supports_timeout: ClassVar[bool] = False
    runs_inline: ClassVar[bool] = True
    # Small batches keep return_as="generator" lazy; the per-batch cost here is a few µs.
    batch_target: ClassVar[float] = 0.01

    _initialized = False

    def effective_n_jobs(self, n_jobs: int) -> int:
        return 1

    def configure(self, n_jobs: int, settings: CallSettings) -> int:
        self.n_jobs = 1
        # configure() runs again for each call of a ``with Parallel()`` block; the caller is
        # the one "worker", so it is initialised once.
        if self.initializer is not None and not self._initialized:
            self._initialized = True
            self.initializer(*self.initargs)
        return 1

    def submit(self, batch: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(batch())
        except Exception as exc:  # the dispatch loop decides what a failure means
            future.set_exception(exc)
        # Ctrl-C or SIGTERM while the batch ran propagates from here at once: stored in the
        # Future, it would only cancel this batch while the loop went on to run the next ones.
        return future

    def get_nested_backend(self) -> tuple[str, int | None]:
        # Tasks run in the caller, so they see the caller's own configuration.
        return "", None


backend_class = SequentialBackend
