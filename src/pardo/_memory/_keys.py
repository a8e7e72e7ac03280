"""Memory's cache key: a 128-bit xxh3 digest of a call's bound arguments, at memory speed.

Not ``pardo.hash`` (joblib's algorithm, kept for compatibility): numpy array buffers go straight
into xxh3-128 without a copy when contiguous, everything else through the C pickler. Equal values
give equal keys: dict and set items are put in a canonical order first, and the pickler runs
without a memo, so whether two equal sub-objects are the same object does not change the key.
"""

from __future__ import annotations

import io
import pickle
import sys
from typing import Any

import xxhash

__all__ = ["call_key"]

_ATOMIC = (type(None), bool, int, float, complex, str, bytes)
_ARRAY = "\x00pardo.array"
_DICT = "\x00pardo.dict"
_SET = "\x00pardo.set"
_CYCLE = "\x00pardo.cycle"


class _Canon:
    """One walk over an argument tree: containers rebuilt in canonical order, arrays digested."""

    def __init__(self) -> None:
        np = sys.modules.get("numpy")
        self._ndarray: Any = None if np is None else np.ndarray
        self._open: dict[int, int] = {}  # id -> depth of the containers being walked (cycles)

    def walk(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in _ATOMIC:
            return obj
        if isinstance(obj, (list, tuple, dict, set, frozenset)):
            depth = self._open.get(id(obj))
            if depth is not None:  # a container inside itself: name the level it points back to
                return (_CYCLE, len(self._open) - depth)
            self._open[id(obj)] = len(self._open)
            try:
                return self._container(obj, kind)
            finally:
                del self._open[id(obj)]
        if self._ndarray is not None and isinstance(obj, self._ndarray) and not obj.dtype.hasobject:
            return _array_token(obj)
        return obj

    def _container(self, obj: Any, kind: type) -> Any:
        if kind is tuple or kind is list:
            return kind(self.walk(item) for item in obj)
        if isinstance(obj, dict):
            items = [(self.walk(k), self.walk(v)) for k, v in obj.items()]
            return (_DICT, _qualified(kind), _ordered(items))
        if isinstance(obj, (set, frozenset)):
            return (_SET, _qualified(kind), _ordered([self.walk(item) for item in obj]))
        return obj  # a list or tuple subclass: pickled as it is


def _qualified(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _ordered(items: list[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:  # unorderable: order by each item's own canonical bytes
        return sorted(items, key=_dumps)


def _array_token(array: Any) -> tuple[Any, ...]:
    """(tag, dtype, shape, layout, digest): a memmap and an equal ndarray give the same token."""
    if array.flags.c_contiguous:
        layout, flat = "C", array
    elif array.flags.f_contiguous:
        layout, flat = "F", array.T
    else:
        layout, flat = "C", array.copy(order="C")
    digest = xxhash.xxh3_128_digest(flat.reshape(-1).view("u1")) if flat.size else b""
    return (_ARRAY, flat.dtype.str, array.shape, layout, digest)


def _dumps(obj: Any) -> bytes:
    stream = io.BytesIO()
    pickler = pickle.Pickler(stream, protocol=4)
    pickler.fast = True  # no memo: shared sub-objects are written in full, like equal copies
    try:
        pickler.dump(obj)
    except ValueError:  # a cyclic structure cannot be written without the memo
        return pickle.dumps(obj, protocol=4)
    return stream.getvalue()


def call_key(arguments: Any) -> str:
    """Hex key (32 digits) of ``arguments``, the bound arguments of one call."""
    return xxhash.xxh3_128_hexdigest(_dumps(_Canon().walk(arguments)))
