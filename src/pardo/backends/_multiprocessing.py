"""Run batches in a ``multiprocessing.Pool`` created for the call (or the ``with`` block).

``multiprocessing.Pool`` quietly replaces a worker that dies and never resolves the task it held,
so ``check_workers`` (polled by the dispatch loop while it waits) reports such a death instead.
A death also leaves the pool unsafe: a worker killed while waiting for work holds the task
queue's lock forever (every other worker then starves, and ``Pool.terminate`` itself blocks on
that lock). So ``recover`` and ``abort_everything`` kill every worker, free the two locks
workers take, and only then terminate the pool; ``recover`` then opens a new one.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import warnings
from concurrent.futures import Future
from multiprocessing.pool import TERMINATE
from typing import Any, ClassVar

import cloudpickle

from pardo._errors import TaskPicklingError
from pardo.backends._base import WorkerDeath
from pardo.backends._board import kill_tree, run_watched, start_worker
from pardo.backends._pool import ProcessBackend

__all__ = ["MultiprocessingBackend", "backend_class"]

#: Seconds to wait for a SIGKILLed worker to be gone (it takes milliseconds).
KILL_WAIT_SECONDS = 5.0
#: Seconds the pool's task handler gets to finish before its lock is assumed lost (it needs
#: well under a millisecond when the lock is free).
TASK_HANDLER_WAIT_SECONDS = 0.5


def _init_worker(parent: int, env: dict[str, str], user: bytes | None) -> None:
    # ``user`` is the user's (initializer, initargs), cloudpickled: a spawned or fork-served
    # worker gets Pool's initargs through plain pickle, which refuses lambdas and closures.
    initializer, args = cloudpickle.loads(user) if user is not None else (None, ())
    # A forked worker inherits the parent's handlers; the one pardo installs for SIGTERM during
    # a call (pardo._engine._interrupt) must not turn Pool.terminate() into a traceback in the worker.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ.update(env)
    start_worker(parent, initializer, args)


def _free(lock: Any) -> None:
    """Make ``lock`` free (after its holder was killed, nobody will ever release it)."""
    if lock is not None:
        lock.acquire(False)
        lock.release()


def _kill_pool(pool: Any) -> None:
    """Stop ``pool`` now, whatever state its dead or killed workers left its queues in."""
    # First stop the thread that replaces dead workers: Pool.terminate() stops workers with
    # SIGTERM, which a worker forked a moment before can lose (a Python-level handler inherited
    # from the parent is reset after fork), and then terminate() waits for it forever.
    handler = pool._worker_handler
    handler._state = TERMINATE
    pool._change_notifier.put(None)
    handler.join()
    workers = list(pool._pool)
    for process in workers:
        kill_tree(process.pid)
    for process in workers:
        process.join(KILL_WAIT_SECONDS)  # dead before its locks are taken back, never after
    _free(pool._inqueue._rlock)  # only workers take it: whoever holds it now is dead
    # The result queue's lock is the workers' (to send results), and the task handler's for
    # its last message, which it writes now. Once it is done (or stuck on that lock for good),
    # whoever holds the lock is a killed worker.
    pool._task_handler.join(TASK_HANDLER_WAIT_SECONDS)
    _free(pool._outqueue._wlock)
    pool.terminate()
    pool.join()
    # Results lost with the killed workers stay in the cache and refer back to the pool: this
    # cycle would keep its pipes and process handles open until the cycle collector runs.
    pool._cache.clear()


class MultiprocessingBackend(ProcessBackend):
    """A ``multiprocessing.Pool`` (the platform's default start method, or ``context=``)."""

    name: ClassVar[str] = "multiprocessing"

    _pool: Any = None
    _pool_size = 0
    #: Every worker process seen in this pool (Pool drops dead ones from its own list).
    _seen: dict[int, Any]

    def effective_n_jobs(self, n_jobs: int) -> int:
        # joblib's nesting rules and phrases; as there, asking for one worker needs no warning.
        where = _nested_where(self.nesting_level)
        if where is not None:
            if n_jobs != 1:
                warnings.warn(
                    f"Multiprocessing-backed parallel loops cannot be nested{where}, "
                    "setting n_jobs=1",
                    stacklevel=3,
                )
            return 1
        return super().effective_n_jobs(n_jobs)

    def open_pool(self, n_workers: int, env: dict[str, str]) -> None:
        if self._pool is not None and n_workers == self._pool_size:
            return  # the ``with Parallel()`` block's pool serves the next call as it is
        self.close_pool(kill=False)
        # joblib's variable for the start method, so that a setting made for it still holds.
        method = os.environ.get("JOBLIB_START_METHOD", "").strip() or None
        context = self.params.get("context") or method
        if context is None or isinstance(context, str):
            context = multiprocessing.get_context(context)
        user = None
        if self.initializer is not None:
            try:
                user = cloudpickle.dumps((self.initializer, self.initargs))
            except Exception as exc:
                msg = f"initializer or initargs cannot be sent to worker processes: {exc}"
                raise TaskPicklingError(msg) from exc
        init_args = (os.getpid(), env, user)
        self._pool = context.Pool(n_workers, initializer=_init_worker, initargs=init_args)
        self._pool_size = n_workers
        self._seen = {}

    def submit_payload(self, args: tuple[str, int, bytes]) -> Future[bytes]:
        future: Future[bytes] = Future()
        future.set_running_or_notify_cancel()
        self._pool.apply_async(
            run_watched, args, callback=future.set_result, error_callback=future.set_exception
        )
        return future

    def check_workers(self) -> list[WorkerDeath]:
        pool = self._pool
        if pool is None:
            return []
        for process in list(pool._pool):
            self._seen.setdefault(process.pid, process)
        seen = self._seen.values()
        deaths = [WorkerDeath(p.pid, p.exitcode) for p in seen if p.exitcode is not None]
        # A replacement worker can start and die between two polls: the board still names it.
        for pid in self.running():
            if pid not in self._seen and not _alive(pid):
                deaths.append(WorkerDeath(pid, None))
        return deaths

    def close_pool(self, kill: bool) -> None:
        if self._pool is not None and not kill and self.check_workers():
            kill = True  # close() + join() would wait forever on a task a dead worker held
        pool, self._pool = self._pool, None
        self._seen = {}  # their process handles hold a pipe each
        if pool is not None:
            if kill:
                _kill_pool(pool)
            else:
                pool.close()
                pool.join()

    def worker_pids(self) -> list[int]:
        return [] if self._pool is None else [p.pid for p in list(self._pool._pool)]


def _nested_where(nesting_level: int) -> str | None:
    """Why a pool may not start here ("" / " below loky" / " below threads"), or None."""
    if multiprocessing.current_process().daemon:
        return ""  # a Pool worker: daemonic processes may not have children
    # loky counts its depth in each worker; a pool forked there would nest process trees.
    # Read only when loky is loaded: otherwise this cannot be a loky worker.
    loky_executor = sys.modules.get("loky.process_executor")
    if getattr(loky_executor, "_CURRENT_DEPTH", 0) > 0:
        return " below loky"
    if nesting_level > 0 and threading.current_thread() is not threading.main_thread():
        return " below threads"  # fork() from a thread of a task is unsafe
    return None


def _alive(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


backend_class = MultiprocessingBackend
