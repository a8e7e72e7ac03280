"""Where cache entries live: the store base class, the entry records, the store registry.

A store keeps, per entry, the pickled result and a small JSON metadata record. An entry is named
by an ``EntryRef``: the function's id, the digest of its code, and the argument key. Write your
own store by subclassing ``StoreBackendBase`` and registering it with ``register_store_backend``;
``Memory(location, backend=name)`` then calls ``configure(location, verbose, backend_options)``
on a fresh instance.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CorruptEntry",
    "EntryInfo",
    "EntryRef",
    "StoreBackendBase",
    "make_store",
    "register_store_backend",
]


@dataclass(frozen=True, slots=True)
class EntryRef:
    """One entry's name: function id (``module/name``), code digest and argument key."""

    func_id: str
    code: str
    key: str


@dataclass(frozen=True, slots=True)
class EntryInfo:
    """What eviction needs about an entry: its size on disk and when it was last used."""

    ref: EntryRef
    nbytes: int
    last_used: float


class CorruptEntry(Exception):
    """An entry exists but cannot be read back (truncated, damaged, not a pardo file)."""


class StoreBackendBase(abc.ABC):
    """The interface a cache store implements (see ``pardo._memory._local`` for the default).

    Every method gets an ``EntryRef``; ``load`` raises ``KeyError`` for an absent entry and
    ``CorruptEntry`` for one that cannot be read; ``dump`` must never leave a partial entry that
    ``load`` would read as valid.
    """

    #: The folder (or URL) entries live in; None until ``configure`` ran, as in joblib.
    location: str | None = None
    compress: Any = False

    def __repr__(self) -> str:
        return f'{type(self).__name__}(location="{self.location}")'

    @abc.abstractmethod
    def configure(
        self, location: Any, verbose: int = 0, backend_options: dict[str, Any] | None = None
    ) -> None:
        """Create or open the store at ``location``; raise ``ValueError`` when it cannot be."""

    @abc.abstractmethod
    def load(self, ref: EntryRef, mmap_mode: str | None) -> Any:
        """The stored result."""

    @abc.abstractmethod
    def dump(self, ref: EntryRef, value: Any, metadata: dict[str, Any]) -> None:
        """Store ``value`` with ``metadata`` (atomically: all or nothing)."""

    @abc.abstractmethod
    def metadata(self, ref: EntryRef) -> dict[str, Any] | None:
        """The entry's metadata, or None when absent or unreadable."""

    @abc.abstractmethod
    def contains(self, ref: EntryRef) -> bool:
        """Whether a result is stored for ``ref``."""

    @abc.abstractmethod
    def remove(self, ref: EntryRef) -> None:
        """Delete the entry (no error when absent)."""

    @abc.abstractmethod
    def touch(self, ref: EntryRef) -> None:
        """Record that ``ref`` was just used (for least-recently-used eviction)."""

    @abc.abstractmethod
    def entries(self) -> Iterator[EntryInfo]:
        """Every complete entry (and reclaim leftovers of killed writers on the way)."""

    def create_function_location(self, func_id: str) -> None:
        """Called once per cached function, when it is wrapped (default: nothing)."""

    @abc.abstractmethod
    def code_versions(self, func_id: str) -> list[str]:
        """The code digests that have entries for ``func_id``."""

    @abc.abstractmethod
    def clear(self, func_id: str | None = None) -> None:
        """Delete every entry (of ``func_id`` only, when given)."""

    @abc.abstractmethod
    def lock(self, ref: EntryRef) -> AbstractContextManager[Any]:
        """A lock held while ``ref`` is computed, released by the system if its holder dies."""

    def add_bytes(self, nbytes: int) -> int | None:
        """Add ``nbytes`` to a byte count of the store that every process using it shares, and
        return the new count; None when the store keeps no such count (the default) or it is not
        known yet. ``Memory(bytes_limit=...)`` then falls back on a count of its own process."""
        return None

    def set_bytes(self, total: int) -> None:
        """Set the shared byte count (after a full scan); the default keeps none."""


_STORES: dict[str, Callable[[], StoreBackendBase]] = {}


def register_store_backend(backend_name: str, backend: type[StoreBackendBase]) -> None:
    """Make ``Memory(..., backend=backend_name)`` use the store class ``backend``.

    ``backend`` must subclass ``pardo.memory.StoreBackendBase`` (``pardo._memory._store``).
    """
    if not isinstance(backend_name, str):
        msg = f"Store backend name should be a string, got {backend_name!r}"
        raise ValueError(msg)
    if not (isinstance(backend, type) and issubclass(backend, StoreBackendBase)):
        msg = f"Store backend should inherit StoreBackendBase, got {backend!r}"
        raise ValueError(msg)
    _STORES[backend_name] = backend


def make_store(
    backend: str, location: Any, verbose: int, options: dict[str, Any]
) -> StoreBackendBase:
    """A configured store for ``backend`` (a registered name) at ``location``."""
    if "local" not in _STORES:
        from pardo._memory._local import LocalStore

        _STORES["local"] = LocalStore
    factory = _STORES.get(backend) if isinstance(backend, str) else None
    if factory is None:
        msg = f"Unknown location {location!r} or backend {backend!r}: registered store backends are {sorted(_STORES)}"
        raise TypeError(msg)
    store = factory()
    store.configure(location, verbose=verbose, backend_options=options)
    return store
