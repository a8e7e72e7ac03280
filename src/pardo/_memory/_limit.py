"""The opt-in ``Memory(bytes_limit=...)``: enforced as entries are written, not only on request.

The store keeps a byte count that all processes writing to it share (the local store: a small
file beside the entries, updated under a file lock), so N workers writing to one cache keep it
under the limit together, not each under its own view of it. Each write adds its size; only
when the count passes the limit does the writer scan the store, delete least-recently-used
entries and set the count to what remains. A store without a shared count falls back on each
process's estimate (a full scan, then the sizes it wrote since), which lets N processes
overshoot until their next scans.
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
            store = self._store
            shared = store.add_bytes(nbytes)
            if shared is not None:
                if shared <= limit:
                    return
            elif self._estimate is not None:
                self._estimate += nbytes
                if self._estimate <= limit:
                    return
            self._estimate = remaining = reduce(store, self._policy)
            # Bytes other processes added while this one scanned are kept in the count (an
            # entry the scan saw too is then counted twice: that only brings the next scan on).
            after = store.add_bytes(0)
            added = 0 if shared is None or after is None else max(after - shared, 0)
            store.set_bytes(remaining + added)

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
