"""The host pool of a run with ``-S``: which hosts are up, their free slots, and probing the down ones.

Each host has ``slots`` job slots (``-j`` computed from its CPUs). A job thread ``acquire``s a
host with a free slot, preferring hosts where that job has not failed yet (``--retries``), and
waits while every host is busy. When a connection to a host fails the host is marked down, says
so once on stderr, and a prober thread tries it again after 1, 2, 4 ... (at most 30) seconds;
a host that answers is up again. The run has no host left when every host is down and has failed
``GIVE_UP_CONNECTS`` connection attempts in a row: ``acquire`` then returns None and ``exhausted``
is set. The local host ``:`` is never down.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO

from pardo._cli._ssh import Master, SshCommand
from pardo._sshlogin import SshLogin

__all__ = ["GIVE_UP_CONNECTS", "Host", "HostPool", "HostState", "HostStats"]

#: Consecutive failed connection attempts after which a host counts as gone for good when no
#: other host is up either (with the 1 s, 2 s backoff that is about 3 s after the first).
GIVE_UP_CONNECTS = 3
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0


class HostState(enum.Enum):
    UP = "up"
    DOWN = "down"


@dataclass
class HostStats:
    """What happened on one host during the run (for the summary and the bar)."""

    done: int = 0
    failed: int = 0
    requeued: int = 0
    downs: int = 0


@dataclass(eq=False)
class Host:
    """One sshlogin's live state; the pool's lock guards every field that changes."""

    login: SshLogin
    ssh: SshCommand | None
    slots: int = 1
    cpus: int | None = None
    state: HostState = HostState.DOWN
    running: int = 0
    reason: str = ""
    failures: int = 0
    next_probe: float = 0.0
    backoff: float = FIRST_BACKOFF_SECONDS
    master: Master | None = None
    stats: HostStats = field(default_factory=HostStats)

    @property
    def name(self) -> str:
        return self.login.name


#: Brings a host up (master connection, CPU count, basefiles): None, or what went wrong.
Connector = Callable[[Host], "str | None"]


class HostPool:
    """Thread-safe pool of the run's hosts (see the module docstring)."""

    def __init__(
        self,
        hosts: Sequence[Host],
        connect: Connector,
        slots_for: Callable[[int], int],
        stderr: IO[bytes],
    ) -> None:
        self.hosts = list(hosts)
        self.exhausted = False
        self._connect = connect
        self._slots_for = slots_for
        self._stderr = stderr
        self._changed = threading.Condition(threading.Lock())
        self._closing = threading.Event()
        self._prober: threading.Thread | None = None

    # -- start and stop -------------------------------------------------------------------------

    def start(self) -> int:
        """Connect to every host at once; return the number of job threads the run needs."""
        threads = [
            threading.Thread(target=self._first_connect, args=(host,), daemon=True)
            for host in self.hosts
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        up = [host.slots for host in self.hosts if host.state is HostState.UP]
        guess = max(up, default=1)
        for host in self.hosts:
            if host.state is HostState.DOWN and host.cpus is None:
                host.slots = guess  # refined when it comes up
        self._prober = threading.Thread(target=self._probe_loop, name="pardo-prober", daemon=True)
        self._prober.start()
        return sum(host.slots for host in self.hosts)

    def _first_connect(self, host: Host) -> None:
        error = self._try(host)
        if error is not None:
            self._note(f"host {host.login.label} is down: {error}; "
                       "its jobs go to the other hosts, and pardo tries it again later")  # fmt: skip

    def close(self, finish: Callable[[Host], None] | None = None) -> None:
        """Stop probing; run ``finish`` on each host that is up (end-of-run cleanup); close every
        master connection."""
        self._closing.set()
        with self._changed:
            self._changed.notify_all()
        if self._prober is not None:
            self._prober.join()
        for host in self.hosts:
            if finish is not None and host.state is HostState.UP and host.ssh is not None:
                finish(host)
            if host.master is not None:
                host.master.close()

    # -- jobs -----------------------------------------------------------------------------------

    def acquire(
        self, avoid: Iterable[str] = (), pin: str | None = None, stopping: Callable[[], bool] = bool
    ) -> Host | None:
        """A host with a free slot (taken); None when the run stops or no host is left."""
        avoided = set(avoid)
        with self._changed:
            while True:
                if self._closing.is_set() or stopping():
                    return None
                up = [
                    host
                    for host in self.hosts
                    if host.state is HostState.UP and (pin is None or host.name == pin)
                ]
                # A host where this job has not failed is worth waiting for while one is up.
                fresh = [host for host in up if host.name not in avoided]
                free = [host for host in (fresh or up) if host.running < host.slots]
                if free:
                    host = min(free, key=lambda h: h.running / h.slots)
                    host.running += 1
                    return host
                if self._gone(pin):
                    self.exhausted = self.exhausted or pin is None
                    self._changed.notify_all()
                    return None
                self._changed.wait(0.5)

    def _gone(self, pin: str | None) -> bool:
        hosts = [host for host in self.hosts if pin is None or host.name == pin]
        return all(
            host.state is HostState.DOWN and host.failures >= GIVE_UP_CONNECTS for host in hosts
        )

    def release(self, host: Host, outcome: str) -> None:
        """Give the slot back; ``outcome`` is "done", "failed", "requeued" or "killed"."""
        with self._changed:
            host.running -= 1
            if outcome == "done":
                host.stats.done += 1
            elif outcome == "failed":
                host.stats.failed += 1
            elif outcome == "requeued":
                host.stats.requeued += 1
            self._changed.notify_all()

    def mark_down(self, host: Host, reason: str) -> None:
        """A connection to ``host`` failed: take it out of the pool until a probe answers."""
        with self._changed:
            if host.state is HostState.DOWN or host.ssh is None:
                return
            host.state = HostState.DOWN
            host.reason = reason
            host.failures = 1
            host.backoff = FIRST_BACKOFF_SECONDS
            host.next_probe = time.monotonic() + host.backoff
            host.stats.downs += 1
            running = host.running
            master = host.master
            self._changed.notify_all()
        if master is not None:
            master.close()
        self._note(
            f"host {host.login.label} is down: {reason}; "
            f"{running} running job{'s' if running != 1 else ''} "
            "go back to the queue for the other hosts (no retry used)"
        )

    # -- probing --------------------------------------------------------------------------------

    def _try(self, host: Host) -> str | None:
        error = self._connect(host)
        with self._changed:
            if error is None:
                host.state = HostState.UP
                host.failures = 0
                host.reason = ""
                if host.login.cpus is None and host.cpus is not None:
                    host.slots = self._slots_for(host.cpus)
            else:
                host.state = HostState.DOWN
                host.reason = error
                host.failures += 1
                host.next_probe = time.monotonic() + host.backoff
                host.backoff = min(host.backoff * 2, MAX_BACKOFF_SECONDS)
            self._changed.notify_all()
        return error

    def _probe_loop(self) -> None:
        while not self._closing.wait(0.2):
            now = time.monotonic()
            for host in self.hosts:
                if self._closing.is_set():
                    return
                due = host.state is HostState.DOWN and host.next_probe <= now
                if due and self._try(host) is None:
                    self._note(f"host {host.login.label} is up again")

    # -- reporting ------------------------------------------------------------------------------

    def _note(self, message: str) -> None:
        with self._changed:  # one whole line at a time
            self._stderr.write(f"pardo: {message}\n".encode("utf-8", "replace"))
            self._stderr.flush()

    def counts(self) -> str:
        """One short line of per-host progress for the bar."""
        parts = []
        for host in self.hosts:
            s = host.stats
            state = "down" if host.state is HostState.DOWN else f"{host.running} run"
            parts.append(f"{host.name}: {state} {s.done} ok {s.failed} fail")
        return " | ".join(parts)

    def summary(self) -> list[str]:
        """The per-host lines printed at the end of a run."""
        lines = []
        for host in self.hosts:
            s = host.stats
            line = (
                f"{host.login.label}: {s.done} done, {s.failed} failed, "
                f"{s.requeued} requeued, {host.slots} slots"
            )
            if host.state is HostState.DOWN:
                line += f", down: {host.reason}"
            elif s.downs:
                line += f", was down {s.downs}x, up at the end"
            lines.append(line)
        return lines
