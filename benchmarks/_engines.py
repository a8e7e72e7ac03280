"""Engines: one adapter per way of running ``func(*args)`` over many inputs, behind one interface.

Every workload talks to an ``Engine`` only: ``open()`` imports the library and starts its pool,
``map`` returns the results in input order, ``imap`` yields them lazily. Libraries are imported
in ``open()``, never at module import, so the "startup" workload can time the import itself.

pardo and joblib rows are called the way their users write them: a new ``Parallel(n_jobs,
backend)`` per call. So each call starts from batch size 1, and the threading and
multiprocessing backends build their pool inside the call (loky reuses its pool across calls).
The peers keep one pool open, as their users do. ``hold()`` switches pardo and joblib to one
``with Parallel(...)`` block kept open ("startup": warm call on a kept pool).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar

Args = tuple[Any, ...]
Func = Callable[..., Any]

__all__ = ["ENGINES", "JOBLIB", "PARDO", "Engine", "make_engine", "reference_engines"]

PARDO = ("pardo-loky", "pardo-multiprocessing", "pardo-threading")
JOBLIB = ("joblib-loky", "joblib-multiprocessing", "joblib-threading")


def _star(func: Func, args: Args) -> Any:
    return func(*args)


class Engine:
    """Base adapter. ``kind`` is "process", "thread" or "serial" (it picks the joblib reference)."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "serial"
    #: Chunk sizes "tiny" tries (the best one is reported); None means the engine's default.
    chunksizes: ClassVar[tuple[int | None, ...]] = (None,)
    #: True where workers are forked after ``open`` and so inherit module globals set before it.
    forks: ClassVar[bool] = False

    def __init__(self, n_jobs: int) -> None:
        self.n_jobs = n_jobs

    def open(self) -> None:
        """Import the library and start the pool (workers may start lazily, at the first call)."""

    def close(self) -> None:
        """Stop the pool."""

    def hold(self) -> None:
        """Keep one pool for the calls of ``map_held`` (peers keep theirs anyway)."""

    def map(self, func: Func, items: Sequence[Args], chunksize: int | None = None) -> list[Any]:
        return [func(*args) for args in items]

    def map_held(self, func: Func, items: Sequence[Args]) -> list[Any]:
        return self.map(func, items)

    def imap(self, func: Func, items: Iterable[Args]) -> Iterator[Any]:
        return (func(*args) for args in items)


class _ParallelEngine(Engine):
    """pardo or joblib: a new ``Parallel(n_jobs, backend)`` per call, or a held one."""

    library: ClassVar[str] = ""
    backend: ClassVar[str] = ""
    _held: Any = None

    def open(self) -> None:
        module = __import__(self.library)
        self._parallel = module.Parallel
        self._delayed = module.delayed

    def close(self) -> None:
        if self._held is not None:
            self._held.__exit__(None, None, None)

    def hold(self) -> None:
        self._held = self._parallel(n_jobs=self.n_jobs, backend=self.backend)
        self._held.__enter__()

    # ``delayed(func)`` per item, not hoisted: that is how users write it, and what it costs
    # (joblib's delayed copies the function's metadata each time) is part of the overhead.

    def map(self, func: Func, items: Sequence[Args], chunksize: int | None = None) -> list[Any]:
        delayed, parallel = self._delayed, self._parallel(n_jobs=self.n_jobs, backend=self.backend)
        return list(parallel(delayed(func)(*args) for args in items))

    def map_held(self, func: Func, items: Sequence[Args]) -> list[Any]:
        delayed = self._delayed
        return list(self._held(delayed(func)(*args) for args in items))

    def imap(self, func: Func, items: Iterable[Args]) -> Iterator[Any]:
        delayed = self._delayed
        parallel = self._parallel(n_jobs=self.n_jobs, backend=self.backend, return_as="generator")
        result: Iterator[Any] = parallel(delayed(func)(*args) for args in items)
        return result


def _parallel_engine(library: str, backend: str, kind: str) -> type[Engine]:
    attrs: dict[str, Any] = {"name": f"{library}-{backend}", "library": library}
    attrs.update(backend=backend, kind=kind, forks=backend == "multiprocessing")
    return type(f"{library}_{backend}", (_ParallelEngine,), attrs)


class MpPoolEngine(Engine):
    """``multiprocessing.Pool`` (the platform default start method: fork on Linux)."""

    name = "mp-pool"
    kind = "process"
    chunksizes = (None, 100, 1000, 10000)
    forks = True

    def open(self) -> None:
        import multiprocessing

        self._pool = multiprocessing.Pool(self.n_jobs)

    def close(self) -> None:
        self._pool.close()
        self._pool.join()

    def map(self, func: Func, items: Sequence[Args], chunksize: int | None = None) -> list[Any]:
        return self._pool.starmap(func, items, chunksize)

    def imap(self, func: Func, items: Iterable[Args]) -> Iterator[Any]:
        import functools

        # imap has no star form; chunksize 16 keeps the read-ahead small but not per-item.
        return self._pool.imap(functools.partial(_star, func), items, chunksize=16)


