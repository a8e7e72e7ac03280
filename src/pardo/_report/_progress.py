"""What one call reports while it runs: joblib-format verbose lines, the progress bar, worker output.

``VerboseReporter`` is the pure part: it turns counts into joblib's exact lines (same widths, same
thinning, same ``finished`` line) and hands them to an injected ``write``; its clock is injected
too, so tests compare strings without timing noise. ``CallReporter`` is the glue ``Parallel``
talks to: it owns the verbose reporter, the bar (``pardo._report._bars``) and the replay of what worker
processes logged or printed (``pardo._report._capture``).

joblib thins its lines in two regimes, reproduced here: while input is still being dispatched, a
line for batch ``i`` when ``should_report(i, verbose)``; once everything is dispatched, a line
when the count of tasks left crosses a multiple of ``total // verbose + 1``. With ``n_jobs=1``
joblib runs its own loop that counts every task as one batch; ``sequential=True`` mirrors it.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Any

from pardo._report._bars import Bar, make_bar
from pardo._report._capture import replay

__all__ = [
    "CallReporter",
    "VerboseReporter",
    "backend_label",
    "report_points",
    "short_time",
    "should_report",
]

#: Logger that receives every verbose line as an INFO record, besides the stream.
logger = logging.getLogger("pardo")


def short_time(seconds: float) -> str:
    """A duration as joblib prints it: ``'   1.2s'`` up to a minute, ``' 1.5min'`` above."""
    if seconds > 60:
        return f"{seconds / 60.0:4.1f}min"
    return f" {seconds:5.1f}s"


def should_report(index: int, verbose: int) -> bool:
    """Whether the ``index``-th batch gets a line: all above verbose 10, ever sparser below it."""
    if verbose > 10 or index == 0:
        return True
    # Lines land where sqrt(index / spacing) crosses an integer: gaps grow linearly.
    spacing = 0.5 * (11 - verbose) ** 2
    return int(math.sqrt((index + 1) / spacing)) != int(math.sqrt(index / spacing))


def report_points(low: int, high: int, verbose: int) -> Iterator[int]:
    """Every ``i`` in ``(low, high]`` with ``should_report(i, verbose)``, without testing each."""
    if verbose > 10:
        yield from range(low + 1, high + 1)
        return
    spacing = 0.5 * (11 - verbose) ** 2
    # should_report(i) holds exactly when i + 1 >= spacing * k**2 > i for an integer k.
    k = max(1, math.isqrt(int(low / spacing)))
    while True:
        index = math.ceil(spacing * k * k) - 1
        if index > high:
            return
        if index > low and should_report(index, verbose):
            yield index
        k += 1


def backend_label(backend: Any) -> str:
    """The backend's name as joblib prints it: its ``verbose_label``, else its class name."""
    label = getattr(backend, "verbose_label", None)
    return label if isinstance(label, str) else type(backend).__name__


