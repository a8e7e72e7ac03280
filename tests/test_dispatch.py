"""The collecting loop and its input side, driven by a fake backend whose Futures the test completes.

No processes, no threads: ``HandBackend.submit`` returns a pending Future and the test decides
when and how it resolves (the batch's real result, an exception, a pool breakage), so ordering,
retries, aborts and the pre_dispatch bound are checked step by step.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from pardo._engine._batching import AutoBatcher, FixedBatcher, batcher_for
from pardo._engine._dispatch import Dispatch
from pardo._engine._faults import FaultPolicy
from pardo._task import Batch, BatchResult, Task, delayed
from pardo.backends import Backend


class HandBackend(Backend):
    """Records each submitted batch with its Future; nothing runs until the test says so."""

    name = "hand"

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[tuple[Batch, Future[Any]]] = []
        self.submitted: list[Batch] = []
        self.aborted = 0
        #: Resolve each Future as it is submitted (once the test has checked what it wanted).
        self.auto = False
        #: Exceptions the next submitted batches fail with, in order (then ``auto`` applies).
        self.failures: list[BaseException] = []

    def submit(self, batch: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.submitted.append(batch)
        self.pending.append((batch, future))
        if self.failures:
            self.fail(len(self.pending) - 1, self.failures.pop(0))
        elif self.auto:
            self.run(len(self.pending) - 1)
        return future

    def drain(self) -> None:
        """Run what is pending, and every batch submitted from now on."""
        self.auto = True
        while self.pending:
            self.run(0)

    def abort_everything(self) -> None:
        self.aborted += 1
        for _, future in self.pending:
            future.cancel()
        self.pending.clear()

    def run(self, index: int = 0) -> Batch:
        """Run the ``index``-th pending batch for real and resolve its Future."""
        batch, future = self.pending.pop(index)
        future.set_result(batch())
        return batch

    def fail(self, index: int, exc: BaseException) -> Batch:
        batch, future = self.pending.pop(index)
        future.set_exception(exc)
        return batch


class Silent:
    def progress(self, n_completed: int, n_dispatched: int, input_done: bool) -> None:
        pass

    def batch_size_changed(self, size: int, seconds: float) -> None:
        pass

    def output(self, result: BatchResult) -> None:
        pass


class Recorded:
    """An input generator that records how many items were read."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.pulled = 0

    def __iter__(self) -> Iterator[Task]:
        for i in range(self.n):
            self.pulled += 1
            yield delayed(square)(i)


def square(x: int) -> int:
    return x * x


def boom(x: int) -> int:
    raise ValueError(f"bad {x}")


def dispatch(
    backend: Backend,
    tasks: Any,
    *,
    batch_size: int | str = 1,
    max_in_flight: int = 4,
    ordered: bool = True,
    lazy: bool = True,
    faults: FaultPolicy | None = None,
) -> Dispatch:
    faults = faults or FaultPolicy()
    loop = Dispatch(
        backend,
        iter(tasks),
        n_jobs=2,
        total=len(tasks) if hasattr(tasks, "__len__") else None,
        max_in_flight=max_in_flight,
        batcher=batcher_for(batch_size, 0.5, faults.task_timeout),
        ordered=ordered,
        timeout=None,
        make_batch=lambda tasks, start: Batch(tasks, start, {}, faults.collect),
        faults=faults,
        reporter=Silent(),
        lazy=lazy,
    )
    loop.start()
    return loop


def test_results_come_back_in_input_order_whatever_order_batches_finish() -> None:
    backend = HandBackend()
    loop = dispatch(backend, [delayed(square)(i) for i in range(4)])
    assert [b.start for b, _ in backend.pending] == [0, 1, 2, 3]
    out = iter(loop)
    for index in (3, 2, 1, 0):  # the last batch first
        backend.run(index)
    assert list(out) == [0, 1, 4, 9]


def test_unordered_mode_yields_in_completion_order() -> None:
    backend = HandBackend()
    loop = dispatch(backend, [delayed(square)(i) for i in range(3)], ordered=False)
    backend.run(2)
    chunks = loop.chunks()
    assert next(chunks) == [4]
    backend.run(0)
    backend.run(0)
    assert list(chunks) == [[0], [1]]


def test_no_more_than_max_in_flight_batches_are_submitted() -> None:
    backend = HandBackend()
    loop = dispatch(backend, [delayed(square)(i) for i in range(10)], max_in_flight=3)
    assert len(backend.pending) == 3
    out = iter(loop)
    backend.run(0)
    assert next(out) == 0
    assert len(backend.pending) == 3  # one finished, one more went out
    backend.drain()
    assert list(out) == [i * i for i in range(1, 10)]