class _ExecutorEngine(Engine):
    """``concurrent.futures`` executors: ``executor.map`` over the argument tuples."""

    def _make(self) -> Any:
        raise NotImplementedError

    def open(self) -> None:
        self._executor = self._make()

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def map(self, func: Func, items: Sequence[Args], chunksize: int | None = None) -> list[Any]:
        return list(self.imap(func, items, chunksize))

    def imap(
        self, func: Func, items: Iterable[Args], chunksize: int | None = None
    ) -> Iterator[Any]:
        import functools

        # Executor.map submits every item at once: it is eager on input, lazy only on output.
        star = functools.partial(_star, func)
        result: Iterator[Any] = self._executor.map(star, items, chunksize=chunksize or 1)
        return result


class CfProcessEngine(_ExecutorEngine):
    name = "cf-process"
    kind = "process"
    chunksizes = (100, 1000, 10000)
    forks = True

    def _make(self) -> Any:
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(self.n_jobs)


class LokyEngine(_ExecutorEngine):
    """loky's reusable executor used directly: the floor of any library built on loky (pardo and
    joblib both are). The startup workload shows how much of a cold start is loky's own."""

    name = "loky"
    kind = "process"
    chunksizes = (100, 1000, 10000)

    def _make(self) -> Any:
        from loky import get_reusable_executor

        return get_reusable_executor(max_workers=self.n_jobs)

    def close(self) -> None:
        self._executor.shutdown(wait=True, kill_workers=True)


class CfThreadEngine(_ExecutorEngine):
    name = "cf-thread"
    kind = "thread"

    def _make(self) -> Any:
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(self.n_jobs)


class MpireEngine(Engine):
    """mpire's ``WorkerPool`` with ``keep_alive`` (so repeated calls reuse the workers)."""

    name = "mpire"
    kind = "process"
    forks = True
    start_method: ClassVar[str] = "fork"

    def open(self) -> None:
        from mpire import WorkerPool  # type: ignore[attr-defined]

        self._pool = WorkerPool(self.n_jobs, start_method=self.start_method, keep_alive=True)
        self._pool.__enter__()

    def close(self) -> None:
        self._pool.__exit__(None, None, None)

    def map(self, func: Func, items: Sequence[Args], chunksize: int | None = None) -> list[Any]:
        result: list[Any] = self._pool.map(func, items, chunk_size=chunksize)
        return result

    def imap(self, func: Func, items: Iterable[Args]) -> Iterator[Any]:
        result: Iterator[Any] = self._pool.imap(func, items)
        return result


class MpireThreadEngine(MpireEngine):
    name = "mpire-threading"
    kind = "thread"
    forks = False
    start_method = "threading"


class SerialEngine(Engine):
    """A plain loop in the calling process: the floor for overhead, the reference for speed-up."""

    name = "serial"


ENGINES: dict[str, type[Engine]] = {
    cls.name: cls
    for cls in (
        _parallel_engine("pardo", "loky", "process"),
        _parallel_engine("pardo", "multiprocessing", "process"),
        _parallel_engine("pardo", "threading", "thread"),
        _parallel_engine("joblib", "loky", "process"),
        _parallel_engine("joblib", "multiprocessing", "process"),
        _parallel_engine("joblib", "threading", "thread"),
        MpPoolEngine,
        CfProcessEngine,
        LokyEngine,
        CfThreadEngine,
        MpireEngine,
        MpireThreadEngine,
        SerialEngine,
    )
}


def make_engine(name: str, n_jobs: int) -> Engine:
    """A new, unopened engine called ``name`` (one of ``ENGINES``)."""
    try:
        cls = ENGINES[name]
    except KeyError:
        msg = f"unknown engine {name!r}; expected one of {sorted(ENGINES)}"
        raise ValueError(msg) from None
    return cls(n_jobs)


def reference_engines(name: str) -> tuple[str, ...]:
    """The joblib engines ``name`` is compared with, in order of preference: the same backend
    (for pardo and joblib rows), then joblib's default of its kind (loky for processes)."""
    kind = {"thread": "joblib-threading"}.get(ENGINES[name].kind, "joblib-loky")
    if name.startswith(("pardo-", "joblib-")):
        return ("joblib-" + name.split("-", 1)[1], kind)
    return (kind,)
