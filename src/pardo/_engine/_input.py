"""The input side of one call: read tasks from the caller's iterable, hold the look-ahead, cut batches.

``Feed`` owns everything about the input: the iterator, the buffer read ahead of dispatching,
the batcher (the size of the next batch, chosen by the front and handed in), the tail split and
the ``pre_dispatch`` bound. The collecting loop (``pardo._engine._dispatch``) asks it for the
next batch whenever it has room in flight, and tells it how many tasks have completed.

The bound: tasks read and not yet completed never exceed ``max_in_flight`` batches of the
current size. With ``batch_size=1, pre_dispatch=3`` exactly 3 items are read before a task has
completed (joblib's rule, so a generator that loads one file per item holds at most 3). The
auto-batching look-ahead (which lets the tail split see the end coming) is kept within it.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from itertools import islice

from pardo._engine._batching import AutoBatcher, FixedBatcher, tail_size
from pardo._task import Batch, Task

__all__ = ["Batcher", "Feed"]

Batcher = AutoBatcher | FixedBatcher


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
        make_batch: Callable[[list[Task], int], Batch],
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
        self._buffer: list[Task] = []
        self._exhausted = False
        #: Tasks cut into batches so far (the next batch starts at this input index).
        self.n_taken = 0

    @property
    def done(self) -> bool:
        """Every task of the input has been cut into a batch (so ``n_taken`` is the total)."""
        return self._exhausted and not self._buffer

    def stop(self) -> None:
        """Read nothing more (the call is being aborted)."""
        self._exhausted = True
        self._buffer.clear()

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

    def _take(self, n_completed: int) -> list[Task]:
        batcher = self.batcher
        size = batcher.size
        if not self._exhausted:
            held = self.n_taken - n_completed + len(self._buffer)  # read, not yet completed
            room = self._max_in_flight * size - held
            wanted = min(batcher.lookahead(self._n_jobs) - len(self._buffer), room)
            # Tasks the screen answers take no room: read on until ``wanted`` are kept.
            while wanted > 0 and not self._exhausted:
                fresh = _pull(self._tasks, wanted)
                self._exhausted = len(fresh) < wanted
                if self._screen is not None:
                    fresh = self._screen(fresh)
                self._buffer.extend(fresh)
                wanted -= len(fresh)
        if isinstance(batcher, AutoBatcher):
            remaining = len(self._buffer) if self._exhausted else None
            if self._total is not None:
                remaining = self._total - self.n_taken
            size = tail_size(size, remaining, self._n_jobs, batcher.per_task)
        tasks = self._buffer[:size]
        del self._buffer[:size]  # shifts the rest in place: no copy of the look-ahead per batch
        return tasks


def _pull(tasks: Iterator[Task], n: int) -> list[Task]:
    """Up to ``n`` tasks from the input, with the cyclic GC paused meanwhile.

    Reading ahead allocates tens of thousands of tuples at once, which set off full collections
    that cost ~30% of a 100,000-task call (benchmarks/run.py --only tiny); those tuples form no
    cycles, so nothing is lost by collecting after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return list(islice(tasks, n))
    finally:
        if enabled:
            gc.enable()
