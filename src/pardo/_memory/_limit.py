"""The opt-in ``Memory(bytes_limit=...)``: enforced as entries are written, not only on request.

Each process keeps an estimate (a full scan, then the sizes it wrote since); only when the
estimate passes the limit does it scan again and delete least-recently-used entries. Entries
written meanwhile by other processes are counted at the next scan.
"""

from __future__ import annotations

import threading
import time

from pardo._memory._policy import Eviction
from pardo._memory._store import StoreBackendBase

__all__ = ["Budget"]


class Budget:
    """Keeps ``store`` under ``bytes_limit`` bytes as entries are added."""

    def __init__(self, store: StoreBackendBase, bytes_limit: int) -> None:
        self._store = store
        self._policy = Eviction(bytes_limit=bytes_limit)
        self._estimate: int | None = None
        self._lock = threading.Lock()

    def wrote(self, nbytes: int) -> None:
        with self._lock:
            limit = self._policy.bytes_limit or 0
            if self._estimate is not None:
                self._estimate += nbytes
                if self._estimate <= limit:
                    return
            self._estimate = reduce(self._store, self._policy)

    def __getstate__(self) -> dict[str, object]:
        return {"_store": self._store, "_policy": self._policy}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._estimate = None
        self._lock = threading.Lock()


def reduce(store: StoreBackendBase, policy: Eviction) -> int:
    """Delete what ``policy`` selects; return the bytes that remain."""
    entries = list(store.entries())
    doomed = policy.select(entries, time.time())
    for entry in doomed:
        store.remove(entry.ref)
    gone = {id(e) for e in doomed}
    return sum(e.nbytes for e in entries if id(e) not in gone)
