"""``Parallel`` behaviour on every backend: results, laziness, arguments, errors, cancellation, pools.

Task functions live at module level so process workers can import them. Tests never sleep to wait
for something: tasks rendezvous through files in ``tmp_path`` and the test polls. "Work stopped"
is checked by polling a log file until it stays unchanged for a short quiet period.
"""

from __future__ import annotations

import builtins
import itertools
import multiprocessing
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _polling import wait_until

import pardo
from pardo import Parallel, cpu_count, delayed, parallel_config

PROCESS_BACKENDS = ("loky", "multiprocessing")
WAIT_LIMIT = 20.0  # seconds a rendezvous may take before a test fails instead of hanging


# -- task functions ----------------------------------------------------------------------------


def square(x: int) -> int:
    return x * x


def where() -> tuple[int, int]:
    return os.getpid(), threading.get_ident()


class CustomError(Exception):
    """An exception type defined by user code (pickled by reference)."""


def fail_on(i: int, bad: int, kind: type[Exception] = ValueError) -> int:
    if i == bad:
        raise kind(f"task {i} fails on purpose")
    return i


def wait_for_path(path: str, limit: float = WAIT_LIMIT) -> bool:
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def wait_then(path: str, value: Any, limit: float = WAIT_LIMIT) -> Any:
    """Return ``value`` once ``path`` exists (or a marker string when it never appears)."""
    return value if wait_for_path(path, limit) else "gave up waiting"


def touch_then(path: str, value: Any) -> Any:
    Path(path).touch()
    return value


def log_and_pause(path: str, i: int, pause: float) -> int:
    with open(path, "a") as log:
        log.write(f"{i}\n")
    time.sleep(pause)  # the task's own "work"; nothing waits on it
    return i


def fail_first_then_log(path: str, i: int, pause: float) -> int:
    if i == 0:
        raise CustomError("the first task fails")
    return log_and_pause(path, i, pause)


def rendezvous(folder: str, parties: int) -> str:
    """Mark this worker as arrived; return once ``parties`` distinct workers have arrived."""
    me = f"{os.getpid()}-{threading.get_ident()}"
    Path(folder, me).touch()
    deadline = time.monotonic() + WAIT_LIMIT
    while len(os.listdir(folder)) < parties:
        if time.monotonic() > deadline:
            msg = f"only {len(os.listdir(folder))} of {parties} workers ever ran at once"
            raise RuntimeError(msg)
        time.sleep(0.002)
    return me


_WORKER = threading.local()


def init_worker(folder: str, token: str) -> None:
    # "x" fails if the same worker is initialised twice.
    with open(os.path.join(folder, f"{os.getpid()}-{threading.get_ident()}"), "x"):
        pass
    _WORKER.token = token


def read_token() -> tuple[Any, str]:
    return getattr(_WORKER, "token", None), f"{os.getpid()}-{threading.get_ident()}"


def env_value(name: str) -> str | None:
    return os.environ.get(name)


def inner_call() -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """A task that runs its own ``Parallel``: where it runs, and where its tasks ran."""
    return where(), Parallel(n_jobs=2)(delayed(where)() for _ in range(4))


def two_levels() -> tuple[tuple[int, int], list[Any]]:
    return where(), Parallel(n_jobs=2)(delayed(inner_call)() for _ in range(2))


