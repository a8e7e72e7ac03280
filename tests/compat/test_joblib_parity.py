"""The same calls through joblib and pardo give the same results, errors and n_jobs arithmetic.

Each test runs one scenario with both libraries (``lib`` is the module) and compares what user code
can see. joblib comes with the test extra; without it this module is skipped.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

import pardo

joblib = pytest.importorskip("joblib")

# joblib has no dask backend without its own client set-up: the parity runs are local.
pytestmark = pytest.mark.no_cluster


LIBRARIES = [joblib, pardo]


def both(scenario: Callable[[ModuleType], Any]) -> tuple[Any, Any]:
    """``scenario(joblib)`` and ``scenario(pardo)``."""
    return scenario(joblib), scenario(pardo)


def outcome(call: Callable[[], Any]) -> Any:
    """The value ``call()`` returns, or the type of what it raises."""
    try:
        return call()
    except Exception as exc:
        return type(exc)


# -- task functions (module level: process workers import them) ------------------------------


def square(x: int) -> int:
    return x * x


def fail_on(i: int, bad: int, kind: type[Exception]) -> int:
    if i == bad:
        raise kind(f"task {i} fails")
    return i


def where() -> tuple[int, int]:
    return os.getpid(), threading.get_ident()


def kind_of_run(lib: ModuleType, **kwargs: Any) -> str:
    """'caller', 'threads' or 'processes': where a 2-task call with ``kwargs`` ran."""
    kwargs.setdefault("n_jobs", 2)
    out = lib.Parallel(**kwargs)(lib.delayed(where)() for _ in range(2))
    if all(r == where() for r in out):
        return "caller"
    return "threads" if all(pid == os.getpid() for pid, _ in out) else "processes"


def nested_kinds(lib: ModuleType) -> tuple[str, str]:
    """Where a Parallel inside a task runs its tasks, and one a level deeper."""

    def inner_kind() -> str:
        return kind_of_run(lib)

    return kind_of_run(lib), lib.Parallel(n_jobs=2)([lib.delayed(inner_kind)()])[0]


def broken_input(lib: ModuleType) -> Iterator[Any]:
    yield lib.delayed(square)(1)
    yield lib.delayed(square)(2)
    raise IndexError("the input broke")


# -- results -----------------------------------------------------------------------------------


@pytest.mark.slow  # uses joblib's own loky pool, which restarts after errors: ~1 s
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_same_results(backend: str, n_jobs: int) -> None:
    def scenario(lib: ModuleType) -> Any:
        tasks = [lib.delayed(divmod)(i * 7, 3) for i in range(15)]
        return lib.Parallel(n_jobs=n_jobs, backend=backend)(tasks)

    theirs, ours = both(scenario)
    assert ours == theirs


@pytest.mark.slow  # uses joblib's own loky pool, which restarts after errors: ~1 s
@pytest.mark.parametrize("return_as", ["generator", "generator_unordered"])
def test_same_generator_results(backend: str, return_as: str) -> None:
    if backend == "multiprocessing":
        pytest.skip("joblib's multiprocessing backend has no generator mode")

    def scenario(lib: ModuleType) -> Any:
        gen = lib.Parallel(n_jobs=2, backend=backend, return_as=return_as)(
            lib.delayed(square)(i) for i in range(12)
        )
        out = list(gen)
        return out if return_as == "generator" else sorted(out)

    theirs, ours = both(scenario)
    assert ours == theirs


@pytest.mark.slow  # uses joblib's own loky pool, which restarts after errors: ~1 s
def test_same_results_for_lambdas_and_closures_on_loky() -> None:
    offset = 5

    def scenario(lib: ModuleType) -> Any:
        functions = [lambda x: x - 1, lambda x: x + offset]
        return lib.Parallel(n_jobs=2)(lib.delayed(f)(i) for f in functions for i in range(3))

    theirs, ours = both(scenario)
    assert ours == theirs


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.slow  # uses joblib's own loky pool, which restarts after errors: ~1 s
@pytest.mark.parametrize("kind", [ValueError, KeyError, ZeroDivisionError])
def test_same_task_exception_type(backend: str, kind: type[Exception]) -> None:
    def scenario(lib: ModuleType) -> Any:
        tasks = (lib.delayed(fail_on)(i, 2, kind) for i in range(6))
        return outcome(lambda: lib.Parallel(n_jobs=2, backend=backend)(tasks))

    assert both(scenario) == (kind, kind)


@pytest.mark.slow  # uses joblib's own loky pool, which restarts after errors: ~1 s
def test_remote_traceback_is_the_cause_on_process_backends(process_backend: str) -> None:
    def scenario(lib: ModuleType) -> Any:
        try:
            lib.Parallel(n_jobs=2, backend=process_backend)(
                lib.delayed(fail_on)(i, 1, KeyError) for i in range(4)
            )
        except KeyError as exc:
            return exc.__cause__ is not None and "fail_on" in str(exc.__cause__)
        return "no error"

    assert both(scenario) == (True, True)


@pytest.mark.slow  # uses joblib's own loky pool, which restarts after errors: ~1 s
# joblib 1.6's vendored loky sometimes raises KeyError in its ExecutorManagerThread when joblib
# aborts this call (process_executor.py, add_call_item_to_queue; about 1 run in 4 on Python
# 3.10), which pytest turns into this warning. The same input on pardo alone is checked with
# the warning as an error by tests/test_parallel.py::test_input_iterator_exception_propagates.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_same_input_iterator_exception(backend: str) -> None:
    def scenario(lib: ModuleType) -> Any:
        return outcome(lambda: lib.Parallel(n_jobs=2, backend=backend)(broken_input(lib)))

    if backend == "multiprocessing":
        # joblib's own multiprocessing pool can hang for good in terminate() when the input
        # raises (its task handler blocks on the result queue's lock: a CI run on 2026-12-02
        # timed out there, inside joblib). pardo's side is checked alone here.
        assert scenario(pardo) is IndexError
        return
    assert both(scenario) == (IndexError, IndexError)


@pytest.mark.slow  # uses joblib's own loky pool, which restarts after errors: ~1 s
def test_unpicklable_task_is_a_pickling_error_on_loky() -> None:
    lock = threading.Lock()

    def scenario(lib: ModuleType) -> Any:
        try:
            lib.Parallel(n_jobs=2, backend="loky")(lib.delayed(id)(lock) for _ in range(2))
        except Exception as exc:
            return isinstance(exc, pickle.PicklingError)
        return "no error"

    assert both(scenario) == (True, True)


def test_timeout_is_a_multiprocessing_timeout_error() -> None:
    event = threading.Event()

    def scenario(lib: ModuleType) -> Any:
        try:
            lib.Parallel(n_jobs=2, backend="threading", timeout=0.1)(
                lib.delayed(event.wait)(30) for _ in range(2)
            )
        except Exception as exc:
            return isinstance(exc, multiprocessing.TimeoutError)
        finally:
            event.set()  # release the threads, then arm the event again for the next library
            event.clear()
        return "no error"

    assert both(scenario) == (True, True)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_jobs": 0},
        {"n_jobs": "2.3"},
        {"batch_size": 0},
        {"batch_size": "big"},
        {"return_as": "lists"},
        {"prefer": "gpu"},
        {"require": "nothing"},
        {"prefer": "processes", "require": "sharedmem"},
        {"require": "sharedmem", "backend": "loky"},
        {"backend": "no-such-backend"},
    ],
)
def test_same_argument_errors(kwargs: dict[str, Any]) -> None:
    def scenario(lib: ModuleType) -> Any:
        return outcome(lambda: lib.Parallel(**{"n_jobs": 2, **kwargs})([lib.delayed(abs)(1)]))

    assert both(scenario) == (ValueError, ValueError)


# -- n_jobs arithmetic -------------------------------------------------------------------------


@pytest.mark.parametrize("n_jobs", [1, 2, 3, -1, -2, -100, 2.0, 2.7, "3", -1.5])
def test_same_parallel_n_jobs(n_jobs: Any) -> None:
    assert both(lambda lib: lib.Parallel(n_jobs=n_jobs).n_jobs) == (int(n_jobs),) * 2


@pytest.mark.parametrize("n_jobs", [1, 2, 5, -1, -2, -3, -100])
def test_same_effective_n_jobs(n_jobs: int) -> None:
    theirs, ours = both(lambda lib: lib.effective_n_jobs(n_jobs))
    assert ours == theirs


def test_same_effective_n_jobs_under_configs() -> None:
    def scenario(lib: ModuleType) -> Any:
        out = [lib.effective_n_jobs()]
        with lib.parallel_config(backend="sequential"):
            out += [lib.effective_n_jobs(-1), lib.effective_n_jobs(4)]
        with lib.parallel_config(backend="threading", n_jobs=3):
            out += [lib.effective_n_jobs(None), lib.effective_n_jobs(2)]
        return out

    theirs, ours = both(scenario)
    assert ours == theirs


def test_same_cpu_count() -> None:
    theirs, ours = both(lambda lib: (lib.cpu_count(), lib.cpu_count(only_physical_cores=True)))
    assert ours == theirs


def test_same_effective_n_jobs_error_for_zero() -> None:
    assert both(lambda lib: outcome(lambda: lib.effective_n_jobs(0))) == (ValueError, ValueError)


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(("backend", "n_jobs"), [("threading", -1), ("loky", 2), ("sequential", 3)])
def test_same_parallel_backend_tuple(backend: str, n_jobs: int) -> None:
    def scenario(lib: ModuleType) -> Any:
        with lib.parallel_backend(backend, n_jobs=n_jobs) as (instance, jobs):
            return type(instance).__name__, jobs, lib.Parallel().n_jobs

    theirs, ours = both(scenario)
    assert ours == theirs


def test_same_parallel_backend_default_n_jobs() -> None:
    def scenario(lib: ModuleType) -> Any:
        with lib.parallel_backend("threading") as (_, jobs):
            return jobs

    assert both(scenario) == (-1, -1)


def test_same_config_precedence() -> None:
    def scenario(lib: ModuleType) -> Any:
        with lib.parallel_config(n_jobs=2, verbose=0):
            explicit = lib.Parallel(n_jobs=3).n_jobs
            unset = lib.Parallel().n_jobs
            explicit_none = lib.Parallel(n_jobs=None).n_jobs
        return explicit, unset, explicit_none

    theirs, ours = both(scenario)
    assert ours == theirs


@pytest.mark.slow  # uses joblib's own loky pool, which restarts after errors: ~1 s
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"prefer": "threads"},
        {"prefer": "processes"},
        {"require": "sharedmem"},
        {"prefer": "threads", "backend": "loky"},
        {"n_jobs": 1},
        {"n_jobs": -1000},
    ],
)
def test_same_backend_choice(kwargs: dict[str, Any]) -> None:
    theirs, ours = both(lambda lib: kind_of_run(lib, **kwargs))
    assert ours == theirs


@pytest.mark.slow  # uses joblib's own loky pool, which restarts after errors: ~1 s
def test_same_backend_choice_under_configs() -> None:
    def scenario(lib: ModuleType) -> Any:
        out = []
        with lib.parallel_config(prefer="threads"):
            out.append(kind_of_run(lib))
        with lib.parallel_config(backend="loky"):
            out.append(kind_of_run(lib, prefer="threads"))
            out.append(kind_of_run(lib, require="sharedmem"))
        with lib.parallel_config(backend="threading", n_jobs=2):
            out.append(kind_of_run(lib, n_jobs=None))
        return out

    theirs, ours = both(scenario)
    assert ours == theirs


def test_same_nesting_in_threads() -> None:
    def scenario(lib: ModuleType) -> Any:
        return lib.Parallel(n_jobs=2, backend="threading")(
            [lib.delayed(nested_kinds)(lib) for _ in range(2)]
        )

    theirs, ours = both(scenario)
    assert ours == theirs == [("threads", "caller")] * 2
