"""The batches one call has submitted and not yet settled, and the pieces of split batches.

Every batch belongs to a *seq*: the position of the batch ``Dispatch`` first cut, which orders
the results. When a batch must be run again in parts (a failed task retried alone, a batch that
killed its worker split into single tasks), its pieces keep its seq and their ``base`` offset
within it; ``deliver`` writes each piece's results into the seq's slots and hands the whole seq
back once no piece is missing. A batch never split costs one dict lookup here.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from pardo._engine._faults import Verdict, VerdictKind
from pardo._errors import BrokenProcessPool
from pardo._task import Batch, Task
from pardo.backends import Backend

__all__ = ["InFlight", "Sent", "failed_already"]


@dataclass(frozen=True, slots=True)
class Sent:
    """A submitted batch: its seq, the batch, which try this is, its offset within the seq."""

    seq: int
    batch: Batch
    attempt: int
    base: int


@dataclass(slots=True)
class _Pieces:
    """A split seq being reassembled: its result slots and how many pieces are still out."""

    slots: list[Any]
    missing: int


def failed_already(future: Future[Any]) -> bool:
    """Whether ``future`` is done (the batch ran inline) and a task in it failed."""
    return future.done() and (future.exception() is not None or bool(future.result().failures))


class InFlight:
    """Submit batches, remember them by Future, reassemble split ones."""

    def __init__(
        self,
        backend: Backend,
        make_batch: Callable[[Sequence[Task], int], Batch],
        done: queue.SimpleQueue[Future[Any]],
    ) -> None:
        self._backend = backend
        self._make_batch = make_batch
        self._done = done
        self.sent: dict[Future[Any], Sent] = {}
        self._parts: dict[int, _Pieces] = {}  # by seq

    def submit(self, batch: Batch, seq: int, attempt: int, base: int) -> Future[Any]:
        future = self._backend.submit(batch)
        self.sent[future] = Sent(seq, batch, attempt, base)
        future.add_done_callback(self._done.put)
        return future

    def split(
        self, sent: Sent, values: list[Any], pieces: list[tuple[int, int, int]]
    ) -> list[Any] | None:
        """Keep ``values`` for ``sent``'s slots, submit ``pieces`` (offset, size, attempt) of it.

        Returns what ``deliver`` returns (the seq's results when nothing was left to submit).
        """
        entry = self._parts.get(sent.seq)
        if entry is None:
            entry = self._parts[sent.seq] = _Pieces([None] * len(sent.batch), 1)
        entry.missing += len(pieces)
        batch = sent.batch
        for offset, size, attempt in pieces:
            tasks = batch.tasks[offset : offset + size]
            piece = self._make_batch(tasks, batch.start + offset)
            self.submit(piece, sent.seq, attempt, sent.base + offset)
        return self.deliver(sent, values)

    def deliver(self, sent: Sent, values: list[Any]) -> list[Any] | None:
        """``values`` fill ``sent``'s slots; the seq's results once none of its pieces is missing."""
        entry = self._parts.get(sent.seq)
        if entry is None:
            return values
        entry.slots[sent.base : sent.base + len(values)] = values
        entry.missing -= 1
        if entry.missing:
            return None
        del self._parts[sent.seq]
        return entry.slots

    def apply(self, sent: Sent, verdict: Verdict) -> list[Any] | None:
        """Carry out ``verdict`` on ``sent``, lost with the pool; the seq's results if complete."""
        kind = verdict.kind
        if kind is VerdictKind.RESTART or kind is VerdictKind.RETRY:
            self.submit(sent.batch, sent.seq, sent.attempt + (kind is VerdictKind.RETRY), sent.base)
        elif kind is VerdictKind.SPLIT:
            return self.split(sent, [], [(i, 1, sent.attempt) for i in range(len(sent.batch))])
        elif kind is VerdictKind.FILL:
            return self.deliver(sent, verdict.value)
        return None

    def take_lost(self, trigger: Sent | None) -> list[Sent]:
        """Forget (and return) every batch whose result a broken pool will never deliver."""
        lost = [] if trigger is None else [trigger]
        for future, sent in list(self.sent.items()):
            kept = future.done() and not future.cancelled()
            if kept and not isinstance(future.exception(), BrokenProcessPool):
                continue  # its outcome is waiting in the queue
            del self.sent[future]
            lost.append(sent)
        return sorted(lost, key=lambda sent: sent.batch.start)

    def clear(self) -> None:
        self.sent.clear()
        self._parts.clear()
