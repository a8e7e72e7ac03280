"""The collecting loop: keep work in flight, hand results back in order, stop everything on error.

Data flow of one call::

    Feed (pardo._engine._input): input iterator ──► look-ahead ──► Batch(tasks, start)
                                                                        │ backend.submit
                                                                        ▼
         caller ◄── yield per task ◄── order by batch seq ◄── SimpleQueue ◄── Future done-callback

At most ``max_in_flight`` batches are submitted and not yet handed back, so a lazy input is read
only as fast as results are consumed; how far the input itself is read is ``Feed``'s. The loop runs in the caller's thread; the only other thread
it talks to is whichever resolves the Futures, through the queue. Any exception (a task's, the
input's, a timeout, Ctrl-C or SIGTERM, ``GeneratorExit`` from a dropped generator) aborts the
backend before it propagates, so no batch keeps running behind the caller's back.

Faults (policy: ``pardo._engine._faults``): a failed task is retried alone, as a piece of its batch
(``pardo._engine._inflight`` reassembles pieces). Dead workers and ``task_timeout`` are
``pardo._engine._recovery``'s: it judges what a broken pool lost, rebuilds it and resubmits.
"""

from __future__ import annotations

import queue
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from pardo._engine._faults import FaultPolicy, annotate
from pardo._engine._inflight import InFlight, Sent, failed_already
from pardo._engine._input import Batcher, Feed
from pardo._engine._interrupt import TermGuard
from pardo._engine._recovery import Recovery
from pardo._errors import BrokenProcessPool, TaskError, TimeoutError
from pardo._task import Batch, BatchResult, Task
from pardo.backends import Backend

__all__ = ["Dispatch", "Reporter"]

#: Seconds between checks for dead workers and overdue tasks (also while results keep coming).
POLL_SECONDS = 0.1


class Reporter(Protocol):
    """What the loop tells the outside world; ``Parallel`` turns it into verbose lines and bars."""

    def progress(self, n_completed: int, n_dispatched: int, input_done: bool) -> None: ...

    def batch_size_changed(self, size: int, seconds: float) -> None: ...

    def output(self, result: BatchResult) -> None: ...


