"""A third-party process backend built on ``ProcessBackend`` gets pardo's process features by flag.

The backend below is what a library author would write: a ``concurrent.futures`` process pool
behind the four hooks. Registered under its own name, it must get worker output capture and
``task_timeout`` without pardo ever knowing its name.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import ClassVar

import pytest

from pardo import Parallel, TaskTimeoutError, delayed, register_parallel_backend
from pardo.backends._board import run_watched, start_worker
from pardo.backends._pool import ProcessBackend


class PoolExecutorBackend(ProcessBackend):
    """Batches on a stdlib ``ProcessPoolExecutor`` (spawned workers)."""

    name: ClassVar[str] = "pool-executor"
    _executor: ProcessPoolExecutor | None = None

    def open_pool(self, n_workers: int, env: dict[str, str]) -> None:
        if self._executor is None:
            import multiprocessing

            self._executor = ProcessPoolExecutor(
                n_workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=start_worker,
                initargs=(os.getpid(), None, ()),
            )

    def submit_payload(self, args: tuple[str, int, bytes]) -> Future[bytes]:
        assert self._executor is not None
        return self._executor.submit(run_watched, *args)

    def close_pool(self, kill: bool) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if kill:
            for process in list(getattr(executor, "_processes", {}).values()):
                process.kill()
        executor.shutdown(wait=True, cancel_futures=True)

    def worker_pids(self) -> list[int]:
        return list(getattr(self._executor, "_processes", None) or {})


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    from pardo.backends import _registry

    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    register_parallel_backend("pool-executor", PoolExecutorBackend)


def shout(i: int) -> int:
    print(f"task {i} printed")
    logging.getLogger("pardo_tests.third_party").warning("task %d logged", i)
    return i * 2


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_output_capture_comes_from_the_base(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="pardo_tests.third_party")
    out = Parallel(n_jobs=2, backend="pool-executor")(delayed(shout)(i) for i in range(3))
    assert out == [0, 2, 4]
    printed = capsys.readouterr().out
    assert all(f"task {i} printed" in printed for i in range(3))
    records = [r for r in caplog.records if r.name == "pardo_tests.third_party"]
    assert sorted(r.task_index for r in records) == [0, 1, 2]  # type: ignore[attr-defined]
    assert all(r.worker_pid != os.getpid() for r in records)  # type: ignore[attr-defined]


def test_task_timeout_comes_from_the_base() -> None:
    with pytest.raises(TaskTimeoutError) as info:
        Parallel(n_jobs=2, backend="pool-executor", task_timeout=1.0, batch_size=1)(
            delayed(nap)(s) for s in (0.01, 60.0)
        )
    assert "task 1" in str(info.value)
