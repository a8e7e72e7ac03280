"""pardo's own process: its standard streams as bytes, and the signals that stop a run.

Jobs live in their own sessions, so a terminal's Ctrl-C (SIGINT) reaches pardo alone, as do
SIGTERM and SIGHUP sent to it; all three raise ``KeyboardInterrupt`` in pardo's main thread,
which stops the jobs' process groups before pardo exits.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import IO

__all__ = ["default_streams", "signals_interrupt"]


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Inside the block SIGTERM and SIGHUP raise ``KeyboardInterrupt`` as Ctrl-C does (only
    from the main thread: elsewhere signal handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def default_streams() -> tuple[IO[str], IO[bytes], IO[bytes]]:
    """stdin as text, stdout and stderr as bytes (falling back for captured text streams)."""
    return sys.stdin, _binary(sys.stdout), _binary(sys.stderr)


class _TextSink:
    """Bytes written to a text-only stream (an in-memory capture) are decoded first."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, data: bytes) -> int:
        self._stream.write(data.decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        self._stream.flush()


def _binary(stream: IO[str]) -> IO[bytes]:
    buffer = getattr(stream, "buffer", None)
    return buffer if buffer is not None else _TextSink(stream)  # type: ignore[return-value]
