"""Tasks and batches: ``delayed`` builds a task, a ``Batch`` runs several of them in a worker.

A task is joblib's plain ``(func, args, kwargs)`` triple, so code that builds or rewrites triples by
hand (scikit-learn does) keeps working. A ``Batch`` is the unit a backend runs: a picklable callable
that runs its tasks in order under the nested configuration and reports, per batch, the results,
any failures with their remote tracebacks, the time it took and the worker's pid.
"""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar

from pardo import _config

__all__ = [
    "Batch",
    "BatchResult",
    "Columns",
    "Failure",
    "OutputRecorder",
    "Task",
    "delayed",
    "pack",
]


class _Recording(Protocol):
    def stop(self) -> tuple[Any, ...]: ...


class OutputRecorder(Protocol):
    """What a batch's ``capture`` is (``pardo._report._capture.OutputCapture``): named here as a
    protocol so that this ground-floor module needs nothing from the reporting layer."""

    def start(self, results: list[Any], start: int) -> _Recording: ...


R = TypeVar("R")

Task = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class _FromWrapped:
    """Class attribute that reads as f's on a ``delayed(f)`` object and as the class's own on it.

    ``__doc__`` lives in every class's dict, so ``__getattr__`` never sees it. (``__module__``
    cannot be forwarded this way: pickle reads the class's own straight from its dict.)
    """

    def __init__(self, name: str, on_class: Any) -> None:
        self.name, self.on_class = name, on_class

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self.on_class
        return getattr(obj.__wrapped__, self.name, None)


class _Delayed:
    """``delayed(f)``: calling it returns the task ``(f, args, kwargs)``.

    A tiny class rather than a ``functools.wraps`` closure: ``delayed(f)(x)`` runs once per task,
    and copying f's metadata each time cost ~5 µs, more than pardo's whole per-task budget.
    f's attributes (``__name__``, ``__doc__``...) are still readable through this object.
    """

    __slots__ = ("__wrapped__",)

    def __init__(self, function: Callable[..., Any]) -> None:
        self.__wrapped__ = function

    def __call__(self, *args: Any, **kwargs: Any) -> Task:
        return self.__wrapped__, args, kwargs

    def __getattr__(self, name: str) -> Any:
        if name == "__wrapped__":  # not set yet (copy, unpickling): no recursion through here
            raise AttributeError(name)
        return getattr(self.__wrapped__, name)

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        return _Delayed, (self.__wrapped__,)

    def __repr__(self) -> str:
        return f"delayed({self.__wrapped__!r})"


_Delayed.__doc__ = _FromWrapped("__doc__", _Delayed.__doc__)  # type: ignore[assignment]


def delayed(function: Callable[..., R]) -> Callable[..., Task]:
    """Wrap ``function`` so that calling it returns the task ``(function, args, kwargs)``.

    Example:
        ``Parallel(n_jobs=2)(delayed(pow)(x, 2) for x in range(10))``
    """
    return _Delayed(function)


class Failure(NamedTuple):
    """One task that raised: its index in the batch, the exception and the formatted traceback."""

    offset: int
    exception: BaseException
    traceback: str


class BatchResult(NamedTuple):
    """What a batch sends back. ``results[i]`` is None where ``failures`` names offset ``i``.

    ``output`` holds what the tasks logged and printed in a process worker (``pardo._report._capture``).
    """

    results: list[Any]
    failures: list[Failure]
    elapsed: float
    pid: int
    output: tuple[Any, ...] = ()
    #: Size of the pickled outcome, when it crossed a process boundary (0 otherwise).
    nbytes: int = 0