def main_style_function() -> Callable[[int], int]:
    """A function whose module is ``__main__``, as in a script or notebook."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec("def triple(x):\n    return 3 * x\n", namespace)
    function: Callable[[int], int] = namespace["triple"]
    assert function.__module__ == "__main__"
    return function


# -- helpers -----------------------------------------------------------------------------------


def count_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def settled_count(path: Path, quiet: float = 0.3, limit: float = 10.0) -> int:
    """Lines in ``path`` once it has stopped growing for ``quiet`` seconds."""
    deadline = time.monotonic() + limit
    last, since = count_lines(path), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        now = count_lines(path)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    raise AssertionError(f"{path} still grew after {limit} s: work continues after cancellation")


def effective(backend: str, n_jobs: int) -> int:
    return 1 if backend == "sequential" else n_jobs


class CountingInput:
    """A lazy task generator that counts how many tasks were pulled from it."""

    def __init__(self, n: int | None) -> None:
        self.pulled = 0
        self._n = n

    def __iter__(self) -> Iterator[Any]:
        numbers = itertools.count() if self._n is None else range(self._n)
        for i in numbers:
            self.pulled += 1
            yield delayed(square)(i)


def needs_concurrency(backend: str) -> None:
    if backend == "sequential":
        pytest.skip("the sequential backend runs tasks one at a time in the caller")


# -- results and order -------------------------------------------------------------------------


def test_results_come_back_in_input_order(backend: str) -> None:
    out = Parallel(n_jobs=2, backend=backend)(delayed(square)(i) for i in range(25))
    assert out == [i * i for i in range(25)]


def test_empty_input(backend: str) -> None:
    assert Parallel(n_jobs=2, backend=backend)([]) == []
    assert list(Parallel(n_jobs=2, backend=backend, return_as="generator")(iter([]))) == []


def test_input_order_even_when_completion_order_differs(backend: str, tmp_path: Path) -> None:
    needs_concurrency(backend)
    flag = str(tmp_path / "flag")
    # Task 0 finishes only after task 4 ran: the window of 2 * n_jobs batches fills with
    # results waiting on it, and none of the input after them may be lost.
    tasks = [delayed(wait_then)(flag, "first")] + [delayed(square)(i) for i in range(1, 4)]
    tasks += [delayed(touch_then)(flag, 16)] + [delayed(square)(i) for i in range(5, 20)]
    out = Parallel(n_jobs=2, backend=backend, batch_size=1)(tasks)
    assert out == ["first"] + [i * i for i in range(1, 20)]


def test_a_slow_first_task_does_not_stall_the_other_workers(backend: str, tmp_path: Path) -> None:
    needs_concurrency(backend)
    flag = str(tmp_path / "flag")
    # joblib keeps dispatching while task 0 runs, so task 12 runs and releases it at once.
    tasks = [delayed(wait_then)(flag, "first", 3.0)] + [delayed(square)(i) for i in range(1, 12)]
    tasks += [delayed(touch_then)(flag, 144)] + [delayed(square)(i) for i in range(13, 16)]
    out = Parallel(n_jobs=2, backend=backend, batch_size=1)(tasks)
    assert out == ["first"] + [i * i for i in range(1, 16)], "workers idled behind task 0"


def test_generator_is_lazy_and_ordered(backend: str) -> None:
    gen = Parallel(n_jobs=2, backend=backend, return_as="generator")(
        delayed(square)(i) for i in range(10)
    )
    assert not isinstance(gen, list)
    assert iter(gen) is gen
    assert list(gen) == [i * i for i in range(10)]


def test_generator_unordered_yields_in_completion_order(backend: str, tmp_path: Path) -> None:
    needs_concurrency(backend)
    flag = tmp_path / "flag"
    tasks = [delayed(wait_then)(str(flag), "slow"), delayed(square)(3)]
    gen = Parallel(n_jobs=2, backend=backend, batch_size=1, return_as="generator_unordered")(tasks)
    try:
        assert next(gen) == 9  # task 0 cannot finish before the flag exists
    finally:
        flag.touch()
    assert list(gen) == ["slow"]


def test_generator_unordered_returns_every_result(backend: str) -> None:
    gen = Parallel(n_jobs=2, backend=backend, return_as="generator_unordered")(
        delayed(square)(i) for i in range(30)
    )
    assert sorted(gen) == [i * i for i in range(30)]


@pytest.mark.parametrize("return_as", ["lists", "iterator", None])
def test_invalid_return_as(return_as: Any) -> None:
    with pytest.raises(ValueError, match="return_as"):
        Parallel(return_as=return_as)


# -- lazy input and pre_dispatch ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("pre_dispatch", "batches"), [(1, 1), (3, 3), ("n_jobs", 2), ("2*n_jobs", 4)]
)
def test_lazy_input_is_pulled_only_ahead_of_consumption(
    backend: str, pre_dispatch: Any, batches: int
) -> None:
    if backend == "sequential" and isinstance(pre_dispatch, str):
        batches = batches // 2  # n_jobs is 1 there
    # pre_dispatch batches of one task: never more read and not yet completed (issue 16).
    bound = batches
    source = CountingInput(10_000)
    gen = Parallel(
        n_jobs=2, backend=backend, batch_size=1, pre_dispatch=pre_dispatch, return_as="generator"
    )(source)
    assert 1 <= source.pulled <= bound
    for consumed in range(1, 21):
        assert next(gen) == (consumed - 1) ** 2
        assert source.pulled - consumed <= bound
    gen.close()
    assert source.pulled <= 20 + bound


def append_line(path: str, line: str) -> str:
    with open(path, "a") as log:
        log.write(line + "\n")
    return line


@pytest.mark.parametrize("backend_name", ["loky", "multiprocessing", "threading"])
def test_pre_dispatch_bounds_what_is_read_before_tasks_complete(
    backend_name: str, tmp_path: Path
) -> None:
    """joblib's rule: batch_size=1, pre_dispatch=3 reads 3 items, the 4th after a completion."""
    log = str(tmp_path / "log")

    def producer() -> Iterator[Any]:
        for i in range(6):
            append_line(log, f"produced {i}")
            yield delayed(append_line)(log, "consumed")

    out = Parallel(n_jobs=2, batch_size=1, pre_dispatch=3, backend=backend_name)(producer())
    assert out == ["consumed"] * 6
    lines = Path(log).read_text().splitlines()
    assert len(lines) == 12
    assert lines[0] == "produced 0"
    for k in range(3, 6):  # item k is read only once k - 2 tasks have completed
        before = lines[: lines.index(f"produced {k}")]
        assert before.count("consumed") >= k - 2, lines


