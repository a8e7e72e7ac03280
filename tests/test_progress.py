"""``progress=``: the bar counts completed tasks on every backend and ``return_as``, and always closes.

Also the public hooks older recipes use (``print_progress``, ``n_completed_tasks``,
``n_dispatched_tasks``) and the plain built-in bar, drawn on a fake terminal with a fake clock.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

import pardo._report._bars as bars
from pardo import Parallel, delayed, parallel_config
from pardo._report._bars import LineBar, render_line

RETURN_AS = ("list", "generator", "generator_unordered")


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"task {x} fails")
    return x


def interrupt_on(x: int, bad: int) -> int:
    if x == bad:
        raise KeyboardInterrupt
    return x


class Calls:
    """A ``progress=`` callable that records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, n_done: int, total: int | None) -> None:
        self.calls.append((n_done, total))


class FakeTqdm:
    """Just enough of tqdm: ``update``, ``total``, ``clear``/``refresh``, ``close``."""

    instances: ClassVar[list[FakeTqdm]] = []

    def __init__(self, total: int | None = None, **kwargs: Any) -> None:
        self.total = total
        self.n = 0
        self.closed = 0
        self.kwargs = kwargs
        FakeTqdm.instances.append(self)

    def update(self, n: int) -> None:
        self.n += n

    def clear(self) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def fake_tqdm(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeTqdm]]:
    """Make ``progress=True`` build ``FakeTqdm`` bars."""
    FakeTqdm.instances = []
    monkeypatch.setattr(bars, "_tqdm_class", lambda: FakeTqdm)
    yield FakeTqdm


def run(par: Parallel, tasks: Any) -> list[Any]:
    out = par(tasks)
    return out if isinstance(out, list) else list(out)


@pytest.mark.parametrize("return_as", RETURN_AS)
def test_bar_reaches_exactly_n_on_every_backend(backend: str, return_as: str) -> None:
    """The count rises from 0 to exactly N, never backwards, whatever the backend or return_as."""
    calls = Calls()
    par = Parallel(n_jobs=2, backend=backend, return_as=return_as, progress=calls)
    assert sorted(run(par, [delayed(abs)(i) for i in range(25)])) == list(range(25))
    done = [n for n, _ in calls.calls]
    assert done[0] == 0 and done[-1] == 25
    assert done == sorted(done)
    assert {total for _, total in calls.calls} == {25}


@pytest.mark.parametrize("return_as", RETURN_AS)
def test_owned_bar_counts_tasks_and_closes(
    backend: str, return_as: str, fake_tqdm: type[FakeTqdm]
) -> None:
    """``progress=True`` builds one tqdm bar that ends at N and is closed once."""
    run(Parallel(n_jobs=2, backend=backend, return_as=return_as, progress=True), range_tasks(30))
    (bar,) = fake_tqdm.instances
    assert (bar.n, bar.total, bar.closed) == (30, 30, 1)


def range_tasks(n: int) -> list[Any]:
    return [delayed(abs)(i) for i in range(n)]


def test_batched_tasks_advance_the_bar_per_task() -> None:
    """A batch of k tasks moves the count by k, not by 1."""
    calls = Calls()
    Parallel(n_jobs=2, backend="threading", batch_size=5, progress=calls)(range_tasks(23))
    done = sorted({n for n, _ in calls.calls})
    assert done[-1] == 23
    assert all(n % 5 == 0 for n in done[:-1]) and len(done) > 2


def test_unknown_total_becomes_known_once_the_input_is_used_up() -> None:
    """With generator input the total is None until every task is dispatched, then N."""
    calls = Calls()
    Parallel(n_jobs=1, progress=calls, batch_size=1)(delayed(abs)(i) for i in range(12))
    assert calls.calls[0] == (0, None)
    assert calls.calls[-1] == (12, 12)
    totals = [t for _, t in calls.calls]
    assert totals == sorted(totals, key=lambda t: t is not None)  # None first, then 12


def test_n_jobs_1_reports_progress() -> None:
    """The sequential path (joblib's does not call back at all) reports every batch."""
    calls = Calls()
    Parallel(n_jobs=1, progress=calls, batch_size=1)(range_tasks(5))
    assert [n for n, _ in calls.calls] == [0, 1, 2, 3, 4, 5]


def test_tqdm_like_object_is_advanced_and_left_open() -> None:
    """An object with ``update`` gets increments and its total, and is not closed by pardo."""
    bar = FakeTqdm()
    Parallel(n_jobs=2, backend="threading", progress=bar)(range_tasks(17))
    assert (bar.n, bar.total, bar.closed) == (17, 17, 0)


