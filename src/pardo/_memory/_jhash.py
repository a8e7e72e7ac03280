"""``pardo.hash``: the digest ``joblib.hash`` gives, computed by pardo's own code.

joblib's digest is md5 (or sha1) over two things, in the order the walk meets them: the raw bytes
of every numpy array (non-object dtype), plus an isolated pickle of each dtype, fed in as the walk
reaches them; and, at the end, the protocol-3 stream of the pure-Python pickler with these rules:

- an array is pickled as ``(its class, ("HASHED", dtype, shape, strides))``, a memmap as
  ``numpy.ndarray`` under ``coerce_mmap``; a dtype writes nothing to the stream;
- str and bytes are never memoized; dict items are written sorted, and when the keys do not
  order, each key is replaced by its own md5 digest (joblib's fallback calls its module's
  ``hash``, not the builtin); a set is written as a ``joblib.hashing._ConsistentSet`` holding its
  items sorted (or, unorderable, their md5 digests);
- bound and builtin methods become ``joblib.hashing._MyHash(name, self[, class])``;
- classes, functions and builtins are written by reference.

The class names ``joblib.hashing._MyHash`` / ``_ConsistentSet`` are part of the bytes hashed, so
they are written as such even though joblib need not be installed. This is for compatibility only:
Memory's cache key is ``pardo._memory._keys``, a different and much faster function.
"""

from __future__ import annotations

import decimal
import hashlib
import io
import pickle
import sys
import types
from typing import Any

__all__ = ["hash"]

_HASH_NAMES = ("md5", "sha1")
_JOBLIB_MODULE = b"joblib.hashing"


class _MethodStandIn:
    """What a bound method is hashed as (written as ``joblib.hashing._MyHash``)."""

    def __init__(self, *args: Any) -> None:
        self.args = args


class _SortedSet:
    """What a set is hashed as (written as ``joblib.hashing._ConsistentSet``)."""

    def __init__(self, items: Any) -> None:
        try:
            self._sequence = sorted(items)
        except (TypeError, decimal.InvalidOperation):
            # joblib's fallback orders by each item's own md5 digest (its module's ``hash``).
            self._sequence = sorted(hash(item) for item in items)


_STAND_IN_NAMES = {_MethodStandIn: b"_MyHash", _SortedSet: b"_ConsistentSet"}
#: The pure-Python pickler (typed loosely: its hooks are not part of the typeshed stubs).
_PyPickler: Any = vars(pickle)["_Pickler"]


class _DigestPickler(_PyPickler):  # type: ignore[misc]
    """The pure-Python pickler, bent to joblib's hashing rules (see the module docstring)."""

    dispatch = _PyPickler.dispatch.copy()

    def __init__(self, hash_name: str, coerce_mmap: bool, numpy: Any) -> None:
        self.stream = io.BytesIO()
        super().__init__(self.stream, protocol=3)
        self.digest = hashlib.new(hash_name, usedforsecurity=False)
        self._coerce_mmap = coerce_mmap
        self._np = numpy

    def digest_of(self, obj: Any) -> str:
        self.dump(obj)
        self.digest.update(self.stream.getvalue())
        return self.digest.hexdigest()

    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        np = self._np
        if np is not None:
            if isinstance(obj, np.ndarray) and not obj.dtype.hasobject:
                obj = self._array_stand_in(obj)
            elif isinstance(obj, np.dtype):
                self.digest.update(b"_HASHED_DTYPE")
                self.digest.update(pickle.dumps(obj))
                return
        if isinstance(obj, (types.MethodType, types.BuiltinMethodType)):
            obj = _method_stand_in(obj)
        super().save(obj)

    def _array_stand_in(self, array: Any) -> Any:
        np = self._np
        if array.shape == ():
            flat = array.flatten()
        elif array.flags.c_contiguous:
            flat = array
        elif array.flags.f_contiguous:
            flat = array.T
        else:
            flat = array.flatten()
        self.digest.update(memoryview(flat.view(np.uint8)))
        klass = type(array)
        if self._coerce_mmap and isinstance(array, np.memmap):
            klass = np.ndarray
        return (klass, ("HASHED", array.dtype, array.shape, array.strides))

    def memoize(self, obj: Any) -> None:
        if not isinstance(obj, (bytes, str)):
            super().memoize(obj)

    def save_global(self, obj: Any, name: str | None = None) -> None:
        stand_in = _STAND_IN_NAMES.get(obj)
        if stand_in is None:
            super().save_global(obj, name)
            return
        self.write(pickle.GLOBAL + _JOBLIB_MODULE + b"\n" + stand_in + b"\n")
        self.memoize(obj)

    # joblib sends every class, function and builtin straight to save_global.
    for _kind in (type, types.FunctionType, types.BuiltinFunctionType):
        dispatch[_kind] = save_global
    del _kind

    def _batch_setitems(self, items: Any, *rest: Any) -> None:
        pairs = list(items)
        try:
            ordered = sorted(pairs)
        except TypeError:
            ordered = sorted((hash(key), value) for key, value in pairs)
        super()._batch_setitems(iter(ordered), *rest)

    def save_set(self, obj: Any) -> None:
        self.save(_SortedSet(obj))

    dispatch[set] = save_set


def _method_stand_in(method: Any) -> _MethodStandIn:
    func = getattr(method, "__func__", method)
    owner = method.__self__
    if isinstance(owner, types.ModuleType):
        return _MethodStandIn(func.__name__, owner.__name__)
    if owner is None:
        return _MethodStandIn(func.__name__, owner)
    return _MethodStandIn(func.__name__, owner, type(owner))


def hash(obj: Any, hash_name: str = "md5", coerce_mmap: bool = False) -> str:
    """The hex digest ``joblib.hash(obj, hash_name, coerce_mmap)`` returns, for any object.

    Args:
        hash_name: "md5" (default) or "sha1".
        coerce_mmap: hash a ``numpy.memmap`` as the equal ``numpy.ndarray``.

    Equal numpy arrays give equal digests; dict and set order does not matter. This is joblib's
    algorithm, kept for compatibility (stored digests, tests); ``Memory``'s own cache keys use a
    faster function.
    """
    if hash_name not in _HASH_NAMES:
        msg = (
            f"Valid options for 'hash_name' are {_HASH_NAMES}. Got hash_name={hash_name!r} instead."
        )
        raise ValueError(msg)
    numpy = sys.modules.get("numpy")
    pickler = _DigestPickler(hash_name, coerce_mmap, numpy)
    try:
        return pickler.digest_of(obj)
    except pickle.PicklingError as exc:
        exc.args += (f"PicklingError while hashing {obj!r}: {exc!r}",)
        raise
