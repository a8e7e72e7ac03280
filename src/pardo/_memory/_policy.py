"""Eviction and expiry as pure policies: which entries ``reduce_size`` deletes, and ``expires_after``.

No I/O here: ``Eviction.select`` gets the entries and the time, and returns what to delete.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pardo._memory._store import EntryInfo
from pardo._memsize import parse_nbytes

__all__ = ["Eviction", "expires_after", "parse_age"]


def parse_age(value: Any) -> float | None:
    """Seconds in ``age_limit`` (a ``timedelta`` or a number of seconds >= 0), or None."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        msg = f"age_limit={value!r} is not valid: use a datetime.timedelta or seconds >= 0"
        raise ValueError(msg)
    if seconds < 0:
        msg = (
            f"age_limit={value!r} is negative: it has to be a positive timedelta (or seconds >= 0)"
        )
        raise ValueError(msg)
    return seconds


@dataclass(frozen=True, slots=True)
class Eviction:
    """Limits for ``reduce_size``: keep at most ``bytes_limit`` bytes and ``items_limit`` entries,
    none unused for longer than ``age_limit`` seconds; least recently used go first."""

    bytes_limit: int | None = None
    items_limit: int | None = None
    age_limit: float | None = None

    @classmethod
    def from_arguments(cls, bytes_limit: Any, items_limit: Any, age_limit: Any) -> Eviction:
        nbytes = None if bytes_limit is None else parse_nbytes(bytes_limit)
        if items_limit is not None and (
            not isinstance(items_limit, int) or isinstance(items_limit, bool) or items_limit < 0
        ):
            msg = f"items_limit={items_limit!r} is not valid: use an int >= 0 or None"
            raise ValueError(msg)
        return cls(nbytes, items_limit, parse_age(age_limit))

    @property
    def active(self) -> bool:
        return not (
            self.bytes_limit is None and self.items_limit is None and self.age_limit is None
        )

    def select(self, entries: Iterable[EntryInfo], now: float) -> list[EntryInfo]:
        """The entries to delete, least recently used first."""
        newest_first = sorted(entries, key=lambda e: e.last_used, reverse=True)
        keep_bytes = keep_items = 0
        doomed: list[EntryInfo] = []
        for entry in newest_first:
            too_old = self.age_limit is not None and now - entry.last_used > self.age_limit
            too_many = self.items_limit is not None and keep_items >= self.items_limit
            too_big = self.bytes_limit is not None and keep_bytes + entry.nbytes > self.bytes_limit
            if too_old or too_many or too_big:
                doomed.append(entry)
            else:
                keep_bytes += entry.nbytes
                keep_items += 1
        doomed.reverse()
        return doomed


def expires_after(
    days: float = 0,
    seconds: float = 0,
    microseconds: float = 0,
    milliseconds: float = 0,
    minutes: float = 0,
    hours: float = 0,
    weeks: float = 0,
) -> Callable[[dict[str, Any]], bool]:
    """A ``cache_validation_callback``: an entry is valid for this long after it was computed.

    Example: ``memory.cache(fetch, cache_validation_callback=expires_after(hours=1))``.
    """
    delta = datetime.timedelta(days, seconds, microseconds, milliseconds, minutes, hours, weeks)
    limit = delta.total_seconds()

    def still_valid(metadata: dict[str, Any]) -> bool:
        return time.time() - float(metadata["time"]) < limit

    return still_valid
