"""Fault scenarios, each run in a fresh interpreter by the tests in tests/faults.

Usage: ``python fault_scenarios.py SCENARIO BACKEND WORKDIR``. The child warms the backend up,
notes its baseline (open fds, threads, children), runs the scenario, checks that a next call
still works, waits for what the scenario started to go away, and prints one JSON line: what
the faulty call did and what it left behind. Tasks note their pid in WORKDIR (``pid-*`` files)
so the parent can check, after the child exited, that no worker outlived it; ``started-*``
files tell the parent that tasks are running (the moment to send a signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

from pardo import Parallel, TaskError, TaskTimeout, delayed

Scenario = Callable[[str, str], dict[str, Any]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(func: Scenario) -> Scenario:
    SCENARIOS[func.__name__] = func
    return func


# -- tasks (module level, so process workers import them) ---------------------------------------


def note_pid(workdir: str, i: int, kind: str = "pid") -> None:
    with open(os.path.join(workdir, f"{kind}-{i}-{os.getpid()}"), "w") as file:
        file.write(str(os.getpid()))


def crash(i: int, workdir: str, how: str, victim: int = 2, once: bool = False) -> int:
    """Die the way ``how`` says when ``i == victim`` (the first time only when ``once``)."""
    note_pid(workdir, i)
    marker = os.path.join(workdir, f"crashed-{i}")
    if i == victim and not (once and os.path.exists(marker)):
        open(marker, "w").close()
        if how == "exit":
            os._exit(3)
        if how == "segfault":
            ctypes.string_at(0)
        if how == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if how == "external":
            note_pid(workdir, i, "started")
            time.sleep(60)  # killed from outside by the scenario
    time.sleep(0.3)
    return i * i


def count_runs(i: int, workdir: str) -> int:
    note_pid(workdir, i, f"ran-{i}")
    time.sleep(0.3)
    return i


def sleepy(i: int, workdir: str, seconds: float, victim: int = 2) -> int:
    note_pid(workdir, i)
    if i == victim:
        note_pid(workdir, i, "started")
        time.sleep(seconds)
    return i


def flaky(i: int, workdir: str, failures: int) -> int:
    """Raise ValueError on the first ``failures`` runs of task 1."""
    runs = len(glob.glob(os.path.join(workdir, "flaky-*")))
    if i == 1:
        open(os.path.join(workdir, f"flaky-{runs}"), "w").close()
        if runs < failures:
            raise ValueError(f"flaky run {runs}")
    return i


def fails_or_sleeps(i: int, workdir: str, seconds: float = 30) -> int:
    """Task 3 fails, task 4 sleeps ``seconds``, the others return at once."""
    note_pid(workdir, i)
    if i == 3:
        time.sleep(0.2)  # task 4 is running by now
        raise ValueError("task 3 fails")
    if i == 4:
        time.sleep(seconds)
    return i


def sleepy_sum(data: Any, i: int, workdir: str) -> float:
    """Note that a task holding the (memmapped) array runs, then sleep until killed."""
    note_pid(workdir, i)
    note_pid(workdir, i, "started")
    time.sleep(60)
    return float(data.sum())


def make_lock(i: int) -> Any:
    return threading.Lock()


# -- scenarios ------------------------------------------------------------------------------------


def run_call(call: Callable[[], Any]) -> dict[str, Any]:
    """Run ``call``; describe its result or error and how long it took."""
    start = time.monotonic()
    out: dict[str, Any] = {"error": None}
    try:
        out["results"] = [describe(r) for r in call()]
    except BaseException as exc:
        out["caught_at"] = time.time()
        out.update(
            error=type(exc).__name__,
            mro=[k.__name__ for k in type(exc).__mro__],
            message=str(exc),
            notes=list(getattr(exc, "__notes__", [])),
            cause=type(exc.__cause__).__name__ if exc.__cause__ is not None else None,
        )
    out["seconds"] = time.monotonic() - start
    return out


def describe(value: Any) -> Any:
    if isinstance(value, TaskError):
        return {"TaskError": value.index, "type": type(value.exception).__name__}
    if isinstance(value, TaskTimeout):
        return {"TaskTimeout": value.index, "seconds": value.seconds}
    return value


def death(how: str, **extra: Any) -> Scenario:
    def run(backend: str, workdir: str) -> dict[str, Any]:
        if how == "external":
            threading.Thread(target=kill_when_started, args=(workdir,), daemon=True).start()
        tasks = (delayed(crash)(i, workdir, how, **extra.get("task", {})) for i in range(6))
        kwargs = extra.get("parallel", {})
        return run_call(lambda: Parallel(n_jobs=2, backend=backend, **kwargs)(tasks))

    return run


def kill_when_started(workdir: str) -> None:
    while True:
        found = glob.glob(os.path.join(workdir, "started-*"))
        if found:
            os.kill(int(found[0].rsplit("-", 1)[1]), signal.SIGKILL)
            return
        time.sleep(0.02)


for _how in ("exit", "segfault", "sigkill", "external"):
    SCENARIOS[f"death_{_how}"] = death(_how)
SCENARIOS["death_retried"] = death("exit", task={"once": True}, parallel={"retries": 1})
SCENARIOS["death_collected"] = death("exit", task={"victim": 0}, parallel={"on_error": "collect"})


@scenario
def death_batched(backend: str, workdir: str) -> dict[str, Any]:
    """A batch of 3 loses its worker: it is split, and the error names the one task."""
    tasks = [delayed(crash)(i, workdir, "exit", 4) for i in range(9)]
    return run_call(lambda: Parallel(n_jobs=2, backend=backend, batch_size=3)(tasks))


@scenario
def innocents_restarted(backend: str, workdir: str) -> dict[str, Any]:
    """Task 0 dies once while 1 runs: 1 restarts without using 0's single retry."""
    tasks = [delayed(crash)(0, workdir, "exit", 0, True)] + [
        delayed(count_runs)(i, workdir) for i in range(1, 4)
    ]
    out = run_call(lambda: Parallel(n_jobs=2, backend=backend, retries=1)(tasks))
    out["runs"] = {i: len(glob.glob(os.path.join(workdir, f"ran-{i}-*"))) for i in range(1, 4)}
    return out


