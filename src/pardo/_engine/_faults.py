"""What to do when a task fails: retry it, collect the failure, or raise it with a note naming it.

``FaultPolicy`` holds the user's choices (``retries``, ``retry_on``, ``on_error``,
``task_timeout``, ``on_timeout``); its ``judge`` decides the fate of a batch lost with a dead or
killed worker; ``annotate`` turns a failure into the exception the caller sees. Everything here
is pure: the dispatch loop feeds in what happened and applies the verdict.
"""

from __future__ import annotations

import reprlib
import signal
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from pardo._errors import (
    BrokenProcessPool,
    RemoteTraceback,
    TaskError,
    TaskTimeout,
    TaskTimeoutError,
    WorkerDiedError,
)
from pardo._task import Batch

if TYPE_CHECKING:
    from pardo.backends import Backend
    from pardo.backends._base import WorkerDeath

__all__ = [
    "FaultPolicy",
    "Loss",
    "Verdict",
    "VerdictKind",
    "annotate",
    "describe_exit",
    "losses",
    "overdue",
]

_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40
_short.maxlist = _short.maxtuple = _short.maxdict = 4

#: The exit code of a worker killed for ``task_timeout`` (SIGKILL; there is none on Windows).
KILLED = -9
#: What to check when a worker died, in every message that reports one.
_DEATH_HINTS = (
    "Check for: out-of-memory kills (`dmesg` or `journalctl -k` names the killed pid), crashes "
    "in native code (faulthandler printed the worker's traceback to stderr), or os._exit() / "
    "sys.exit() in the task."
)


@dataclass(frozen=True)
class FaultPolicy:
    """The user's fault-handling choices for one call."""

    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = (BrokenProcessPool,)
    collect: bool = False
    task_timeout: float | None = None
    timeout_returns: bool = False

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether a batch that failed with ``exc`` on try ``attempt`` gets another try.

        Never for Ctrl-C, SIGTERM or ``SystemExit``, whatever ``retry_on`` says.
        """
        return (
            attempt <= self.retries
            and isinstance(exc, Exception)
            and isinstance(exc, self.retry_on)
        )

    def judge(self, batch: Batch, attempt: int, loss: Loss) -> Verdict:
        """The fate of ``batch`` (on try ``attempt``), lost with the pool as ``loss`` says."""
        if loss.pid is None:
            return Verdict(VerdictKind.RESTART)
        if loss.timed_out is None and len(batch) > 1:
            return Verdict(VerdictKind.SPLIT)
        exc: BaseException
        if loss.timed_out is not None:
            exc = timeout_error(batch, loss.timed_out, self.task_timeout, loss.pid)
        else:
            exc = death_error(batch, loss.pid, loss.exitcode)
        if self.should_retry(exc, attempt):
            return Verdict(VerdictKind.RETRY)
        if loss.timed_out is not None and self.timeout_returns:
            seconds = round(loss.timed_out, 3)
            markers = [TaskTimeout(batch.start + i, seconds) for i in range(len(batch))]
            return Verdict(VerdictKind.FILL, markers)
        annotate(exc, batch, attempt, 0 if len(batch) == 1 else None, pid=loss.pid)
        if self.collect:
            errors = [TaskError(batch.start + i, exc, "") for i in range(len(batch))]
            return Verdict(VerdictKind.FILL, errors)
        return Verdict(VerdictKind.RAISE, exc)

    def check_backend(self, backend: Backend) -> None:
        """Refuse ``task_timeout`` on a backend that cannot stop a running task.

        The front calls it before ``backend.start_call()``: nothing has started when it raises.
        """
        if self.task_timeout is None or backend.supports_task_timeout:
            return
        msg = (
            f"task_timeout={self.task_timeout:g} needs a backend whose workers are processes "
            f"('loky' or 'multiprocessing'); the {backend.name!r} backend runs tasks in threads "
            "of this process, and a thread cannot be stopped from outside, so a stuck task "
            "could not be killed. Use backend='loky', or drop task_timeout (timeout= still "
            "bounds the wait for each result)."
        )
        raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class Loss:
    """How a batch was lost with the pool: who held it and why it stopped."""

    pid: int | None
    """The dead worker that was running it; None: an innocent bystander of another's death."""
    exitcode: int | None
    timed_out: float | None
    """Seconds it had run when killed for ``task_timeout``; None: it died on its own."""


