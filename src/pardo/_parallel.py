"""``Parallel``: validate the arguments, resolve them against the config, open a backend, run.

Everything that happens per task lives in ``pardo._engine._dispatch``; this module only decides *what*
runs *where*, and whether the caller gets a list or an iterator.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pardo import _config
from pardo._engine._batching import batcher_for
from pardo._engine._dispatch import Dispatch
from pardo._engine._shortcut import Shortcut
from pardo._options import Default, Options, resolve_backend
from pardo._report._progress import CallReporter
from pardo._task import Batch, Task
from pardo.backends import Backend

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

__all__ = ["Parallel", "ParallelResults"]

T = TypeVar("T")


class Parallel:
    """Run ``(func, args, kwargs)`` tasks in parallel; joblib's ``Parallel``, same arguments.

    Args:
        n_jobs: workers; None = from ``parallel_config``, else 1; -1 = all CPUs, -2 = all but one.
        backend: "loky" (default), "multiprocessing", "threading", "sequential", "dask", a name
            given to ``register_parallel_backend``, a ``Backend`` instance, or a multiprocessing
            context (the multiprocessing backend with that start method).
        return_as: "list", "generator" (input order, lazy) or "generator_unordered".
        verbose: 0 silent; higher prints joblib-format progress lines (>= 50 to stdout).
        timeout: seconds to wait for the next result before raising ``TimeoutError``.
        pre_dispatch: batches kept in flight: an int, "all", or an expression like "3 * n_jobs".
        batch_size: tasks per batch, or "auto" (adapts to the measured task duration).
        temp_folder: where large numpy arrays are written for process workers (default: the
            config, ``$JOBLIB_TEMP_FOLDER``, /dev/shm when it has room, else the temp dir).
        max_nbytes: arrays larger than this ("1M", "500K", an int, or None: never) are memmapped.
        mmap_mode: how workers open them: "r" (read-only), "r+", "c", or None (plain copies).
        prefer: "threads" or "processes": a hint used when no backend is set.
        require: "sharedmem" forces a thread-based backend.
        progress: True for a progress bar, or a callable ``(n_done, n_total)``, or a tqdm-like.
        task_timeout: seconds a single task may run (process backends); see ``on_timeout``.
        on_timeout: "raise" or "return" (the slot holds ``TaskTimeout``).
        retries: extra attempts for a failed task.
        retry_on: exception types that earn a retry (default: a worker's death only).
        on_error: "raise" (default) or "collect" (the slot holds ``TaskError``).
        **backend_kwargs: passed to the backend (``initializer``, ``initargs``, ...).

    Use ``with Parallel(...) as p:`` to keep one pool (and temp folder) for several calls.
    """

    def __init__(
        self,
        n_jobs: int | None = Default(None),  # type: ignore[assignment]
        backend: str | Backend | BaseContext | None = Default(None),  # type: ignore[assignment]
        return_as: str = "list",
        verbose: int = Default(0),  # type: ignore[assignment]
        timeout: float | None = None,
        pre_dispatch: int | str = "2 * n_jobs",
        batch_size: int | str = "auto",
        temp_folder: str | None = Default(None),  # type: ignore[assignment]
        max_nbytes: int | str | None = Default("1M"),  # type: ignore[assignment]
        mmap_mode: str | None = Default("r"),  # type: ignore[assignment]
        prefer: str | None = Default(None),  # type: ignore[assignment]
        require: str | None = Default(None),  # type: ignore[assignment]
        *,
        progress: Any = None,
        task_timeout: float | None = None,
        on_timeout: str = "raise",
        retries: int = 0,
        retry_on: tuple[type[BaseException], ...] | None = None,
        on_error: str = "raise",
        **backend_kwargs: Any,
    ) -> None:
        arguments = dict(locals())
        del arguments["self"]
        self._arguments = arguments
        self._apply_arguments()
        self.n_completed_tasks = 0
        self.n_dispatched_tasks = 0
        self._managed: Backend | None = None
        self._running = False
        self._reporter: CallReporter | None = None

    def _apply_arguments(self) -> None:
        """Check the arguments (all of them, so one source of truth) and derive what calls read."""
        self._options = Options.from_arguments(self._arguments)
        config = _config.get_config()
        # int() as joblib does: n_jobs=2.5 or "2" reads back as 2 (messages and repr show it).
        self._n_jobs = _config.check_n_jobs(self._options.setting("n_jobs", config, None))
        self._config = config  # an unset n_jobs reads as this config's backend default
        self._backend_setting = self._options.setting("backend", config, None)
        self._verbose = self._options.setting("verbose", config, 0)

    def _set_argument(self, name: str, value: Any) -> None:
        # joblib reads these attributes at call time, and code sets them after construction
        # (``par.verbose = 10``): the new value is checked like an argument and then used.
        previous = self._arguments[name]
        self._arguments[name] = value
        try:
            self._apply_arguments()
        except BaseException:
            self._arguments[name] = previous
            raise

    @property
    def n_jobs(self) -> int:
        """The n_jobs asked for; when unset, the chosen backend's default (1, -1 on dask);
        settable."""
        if self._n_jobs is None:
            # Found on first read, not in __init__: it imports the backend's module.
            self._n_jobs = self._options.default_n_jobs(self._config)
        return self._n_jobs

    @n_jobs.setter
    def n_jobs(self, value: int | None) -> None:
        self._set_argument("n_jobs", value)

    @property
    def backend(self) -> Any:
        """The backend asked for, by argument or ``parallel_config`` (read-only: a ``with``
        block may already hold its pool)."""
        return self._backend_setting

    @property
    def return_as(self) -> str:
        """``"list"``, ``"generator"`` or ``"generator_unordered"``; settable."""
        return self._options.return_as

    @return_as.setter
    def return_as(self, value: str) -> None:
        self._set_argument("return_as", value)

    @property
    def verbose(self) -> int:
        """joblib's verbosity; settable."""
        return int(self._verbose)

    @verbose.setter
    def verbose(self, value: int) -> None:
        self._set_argument("verbose", value)

    @property
    def timeout(self) -> float | None:
        """Seconds the whole call may take; settable."""
        return self._options.timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._set_argument("timeout", value)

    @property
    def pre_dispatch(self) -> int | str:
        """How far ahead of the results tasks are dispatched; settable."""
        return self._options.pre_dispatch

    @pre_dispatch.setter
    def pre_dispatch(self, value: int | str) -> None:
        self._set_argument("pre_dispatch", value)

    @property
    def batch_size(self) -> int | str:
        """``"auto"`` or a fixed number of tasks per batch; settable."""
        return self._options.batch_size

    @batch_size.setter
    def batch_size(self, value: int | str) -> None:
        self._set_argument("batch_size", value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_jobs={self.n_jobs})"

    def __enter__(self) -> Parallel:
        self._managed, _ = self._open_backend()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        backend, self._managed = self._managed, None
        if backend is not None:
            backend.terminate()

    def print_progress(self) -> None:
        """Report progress (called after each completed batch); recipes override this."""
        if self._reporter is not None:
            self._reporter.report(self.n_completed_tasks, self.n_dispatched_tasks)

    def _open_backend(self) -> tuple[Backend, int]:
        config = _config.get_config()
        backend, n_jobs = resolve_backend(self._options, config)
        n_jobs = backend.configure(n_jobs, self._options.call_settings(config))
        return backend, n_jobs

    def __call__(self, iterable: Iterable[Task]) -> Any:
        """Run every task of ``iterable``; a list, or an iterator for the generator modes."""
        if self._running:
            msg = (
                "This Parallel instance is already running: finish or close the generator of "
                "the previous call before starting another one."
            )
            raise RuntimeError(msg)
        self._running = True
        try:
            results = self._start(iterable)
        except BaseException:
            self._running = False
            raise
        if self.return_as == "list":
            return results.to_list()
        return results

    def _start(self, iterable: Iterable[Task]) -> ParallelResults[Any]:
        managed = self._managed
        if managed is not None:
            settings = self._options.call_settings(_config.get_config())
            backend, n_jobs = managed, managed.configure(managed.n_jobs, settings)
        else:
            backend, n_jobs = self._open_backend()
        try:
            dispatch = self._dispatch(backend, n_jobs, iterable)
        except BaseException:
            if managed is None:
                backend.terminate()
            raise
        return ParallelResults(self._run(dispatch, backend, managed is None))

    def _dispatch(self, backend: Backend, n_jobs: int, iterable: Iterable[Task]) -> Dispatch:
        options = self._options
        total = len(iterable) if hasattr(iterable, "__len__") else None  # type: ignore[arg-type]
        self.n_completed_tasks = self.n_dispatched_tasks = 0
        nested_name, nested_jobs = backend.get_nested_backend()
        nested = dict(_config.get_config())
        if nested_name:
            nested = {"backend": nested_name, "nesting_level": backend.nesting_level + 1}
            if nested_jobs is not None:
                nested["n_jobs"] = nested_jobs
        context = options.capture_context(backend)
        capture = options.capture_output(backend)
        keep_going = options.faults.collect
        label, verbose = repr(self), self.verbose
        progress = options.progress
        if progress is None:
            progress = _config.get_config().get("progress")
        self._reporter = reporter = CallReporter(
            options,
            backend,
            n_jobs,
            total,
            self._progressed,
            label=label,
            verbose=verbose,
            progress=progress,
        )

        def make_batch(tasks: Sequence[Task], start: int) -> Batch:
            reporter.batch_dispatched(len(tasks))
            return Batch(tasks, start, nested, keep_going, context, capture)

        # Tasks of cached functions (pardo.Memory) that hit are answered here, not dispatched.
        self._shortcut = shortcut = Shortcut(ordered=self.return_as != "generator_unordered")
        faults = options.faults
        faults.check_backend(backend)  # capabilities first: nothing has started if it raises
        batcher = batcher_for(options.batch_size, backend.batch_target, faults.task_timeout)
        backend.start_call()
        return Dispatch(
            backend,
            iter(iterable),
            n_jobs=n_jobs,
            total=total,
            max_in_flight=options.max_in_flight(n_jobs),
            batcher=batcher,
            ordered=self.return_as != "generator_unordered",
            lazy=self.return_as != "list",
            timeout=options.timeout if backend.supports_timeout else None,
            make_batch=make_batch,
            faults=options.faults,
            reporter=shortcut.reporter(self._reporter),
            screen=shortcut.screen,
        )

    def _progressed(self, n_completed: int, n_dispatched: int) -> None:
        self.n_completed_tasks = n_completed
        self.n_dispatched_tasks = n_dispatched
        self.print_progress()

    def _run(
        self, dispatch: Dispatch, backend: Backend, owns_backend: bool
    ) -> Iterator[list[Any] | None]:
        reporter = self._reporter
        ok = False
        try:
            dispatch.start()
            yield None  # primed by ParallelResults: dispatching starts before the first next()
            yield from self._shortcut.merge(dispatch.chunks())
            ok = True
        finally:
            try:
                dispatch.close()  # stops batches still in flight (a generator dropped early)
                backend.stop_call()
                if owns_backend:
                    backend.terminate()
            finally:
                self._running = False
                if reporter is not None:
                    reporter.close(ok)


class ParallelResults(Iterator[T], Generic[T]):
    """The iterator ``return_as="generator"`` returns; dropping or closing it cancels the rest."""

    def __init__(self, chunks: Iterator[list[T] | None]) -> None:
        self._chunks = chunks
        self._items: Iterator[T] = iter(())
        next(chunks)  # run up to the priming yield: the first batches are now in flight

    def to_list(self) -> list[T]:
        """Every remaining result, a batch at a time (list mode's fast path)."""
        out = list(self._items)
        for chunk in self._chunks:
            out.extend(chunk or ())
        return out

    def __iter__(self) -> ParallelResults[T]:
        return self

    def __next__(self) -> T:
        while True:
            for item in self._items:
                return item
            self._items = iter(next(self._chunks) or ())  # StopIteration ends us too

    def close(self) -> None:
        """Stop: cancel the tasks not yet done and release the workers."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    def __del__(self) -> None:
        self.close()
