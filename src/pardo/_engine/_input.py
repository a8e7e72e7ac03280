"""The input side of one call: read tasks from the caller's iterable, hold the look-ahead, cut batches.

``Feed`` owns everything about the input: the iterator, the buffer read ahead of dispatching,
the batcher (the size of the next batch, chosen by the front and handed in), the tail split and
the ``pre_dispatch`` bound. The collecting loop (``pardo._engine._dispatch``) asks it for the
next batch whenever it has room in flight, and tells it how many tasks have completed.

The bound: tasks read and not yet completed never exceed ``max_in_flight`` batches of the
current size. With ``batch_size=1, pre_dispatch=3`` exactly 3 items are read before a task has
completed (joblib's rule, so a generator that loads one file per item holds at most 3). The
auto-batching look-ahead (which lets the tail split see the end coming) is kept within it,
and ``flight_limit`` keeps it room while long batches go out over an input of unknown length.

What is read is packed into columns (``pardo._task.Columns``) at once, while the cyclic GC is
still paused: the look-ahead and the batches hold ``(f, [args...])``, not the caller's triples.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import Any

from pardo._engine._batching import AutoBatcher, FixedBatcher, tail_size
from pardo._task import Batch, Columns, Task, pack

__all__ = ["Batcher", "Feed"]

Batcher = AutoBatcher | FixedBatcher

#: A batch this long (seconds) needs no second batch in flight behind it on its worker (see
#: ``Feed.flight_limit``). With 4 batches in flight for 2 workers, 200 generator tasks of 10 ms
#: ended on five 32-task batches that the tail rule never saw, and one worker idled 220 ms
#: (benchmarks/trace_batches.py --ms 10 --n 200, 2026-12-02).
LONG_BATCH_SECONDS = 0.05


class Feed:
    """Cut one call's input into batches, reading no further than the look-ahead and the bound."""

    def __init__(
        self,
        tasks: Iterator[Task],
        *,
        batcher: Batcher,
        n_jobs: int,
        total: int | None,
        max_in_flight: int,
        make_batch: Callable[[Sequence[Task], int], Batch],
        screen: Callable[[list[Task]], list[Task]] | None = None,
    ) -> None:
        self.batcher = batcher
        #: Drops the tasks answered without dispatching (cached ones) from what is read.
        self._screen = screen
        self._tasks = tasks
        self._n_jobs = n_jobs
        self._total = total
        self._max_in_flight = max(1, max_in_flight)
        self._make_batch = make_batch
        self._buffer = _LookAhead()
        self._exhausted = False
        #: Tasks cut into batches so far (the next batch starts at this input index).
        self.n_taken = 0

    @property
    def done(self) -> bool:
        """Every task of the input has been cut into a batch (so ``n_taken`` is the total)."""
        return self._exhausted and not len(self._buffer)

    def stop(self) -> None:
        """Read nothing more (the call is being aborted)."""
        self._exhausted = True
        self._buffer.clear()

    def flight_limit(self, limit: int) -> int:
        """How many batches to keep in flight, at most ``limit``.

        One per worker plus one while batches are long and the input's end is not in sight:
        the ``pre_dispatch`` bound counts batches in flight and read ahead together, so with
        ``limit`` batches in flight the look-ahead has no room to find the end of a generator,
        and its last long batches went out unsplit (``LONG_BATCH_SECONDS``). The extra batch
        in flight only hides a round trip, which a long batch does not need.
        """
        batcher = self.batcher
        if self._total is not None or self._exhausted or not isinstance(batcher, AutoBatcher):
            return limit
        per_task = batcher.per_task
        if per_task is None or batcher.size * per_task < LONG_BATCH_SECONDS:
            return limit
        return min(limit, self._n_jobs + 1)

    def next_batch(self, n_completed: int) -> Batch | None:
        """The next batch, or None when the input is done or the bound allows no more reading.

        ``n_completed``: tasks whose results are complete, which the bound lets go of.
        """
        tasks = self._take(n_completed)
        if not tasks:
            return None
        start = self.n_taken
        self.n_taken += len(tasks)
        return self._make_batch(tasks, start)

    def _take(self, n_completed: int) -> Sequence[Task]:
        batcher = self.batcher
        size = batcher.size
        buffer = self._buffer
        if not self._exhausted:
            held = self.n_taken - n_completed + len(buffer)  # read, not yet completed
            room = self._max_in_flight * size - held
            wanted = min(batcher.lookahead(self._n_jobs) - len(buffer), room)
            # Tasks the screen answers take no room: read on until ``wanted`` are kept.
            while wanted > 0 and not self._exhausted:
                wanted -= self._read(wanted)
        if isinstance(batcher, AutoBatcher):
            remaining = len(buffer) if self._exhausted else None
            if self._total is not None:
                remaining = self._total - self.n_taken
            size = tail_size(size, remaining, self._n_jobs, batcher.per_task)
        return buffer.cut(size)

    def _read(self, wanted: int) -> int:
        """Read up to ``wanted`` tasks into the look-ahead; how many of them it kept.

        The cyclic GC is paused from reading to packing. Reading ahead allocates tens of
        thousands of tuples at once, which set off full collections that cost ~30% of a
        100,000-task call (benchmarks/run.py --only tiny); and packed as columns, the triples
        die before any collection has to scan them. They form no cycles: nothing is lost.
        """
        enabled = gc.isenabled()
        gc.disable()
        try:
            fresh = list(islice(self._tasks, wanted))
            self._exhausted = len(fresh) < wanted
            if self._screen is not None:
                fresh = self._screen(fresh)
            self._buffer.add(fresh)
            kept = len(fresh)
            del fresh  # the triples die here, with the GC still paused
            return kept
        finally:
            if enabled:
                gc.enable()


class _LookAhead:
    """The tasks read and not yet cut into batches.

    Held as columns (the shared function and a list of argument tuples) while every task read
    calls one function without keywords, which is the usual case; as triples otherwise.
    Only one of ``_args`` and ``_tasks`` is ever non-empty.
    """

    __slots__ = ("_args", "_func", "_tasks")

    def __init__(self) -> None:
        self._func: Any = None
        self._args: list[tuple[Any, ...]] = []
        self._tasks: list[Task] = []

    def __len__(self) -> int:
        return len(self._args) + len(self._tasks)

    def add(self, tasks: list[Task]) -> None:
        packed = pack(tasks)
        if type(packed) is Columns and not self._tasks:
            if not self._args:
                self._func, self._args = packed.func, packed.args
                return
            if packed.func is self._func:
                self._args.extend(packed.args)
                return
        if self._args:  # a second function or keywords: the rest of the look-ahead as triples
            self._tasks = list(Columns(self._func, self._args))
            self._args = []
        self._tasks.extend(packed)

    def cut(self, size: int) -> Sequence[Task]:
        """The first ``size`` tasks, removed from the look-ahead."""
        if self._args:
            args = self._args[:size]
            del self._args[:size]  # shifts the rest in place: no copy of the look-ahead
            return Columns(self._func, args)
        tasks = self._tasks[:size]
        del self._tasks[:size]
        return tasks

    def clear(self) -> None:
        self._args = []
        self._tasks = []
