"""joblib's rules that code written for joblib relies on: nested calls, the n_jobs an unset value
stands for, hints that contradict each other, settings a backend cannot honour, the phrases of
joblib's messages, and a Python without ``_multiprocessing``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest

from pardo import (
    Parallel,
    ParallelBackendBase,
    PardoError,
    delayed,
    parallel_backend,
    parallel_config,
)


def square(x: int) -> int:
    return x * x


def inner_run(backend: str, n_jobs: int) -> tuple[list[int], list[str]]:
    """An inner Parallel call: its results and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = Parallel(n_jobs=n_jobs, backend=backend)(delayed(square)(i) for i in range(4))
    return out, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def inner_level(backend: str) -> int:
    with parallel_config(backend) as config:
        level: int = config["backend"].nesting_level
    return level


# -- nesting -----------------------------------------------------------------------------------

#: (outer backend, inner backend): whether an inner call asking for 2 workers gets one, warned.
NESTING = [
    ("loky", "multiprocessing", True),  # a pool forked below a loky worker
    ("loky", "loky", False),  # loky inside loky works
    ("multiprocessing", "multiprocessing", True),  # daemonic workers may not have children
    ("multiprocessing", "loky", True),  # idem: loky falls back instead of failing
    ("threading", "multiprocessing", True),  # no fork() from a task's thread
    ("threading", "loky", True),
]


@pytest.mark.parametrize(("outer", "inner", "limited"), NESTING)
def test_inner_call_is_limited_and_warned_as_in_joblib(
    outer: str, inner: str, limited: bool
) -> None:
    runs = Parallel(n_jobs=2, backend=outer)(delayed(inner_run)(inner, 2) for _ in range(2))
    for out, caught in runs:
        assert out == [0, 1, 4, 9]
        if limited:
            assert len(caught) == 1 and "parallel loops cannot" in caught[0], caught
            assert "setting n_jobs=1" in caught[0]
        else:
            assert caught == []


@pytest.mark.parametrize(("outer", "inner", "limited"), NESTING)
def test_inner_call_asking_one_worker_is_not_warned(outer: str, inner: str, limited: bool) -> None:
    runs = Parallel(n_jobs=2, backend=outer)(delayed(inner_run)(inner, 1) for _ in range(2))
    assert runs == [([0, 1, 4, 9], [])] * 2


@pytest.mark.parametrize("outer", ["threading", "loky", "multiprocessing"])
def test_config_in_a_task_names_the_nesting_level(outer: str) -> None:
    assert inner_level("threading") == 0
    assert Parallel(n_jobs=2, backend=outer)(
        delayed(inner_level)("threading") for _ in range(2)
    ) == [
        1,
        1,
    ]


# -- an unset n_jobs ---------------------------------------------------------------------------


def test_unset_n_jobs_reads_as_the_backend_default() -> None:
    assert Parallel().n_jobs == 1
    assert repr(Parallel()) == "Parallel(n_jobs=1)"
    with parallel_config(backend="threading", n_jobs=3):
        assert Parallel().n_jobs == 3
        with parallel_config(n_jobs=None):  # resets it, as in joblib
            assert Parallel().n_jobs == 1
            with Parallel() as p:
                assert p.n_jobs == 1
        with parallel_backend("threading", n_jobs=None), Parallel() as p:
            assert p.n_jobs == 1


# -- hints and settings that cannot be honoured ------------------------------------------------


@pytest.mark.parametrize("backend", ["loky", "multiprocessing"])
def test_explicit_process_backend_with_sharedmem_is_refused_at_once(backend: str) -> None:
    with pytest.raises(ValueError, match=f"Backend {backend} does not support shared memory"):
        Parallel(backend=backend, require="sharedmem")


def test_processes_preferred_with_sharedmem_required_is_refused() -> None:
    with pytest.raises(ValueError, match="sharedmem"):
        Parallel(prefer="processes", require="sharedmem")


def where() -> int:
    return os.getpid()


def test_sharedmem_beats_a_backend_from_the_config() -> None:
    # scikit-learn relies on it: its estimators require sharedmem under a user's loky config.
    with parallel_config(backend="loky", n_jobs=2):
        pids = Parallel(require="sharedmem")(delayed(where)() for _ in range(4))
    assert set(pids) == {os.getpid()}


