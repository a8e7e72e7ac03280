"""Per-task timeouts, task errors, retries and unpicklable tasks, each in a fresh interpreter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pardo import Parallel, delayed

Runner = Callable[..., dict[str, Any]]


@pytest.mark.slow
def test_task_timeout_raise_kills_the_stuck_worker_and_names_the_task(
    scenario: Runner, process_backend: str
) -> None:
    out = scenario("timeout_raise", process_backend)
    assert out["error"] == "TaskTimeoutError"
    assert {"PardoError", "TimeoutError"} <= set(out["mro"])
    assert "task 2: sleepy(2, " in out["message"]
    assert "task_timeout=1 s" in out["message"]
    assert any(note.startswith("pardo: task 2: sleepy(2") for note in out["notes"])
    assert out["seconds"] < 10  # the task would sleep 60 s


@pytest.mark.slow
def test_task_timeout_return_marks_the_slot_and_keeps_the_rest(
    scenario: Runner, process_backend: str
) -> None:
    out = scenario("timeout_return", process_backend)
    assert out["error"] is None, out
    marker = out["results"][2]
    assert marker["TaskTimeout"] == 2
    assert marker["seconds"] >= 1
    assert out["results"][:2] + out["results"][3:] == [0, 1, 3, 4, 5]


@pytest.mark.parametrize("backend", ["threading", "sequential"])
def test_threads_refuse_task_timeout_saying_why(backend: str) -> None:
    with pytest.raises(ValueError, match="a thread cannot be stopped") as info:
        Parallel(n_jobs=2, backend=backend, task_timeout=1)(delayed(abs)(i) for i in range(3))
    assert "task_timeout=1" in str(info.value)


@pytest.mark.slow
def test_task_error_raises_its_type_at_once_naming_the_task(scenario: Runner, backend: str) -> None:
    out = scenario("task_error", backend)
    assert out["error"] == "ValueError"
    assert out["message"] == "task 3 fails"
    assert out["cause"] == "RemoteTraceback"
    assert any(note.startswith("pardo: task 0: fails_or_sleeps(3") for note in out["notes"])
    assert out["seconds"] < 1.8  # task 1 sleeps 2 s (threads) or 30 s: it was not waited for


@pytest.mark.slow
def test_retries_rerun_a_failed_task_until_it_succeeds(scenario: Runner, backend: str) -> None:
    out = scenario("retry_enough", backend)
    assert out["error"] is None, out
    assert out["results"] == [0, 1, 2, 3]


@pytest.mark.slow
def test_the_final_error_notes_the_attempt_count(scenario: Runner, backend: str) -> None:
    out = scenario("retry_too_few", backend)
    assert out["error"] == "ValueError"
    assert out["message"] == "flaky run 1"
    assert any(note.endswith("failed on attempt 2") for note in out["notes"])


@pytest.mark.slow
def test_unpicklable_argument_names_the_task_and_type(
    scenario: Runner, process_backend: str
) -> None:
    out = scenario("unpicklable_argument", process_backend)
    assert out["error"] == "TaskPicklingError"
    assert "task 1 (id)" in out["message"]
    assert "_thread.lock" in out["message"]


@pytest.mark.slow
def test_unpicklable_result_names_the_task_and_type(scenario: Runner, process_backend: str) -> None:
    out = scenario("unpicklable_result", process_backend)
    assert out["error"] == "TaskPicklingError"
    assert "has type lock" in out["message"]
    assert any(note.startswith("pardo: task ") for note in out["notes"])
