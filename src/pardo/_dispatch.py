"""The one dispatch loop: keep work in flight, hand results back in order, stop everything on error.

Data flow of one call::

    input iterator ──islice──► buffer ──batcher.size / tail split──► Batch(tasks, start)
                                                                        │ backend.submit
                                                                        ▼
         caller ◄── yield per task ◄── order by batch seq ◄── SimpleQueue ◄── Future done-callback

At most ``max_in_flight`` batches are submitted and not yet handed back, so a lazy input is read
only as fast as results are consumed. The loop runs in the caller's thread; the only other thread
it talks to is whichever resolves the Futures, through the queue. Any exception (a task's, the
input's, a timeout, Ctrl-C, ``GeneratorExit`` from a dropped generator) aborts the backend before
it propagates, so no batch keeps running behind the caller's back.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from itertools import islice
from typing import Any, NamedTuple, Protocol

from pardo._batching import AutoBatcher, FixedBatcher, tail_size
from pardo._errors import TaskError, TimeoutError, WorkerDiedError
from pardo._faults import FaultPolicy, annotate
from pardo._task import Batch, BatchResult, Task
from pardo.backends import Backend

__all__ = ["Dispatch", "Reporter"]

#: Seconds between checks for dead workers while waiting (only matters when nothing completes).
POLL_SECONDS = 0.1


class Reporter(Protocol):
    """What the loop tells the outside world; ``Parallel`` turns it into verbose lines and bars."""

    def progress(self, n_completed: int, n_dispatched: int, input_done: bool) -> None: ...

    def batch_size_changed(self, size: int, seconds: float) -> None: ...


class _Sent(NamedTuple):
    seq: int
    batch: Batch
    started: float
    attempt: int


class Dispatch:
    """One call's loop. Iterate it (once) to get the results, one per task."""

    def __init__(
        self,
        backend: Backend,
        tasks: Iterator[Task],
        *,
        n_jobs: int,
        total: int | None,
        max_in_flight: int,
        batcher: AutoBatcher | FixedBatcher,
        ordered: bool,
        timeout: float | None,
        make_batch: Callable[[list[Task], int], Batch],
        faults: FaultPolicy,
        reporter: Reporter,
    ) -> None:
        self._backend = backend
        self._tasks = tasks
        self._n_jobs = n_jobs
        self._total = total
        self._max_in_flight = max(1, max_in_flight)
        self._batcher = batcher
        self._auto = isinstance(batcher, AutoBatcher)
        self._ordered = ordered
        self._timeout = timeout
        self._make_batch = make_batch
        self._faults = faults
        self._reporter = reporter
        self._done: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        self._sent: dict[Future[Any], _Sent] = {}
        self._buffer: list[Task] = []
        self._exhausted = False
        self._n_taken = 0
        self._n_completed = 0
        self._next_seq = 0
        self._ready: dict[int, list[Any]] = {}
        self._next_out = 0

    def start(self) -> None:
        """Submit the first batches (before the caller asks for a result)."""
        try:
            self._fill()
        except BaseException:
            self.abort()
            raise

    def __iter__(self) -> Iterator[Any]:
        try:
            while self._sent or self._ready:
                if self._ordered and self._next_out in self._ready:
                    yield from self._ready.pop(self._next_out)
                    self._next_out += 1
                    continue
                seq, results = self._wait_one()
                self._fill()
                if self._ordered:
                    self._ready[seq] = results
                else:
                    yield from results
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop the backend's work now (also called when the caller drops the generator)."""
        self._exhausted = True
        if self._sent:
            self._sent.clear()
            self._backend.abort_everything()

    # -- dispatching ------------------------------------------------------------------------

    def _fill(self) -> None:
        while len(self._sent) + len(self._ready) < self._max_in_flight:
            tasks = self._take()
            if not tasks:
                break
            start = self._n_taken
            self._n_taken += len(tasks)
            self._submit(self._make_batch(tasks, start), attempt=1)
        self._reporter.progress(self._n_completed, self._n_taken, self._exhausted)

    def _take(self) -> list[Task]:
        size = self._batcher.size
        if len(self._buffer) < size and not self._exhausted:
            wanted = size * self._n_jobs
            fresh = list(islice(self._tasks, wanted - len(self._buffer)))
            self._exhausted = len(self._buffer) + len(fresh) < wanted
            self._buffer.extend(fresh)
        if self._auto:
            remaining = len(self._buffer) if self._exhausted else None
            if self._total is not None:
                remaining = self._total - self._n_taken
            size = tail_size(size, remaining, self._n_jobs)
        tasks, self._buffer = self._buffer[:size], self._buffer[size:]
        return tasks

    def _submit(self, batch: Batch, attempt: int) -> None:
        seq = self._next_seq
        self._next_seq += 1
        future = self._backend.submit(batch)
        self._sent[future] = _Sent(seq, batch, self._batcher.start(), attempt)
        future.add_done_callback(self._done.put)

    # -- collecting -------------------------------------------------------------------------

    def _wait_one(self) -> tuple[int, list[Any]]:
        """Block until one batch is done; return its seq and its results (slots for failures)."""
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            wait = POLL_SECONDS
            if deadline is not None:
                wait = min(wait, max(deadline - time.monotonic(), 0.0))
            try:
                future = self._done.get(timeout=wait)
            except queue.Empty:
                self._check_stalled(deadline)
                continue
            sent = self._sent.pop(future, None)
            if sent is None:  # resubmitted or aborted meanwhile
                continue
            outcome = self._settle(future, sent)
            if outcome is not None:
                return sent.seq, outcome

    def _check_stalled(self, deadline: float | None) -> None:
        died = self._backend.check_workers()
        if died is not None:
            lost = sorted(s.batch.start for s in self._sent.values())
            raise WorkerDiedError(f"{died} while running tasks starting at {lost}") from died
        if deadline is not None and time.monotonic() >= deadline:
            msg = f"no result within timeout={self._timeout} s (Parallel(timeout=...))"
            raise TimeoutError(msg)
        self._faults.check_running(self._sent.values(), self._resubmit)

    def _settle(self, future: Future[Any], sent: _Sent) -> list[Any] | None:
        """Results of a finished batch, or None when it was handed back for another attempt."""
        try:
            result: BatchResult = future.result()
        except BaseException as exc:
            if self._faults.should_retry(exc, sent.attempt):
                self._resubmit(sent)
                return None
            raise annotate(exc, sent.batch, sent.attempt) from exc.__cause__
        size = len(sent.batch)
        if sent.attempt == 1:
            old = self._batcher.size
            self._batcher.record(size, result.elapsed)
            if self._batcher.size != old:
                self._reporter.batch_size_changed(self._batcher.size, result.elapsed)
        results = result.results
        if result.failures:
            results = self._failed(sent, result)
            if results is None:
                return None
        self._n_completed += size
        self._reporter.progress(self._n_completed, self._n_taken, self._exhausted)
        return results

    def _failed(self, sent: _Sent, result: BatchResult) -> list[Any] | None:
        failure = result.failures[0]
        exc = failure.exception
        if self._faults.should_retry(exc, sent.attempt):
            self._resubmit(sent)
            return None
        annotate(exc, sent.batch, sent.attempt, failure.offset, failure.traceback, result.pid)
        if not self._faults.collect:
            raise exc
        slots = list(result.results)
        for fail in result.failures:
            index = sent.batch.start + fail.offset
            slots[fail.offset] = TaskError(index, fail.exception, fail.traceback)
        return slots

    def _resubmit(self, sent: _Sent) -> None:
        """Run ``sent``'s batch again under the same seq (its results replace the lost ones)."""
        self._backend.recover()
        future = self._backend.submit(sent.batch)
        self._sent[future] = _Sent(sent.seq, sent.batch, self._batcher.start(), sent.attempt + 1)
        future.add_done_callback(self._done.put)