@pytest.mark.parametrize("context", [parallel_config, parallel_backend])
@pytest.mark.parametrize("backend", ["threading", "sequential"])
def test_inner_max_num_threads_on_threads_is_refused(context: Any, backend: str) -> None:
    with pytest.raises(AssertionError, match="does not accept setting the inner_max_num_threads"):
        context(backend, inner_max_num_threads=1)
    with pytest.raises(ValueError) as info:
        context(backend, inner_max_num_threads=1)
    assert isinstance(info.value, PardoError)
    assert "process backend" in str(info.value)


def test_inner_max_num_threads_on_a_backend_instance_is_checked() -> None:
    from pardo.backends._threading import ThreadingBackend

    assert issubclass(ThreadingBackend, ParallelBackendBase)
    with pytest.raises(AssertionError, match="ThreadingBackend does not accept"):
        parallel_config(ThreadingBackend(), inner_max_num_threads=2)


@pytest.mark.parametrize("backend", ["loky", "multiprocessing"])
def test_inner_max_num_threads_on_processes_is_taken(backend: str) -> None:
    with parallel_config(backend, inner_max_num_threads=1):
        assert Parallel(n_jobs=2)(delayed(square)(i) for i in range(3)) == [0, 1, 4]


# -- joblib's phrases --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "what"), [("prefer", "backend hint"), ("require", "backend constraint")]
)
def test_bad_hint_messages_carry_joblibs_phrase(name: str, what: str) -> None:
    for make in (lambda: Parallel(**{name: "wrong"}), lambda: parallel_config(**{name: "wrong"})):
        with pytest.raises(ValueError, match=f"{name}=wrong is not a valid {what}") as info:
            make()
        assert "expected one of" in str(info.value)  # pardo's detail stays beside it


class Unpicklable:
    def __reduce__(self) -> Any:
        raise RuntimeError("no pickling here")


@pytest.mark.parametrize("backend", ["loky", "multiprocessing"])
def test_pickling_error_carries_joblibs_phrase(backend: str) -> None:
    with pytest.raises(pickle.PicklingError) as info:
        Parallel(n_jobs=2, backend=backend)(delayed(id)(Unpicklable()) for _ in range(3))
    message = str(info.value)
    assert "Could not pickle the task to send it to the workers" in message
    assert "task 0 (id)" in message and "no pickling here" in message


def test_timeout_warning_is_joblibs() -> None:
    with pytest.warns(UserWarning) as caught:
        Parallel(n_jobs=1, timeout=1)(delayed(square)(i) for i in range(3))
    assert [str(w.message) for w in caught] == [
        "The backend class 'SequentialBackend' does not support timeout. You have set "
        "'timeout=1' in Parallel but the 'timeout' parameter will not be used."
    ]


def test_the_loky_fallback_below_threads_is_not_taken_at_top_level() -> None:
    # A top-level call from a background thread keeps its workers (nesting level 0).
    seen: list[list[str]] = []

    def call() -> None:
        seen.append(inner_run("loky", 2)[1])

    thread = threading.Thread(target=call)
    thread.start()
    thread.join()
    assert seen == [[]]


# -- no _multiprocessing -----------------------------------------------------------------------


def test_works_without_the_multiprocessing_module(tmp_path: Path) -> None:
    # Pyodide-like: importing _multiprocessing fails. A fresh interpreter, so nothing is cached.
    (tmp_path / "_multiprocessing.py").write_text('raise ImportError("no _multiprocessing")\n')
    script = textwrap.dedent(
        """
        import math
        import pardo
        assert pardo.Parallel(n_jobs=1)(pardo.delayed(math.sqrt)(i * i) for i in range(5)) == [
            0.0, 1.0, 2.0, 3.0, 4.0
        ]
        # Not asked for by name: the default runs in the caller, as joblib's does.
        assert pardo.Parallel(n_jobs=2)(pardo.delayed(abs)(-i) for i in range(3)) == [0, 1, 2]
        assert pardo.effective_n_jobs(-1) == 1 and pardo.cpu_count() == 1
        for name in ("loky", "multiprocessing"):
            try:
                pardo.Parallel(n_jobs=2, backend=name)(pardo.delayed(abs)(-1) for _ in range(2))
            except ImportError as exc:
                assert "_multiprocessing" in str(exc) and name in str(exc), exc
            else:
                raise AssertionError(name + " ran without _multiprocessing")
        print("ok")
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
