"""The multiprocessing backend under every start method: fork, spawn, forkserver.

Python 3.14 made forkserver the default on Linux, so pardo must not assume forked workers (a
forkserver worker's parent is the fork server, not the caller). As in joblib, a multiprocessing
context passed as ``backend`` selects the multiprocessing backend with that start method, and
``$JOBLIB_START_METHOD`` sets the start method when none is given.
"""

from __future__ import annotations

import multiprocessing
import os
import threading

import joblib
import numpy as np
import pytest

from pardo import Parallel, TaskPicklingError, delayed, parallel_config

pytestmark = pytest.mark.slow  # each test starts a pool of spawned or fork-served workers

METHODS = [m for m in ("spawn", "forkserver") if m in multiprocessing.get_all_start_methods()]


def start_method(_: int) -> str | None:
    """The start method this worker was made with (set in spawned and fork-served workers)."""
    return multiprocessing.get_start_method(allow_none=True)


def env_value(name: str) -> str | None:
    return os.environ.get(name)


def mark_initialized() -> None:
    os.environ["PARDO_TEST_INITIALIZED"] = "yes"


def read_shared(array: np.ndarray, i: int) -> tuple[float, str, bool]:
    return float(array[i]), os.environ.get("PARDO_TEST_INITIALIZED", "no"), type(array) is np.memmap


@pytest.mark.parametrize("method", METHODS)
def test_a_context_as_backend_selects_that_start_method_like_joblib(method: str) -> None:
    context = multiprocessing.get_context(method)
    ours = Parallel(n_jobs=2, backend=context)(delayed(start_method)(i) for i in range(4))
    theirs = joblib.Parallel(n_jobs=2, backend=context)(
        joblib.delayed(start_method)(i) for i in range(4)
    )
    assert ours == theirs == [method] * 4


@pytest.mark.parametrize("method", METHODS)
def test_joblib_start_method_variable_is_honoured(
    monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    monkeypatch.setenv("JOBLIB_START_METHOD", method)
    got = Parallel(n_jobs=2, backend="multiprocessing")(delayed(start_method)(i) for i in range(4))
    assert got == [method] * 4


@pytest.mark.parametrize("method", METHODS)
def test_initializer_and_memmapped_arrays_work_under_every_start_method(method: str) -> None:
    array = np.arange(10_000, dtype=np.float64)
    parallel = Parallel(
        n_jobs=2,
        backend="multiprocessing",
        context=method,
        initializer=mark_initialized,
        max_nbytes="1K",
    )
    got = parallel(delayed(read_shared)(array, i) for i in range(0, 10_000, 1_000))
    assert got == [(float(i), "yes", True) for i in range(0, 10_000, 1_000)]


@pytest.mark.parametrize("where", ["Parallel", "parallel_config"])
def test_a_backend_of_the_wrong_type_is_a_clear_error_at_once(where: str) -> None:
    with pytest.raises(
        ValueError, match=r"backend must be one of .*multiprocessing context, got 42"
    ):
        if where == "Parallel":
            Parallel(n_jobs=2, backend=42)  # type: ignore[arg-type]
        else:
            parallel_config(backend=42)


@pytest.mark.parametrize("method", ["fork", *METHODS])
def test_a_lambda_initializer_works_under_every_start_method(method: str) -> None:
    marker = "PARDO_TEST_LAMBDA"
    parallel = Parallel(
        n_jobs=2,
        backend="multiprocessing",
        context=method,
        initializer=lambda value: os.environ.__setitem__(marker, value),
        initargs=("set",),
    )
    assert parallel(delayed(env_value)(marker) for _ in range(4)) == ["set"] * 4


def test_an_unpicklable_initializer_is_a_clear_error() -> None:
    lock = threading.Lock()
    parallel = Parallel(n_jobs=2, backend="multiprocessing", initializer=print, initargs=(lock,))
    with pytest.raises(TaskPicklingError, match="initializer or initargs cannot be sent"):
        parallel(delayed(abs)(i) for i in range(2))
