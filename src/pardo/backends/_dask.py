"""Run batches on a dask.distributed cluster: ``parallel_config(backend="dask")``.

One batch is one dask task. Arguments that are large by ``dask.sizeof`` are scattered to the
cluster once per call and replaced in each batch by a small placeholder, so an array shared by
many tasks crosses the network once. Results come back through the dask Future's done-callback,
so ``submit`` never waits for the cluster. A ``Parallel`` nested in a dask task runs on the same
cluster inside ``worker_client()``, which takes the waiting task's thread out of the worker's
pool (secede/rejoin): nested calls cannot deadlock it.

Needs the ``pardo[dask]`` extra where ``Parallel`` runs, and pardo installed on the workers.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import time
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ClassVar

from pardo._config import resolve_n_jobs
from pardo._errors import WorkerDiedError
from pardo._task import Batch
from pardo.backends._base import Backend, CallSettings, WorkerDeath
from pardo.backends._process import decode_result, encode_batch, run_encoded

__all__ = ["SCATTER_NBYTES", "DaskBackend", "backend_class"]

#: Arguments larger than this (bytes, by ``dask.sizeof``) are scattered once per call instead of
#: being pickled into every batch. Set with benchmarks/bench_dask.py "scatter": a scatter costs one
#: blocking round trip (~3 ms on a LocalCluster), about what sending 1 MB inline costs. Above 1 MB,
#: scattering an object that only one batch uses at most doubles its cost; below it, re-sending a
#: shared object with every 0.5 s batch costs about 1% of the batch.
SCATTER_NBYTES = 1_000_000
#: Seconds ``n_jobs=-1`` waits for a first worker when the cluster has none (joblib: 10).
WAIT_FOR_WORKERS = 10.0
#: ``Client.submit`` keywords that may be given as backend parameters (passed through as is).
SUBMIT_KEYS = ("workers", "resources", "retries", "priority", "fifo_timeout", "allow_other_workers")

_INSTALL = (
    'backend="dask" needs dask.distributed, which is not installed: pip install "pardo[dask]"'
)
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
        workers, resources, retries, priority, fifo_timeout, allow_other_workers: passed to
            ``Client.submit``; ``retries=N`` reruns a batch whose task raised up to N times.
    """

    name: ClassVar[str] = "dask"
    default_n_jobs: ClassVar[int] = -1
    # benchmarks/bench_dask.py: a batch costs a scheduler round trip of a few ms on a LocalCluster
    # (more across a network). 0.5 s batches keep that near 1%, a dead worker loses at most half a
    # second of work per thread, and auto batching reaches that size within a few batches.
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
        _check_params(
            distributed, client, scheduler_address, scheduler_host, scatter, submit_kwargs
        )
        self._given = client
        self._address = scheduler_address or scheduler_host
        self._to_scatter = list(scatter or ())
        self._wait = wait_for_workers_timeout
        self._submit_kwargs = submit_kwargs
        self._sizeof: Callable[[Any], int] = sizeof
        self._client: Any = None
        self._owns_client = False
        self._plugin: str | None = None
        #: id -> (object, dask Future) for ``scatter=``; kept until ``terminate``.
        self._pinned: dict[int, tuple[Any, Any]] = {}
        #: id -> (weakref, dask Future) for arguments scattered automatically during this call.
        self._cache: dict[int, tuple[weakref.ref[Any], Any]] = {}
        self._inflight: set[Any] = set()
        self._deaths: dict[int, WorkerDeath] = {}
        self._blame: dict[int, tuple[int, float]] = {}  # dead worker pid -> (batch start, when)
        self._seceded: contextlib.ExitStack | None = None

    # -- connecting -----------------------------------------------------------------------------

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

    def _cluster_threads(self) -> int:
        client = self._connection()
        threads = sum(client.nthreads().values())
        if threads == 0:
            try:
                client.wait_for_workers(1, timeout=self._wait)
            except Exception as exc:
                msg = (
                    f"the dask cluster at {client.scheduler.address} has no workers after "
                    f"wait_for_workers_timeout={self._wait} s; start some with "
                    f"`dask worker {client.scheduler.address}`"
                )
                raise RuntimeError(msg) from exc
            threads = sum(client.nthreads().values())
        return int(threads)

    def effective_n_jobs(self, n_jobs: int) -> int:
        """``n_jobs`` if positive; -1 is every worker thread of the cluster, -2 all but one..."""
        if n_jobs > 0:
            return n_jobs
        return resolve_n_jobs(n_jobs, self._cluster_threads())

    # -- the lifecycle --------------------------------------------------------------------------

    def configure(self, n_jobs: int, settings: CallSettings) -> int:
        client = self._connection()
        self.n_jobs = self.effective_n_jobs(n_jobs)
        if self._to_scatter and not self._pinned:
            futures = client.scatter(self._to_scatter, hash=False)
            self._pinned = {
                id(obj): (obj, f) for obj, f in zip(self._to_scatter, futures, strict=True)
            }
        if self.initializer is not None and self._plugin is None:
            self._plugin = f"pardo-initializer-{uuid.uuid4().hex}"
            plugin = _initializer_plugin(self.initializer, self.initargs)
            client.register_plugin(plugin, name=self._plugin)
        return self.n_jobs

    def start_call(self) -> None:
        self._cache = {}
        if self._seceded is None and _on_worker():
            # Nested in a dask task: wait for our batches outside the worker's thread pool.
            from distributed import worker_client

            self._seceded = contextlib.ExitStack()
            self._seceded.enter_context(worker_client())

    def submit(self, batch: Callable[[], Any]) -> Future[Any]:
        client = self._connection()
        outer: Future[Any] = _Encoded() if isinstance(batch, Batch) else Future()
        func: Callable[..., Any] = batch
        args: tuple[Any, ...] = ()
        if isinstance(batch, Batch):
            # Pickled here, as process backends do: dask then ships opaque bytes and never
            # walks (or mistakes for tasks) the arguments; unpicklable tasks are named.
            shell, values = self._swap_large(batch)
            retried = bool(self._submit_kwargs.get("retries"))
            func, args = _run_remote, (encode_batch(shell), values, retried)
        key = f"pardo-{_task_name(batch)}-{uuid.uuid4().hex}"
        future = client.submit(func, *args, key=key, pure=False, **self._submit_kwargs)
        self._inflight.add(future)
        start = batch.start if isinstance(batch, Batch) else 0
        future.add_done_callback(functools.partial(self._relay, outer, start))
        return outer

    def _relay(self, outer: Future[Any], start: int, future: Any) -> None:
        """Done-callback (dask's callback thread): hand a dask Future's outcome to ``outer``."""
        from distributed import KilledWorker

        self._inflight.discard(future)
        value, error = _outcome(future)
        if isinstance(error, KilledWorker):
            # dask gave up after distributed.scheduler.allowed-failures deaths: report it as the
            # process backends do, blaming the batch only if it ran (not queued) on the worker.
            dead = error.last_worker
            self._deaths[dead.pid] = WorkerDeath(dead.pid, None)
            if future.key in dead.executing:
                self._blame[dead.pid] = (start, time.monotonic())
            error = WorkerDiedError(f"dask worker {dead.address} died: {error}")
        if error is None:
            outer.set_result(value)
        else:
            outer.set_exception(error)

    def stop_call(self) -> None:
        self._cache = {}  # dropping our futures lets the cluster free the scattered data
        seceded, self._seceded = self._seceded, None
        if seceded is not None:
            seceded.close()  # rejoin the worker's thread pool

    def abort_everything(self) -> None:
        self._cancel_inflight()
        self._cache = {}

    def _cancel_inflight(self) -> None:
        inflight, self._inflight = list(self._inflight), set()
        if inflight and self._client is not None:
            # Queued batches never start; a running one finishes on its worker, result dropped.
            self._client.cancel(inflight)

    def terminate(self) -> None:
        client, self._client = self._client, None
        self._pinned = {}
        self._cache = {}
        if client is None:
            return
        plugin, self._plugin = self._plugin, None
        if plugin is not None:
            client.unregister_worker_plugin(plugin)
        if self._owns_client:
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

    # -- scattering -----------------------------------------------------------------------------

    def _swap_large(self, batch: Batch) -> tuple[Batch, list[Any]]:
        """``batch`` with its large arguments replaced by ``_Scattered`` slots, and their futures."""
        futures: list[Any] = []
        slots: dict[int, _Scattered] = {}

        def swap(value: Any) -> Any:
            future = self._scattered(value)
            if future is None:
                return value
            slot = slots.get(id(future))
            if slot is None:
                slot = slots[id(future)] = _Scattered(len(futures))
                futures.append(future)
            return slot

        tasks = [
            (f, tuple(map(swap, a)), {k: swap(v) for k, v in kw.items()})
            for f, a, kw in batch.tasks
        ]
        if not futures:
            return batch, futures
        return Batch(tasks, batch.start, batch.nested, batch.keep_going, batch.context), futures

    def _scattered(self, value: Any) -> Any:
        """The dask Future holding ``value`` on the cluster (scattered now if large), or None."""
        key = id(value)
        pinned = self._pinned.get(key)
        if pinned is not None and pinned[0] is value:
            return pinned[1]
        cached = self._cache.get(key)
        if cached is not None and cached[0]() is value:
            return cached[1]
        # Weak-referenceable objects only: the live weakref proves a later same-id object is
        # this one (ints, strs, lists and tuples travel inline; ``scatter=`` takes anything).
        if not type(value).__weakrefoffset__ or self._sizeof(value) <= SCATTER_NBYTES:
            return None
        [future] = self._connection().scatter([value], hash=False)
        cache = self._cache

        def forget(ref: weakref.ref[Any]) -> None:  # no later batch can pass a dead object
            if cache.get(key, (None,))[0] is ref:
                cache.pop(key, None)

        cache[key] = (weakref.ref(value, forget), future)
        return future