class Dispatch:
    """One call's loop. Iterate it (once) to get the results, one per task.

    ``batcher`` is the one the front chose (``pardo._engine._batching.batcher_for``); the
    backend's capabilities were checked before its ``start_call``. Nothing here re-decides.
    """

    def __init__(
        self,
        backend: Backend,
        tasks: Iterator[Task],
        *,
        n_jobs: int,
        total: int | None,
        max_in_flight: int,
        batcher: Batcher,
        ordered: bool,
        timeout: float | None,
        make_batch: Callable[[Sequence[Task], int], Batch],
        faults: FaultPolicy,
        reporter: Reporter,
        lazy: bool = True,
        screen: Callable[[list[Task]], list[Task]] | None = None,
    ) -> None:
        self._backend = backend
        self._feed = Feed(
            tasks,
            batcher=batcher,
            n_jobs=n_jobs,
            total=total,
            max_in_flight=max_in_flight,
            make_batch=make_batch,
            screen=screen,
        )
        self._max_in_flight = max(1, max_in_flight)
        self._ordered = ordered
        # Generators: results waiting to be consumed count as in flight, so input is read only
        # ahead of consumption. Lists: they do not, so one slow task never stalls dispatching.
        self._lazy = lazy
        self._timeout = timeout
        self._faults = faults
        self._reporter = reporter
        self._done: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        self._flight = InFlight(backend, make_batch, self._done)
        self._recovery = Recovery(backend, faults, self._flight)
        self._n_completed = self._next_seq = self._next_out = 0
        self._ready: dict[int, list[Any]] = {}
        self._completed: deque[tuple[int, list[Any]]] = deque()  # settled by Recovery
        self._next_poll = 0.0
        self._guard = TermGuard()

    def start(self) -> None:
        """Submit the first batches (before the caller asks for a result)."""
        self._guard.install()
        try:
            self._fill()
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> Iterator[Any]:
        for chunk in self.chunks():
            yield from chunk

    def chunks(self) -> Iterator[list[Any]]:
        """The results a batch at a time (list mode extends with them: no per-task yield)."""
        try:
            while True:
                if self._ordered and self._next_out in self._ready:
                    yield self._ready.pop(self._next_out)
                    self._next_out += 1
                    continue
                if not self._flight.sent and not self._completed:
                    self._fill()  # results handed out while _ready was full left room
                    if not self._flight.sent:
                        break
                seq, results = self._wait_one()
                self._fill()
                if self._ordered:
                    self._ready[seq] = results
                else:
                    yield results
        except BaseException:
            self.abort()
            raise
        finally:
            self._guard.restore()

    def abort(self) -> None:
        """Stop the backend's work now (also called when the caller drops the generator)."""
        self._feed.stop()
        self._completed.clear()
        if self._flight.sent or self._recovery.broken:
            self._flight.clear()
            self._recovery.broken = False
            self._backend.abort_everything()

    def close(self) -> None:
        """End of the call, however it ends: stop what still runs, put SIGTERM's handler back."""
        try:
            self.abort()
        finally:
            self._guard.restore()

    # -- dispatching ------------------------------------------------------------------------

    def _fill(self) -> None:
        sent, feed = self._flight.sent, self._feed
        while len(sent) + (len(self._ready) if self._lazy else 0) < feed.flight_limit(
            self._max_in_flight
        ):
            batch = feed.next_batch(self._n_completed)
            if batch is None:
                break
            self._next_seq += 1
            future = self._flight.submit(batch, self._next_seq - 1, 1, 0)
            if failed_already(future):
                break  # it ran inline (sequential): raise before running any more
        self._reporter.progress(self._n_completed, feed.n_taken, feed.done)

    # -- collecting -------------------------------------------------------------------------

    def _wait_one(self) -> tuple[int, list[Any]]:
        """Block until one batch's results are complete; return its seq and its results."""
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while not self._completed:
            now = time.monotonic()
            if now >= self._next_poll:
                self._poll(now)
                continue
            if deadline is not None and now >= deadline:
                msg = f"no result within timeout={self._timeout} s (Parallel(timeout=...))"
                raise TimeoutError(msg)
            wait = self._next_poll if deadline is None else min(self._next_poll, deadline)
            try:
                future = self._done.get(timeout=wait - now)
            except queue.Empty:
                continue
            sent = self._flight.sent.pop(future, None)
            if sent is not None:  # else: it was resubmitted or aborted meanwhile
                results = self._settle(future, sent)
                if results is not None:
                    return sent.seq, results
        return self._completed.popleft()

    def _poll(self, now: float) -> None:
        self._next_poll = now + POLL_SECONDS
        if self._flight.sent:
            self._finish(self._recovery.poll(now))

    def _finish(self, completed: list[tuple[int, list[Any]]]) -> None:
        """Seqs that ``Recovery`` completed (timeout markers, collected errors) go out next."""
        for seq, results in completed:
            self._counted(results)
            self._completed.append((seq, results))

    def _settle(self, future: Future[Any], sent: Sent) -> list[Any] | None:
        """Results of a finished batch, or None while some of its seq's results are missing."""
        try:
            result: BatchResult = future.result()
        except BrokenProcessPool:
            self._finish(self._recovery.recover(self._backend.check_workers(), trigger=sent))
            return None
        except BaseException as exc:
            if self._faults.should_retry(exc, sent.attempt):
                self._flight.submit(sent.batch, sent.seq, sent.attempt + 1, sent.base)
                return None
            raise annotate(exc, sent.batch, sent.attempt) from exc.__cause__
        if result.output:  # what its tasks logged or printed in a worker process
            self._reporter.output(result)
        batcher = self._feed.batcher
        old = batcher.size
        batcher.record(len(sent.batch), result.elapsed, _result_bytes(result))
        if batcher.size != old:
            self._reporter.batch_size_changed(batcher.size, result.elapsed)
        if result.failures:
            return self._failed(sent, result)
        return self._counted(self._flight.deliver(sent, result.results))

    def _failed(self, sent: Sent, result: BatchResult) -> list[Any] | None:
        """Retry the failed tasks the policy allows; raise, or collect, the others."""
        batch, values = sent.batch, list(result.results)
        retry: list[tuple[int, int, int]] = []
        for failure in result.failures:
            exc = failure.exception
            if self._faults.should_retry(exc, sent.attempt):
                retry.append((failure.offset, 1, sent.attempt + 1))
                continue
            annotate(exc, batch, sent.attempt, failure.offset, failure.traceback, result.pid)
            if not self._faults.collect:
                raise exc
            values[failure.offset] = TaskError(batch.start + failure.offset, exc, failure.traceback)
        if not retry:
            return self._counted(self._flight.deliver(sent, values))
        after = retry[0][0] + 1
        if not self._faults.collect and after < len(batch):  # the tasks it stopped before
            retry.append((after, len(batch) - after, 1))
        return self._counted(self._flight.split(sent, values, retry))

    def _counted(self, results: list[Any] | None) -> list[Any] | None:
        if results is not None:
            self._n_completed += len(results)
            self._reporter.progress(self._n_completed, self._feed.n_taken, self._feed.done)
        return results


def _result_bytes(result: BatchResult) -> int:
    """Bytes a batch's results hold: pickled size, else (threads) the first result's, times n."""
    if result.nbytes or not result.results:
        return result.nbytes
    return sys.getsizeof(result.results[0]) * len(result.results)
