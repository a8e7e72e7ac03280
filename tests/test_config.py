"""``parallel_config`` / ``parallel_backend``, backend choice rules, the registry, n_jobs helpers.

Which backend ran a call is observed from the tasks themselves: same pid and another thread means
threads, another pid means processes, same thread means the caller ran it (sequential).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import pardo
import pardo.backends
import pardo.backends._registry
from pardo import (
    Backend,
    Parallel,
    cpu_count,
    delayed,
    effective_n_jobs,
    parallel_backend,
    parallel_config,
    register_parallel_backend,
)
from pardo.backends._threading import ThreadingBackend


def where() -> tuple[int, int]:
    """(pid, thread id) of whoever runs the task."""
    return os.getpid(), threading.get_ident()


def run_kind(**kwargs: Any) -> str:
    """'caller', 'threads' or 'processes': where a 2-task call with ``kwargs`` ran."""
    kwargs.setdefault("n_jobs", 2)
    out = Parallel(**kwargs)(delayed(where)() for _ in range(2))
    if all(r == where() for r in out):
        return "caller"
    return "threads" if all(pid == os.getpid() for pid, _ in out) else "processes"


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let a test register backends without leaking them into other tests."""
    monkeypatch.setattr(
        pardo.backends._registry, "_REGISTRY", dict(pardo.backends._registry._REGISTRY)
    )
    yield


# -- parallel_config ---------------------------------------------------------------------------


def test_config_sets_parallel_defaults() -> None:
    with parallel_config(backend="threading", n_jobs=2, verbose=0):
        assert Parallel().n_jobs == 2
        assert run_kind(n_jobs=None) == "threads"
    assert Parallel().n_jobs == 1  # unset: the default backend's default, as in joblib


def test_enter_returns_the_active_settings() -> None:
    with parallel_config(backend="threading", n_jobs=3) as config:
        # As in joblib: the backend reads as an instance, at the nesting level tasks would see.
        assert type(config["backend"]).__name__ == "ThreadingBackend"
        assert config["backend"].nesting_level == 0
        assert config["n_jobs"] == 3


def test_explicit_arguments_win_over_the_config() -> None:
    with parallel_config(backend="threading", n_jobs=3, verbose=10):
        p = Parallel(n_jobs=2, verbose=0)
        assert (p.n_jobs, p.verbose) == (2, 0)
        assert run_kind(backend="sequential") == "caller"
        assert run_kind(backend="loky") == "processes"


def test_explicit_none_means_unset_as_in_joblib() -> None:
    # scikit-learn passes n_jobs=None through explicitly; the config must still apply.
    with parallel_config(backend="threading", n_jobs=2):
        assert run_kind(n_jobs=None, backend=None) == "threads"
        assert Parallel(n_jobs=None).n_jobs == 2


def test_configs_nest_and_inherit_unset_keys() -> None:
    with parallel_config(backend="threading", n_jobs=3):
        with parallel_config(n_jobs=2):
            assert Parallel().n_jobs == 2
            assert run_kind(n_jobs=None) == "threads"
        assert Parallel().n_jobs == 3
    assert Parallel().n_jobs == 1


def test_config_is_restored_after_an_exception() -> None:
    with pytest.raises(KeyError), parallel_config(n_jobs=3):
        raise KeyError("boom")
    assert Parallel().n_jobs == 1


def test_config_is_per_thread() -> None:
    seen: list[tuple[Any, int]] = []

    def other_thread() -> None:
        seen.append((Parallel().n_jobs, effective_n_jobs(None)))

    with parallel_config(backend="threading", n_jobs=3):
        assert effective_n_jobs(None) == 3
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert seen == [(1, 1)]


def test_config_backend_params_reach_the_backend() -> None:
    box: list[str] = []
    with parallel_config(backend="threading", initializer=box.append, initargs=("init",)):
        Parallel(n_jobs=2)(delayed(abs)(i) for i in range(4))
    assert box and set(box) == {"init"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_jobs": 0},
        {"n_jobs": "2.3"},
        {"mmap_mode": "x"},
        {"prefer": "gpu"},
        {"require": "nothing"},
        {"prefer": "processes", "require": "sharedmem"},
        {"max_nbytes": "lots"},
        {"initializer": print},  # backend parameters without a backend
        {"inner_max_num_threads": 2},  # idem
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: SIM117 - the error may come from either step
        with parallel_config(**kwargs):
            pass


def test_config_rejects_params_with_a_backend_instance() -> None:
    with pytest.raises(ValueError, match="initializer"):
        parallel_config(backend=ThreadingBackend(), initializer=print)


# -- parallel_backend --------------------------------------------------------------------------


def test_parallel_backend_yields_backend_and_n_jobs() -> None:
    with parallel_backend("threading") as (backend, n_jobs):
        assert isinstance(backend, Backend)
        assert type(backend).__name__ == "ThreadingBackend"
        assert n_jobs == -1
        assert Parallel().n_jobs == -1
        assert run_kind(n_jobs=None) == "threads"
    with parallel_backend("loky", n_jobs=2) as (backend, n_jobs):
        assert type(backend).__name__ == "LokyBackend"
        assert n_jobs == 2


# -- prefer / require --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "kind"),
    [
        ({"prefer": "threads"}, "threads"),
        ({"prefer": "processes"}, "processes"),
        ({"require": "sharedmem"}, "threads"),
        ({"prefer": "threads", "backend": "loky"}, "processes"),  # a hint never beats a choice
        ({"require": "sharedmem", "backend": "threading"}, "threads"),
        ({"require": "sharedmem", "n_jobs": 1}, "caller"),
    ],
)
def test_prefer_and_require(kwargs: dict[str, Any], kind: str) -> None:
    assert run_kind(**kwargs) == kind


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prefer": "processes", "require": "sharedmem"},
        {"require": "sharedmem", "backend": "loky"},
        {"require": "sharedmem", "backend": "multiprocessing"},
        {"prefer": "bad"},
        {"require": "bad"},
    ],
)
def test_prefer_and_require_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Parallel(n_jobs=2, **kwargs)([delayed(abs)(1)])