@scenario
def death_beside_another_call(backend: str, workdir: str) -> dict[str, Any]:
    """A worker dies in one call while another thread's call runs on the same (shared) pool.

    The death is the dying call's to report; the other call must still return all its results
    (its batches were innocent: re-run on the rebuilt pool).
    """
    beside: dict[str, Any] = {}

    def other_call() -> None:
        tasks = [delayed(count_runs)(i, workdir) for i in range(8)]
        beside.update(run_call(lambda: Parallel(n_jobs=2, backend=backend, batch_size=1)(tasks)))

    thread = threading.Thread(target=other_call)
    thread.start()
    while not glob.glob(os.path.join(workdir, "ran-*")):  # the other call is running
        time.sleep(0.01)
    tasks = [delayed(crash)(i, workdir, "exit", 0) for i in range(2)]
    out = run_call(lambda: Parallel(n_jobs=2, backend=backend)(tasks))
    thread.join()
    out["beside"] = beside
    return out


def timeout_scenario(on_timeout: str) -> Scenario:
    def run(backend: str, workdir: str) -> dict[str, Any]:
        tasks = (delayed(sleepy)(i, workdir, 60) for i in range(6))
        return run_call(
            lambda: Parallel(n_jobs=2, backend=backend, task_timeout=1, on_timeout=on_timeout)(
                tasks
            )
        )

    return run


SCENARIOS["timeout_raise"] = timeout_scenario("raise")
SCENARIOS["timeout_return"] = timeout_scenario("return")


@scenario
def task_error(backend: str, workdir: str) -> dict[str, Any]:
    # A thread cannot be stopped: its sleeper is short, or this process could not exit.
    seconds = 2 if backend == "threading" else 30
    tasks = [delayed(fails_or_sleeps)(i, workdir, seconds) for i in (3, 4, 0, 1, 2, 5)]
    return run_call(lambda: Parallel(n_jobs=2, backend=backend, batch_size=1)(tasks))


