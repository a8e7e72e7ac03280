"""What the job threads of one local run share: slots, running process groups, halting, --delay.

Every job runs in its own session (``start_new_session=True``), so a terminal's Ctrl-C reaches
only pardo, and pardo stops a job by signalling its whole process group: SIGTERM, then SIGKILL
to whatever is left after a grace period. ``stop`` does that to every running job at once (for
Ctrl-C and ``--halt now``); a job started just after such a ``stop`` is refused by ``adopt``.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import signal
import subprocess
import threading
import time

from pardo._cli._halt import HaltTracker

__all__ = ["KILL_GRACE_SECONDS", "JobControl", "signal_group"]

#: Seconds between SIGTERM and SIGKILL: GNU Parallel's default --termseq waits 200+100+50 ms.
KILL_GRACE_SECONDS = 0.35


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to the job's process group (its pid: the job is a session leader)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(proc.pid, sig)


class JobControl:
    """Thread-safe state of one run; ``tracker`` counts results against ``--halt``."""

    def __init__(self, n_slots: int, tracker: HaltTracker, delay: float = 0.0) -> None:
        self.tracker = tracker
        self._changed = threading.Condition(threading.Lock())
        self._free = list(range(1, n_slots + 1))
        self._n_slots = n_slots
        self._running: dict[int, subprocess.Popen[bytes]] = {}
        self._killed: set[int] = set()
        self._stopping = threading.Event()
        self._killing = False
        self._delay = delay
        self._next_start = 0.0

    @property
    def stopping(self) -> bool:
        """True once no new job may start (halt, Ctrl-C)."""
        return self._stopping.is_set()

    def begin(self) -> int | None:
        """Take the lowest free slot for a job about to start; None when the run is stopping."""
        with self._changed:
            if self.stopping:
                return None
            if self._free:
                slot = heapq.heappop(self._free)
            else:  # more jobs than slots: cannot happen with a pool of n_slots workers
                self._n_slots += 1
                slot = self._n_slots
            wait = 0.0
            if self._delay:
                now = time.monotonic()
                start = max(now, self._next_start)
                self._next_start = start + self._delay
                wait = start - now
        if wait > 0 and self._stopping.wait(wait):
            self.end(slot)
            return None
        return slot

    def end(self, slot: int) -> None:
        """Give ``slot`` back."""
        with self._changed:
            heapq.heappush(self._free, slot)

    def adopt(self, proc: subprocess.Popen[bytes]) -> bool:
        """Register a started job; False (the caller kills it) when running jobs are being
        killed. A job that started as a "soon" halt came is let finish: it is already running."""
        with self._changed:
            if self._killing:
                return False
            self._running[proc.pid] = proc
            return True

    def release(self, proc: subprocess.Popen[bytes]) -> bool:
        """Unregister a finished job; True when pardo killed it (halt, Ctrl-C)."""
        with self._changed:
            self._running.pop(proc.pid, None)
            self._changed.notify_all()
            return proc.pid in self._killed

    def record(self, exitval: int, sig: int) -> str | None:
        """Count a finished job; on a halt, stop the run (killing jobs for "now")."""
        with self._changed:
            action = self.tracker.record(exitval, sig)
        if action is not None:
            self.stop(kill=action == "now")
        return action

    def stop(self, kill: bool) -> None:
        """Start no new job; with ``kill``, also stop the running ones' process groups."""
        self._stopping.set()
        if not kill:
            return
        with self._changed:
            self._killing = True
            for pid, proc in self._running.items():
                self._killed.add(pid)
                signal_group(proc, signal.SIGTERM)
            self._changed.wait_for(lambda: not self._running, KILL_GRACE_SECONDS)
            for proc in self._running.values():
                signal_group(proc, signal.SIGKILL)