def test_config_prefer_is_a_hint_and_config_backend_beats_it() -> None:
    with parallel_config(prefer="threads"):
        assert run_kind() == "threads"
    with parallel_config(backend="loky"):
        assert run_kind(prefer="threads") == "processes"


def test_require_sharedmem_replaces_a_config_backend(capsys: pytest.CaptureFixture[str]) -> None:
    with parallel_config(backend="loky"):
        assert run_kind(require="sharedmem", verbose=10) == "threads"
    out = capsys.readouterr().out
    assert "Using ThreadingBackend as joblib backend instead of LokyBackend" in out


# -- registry ----------------------------------------------------------------------------------


class MarkedThreads(ThreadingBackend):
    """A registered backend whose tasks run in threads named ``marked-...``."""

    def submit(self, batch: Any) -> Any:
        def named() -> Any:
            threading.current_thread().name = "marked-worker"
            return batch()

        return super().submit(named)


def thread_name() -> str:
    return threading.current_thread().name


@pytest.mark.usefixtures("clean_registry")
def test_register_parallel_backend_makes_a_name_usable() -> None:
    register_parallel_backend("marked", MarkedThreads)
    out = Parallel(n_jobs=2, backend="marked")(delayed(thread_name)() for _ in range(3))
    assert set(out) == {"marked-worker"}
    with parallel_config(backend="marked", n_jobs=2):
        assert set(Parallel()(delayed(thread_name)() for _ in range(3))) == {"marked-worker"}
    assert pardo.backends.get_default_backend() == "loky"


@pytest.mark.usefixtures("clean_registry")
def test_register_parallel_backend_make_default() -> None:
    register_parallel_backend("marked", MarkedThreads, make_default=True)
    assert set(Parallel(n_jobs=2)(delayed(thread_name)() for _ in range(3))) == {"marked-worker"}
    assert effective_n_jobs(2) == 2


@pytest.mark.usefixtures("clean_registry")
def test_unknown_backend_lists_the_known_ones() -> None:
    register_parallel_backend("marked", MarkedThreads)
    with pytest.raises(ValueError, match="nope") as info:
        Parallel(n_jobs=2, backend="nope")([delayed(abs)(1)])
    for name in ("loky", "multiprocessing", "sequential", "threading", "marked"):
        assert name in str(info.value)


@pytest.mark.usefixtures("clean_registry")
def test_register_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        register_parallel_backend("", MarkedThreads)
    with pytest.raises(TypeError):
        register_parallel_backend("x", "not callable")  # type: ignore[arg-type]


# -- effective_n_jobs / cpu_count --------------------------------------------------------------


def test_effective_n_jobs_arithmetic() -> None:
    cpus = cpu_count()
    assert effective_n_jobs(1) == 1
    assert effective_n_jobs(3) == 3
    assert effective_n_jobs() == effective_n_jobs(-1) == cpus
    assert effective_n_jobs(-2) == max(cpus - 1, 1)
    assert effective_n_jobs(-cpus - 10) == 1
    assert effective_n_jobs(None) == 1


@pytest.mark.parametrize("bad", [0, "2.3", "many"])
def test_effective_n_jobs_rejects_bad_values(bad: Any) -> None:
    with pytest.raises(ValueError):
        effective_n_jobs(bad)


def test_effective_n_jobs_follows_the_active_backend() -> None:
    with parallel_config(backend="sequential"):
        assert effective_n_jobs(-1) == 1
        assert effective_n_jobs(4) == 1
    with parallel_config(backend="threading", n_jobs=3):
        assert effective_n_jobs(None) == 3


def test_cpu_count_is_lokys() -> None:
    loky = pytest.importorskip("loky")
    assert cpu_count() == loky.cpu_count() >= 1
    assert 1 <= cpu_count(only_physical_cores=True) <= cpu_count()
    if hasattr(os, "sched_getaffinity"):
        assert cpu_count() <= len(os.sched_getaffinity(0))
