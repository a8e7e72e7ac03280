"""A worker process dies (os._exit, segfault, SIGKILL from inside or outside) during a call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Runner = Callable[..., dict[str, Any]]

pytestmark = pytest.mark.slow

HOW = {
    "death_exit": "exit code 3",
    "death_segfault": "signal 11 (SIGSEGV",
    "death_sigkill": "signal 9 (SIGKILL",
    "death_external": "signal 9 (SIGKILL",
}


@pytest.mark.parametrize("name", sorted(HOW))
def test_death_raises_promptly_naming_task_and_exit(
    scenario: Runner, process_backend: str, name: str
) -> None:
    out = scenario(name, process_backend)
    assert out["error"] == "WorkerDiedError"
    assert {"BrokenProcessPool", "PardoError"} <= set(out["mro"])
    assert "task 2: crash(2, " in out["message"]
    assert HOW[name] in out["message"]
    assert "out-of-memory" in out["message"]  # what to check
    assert any(note.startswith("pardo: task 2: crash(2") for note in out["notes"])
    assert out["seconds"] < 10


def test_retries_rerun_the_lost_task_on_a_fresh_worker(
    scenario: Runner, process_backend: str
) -> None:
    out = scenario("death_retried", process_backend)
    assert out["error"] is None, out
    assert out["results"] == [i * i for i in range(6)]


def test_collect_fills_the_dead_task_slot_and_keeps_the_rest(
    scenario: Runner, process_backend: str
) -> None:
    out = scenario("death_collected", process_backend)
    assert out["error"] is None, out
    assert out["results"][0] == {"TaskError": 0, "type": "WorkerDiedError"}
    assert out["results"][1:] == [i * i for i in range(1, 6)]


def test_a_batch_that_kills_its_worker_is_split_to_name_the_task(
    scenario: Runner, process_backend: str
) -> None:
    out = scenario("death_batched", process_backend)
    assert out["error"] == "WorkerDiedError"
    assert "task 4: crash(4, " in out["message"]


def test_innocent_batches_restart_without_using_a_retry(
    scenario: Runner, process_backend: str
) -> None:
    out = scenario("innocents_restarted", process_backend)
    assert out["error"] is None, out
    assert out["results"] == [0, 1, 2, 3]


def test_a_death_does_not_break_a_call_running_beside_it(
    scenario: Runner, process_backend: str
) -> None:
    """loky's pool is shared by every call of the process: the other call must not fail."""
    out = scenario("death_beside_another_call", process_backend)
    assert out["error"] == "WorkerDiedError"
    assert "task 0: crash(0, " in out["message"]
    assert out["beside"]["error"] is None, out["beside"]
    assert out["beside"]["results"] == list(range(8))