#: The loss of a batch that was not running on a worker that died.
INNOCENT = Loss(None, None, None)


class VerdictKind(Enum):
    """What becomes of a batch lost with the pool."""

    #: Submit again, same attempt (the batch was lost through no fault of its own).
    RESTART = "restart"
    #: Submit each task alone, same attempt: the next death names the one task that causes it.
    SPLIT = "split"
    #: Submit again as attempt + 1.
    RETRY = "retry"
    #: The batch's slots get ``value`` (a list: ``TaskTimeout`` or ``TaskError`` markers).
    FILL = "fill"
    #: Raise ``value``.
    RAISE = "raise"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the dispatch loop does with a lost batch: a kind, and its value (FILL, RAISE)."""

    kind: VerdictKind
    value: Any = None


def losses(
    running: dict[int, tuple[int, float]], deaths: list[WorkerDeath], timed_out: dict[int, float]
) -> dict[int, Loss]:
    """``{first task index: Loss}`` of the batches the dead workers were running."""
    return {
        running[d.pid][0]: Loss(d.pid, d.exitcode, timed_out.get(running[d.pid][0]))
        for d in deaths
        if d.pid in running
    }


def overdue(
    running: dict[int, tuple[int, float]], starts: set[int], now: float, limit: float
) -> dict[int, tuple[int, float]]:
    """``{pid: (first task index, seconds run)}`` of batches among ``starts`` past ``limit``."""
    return {
        pid: (start, now - since)
        for pid, (start, since) in running.items()
        if start in starts and now - since > limit
    }


def describe_exit(exitcode: int | None) -> str:
    """``"killed by signal 9 (SIGKILL)"``-style words for a worker's exit code."""
    if exitcode is None:
        return "exit status unknown"
    if exitcode >= 0:
        return f"exit code {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = "unknown signal"
    why = {"SIGKILL": ", often the out-of-memory killer", "SIGSEGV": ", a crash in native code"}
    return f"killed by signal {-exitcode} ({name}{why.get(name, '')})"


def death_error(batch: Batch, pid: int, exitcode: int | None) -> WorkerDiedError:
    """The error for a worker that died while running ``batch``."""
    what = describe_task(batch, 0) if len(batch) == 1 else f"one of tasks {_span(batch)}"
    msg = (
        f"worker process {pid} died ({describe_exit(exitcode)}) while running {what}. "
        f"{_DEATH_HINTS} The other tasks in flight were restarted; retries=N re-runs a task "
        "lost to a dead worker on a fresh one."
    )
    return WorkerDiedError(msg)


def timeout_error(batch: Batch, seconds: float, limit: float | None, pid: int) -> TaskTimeoutError:
    """The error for a task killed after running past ``task_timeout``."""
    msg = (
        f"{describe_task(batch, 0)} ran {seconds:.1f} s, past task_timeout={limit:g} s; its "
        f"worker process (pid {pid}) was killed and replaced. Use on_timeout='return' to get a "
        "pardo.TaskTimeout in its result slot and keep the other results."
    )
    return TaskTimeoutError(msg)


def unblamed_error(deaths: list[WorkerDeath], batches: list[Batch]) -> WorkerDiedError:
    """The error when the pool keeps breaking while no task is known to run on a dead worker."""
    dead = "; ".join(f"pid {d.pid}: {describe_exit(d.exitcode)}" for d in deaths)
    spans = ", ".join(_span(b) for b in sorted(batches, key=lambda b: b.start)[:8])
    msg = (
        f"the worker pool keeps breaking while no task of this call was running on the worker "
        f"that died ({dead or 'no dead worker found'}). Check the initializer, the memory "
        f"limit, or what else kills processes. {_DEATH_HINTS} Tasks in flight: {spans or 'none'}."
    )
    return WorkerDiedError(msg)


def _span(batch: Batch) -> str:
    end = batch.start + len(batch) - 1
    return str(batch.start) if end == batch.start else f"{batch.start}..{end}"


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
    where = f"tasks {_span(batch)}" if offset is None else describe_task(batch, offset)
    note = f"pardo: {where}"
    if pid is not None:
        note += f", in worker pid {pid}"
    if attempt > 1:
        note += f", failed on attempt {attempt}"
    _add_note(exc, note)
    return exc
