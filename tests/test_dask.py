"""The dask backend, on a real LocalCluster: 2 worker processes of 1 thread each, on 127.0.0.1.

The cluster starts once per session (``conftest.dask_client``, also the one the ``backend``
fixture gives the dask backend); its worker pids are registered in ``conftest.KEPT_PIDS`` so the
per-test leak check accepts them. After each test that uses it, ``cluster_is_clean`` waits for both workers (a killed one is restarted by its nanny) and checks
that the scheduler holds none of our tasks or scattered data any more.
"""

from __future__ import annotations

import gc
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _polling import wait_until
from conftest import register_dask_workers

from pardo import (
    Parallel,
    RemoteTraceback,
    TaskPicklingError,
    WorkerDiedError,
    delayed,
    effective_n_jobs,
    parallel_config,
)
from pardo.backends import CallSettings, make_backend

distributed = pytest.importorskip("distributed")


def _wait_for(condition: Any, seconds: float = 30.0) -> bool:
    return wait_until(condition, seconds)


def _scheduler_task_count(dask_scheduler: Any) -> int:
    return len(dask_scheduler.tasks)


def _scheduler_tasks(dask_scheduler: Any) -> list[str]:
    return [f"{ts.key}: {ts.state}" for ts in dask_scheduler.tasks.values()]


@pytest.fixture(autouse=True)
def cluster_is_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test on the cluster: workers back to 2, no task or data of ours left on it."""
    environ = dict(os.environ)
    yield
    if "dask_client" not in request.fixturenames:
        return
    client = request.getfixturevalue("dask_client")
    register_dask_workers(client)
    gc.collect()  # an exception caught in the test may hold dask Futures in a reference cycle
    clean = _wait_for(lambda: client.run_on_scheduler(_scheduler_task_count) == 0, 10)
    assert clean, f"left on the scheduler: {client.run_on_scheduler(_scheduler_tasks)}"
    if os.environ != environ:  # a restarted nanny writes PYTHONHASHSEED here again
        os.environ.clear()
        os.environ.update(environ)


# -- task functions (run on the workers) ----------------------------------------------------------


def square(x: int) -> int:
    return x * x


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"boom at {x}")
    return x


def held_by_worker(array: np.ndarray) -> bool:
    """True when ``array`` is the very object in the worker's data store (it was scattered)."""
    data = distributed.get_worker().data
    return any(value is array for value in data.values())


def die_once(x: int, marker: str) -> int:
    if x == 1 and not os.path.exists(marker):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def flaky(x: int, marker: str) -> int:
    if x == 2 and not os.path.exists(marker):
        Path(marker).touch()
        raise OSError("flaky")
    return x


def gated(x: int, folder: str, raise_first: bool) -> int:
    """Record the start, then wait for the file "go" (or fail at once, for task 0)."""
    Path(folder, f"started-{x}").touch()
    if x == 0 and raise_first:
        raise ValueError("first task fails")
    if x > 0:
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(folder, "go")) and time.monotonic() < deadline:
            time.sleep(0.01)
    return x


def inner_sum(n: int) -> tuple[int, str]:
    from pardo._config import get_config

    values = Parallel()(delayed(square)(i) for i in range(n))
    return sum(values), str(get_config().get("backend"))


_THREAD = threading.local()


def init_thread(folder: str, token: str) -> None:
    with open(os.path.join(folder, f"{os.getpid()}-{threading.get_ident()}"), "x"):
        pass
    _THREAD.token = token


def read_token() -> tuple[Any, str]:
    return getattr(_THREAD, "token", None), f"{os.getpid()}-{threading.get_ident()}"


def noop() -> None:
    return None


# -- construction, without a cluster --------------------------------------------------------------


def test_missing_dask_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=re.escape('pip install "pardo[dask]"')):
        make_backend("dask")


