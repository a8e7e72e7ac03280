"""References to stored results (``call_and_shelve``), and the not-memorized stand-ins.

``MemorizedResult`` names one entry of a store; it pickles (store and name, not the value), so a
reference made in one process can be read in another. ``NotMemorizedResult`` holds its value in
memory, for ``Memory(location=None)``.
"""

from __future__ import annotations

from typing import Any

from pardo._memory._store import EntryRef, StoreBackendBase

__all__ = ["MemorizedResult", "NotMemorizedResult"]


class MemorizedResult:
    """A stored result: ``get()`` loads it, ``clear()`` deletes it (``get`` then raises KeyError)."""

    def __init__(
        self,
        store: StoreBackendBase,
        ref: EntryRef,
        mmap_mode: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.store_backend = store
        self.ref = ref
        self.mmap_mode = mmap_mode
        self.metadata = metadata

    @property
    def func(self) -> str:
        return self.ref.func_id.rsplit("/", 1)[-1]

    @property
    def func_id(self) -> str:
        return self.ref.func_id

    @property
    def args_id(self) -> str:
        return self.ref.key

    def get(self) -> Any:
        """The stored value (KeyError when it was cleared, or the entry is damaged)."""
        from pardo._memory._store import CorruptEntry

        try:
            return self.store_backend.load(self.ref, self.mmap_mode)
        except CorruptEntry as exc:
            msg = f"Cache entry {self.ref.key} of {self.ref.func_id} is corrupted: {exc}"
            raise KeyError(msg) from exc

    def clear(self) -> None:
        """Delete the stored value."""
        self.store_backend.remove(self.ref)

    def __repr__(self) -> str:
        return (
            f'{type(self).__name__}(location="{self.store_backend.location}", '
            f'func="{self.ref.func_id}", args_id="{self.ref.key}")'
        )


class NotMemorizedResult:
    """A result kept in memory by a not-memorized function; same methods as MemorizedResult."""

    __slots__ = ("_valid", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self._valid = True

    def get(self) -> Any:
        """The value (KeyError after ``clear``)."""
        if not self._valid:
            raise KeyError("No value stored.")
        return self.value

    def clear(self) -> None:
        """Forget the value."""
        self._valid = False
        self.value = None

    def __repr__(self) -> str:
        if self._valid:
            return f"{type(self).__name__}({self.value!r})"
        return f"{type(self).__name__} with no value"
