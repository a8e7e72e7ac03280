"""``DaskBackend``: batches as tasks of a dask.distributed cluster, through its ``Client``."""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ClassVar

from pardo._config import resolve_n_jobs
from pardo._errors import WorkerDiedError
from pardo._task import Batch
from pardo.backends._base import Backend, CallSettings, WorkerDeath
from pardo.backends._dask._remote import Encoded, Init, Scatter, outcome, run_remote
from pardo.backends._process import encode_batch

__all__ = ["SUBMIT_KEYS", "DaskBackend", "backend_class"]

#: Seconds ``n_jobs=-1`` waits for a first worker when the cluster has none (joblib: 10).
WAIT_FOR_WORKERS = 10.0
#: ``Client.submit`` keywords that may be given as backend parameters (passed through as is).
SUBMIT_KEYS = ("workers", "resources", "retries", "priority", "fifo_timeout", "allow_other_workers")

_INSTALL = 'backend="dask" needs dask.distributed, not installed here: pip install "pardo[dask]"'
_NO_CLIENT = (
    'backend="dask" found no dask.distributed Client. Create one first (`Client()` starts a '
    'local cluster, `Client("tcp://host:8786")` connects to one), or pass client= or '
    'scheduler_address= to parallel_config(backend="dask", ...).'
)


