"""The fault machinery's parts, in-process: policy verdicts, the status board, the SIGTERM guard,
and the dispatch loop's recovery driven by a fake process pool (deaths on demand, no processes).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar

import pytest

from pardo import Parallel, TaskError, TaskTimeout, TaskTimeoutError, WorkerDiedError, delayed
from pardo._engine._faults import (
    INNOCENT,
    FaultPolicy,
    Loss,
    Verdict,
    VerdictKind,
    describe_exit,
    losses,
    overdue,
)
from pardo._engine._interrupt import TermGuard
from pardo._engine._recovery import MAX_UNBLAMED
from pardo._task import Batch
from pardo.backends import Backend
from pardo.backends._base import WorkerDeath
from pardo.backends._board import Board, run_watched
from pardo.backends._process import decode_result, encode_batch


def batch(start: int, size: int = 1) -> Batch:
    return Batch([(abs, (i,), {}) for i in range(start, start + size)], start, {})


# -- policy -------------------------------------------------------------------------------------


class TestJudge:
    """``FaultPolicy.judge``: what happens to a batch lost with the pool."""

    def test_a_batch_no_dead_worker_held_restarts(self) -> None:
        assert FaultPolicy().judge(batch(0, 3), 1, INNOCENT).kind is VerdictKind.RESTART

    def test_a_guilty_batch_of_several_tasks_is_split(self) -> None:
        assert FaultPolicy().judge(batch(0, 3), 1, Loss(7, -9, None)).kind is VerdictKind.SPLIT

    def test_a_guilty_task_is_retried_while_attempts_remain(self) -> None:
        policy = FaultPolicy(retries=1)
        assert policy.judge(batch(4), 1, Loss(7, -11, None)).kind is VerdictKind.RETRY
        verdict = policy.judge(batch(4), 2, Loss(7, -11, None))
        assert verdict.kind is VerdictKind.RAISE
        assert isinstance(verdict.value, WorkerDiedError)
        assert "failed on attempt 2" in getattr(verdict.value, "__notes__", [""])[0]

    def test_a_guilty_task_raises_naming_itself_the_exit_and_what_to_check(self) -> None:
        verdict = FaultPolicy().judge(batch(4), 1, Loss(7, 3, None))
        assert verdict.kind is VerdictKind.RAISE
        message = str(verdict.value)
        assert "task 4: abs(4)" in message
        assert "exit code 3" in message
        assert "out-of-memory" in message
        assert getattr(verdict.value, "__notes__", None) == [
            "pardo: task 4: abs(4), in worker pid 7"
        ]

    def test_collect_fills_the_slot_with_a_task_error(self) -> None:
        verdict = FaultPolicy(collect=True).judge(batch(4), 1, Loss(7, -9, None))
        assert verdict.kind is VerdictKind.FILL
        [slot] = verdict.value
        assert isinstance(slot, TaskError)
        assert slot.index == 4
        assert isinstance(slot.exception, WorkerDiedError)

    def test_a_timed_out_task_raises_or_returns_a_marker(self) -> None:
        raised = FaultPolicy(task_timeout=2).judge(batch(5), 1, Loss(7, -9, 2.5))
        assert raised.kind is VerdictKind.RAISE
        assert isinstance(raised.value, TaskTimeoutError)
        assert "ran 2.5 s, past task_timeout=2 s" in str(raised.value)
        returned = FaultPolicy(task_timeout=2, timeout_returns=True).judge(
            batch(5), 1, Loss(7, -9, 2.5)
        )
        assert returned == Verdict(VerdictKind.FILL, [TaskTimeout(5, 2.5)])

    def test_timeouts_are_retried_only_when_retry_on_names_them(self) -> None:
        loss = Loss(7, -9, 2.5)
        assert (
            FaultPolicy(retries=1, task_timeout=2).judge(batch(5), 1, loss).kind
            is VerdictKind.RAISE
        )
        policy = FaultPolicy(retries=1, retry_on=(TaskTimeoutError,), task_timeout=2)
        assert policy.judge(batch(5), 1, loss).kind is VerdictKind.RETRY

    def test_interrupts_are_never_retried(self) -> None:
        policy = FaultPolicy(retries=5, retry_on=(BaseException,))
        assert not policy.should_retry(KeyboardInterrupt(), 1)
        assert not policy.should_retry(SystemExit(1), 1)
        assert policy.should_retry(ValueError(), 1)


def test_exit_codes_read_as_words() -> None:
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(-9).startswith("killed by signal 9 (SIGKILL, often the out-of-memory")
    assert describe_exit(-11) == "killed by signal 11 (SIGSEGV, a crash in native code)"
    assert describe_exit(None) == "exit status unknown"


def test_losses_blame_the_batches_dead_workers_held() -> None:
    running = {10: (4, 100.0), 11: (8, 101.0)}
    deaths = [WorkerDeath(11, -9), WorkerDeath(12, 1)]  # 12 held nothing
    assert losses(running, deaths, {8: 3.0}) == {8: Loss(11, -9, 3.0)}


def test_overdue_finds_tasks_past_the_limit_among_those_in_flight() -> None:
    running = {10: (4, 100.0), 11: (8, 104.0), 12: (9, 90.0)}
    assert overdue(running, {4, 8}, now=106.0, limit=5.0) == {10: (4, 6.0)}


def test_threads_refuse_task_timeout() -> None:
    with pytest.raises(ValueError, match="'threading' backend runs tasks in threads"):
        Parallel(n_jobs=2, backend="threading", task_timeout=1)(delayed(abs)(1) for _ in "ab")


# -- status board ---------------------------------------------------------------------------------


class TestBoard:
    """Workers note the batch they run; the parent reads who runs what since when."""

    def test_running_batches_are_listed_finished_ones_are_not(self) -> None:
        board = Board()
        try:
            before = time.monotonic()
            # The task (a copy of board, unpickled "in the worker") reads the board as it runs.
            raw = run_watched(
                board.path, 12, encode_batch(Batch([(board.running, (), {})], 12, {}))
            )
            [seen] = decode_result(raw).results
            [(pid, (start, since))] = seen.items()
            assert (pid, start) == (os.getpid(), 12)
            assert before <= since <= time.monotonic()
            assert board.running() == {}  # noted idle once the batch ended
        finally:
            board.close()
        assert not os.path.exists(board.path)

    def test_reset_forgets_records_of_replaced_workers(self) -> None:
        board = Board()
        try:
            with open(os.path.join(board.path, "4242"), "wb") as file:
                file.write(f"R{7:>22d} {time.monotonic():>23.6f}\n".encode())
            [(pid, (start, since))] = board.running().items()
            assert (pid, start) == (4242, 7)
            assert abs(since - time.monotonic()) < 5
            board.reset()
            assert board.running() == {}
        finally:
            board.close()

    def test_a_worker_of_an_aborted_call_writes_nowhere(self) -> None:
        board = Board()
        board.close()
        payload = encode_batch(Batch([(abs, (-3,), {})], 0, {}))
        assert decode_result(run_watched(board.path, 0, payload)).results == [3]
        assert not os.path.exists(board.path)


# -- SIGTERM guard ------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="no SIGTERM")
class TestTermGuard:
    """While a call runs in the main thread, SIGTERM raises KeyboardInterrupt."""

    def test_sigterm_raises_keyboard_interrupt_then_the_default_returns(self) -> None:
        guard = TermGuard()
        guard.install()
        try:
            with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # interrupted at once
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        finally:
            guard.restore()

    def test_restore_puts_the_default_back(self) -> None:
        guard = TermGuard()
        guard.install()
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        guard.restore()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    def test_a_program_handler_is_left_alone(self) -> None:
        def mine(signum: int, frame: Any) -> None:
            pass

        previous = signal.signal(signal.SIGTERM, mine)
        try:
            guard = TermGuard()
            guard.install()
            assert signal.getsignal(signal.SIGTERM) is mine
            guard.restore()
            assert signal.getsignal(signal.SIGTERM) is mine
        finally:
            signal.signal(signal.SIGTERM, previous)

    def test_nothing_is_installed_outside_the_main_thread(self) -> None:
        guard = TermGuard()
        thread = threading.Thread(target=guard.install)
        thread.start()
        thread.join()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


# -- recovery, with a fake pool -----------------------------------------------------------------


class FakePool(Backend):
    """Runs batches inline; a batch holding a task of ``kills`` "kills its worker" that often."""

    name: ClassVar[str] = "fake"
    supports_task_timeout: ClassVar[bool] = True

    def __init__(self, kills: dict[int, int], blame: bool = True) -> None:
        super().__init__()
        self.kills = dict(kills)
        self.blame = blame
        self.submitted: list[tuple[int, int]] = []
        self.recovered = 0
        self._deaths: list[WorkerDeath] = []
        self._running: dict[int, tuple[int, float]] = {}

    def submit(self, batch: Any) -> Future[Any]:
        self.submitted.append((batch.start, len(batch)))
        future: Future[Any] = Future()
        held = [i for i in range(batch.start, batch.start + len(batch)) if self.kills.get(i)]
        if held:
            self.kills[held[0]] -= 1
            pid = 1000 + len(self.submitted)
            if self.blame:
                self._running[pid] = (batch.start, time.monotonic())
                self._deaths.append(WorkerDeath(pid, -9))
            future.set_exception(BrokenProcessPool("a worker died"))
        else:
            future.set_result(batch())
        return future

    def check_workers(self) -> list[WorkerDeath]:
        return list(self._deaths)

    def running(self) -> dict[int, tuple[int, float]]:
        return dict(self._running)

    def recover(self) -> None:
        self.recovered += 1
        self._deaths, self._running = [], {}


def test_a_batch_that_killed_its_worker_is_split_and_the_task_named() -> None:
    pool = FakePool({4: 2})
    with pytest.raises(WorkerDiedError, match=r"task 4: abs\(4\)"):
        Parallel(n_jobs=2, backend=pool, batch_size=3)(delayed(abs)(i) for i in range(9))
    assert (3, 3) in pool.submitted  # the whole batch first
    assert (4, 1) in pool.submitted  # then the task alone, which killed it again


def test_a_death_the_split_does_not_repeat_costs_nothing() -> None:
    pool = FakePool({4: 1})
    out = Parallel(n_jobs=2, backend=pool, batch_size=3)(delayed(abs)(i) for i in range(9))
    assert out == list(range(9))
    assert [s for s in pool.submitted if s[1] == 1] == [(3, 1), (4, 1), (5, 1)]


def test_retries_rerun_the_task_and_collect_keeps_the_rest() -> None:
    assert Parallel(n_jobs=2, backend=FakePool({2: 1}), batch_size=1, retries=1)(
        delayed(abs)(i) for i in range(4)
    ) == [0, 1, 2, 3]
    out = Parallel(n_jobs=2, backend=FakePool({2: 9}), batch_size=1, on_error="collect")(
        delayed(abs)(i) for i in range(4)
    )
    assert out[:2] + out[3:] == [0, 1, 3]
    assert isinstance(out[2], TaskError)
    assert isinstance(out[2].exception, WorkerDiedError)


def test_a_pool_that_keeps_breaking_with_no_one_to_blame_gives_up() -> None:
    pool = FakePool({0: 99}, blame=False)
    with pytest.raises(WorkerDiedError, match="keeps breaking"):
        Parallel(n_jobs=2, backend=pool, batch_size=1)(delayed(abs)(i) for i in range(2))
    assert pool.recovered == MAX_UNBLAMED


def test_a_task_retried_for_its_exception_runs_alone_the_rest_keeps_its_results() -> None:
    runs: list[int] = []

    def flaky(i: int) -> int:
        runs.append(i)
        if i == 2 and runs.count(2) == 1:
            raise ValueError("first run fails")
        return i

    out = Parallel(n_jobs=1, batch_size=5, retries=1, retry_on=(ValueError,))(
        delayed(flaky)(i) for i in range(5)
    )
    assert out == [0, 1, 2, 3, 4]
    assert sorted(runs) == [0, 1, 2, 2, 3, 4]  # tasks 0 and 1 were not run again