@pytest.mark.parametrize("backend_name", ["loky", "multiprocessing", "threading"])
def test_pre_dispatch_reads_exactly_its_count_while_tasks_are_held(
    backend_name: str, tmp_path: Path
) -> None:
    gate = str(tmp_path / "gate")
    source = CountingInput(10)
    tasks = (delayed(wait_then)(gate, i) for (_, (i,), _) in source)
    gen = Parallel(
        n_jobs=2, batch_size=1, pre_dispatch=3, backend=backend_name, return_as="generator"
    )(tasks)
    try:
        assert source.pulled == 3  # and no further while all three tasks wait on the gate
        Path(gate).touch()
        assert next(gen) == 0
        assert wait_until(lambda: source.pulled >= 4, 10)
        assert list(gen) == list(range(1, 10))
    finally:
        Path(gate).touch()
        gen.close()


@pytest.mark.parametrize("backend_name", ["loky", "threading"])
def test_auto_batching_reads_within_pre_dispatch_batches(backend_name: str) -> None:
    source = CountingInput(200_000)
    gen = Parallel(n_jobs=2, pre_dispatch=2, backend=backend_name, return_as="generator")(source)
    # auto batches start at one task: at most pre_dispatch of them read before any completes
    assert source.pulled <= 2
    assert sum(1 for _ in gen) == 200_000


def test_infinite_input_with_auto_batches(backend: str) -> None:
    source = CountingInput(None)
    gen = Parallel(n_jobs=2, backend=backend, return_as="generator")(source)
    assert list(itertools.islice(gen, 50)) == [i * i for i in range(50)]
    gen.close()
    assert source.pulled < 10_000


def test_pre_dispatch_all_pulls_everything_at_once(backend: str) -> None:
    source = CountingInput(50)
    gen = Parallel(n_jobs=2, backend=backend, pre_dispatch="all", return_as="generator")(source)
    assert source.pulled == 50
    assert list(gen) == [i * i for i in range(50)]


@pytest.mark.parametrize(
    "pre_dispatch", [1, 5, "all", "n_jobs", "3*n_jobs", "2 * n_jobs + 1", "(n_jobs + 1) // 2", "4"]
)
def test_pre_dispatch_forms(pre_dispatch: Any) -> None:
    out = Parallel(n_jobs=2, backend="threading", pre_dispatch=pre_dispatch)(
        delayed(square)(i) for i in range(12)
    )
    assert out == [i * i for i in range(12)]