backend_class = DaskBackend


def _check_params(
    distributed: Any,
    client: Any,
    address: str | None,
    host: str | None,
    scatter: Any,
    submit_kwargs: dict[str, Any],
) -> None:
    unknown = sorted(set(submit_kwargs) - set(SUBMIT_KEYS))
    if unknown:
        msg = (
            f"unknown dask backend parameters {unknown}; expected client, scheduler_address, "
            f"scatter, wait_for_workers_timeout, initializer, initargs or {list(SUBMIT_KEYS)}"
        )
        raise ValueError(msg)
    if client is not None and not isinstance(client, distributed.Client):
        msg = f"client must be a distributed.Client, got {client!r}"
        raise TypeError(msg)
    if address and host and address != host:
        msg = f"scheduler_address={address!r} and scheduler_host={host!r} disagree; give one"
        raise ValueError(msg)
    if scatter is not None and not isinstance(scatter, (list, tuple)):
        msg = f"scatter must be a list or tuple of objects, got {type(scatter).__name__}"
        raise TypeError(msg)


def _task_name(batch: Callable[[], Any]) -> str:
    tasks = getattr(batch, "tasks", None)
    return str(getattr(tasks[0][0] if tasks else batch, "__name__", "batch"))


def _on_worker() -> bool:
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


