"""Job output: printed whole per job (never interleaved), in input order with ``-k``, tagged with
``--tag``, and saved under ``--results DIR`` as ``DIR/<source>/<value>/.../{stdout,stderr,seq}``.

A job's stdout goes to stdout and its stderr to stderr, each written in one piece when the job
ends. Jobs that never ran or that pardo killed (halt, Ctrl-C) print nothing, as in GNU Parallel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import IO

from pardo._cli._jobs import JobResult

__all__ = ["Printer", "result_dir", "save_results", "tagged"]


def tagged(data: bytes, tag: bytes) -> bytes:
    """Every line of ``data`` (a last unterminated one too) prefixed with ``tag``."""
    if not data or not tag:
        return data
    lines = data.split(b"\n")
    terminated = lines[-1] == b""
    if terminated:
        lines.pop()
    out = b"\n".join(tag + line for line in lines)
    return out + b"\n" if terminated else out


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class Printer:
    """Writes finished jobs' output; with ``keep_order`` holds each back until its turn."""

    def __init__(self, stdout: IO[bytes], stderr: IO[bytes], keep_order: bool, tag: bool) -> None:
        self._stdout = stdout
        self._stderr = stderr
        self._keep_order = keep_order
        self._tag = tag
        self._waiting: dict[int, JobResult] = {}
        self._next = 0

    def add(self, result: JobResult) -> None:
        """Take one finished (or skipped) job; print what may be printed now."""
        if not self._keep_order:
            self._print(result)
            return
        self._waiting[result.job.index] = result
        while self._next in self._waiting:
            self._print(self._waiting.pop(self._next))
            self._next += 1

    def finish(self) -> None:
        """Print whatever is still held back (jobs missing before it were never run)."""
        for index in sorted(self._waiting):
            self._print(self._waiting.pop(index))

    def note(self, message: str) -> None:
        """A line from pardo itself on stderr (``pardo: ...``)."""
        self._stderr.write(_encode(f"pardo: {message}\n"))
        self._stderr.flush()

    def _print(self, result: JobResult) -> None:
        if result.status != "done":
            return
        tag = _encode(" ".join(result.job.values) + "\t") if self._tag else b""
        for stream, data in ((self._stdout, result.stdout), (self._stderr, result.stderr)):
            if data:
                stream.write(tagged(data, tag))
                stream.flush()


def result_dir(root: str, names: Sequence[str], values: Sequence[str]) -> str:
    """``root/name1/value1/name2/value2...``, each value made a safe single path component."""
    parts = [root]
    for name, value in zip(names, values, strict=True):
        parts.extend((name, _component(value)))
    return os.path.join(*parts)


def _component(value: str) -> str:
    # GNU Parallel's escaping ("/" -> "\_", "\" -> "\\"), plus names that mean something else.
    if value in ("", ".", ".."):
        return "\\" + value
    return value.replace("\\", "\\\\").replace("/", "\\_")


def save_results(root: str, names: Sequence[str], result: JobResult) -> None:
    """Write the job's stdout, stderr and seq files under its ``--results`` folder."""
    if result.status != "done":
        return
    folder = result_dir(root, names, result.job.values)
    os.makedirs(folder, exist_ok=True)
    for name, data in (
        ("stdout", result.stdout),
        ("stderr", result.stderr),
        ("seq", _encode(str(result.job.seq))),
    ):
        with open(os.path.join(folder, name), "wb") as file:
            file.write(data)