@pytest.mark.parametrize(
    "pre_dispatch",
    [
        0,
        -2,
        0.5,  # joblib takes int(): 2.5 means 2, but 0.5 means 0, which runs nothing
        True,
        None,
        "",
        "n_jobs ** 2",
        "__import__('os').getpid()",
        "n_jobs + x",
        "1e10 * n_jobs",
        "n_jobs; 1",
        "x" * 200,
    ],
)
def test_invalid_pre_dispatch(pre_dispatch: Any) -> None:
    with pytest.raises(ValueError, match=r"pre_dispatch|cannot evaluate"):
        Parallel(n_jobs=2, pre_dispatch=pre_dispatch)


# -- batch_size --------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 3, 1000, "auto"])
def test_batch_size_forms(backend: str, batch_size: Any) -> None:
    out = Parallel(n_jobs=2, backend=backend, batch_size=batch_size)(
        delayed(square)(i) for i in range(20)
    )
    assert out == [i * i for i in range(20)]


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, "big", None, True, "1"])
def test_invalid_batch_size(batch_size: Any) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Parallel(batch_size=batch_size)


# -- n_jobs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_jobs", [0, "2.3", "many", [2]])
def test_invalid_n_jobs(n_jobs: Any) -> None:
    with pytest.raises(ValueError, match="n_jobs"):
        Parallel(n_jobs=n_jobs)


@pytest.mark.parametrize(("n_jobs", "expected"), [(2.0, 2), (2.7, 2), ("3", 3), (-1.5, -1)])
def test_n_jobs_is_converted_with_int_as_joblib_does(n_jobs: Any, expected: int) -> None:
    assert Parallel(n_jobs=n_jobs).n_jobs == expected


def test_n_jobs_keeps_the_requested_value() -> None:
    p = Parallel(n_jobs=-1)
    assert p.n_jobs == -1
    assert repr(p) == "Parallel(n_jobs=-1)"


@pytest.mark.parametrize("n_jobs", [2, 3, -1, -2])
def test_n_jobs_arithmetic_sets_the_thread_count(n_jobs: int, tmp_path: Path) -> None:
    workers = n_jobs if n_jobs > 0 else max(cpu_count() + 1 + n_jobs, 1)
    if workers == 1:
        out = Parallel(n_jobs=n_jobs, backend="threading")(delayed(where)() for _ in range(3))
        assert set(out) == {where()}
        return
    tasks = (delayed(rendezvous)(str(tmp_path), workers) for _ in range(2 * workers))
    out = Parallel(n_jobs=n_jobs, backend="threading", batch_size=1)(tasks)
    assert len(set(out)) == workers, "exactly n workers, all running at once"


@pytest.mark.parametrize("n_jobs", [2, -1])
def test_n_jobs_arithmetic_sets_the_process_count(
    process_backend: str, n_jobs: int, tmp_path: Path
) -> None:
    workers = n_jobs if n_jobs > 0 else cpu_count()
    if workers > 4:
        pytest.skip("keeps the suite light on big machines")
    if workers == 1:
        pytest.skip("one CPU: n_jobs=-1 runs in the caller (tested elsewhere)")
    tasks = (delayed(rendezvous)(str(tmp_path), workers) for _ in range(2 * workers))
    out = Parallel(n_jobs=n_jobs, backend=process_backend, batch_size=1)(tasks)
    pids = {int(marker.split("-")[0]) for marker in out}
    assert len(pids) == workers
    assert os.getpid() not in pids


@pytest.mark.parametrize("n_jobs", [1, "one-cpu-short"])
def test_effective_one_job_runs_in_the_caller(backend: str, n_jobs: Any) -> None:
    if n_jobs == "one-cpu-short":
        n_jobs = -(cpu_count() + 1)  # max(cpus + 1 + n, 1) == 1
    out = Parallel(n_jobs=n_jobs, backend=backend)(delayed(where)() for _ in range(5))
    assert set(out) == {where()}