class DaskBackend(Backend):
    """Batches as tasks of a dask.distributed cluster: the current ``Client`` or the one given.

    Parameters, from ``parallel_config(backend="dask", ...)`` or ``Parallel(backend="dask", ...)``:
        client: the ``distributed.Client`` to use (default: ``distributed.get_client()``).
        scheduler_address: connect a client of our own to this scheduler, "tcp://host:8786"
            (``scheduler_host`` is joblib's name for it); it is closed with the backend.
        scatter: objects to scatter once up front whatever their size, e.g. ``[X, y]``.
        wait_for_workers_timeout: seconds ``n_jobs=-1`` waits for a first worker.
        initializer, initargs: run once in each worker thread, before the first batch it runs.
        workers, resources, retries, priority, fifo_timeout, allow_other_workers: passed to
            ``Client.submit``; ``retries=N`` reruns a batch whose task raised up to N times.
    """

    name: ClassVar[str] = "dask"
    verbose_label: ClassVar[str | None] = "DaskDistributedBackend"
    records_worker_output: ClassVar[bool] = True
    worker_runs_batches_on_threads: ClassVar[bool] = True
    needs_cluster: ClassVar[bool] = True
    default_n_jobs: ClassVar[int] = -1
    # benchmarks/bench_dask.py: a batch costs a scheduler round trip (11 ms on a 2-core
    # LocalCluster, more across a network); 0.5 s batches keep that near 2%, and a dead worker
    # loses at most half a second of work per thread. Its --targets sweep: 0.1-1 s cost alike,
    # 0.05 s costs 1 ms tasks a third more.
    batch_target: ClassVar[float] = 0.5

    def __init__(
        self,
        nesting_level: int | None = None,
        *,
        initializer: Callable[..., Any] | None = None,
        initargs: tuple[Any, ...] = (),
        client: Any = None,
        scheduler_address: str | None = None,
        scheduler_host: str | None = None,
        scatter: list[Any] | tuple[Any, ...] | None = None,
        wait_for_workers_timeout: float = WAIT_FOR_WORKERS,
        **submit_kwargs: Any,
    ) -> None:
        try:
            import distributed
            from dask.sizeof import sizeof
        except ImportError as exc:
            raise ImportError(_INSTALL) from exc
        super().__init__(nesting_level, initializer=initializer, initargs=initargs)
        _check_params(distributed.Client, client, scatter, submit_kwargs)
        self._given = client
        self._address = scheduler_address or scheduler_host
        self._to_scatter = list(scatter or ())
        self._wait = wait_for_workers_timeout
        self._submit_kwargs = submit_kwargs
        self._scatter = Scatter(sizeof)
        # Runs once in each worker thread, before its first batch of this backend's calls.
        self._init: Init | None = None
        if initializer is not None:
            self._init = (uuid.uuid4().hex, initializer, tuple(initargs))
        self._client: Any = None
        self._owns_client = False
        self._inflight: set[Any] = set()
        self._deaths: dict[int, WorkerDeath] = {}
        self._blame: dict[int, tuple[int, float]] = {}  # dead worker pid -> (batch start, when)
        self._seceded: contextlib.ExitStack | None = None

    def _connection(self) -> Any:
        if self._client is None:
            import distributed

            if self._given is not None:
                self._client = self._given
            elif self._address is not None:
                self._client = distributed.Client(self._address, set_as_default=False)  # type: ignore[no-untyped-call]
                self._owns_client = True
            else:
                try:
                    self._client = distributed.get_client()
                except ValueError as exc:
                    raise RuntimeError(_NO_CLIENT) from exc
        return self._client

    def effective_n_jobs(self, n_jobs: int) -> int:
        """``n_jobs`` if positive; -1 is every worker thread of the cluster, -2 all but one..."""
        if n_jobs > 0:
            return n_jobs
        client = self._connection()
        if not client.nthreads():
            try:
                client.wait_for_workers(1, timeout=self._wait)
            except Exception as exc:
                address = client.scheduler.address
                msg = (
                    f"the dask cluster at {address} has no workers after wait_for_workers_timeout"
                    f"={self._wait} s; start some with `dask worker {address}`"
                )
                raise RuntimeError(msg) from exc
        return resolve_n_jobs(n_jobs, sum(client.nthreads().values()))

    # -- the lifecycle --------------------------------------------------------------------------

    def configure(self, n_jobs: int, settings: CallSettings) -> int:
        client = self._connection()
        self.n_jobs = self.effective_n_jobs(n_jobs)
        self._scatter.pin(client, self._to_scatter)
        return self.n_jobs

    def start_call(self) -> None:
        self._scatter.clear_call()
        if self._seceded is None and _on_worker():
            # Nested in a dask task: wait for our batches outside the worker's thread pool.
            from distributed import worker_client

            self._seceded = contextlib.ExitStack()
            self._seceded.enter_context(worker_client())

    def submit(self, batch: Callable[[], Any]) -> Future[Any]:
        client = self._connection()
        outer: Future[Any] = Future()
        func: Callable[..., Any] = batch
        args: tuple[Any, ...] = ()
        start = 0
        if isinstance(batch, Batch):
            # Pickled here, as process backends do: dask then ships opaque bytes and never walks
            # (or mistakes for tasks) the arguments; an unpicklable task is named.
            shell, values = self._scatter.swap(client, batch)
            retried = bool(self._submit_kwargs.get("retries"))
            func, args = run_remote, (encode_batch(shell), values, retried, self._init)
            outer, start = Encoded(), batch.start
        tasks = getattr(batch, "tasks", None)  # the key names the function on the dashboard
        name = getattr(tasks[0][0] if tasks else batch, "__name__", "batch")
        key = f"pardo-{name}-{uuid.uuid4().hex}"
        future = client.submit(func, *args, key=key, pure=False, **self._submit_kwargs)
        self._inflight.add(future)
        future.add_done_callback(functools.partial(self._relay, outer, start))
        return outer

    def _relay(self, outer: Future[Any], start: int, future: Any) -> None:
        """Done-callback (dask's callback thread): hand a dask Future's outcome to ``outer``."""
        from distributed import KilledWorker

        self._inflight.discard(future)
        value, error = outcome(future)
        if isinstance(error, KilledWorker):
            # dask gave up after distributed.scheduler.allowed-failures deaths of workers that
            # held this batch: the dispatch loop then blames it as it would a process pool's.
            dead = error.last_worker
            self._deaths[dead.pid] = WorkerDeath(dead.pid, None)
            self._blame[dead.pid] = (start, time.monotonic())
            error = WorkerDiedError(f"dask worker {dead.address} died: {error}")
        if error is None:
            outer.set_result(value)
        else:
            outer.set_exception(error)

    def stop_call(self) -> None:
        self._scatter.clear_call()
        seceded, self._seceded = self._seceded, None
        if seceded is not None:
            seceded.close()  # rejoin the worker's thread pool

    def abort_everything(self) -> None:
        self._cancel_inflight()
        self._scatter.clear_call()

    def _cancel_inflight(self) -> None:
        inflight, self._inflight = list(self._inflight), set()
        if inflight and self._client is not None:
            # Queued batches never start; a running one finishes on its worker, result dropped.
            self._client.cancel(inflight)

    def terminate(self) -> None:
        client, self._client = self._client, None
        self._scatter.clear_all()
        if client is not None and self._owns_client:
            self._owns_client = False
            client.close()

    def get_nested_backend(self) -> tuple[str, int | None]:
        return "dask", None

    # -- worker deaths: dask reruns a task whose worker died; past its allowed-failures, the
    # dispatch loop takes over as for a broken process pool (blame, split, retries=).

    def check_workers(self) -> list[WorkerDeath]:
        return list(self._deaths.values())

    def running(self) -> dict[int, tuple[int, float]]:
        return dict(self._blame)

    def recover(self) -> None:
        """The dispatch loop resubmits every batch in flight: cancel their first copies."""
        self._deaths.clear()
        self._blame.clear()
        self._cancel_inflight()


backend_class = DaskBackend


def _check_params(client_type: type, client: Any, scatter: Any, submit: dict[str, Any]) -> None:
    unknown = sorted(set(submit) - set(SUBMIT_KEYS))
    if unknown:
        msg = (
            f"unknown dask backend parameters {unknown}; expected client, scheduler_address, "
            f"scatter, wait_for_workers_timeout, initializer, initargs or {list(SUBMIT_KEYS)}"
        )
        raise ValueError(msg)
    if client is not None and not isinstance(client, client_type):
        raise TypeError(f"client must be a distributed.Client, got {client!r}")
    if scatter is not None and not isinstance(scatter, (list, tuple)):
        raise TypeError(f"scatter must be a list or tuple, got {type(scatter).__name__}")


def _on_worker() -> bool:
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True
