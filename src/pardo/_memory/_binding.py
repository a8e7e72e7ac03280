"""Bind a call's arguments to the function's signature once per call, cheaply.

``f(5)`` and ``f(5, y=1)`` are the same call when ``y=1`` is the default; ``ignore`` drops
names. The signature is read once, when the first call arrives; plain positional calls then
skip ``inspect.Signature.bind`` entirely.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["ArgumentError", "Binder"]

_EMPTY = inspect.Parameter.empty
_VAR = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class ArgumentError(TypeError, ValueError):
    """Arguments the function cannot take (a TypeError, and a ValueError as joblib raises)."""

    def __init__(self, name: str, exc: TypeError) -> None:
        lead = "Too many arguments for" if "too many" in str(exc) else "Wrong arguments for"
        super().__init__(f"{lead} {name}(): {exc}")


class Binder:
    """Turns ``(args, kwargs)`` into the tuple of values that identifies a call."""

    def __init__(self, func: Callable[..., Any], ignore: Sequence[str]) -> None:
        try:
            self._signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):  # some builtins have none: key on what was passed
            self._signature = None
        params = [] if self._signature is None else list(self._signature.parameters.values())
        names = {p.name for p in params}
        has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        for name in ignore:
            if name not in names and not has_var_kw:
                msg = f"ignore={list(ignore)!r}: argument {name!r} is not defined for function {getattr(func, '__qualname__', func)!r}"
                raise ValueError(msg)
        self._ignore = frozenset(ignore)
        self._name = getattr(func, "__qualname__", repr(func))
        self._params = params
        self._kept = [i for i, p in enumerate(params) if p.name not in self._ignore]
        # The fast path: only positional-or-keyword parameters, none ignored and no keywords.
        self._plain = all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
        self._defaults = [p.default for p in params]

    def key_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """What the key is computed from: the bound values in signature order, minus ``ignore``."""
        if self._signature is None:
            return (args, kwargs)
        if self._plain and not kwargs and len(args) <= len(self._params):
            defaults = self._defaults
            if _EMPTY not in defaults[len(args) :]:
                values = (*args, *defaults[len(args) :])
                if self._ignore:
                    return tuple(values[i] for i in self._kept)
                return values
        return tuple(self._named(args, kwargs).values())

    def _named(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        assert self._signature is not None
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ArgumentError(self._name, exc) from None
        bound.apply_defaults()
        out: dict[str, Any] = {}
        for param in self._params:
            if param.name in self._ignore:
                continue
            value = bound.arguments[param.name]
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                value = {k: v for k, v in value.items() if k not in self._ignore}
            out[param.name] = value
        return out

    def input_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, str]:
        """``{name: repr(value)}`` for the metadata (joblib's ``input_args``); misses only."""
        if self._signature is None:
            return {"*": repr(args), "**": repr(kwargs)}
        named = self._named(args, kwargs)
        out: dict[str, str] = {}
        for param in self._params:
            if param.name not in named:
                continue
            value = named[param.name]
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                out.update({k: repr(v) for k, v in value.items()})
            elif param.kind is inspect.Parameter.VAR_POSITIONAL:
                out["*"] = repr(list(value))
            else:
                out[param.name] = repr(value)
        return out