def flaky_scenario(retries: int) -> Scenario:
    def run(backend: str, workdir: str) -> dict[str, Any]:
        tasks = (delayed(flaky)(i, workdir, 2) for i in range(4))
        parallel = Parallel(n_jobs=2, backend=backend, retries=retries, retry_on=(ValueError,))
        return run_call(lambda: parallel(tasks))

    return run


SCENARIOS["retry_enough"] = flaky_scenario(2)
SCENARIOS["retry_too_few"] = flaky_scenario(1)


@scenario
def unpicklable_argument(backend: str, workdir: str) -> dict[str, Any]:
    lock = threading.Lock()
    tasks = [delayed(abs)(1), delayed(id)(lock)]
    return run_call(lambda: Parallel(n_jobs=2, backend=backend)(tasks))


@scenario
def unpicklable_result(backend: str, workdir: str) -> dict[str, Any]:
    return run_call(
        lambda: Parallel(n_jobs=2, backend=backend)(delayed(make_lock)(i) for i in range(3))
    )


def interrupted(return_as: str) -> Scenario:
    def run(backend: str, workdir: str) -> dict[str, Any]:
        # Threads cannot be stopped: theirs sleep briefly so the interpreter can exit after.
        seconds = 1.5 if backend == "threading" else 60
        tasks = (delayed(sleepy)(i, workdir, seconds, victim=i) for i in range(8))
        parallel = Parallel(n_jobs=2, backend=backend, return_as=return_as)
        return run_call(lambda: list(parallel(tasks)))

    return run


@scenario
def idle(backend: str, workdir: str) -> dict[str, Any]:
    """Between two calls: the pool's workers wait for work (the parent gets killed now)."""
    time.sleep(60)
    return {"error": None}


