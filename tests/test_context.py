"""Context propagation: the caller's ``contextvars`` and registered library settings reach tasks.

Task functions and context variables live at module level, so process workers find both.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pardo import Parallel, delayed, parallel_config
from pardo._config import get_config
from pardo._context import _search, capture, register_context_propagator, restore_vars
from pardo._task import Batch

REQUEST = contextvars.ContextVar("REQUEST", default="unset")
_hidden_name = contextvars.ContextVar("some_other_name", default="unset")
LOCKED = contextvars.ContextVar("LOCKED", default=None)
ALIASED = contextvars.ContextVar("ALIASED", default=None)

#: Library state of the kind scikit-learn keeps: per thread, not in a ContextVar.
_library = threading.local()


def library_setting() -> str:
    return getattr(_library, "value", "library default")


def set_library_setting(value: str) -> Callable[[], None]:
    old = library_setting()
    _library.value = value

    def undo() -> None:
        _library.value = old

    return undo


def read_request(_: int) -> str:
    return REQUEST.get()


def read_hidden(_: int) -> str:
    return _hidden_name.get()


def read_locked(_: int) -> str:
    return type(LOCKED.get()).__name__


def read_setting(_: int) -> str:
    return library_setting()


def read_config_backend(_: int) -> Any:
    return get_config().get("backend")


def warn_deprecated(_: int) -> str:
    warnings.warn("old api", DeprecationWarning, stacklevel=1)
    return "ok"


@pytest.fixture
def propagator() -> Iterator[None]:
    """The library setting registered for the test, unregistered after."""
    unregister = register_context_propagator(library_setting, set_library_setting)
    yield
    unregister()


def test_caller_contextvars_reach_tasks(backend: str) -> None:
    """A ContextVar set by the caller is seen by tasks on every backend."""
    token = REQUEST.set("request-42")
    try:
        out = Parallel(n_jobs=2, backend=backend)(delayed(read_request)(i) for i in range(4))
    finally:
        REQUEST.reset(token)
    assert out == ["request-42"] * 4


def test_values_follow_each_call_into_reused_workers(backend: str) -> None:
    """Workers kept across calls (``with Parallel``) see each call's own value, not a stale one."""
    with Parallel(n_jobs=2, backend=backend) as par:
        for value in ("first", "second"):
            token = REQUEST.set(value)
            try:
                assert par(delayed(read_request)(i) for i in range(3)) == [value] * 3
            finally:
                REQUEST.reset(token)


def test_variable_found_under_another_attribute_name(process_backend: str) -> None:
    """A variable whose name differs from its attribute is still found (by scanning the module)."""
    token = _hidden_name.set("found")
    try:
        out = Parallel(n_jobs=2, backend=process_backend)(delayed(read_hidden)(i) for i in range(2))
    finally:
        _hidden_name.reset(token)
    assert out == ["found", "found"]


def test_unpicklable_values_are_left_behind(process_backend: str) -> None:
    """A value that cannot pickle does not break the call; process tasks see the default."""
    with Parallel(n_jobs=2, backend=process_backend) as par:  # workers forked before the set
        token = LOCKED.set(threading.Lock())  # type: ignore[arg-type]
        try:
            out = par(delayed(read_locked)(i) for i in range(2))
        finally:
            LOCKED.reset(token)
    assert out == ["NoneType", "NoneType"]


def test_pardo_config_is_not_carried_over_the_nested_one(process_backend: str) -> None:
    """Tasks see the nested configuration (threading below a process pool), not the caller's."""
    with parallel_config(backend="sequential"):
        out = Parallel(n_jobs=2, backend=process_backend)(
            delayed(read_config_backend)(i) for i in range(2)
        )
    assert out == ["threading", "threading"]


@pytest.mark.usefixtures("propagator")
def test_registered_propagator_carries_library_state(backend: str) -> None:
    """``register_context_propagator`` carries thread-local library state into every backend."""
    undo = set_library_setting("caller's choice")
    try:
        out = Parallel(n_jobs=2, backend=backend)(delayed(read_setting)(i) for i in range(4))
    finally:
        undo()
    assert out == ["caller's choice"] * 4


@pytest.mark.usefixtures("propagator")
def test_restore_is_undone_after_each_batch() -> None:
    """The undo returned by ``restore`` runs when the batch ends, leaving the worker as it was."""
    undo = set_library_setting("during the call")
    try:
        context = capture(carry_vars=False, run_propagators=True)
    finally:
        undo()
    batch = Batch([(read_setting, (0,), {})], 0, {}, context=context)
    assert batch().results == ["during the call"]
    assert library_setting() == "library default"


def test_warning_filters_can_be_carried(backend: str) -> None:
    """The docs' example: carry the caller's warning filters, so an "error" filter applies."""

    def grab() -> list[Any]:
        return list(warnings.filters)

    def restore(filters: list[Any]) -> Callable[[], None]:
        saved = warnings.filters[:]
        warnings.filters[:] = filters
        return lambda: warnings.filters.__setitem__(slice(None), saved)

    unregister = register_context_propagator(grab, restore)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            with pytest.raises(DeprecationWarning, match="old api"):
                Parallel(n_jobs=2, backend=backend)(delayed(warn_deprecated)(i) for i in range(2))
    finally:
        unregister()


def test_register_returns_unregister_and_ignores_duplicates() -> None:
    """Registering the same pair twice keeps one; the returned function removes it."""
    first = register_context_propagator(library_setting, set_library_setting)
    second = register_context_propagator(library_setting, set_library_setting)
    try:
        pairs = capture(carry_vars=False, run_propagators=True)
        assert [restore for restore, _ in pairs] == [set_library_setting]
    finally:
        first()
        second()
    assert capture(carry_vars=False, run_propagators=True) == ()


def test_register_refuses_non_callables() -> None:
    """Both halves must be callables; the error names what was given."""
    with pytest.raises(TypeError, match="capture and restore must be callables"):
        register_context_propagator("get", set_library_setting)  # type: ignore[arg-type]


def test_restore_vars_skips_unknown_modules_and_undoes() -> None:
    """In a worker, variables of modules it has not imported are skipped; undo resets the rest."""
    undo = restore_vars((("no.such.module", "X", 1), (__name__, "REQUEST", "set in worker")))
    assert REQUEST.get() == "set in worker"
    undo()
    assert REQUEST.get() == "unset"


def test_thread_backends_do_not_carry_vars_by_pickling() -> None:
    """Threads share the caller's context already: nothing is pickled for them."""
    token = REQUEST.set("x")
    try:
        assert capture(carry_vars=False, run_propagators=False) == ()
        ((restore, values),) = capture(carry_vars=True, run_propagators=False)
    finally:
        REQUEST.reset(token)
    assert restore is restore_vars
    assert (__name__, "REQUEST", "x") in values


def test_a_home_outside_main_is_preferred(monkeypatch: pytest.MonkeyPatch) -> None:
    """``from mod import VAR`` in a script puts VAR in ``__main__`` too; workers need ``mod``."""
    monkeypatch.setitem(vars(sys.modules["__main__"]), "ALIASED", ALIASED)
    assert _search(ALIASED) == (__name__, "ALIASED")
