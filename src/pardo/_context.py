"""Carry the caller's context into tasks: its ``contextvars`` and settings that libraries register.

Thread backends already run each batch in a copy of the caller's ``contextvars`` context. Process
workers cannot share it, so at call time pardo snapshots the caller's context variables whose
values pickle, each named by the module attribute that holds it (``mylib.settings.CURRENT``), and
the worker sets the same variables around each batch. Variables that are not module attributes,
or whose module the worker has not imported, are skipped.

Libraries whose settings live elsewhere (a ``threading.local``, a global) register a pair with
``register_context_propagator(capture, restore)``: ``capture()`` runs in the caller at call time
and returns a picklable snapshot; ``restore(snapshot)`` runs in the worker (process or thread)
around each batch and may return a callable that undoes it.
"""

from __future__ import annotations

import contextvars
import pickle
import sys
from collections.abc import Callable
from typing import Any

from pardo import _config

__all__ = ["capture", "register_context_propagator", "restore_vars"]

Propagator = tuple[Callable[[], Any], Callable[[Any], Any]]

#: Registered (capture, restore) pairs, in registration order.
_PROPAGATORS: list[Propagator] = []
#: Where each context variable seen so far lives, ``(module, attribute)`` or None; capped.
_HOMES: dict[contextvars.ContextVar[Any], tuple[str, str] | None] = {}
_HOMES_MAX = 1024
_MAIN_NAMES = ("__main__", "__mp_main__")


def register_context_propagator(
    capture: Callable[[], Any], restore: Callable[[Any], Any]
) -> Callable[[], None]:
    """Carry library state into every task; returns a function that unregisters the pair.

    Args:
        capture: called with no arguments in the caller when a ``Parallel`` call starts; returns
            a snapshot (it must pickle to reach process workers).
        restore: called with the snapshot in the worker before each batch; may return a
            callable, called after the batch to undo what ``restore`` did.

    Example (carry the caller's warning filters)::

        def restore(filters):
            saved, warnings.filters[:] = warnings.filters[:], filters
            return lambda: warnings.filters.__setitem__(slice(None), saved)

        pardo.register_context_propagator(lambda: list(warnings.filters), restore)
    """
    if not callable(capture) or not callable(restore):
        msg = f"capture and restore must be callables, got {capture!r} and {restore!r}"
        raise TypeError(msg)
    pair = (capture, restore)
    if pair not in _PROPAGATORS:
        _PROPAGATORS.append(pair)

    def unregister() -> None:
        if pair in _PROPAGATORS:
            _PROPAGATORS.remove(pair)

    return unregister


def capture(*, carry_vars: bool, run_propagators: bool) -> tuple[tuple[Any, Any], ...]:
    """The ``(restore, snapshot)`` pairs a batch restores in its worker (see ``Batch.context``)."""
    pairs: list[tuple[Any, Any]] = []
    if carry_vars:
        values = _portable_vars()
        if values:
            pairs.append((restore_vars, values))
    if run_propagators:
        pairs.extend((restore, grab()) for grab, restore in list(_PROPAGATORS))
    return tuple(pairs)


def _portable_vars() -> tuple[tuple[str, str, Any], ...]:
    found = []
    for var, value in contextvars.copy_context().items():
        if var is _config.CONFIG:  # the nested configuration travels separately
            continue
        home = _home(var)
        if home is not None and _pickles(value):
            found.append((*home, value))
    return tuple(found)


def _home(var: contextvars.ContextVar[Any]) -> tuple[str, str] | None:
    if var in _HOMES:
        return _HOMES[var]
    if len(_HOMES) >= _HOMES_MAX:
        _HOMES.clear()
    home = _search(var)
    _HOMES[var] = home
    return home


def _search(var: contextvars.ContextVar[Any]) -> tuple[str, str] | None:
    modules = []
    for name, module in list(sys.modules.items()):
        namespace = getattr(module, "__dict__", None)
        if isinstance(namespace, dict):
            modules.append((name, namespace))
    # A worker's __main__ is not the caller's: a home in an importable module comes first.
    modules.sort(key=lambda item: item[0] in _MAIN_NAMES)
    # Usually the attribute is named like the variable: try that before scanning everything.
    for name, namespace in modules:
        if namespace.get(var.name) is var:
            return name, var.name
    for name, namespace in modules:
        for attr, value in list(namespace.items()):
            if value is var:
                return name, attr
    return None


def _pickles(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        try:
            import cloudpickle

            cloudpickle.dumps(value)
        except Exception:
            return False
    return True


def restore_vars(values: tuple[tuple[str, str, Any], ...]) -> Callable[[], None]:
    """Worker side: set each carried variable; returns the undo (resets them)."""
    tokens = []
    for module, attr, value in values:
        var = getattr(sys.modules.get(module), attr, None)
        if isinstance(var, contextvars.ContextVar):
            tokens.append((var, var.set(value)))

    def undo() -> None:
        for var, token in reversed(tokens):
            var.reset(token)

    return undo