class Columns(Sequence[Task]):
    """Tasks that all call one function without keyword arguments, stored as columns.

    This is the common ``delayed(f)(x) for x in xs`` shape. The parent turns the triples it
    reads into columns at once (``pardo._engine._input``), so the triples die before the cyclic
    GC ever scans them: with them held in the look-ahead and in flight, gen-0 collections cost
    0.12 to 0.2 us of a tiny task's ~0.9 us (``gc.disable()`` A/B, 2026-12-02). Pickled as
    ``(f, [args, ...])`` they cost about a third of the triples per task to send and to load
    (benchmarks/run.py --only tiny), and the worker calls ``f(*args)`` with no kwargs dict.
    Indexing and iterating give ``(f, args, {})`` triples, as a list of tasks would.
    """

    __slots__ = ("args", "func")

    def __init__(self, func: Callable[..., Any], args: list[tuple[Any, ...]]) -> None:
        self.func = func
        self.args = args

    def __len__(self) -> int:
        return len(self.args)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return Columns(self.func, self.args[index])
        return self.func, self.args[index], {}

    def __iter__(self) -> Iterator[Task]:
        func = self.func
        for args in self.args:
            yield func, args, {}

    def __reduce__(self) -> tuple[Any, ...]:
        return Columns, (self.func, self.args)


def pack(tasks: list[Task]) -> Sequence[Task]:
    """``tasks`` as ``Columns`` when they share one function and pass no keywords, else as is."""
    if not tasks:
        return tasks
    func = tasks[0][0]
    for task in tasks:
        if task[0] is not func or task[2]:
            return tasks
    return Columns(func, [task[1] for task in tasks])


@dataclass(slots=True, eq=False)
class Batch:
    """A run of consecutive tasks, starting at input index ``start``.

    Derive a changed copy with ``replace``; pickling packs the tasks as columns where it can.
    """

    #: The ``(func, args, kwargs)`` triples.
    tasks: Sequence[Task]
    #: Input index of the first task (for error notes and result order).
    start: int
    #: The configuration tasks see (nested backend, nesting level).
    nested: dict[str, Any]
    #: Run the tasks after a failing one too (``on_error="collect"``).
    keep_going: bool = False
    #: Snapshots from context propagators, restored around the tasks.
    context: tuple[tuple[Callable[[Any], Any], Any], ...] = ()
    #: Records the tasks' logging and prints (process workers), or None.
    capture: OutputRecorder | None = None

    def replace(self, **changes: Any) -> Batch:
        """This batch with the named fields changed (``batch.replace(tasks=...)``)."""
        return dataclasses.replace(self, **changes)

    def __len__(self) -> int:
        return len(self.tasks)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt through __init__ from the fields in their declared order; the tasks travel
        # as columns when they share one function (``Columns``; the parent's are already).
        fields = (self.start, self.nested, self.keep_going, self.context, self.capture)
        tasks = self.tasks
        return Batch, (pack(tasks) if type(tasks) is list else tasks, *fields)

    def __call__(self) -> BatchResult:
        token = _config.CONFIG.set(self.nested)
        restores = [restore(snapshot) for restore, snapshot in self.context]
        results: list[Any] = []
        output: tuple[Any, ...] = ()
        # The recording reads len(results) to know which task is printing: no cost per task.
        recording = None if self.capture is None else self.capture.start(results, self.start)
        begin = time.perf_counter()
        try:
            results, failures = self._run(results)
        finally:
            if recording is not None:
                output = recording.stop()
            for undo in reversed(restores):
                if callable(undo):
                    undo()
            _config.CONFIG.reset(token)
        return BatchResult(results, failures, time.perf_counter() - begin, os.getpid(), output)

    def _run(self, results: list[Any] | None = None) -> tuple[list[Any], list[Failure]]:
        if results is None:
            results = []
        append = results.append
        failures: list[Failure] = []
        tasks: Any = self.tasks  # a list of triples, or Columns
        while True:
            try:
                # The hot loops: one call and one append per task, nothing else.
                if type(tasks) is Columns:
                    func = tasks.func
                    for args in tasks.args[len(results) :] if results else tasks.args:
                        append(func(*args))
                else:
                    for func, args, kwargs in tasks[len(results) :] if results else tasks:
                        append(func(*args, **kwargs))
                return results, failures
            except Exception as exc:
                failures.append(Failure(len(results), exc, traceback.format_exc()))
                if not self.keep_going:
                    return results, failures
                append(None)
                if len(results) == len(tasks):
                    return results, failures