def test_unknown_parameter_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="bogus"):
        make_backend("dask", {"bogus": 1})
    with pytest.raises(TypeError, match=r"distributed\.Client"):
        make_backend("dask", {"client": "tcp://127.0.0.1:8786"})


def test_without_a_client_the_error_says_how_to_make_one(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_client() -> None:
        raise ValueError("No global client found and no address provided")

    monkeypatch.setattr(distributed, "get_client", no_client)
    with pytest.raises(RuntimeError, match=r"Client\(\)"):
        make_backend("dask").effective_n_jobs(-1)


# -- behaviour on the cluster ---------------------------------------------------------------------


def test_results_keep_input_order(dask_client: Any) -> None:
    with parallel_config(backend="dask"):
        out = Parallel(n_jobs=-1, batch_size=3)(delayed(square)(i) for i in range(50))
    assert out == [i * i for i in range(50)]


@pytest.mark.parametrize("return_as", ["generator", "generator_unordered"])
def test_generators(dask_client: Any, return_as: str) -> None:
    gen = Parallel(n_jobs=2, backend="dask", return_as=return_as, batch_size=2)(
        delayed(square)(i) for i in range(20)
    )
    assert not isinstance(gen, list)
    out = list(gen)
    if return_as == "generator":
        assert out == [i * i for i in range(20)]
    else:
        assert sorted(out) == [i * i for i in range(20)]


def test_n_jobs_minus_one_is_every_cluster_thread(dask_client: Any) -> None:
    with parallel_config(backend="dask"):
        assert effective_n_jobs(-1) == 2
        assert effective_n_jobs(-2) == 1
    assert make_backend("dask").configure(-1, CallSettings()) == 2
    assert make_backend("dask", {"client": dask_client}).effective_n_jobs(5) == 5


@pytest.mark.slow
def test_empty_cluster_error_says_how_to_add_workers(dask_client: Any) -> None:
    empty = distributed.LocalCluster(
        n_workers=0, processes=True, host="127.0.0.1", dashboard_address=":0"
    )
    with empty, distributed.Client(empty, set_as_default=False) as client:
        backend = make_backend("dask", {"client": client, "wait_for_workers_timeout": 0.2})
        with pytest.raises(RuntimeError, match=r"dask worker tcp://127\.0\.0\.1"):
            backend.effective_n_jobs(-1)


def test_task_error_keeps_its_type_and_remote_traceback(dask_client: Any) -> None:
    with pytest.raises(ValueError, match="boom at 3") as info:
        Parallel(n_jobs=2, backend="dask")(delayed(fail_on)(i, 3) for i in range(6))
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "fail_on" in cause.tb
    assert any("task 3" in note for note in getattr(info.value, "__notes__", []))


def test_unpicklable_argument_names_the_task(dask_client: Any) -> None:
    with pytest.raises(TaskPicklingError, match="task 0"):
        Parallel(n_jobs=2, backend="dask")([delayed(id)(threading.Lock())])


@pytest.mark.slow
def test_large_array_is_scattered_once_for_all_tasks(
    dask_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    array = np.ones(100 * 2**20 // 8)  # 100 MB
    scattered = []
    scatter = dask_client.scatter
    monkeypatch.setattr(
        dask_client, "scatter", lambda data, **kw: scattered.append(data) or scatter(data, **kw)
    )
    out = Parallel(n_jobs=2, backend="dask", batch_size=1)(
        delayed(held_by_worker)(array) for _ in range(12)
    )
    assert out == [True] * 12  # every task got the worker's stored copy, none a fresh one
    assert len(scattered) == 1 and scattered[0][0] is array


def test_small_distinct_arguments_travel_inline(
    dask_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("small arguments must not be scattered")

    monkeypatch.setattr(dask_client, "scatter", refuse)
    out = Parallel(n_jobs=2, backend="dask")(delayed(len)(np.ones(100)) for _ in range(10))
    assert out == [100] * 10


def test_explicit_scatter_list_is_sent_once(dask_client: Any) -> None:
    table = np.arange(1000)  # below the automatic threshold
    with parallel_config(backend="dask", scatter=[table]), Parallel(n_jobs=2, batch_size=1) as p:
        first = p(delayed(held_by_worker)(table) for _ in range(4))
        second = p(delayed(held_by_worker)(table) for _ in range(4))
    assert first == second == [True] * 4


@pytest.mark.slow
def test_dead_worker_batch_is_retried(dask_client: Any, tmp_path: Path) -> None:
    def allowed_failures(dask_scheduler: Any, value: int) -> int:
        old, dask_scheduler.allowed_failures = dask_scheduler.allowed_failures, value
        return int(old)

    # dask itself reruns a task whose worker died (allowed-failures, default 3); with 0, the
    # first death reaches pardo, so this checks Parallel(retries=).
    old = dask_client.run_on_scheduler(allowed_failures, value=0)
    try:
        marker = str(tmp_path / "died")
        out = Parallel(n_jobs=2, backend="dask", batch_size=1, retries=1)(
            delayed(die_once)(i, marker) for i in range(4)
        )
        assert out == [0, 1, 2, 3] and os.path.exists(marker)
        register_dask_workers(dask_client)
        with pytest.raises(WorkerDiedError, match="died"):
            Parallel(n_jobs=2, backend="dask", batch_size=1)(
                delayed(die_once)(i, str(tmp_path / "again")) for i in range(4)
            )
    finally:
        dask_client.run_on_scheduler(allowed_failures, value=old)


def test_dask_retries_rerun_a_failing_task(dask_client: Any, tmp_path: Path) -> None:
    with parallel_config(backend="dask", retries=1):
        out = Parallel(n_jobs=2)(delayed(flaky)(i, str(tmp_path / "m")) for i in range(4))
    assert out == [0, 1, 2, 3]
    with pytest.raises(OSError, match="flaky"):
        Parallel(n_jobs=2, backend="dask")(delayed(flaky)(i, str(tmp_path / "n")) for i in range(4))


def _settle_workers(client: Any) -> None:
    """Return once each worker has run a fresh task: whatever was queued before ran first."""
    for address in client.nthreads():
        client.submit(noop, workers=[address], pure=False).result()


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["error", "dropped_generator", "ctrl_c"])
def test_ending_a_call_early_cancels_queued_batches(
    dask_client: Any, tmp_path: Path, ending: str
) -> None:
    folder = str(tmp_path)

    def tasks() -> Iterator[Any]:
        for i in range(8):
            if ending == "ctrl_c" and i == 3:
                raise KeyboardInterrupt
            yield delayed(gated)(i, folder, ending == "error")

    parallel = Parallel(n_jobs=2, backend="dask", batch_size=1, return_as="generator")
    if ending == "error":
        with pytest.raises(ValueError, match="first task fails"):
            list(parallel(tasks()))
    elif ending == "ctrl_c":
        with pytest.raises(KeyboardInterrupt):
            parallel(tasks())
    else:
        gen = parallel(tasks())
        assert next(gen) == 0
        gen.close()
    # Only the batches that were running (one per worker thread) may have started; the queued
    # ones were cancelled. Open the gate, let the running ones end, and look again.
    assert _wait_for(lambda: dask_client.run_on_scheduler(_scheduler_task_count) == 0, 10)
    Path(folder, "go").touch()
    _settle_workers(dask_client)
    started = sorted(p.name for p in tmp_path.glob("started-*"))
    assert len(started) <= 3, started


@pytest.mark.timeout(60)
def test_nested_parallel_does_not_deadlock(dask_client: Any) -> None:
    # Two outer tasks hold both single-thread workers while their inner calls need threads.
    out = Parallel(n_jobs=2, backend="dask", batch_size=1)(delayed(inner_sum)(4) for _ in range(2))
    assert out == [(14, "dask"), (14, "dask")]


def test_initializer_runs_once_in_each_worker_thread(dask_client: Any, tmp_path: Path) -> None:
    token = f"token-{tmp_path.name}"
    init = {"initializer": init_thread, "initargs": (str(tmp_path), token)}
    with Parallel(n_jobs=2, backend="dask", batch_size=1, **init) as parallel:
        first = parallel(delayed(read_token)() for _ in range(6))
        second = parallel(delayed(read_token)() for _ in range(6))
    assert {seen for seen, _ in first + second} == {token}  # thread-local state set by it
    # It ran in the threads that ran tasks, once each ("x" would fail a second time), across calls.
    assert {where for _, where in first + second} == set(os.listdir(tmp_path))


def test_scheduler_address_opens_and_closes_its_own_client(dask_client: Any) -> None:
    def n_clients(dask_scheduler: Any) -> int:
        return len(dask_scheduler.clients)

    before = dask_client.run_on_scheduler(n_clients)
    address = dask_client.scheduler.address
    with parallel_config(backend="dask", scheduler_address=address):
        assert Parallel(n_jobs=2)(delayed(square)(i) for i in range(5)) == [0, 1, 4, 9, 16]
    assert _wait_for(lambda: dask_client.run_on_scheduler(n_clients) == before, 10)


def _last_done_line(text: str) -> str:
    return [re.sub(r"\|.*", "", line) for line in text.splitlines() if "Done" in line][-1]


def test_verbose_and_progress_report_as_locally(
    dask_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs: dict[str, str] = {}
    progress: dict[str, list[tuple[int, int | None]]] = {"threading": [], "dask": []}
    for backend, seen in progress.items():

        def record(done: int, total: int | None, seen: list[Any] = seen) -> None:
            seen.append((done, total))

        out = Parallel(n_jobs=2, backend=backend, verbose=10, progress=record)(
            delayed(square)(i) for i in range(10)
        )
        assert out == [i * i for i in range(10)]
        captured = capsys.readouterr()
        outputs[backend] = captured.out + captured.err
    assert "Using backend" in outputs["dask"]
    assert _last_done_line(outputs["dask"]) == _last_done_line(outputs["threading"])
    assert progress["dask"][-1] == progress["threading"][-1] == (10, 10)


def _print_and_log(i: int) -> int:
    import logging

    print(f"dask task {i} says hi")
    logging.getLogger("pardo_tests.dask").warning("dask record %d", i)
    return i


def test_worker_prints_and_log_records_reach_the_caller(
    dask_client: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """What tasks print or log on dask workers arrives in the caller's streams and handlers."""
    caplog.set_level("WARNING", logger="pardo_tests.dask")
    with parallel_config(backend="dask"):
        assert Parallel(n_jobs=2)(delayed(_print_and_log)(i) for i in range(4)) == [0, 1, 2, 3]
    out = capsys.readouterr().out
    for i in range(4):
        assert f"dask task {i} says hi" in out
    records = [r for r in caplog.records if r.name == "pardo_tests.dask"]
    assert sorted(r.getMessage() for r in records) == [f"dask record {i}" for i in range(4)]
    assert sorted(r.task_index for r in records) == [0, 1, 2, 3]  # type: ignore[attr-defined]
    worker_pids = set(dask_client.run(os.getpid).values())
    assert {r.worker_pid for r in records} <= worker_pids  # type: ignore[attr-defined]


def _print_sum(array: np.ndarray) -> float:
    print(f"sum is {float(array.sum())}")
    return float(array.sum())


def test_prints_of_tasks_with_scattered_arguments_reach_the_caller(
    dask_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A batch whose large argument was scattered still records and replays its output."""
    big = np.ones(500_000)  # 4 MB: above the scatter threshold
    with parallel_config(backend="dask"):
        assert Parallel(n_jobs=2)(delayed(_print_sum)(big) for _ in range(2)) == [5e5, 5e5]
    assert capsys.readouterr().out.count("sum is 500000.0") == 2