def test_top_level_call_from_a_background_thread(backend: str) -> None:
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(Parallel(n_jobs=2, backend=backend)(delayed(square)(i) for i in range(6)))
        except BaseException as exc:  # handed to the test thread
            box.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert box == [[i * i for i in range(6)]]


# -- exceptions --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [ValueError, KeyError, ZeroDivisionError, CustomError])
def test_task_exception_keeps_type_and_remote_traceback(
    backend: str, kind: type[Exception]
) -> None:
    with pytest.raises(kind) as info:
        Parallel(n_jobs=2, backend=backend)(delayed(fail_on)(i, 3, kind) for i in range(8))
    assert "task 3 fails on purpose" in str(info.value)
    cause = info.value.__cause__
    assert cause is not None, "the remote traceback must be attached as __cause__"
    assert "Traceback" in str(cause)
    assert "fail_on" in str(cause), "the remote traceback names the failing function"


@pytest.mark.parametrize("return_as", ["generator", "generator_unordered"])
def test_task_exception_in_generator_modes(backend: str, return_as: str) -> None:
    gen = Parallel(n_jobs=2, backend=backend, return_as=return_as)(
        delayed(fail_on)(i, 5, CustomError) for i in range(10)
    )
    with pytest.raises(CustomError):
        list(gen)


@pytest.mark.slow  # waits for a quiet period to show that no work continues
def test_task_error_cancels_the_remaining_tasks(backend: str, tmp_path: Path) -> None:
    log, n = tmp_path / "log", 40
    with pytest.raises(CustomError):
        Parallel(n_jobs=2, backend=backend, batch_size=1)(
            delayed(fail_first_then_log)(str(log), i, 0.02) for i in range(n)
        )
    assert settled_count(log) < n // 2, "tasks after the failure must not all run"


def broken_input(n_good: int) -> Iterator[Any]:
    for i in range(n_good):
        yield delayed(square)(i)
    raise IndexError("the input broke")


@pytest.mark.parametrize("n_good", [0, 1, 2, 7])
def test_input_iterator_exception_propagates(backend: str, n_good: int) -> None:
    with pytest.raises(IndexError, match="the input broke"):
        Parallel(n_jobs=2, backend=backend)(broken_input(n_good))


def test_input_iterator_exception_in_generator_mode(backend: str) -> None:
    gen = Parallel(n_jobs=2, backend=backend, return_as="generator", batch_size=1)
    with pytest.raises(IndexError, match="the input broke"):
        list(gen(broken_input(30)))


def test_unpicklable_task_gives_a_clear_error(process_backend: str) -> None:
    lock = threading.Lock()
    with pytest.raises(pickle.PicklingError, match="task 1") as info:
        Parallel(n_jobs=2, backend=process_backend, batch_size=1)(
            delayed(id)(x) for x in [1, lock, 3]
        )
    assert isinstance(info.value, pardo.TaskPicklingError)
    assert "lock" in str(info.value)


def test_unpicklable_result_gives_a_clear_error(process_backend: str) -> None:
    with pytest.raises(pickle.PicklingError, match="lock"):
        Parallel(n_jobs=2, backend=process_backend)(delayed(threading.Lock)() for _ in range(2))


def test_unpicklable_arguments_are_fine_on_threads() -> None:
    lock = threading.Lock()
    assert (
        Parallel(n_jobs=2, backend="threading")(delayed(id)(lock) for _ in range(2))
        == [id(lock)] * 2
    )


def test_lambdas_closures_and_main_functions_on_process_backends(process_backend: str) -> None:
    offset = 10

    def closure(x: int) -> int:
        return x + offset

    functions = [lambda x: 2 * x, closure, main_style_function()]
    out = Parallel(n_jobs=2, backend=process_backend)(
        delayed(f)(i) for f in functions for i in range(3)
    )
    assert out == [0, 2, 4, 10, 11, 12, 0, 3, 6]


