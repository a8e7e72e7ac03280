"""Run batches in loky's reusable process pool: the default backend.

The pool outlives a call on purpose (starting workers costs ~0.3 s), but only for
``idle_worker_timeout`` seconds of idleness (30 s; joblib keeps workers 300 s).

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
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar

from pardo.backends._base import WorkerDeath
from pardo.backends._board import run_watched, start_worker
from pardo.backends._pool import ProcessBackend

__all__ = ["LokyBackend", "backend_class"]

#: Seconds an idle worker waits for work before exiting (joblib keeps them 300 s; users complain).
IDLE_WORKER_TIMEOUT = 30


class LokyBackend(ProcessBackend):
    """Process workers from ``loky.get_reusable_executor``, with memmapped large arrays."""

    name: ClassVar[str] = "loky"

    _executor: Any = None
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

    def open_pool(self, n_workers: int, env: dict[str, str]) -> None:
        from loky import get_reusable_executor

        # loky hands back the same executor when these arguments match the running one.
        self._executor = get_reusable_executor(
            max_workers=n_workers,
            timeout=self.params.get("idle_worker_timeout", IDLE_WORKER_TIMEOUT),
            initializer=start_worker,  # exits with the parent, then the user's initializer
            initargs=(os.getpid(), self.initializer, self.initargs),
            env=env,
            reuse="auto",
        )
        self._deaths = None

    def submit_payload(self, args: tuple[str, int, bytes]) -> Future[bytes]:
        executor = self._executor
        try:
            inner: Future[bytes] = executor.submit(run_watched, *args)
        except BrokenProcessPool as exc:  # a worker died while idle: the loop recovers
            inner = Future()
            inner.set_exception(exc)
        inner.add_done_callback(functools.partial(self._note_break, executor))
        return inner

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

    def close_pool(self, kill: bool) -> None:
        # Without ``kill`` the reusable executor stays up for the next call (its idle timeout
        # stops it); with it, killing is the only way to stop a running task.
        if kill:
            executor, self._executor = self._executor, None
            if executor is not None:
                executor.shutdown(wait=True, kill_workers=True)

    def worker_pids(self) -> list[int]:
        processes = getattr(self._executor, "_processes", None) or {}
        return [p.pid for p in processes.values()]


backend_class = LokyBackend
