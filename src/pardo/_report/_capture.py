"""Worker output: record what a batch's tasks log and print in a worker process, replay it in the parent.

Process workers write to their own ``sys.stdout``/``sys.stderr`` (lost in Jupyter, interleaved
mid-line in a terminal) and their ``logging`` records never reach the parent's handlers. So on
process backends each batch carries an ``OutputCapture``: in the worker it swaps ``sys.stdout``,
``sys.stderr`` and the root logger's handlers for recorders for the length of the batch, and the
batch ships the recorded events back with its results. The parent replays them in order when the
batch completes: records through ``logging.getLogger(record.name).handle`` (so the parent's levels,
filters and handlers apply, with ``worker_pid`` and ``task_index`` attached), text to its own
``sys.stdout``/``sys.stderr`` a whole chunk at a time, each ending with a newline.

Worker loggers are given the parent's levels (root's effective level and every level set
explicitly), so what the parent would drop is not even recorded.

A worker that runs several batches at once on threads (a dask worker) cannot swap
``sys.stdout`` per batch. There, ``OutputCapture(threaded=True)`` installs, once per worker
process, a stream and a root handler that route by thread: what a thread running a pardo batch
writes goes to that batch's recording, everything else (dask's own output, other tasks) passes
through untouched.
"""

from __future__ import annotations

import logging
import pickle
import sys
import threading
from dataclasses import dataclass
from typing import Any, ClassVar, TextIO

__all__ = ["Event", "OutputCapture", "Recording", "ThreadRecording", "capture_spec", "replay"]

#: ``(task_index, kind, payload)``: kind "out"/"err" with text, or "log" with a ``LogRecord``.
Event = tuple[int, str, Any]


def capture_spec(threaded: bool = False) -> OutputCapture:
    """Parent side, at call time: the logging levels workers should apply; ``threaded`` for
    workers that run several batches at once on threads."""
    levels = [("", logging.getLogger().getEffectiveLevel())]
    for name, item in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(item, logging.Logger) and item.level != logging.NOTSET:
            levels.append((name, item.level))
    return OutputCapture(tuple(levels), threaded)


@dataclass(frozen=True)
class OutputCapture:
    """Travels with each batch to a process worker; ``start`` begins recording there."""

    levels: tuple[tuple[str, int], ...]
    #: The worker runs several batches at once on threads: route output by thread.
    threaded: bool = False

    def __reduce__(self) -> tuple[type[OutputCapture], tuple[Any, ...]]:
        # Pickled once per batch: the default dataclass state costs twice as much.
        return OutputCapture, (self.levels, self.threaded)

    def start(self, results: list[Any], start: int) -> Recording:
        """Record until ``stop()``; the running task is ``start + len(results)``."""
        for name, level in self.levels:
            target = logging.getLogger(name or None)
            if target.level != level:  # setLevel clears every logger's cache: skip no-ops
                target.setLevel(level)
        if self.threaded:
            return ThreadRecording(results, start)
        return Recording(results, start)


class Recording:
    """One batch's recorders, installed in the worker until ``stop``."""

    def __init__(self, results: list[Any], start: int) -> None:
        self.events: list[Event] = []
        self._results = results
        self._start = start
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._pending_key: tuple[int, str] = (-1, "")
        self._install()

    def _install(self) -> None:
        root = logging.getLogger()
        self._saved = (sys.stdout, sys.stderr, root.handlers)
        self._handler = _RecordTap(self)
        sys.stdout = _StreamTap(self, "out", sys.stdout)
        sys.stderr = _StreamTap(self, "err", sys.stderr)
        # The worker's own root handlers (inherited through fork, or set by an initializer)
        # would print the record a second time, straight to the worker's stderr.
        root.handlers = [self._handler]

    def _uninstall(self) -> None:
        sys.stdout, sys.stderr, logging.getLogger().handlers = self._saved

    def _index(self) -> int:
        return self._start + len(self._results)

    def text(self, kind: str, text: str) -> None:
        with self._lock:
            key = (self._index(), kind)
            if key != self._pending_key:
                self._flush()
                self._pending_key = key
            self._pending.append(text)

    def record(self, record: logging.LogRecord) -> None:
        with self._lock:
            self._flush()
            self.events.append((self._index(), "log", _portable(record)))

    def _flush(self) -> None:
        if self._pending:
            index, kind = self._pending_key
            self.events.append((index, kind, "".join(self._pending)))
            self._pending = []

    def stop(self) -> tuple[Event, ...]:
        """Put the streams and handlers back; the events recorded, in order."""
        self._uninstall()
        with self._lock:
            self._flush()
        return tuple(self.events)


