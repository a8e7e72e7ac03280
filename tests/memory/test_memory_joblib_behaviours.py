"""Public behaviours of joblib's ``Memory`` that pardo matches, found by running joblib 1.6's own
Memory tests against pardo (issue 14): the cache folder's ``.gitignore``, the query line at high
verbosity, a store's ``location`` and repr, and two faults those runs turned up (a lock shared by
different functions, a stray folder made by workers)."""

from __future__ import annotations

import logging
import pathlib
import pickle
import threading
from typing import Any

import cloudpickle
import pytest

from pardo import Memory
from pardo._memory._local import GITIGNORE, LocalStore

CALLS: list[Any] = []


def square(x: int) -> int:
    CALLS.append(x)
    return x * x


def inner(x: int) -> int:
    return x + 1


@pytest.fixture
def memory(tmp_path: pathlib.Path) -> Memory:
    CALLS.clear()
    return Memory(tmp_path, verbose=0)


# -- the .gitignore of a new cache location --------------------------------------------------


def test_new_location_gets_the_same_gitignore_as_joblib_writes(tmp_path: pathlib.Path) -> None:
    Memory(str(tmp_path / "by_str"), verbose=0)
    Memory(tmp_path / "by_path", verbose=0)
    for folder in ("by_str", "by_path"):
        assert (tmp_path / folder / ".gitignore").read_text() == GITIGNORE
    assert GITIGNORE.splitlines()[-1] == "*"  # everything below the location is ignored


def test_gitignore_text_is_joblibs_own(tmp_path: pathlib.Path) -> None:
    joblib = pytest.importorskip("joblib")
    joblib.Memory(tmp_path / "theirs", verbose=0).cache(square)(2)
    Memory(tmp_path / "ours", verbose=0).cache(square)(2)
    theirs = (tmp_path / "theirs" / ".gitignore").read_bytes()
    assert (tmp_path / "ours" / ".gitignore").read_bytes() == theirs


def test_existing_gitignore_is_left_alone(tmp_path: pathlib.Path) -> None:
    (tmp_path / ".gitignore").write_text("mine\n")
    Memory(tmp_path, verbose=0).cache(square)(3)
    assert (tmp_path / ".gitignore").read_text() == "mine\n"


# -- the query line at verbose >= 20 --------------------------------------------------------


def test_verbose_20_announces_every_query_hit_or_miss(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger="pardo.memory")
    f = Memory(tmp_path, verbose=20).cache(square)
    f(3)  # a miss
    f(3)  # a hit
    f.call_and_shelve(4)
    queries = [r.getMessage() for r in caplog.records if "Querying" in r.getMessage()]
    assert len(queries) == 3
    assert "square(x=3)" in queries[0] and str(f.store_backend.location) in queries[0]
    assert capsys.readouterr().out.count("Querying square") == 3


def test_below_verbose_20_queries_are_silent(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)
    for verbose in (0, 1, 19):
        Memory(tmp_path, verbose=verbose).cache(square)(verbose)
    assert "Querying" not in caplog.text
    assert "Querying" not in capsys.readouterr().out


def test_query_line_cuts_a_long_argument(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = Memory(tmp_path, verbose=20).cache(len)
    f("x" * 100_000)
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "Querying" in line]
    assert len(line) < 2_000


# -- a store's location and repr --------------------------------------------------------------


def test_unconfigured_store_has_no_location(tmp_path: pathlib.Path) -> None:
    store = LocalStore()
    assert store.location is None
    assert repr(store) == 'LocalStore(location="None")'
    store.configure(tmp_path)
    assert repr(store) == f'LocalStore(location="{tmp_path}")'


def test_memory_store_repr_names_its_folder(tmp_path: pathlib.Path) -> None:
    store = Memory(str(tmp_path), verbose=0).store_backend
    assert repr(store) == f'LocalStore(location="{tmp_path / "joblib"}")'


# -- faults found on the way ------------------------------------------------------------------


def test_cached_function_calling_another_with_the_same_arguments(memory: Memory) -> None:
    # Both calls have the same argument key; each entry has its own lock, so the outer
    # computation holding its lock does not block (or deadlock) the inner one.
    cached_inner = memory.cache(inner)

    def outer(x: int) -> int:
        return cached_inner(x) * 10

    cached_outer = memory.cache(outer)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(cached_outer(1)), daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the nested cached call never returned"
    assert result == [20]
    assert cached_outer.check_call_in_cache(1) and cached_inner.check_call_in_cache(1)


def test_two_functions_with_equal_arguments_have_their_own_locks(memory: Memory) -> None:
    f = memory.cache(square)
    g = memory.cache(inner)
    ref_f = f._ref((5,), {})
    ref_g = g._ref((5,), {})
    assert ref_f.key == ref_g.key
    store = f.store_backend
    assert isinstance(store, LocalStore)
    assert store._lock_path(ref_f) != store._lock_path(ref_g)


def test_unpickled_wrapper_of_an_interactive_function_adds_no_folder(
    tmp_path: pathlib.Path,
) -> None:
    # A notebook cell's function: cloudpickle gives its code another file name when it travels,
    # so a worker naming the function afresh would pick another folder than the parent's.
    namespace: dict[str, Any] = {}
    source = "def cell(x):\n    return x + 1\n"
    exec(compile(source, "<ipython-input-7-0123456789ab>", "exec"), namespace)
    cell = namespace["cell"]
    cell.__module__ = "__main__"
    memory = Memory(str(tmp_path), verbose=0)
    cached = memory.cache(cell)
    root = tmp_path / "joblib"
    before = sorted(p.name for p in root.iterdir())
    travelled = pickle.loads(cloudpickle.dumps(cached))
    assert travelled(1) == 2
    assert travelled.func_id == cached.func_id
    assert sorted(p.name for p in root.iterdir() if p.name != ".locks") == before
    assert cached.check_call_in_cache(1)


# -- call_and_shelve is lazy ------------------------------------------------------------------


def test_call_and_shelve_of_a_cached_call_reads_nothing(
    memory: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = memory.cache(square)
    f(6)
    store = f.store_backend
    loads: list[Any] = []
    real_load = store.load
    monkeypatch.setattr(
        store, "load", lambda ref, mmap_mode: loads.append(ref) or real_load(ref, mmap_mode)
    )
    shelved = f.call_and_shelve(6)
    assert loads == [] and CALLS == [6]  # neither computed nor read
    assert shelved.get() == 36 and len(loads) == 1  # read when asked for


def test_shelved_damaged_entry_raises_on_get(memory: Memory, tmp_path: pathlib.Path) -> None:
    f = memory.cache(square)
    f(7)
    (pkl,) = [p for p in tmp_path.rglob("*.pkl")]
    pkl.write_bytes(b"garbage")
    shelved = f.call_and_shelve(7)
    with pytest.raises(KeyError, match="corrupted"):
        shelved.get()
    with pytest.warns(UserWarning, match="damaged"):
        assert f(7) == 49
    assert CALLS == [7, 7]  # the call recomputed it
