"""``ProcessBackend``: the lifecycle every process-pool backend shares, so a new one writes only its pool.

A process backend ships each batch as bytes (``pardo.backends._process``), with large arrays
memmapped, and runs it through ``run_watched`` so that the call's status board
(``pardo.backends._board``) tells which batch each worker holds. What differs between pools is
small: how to open one, how to hand it ``run_watched(board, start, payload)``, how to close or
kill it, and how to tell which of its workers died. A subclass implements exactly those::

    class MyPoolBackend(ProcessBackend):
        def open_pool(self, n, env): ...            # start n workers (env: BLAS thread caps)
        def submit_payload(self, args): ...         # Future of run_watched(*args)'s bytes
        def close_pool(self, kill): ...             # kill=True: stop running tasks too
        def worker_pids(self): ...
        def check_workers(self): ...                # optional: deaths the pool hides

and gets, from this base: the memmapping context and status board of each call, worker output
capture (``records_worker_output``), ``task_timeout`` (``running`` + ``kill_worker``), thread caps
(``inner_max_num_threads``), ``recover`` after a worker death and the orderly ``terminate``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ClassVar

from pardo._arrays._memmap import MemmapContext
from pardo._config import cpu_count, env_thread_caps
from pardo._task import Batch
from pardo.backends._base import Backend, CallSettings
from pardo.backends._board import Board, kill_tree
from pardo.backends._process import chain_decoded, encode_batch

__all__ = ["ProcessBackend"]


class ProcessBackend(Backend):
    """Base of backends whose workers are processes that run one batch at a time."""

    records_worker_output: ClassVar[bool] = True
    supports_task_timeout: ClassVar[bool] = True
    supports_inner_max_num_threads: ClassVar[bool] = True

    _memmap: MemmapContext | None = None
    _board: Board | None = None
    #: What ``open_pool`` was last given, so that ``recover`` can open the same pool again.
    _pool_spec: tuple[int, dict[str, str]] | None = None

    # -- what a subclass implements -------------------------------------------------------

    @abstractmethod
    def open_pool(self, n_workers: int, env: dict[str, str]) -> None:
        """Start (or keep) a pool of ``n_workers`` processes with ``env`` in their environment."""

    @abstractmethod
    def submit_payload(self, args: tuple[str, int, bytes]) -> Future[bytes]:
        """Run ``pardo.backends._board.run_watched(*args)`` in a worker; the Future holds the
        bytes it returns (or the pool's exception)."""

    @abstractmethod
    def close_pool(self, kill: bool) -> None:
        """Close the pool (``kill``: now, running tasks included); a no-op when none is open."""

    # -- the shared lifecycle --------------------------------------------------------------

    def configure(self, n_jobs: int, settings: CallSettings) -> int:
        n = self.effective_n_jobs(n_jobs)
        # Each worker gets an equal share of the CPUs for its BLAS/OpenMP pools, so n workers
        # do not start n * cpu_count threads (joblib's rule, and the user's cap when given).
        threads = settings.inner_max_num_threads or max(cpu_count() // n, 1)
        self._pool_spec = (n, env_thread_caps(threads))
        self.open_pool(*self._pool_spec)
        if self._memmap is None:
            self._memmap = MemmapContext(
                settings.temp_folder, settings.max_nbytes, settings.mmap_mode
            )
        self.n_jobs = n
        return n

    def submit(self, batch: Callable[[], Any]) -> Future[Any]:
        if not isinstance(batch, Batch):
            msg = f"{type(self).__name__} runs pardo Batch objects, got {batch!r}"
            raise TypeError(msg)
        override = self._memmap.reducer_override if self._memmap is not None else None
        payload = encode_batch(batch, override)
        if self._board is None:
            self._board = Board()
        return chain_decoded(self.submit_payload((self._board.path, batch.start, payload)))

    def start_call(self) -> None:
        if self._memmap is not None:
            self._memmap.start_call()  # arrays met again are checked against their files

    def running(self) -> dict[int, tuple[int, float]]:
        return {} if self._board is None else self._board.running()

    def kill_worker(self, pid: int) -> None:
        if pid in self.worker_pids():
            kill_tree(pid)

    def recover(self) -> None:
        self.close_pool(kill=True)
        if self._board is not None:
            self._board.reset()
        assert self._pool_spec is not None, "recover() follows configure()"
        self.open_pool(*self._pool_spec)

    def stop_call(self) -> None:
        self._close_board()

    def terminate(self) -> None:
        self._close_board()
        self.close_pool(kill=False)
        memmap, self._memmap = self._memmap, None
        if memmap is not None:
            memmap.close()

    def abort_everything(self) -> None:
        # Killing is the only way to stop a running task; the next call opens a new pool.
        self.close_pool(kill=True)
        self.terminate()

    def _close_board(self) -> None:
        board, self._board = self._board, None
        if board is not None:
            board.close()
