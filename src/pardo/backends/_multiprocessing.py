"""Run batches in a ``multiprocessing.Pool`` created for the call (or the ``with`` block).

``multiprocessing.Pool`` quietly replaces a worker that dies and never resolves the task it held,
so ``check_workers`` (polled by the dispatch loop while it waits) reports such a death instead.
"""

from __future__ import annotations

import multiprocessing
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ClassVar

from pardo._config import cpu_count, env_thread_caps
from pardo._errors import WorkerDiedError
from pardo._memmap import MemmapContext
from pardo.backends._base import Backend, CallSettings
from pardo.backends._process import decode_result, encode_batch, run_encoded

__all__ = ["MultiprocessingBackend", "backend_class"]


def _init_worker(env: dict[str, str], initializer: Callable[..., Any] | None, args: Any) -> None:
    import os

    os.environ.update(env)
    if initializer is not None:
        initializer(*args)


class MultiprocessingBackend(Backend):
    """A ``multiprocessing.Pool`` (the platform's default start method, or ``context=``)."""

    name: ClassVar[str] = "multiprocessing"
    supports_return_generator: ClassVar[bool] = True
    supports_inner_max_num_threads: ClassVar[bool] = True

    _pool: Any = None
    _memmap: MemmapContext | None = None

    def effective_n_jobs(self, n_jobs: int) -> int:
        if multiprocessing.current_process().daemon:
            # Daemonic processes (Pool workers) may not have children.
            warnings.warn(
                "Multiprocessing-backed parallel loops cannot be nested, setting n_jobs=1",
                stacklevel=3,
            )
            return 1
        return super().effective_n_jobs(n_jobs)

    def configure(self, n_jobs: int, settings: CallSettings) -> int:
        n = self.effective_n_jobs(n_jobs)
        if self._pool is None or n != self.n_jobs:
            self._close_pool(kill=False)
            context = self.params.get("context") or multiprocessing.get_context()
            if isinstance(context, str):
                context = multiprocessing.get_context(context)
            threads = settings.inner_max_num_threads or max(cpu_count() // n, 1)
            init_args = (env_thread_caps(threads), self.initializer, self.initargs)
            self._pool = context.Pool(n, initializer=_init_worker, initargs=init_args)
            self._workers = list(self._pool._pool)
        if self._memmap is None:
            self._memmap = MemmapContext(settings.temp_folder, settings.max_nbytes, settings.mmap_mode)
        self.n_jobs = n
        return n

    def submit(self, batch: Callable[[], Any]) -> Future[Any]:
        override = self._memmap.reducer_override if self._memmap is not None else None
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()

        def done(raw: bytes) -> None:
            try:
                future.set_result(decode_result(raw))
            except BaseException as exc:
                future.set_exception(exc)

        self._pool.apply_async(
            run_encoded,
            (encode_batch(batch, override),),  # type: ignore[arg-type]
            callback=done,
            error_callback=future.set_exception,
        )
        return future

    def check_workers(self) -> BaseException | None:
        """An error if a worker of this pool died abnormally, else None."""
        for process in getattr(self, "_workers", ()):
            code = process.exitcode
            if code not in (None, 0):
                how = f"signal {-code}" if code < 0 else f"exit code {code}"
                msg = (
                    f"a worker process (pid {process.pid}) died with {how}; check for "
                    "out-of-memory kills (dmesg), crashes in native code, or os._exit in tasks"
                )
                return WorkerDiedError(msg)
        return None

    def _close_pool(self, kill: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            if kill:
                pool.terminate()
            else:
                pool.close()
            pool.join()

    def terminate(self) -> None:
        self._close_pool(kill=False)
        memmap, self._memmap = self._memmap, None
        if memmap is not None:
            memmap.close()

    def abort_everything(self) -> None:
        self._close_pool(kill=True)
        self.terminate()

    def worker_pids(self) -> list[int]:
        return [p.pid for p in getattr(self, "_workers", ())]


backend_class = MultiprocessingBackend
