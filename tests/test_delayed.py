"""``delayed`` builds plain ``(func, args, kwargs)`` triples, and ``Parallel`` accepts any such triple.

scikit-learn and others build or rewrite triples by hand and put arbitrary callables in slot 0,
so the triple itself (not a wrapper object) is the contract.
"""

from __future__ import annotations

import copy
import functools
import inspect
import pickle
from typing import Any

import pytest

from pardo import Parallel, delayed
from pardo._task import Batch


def add(a: int, b: int = 0) -> int:
    """Add two numbers (module level, so process workers can import it)."""
    return a + b


class Scaled:
    """A callable object: the kind of thing a wrapper puts in slot 0."""

    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, x: int) -> int:
        return self.factor * x


def test_delayed_returns_a_plain_triple() -> None:
    task = delayed(add)(1, b=2)
    assert type(task) is tuple
    assert task == (add, (1,), {"b": 2})


def test_delayed_keeps_the_function_name() -> None:
    wrapped = delayed(add)
    assert wrapped.__name__ == "add"
    assert wrapped.__wrapped__ is add


def test_delayed_reads_as_the_function_for_help_and_inspect() -> None:
    wrapped = delayed(add)
    assert wrapped.__doc__ == add.__doc__
    assert wrapped.__qualname__ == add.__qualname__
    assert inspect.signature(wrapped) == inspect.signature(add)


def test_delayed_wrapper_survives_pickle_and_copy() -> None:
    wrapped = delayed(add)
    for clone in (pickle.loads(pickle.dumps(wrapped)), copy.copy(wrapped), copy.deepcopy(wrapped)):
        assert clone.__wrapped__ is add
        assert clone(1, b=2) == (add, (1,), {"b": 2})


def test_delayed_accepts_callables_without_a_name() -> None:
    partial = functools.partial(add, 10)
    assert not hasattr(partial, "__name__")
    assert delayed(partial)(5) == (partial, (5,), {})
    assert Parallel(n_jobs=1)([delayed(partial)(5)]) == [15]


def test_delayed_task_pickles_by_reference() -> None:
    task = delayed(add)(3, b=4)
    func, args, kwargs = pickle.loads(pickle.dumps(task))
    assert func is add
    assert func(*args, **kwargs) == 7


def test_parallel_accepts_hand_built_triples(backend: str) -> None:
    tasks: list[Any] = [(add, (i,), {"b": 1}) for i in range(5)]
    assert Parallel(n_jobs=2, backend=backend)(tasks) == [1, 2, 3, 4, 5]


def test_parallel_accepts_any_callable_in_slot_zero(backend: str) -> None:
    tasks = [(Scaled(3), (i,), {}) for i in range(4)] + [(functools.partial(add, b=100), (1,), {})]
    assert Parallel(n_jobs=2, backend=backend)(tasks) == [0, 3, 6, 9, 101]


def test_parallel_accepts_rewritten_triples(backend: str) -> None:
    # scikit-learn rewrites each triple lazily, wrapping the function in a callable object.
    original = (delayed(add)(i, b=i) for i in range(6))
    rewritten = ((functools.partial(f), a, k) for f, a, k in original)
    assert Parallel(n_jobs=2, backend=backend)(rewritten) == [0, 2, 4, 6, 8, 10]


def test_batch_runs_its_tasks_in_order_and_reports() -> None:
    result = Batch([delayed(add)(i, b=1) for i in range(3)], start=7, nested={})()
    assert result.results == [1, 2, 3]
    assert result.failures == []
    assert result.elapsed >= 0


def test_batch_stops_at_the_first_failure_and_records_it() -> None:
    tasks = [delayed(add)(1), delayed(add)("x", b=1), delayed(add)(2)]
    result = Batch(tasks, start=0, nested={})()
    assert result.results == [1]
    [failure] = result.failures
    assert failure.offset == 1
    assert isinstance(failure.exception, TypeError)
    assert "add" in failure.traceback


def test_batch_keep_going_runs_the_rest() -> None:
    tasks = [delayed(add)(1), delayed(add)("x", b=1), delayed(add)(2)]
    result = Batch(tasks, start=0, nested={}, keep_going=True)()
    assert result.results == [1, None, 2]
    assert [f.offset for f in result.failures] == [1]


def test_batch_pickles() -> None:
    batch = Batch([delayed(add)(2, b=3)], start=4, nested={"nesting_level": 1})
    copy = pickle.loads(pickle.dumps(batch))
    assert (copy.start, copy.nested, len(copy)) == (4, {"nesting_level": 1}, 1)
    assert copy().results == [5]


def test_joblib_delayed_triples_are_interchangeable() -> None:
    joblib = pytest.importorskip("joblib")
    assert joblib.delayed(add)(1, b=2) == delayed(add)(1, b=2)
    assert Parallel(n_jobs=1)([joblib.delayed(add)(1, b=2)]) == [3]
