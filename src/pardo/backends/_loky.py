"""Run batches in loky's reusable process pool: the default backend.

The pool outlives a call on purpose (starting workers costs ~0.3 s), but only for
``idle_worker_timeout`` seconds of idleness; ``pardo.shutdown()`` stops it at once.

When a worker dies, loky fails every pending Future and then kills the other workers. The
first failure's callback runs before those kills, so the workers already dead at that moment
are the ones that died on their own: ``check_workers`` reports exactly those, and the status
board (``pardo.backends._board``) says which batch each of them held.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar

from pardo._arrays._memmap import MemmapContext
from pardo._config import cpu_count, env_thread_caps
from pardo._task import Batch
from pardo.backends._base import Backend, CallSettings, WorkerDeath
from pardo.backends._board import Board, kill_tree, run_watched, start_worker
from pardo.backends._process import chain_decoded, encode_batch

__all__ = ["LokyBackend", "backend_class"]

#: Seconds an idle worker waits for work before exiting (joblib keeps them 300 s; users complain).
IDLE_WORKER_TIMEOUT = 30


class LokyBackend(Backend):
    """Process workers from ``loky.get_reusable_executor``, with memmapped large arrays."""

    name: ClassVar[str] = "loky"
    supports_task_timeout: ClassVar[bool] = True
    supports_inner_max_num_threads: ClassVar[bool] = True

    _executor: Any = None
    _executor_args: dict[str, Any] | None = None
    _memmap: MemmapContext | None = None
    _board: Board | None = None
    #: Workers found dead when the executor broke (set from loky's manager thread).
    _deaths: list[WorkerDeath] | None = None

    def effective_n_jobs(self, n_jobs: int) -> int:
        # joblib's nesting rules and phrases ("... parallel loops cannot ..."); as there, asking
        # for one worker needs no warning.
        if multiprocessing.current_process().daemon:
            # Inside a multiprocessing worker: a daemonic process may not have children.
            if n_jobs != 1:
                warnings.warn(
                    "Loky-backed parallel loops cannot be called in a multiprocessing worker "
                    "(a daemonic process may not start processes), setting n_jobs=1",
                    stacklevel=3,
                )
            return 1
        if self.nesting_level > 0 and threading.current_thread() is not threading.main_thread():
            # A process pool started from inside a thread-backend task would multiply workers.
            if n_jobs != 1:
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
        self._executor_args = {
            "max_workers": n,
            "timeout": self.params.get("idle_worker_timeout", IDLE_WORKER_TIMEOUT),
            "initializer": start_worker,  # exits with the parent, then the user's initializer
            "initargs": (os.getpid(), self.initializer, self.initargs),
            "env": env_thread_caps(threads),
            "reuse": "auto",
        }
        self._executor = get_reusable_executor(**self._executor_args)
        if self._memmap is None:
            self._memmap = MemmapContext(
                settings.temp_folder, settings.max_nbytes, settings.mmap_mode
            )
        self.n_jobs = n
        return n

    def submit(self, batch: Callable[[], Any]) -> Future[Any]:
        override = self._memmap.reducer_override if self._memmap is not None else None
        payload = encode_batch(batch, override) if isinstance(batch, Batch) else batch
        if self._board is None:
            self._board = Board()
        executor = self._executor
        try:
            start = getattr(batch, "start", -1)
            inner = executor.submit(run_watched, self._board.path, start, payload)
        except BrokenProcessPool as exc:  # a worker died while idle: the loop recovers
            inner = Future()
            inner.set_exception(exc)
        inner.add_done_callback(functools.partial(self._note_break, executor))
        return chain_decoded(inner)

    def _note_break(self, executor: Any, future: Future[Any]) -> None:
        # Runs in loky's manager thread, before it kills the surviving workers (see docstring).
        if self._deaths is not None or future.cancelled():
            return
        if isinstance(future.exception(), BrokenProcessPool):
            processes = list(getattr(executor, "_processes", {}).values())
            dead = [p for p in processes if p.exitcode is not None]
            self._deaths = [WorkerDeath(p.pid, p.exitcode) for p in dead]

    def check_workers(self) -> list[WorkerDeath]:
        return list(self._deaths or ())

    def running(self) -> dict[int, tuple[int, float]]:
        return {} if self._board is None else self._board.running()

    def kill_worker(self, pid: int) -> None:
        if pid in self.worker_pids():
            kill_tree(pid)

    def recover(self) -> None:
        from loky import get_reusable_executor

        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, kill_workers=True)
        self._deaths = None
        if self._board is not None:
            self._board.reset()
        self._executor = get_reusable_executor(**(self._executor_args or {}))

    def stop_call(self) -> None:
        self._close_board()

    def _close_board(self) -> None:
        board, self._board = self._board, None
        if board is not None:
            board.close()

    def terminate(self) -> None:
        self._close_board()
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