def test_real_tqdm_object_reaches_n() -> None:
    """A real ``tqdm`` instance (the usual way to set ``desc``, ``position``...) ends at N."""
    tqdm = pytest.importorskip("tqdm")
    stream = io.StringIO()
    with tqdm.tqdm(desc="work", file=stream) as bar:
        Parallel(n_jobs=2, backend="threading", progress=bar)(range_tasks(40))
        assert (bar.n, bar.total) == (40, 40)
    assert "work: 100%" in stream.getvalue() and "40/40" in stream.getvalue()


def test_progress_true_draws_tqdm_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """With tqdm installed the default bar is tqdm's, on stderr, counting tasks."""
    pytest.importorskip("tqdm")
    Parallel(n_jobs=2, backend="threading", progress=True)(range_tasks(9))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "9/9" in captured.err and "task" in captured.err


def test_progress_true_is_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    """tqdm is a dependency: ``progress=True`` always draws a tqdm bar, never the plain line."""
    made: list[Any] = []
    real = bars._tqdm_class()

    def spy() -> Any:
        def make(**kwargs: Any) -> Any:
            made.append(kwargs)
            return real(**kwargs)

        return make

    monkeypatch.setattr(bars, "_tqdm_class", spy)
    Parallel(n_jobs=1, progress=True)(range_tasks(6))
    assert made and made[0]["total"] == 6


def test_progress_from_parallel_config() -> None:
    """``parallel_config(progress=...)`` applies; an explicit ``progress=False`` still wins."""
    calls = Calls()
    with parallel_config(progress=calls):
        Parallel(n_jobs=1)(range_tasks(3))
        assert calls.calls[-1] == (3, 3)
        calls.calls.clear()
        Parallel(n_jobs=1, progress=False)(range_tasks(3))
    assert calls.calls == []


@pytest.mark.parametrize("bad", ["bar", 3, 1.5, object()])
def test_invalid_progress_is_refused_early(bad: object) -> None:
    """A value ``progress=`` cannot use fails at construction, naming the value and the choices."""
    with pytest.raises(ValueError, match=r"progress=.*expected True/False/None, 'tqdm', 'plain'"):
        Parallel(progress=bad)
    with pytest.raises(ValueError, match="progress="):
        parallel_config(progress=bad)


def test_bar_closes_when_a_task_fails(backend: str, fake_tqdm: type[FakeTqdm]) -> None:
    """An error ends the call and closes the bar (once), on every backend."""
    with pytest.raises(ValueError, match="task 3 fails"):
        Parallel(n_jobs=2, backend=backend, progress=True)(delayed(fail_on)(i, 3) for i in range(8))
    (bar,) = fake_tqdm.instances
    assert bar.closed == 1 and bar.n < 8


def test_bar_closes_on_ctrl_c(fake_tqdm: type[FakeTqdm]) -> None:
    """Ctrl-C (KeyboardInterrupt) in the middle of a call still closes the bar."""
    with pytest.raises(KeyboardInterrupt):
        Parallel(n_jobs=1, progress=True, batch_size=1)(
            delayed(interrupt_on)(i, 4) for i in range(8)
        )
    (bar,) = fake_tqdm.instances
    assert bar.closed == 1 and bar.n <= 4  # tasks after the interrupted one never count


def test_bar_closes_when_the_generator_is_dropped(fake_tqdm: type[FakeTqdm]) -> None:
    """Closing a ``return_as="generator"`` early closes the bar too."""
    gen = Parallel(n_jobs=2, backend="threading", return_as="generator", progress=True)(
        range_tasks(50)
    )
    next(gen)
    gen.close()
    (bar,) = fake_tqdm.instances
    assert bar.closed == 1


# -- the public hooks old recipes use ----------------------------------------------------------


class TqdmRecipe(Parallel):
    """joblib's documented recipe: override ``print_progress`` and read the counters."""

    seen: list[tuple[int, int]]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.seen = []
        return super().__call__(*args, **kwargs)

    def print_progress(self) -> None:
        self.seen.append((self.n_completed_tasks, self.n_dispatched_tasks))


def test_print_progress_override_sees_counts_reach_n(backend: str) -> None:
    """A subclass overriding ``print_progress`` sees completed counts climb to N on every backend."""
    par = TqdmRecipe(n_jobs=2, backend=backend)
    par(range_tasks(20))
    completed = [c for c, _ in par.seen]
    assert completed[-1] == 20 and completed == sorted(completed)
    assert all(c <= d for c, d in par.seen)
    assert (par.n_completed_tasks, par.n_dispatched_tasks) == (20, 20)