def _initializer_plugin(initializer: Callable[..., Any], initargs: tuple[Any, ...]) -> Any:
    from distributed import WorkerPlugin

    class RunInitializer(WorkerPlugin):
        """Runs ``initializer(*initargs)`` on every worker, present and future."""

        def setup(self, worker: Any) -> None:
            initializer(*initargs)

    return RunInitializer()


def _outcome(future: Any) -> tuple[Any, BaseException | None]:
    """A finished dask Future's payload, or its error (dask's retries used up: its payload)."""
    try:
        return future.result(), None
    except _FailedBatch as failed:
        return failed.args[0], None
    except BaseException as exc:
        return None, exc


class _Encoded(Future[Any]):
    """A Future of a pickled ``BatchResult`` that unpickles it in the thread asking for it.

    Not in dask's callback thread: distributed pickles exceptions with their tracebacks (tblib),
    and an unpickled traceback's frames link back to the stack that unpickled it, which there
    holds the dask Future, and so the batch's results on the cluster, as long as the error lives.
    """

    _decoded: Any = None

    def result(self, timeout: float | None = None) -> Any:
        if self._decoded is None:
            self._decoded = decode_result(super().result(timeout))
        return self._decoded


# -- worker side ----------------------------------------------------------------------------------

#: The scattered values of the batch being unpickled on this worker thread (set by _run_remote).
_VALUES: contextvars.ContextVar[list[Any]] = contextvars.ContextVar("pardo_dask_values")


def _scattered_value(slot: int) -> Any:
    return _VALUES.get()[slot]


class _Scattered:
    """Stands in a batch for scattered value number ``slot``; unpickles as that value."""

    __slots__ = ("slot",)

    def __init__(self, slot: int) -> None:
        self.slot = slot

    def __reduce__(self) -> tuple[Any, ...]:
        return _scattered_value, (self.slot,)


class _FailedBatch(Exception):
    """Raised on the worker, with the encoded result, so that dask's ``retries`` rerun a batch."""


def _run_remote(payload: bytes, values: list[Any], raise_failed: bool) -> bytes:
    """Worker side: run an encoded batch whose placeholders unpickle as ``values`` (dask
    resolved the futures), and encode its result as the process backends do."""
    token = _VALUES.set(values)
    try:
        raw = run_encoded(payload)
    finally:
        _VALUES.reset(token)
    if raise_failed and decode_result(raw).failures:
        raise _FailedBatch(raw)
    return raw
