"""Answer cached tasks in the parent: a rerun of an interrupted grid dispatches only the misses.

A task whose function has ``__pardo_lookup__(args, kwargs) -> (hit, value)`` (``pardo.Memory``'s
cached functions do; no import of ``pardo._memory`` here) is looked up as the input is read. A hit
never reaches a worker: its value waits in ``Shortcut`` and is put back in its input position
when the results of the misses come out; progress counts it as dispatched and done at once.

The input side (``screen``, called on each list of tasks read from the input) records, for
each hit, how many misses came before it since the previous hit; the output side (``merge``)
replays that. Without any hit the output chunks pass through untouched, and a list of tasks
costs one attribute lookup per change of function.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from pardo._task import BatchResult, Task

__all__ = ["Shortcut"]


class _Hit:
    __slots__ = ("misses_before", "value")

    def __init__(self, misses_before: int, value: Any) -> None:
        self.misses_before = misses_before
        self.value = value


class Shortcut:
    """One call's cached-task answering (see the module docstring)."""

    def __init__(self, ordered: bool) -> None:
        self._ordered = ordered
        self._hits: deque[_Hit] = deque()
        self._misses = 0  # misses read since the last hit
        self.n_hits = 0

    def screen(self, tasks: list[Task]) -> list[Task]:
        """``tasks`` (read from the input, in order) minus the ones the cache answers."""
        # A whole list per call, not a generator around the input: resuming a generator per
        # task cost ~0.07 us of a tiny task's ~0.45 us in the parent (benchmarks/run.py --only
        # tiny, 2026-12-02). Inputs mostly repeat one function: the attribute is looked up once
        # per function change, and a list with no cached function passes through unchanged.
        func: Any = None
        for task in tasks:
            if task[0] is not func:
                func = task[0]
                if getattr(func, "__pardo_lookup__", None) is not None:
                    return self._screen_slow(tasks)
        self._misses += len(tasks)
        return tasks

    def _screen_slow(self, tasks: list[Task]) -> list[Task]:
        kept: list[Task] = []
        func: Any = None
        lookup: Any = None
        for task in tasks:
            if task[0] is not func:
                func = task[0]
                lookup = getattr(func, "__pardo_lookup__", None)
            if lookup is not None:
                hit, value = lookup(task[1], task[2])
                if hit:
                    self._hits.append(_Hit(self._misses, value))
                    self._misses = 0
                    self.n_hits += 1
                    continue
            self._misses += 1
            kept.append(task)
        return kept

    def merge(self, chunks: Iterator[list[Any]]) -> Iterator[list[Any]]:
        """The dispatched results with the cached values put back in input order."""
        hits = self._hits
        for chunk in chunks:
            if not hits:
                yield chunk
            elif not self._ordered:
                yield [hits.popleft().value for _ in range(len(hits))] + list(chunk)
            else:
                yield self._interleave(chunk)
        if hits:
            yield [hit.value for hit in hits]
            hits.clear()

    def _interleave(self, chunk: list[Any]) -> list[Any]:
        hits = self._hits
        out: list[Any] = []
        i = 0
        while hits:
            first = hits[0]
            take = min(first.misses_before, len(chunk) - i)
            out.extend(chunk[i : i + take])
            i += take
            first.misses_before -= take
            if first.misses_before:
                break
            out.append(hits.popleft().value)
        out.extend(chunk[i:])
        return out

    def reporter(self, reporter: Any) -> _CountingReporter:
        """``reporter`` with the hits counted as dispatched and completed."""
        return _CountingReporter(reporter, self)


class _CountingReporter:
    def __init__(self, inner: Any, shortcut: Shortcut) -> None:
        self._inner = inner
        self._shortcut = shortcut

    def progress(self, n_completed: int, n_dispatched: int, input_done: bool) -> None:
        n = self._shortcut.n_hits
        self._inner.progress(n_completed + n, n_dispatched + n, input_done)

    def batch_size_changed(self, size: int, seconds: float) -> None:
        self._inner.batch_size_changed(size, seconds)

    def output(self, result: BatchResult) -> None:
        self._inner.output(result)
