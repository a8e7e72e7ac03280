"""What to do when a task fails: retry it, collect the failure, or raise it with a note naming it.

``FaultPolicy`` holds the user's choices (``retries``, ``retry_on``, ``on_error``,
``task_timeout``); ``annotate`` turns a failure into the exception the caller sees.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Iterable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from pardo._errors import RemoteTraceback
from pardo._task import Batch

__all__ = ["FaultPolicy", "annotate"]

_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40
_short.maxlist = _short.maxtuple = _short.maxdict = 4


@dataclass(frozen=True)
class FaultPolicy:
    """The user's fault-handling choices for one call."""

    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = (BrokenProcessPool,)
    collect: bool = False
    task_timeout: float | None = None
    timeout_returns: bool = False

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether a batch that failed with ``exc`` on try ``attempt`` gets another try."""
        return attempt <= self.retries and isinstance(exc, self.retry_on)

    def check_running(self, running: Iterable[Any], resubmit: Callable[[Any], None]) -> None:
        """Called while waiting: enforce ``task_timeout`` on batches still running."""


def describe_task(batch: Batch, offset: int) -> str:
    """``"task 12: fit(0.1, C=2)"``-style short description of one task."""
    func, args, kwargs = batch.tasks[offset]
    name = getattr(func, "__qualname__", None) or _short.repr(func)
    parts = [_short.repr(a) for a in args] + [f"{k}={_short.repr(v)}" for k, v in kwargs.items()]
    return f"task {batch.start + offset}: {name}({', '.join(parts)})"


def _add_note(exc: BaseException, note: str) -> None:
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python 3.10: store it where 3.11+ tracebacks would show it
        notes = getattr(exc, "__notes__", None)
        exc.__notes__ = [*(notes or []), note]  # type: ignore[attr-defined]


def annotate(
    exc: BaseException,
    batch: Batch,
    attempt: int,
    offset: int | None = None,
    traceback: str | None = None,
    pid: int | None = None,
) -> BaseException:
    """Attach the remote traceback and a note naming the task (or batch) to ``exc``; return it."""
    if traceback and exc.__cause__ is None:
        exc.__cause__ = RemoteTraceback(traceback)
    if offset is not None:
        where = describe_task(batch, offset)
    else:
        where = f"tasks {batch.start}..{batch.start + len(batch) - 1}"
    note = f"pardo: {where}"
    if pid is not None:
        note += f", in worker pid {pid}"
    if attempt > 1:
        note += f", failed on attempt {attempt}"
    _add_note(exc, note)
    return exc