def test_lazy_results_not_yet_consumed_count_as_in_flight() -> None:
    backend = HandBackend()
    loop = dispatch(backend, [delayed(square)(i) for i in range(10)], max_in_flight=2)
    out = iter(loop)
    backend.run(1)  # seq 1 is ready but cannot be handed out before seq 0
    backend.run(0)
    assert next(out) == 0
    assert next(out) == 1
    assert len(backend.pending) <= 2


def test_a_failed_task_is_retried_when_the_policy_allows_it() -> None:
    backend = HandBackend()
    faults = FaultPolicy(retries=1, retry_on=(ValueError,))
    backend.failures.append(ValueError("flaky"))
    backend.auto = True
    loop = dispatch(backend, [delayed(square)(2)], faults=faults)
    assert list(loop) == [4]
    first, again = backend.submitted
    assert list(again.tasks) == list(first.tasks)


def test_a_failure_past_the_retries_raises_and_aborts() -> None:
    backend = HandBackend()
    faults = FaultPolicy(retries=1, retry_on=(ValueError,))
    backend.failures += [ValueError("flaky"), ValueError("still")]
    loop = dispatch(backend, [delayed(square)(2), delayed(square)(3)], faults=faults)
    with pytest.raises(ValueError, match="still"):
        list(loop)
    # the batch that failed at once and its retry; the second task never went out
    assert [list(b.tasks) for b in backend.submitted] == [[delayed(square)(2)]] * 2


def test_a_task_error_aborts_the_backend_and_names_the_task() -> None:
    backend = HandBackend()
    tasks = [delayed(square)(0), delayed(boom)(1), delayed(square)(2), delayed(square)(3)]
    loop = dispatch(backend, tasks)
    out = iter(loop)
    backend.run(1)  # boom(1): its BatchResult carries the failure
    with pytest.raises(ValueError, match="bad 1") as info:
        list(out)
    assert backend.aborted == 1
    assert any("task 1: boom(1)" in note for note in getattr(info.value, "__notes__", []))


def test_collect_mode_keeps_going_and_fills_the_slot() -> None:
    backend = HandBackend()
    tasks = [delayed(square)(0), delayed(boom)(1), delayed(square)(2)]
    loop = dispatch(backend, tasks, faults=FaultPolicy(collect=True))
    backend.drain()
    results = list(loop)
    assert results[0] == 0 and results[2] == 4
    assert results[1].index == 1 and isinstance(results[1].exception, ValueError)
    assert backend.aborted == 0


def test_dropping_the_generator_aborts_what_is_in_flight() -> None:
    backend = HandBackend()
    loop = dispatch(backend, Recorded(1_000))
    chunks = loop.chunks()
    backend.run(0)
    assert next(chunks) == [0]
    chunks.close()
    assert backend.aborted == 1
    assert backend.pending == []


def test_an_exception_from_the_input_aborts_and_propagates() -> None:
    def broken() -> Iterator[Task]:
        yield delayed(square)(0)
        yield delayed(square)(1)
        raise KeyError("input broke")

    backend = HandBackend()
    with pytest.raises(KeyError, match="input broke"):
        dispatch(backend, broken())  # reading ahead hits the error with batches in flight
    assert backend.aborted == 1


def test_the_handed_in_batcher_is_the_one_used() -> None:
    backend = HandBackend()
    loop = dispatch(backend, [delayed(square)(i) for i in range(12)], batch_size=3)
    assert [len(b) for b, _ in backend.pending] == [3, 3, 3, 3]
    backend.drain()
    assert list(loop) == [i * i for i in range(12)]


def test_batcher_for_picks_once_and_task_timeout_means_one_task_per_batch() -> None:
    assert isinstance(batcher_for("auto", 0.5, None), AutoBatcher)
    fixed = batcher_for(7, 0.5, None)
    assert isinstance(fixed, FixedBatcher) and fixed.size == 7
    one = batcher_for("auto", 0.5, 3.0)
    assert isinstance(one, FixedBatcher) and one.size == 1


def test_batch_replace_changes_only_the_named_fields() -> None:
    batch = Batch([delayed(square)(1)], 5, {"n_jobs": 1}, keep_going=True)
    other = batch.replace(tasks=[delayed(square)(2)])
    assert other.start == 5 and other.nested == {"n_jobs": 1} and other.keep_going
    assert other().results == [4]
    assert batch().results == [1]
