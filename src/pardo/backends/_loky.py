"""Run batches in loky's reusable process pool: the default backend.

The pool outlives a call on purpose (starting workers costs ~0.3 s), but only for
``idle_worker_timeout`` seconds of idleness; ``pardo.shutdown()`` stops it at once.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ClassVar

from pardo._config import cpu_count, env_thread_caps
from pardo._memmap import MemmapContext
from pardo._task import Batch
from pardo.backends._base import Backend, CallSettings
from pardo.backends._process import chain_decoded, encode_batch, run_encoded

__all__ = ["LokyBackend", "backend_class"]

#: Seconds an idle worker waits for work before exiting (joblib keeps them 300 s; users complain).
IDLE_WORKER_TIMEOUT = 30


class LokyBackend(Backend):
    """Process workers from ``loky.get_reusable_executor``, with memmapped large arrays."""

    name: ClassVar[str] = "loky"
    supports_task_timeout: ClassVar[bool] = True
    supports_inner_max_num_threads: ClassVar[bool] = True

    _executor: Any = None
    _memmap: MemmapContext | None = None

    def effective_n_jobs(self, n_jobs: int) -> int:
        if self.nesting_level > 0 and threading.current_thread() is not threading.main_thread():
            # A process pool started from inside a thread-backend task would multiply workers.
            warnings.warn(
                "Loky-backed parallel loops cannot be nested below threads, setting n_jobs=1",
                stacklevel=3,
            )
            return 1
        return super().effective_n_jobs(n_jobs)

    def configure(self, n_jobs: int, settings: CallSettings) -> int:
        from loky import get_reusable_executor

        n = self.effective_n_jobs(n_jobs)
        threads = settings.inner_max_num_threads or max(cpu_count() // n, 1)
        self._executor = get_reusable_executor(
            max_workers=n,
            timeout=self.params.get("idle_worker_timeout", IDLE_WORKER_TIMEOUT),
            initializer=self.initializer,
            initargs=self.initargs,
            env=env_thread_caps(threads),
            reuse="auto",
        )
        if self._memmap is None:
            self._memmap = MemmapContext(settings.temp_folder, settings.max_nbytes, settings.mmap_mode)
        self.n_jobs = n
        return n

    def submit(self, batch: Callable[[], Any]) -> Future[Any]:
        override = self._memmap.reducer_override if self._memmap is not None else None
        payload = encode_batch(batch, override) if isinstance(batch, Batch) else batch
        return chain_decoded(self._executor.submit(run_encoded, payload))

    def terminate(self) -> None:
        memmap, self._memmap = self._memmap, None
        if memmap is not None:
            memmap.close()

    def abort_everything(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            # Killing is the only way to stop a running task; the next call builds a new pool.
            executor.shutdown(wait=True, kill_workers=True)
        self.terminate()

    def worker_pids(self) -> list[int]:
        processes = getattr(self._executor, "_processes", None) or {}
        return [p.pid for p in processes.values()]


backend_class = LokyBackend
