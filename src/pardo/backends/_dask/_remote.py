"""What crosses to the dask workers and back, and the scatter policy that decides it.

A batch is pickled in the caller, as for process backends, with each large argument replaced by
a ``_Scattered`` slot; dask resolves the slots' futures and hands their values to ``run_remote``,
where the slots unpickle as those values. What comes back is the pickled ``BatchResult``.
"""

from __future__ import annotations

import contextvars
import threading
import traceback
import weakref
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any

from pardo._errors import RemoteTraceback
from pardo._task import Batch
from pardo.backends._process import decode_result, run_encoded

__all__ = ["SCATTER_NBYTES", "Encoded", "FailedBatch", "Init", "Scatter", "outcome", "run_remote"]

#: Arguments larger than this (bytes, by ``dask.sizeof``) are scattered once per call instead of
#: being pickled into every batch. Set with ``benchmarks/bench_dask.py --scatter``: a scatter is one
#: blocking round trip (2.4-4 ms up to 1 MB on a 2-core LocalCluster), about what sending 1 MB
#: inline with a batch costs (3.5 ms). Above 1 MB, scattering an object that one batch only uses
#: at most doubles its cost; below, re-sending a shared one with each 0.5 s batch costs under 1%.
SCATTER_NBYTES = 1_000_000


class Scatter:
    """The dask Futures of one backend's scattered objects, looked up by identity.

    ``pin`` scatters the objects given as ``scatter=`` (kept until ``clear_all``); ``swap``
    scatters, once per call, each argument that is large and weak-referenceable (kept until
    ``clear_call``, or until the object dies: no later batch can then pass it).
    """

    def __init__(self, sizeof: Callable[[Any], int]) -> None:
        self._sizeof = sizeof
        self._pinned: dict[int, tuple[Any, Any]] = {}  # id -> (object, Future)
        self._cache: dict[int, tuple[weakref.ref[Any], Any]] = {}  # id -> (weakref, Future)

    def pin(self, client: Any, objects: list[Any]) -> None:
        if objects and not self._pinned:
            futures = client.scatter(objects, hash=False)
            self._pinned = {id(o): (o, f) for o, f in zip(objects, futures, strict=True)}

    def clear_call(self) -> None:
        self._cache = {}  # dropping our futures lets the cluster free the data

    def clear_all(self) -> None:
        self._cache = {}
        self._pinned = {}

    def swap(self, client: Any, batch: Batch) -> tuple[Batch, list[Any]]:
        """``batch`` with its large arguments replaced by slots, and the futures they stand for."""
        futures: list[Any] = []
        slots: dict[int, _Scattered] = {}

        def swap(value: Any) -> Any:
            future = self._future_for(client, value)
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
        return batch.replace(tasks=tasks), futures

    def _future_for(self, client: Any, value: Any) -> Any:
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
        [future] = client.scatter([value], hash=False)
        cache = self._cache

        def forget(ref: weakref.ref[Any]) -> None:
            if cache.get(key, (None,))[0] is ref:
                cache.pop(key, None)

        cache[key] = (weakref.ref(value, forget), future)
        return future


#: The scattered values of the batch being unpickled in this worker thread (set by run_remote).
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


class FailedBatch(Exception):
    """Raised on the worker, with the encoded result, so that dask's ``retries`` rerun a batch."""


#: Which initializers have run in this worker thread (``run_remote`` runs each one once per thread,
#: in the thread that then runs the tasks, so thread-local state it sets is seen by them).
_INITIALIZED = threading.local()

#: ``(token, initializer, initargs)``: an initializer and the key of its once-per-thread run.
Init = tuple[str, Callable[..., Any], tuple[Any, ...]]


def run_remote(payload: bytes, values: list[Any], raise_failed: bool, init: Init | None) -> bytes:
    """Worker side: run an encoded batch whose slots unpickle as ``values`` (dask resolved the
    futures to them), and encode its result as the process backends do."""
    if init is not None:
        done: set[str] = _INITIALIZED.__dict__.setdefault("tokens", set())
        if init[0] not in done:
            init[1](*init[2])
            done.add(init[0])
    token = _VALUES.set(values)
    try:
        raw = run_encoded(payload)
    finally:
        _VALUES.reset(token)
    if raise_failed and decode_result(raw).failures:
        raise FailedBatch(raw)
    return raw


def outcome(future: Any) -> tuple[Any, BaseException | None]:
    """A finished dask Future's payload, or its error, read without raising it: a raise would add
    our frames, which hold the Future, to the exception dask keeps in it (a leak)."""
    if future.status == "finished":
        return future.result(), None
    error = future.exception() if future.status == "error" else None
    if isinstance(error, FailedBatch):  # dask's retries are used up: report the failures
        return error.args[0], None
    if error is None:
        return None, CancelledError(f"dask task {future.key} ended as {future.status!r}")
    if error.__cause__ is None:  # an error outside the tasks: unpickling, a lost worker...
        remote = "".join(traceback.format_exception(type(error), error, future.traceback()))
        error.__cause__ = RemoteTraceback(remote)
    return None, error


class Encoded(Future[Any]):
    """A Future of a pickled ``BatchResult``, unpickled by the thread asking for it. Not by dask's
    callback thread: tracebacks unpickled there (distributed installs tblib) link back to its
    stack, which holds the dask Future, and so the batch's data, as long as the error lives."""

    _decoded: Any = None

    def result(self, timeout: float | None = None) -> Any:
        if self._decoded is None:
            self._decoded = decode_result(super().result(timeout))
        return self._decoded
