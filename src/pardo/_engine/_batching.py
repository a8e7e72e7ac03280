"""How many tasks go in the next batch: a pure policy fed with measured batch durations.

``AutoBatcher`` starts at one task per batch and aims at batches of ``target`` seconds. It keeps a
smoothed estimate of the time per task (batches of any size count, since the estimate is per task),
grows at most 2x per completed batch, and shrinks at once when a batch runs
far too long. ``tail_size`` splits what is left at the end so that no worker idles while another
runs one huge last batch (guided self-scheduling: each batch takes at most 1/(2*n_jobs) of the rest).

Nothing here reads a clock, prints or knows about ``Parallel``; callers pass durations in, or inject
``clock`` and use ``start``/``finish``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["AutoBatcher", "FixedBatcher", "batcher_for", "tail_size"]

#: Smoothing of the per-task time estimate (weight of the newest sample). Set with
#: benchmarks/run.py --only skewed: 0.5 follows a change in task duration within two
#: batches without letting one heavy-tailed batch halve the size twice in a row.
SMOOTHING = 0.5
#: A batch outside [target / BAND, target * BAND] seconds changes the size; inside it, the size
#: stays put, so batch sizes do not oscillate.
BAND = 2.5
#: Most bytes of pickled results one batch may carry back. With 2 * n_jobs batches in flight and
#: each held twice while it is decoded, this keeps the parent's peak near 20 MB however big and
#: fast the tasks are (benchmarks/run.py --only generator: 20,000 results of 100 KB grew the
#: parent by ~1 GB with time-only batching).
MAX_BATCH_BYTES = 2 * 1024**2
#: Below this much work in all, the tail is no longer cut into quarters per worker, which
#: costs a round trip (~0.5-1 ms on loky) per batch and bought nothing (benchmarks/run.py
#: --only tiny: 30 tail batches took 30 ms of an 87 ms call; --only skewed is unchanged since
#: its tasks are long). It is shared out instead (``MIN_PIECE_SECONDS``).
MIN_TAIL_SECONDS = 0.02
#: The smallest batch the last ``MIN_TAIL_SECONDS`` are shared out in: one batch per worker
#: where that is no smaller. Sending that rest as one batch left a worker idle 10 to 14 ms at
#: the end of 2,000 tasks of 1 ms (benchmarks/trace_batches.py, 2026-12-02: the last batch
#: held 20 tasks); halves of at least 2 ms cost one more round trip, in parallel.
MIN_PIECE_SECONDS = 0.002


class AutoBatcher:
    """Adaptive batch size. ``size`` is the size to use for the next batch."""

    def __init__(
        self,
        target: float = 0.5,
        max_size: int = 1 << 20,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if target <= 0:
            msg = f"target batch duration must be > 0 seconds, got {target!r}"
            raise ValueError(msg)
        self.target = target
        self.max_size = max_size
        self.size = 1
        self.per_task: float | None = None
        self.bytes_per_task = 0.0
        self._clock = clock

    def lookahead(self, n_jobs: int) -> int:
        """How many tasks of the input to hold before taking a batch.

        Enough that the tail rule sees the end coming: either the input runs out within the
        look-ahead (then what is left is known, and ``tail_size`` splits it), or more than
        ``2 * n_jobs`` batches of this size remain, which that rule allows anyway. With only
        ``n_jobs`` batches read ahead, 100 generator tasks of 10 ms ended on two 32-task batches
        and one worker idled 80 ms of a 0.55 s call (docs/plot_overhead.py, 10 ms point).
        """
        return 2 * self.size * n_jobs + 1

    def start(self) -> float:
        """A timestamp to hand back to ``finish`` (for callers without worker-side timings)."""
        return self._clock()

    def finish(self, started: float, size: int) -> None:
        """Record a batch of ``size`` tasks dispatched at ``started`` and completed now."""
        self.record(size, self._clock() - started)

    def record(self, size: int, seconds: float, nbytes: int = 0) -> None:
        """Learn from a completed batch of ``size`` tasks that ran ``seconds``.

        ``nbytes``, when known, is the size of the batch's pickled results: batches are also
        kept under ``MAX_BATCH_BYTES`` so that big results do not pile up in the parent.
        """
        if size <= 0:
            return
        if nbytes:
            self.bytes_per_task = max(self.bytes_per_task, nbytes / size)
        sample = max(seconds, 0.0) / size
        if self.per_task is None:
            self.per_task = sample
        else:
            self.per_task += SMOOTHING * (sample - self.per_task)
        wanted = self.target / self.per_task if self.per_task > 0 else float(self.max_size)
        if self.size * self.per_task < self.target / BAND:
            # Judge the *current* size by the per-task estimate (a small tail batch is fast only
            # because it is small) and double it per completed batch: with k batches in flight
            # the size grows 2**k per round trip instead of 2x, so 100,000 tiny tasks reach big
            # batches in a few round trips (benchmarks "tiny": 84 -> ~25 batches).
            grown = min(2 * self.size, wanted)
            self.size = max(self.size, int(grown))
        elif seconds > self.target * BAND:
            self.size = min(self.size, max(int(wanted), 1))
        limit = self.max_size
        if self.bytes_per_task:
            limit = min(limit, max(int(MAX_BATCH_BYTES / self.bytes_per_task), 1))
        self.size = max(1, min(self.size, limit))


class FixedBatcher:
    """The same batch size every time (``batch_size=<int>``); same interface as ``AutoBatcher``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.per_task: float | None = None

    def lookahead(self, n_jobs: int) -> int:
        """A batch for each worker: sizes are fixed, so the tail is not split."""
        return self.size * n_jobs

    def start(self) -> float:
        return 0.0

    def finish(self, started: float, size: int) -> None:
        pass

    def record(self, size: int, seconds: float, nbytes: int = 0) -> None:
        pass


def tail_size(size: int, remaining: int | None, n_jobs: int, per_task: float | None = None) -> int:
    """Cap ``size`` so a batch takes at most 1/(2*n_jobs) of the ``remaining`` tasks (if known).

    When ``per_task`` (seconds) says the rest is less than ``MIN_TAIL_SECONDS`` of work, it is
    shared between the workers instead, in batches of at least ``MIN_PIECE_SECONDS``: finer
    cuts would cost more round trips than the imbalance they remove.
    """
    if remaining is None:
        return size
    if per_task is not None and remaining * per_task < MIN_TAIL_SECONDS:
        piece = max(
            math.ceil(remaining / n_jobs), math.ceil(MIN_PIECE_SECONDS / max(per_task, 1e-9))
        )
        return max(1, min(size, remaining, piece))
    return max(1, min(size, math.ceil(remaining / (2 * n_jobs))))


def batcher_for(
    batch_size: int | str, target: float, task_timeout: float | None
) -> AutoBatcher | FixedBatcher:
    """The one batcher of a call, chosen once by the front and handed to the loop.

    ``task_timeout`` forces batches of one task: the status board times batches, so only a
    batch of one times its task.
    """
    if task_timeout is not None:
        return FixedBatcher(1)
    if batch_size == "auto":
        return AutoBatcher(target=target)
    return FixedBatcher(int(batch_size))
