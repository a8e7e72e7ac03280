"""What ``Memory(location=None).cache(f)`` returns: ``f`` with the wrapper's methods, no storage."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pardo._memory._results import NotMemorizedResult

__all__ = ["AsyncNotMemorizedFunc", "NotMemorizedFunc"]

_MISS = (False, None)


class NotMemorizedFunc:
    """What ``Memory(location=None).cache(f)`` returns: calls ``f``, stores nothing."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        functools.update_wrapper(self, func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def call(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """``(f(*args, **kwargs), {})``."""
        return self.func(*args, **kwargs), {}

    def call_and_shelve(self, *args: Any, **kwargs: Any) -> NotMemorizedResult:
        """The result, held in memory."""
        return NotMemorizedResult(self.func(*args, **kwargs))

    def check_call_in_cache(self, *args: Any, **kwargs: Any) -> bool:
        """Always False: nothing is cached."""
        return False

    def clear(self, warn: bool = True) -> None:
        """Nothing to clear."""

    def __pardo_lookup__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, Any]:
        return _MISS

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.func,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(func={self.func!r})"


class AsyncNotMemorizedFunc(NotMemorizedFunc):
    """``NotMemorizedFunc`` for a coroutine function."""

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return await self.func(*args, **kwargs)

    async def call(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:  # type: ignore[override]
        return await self.func(*args, **kwargs), {}

    async def call_and_shelve(self, *args: Any, **kwargs: Any) -> NotMemorizedResult:  # type: ignore[override]
        return NotMemorizedResult(await self.func(*args, **kwargs))