class VerboseReporter:
    """joblib's progress lines for one call, handed to ``write`` (message without prefix).

    Args:
        verbose: joblib's ``verbose`` (> 0).
        write: receives each message.
        total: number of tasks when the input has a ``len()``, else None.
        sequential: mirror joblib's ``n_jobs=1`` loop (one line check per task).
        pre_dispatch: tasks joblib dispatches up front (0 for ``"all"``); shifts the thinning.
        batch_lines: report batch size changes (joblib never batches on thread backends).
        clock: seconds, for elapsed times (joblib uses ``time.time``).
    """

    def __init__(
        self,
        verbose: int,
        write: Callable[[str], None],
        *,
        total: int | None,
        sequential: bool,
        pre_dispatch: int,
        batch_lines: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.verbose = verbose
        self.write = write
        self.total = total
        self.sequential = sequential
        self.pre_dispatch = pre_dispatch
        self.batch_lines = batch_lines
        self._batch_size = 1
        self._clock = clock
        self._started = clock()
        self._width = math.floor(math.log10(total)) + 1 if total else 3
        self._last = 0
        self._all_sent = False
        self._finished = False

    def _done(self, n_done: int, tail: str, of: int | None) -> None:
        w = self._width
        elapsed = f"| elapsed: {short_time(self._clock() - self._started)}"
        if of is None:
            pad = " " * (len("out of ") + w - len("tasks"))
            self.write(f"Done {n_done:{w}d} tasks {pad}{elapsed}{tail}")
        else:
            self.write(f"Done {n_done:{w}d} out of {of:{w}d} {elapsed}{tail}")

    def using_backend(self, name: str, n_jobs: int) -> None:
        self.write(f"Using backend {name} with {n_jobs} concurrent workers.")

    def batch_size_changed(self, new: int, seconds: float) -> None:
        old, self._batch_size = self._batch_size, new
        if self.verbose >= 10 and self.batch_lines and new != old:
            how = "fast" if new > old else "slow"
            self.write(f"Batch computation too {how} ({seconds}s.) Setting batch_size={new}.")

    def update(self, n_done: int, n_dispatched: int, n_batches: int, input_done: bool) -> None:
        """Called after each completed batch (and after dispatching, which prints nothing)."""
        if self._finished:
            return
        if self.sequential:
            for index in report_points(self._last, n_done, self.verbose):
                self._done(index, "", self.total)
            self._last = max(self._last, n_done)
            return
        if n_done <= self._last:
            return
        # joblib learns that the input is used up when a refill after a completion finds nothing
        # left (at once with pre_dispatch="all"); its lines switch regime one completion later.
        dispatch_over = self.pre_dispatch == 0 or self._all_sent
        self._all_sent = input_done if self.total is None else n_dispatched == self.total
        self._last = n_done
        if dispatch_over and n_done == n_dispatched:
            self.finish(n_done)
            return
        if not dispatch_over:
            if should_report(n_batches, self.verbose):
                self._done(n_done, "", self.total)
            return
        self._tail_line(n_done, n_dispatched)

    def _tail_line(self, n_done: int, n_dispatched: int) -> None:
        # Dispatch is over: thin by how many tasks are left, and estimate the time remaining.
        cursor = n_dispatched - n_done + 1 - self.pre_dispatch
        frequency = n_dispatched // self.verbose + 1
        if n_done + 1 == n_dispatched or cursor % frequency:
            return
        remaining = (self._clock() - self._started) / max(n_done, 1) * (n_dispatched - n_done)
        self._done(n_done, f" remaining: {short_time(remaining)}", n_dispatched)

    def finish(self, n_done: int | None = None) -> None:
        """The closing ``finished`` line (once); ``n_done`` defaults to the last count seen."""
        if not self._finished:
            self._finished = True
            n_done = self._last if n_done is None else n_done
            self._done(n_done, " finished", n_done)


class CallReporter:
    """Everything one call reports: verbose lines, the progress bar, ``print_progress`` hooks.

    Args:
        options: the call's ``Options`` (``pre_dispatch``).
        backend: the backend running the call (its name goes in the first verbose line).
        n_jobs: workers in use; 1 means joblib's sequential loop.
        total: number of tasks if known.
        on_change: called with ``(n_completed, n_dispatched)`` after every change.
        label: prefix of verbose lines, ``repr(parallel)``.
        verbose: joblib's ``verbose``.
        progress: the call's ``progress=`` value, the configuration's already applied.
        clock: for elapsed times.
    """

    def __init__(
        self,
        options: Any,
        backend: Any,
        n_jobs: int,
        total: int | None,
        on_change: Callable[[int, int], None],
        *,
        label: str = "Parallel",
        verbose: int = 0,
        progress: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.total = total
        self._on_change = on_change
        self._label = label
        spec = progress
        # Not ``bool(spec)``: a tqdm object without a total refuses to be truth-tested.
        self._new_bar = None if spec is None or spec is False else partial(make_bar, spec, total)
        self._bar: Bar | None = None  # drawn at the first report, so a failed start draws none
        self._state = (0, 0, False)  # n_completed, n_dispatched, input_done
        self._n_batches = 0
        self._closing = False
        self._verbose: VerboseReporter | None = None
        if verbose > 0:
            pre = options.pre_dispatch
            self._verbose = VerboseReporter(
                verbose,
                self._say,
                total=total,
                sequential=n_jobs == 1,
                pre_dispatch=0 if pre == "all" else options.max_in_flight(n_jobs),
                batch_lines=not getattr(backend, "uses_threads", False),
                clock=clock,
            )
            if n_jobs != 1:
                self._verbose.using_backend(backend_label(backend), n_jobs)

    def _say(self, message: str) -> None:
        line = f"[{self._label}]: {message}"
        stream = sys.stdout if self._verbose and self._verbose.verbose >= 50 else sys.stderr
        with self._paused():
            stream.write(line + "\n")
        logger.info(line)

    def _paused(self) -> AbstractContextManager[None]:
        return nullcontext() if self._bar is None else self._bar.paused()

    def batch_dispatched(self, size: int) -> None:
        """A new batch of ``size`` tasks was submitted (joblib thins lines by batch count)."""
        self._n_batches += 1

    def progress(self, n_completed: int, n_dispatched: int, input_done: bool) -> None:
        self._state = (n_completed, n_dispatched, input_done)
        if self._new_bar is not None:
            if self._bar is None:
                self._bar = self._new_bar()
            total = self.total if self.total is not None else n_dispatched if input_done else None
            self._bar.update(n_completed, total)
        self._on_change(n_completed, n_dispatched)

    def batch_size_changed(self, size: int, seconds: float) -> None:
        if self._verbose is not None:
            self._verbose.batch_size_changed(size, seconds)

    def report(self, n_completed: int, n_dispatched: int) -> None:
        """joblib's verbose lines (``Parallel.print_progress`` calls this)."""
        verbose = self._verbose
        if verbose is None:
            return
        verbose.update(n_completed, n_dispatched, self._n_batches, self._state[2])
        if self._closing and verbose.sequential:
            verbose.finish()

    def output(self, result: Any) -> None:
        """Replay what the batch's tasks logged and printed in a worker process."""
        with self._paused():
            replay(result.output, result.pid)

    def close(self, ok: bool) -> None:
        try:
            if ok and self._verbose is not None and self._verbose.sequential:
                # joblib's n_jobs=1 loop calls print_progress once more at the end: that call
                # prints "finished" (and recipes overriding print_progress see it too).
                self._closing = True
                self._on_change(*self._state[:2])
        finally:
            bar, self._bar = self._bar, None
            if bar is not None:
                bar.close(ok)