def test_tqdm_recipe_subclass_runs_to_completion() -> None:
    """The widely copied tqdm recipe (total from ``n_dispatched_tasks``) works unchanged."""
    tqdm = pytest.importorskip("tqdm")
    stream = io.StringIO()

    class ProgressParallel(Parallel):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with tqdm.tqdm(file=stream) as self._pbar:
                return Parallel.__call__(self, *args, **kwargs)

        def print_progress(self) -> None:
            self._pbar.total = self.n_dispatched_tasks
            self._pbar.n = self.n_completed_tasks
            self._pbar.refresh()

    assert ProgressParallel(n_jobs=2, backend="threading")(range_tasks(15)) == list(range(15))
    assert "15/15" in stream.getvalue()


def test_overriding_print_progress_silences_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    """In joblib ``print_progress`` prints the verbose lines, so overriding it replaces them."""
    TqdmRecipe(n_jobs=1, verbose=10)(range_tasks(5))
    assert capsys.readouterr().err == ""


# -- the plain bar on a fake terminal ----------------------------------------------------------


class FakeTerminal(io.StringIO):
    def __init__(self, tty: bool = True) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_render_line_shows_count_rate_and_eta() -> None:
    """The plain line: gauge, count, percentage, rate, elapsed and time left."""
    assert render_line(50, 200, 10.0, width=10) == (
        "pardo [##--------]  50/200 tasks  25% | 5.0 tasks/s | elapsed 0:10 | eta 0:30"
    )
    assert render_line(7, None, 2.0) == "pardo 7 tasks | 3.5 tasks/s | elapsed 0:02"
    assert render_line(0, 4, 0.0, width=4).endswith("| eta ?")
    assert "elapsed 1:01:01" in render_line(1, 2, 3661.0)


def test_line_bar_redraws_in_place_at_most_every_tenth_of_a_second() -> None:
    """On a terminal the line is redrawn with ``\\r``, throttled, and ends with a newline."""
    term, clock = FakeTerminal(), Clock()
    bar = LineBar(10, stream=lambda: term, clock=clock)
    bar.update(0, 10)
    clock.now = 0.05
    bar.update(3, 10)  # too soon: not drawn
    clock.now = 0.5
    bar.update(5, 10)
    clock.now = 1.0
    bar.update(10, 10)  # the last one is always drawn
    bar.close(ok=True)
    frames = term.getvalue().split("\r")[1:]
    assert [f.split("tasks")[0].split("] ")[1].strip() for f in frames] == [
        "0/10",
        "5/10",
        "10/10",
        "10/10",
    ]
    assert term.getvalue().endswith("\n") and "\n" not in term.getvalue()[:-1]


def test_line_bar_pauses_for_other_output() -> None:
    """Text written while paused starts on a clean line and the bar comes back below it."""
    term, clock = FakeTerminal(), Clock()
    bar = LineBar(4, stream=lambda: term, clock=clock)
    bar.update(1, 4)
    with bar.paused():
        term.write("hello\n")
    shown = render_line(1, 4, 0.0)
    assert term.getvalue() == "\r" + shown + "\r" + " " * len(shown) + "\rhello\n\r" + shown


def test_line_bar_off_a_terminal_writes_sparse_full_lines() -> None:
    """In a log file there is no ``\\r``: a line at the start, every 30 s, and at the end."""
    log, clock = FakeTerminal(tty=False), Clock()
    bar = LineBar(100, stream=lambda: log, clock=clock)
    for i in range(100):
        clock.now = i
        bar.update(i, 100)
    bar.update(100, 100)
    bar.close(ok=True)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert [line.split("] ")[1].split(" tasks")[0] for line in lines] == [
        "  0/100",
        " 30/100",
        " 60/100",
        " 90/100",
        "100/100",
    ]


def test_plain_bar_through_parallel(capsys: pytest.CaptureFixture[str]) -> None:
    """``progress="plain"`` draws the built-in line on stderr, stdout untouched."""
    Parallel(n_jobs=2, backend="threading", progress="plain")(range_tasks(12))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[-1].startswith("pardo [####################] 12/12 tasks")


def test_stderr_is_looked_up_when_drawing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain bar writes to whatever ``sys.stderr`` is at the time (Jupyter swaps it)."""
    swapped = FakeTerminal(tty=False)
    bar = LineBar(2)
    monkeypatch.setattr(sys, "stderr", swapped)
    bar.update(2, 2)
    bar.close(ok=True)
    assert "2/2 tasks" in swapped.getvalue()