def killed_with_array(where: str) -> Scenario:
    def run(backend: str, workdir: str) -> dict[str, Any]:
        """A call sharing a 50 MB array (memmapped) runs until the parent is SIGKILLed."""
        import numpy as np

        data = np.ones(50 * 1024**2 // 8)
        folder = os.path.join(workdir, "chosen") if where == "temp_folder" else None
        if folder is not None:
            os.mkdir(folder)
        tasks = (delayed(sleepy_sum)(data, i, workdir) for i in range(4))
        return run_call(lambda: Parallel(n_jobs=2, backend=backend, temp_folder=folder)(tasks))

    return run


SCENARIOS["killed_with_array"] = killed_with_array("default")
SCENARIOS["killed_with_array_temp_folder"] = killed_with_array("temp_folder")
SCENARIOS["interrupt_list"] = interrupted("list")
SCENARIOS["interrupt_generator"] = interrupted("generator")


def soak_call(kind: str, backend: str, workdir: str) -> None:
    """One call of the soak test: ``kind`` says which fault it meets."""
    processes = backend in ("loky", "multiprocessing")
    limit = 0.3 if processes else None
    run = Parallel(n_jobs=2, backend=backend, task_timeout=limit, retries=1, on_timeout="return")
    if kind == "ok":
        assert run(delayed(abs)(-i) for i in range(20)) == list(range(20))
    elif kind == "error":
        run(delayed(fails_or_sleeps)(i, workdir) for i in (0, 3))
    elif kind == "collect":
        collect = Parallel(n_jobs=2, backend=backend, on_error="collect")
        assert not collect(delayed(fails_or_sleeps)(i, workdir) for i in (0, 3))[1]
    elif kind == "crash":
        Parallel(n_jobs=2, backend=backend)(delayed(crash)(i, workdir, "exit", 0) for i in (0, 1))
    elif kind == "crash_retried":
        run(delayed(crash)(i, workdir, "exit", 0, True) for i in (0, 1))
    elif kind == "timeout":
        assert isinstance(run(delayed(sleepy)(i, workdir, 60, 0) for i in (0, 1))[0], TaskTimeout)
    elif kind == "unpicklable":
        run(delayed(id)(threading.Lock()) for i in (0, 1))
    elif kind == "dropped":
        gen = Parallel(n_jobs=2, backend=backend, return_as="generator")(
            delayed(sleepy)(i, workdir, 60 if processes else 0.05, 1) for i in range(4)
        )
        next(gen)
        gen.close()


SOAK_KINDS = (
    "ok",
    "error",
    "collect",
    "crash",
    "crash_retried",
    "timeout",
    "unpicklable",
    "dropped",
)


@scenario
def soak(backend: str, workdir: str) -> dict[str, Any]:
    """200 calls mixing every fault; what the process holds before and after."""
    before = {"rss": psutil.Process().memory_info().rss, "sems": my_semaphores()}
    start = time.monotonic()
    # Threads cannot be killed: no per-task timeout there, and a crash would end this process.
    kinds = SOAK_KINDS if backend in ("loky", "multiprocessing") else (*SOAK_KINDS[:3], "dropped")
    for n in range(200):
        kind = kinds[n % len(kinds)]
        try:
            soak_call(kind, backend, workdir)
        except Exception as exc:
            if kind in ("ok", "timeout", "crash_retried", "collect", "dropped"):
                raise AssertionError(f"call {n} ({kind}) failed: {exc!r}") from exc
        for marker in glob.glob(os.path.join(workdir, "crashed-*")):
            os.unlink(marker)  # so that crash_retried crashes once every time
    after = {"rss": psutil.Process().memory_info().rss, "sems": my_semaphores()}
    return {"error": None, "before": before, "after": after, "seconds": time.monotonic() - start}


def my_semaphores() -> list[str]:
    return sorted(glob.glob(f"/dev/shm/sem.*-{os.getpid()}-*"))  # sem.loky-PID-RANDOM


# -- bookkeeping ----------------------------------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1


def kept_on_purpose(proc: psutil.Process) -> bool:
    """loky's reusable workers and resource tracker outlive calls by design."""
    try:
        line = " ".join(proc.cmdline())
        return proc.status() != psutil.STATUS_ZOMBIE and (
            "loky" in line or "resource_tracker" in line
        )
    except psutil.Error:
        return True


def stray_children() -> list[str]:
    out = []
    for child in psutil.Process().children(recursive=True):
        if not kept_on_purpose(child):
            with contextlib.suppress(psutil.Error):
                out.append(f"{child.pid} {child.status()} {' '.join(child.cmdline())[:80]}")
    return out


def my_folders() -> list[str]:
    roots = {tempfile.gettempdir(), "/dev/shm"}
    return sorted(f for r in roots for f in glob.glob(os.path.join(r, f"pardo-{os.getpid()}-*")))


def settle(baseline: dict[str, int], seconds: float = 5.0) -> dict[str, Any]:
    """Leftovers once things had ``seconds`` to wind down (workers take a moment to exit)."""
    deadline = time.monotonic() + seconds
    while True:
        now = {"fds": open_fds(), "threads": threading.active_count()}
        strays, folders = stray_children(), my_folders()
        clean = now["fds"] <= baseline["fds"] and now["threads"] <= baseline["threads"]
        if (clean and not strays and not folders) or time.monotonic() > deadline:
            return {"baseline": baseline, "now": now, "strays": strays, "folders": folders}
        time.sleep(0.05)


def warm_up(backend: str) -> None:
    assert Parallel(n_jobs=2, backend=backend)(delayed(abs)(-i) for i in range(4)) == [0, 1, 2, 3]


def main() -> None:
    name, backend, workdir = sys.argv[1:4]
    warm_up(backend)
    baseline = {"fds": open_fds(), "threads": threading.active_count()}
    print("ready", flush=True)
    outcome = SCENARIOS[name](backend, workdir)
    try:
        warm_up(backend)
        outcome["next_call_ok"] = True
    except BaseException as exc:
        outcome["next_call_ok"] = repr(exc)
    outcome["leftovers"] = settle(baseline)
    # The pid is in the file name too: a worker killed while writing leaves an empty file.
    pids = {int(p.rsplit("-", 1)[1]) for p in glob.glob(os.path.join(workdir, "pid-*"))}
    outcome["worker_pids"] = sorted(pids - {os.getpid()})
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
