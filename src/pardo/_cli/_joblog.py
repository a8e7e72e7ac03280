"""``--joblog``: GNU Parallel's tab-separated job log, and reading it back for ``--resume``.

Columns: Seq Host Starttime JobRuntime Send Receive Exitval Signal Command. Starttime is epoch
seconds with milliseconds, JobRuntime is right-aligned in 10 characters with 3 decimals, Host is
``:`` for this machine, Send is 0 (jobs get no stdin) and Receive counts stdout bytes. A job
killed by ``--timeout`` has Exitval -1. ``+FILE`` appends without a header; a plain ``FILE`` is
rewritten, except with ``--resume``/``--resume-failed``, which append to it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO

__all__ = ["HEADER", "JobLog", "JoblogRow", "completed_seqs", "format_row", "split_name"]

HEADER = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"


@dataclass(frozen=True)
class JoblogRow:
    """The fields of one line, as GNU Parallel writes them."""

    seq: int
    host: str
    start: float
    runtime: float
    received: int
    exitval: int
    signal: int
    command: str


def format_row(row: JoblogRow) -> str:
    """One joblog line, newline included."""
    return (
        f"{row.seq}\t{row.host}\t{row.start:.3f}\t{row.runtime:10.3f}\t0\t{row.received}"
        f"\t{row.exitval}\t{row.signal}\t{row.command}\n"
    )


def split_name(name: str) -> tuple[str, bool]:
    """``"+log.tsv"`` -> ``("log.tsv", True)``: the path and whether to append."""
    return (name[1:], True) if name.startswith("+") else (name, False)


def completed_seqs(path: str, failed_too: bool) -> set[int]:
    """Seqs ``--resume`` skips: every seq in the log, or (``failed_too=False``, for
    ``--resume-failed``) those with at least one successful row."""
    done: set[int] = set()
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as log:
            for line in log:
                fields = line.split("\t", 8)
                if len(fields) < 8 or not fields[0].isdigit():
                    continue  # the header, or a line cut short by a crash
                if failed_too or (fields[6].strip() == "0" and fields[7].strip() == "0"):
                    done.add(int(fields[0]))
    except FileNotFoundError:
        pass
    return done


class JobLog:
    """The open log file; ``write`` adds one row and flushes, so a crash loses nothing."""

    def __init__(self, name: str, resume: bool) -> None:
        path, append = split_name(name)
        existing = os.path.exists(path) and os.path.getsize(path) > 0
        self.path = path
        self._file: IO[str] = open(  # noqa: SIM115 - closed by close()
            path, "a" if append or resume else "w", encoding="utf-8", errors="surrogateescape"
        )
        if not append and not (resume and existing):
            self._file.write(HEADER)
            self._file.flush()

    def write(self, row: JoblogRow) -> None:
        self._file.write(format_row(row))
        self._file.flush()

    def close(self) -> None:
        self._file.close()
