"""Progress bars for ``progress=``: tqdm, a plain built-in line, or the user's callable or object.

Every bar is driven the same way: ``update(n_done, total)`` with the number of *completed* tasks
(absolute, so a batch of k tasks moves the bar by k) and the total once known, ``paused()`` around
anything else written to the terminal, and ``close(ok)`` exactly once, also after an error or
Ctrl-C. What ``progress=`` accepts:

- ``True`` or ``"tqdm"``: tqdm (``tqdm.auto``, so a widget in notebooks), a dependency of pardo;
- ``"plain"``: a line of pardo's own, kept for one reason: tqdm redraws with carriage returns
  whatever stderr is, so a log file or a CI log that is not a terminal collects one ever-longer
  line (or a line per redraw where the viewer splits on ``\r``). The plain bar writes whole lines
  there, one every ``LOG_INTERVAL`` seconds, and redraws in place only on a terminal;
- a tqdm-like object (has ``update(n)``): advanced by ``update``, its ``total`` set once known, not
  closed (it belongs to the caller);
- any other callable: called as ``fn(n_done, total_or_None)`` whenever either changes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TextIO

__all__ = ["Bar", "LineBar", "check_progress", "make_bar"]

_NAMES = ("tqdm", "plain")

#: Seconds between redraws of the plain line on a terminal (tqdm's default ``mininterval``).
MIN_INTERVAL = 0.1
#: Seconds between lines of the plain bar when stderr is a file or a CI log (no ``\r`` there).
LOG_INTERVAL = 30.0


class Bar(Protocol):
    """What ``CallReporter`` drives."""

    def update(self, n_done: int, total: int | None) -> None: ...

    def paused(self) -> Any: ...

    def close(self, ok: bool) -> None: ...


def check_progress(value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is something ``progress=`` accepts."""
    if value is None or isinstance(value, bool) or (isinstance(value, str) and value in _NAMES):
        return
    if not isinstance(value, str) and callable(value):
        return
    if callable(getattr(value, "update", None)):
        return
    msg = (
        f"progress={value!r} is not valid; expected True/False/None, 'tqdm', 'plain', a callable "
        "(n_done, total) or a tqdm-like object with update(n)"
    )
    raise ValueError(msg)


def _tqdm_class() -> Any:
    from tqdm.auto import tqdm

    return tqdm


def make_bar(spec: Any, total: int | None) -> Bar:
    """The bar for a (true, already checked) ``progress=`` value."""
    name = spec if isinstance(spec, str) else None
    if spec is True or name == "tqdm":
        tqdm = _tqdm_class()
        return TqdmBar(tqdm(total=total, unit="task", dynamic_ncols=True), owned=True)
    if name == "plain":
        return LineBar(total)
    if callable(getattr(spec, "update", None)):
        return TqdmBar(spec, owned=False)
    return CallbackBar(spec)


class TqdmBar:
    """Drives a tqdm (or tqdm-like) object by increments."""

    def __init__(self, bar: Any, owned: bool) -> None:
        self._bar = bar
        self._owned = owned
        self._done = 0

    def update(self, n_done: int, total: int | None) -> None:
        bar = self._bar
        if total is not None and getattr(bar, "total", None) != total:
            bar.total = total
            if n_done == self._done and hasattr(bar, "refresh"):
                bar.refresh()
        if n_done != self._done:
            bar.update(n_done - self._done)
            self._done = n_done

    @contextmanager
    def paused(self) -> Iterator[None]:
        bar = self._bar
        if not (hasattr(bar, "clear") and hasattr(bar, "refresh")):
            yield
            return
        bar.clear()
        try:
            yield
        finally:
            bar.refresh()

    def close(self, ok: bool) -> None:
        if self._owned:
            self._bar.close()
        elif hasattr(self._bar, "refresh"):
            self._bar.refresh()


class CallbackBar:
    """Calls ``fn(n_done, total)`` whenever the pair changes."""

    def __init__(self, fn: Callable[[int, int | None], Any]) -> None:
        self._fn = fn
        self._last: tuple[int, int | None] | None = None

    def update(self, n_done: int, total: int | None) -> None:
        if (n_done, total) != self._last:
            self._last = (n_done, total)
            self._fn(n_done, total)

    @contextmanager
    def paused(self) -> Iterator[None]:
        yield

    def close(self, ok: bool) -> None:
        pass


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render_line(n_done: int, total: int | None, elapsed: float, width: int = 20) -> str:
    """The plain bar's text, e.g. ``pardo [#####-----]  50/100 tasks  50% | 12.5 tasks/s ...``."""
    rate = n_done / elapsed if elapsed > 0 else 0.0
    speed = f"{rate:.1f} tasks/s"
    if total is None:
        return f"pardo {n_done} tasks | {speed} | elapsed {_clock_text(elapsed)}"
    share = n_done / total if total else 1.0
    filled = int(share * width)
    gauge = "#" * filled + "-" * (width - filled)
    eta = _clock_text((total - n_done) / rate) if rate > 0 else "?"
    digits = len(str(total))
    return (
        f"pardo [{gauge}] {n_done:{digits}d}/{total} tasks {share:4.0%} | {speed} | "
        f"elapsed {_clock_text(elapsed)} | eta {eta}"
    )


class LineBar:
    """The built-in bar: one line redrawn with ``\\r`` on a terminal, sparse lines elsewhere."""

    def __init__(
        self,
        total: int | None,
        stream: Callable[[], TextIO] = lambda: sys.stderr,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._drawn_at: float | None = None
        self._drawn: tuple[int, int | None] | None = None
        self._shown = ""
        self._done = 0
        self._total = total

    def _tty(self) -> bool:
        isatty = getattr(self._stream(), "isatty", None)
        return bool(isatty and isatty())

    def _draw(self, force: bool) -> None:
        now = self._clock()
        interval = MIN_INTERVAL if self._tty() else LOG_INTERVAL
        if not force and self._drawn_at is not None and now - self._drawn_at < interval:
            return
        self._drawn_at = now
        self._drawn = (self._done, self._total)
        text = render_line(self._done, self._total, now - self._started)
        stream = self._stream()
        if self._tty():
            # Pad with spaces so a shorter line fully covers the previous one.
            stream.write("\r" + text.ljust(len(self._shown)))
            self._shown = text
        else:
            stream.write(text + "\n")
        stream.flush()

    def update(self, n_done: int, total: int | None) -> None:
        changed = total != self._total
        self._total = total
        if n_done != self._done or changed or self._drawn_at is None:
            self._done = n_done
            self._draw(force=self._drawn_at is None or n_done == total)

    @contextmanager
    def paused(self) -> Iterator[None]:
        if not (self._shown and self._tty()):
            yield
            return
        self._stream().write("\r" + " " * len(self._shown) + "\r")
        self._shown = ""
        try:
            yield
        finally:
            self._draw(force=True)

    def close(self, ok: bool) -> None:
        if self._tty():
            self._draw(force=True)
            self._stream().write("\n")
            self._stream().flush()
        elif self._drawn != (self._done, self._total):
            self._draw(force=True)