@pytest.mark.slow
def test_functions_defined_in_a_script(process_backend: str, tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from pardo import Parallel, delayed

            def cube(x):
                return x ** 3

            if __name__ == "__main__":
                out = Parallel(n_jobs=2, backend={process_backend!r})(
                    delayed(cube)(i) for i in range(5)
                )
                out += Parallel(n_jobs=2, backend={process_backend!r})(
                    delayed(lambda x: -x)(i) for i in range(3)
                )
                print(out)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 1, 8, 27, 64, 0, -1, -2]"


# -- initializer -------------------------------------------------------------------------------


def test_initializer_runs_once_per_worker(backend: str, tmp_path: Path) -> None:
    token = f"token-{tmp_path.name}"
    try:
        out = Parallel(
            n_jobs=2, backend=backend, initializer=init_worker, initargs=(str(tmp_path), token)
        )(delayed(read_token)() for _ in range(12))
    finally:
        if hasattr(_WORKER, "token"):  # the sequential backend initialises the caller
            del _WORKER.token
    assert {seen for seen, _ in out} == {token}
    initialised = set(os.listdir(tmp_path))
    assert {worker for _, worker in out} <= initialised
    assert 1 <= len(initialised) <= effective(backend, 2)


def test_initializer_runs_once_per_worker_across_calls_of_a_with_block(
    backend: str, tmp_path: Path
) -> None:
    token = f"token-{tmp_path.name}"
    try:
        with Parallel(
            n_jobs=2, backend=backend, initializer=init_worker, initargs=(str(tmp_path), token)
        ) as p:
            first = p(delayed(read_token)() for _ in range(6))
            second = p(delayed(read_token)() for _ in range(6))
    finally:
        if hasattr(_WORKER, "token"):
            del _WORKER.token
    assert {seen for seen, _ in first + second} == {token}
    assert 1 <= len(os.listdir(tmp_path)) <= effective(backend, 2)


# -- with Parallel() as p ----------------------------------------------------------------------


def test_with_block_keeps_one_pool(backend: str) -> None:
    # Thread objects (threads) or pids (processes) identify workers; both stay alive meanwhile.
    probe: Any = os.getpid if backend in PROCESS_BACKENDS else threading.current_thread
    if backend == "dask":  # threads of worker processes: a Thread object cannot travel back
        probe = where
    with Parallel(n_jobs=2, backend=backend, batch_size=1) as p:
        first = p(delayed(probe)() for _ in range(8))
        second = p(delayed(probe)() for _ in range(8))
    assert len(set(first) | set(second)) <= effective(backend, 2)


def test_second_call_while_a_generator_is_alive(backend: str) -> None:
    p = Parallel(n_jobs=2, backend=backend, return_as="generator")
    gen = p(delayed(square)(i) for i in range(10))
    assert next(gen) == 0
    with pytest.raises(RuntimeError, match="already running"):
        p(delayed(square)(i) for i in range(3))
    assert list(gen) == [i * i for i in range(1, 10)]
    assert list(p(delayed(square)(i) for i in range(3))) == [0, 1, 4]


def test_second_call_in_a_with_block_while_a_generator_is_alive(backend: str) -> None:
    with Parallel(n_jobs=2, backend=backend, return_as="generator") as p:
        gen = p(delayed(square)(i) for i in range(10))
        assert next(gen) == 0
        with pytest.raises(RuntimeError, match="already running"):
            p(delayed(square)(i) for i in range(3))
        gen.close()
        assert list(p(delayed(square)(i) for i in range(3))) == [0, 1, 4]


@pytest.mark.slow  # waits for a quiet period to show that no work continues
@pytest.mark.parametrize("how", ["del", "close"])
def test_dropping_a_generator_cancels_the_rest(backend: str, tmp_path: Path, how: str) -> None:
    log, n = tmp_path / "log", 40
    p = Parallel(n_jobs=2, backend=backend, batch_size=1, return_as="generator")
    gen = p(delayed(log_and_pause)(str(log), i, 0.02) for i in range(n))
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    if how == "del":
        del gen
    else:
        gen.close()
    assert settled_count(log) < n // 2, "no work may continue once the generator is dropped"
    assert p(delayed(square)(i) for i in range(3)) is not None  # the instance is usable again


