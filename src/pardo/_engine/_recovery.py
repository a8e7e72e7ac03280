"""Dead workers and overdue tasks of one call: find them, judge what the pool lost, rebuild it.

The dispatch loop hands over two events: a ``BrokenProcessPool`` from a Future (``recover``), and
its regular poll (``poll``: ``check_workers`` reports deaths; ``task_timeout`` is enforced here
by killing the worker of an overdue task). Either way ``recover`` reads the status board to
learn which batch each dead worker held, takes every batch the pool will never deliver off the
in-flight set, has ``FaultPolicy.judge`` decide each one's fate, rebuilds the pool, and carries
the verdicts out. It returns the seqs whose results became complete (timeout markers,
collected errors) for the loop to hand out.
"""

from __future__ import annotations

from typing import Any

from pardo._engine import _faults
from pardo._engine._faults import FaultPolicy
from pardo._engine._inflight import InFlight, Sent
from pardo.backends import Backend
from pardo.backends._base import WorkerDeath

__all__ = ["MAX_UNBLAMED", "Recovery"]

#: Pool breakages in a row with no task to blame before giving up: a crashing initializer or
#: something killing idle workers would otherwise rebuild the pool forever.
MAX_UNBLAMED = 3

Completed = list[tuple[int, list[Any]]]


class Recovery:
    """Fault handling state of one call (how many unexplained breakages in a row)."""

    def __init__(self, backend: Backend, faults: FaultPolicy, flight: InFlight) -> None:
        self._backend = backend
        self._faults = faults
        self._flight = flight
        self._unblamed = 0
        #: True while batches were taken off a broken pool that is not yet rebuilt: an abort
        #: must then stop the backend even with nothing left in flight.
        self.broken = False

    def poll(self, now: float) -> Completed:
        """Regular check while batches are in flight: dead workers, then overdue tasks."""
        deaths = self._backend.check_workers()
        if deaths:
            return self.recover(deaths)
        limit = self._faults.task_timeout
        if limit is None:
            return []
        starts = {sent.batch.start for sent in self._flight.sent.values()}
        late = _faults.overdue(self._backend.running(), starts, now, limit)
        if not late:
            return []
        for pid in late:
            self._backend.kill_worker(pid)
        deaths = [WorkerDeath(pid, _faults.KILLED) for pid in late]
        return self.recover(deaths, timed_out=dict(late.values()))

    def recover(
        self,
        deaths: list[WorkerDeath],
        trigger: Sent | None = None,
        timed_out: dict[int, float] | None = None,
    ) -> Completed:
        """Workers died: judge each batch the pool lost, rebuild the pool, resubmit the rest."""
        self.broken = True
        losses = _faults.losses(self._backend.running(), deaths, timed_out or {})
        lost = self._flight.take_lost(trigger)
        self._unblamed = 0 if losses else self._unblamed + 1
        if self._unblamed > MAX_UNBLAMED:
            raise _faults.unblamed_error(deaths, [sent.batch for sent in lost])
        judge = self._faults.judge
        verdicts = [
            (sent, judge(sent.batch, sent.attempt, losses.get(sent.batch.start, _faults.INNOCENT)))
            for sent in lost
        ]
        for _, verdict in verdicts:
            if verdict.kind is _faults.VerdictKind.RAISE:
                raise verdict.value  # before rebuilding: the abort that follows kills it anyway
        self._backend.recover()
        self.broken = False
        completed = []
        for sent, verdict in verdicts:
            results = self._flight.apply(sent, verdict)
            if results is not None:
                completed.append((sent.seq, results))
        return completed