class _RecordTap(logging.Handler):
    def __init__(self, recording: Recording) -> None:
        super().__init__()
        self._recording = recording

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._recording.record(record)
        except Exception:
            self.handleError(record)


class _StreamTap:
    """Stands in for ``sys.stdout``/``sys.stderr``; anything but writing goes to the original."""

    def __init__(self, recording: Recording, kind: str, original: TextIO) -> None:
        self._recording = recording
        self._kind = kind
        self._original = original

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            msg = f"write() argument must be str, not {type(text).__name__}"
            raise TypeError(msg)
        if text:
            self._recording.text(self._kind, text)
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


class ThreadRecording(Recording):
    """A recording of what one thread writes, in a worker where other threads keep writing."""

    def _install(self) -> None:
        _Routes.install()
        _Routes.by_thread[threading.get_ident()] = self

    def _uninstall(self) -> None:
        _Routes.by_thread.pop(threading.get_ident(), None)


class _Routes:
    """The per-process registry behind ``ThreadRecording``: which thread records where."""

    by_thread: ClassVar[dict[int, Recording]] = {}
    _installed = False
    _lock = threading.Lock()

    @classmethod
    def install(cls) -> None:
        with cls._lock:
            if cls._installed:
                return
            sys.stdout = _RoutedStream("out", sys.stdout)
            sys.stderr = _RoutedStream("err", sys.stderr)
            root = logging.getLogger()
            # The worker's own handlers would print a recorded thread's records a second time.
            for handler in root.handlers:
                handler.addFilter(_not_recorded)
            root.addHandler(_RoutedRecords())
            cls._installed = True


def _not_recorded(record: logging.LogRecord) -> bool:
    return record.thread not in _Routes.by_thread


class _RoutedRecords(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        recording = _Routes.by_thread.get(record.thread or 0)
        if recording is not None:
            try:
                recording.record(record)
            except Exception:
                self.handleError(record)


class _RoutedStream(_StreamTap):
    """``sys.stdout``/``sys.stderr`` of a threaded worker: a recorded thread's text to its
    recording, any other thread's to the original stream."""

    def __init__(self, kind: str, original: TextIO) -> None:
        self._kind = kind
        self._original = original

    def write(self, text: str) -> int:
        recording = _Routes.by_thread.get(threading.get_ident())
        if recording is None:
            return self._original.write(text)
        if not isinstance(text, str):
            msg = f"write() argument must be str, not {type(text).__name__}"
            raise TypeError(msg)
        if text:
            recording.text(self._kind, text)
        return len(text)

    def flush(self) -> None:
        self._original.flush()

    def isatty(self) -> bool:
        if threading.get_ident() in _Routes.by_thread:
            return False
        return self._original.isatty()


def _portable(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of ``record`` that pickles: message formatted, traceback as text, odd extras as repr."""
    portable = logging.makeLogRecord(record.__dict__)
    portable.msg = record.getMessage()
    portable.args = None
    if record.exc_info:
        portable.exc_text = record.exc_text or logging.Formatter().formatException(record.exc_info)
    portable.exc_info = None
    try:
        pickle.dumps(portable)
    except Exception:
        for key, value in list(vars(portable).items()):
            try:
                pickle.dumps(value)
            except Exception:
                setattr(portable, key, repr(value))
    return portable


def replay(events: tuple[Event, ...], pid: int) -> None:
    """Parent side: emit a batch's events, records through the parent's logging, text whole."""
    for index, kind, payload in events:
        if kind == "log":
            payload.worker_pid = pid
            payload.task_index = index
            target = logging.getLogger(payload.name)
            if target.isEnabledFor(payload.levelno):
                target.handle(payload)
            continue
        stream = sys.stdout if kind == "out" else sys.stderr
        stream.write(payload if payload.endswith("\n") else payload + "\n")
        stream.flush()