# -- timeout -----------------------------------------------------------------------------------


def test_timeout_raises_a_multiprocessing_timeout_error(backend: str, tmp_path: Path) -> None:
    needs_concurrency(backend)
    flag = tmp_path / "never-until-the-end"
    try:
        with pytest.raises(multiprocessing.TimeoutError) as info:
            Parallel(n_jobs=2, backend=backend, timeout=0.2)(
                delayed(wait_then)(str(flag), i) for i in range(4)
            )
    finally:
        flag.touch()  # release threads that cannot be killed
    assert isinstance(info.value, builtins.TimeoutError)
    assert isinstance(info.value, pardo.TimeoutError)


def test_timeout_not_reached(backend: str) -> None:
    if backend == "sequential":
        with pytest.warns(UserWarning, match="timeout"):
            out = Parallel(n_jobs=2, backend=backend, timeout=30)(
                delayed(square)(i) for i in range(5)
            )
    else:
        out = Parallel(n_jobs=2, backend=backend, timeout=30)(delayed(square)(i) for i in range(5))
    assert out == [i * i for i in range(5)]


@pytest.mark.parametrize("timeout", [0, -1, "1", True])
def test_invalid_timeout(timeout: Any) -> None:
    with pytest.raises(ValueError, match="timeout"):
        Parallel(timeout=timeout)


# -- nesting -----------------------------------------------------------------------------------


@pytest.mark.no_cluster  # dask nests on the cluster itself (test_dask covers it), not on threads
def test_nested_calls_use_threads_then_run_sequentially(backend: str) -> None:
    needs_concurrency(backend)
    out = Parallel(n_jobs=2, backend=backend)(delayed(two_levels)() for _ in range(2))
    for level1, results in out:
        for level2, innermost in results:
            # A Parallel inside a worker (level 1) uses threads of that worker's process...
            assert level2[0] == level1[0]
            assert level2[1] != level1[1]
            # ...and a Parallel inside one of those threads (level 2) runs in the caller.
            assert set(innermost) == {level2}


def test_sequential_outer_call_is_transparent_for_nesting() -> None:
    [(outer, inner)] = Parallel(n_jobs=1)([delayed(inner_call)()])
    assert outer == where()
    assert all(pid != os.getpid() for pid, _ in inner), "a top-level call: default processes"


BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def test_process_workers_cap_blas_threads(
    process_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in BLAS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    out = Parallel(n_jobs=2, backend=process_backend)(
        delayed(env_value)(name) for name in BLAS_VARIABLES
    )
    assert out == [str(max(cpu_count() // 2, 1))] * len(BLAS_VARIABLES)
    assert all(name not in os.environ for name in BLAS_VARIABLES), "the caller is untouched"


def test_user_blas_setting_wins(process_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    out = Parallel(n_jobs=2, backend=process_backend)(
        delayed(env_value)("OMP_NUM_THREADS") for _ in range(2)
    )
    assert out == ["3", "3"]


def test_inner_max_num_threads(process_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with parallel_config(backend=process_backend, inner_max_num_threads=1):
        out = Parallel(n_jobs=2)(delayed(env_value)("OMP_NUM_THREADS") for _ in range(2))
    assert out == ["1", "1"]


def test_attributes_set_after_construction_are_checked_and_used() -> None:
    """One source of truth: an attribute assigned later is checked like the argument and used."""
    par = Parallel(n_jobs=2, backend="threading")
    par.batch_size = 3
    par.return_as = "generator"
    gen = par(delayed(square)(i) for i in range(7))
    assert not isinstance(gen, list) and list(gen) == [i * i for i in range(7)]
    assert par.batch_size == 3
    par.n_jobs = 1
    assert par.n_jobs == 1
    with pytest.raises(ValueError, match="batch_size=0"):
        par.batch_size = 0
    assert par.batch_size == 3  # a refused value leaves the previous one
    with pytest.raises(ValueError, match="pre_dispatch"):
        par.pre_dispatch = "3 * m_jobs"
    with pytest.raises(AttributeError):
        par.backend = "loky"  # type: ignore[misc]
