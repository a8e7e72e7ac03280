"""``pardo.Memory``: joblib's ``Memory`` front, a cache folder that ``cache()`` wraps functions in.

The wrappers are ``pardo._memory._func``'s; storage is a store from the registry
(``pardo._memory._store``); ``reduce_size`` applies ``pardo._memory._policy.Eviction``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from pardo._memory._func import AsyncMemorizedFunc, MemorizedFunc
from pardo._memory._limit import Budget, reduce
from pardo._memory._notmemorized import AsyncNotMemorizedFunc, NotMemorizedFunc
from pardo._memory._policy import Eviction
from pardo._memory._store import StoreBackendBase, make_store
from pardo._memsize import parse_nbytes

__all__ = ["Memory"]

_MMAP_MODES = (None, "r", "r+", "w+", "c")


class Memory:
    """A cache folder: ``memory.cache(f)`` stores ``f``'s results there, keyed by arguments and code.

    Args:
        location: the folder (a str: results go in ``<location>/joblib``; a ``pathlib.Path``:
            directly in it), or None to cache nothing.
        backend: a store name (``"local"``, or one given to ``register_store_backend``).
        mmap_mode: None, or "r", "r+", "w+", "c": arrays in results come back memory-mapped.
        compress: store compressed (then arrays cannot be memory-mapped).
        verbose: 0 silent; 1 (default) prints a line for each computed call.
        backend_options: extra options for the store.
        bytes_limit: pardo only, opt-in: keep the folder under this size ("1G", an int) as
            entries are written, deleting the least recently used first.

    Example:
        ``@Memory("cachedir").cache`` then call the function as usual.
    """

    def __init__(
        self,
        location: Any = None,
        backend: str = "local",
        mmap_mode: str | None = None,
        compress: Any = False,
        verbose: int = 1,
        backend_options: dict[str, Any] | None = None,
        *,
        bytes_limit: int | str | None = None,
    ) -> None:
        if mmap_mode not in _MMAP_MODES:
            msg = f"mmap_mode={mmap_mode!r} is not valid; expected one of {_MMAP_MODES!r}"
            raise ValueError(msg)
        self.location = location
        self.backend = backend
        self.mmap_mode = mmap_mode
        self.compress = compress
        self.verbose = verbose
        self.backend_options = dict(backend_options or {})
        self.bytes_limit = None if bytes_limit is None else parse_nbytes(bytes_limit)
        self.store_backend: StoreBackendBase | None = None
        self._budget: Budget | None = None
        if location is not None:
            options = {"compress": compress, "mmap_mode": mmap_mode, **self.backend_options}
            self.store_backend = make_store(backend, location, verbose, options)
            if self.bytes_limit is not None:
                self._budget = Budget(self.store_backend, self.bytes_limit)

    def cache(
        self,
        func: Callable[..., Any] | None = None,
        ignore: Sequence[str] | None = None,
        verbose: int | None = None,
        mmap_mode: str | bool | None = False,
        cache_validation_callback: Callable[[dict[str, Any]], bool] | None = None,
    ) -> Any:
        """Wrap ``func`` so that its results are stored (bare ``@cache`` or ``@cache(...)``).

        Args:
            ignore: argument names left out of the key.
            verbose: overrides the Memory's.
            mmap_mode: overrides the Memory's (False: inherit).
            cache_validation_callback: ``callback(metadata) -> bool``; False recomputes.
                ``metadata`` has "duration", "time" and "input_args".
        """
        if cache_validation_callback is not None and not callable(cache_validation_callback):
            msg = f"cache_validation_callback needs to be callable. Got {cache_validation_callback!r}."
            raise ValueError(msg)
        if func is None:
            return functools.partial(
                self.cache,
                ignore=ignore,
                verbose=verbose,
                mmap_mode=mmap_mode,
                cache_validation_callback=cache_validation_callback,
            )
        if isinstance(func, (MemorizedFunc, NotMemorizedFunc)):
            func = func.func
        is_async = inspect.iscoroutinefunction(func)
        if self.store_backend is None:
            return AsyncNotMemorizedFunc(func) if is_async else NotMemorizedFunc(func)
        if mmap_mode is False:
            mmap_mode = self.mmap_mode
        elif mmap_mode not in _MMAP_MODES:
            msg = f"mmap_mode={mmap_mode!r} is not valid; expected False or one of {_MMAP_MODES!r}"
            raise ValueError(msg)
        kind = AsyncMemorizedFunc if is_async else MemorizedFunc
        return kind(
            func,
            self.store_backend,
            ignore=ignore,
            mmap_mode=mmap_mode,
            verbose=self.verbose if verbose is None else verbose,
            cache_validation_callback=cache_validation_callback,
            budget=self._budget,
        )

    def clear(self, warn: bool = True) -> None:
        """Delete everything in the cache folder."""
        if self.store_backend is not None:
            self.store_backend.clear()

    def reduce_size(
        self,
        bytes_limit: int | str | None = None,
        items_limit: int | None = None,
        age_limit: Any = None,
    ) -> None:
        """Delete least recently used entries until the limits hold (also old code versions).

        Args:
            bytes_limit: total size to keep ("1G", "500M", an int).
            items_limit: number of entries to keep.
            age_limit: delete entries unused for longer (a ``timedelta`` or seconds).
        """
        policy = Eviction.from_arguments(bytes_limit, items_limit, age_limit)
        if self.store_backend is None:
            return
        if not policy.active:  # still reclaims leftovers of killed writers
            for _ in self.store_backend.entries():
                pass
            return
        reduce(self.store_backend, policy)

    def eval(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``func(*args, **kwargs)``, through the cache."""
        if self.store_backend is None:
            return func(*args, **kwargs)
        return self.cache(func)(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (
                self.location,
                self.backend,
                self.mmap_mode,
                self.compress,
                self.verbose,
                self.backend_options,
                self.bytes_limit,
            ),
        )

    def __repr__(self) -> str:
        location = None if self.store_backend is None else self.store_backend.location
        return f"{type(self).__name__}(location={location})"


def _rebuild(*args: Any) -> Memory:
    *positional, bytes_limit = args
    return Memory(*positional, bytes_limit=bytes_limit)
