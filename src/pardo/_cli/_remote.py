"""The wrapper a remote job runs in (POSIX sh), and reading back what it reported.

The node needs nothing but /bin/sh. The wrapper first writes a start marker to stderr, so a
connection that fails before the job runs (ssh exits 255 without it) is told apart from a job
that exits 255; it writes an end marker with the job's exit status last, so a connection lost
mid-run (start marker, no end marker) is told apart from a finished job. The markers carry a
random token per run and are cut out of the job's stderr.

The job runs in its own process group (``setsid``) with stdin from /dev/null. A watchdog reads
the wrapper's stdin, which is a pipe pardo holds open for the job's lifetime: when pardo stops
the job (``--timeout``, ``--halt now``, Ctrl-C), exits, or is killed, or the connection drops,
the watchdog sees end of file and kills the job's whole group, SIGTERM then SIGKILL.
"""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Report", "make_token", "read_report", "wrapper"]

#: Seconds the remote watchdog waits between SIGTERM and SIGKILL of the job's group.
REMOTE_KILL_GRACE_SECONDS = 1


def make_token() -> str:
    """A marker token for one run."""
    return f"PARDO-{secrets.token_hex(8)}"


def wrapper(command: str, token: str, workdir: str, env: Mapping[str, str]) -> str:
    """The sh script that runs ``command`` on the node in ``workdir`` (relative to the login
    directory, created if missing; "" = the login directory) with ``env`` exported."""
    lines = [
        f"printf '%s S\\n' {token} >&2",
        "cd || exit 1",
    ]
    if workdir:
        wd = shlex.quote(workdir)
        lines.append(
            f"mkdir -p -- {wd} && cd -- {wd} || {{ printf '%s E 1\\n' {token} >&2; exit 1; }}"
        )
    lines += [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    lines += [
        "exec 3<&0",
        # setsid (util-linux, on every Linux) makes the job a process group of its own; without
        # it (and without a terminal sh has no job control) only the job's shell can be killed.
        "if command -v setsid >/dev/null 2>&1; then r=setsid; else r=; fi",
        f"$r /bin/sh -c {shlex.quote(command)} </dev/null 3<&- &",
        "j=$!",
        "{ cat >/dev/null; kill -TERM -$j 2>/dev/null; "
        f"sleep {REMOTE_KILL_GRACE_SECONDS}; kill -KILL -$j 2>/dev/null; }} <&3 >/dev/null 2>&1 &",
        "w=$!",
        "exec 3<&-",
        "wait $j",
        "s=$?",
        "kill $w 2>/dev/null",  # the watchdog shell; its cat ends with the connection
        f"printf '%s E %d\\n' {token} $s >&2",
        "exit $s",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Report:
    """What the wrapper's stderr said: whether the job started, its exit status if it ended
    (None: the connection was lost first), and the job's own stderr."""

    started: bool
    status: int | None
    stderr: bytes


def read_report(stderr: bytes, token: str) -> Report:
    """Split the wrapper's markers from the job's stderr."""
    start = f"{token} S\n".encode()
    at = stderr.find(start)
    if at < 0:
        return Report(False, None, stderr)
    before, body = stderr[:at], stderr[at + len(start) :]
    end = f"{token} E ".encode()
    cut = body.rfind(end)
    if cut < 0:
        return Report(True, None, before + body)
    tail = body[cut + len(end) :].split(b"\n", 1)[0]
    status = int(tail) if tail.strip().isdigit() else None
    return Report(True, status, before + body[:cut])
