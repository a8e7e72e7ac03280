"""The cached function: ``MemorizedFunc`` (and its coroutine twin), and the not-memorized stand-ins.

A hit costs one key (``pardo._memory._keys``) and one read; the signature is bound once, the
code digest is computed once per process (and travels with the pickled wrapper, so workers find
the same entries without reading any source). A miss takes the key's lock, looks again (another
process may have just computed it), computes, and stores: N concurrent callers compute once.

``__pardo_lookup__(args, kwargs) -> (hit, value)`` is the protocol ``Parallel`` uses to answer
cached tasks in the parent (``pardo._engine._shortcut``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import filelock

from pardo._memory._binding import Binder
from pardo._memory._code import code_digest, func_id
from pardo._memory._keys import call_key
from pardo._memory._limit import Budget
from pardo._memory._results import MemorizedResult
from pardo._memory._store import CorruptEntry, EntryRef, StoreBackendBase, make_store

__all__ = ["AsyncMemorizedFunc", "MemorizedFunc"]

#: Seconds between two use-time records of one entry by one process (a hit costs no write then).
TOUCH_EVERY = 60.0
#: From this ``verbose`` on, every call (hit or miss) is announced with its key, as in joblib.
QUERY_VERBOSITY = 20
#: Longest argument list a query line shows (a large argument's repr is cut there).
QUERY_SIGNATURE_CHARS = 500
_MISS = (False, None)
#: Receives the query lines as INFO records, besides stdout (as the ``pardo`` logger does for
#: Parallel's verbose lines).
logger = logging.getLogger("pardo.memory")


class MemorizedFunc:
    """``f`` with its results stored on disk, keyed by its arguments and its code.

    Args mirror joblib's ``MemorizedFunc``; ``location`` may also be a configured store.
    pardo only, keyword-only: ``budget`` (the Memory's ``bytes_limit``) and ``identity`` (the
    function's folder name, when already known: a pickled wrapper brings its parent's).
    """

    def __init__(
        self,
        func: Callable[..., Any],
        location: Any,
        backend: str = "local",
        ignore: Sequence[str] | None = None,
        mmap_mode: str | None = None,
        compress: Any = False,
        verbose: int = 1,
        timestamp: float | None = None,
        cache_validation_callback: Callable[[dict[str, Any]], bool] | None = None,
        *,
        budget: Budget | None = None,
        identity: str | None = None,
    ) -> None:
        if cache_validation_callback is not None and not callable(cache_validation_callback):
            msg = f"cache_validation_callback needs to be callable. Got {cache_validation_callback!r}."
            raise ValueError(msg)
        if isinstance(location, StoreBackendBase):
            self.store_backend = location
        else:
            options = {"compress": compress, "mmap_mode": mmap_mode}
            self.store_backend = make_store(backend, location, verbose, options)
        self.func = func
        if isinstance(ignore, str):  # "verbose" would otherwise read as ["v", "e", ...]
            msg = f"ignore={ignore!r} must be a list of argument names, e.g. [{ignore!r}]"
            raise ValueError(msg)
        self.ignore = list(ignore or [])
        self.mmap_mode = mmap_mode
        self.cache_validation_callback = cache_validation_callback
        self.timestamp = time.time() if timestamp is None else timestamp
        # A pickled wrapper brings its parent's name: a worker could name the function otherwise
        # (cloudpickle gives an interactive function's code another file name) and would then
        # create a stray, empty function folder.
        self.func_id = func_id(func) if identity is None else identity
        self.store_backend.create_function_location(self.func_id)
        self._verbose = verbose
        self._budget = budget
        self._binder: Binder | None = None
        self._code: str | None = None
        self._code_of: Any = None  # the __code__ the digest was computed for
        self._touched: dict[str, float] = {}
        self._warned: set[str] = set()
        functools.update_wrapper(self, func)

    # -- the key --------------------------------------------------------------------------------

    def _code_digest(self) -> str:
        code = getattr(self.func, "__code__", None)
        if self._code is None or (code is not None and code is not self._code_of):
            self._code = code_digest(self.func)
            self._code_of = code
        return self._code

    def _ref(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> EntryRef:
        binder = self._binder
        if binder is None:
            binder = self._binder = Binder(self.func, self.ignore)
        key = call_key(binder.key_arguments(args, kwargs))
        return EntryRef(self.func_id, self._code_digest(), key)

    def _queried(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> EntryRef:
        """The call's entry, announced first at ``verbose >= QUERY_VERBOSITY``."""
        ref = self._ref(args, kwargs)
        if self._verbose >= QUERY_VERBOSITY:
            assert self._binder is not None
            named = self._binder.input_args(args, kwargs)
            signature = ", ".join(f"{name}={value}" for name, value in named.items())
            if len(signature) > QUERY_SIGNATURE_CHARS:
                signature = signature[:QUERY_SIGNATURE_CHARS] + "..."
            name = getattr(self.func, "__name__", self.func_id)
            line = (
                f"[Memory] Querying {name} with signature {name}({signature}), argument hash"
                f" {ref.key}, code {ref.code}; store location {self.store_backend.location}"
            )
            print(line)
            logger.info(line)
        return ref

    # -- reading ------------------------------------------------------------------------------

    def _lookup(self, ref: EntryRef, load: bool = True) -> tuple[bool, Any]:
        """``(True, value)`` for a valid entry, else ``(False, None)``; with ``load=False`` the
        result is not read (``(True, None)``): ``call_and_shelve`` leaves that to ``get()``."""
        store = self.store_backend
        callback = self.cache_validation_callback
        if callback is not None:
            metadata = store.metadata(ref)
            if metadata is None or not callback(metadata):
                if metadata is not None:
                    store.remove(ref)
                return _MISS
        try:
            if load:
                value = store.load(ref, self.mmap_mode)
            elif store.contains(ref):
                value = None
            else:
                return _MISS
        except KeyError:
            return _MISS
        except CorruptEntry as exc:
            if ref.key not in self._warned:
                self._warned.add(ref.key)
                warnings.warn(
                    f"cache entry of {self.func_id} is damaged and is recomputed: {exc}",
                    UserWarning,
                    stacklevel=4,
                )
            store.remove(ref)
            return _MISS
        now = time.monotonic()
        if now - self._touched.get(ref.key, -TOUCH_EVERY) >= TOUCH_EVERY:
            self._touched[ref.key] = now
            store.touch(ref)
        return True, value

    def __pardo_lookup__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, Any]:
        """``(True, value)`` when this call's result is cached, else ``(False, None)``."""
        try:
            return self._lookup(self._ref(args, kwargs))
        except Exception:  # an argument the key cannot take: let the worker run it
            return _MISS

    # -- computing ------------------------------------------------------------------------------

    def _compute(
        self, ref: EntryRef, args: tuple[Any, ...], kwargs: dict[str, Any], force: bool
    ) -> tuple[Any, dict[str, Any]]:
        with self.store_backend.lock(ref):
            found = self._before_computing(ref, force)
            if found is not None:
                return found
            start = time.time()
            value = self.func(*args, **kwargs)
            return self._store(ref, value, start, args, kwargs)

    def _before_computing(self, ref: EntryRef, force: bool) -> tuple[Any, dict[str, Any]] | None:
        """Under the key's lock: the entry another caller stored meanwhile (unless ``force``),
        else None after announcing the computation."""
        if not force:
            hit, value = self._lookup(ref)
            if hit:
                return value, {}
        if self._verbose > 0:
            print(f"[Memory] Calling {self.func_id}...")
        return None

    def _store(
        self, ref: EntryRef, value: Any, start: float, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        duration = time.time() - start
        assert self._binder is not None
        metadata = {
            "duration": duration,
            "time": start,
            "input_args": self._binder.input_args(args, kwargs),
        }
        try:
            self.store_backend.dump(ref, value, metadata)
        except OSError:
            raise
        except Exception as exc:  # a result that cannot be pickled is returned, not stored
            warnings.warn(f"Unable to cache to disk: {exc!r}", UserWarning, stacklevel=4)
            return value, metadata
        if self._budget is not None:
            self._budget.wrote(_stored_bytes(value))
        if self.mmap_mode is not None:  # the first call returns what later hits will return
            value = self.store_backend.load(ref, self.mmap_mode)
        return value, metadata

    # -- the public methods ---------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        ref = self._queried(args, kwargs)
        hit, value = self._lookup(ref)
        if hit:
            return value
        return self._compute(ref, args, kwargs, force=False)[0]

    def call(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Compute and store, even if cached; return ``(output, metadata)``."""
        return self._compute(self._ref(args, kwargs), args, kwargs, force=True)

    def call_and_shelve(self, *args: Any, **kwargs: Any) -> MemorizedResult:
        """Make sure the result is stored; return a reference to it (a hit reads nothing)."""
        ref = self._queried(args, kwargs)
        if not self._lookup(ref, load=False)[0]:
            self._compute(ref, args, kwargs, force=False)
        return MemorizedResult(self.store_backend, ref, self.mmap_mode)

    def check_call_in_cache(self, *args: Any, **kwargs: Any) -> bool:
        """Whether this call is cached (and valid, per the ``cache_validation_callback``)."""
        return self.check_why_call_not_in_cache(*args, **kwargs) == ""

    def check_why_call_not_in_cache(self, *args: Any, **kwargs: Any) -> str:
        """Why this call would miss: "" (it would hit), "call not in cache", "code changed",
        "expired" (the cache_validation_callback refused it) or "corrupted"."""
        ref = self._ref(args, kwargs)
        store = self.store_backend
        if store.contains(ref):
            callback = self.cache_validation_callback
            if callback is not None:
                metadata = store.metadata(ref)
                if metadata is None or not callback(metadata):
                    store.remove(ref)
                    return "expired"
            try:
                store.load(ref, "r" if self.mmap_mode is None else self.mmap_mode)
            except (KeyError, CorruptEntry):
                return "corrupted"
            return ""
        for code in store.code_versions(self.func_id):
            if code != ref.code and store.contains(EntryRef(self.func_id, code, ref.key)):
                return "code changed"
        return "call not in cache"

    def clear(self, warn: bool = True) -> None:
        """Delete every stored result of this function (all its code versions)."""
        self.store_backend.clear(self.func_id)

    def __reduce__(self) -> tuple[Any, ...]:
        state = (self.ignore, self.mmap_mode, self._verbose, self.cache_validation_callback)
        return _rebuild, (
            type(self),
            self.func,
            self.store_backend,
            self._budget,
            state,
            self._code_digest(),
            self.func_id,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(func={self.func!r}, location={self.store_backend.location})"


#: Seconds between two tries of a key's lock by a coroutine: it must not block the event loop,
#: and a computation worth caching takes far longer than this.
ASYNC_LOCK_POLL_SECONDS = 0.01


class AsyncMemorizedFunc(MemorizedFunc):
    """``MemorizedFunc`` for a coroutine function: concurrent callers (coroutines of one loop,
    threads, processes) compute a call once, the others wait without blocking their loop."""

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        ref = self._queried(args, kwargs)
        hit, value = self._lookup(ref)
        if hit:
            return value
        return (await self._acompute(ref, args, kwargs, force=False))[0]

    async def _acompute(
        self, ref: EntryRef, args: tuple[Any, ...], kwargs: dict[str, Any], force: bool
    ) -> tuple[Any, dict[str, Any]]:
        lock = self.store_backend.lock(ref)
        await _acquire(lock)
        try:
            found = self._before_computing(ref, force)
            if found is not None:
                return found
            start = time.time()
            value = await self.func(*args, **kwargs)
            return self._store(ref, value, start, args, kwargs)
        finally:
            lock.__exit__(None, None, None)

    async def call(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:  # type: ignore[override]
        return await self._acompute(self._ref(args, kwargs), args, kwargs, force=True)

    async def call_and_shelve(self, *args: Any, **kwargs: Any) -> MemorizedResult:  # type: ignore[override]
        ref = self._queried(args, kwargs)
        if not self._lookup(ref, load=False)[0]:
            await self._acompute(ref, args, kwargs, force=False)
        return MemorizedResult(self.store_backend, ref, self.mmap_mode)


async def _acquire(lock: Any) -> None:
    """Enter ``lock`` (a store's per-key lock) from a coroutine without blocking the loop: a
    file lock is tried without waiting, again every ``ASYNC_LOCK_POLL_SECONDS``; another kind
    of lock (a third-party store's) is entered as it is."""
    if not isinstance(lock, filelock.BaseFileLock):
        lock.__enter__()
        return
    while True:
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            await asyncio.sleep(ASYNC_LOCK_POLL_SECONDS)
        else:
            return


def _rebuild(
    cls: type[MemorizedFunc],
    func: Callable[..., Any],
    store: StoreBackendBase,
    budget: Budget | None,
    state: tuple[Any, ...],
    code: str,
    identity: str,
) -> MemorizedFunc:
    ignore, mmap_mode, verbose, callback = state
    memorized = cls(
        func,
        store,
        ignore=ignore,
        mmap_mode=mmap_mode,
        verbose=verbose,
        cache_validation_callback=callback,
        budget=budget,
        identity=identity,
    )
    memorized._code = code  # the parent's digest: a worker need not (and may not) read the source
    memorized._code_of = getattr(func, "__code__", None)
    return memorized


def _stored_bytes(value: Any) -> int:
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    import sys

    return sys.getsizeof(value)
