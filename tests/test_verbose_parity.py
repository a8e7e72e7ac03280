"""``verbose=`` output is joblib's, byte for byte: same lines, widths, thinning and streams.

Three kinds of evidence: the formatting helpers against joblib's own helpers; ``VerboseReporter``
against joblib's ``Parallel.print_progress`` driven through the same simulated run with a fake
clock; and real calls through both libraries where the output is deterministic (``n_jobs=1``,
the first line of a parallel call), elapsed times masked.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pardo import Parallel, delayed
from pardo._report._progress import VerboseReporter, report_points, short_time, should_report

joblib = pytest.importorskip("joblib")
joblib_parallel = pytest.importorskip("joblib.parallel")
joblib_logger = pytest.importorskip("joblib.logger")

TIMES = re.compile(r"(elapsed|remaining):\s+[0-9.]+(s|min)")


def masked(text: str) -> str:
    """Output with every duration replaced by ``T`` (timings are the one thing allowed to differ)."""
    return TIMES.sub(r"\1: T", text)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def time(self) -> float:  # joblib calls time.time()
        return self.now


# -- formatting helpers ------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.0, 0.04, 0.05, 1.26, 59.94, 60.0, 60.1, 599.0, 3600.5, 1e5])
def test_short_time_matches_joblib(seconds: float) -> None:
    """Durations print as joblib's ``short_format_time`` prints them."""
    assert short_time(seconds) == joblib_logger.short_format_time(seconds)


@pytest.mark.parametrize("verbose", [1, 2, 5, 9, 10, 11, 50])
def test_should_report_matches_joblib_filter(verbose: int) -> None:
    """A batch gets a line exactly when joblib's verbosity filter lets it through."""
    for index in range(600):
        expected = not joblib_parallel._verbosity_filter(index, verbose)
        assert should_report(index, verbose) is expected, (index, verbose)


@pytest.mark.parametrize("verbose", [1, 3, 7, 10, 11])
def test_report_points_equal_testing_each_index(verbose: int) -> None:
    """``report_points`` finds the same indices as testing every one with ``should_report``."""
    for low, high in [(0, 0), (0, 1), (0, 500), (3, 4), (17, 260), (99, 100), (250, 2000)]:
        brute = [i for i in range(low + 1, high + 1) if should_report(i, verbose)]
        assert list(report_points(low, high, verbose)) == brute, (low, high)


# -- simulated parallel runs: VerboseReporter vs joblib's print_progress ----------------------


def simulate(n_tasks: int, pre_dispatch: int) -> Iterator[tuple[int, int, int, bool]]:
    """joblib's state at each completion of a run with batches of one, completing in order.

    Yields ``(n_completed, n_dispatched, n_batches, iterator_used_up)`` as ``print_progress``
    sees them; ``pre_dispatch=0`` stands for ``"all"``.
    """
    dispatched = n_tasks if pre_dispatch == 0 else min(pre_dispatch, n_tasks)
    used_up = pre_dispatch == 0
    for done in range(1, n_tasks + 1):
        yield done, dispatched, dispatched, used_up
        if not used_up:  # dispatch_next after the completion
            if dispatched < n_tasks:
                dispatched += 1
            else:
                used_up = True


def joblib_lines(
    n_tasks: int, pre_dispatch: int, verbose: int, known: bool, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    clock = FakeClock()
    monkeypatch.setattr(joblib_parallel, "time", clock)
    par = joblib.Parallel(n_jobs=2, verbose=verbose)
    lines: list[str] = []
    par._print = lines.append
    par.n_tasks = n_tasks if known else None
    par._start_time = clock.now
    par._aborting = False
    par._pre_dispatch_amount = pre_dispatch
    for done, dispatched, batches, used_up in simulate(n_tasks, pre_dispatch):
        clock.now += 0.25
        par.n_completed_tasks, par.n_dispatched_tasks = done, dispatched
        par.n_dispatched_batches = batches
        par._original_iterator = None if used_up else iter(())
        par._iterating = not used_up
        par.print_progress()
    return lines


def pardo_lines(n_tasks: int, pre_dispatch: int, verbose: int, known: bool) -> list[str]:
    clock = FakeClock()
    lines: list[str] = []
    reporter = VerboseReporter(
        verbose,
        lines.append,
        total=n_tasks if known else None,
        sequential=False,
        pre_dispatch=pre_dispatch,
        clock=clock,
    )
    for done, dispatched, batches, _ in simulate(n_tasks, pre_dispatch):
        clock.now += 0.25
        # pardo's loop says "input done" as soon as the last task is submitted.
        reporter.update(done, dispatched, batches, dispatched == n_tasks)
    return lines


@pytest.mark.parametrize("verbose", [1, 5, 10, 11, 50])
@pytest.mark.parametrize("n_tasks", [1, 2, 3, 7, 40, 123])
@pytest.mark.parametrize(
    ("pre_dispatch", "known"),
    # pre_dispatch="all" (0) reads the whole input first, so its length is always known.
    [(0, True), (2, True), (4, True), (2, False), (4, False)],
    ids=["all", "2-len", "4-len", "2-generator", "4-generator"],
)
def test_parallel_lines_match_joblib_print_progress(
    n_tasks: int, pre_dispatch: int, verbose: int, known: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For the same run, every line (text, width, thinning, remaining time) equals joblib's."""
    expected = joblib_lines(n_tasks, pre_dispatch, verbose, known, monkeypatch)
    assert pardo_lines(n_tasks, pre_dispatch, verbose, known) == expected


def test_batch_size_lines_have_joblibs_wording() -> None:
    """Batch size changes read as joblib's (verbose >= 10, not on threads), durations as repr."""
    lines: list[str] = []
    quiet = VerboseReporter(9, lines.append, total=4, sequential=False, pre_dispatch=4)
    quiet.batch_size_changed(2, 0.1)
    threads = VerboseReporter(
        10, lines.append, total=4, sequential=False, pre_dispatch=4, batch_lines=False
    )
    threads.batch_size_changed(2, 0.1)
    loud = VerboseReporter(10, lines.append, total=4, sequential=False, pre_dispatch=4)
    loud.batch_size_changed(4, 0.1668664690948487)
    loud.batch_size_changed(4, 0.1)  # unchanged: no line
    loud.batch_size_changed(2, 2.5)
    assert lines == [
        "Batch computation too fast (0.1668664690948487s.) Setting batch_size=4.",
        "Batch computation too slow (2.5s.) Setting batch_size=2.",
    ]


def test_minutes_appear_past_one_minute() -> None:
    """Elapsed and remaining times switch to minutes above 60 s, as joblib's do."""
    clock = FakeClock()
    lines: list[str] = []
    reporter = VerboseReporter(
        100, lines.append, total=4, sequential=False, pre_dispatch=4, clock=clock
    )
    clock.now += 90
    reporter.update(1, 4, 4, True)
    clock.now += 90
    reporter.update(2, 4, 4, True)
    assert lines == [
        "Done 1 out of 4 | elapsed:  1.5min",
        "Done 2 out of 4 | elapsed:  3.0min remaining:  3.0min",
    ]


# -- real calls through both libraries ---------------------------------------------------------


def run_both(
    call: Callable[[Any, Any], Any], capsys: pytest.CaptureFixture[str]
) -> tuple[tuple[str, str], tuple[str, str]]:
    """(stdout, stderr) of ``call(Parallel, delayed)`` with joblib, then with pardo, masked."""
    call(joblib.Parallel, joblib.delayed)
    theirs = capsys.readouterr()
    call(Parallel, delayed)
    ours = capsys.readouterr()
    return (masked(theirs.out), masked(theirs.err)), (masked(ours.out), masked(ours.err))


@pytest.mark.parametrize("verbose", [1, 2, 5, 10, 11, 50, 100])
@pytest.mark.parametrize("n_tasks", [0, 1, 30, 150])
@pytest.mark.parametrize("as_list", [True, False], ids=["list", "generator"])
def test_n_jobs_1_output_is_joblibs(
    verbose: int, n_tasks: int, as_list: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """With n_jobs=1 both libraries print the same lines to the same stream (golden parity)."""

    def call(parallel: Any, delay: Any) -> Any:
        tasks = (delay(abs)(-i) for i in range(n_tasks))
        return parallel(n_jobs=1, verbose=verbose)(list(tasks) if as_list else tasks)

    theirs, ours = run_both(call, capsys)
    assert ours == theirs
    assert "finished" in (theirs[1] + theirs[0])


def test_n_jobs_1_golden_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """The exact text for a known case, written down (so the test stands without joblib too)."""
    Parallel(n_jobs=1, verbose=10)(delayed(abs)(i) for i in range(30))
    assert masked(capsys.readouterr().err).splitlines() == [
        "[Parallel(n_jobs=1)]: Done   1 tasks      | elapsed: T",
        "[Parallel(n_jobs=1)]: Done   4 tasks      | elapsed: T",
        "[Parallel(n_jobs=1)]: Done   7 tasks      | elapsed: T",
        "[Parallel(n_jobs=1)]: Done  12 tasks      | elapsed: T",
        "[Parallel(n_jobs=1)]: Done  17 tasks      | elapsed: T",
        "[Parallel(n_jobs=1)]: Done  24 tasks      | elapsed: T",
        "[Parallel(n_jobs=1)]: Done  30 out of  30 | elapsed: T finished",
    ]


def test_sequential_backend_with_batches_keeps_per_task_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """pardo batches even with n_jobs=1; the lines still come per task, as joblib's loop prints."""

    def call(parallel: Any, delay: Any) -> Any:
        return parallel(n_jobs=1, verbose=11, batch_size=7)([delay(abs)(i) for i in range(20)])

    theirs, ours = run_both(call, capsys)
    assert ours == theirs


@pytest.mark.parametrize(
    ("backend", "name"),
    [
        ("threading", "ThreadingBackend"),
        pytest.param("loky", "LokyBackend", marks=pytest.mark.slow),
        pytest.param("multiprocessing", "MultiprocessingBackend", marks=pytest.mark.slow),
    ],
)
def test_first_line_names_the_backend_as_joblib_does(
    backend: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """ "Using backend X with N concurrent workers." uses joblib's class names."""

    def call(parallel: Any, delay: Any) -> Any:
        return parallel(n_jobs=2, backend=backend, verbose=5)([delay(abs)(i) for i in range(4)])

    theirs, ours = run_both(call, capsys)
    first = f"[Parallel(n_jobs=2)]: Using backend {name} with 2 concurrent workers."
    assert theirs[1].splitlines()[0] == first
    assert ours[1].splitlines()[0] == first


LINE = re.compile(
    r"\[Parallel\(n_jobs=2\)\]: (Using backend ThreadingBackend with 2 concurrent workers\."
    r"|Done +\d+ (tasks +|out of +\d+ )\| elapsed: T( remaining: T| finished)?)"
)


def test_parallel_lines_have_joblibs_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    """A real threaded run (timing-dependent counts) prints only lines joblib could print."""
    Parallel(n_jobs=2, backend="threading", verbose=10)(delayed(abs)(i) for i in range(60))
    lines = masked(capsys.readouterr().err).splitlines()
    assert len(lines) >= 2
    assert all(LINE.fullmatch(line) for line in lines), lines


def test_verbose_50_and_above_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """Below 50 the lines go to stderr, from 50 on to stdout (joblib's rule)."""
    Parallel(n_jobs=1, verbose=49)([delayed(abs)(1)])
    low = capsys.readouterr()
    Parallel(n_jobs=1, verbose=50)([delayed(abs)(1)])
    high = capsys.readouterr()
    assert low.out == "" and "finished" in low.err
    assert high.err == "" and "finished" in high.out


def test_verbose_0_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """The default is silent."""
    Parallel(n_jobs=2, backend="threading")([delayed(abs)(i) for i in range(10)])
    assert capsys.readouterr() == ("", "")


def test_lines_are_also_records_of_the_pardo_logger(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each verbose line is also an INFO record of the ``pardo`` logger, with the same text."""
    caplog.set_level(logging.INFO, logger="pardo")
    Parallel(n_jobs=1, verbose=10)([delayed(abs)(i) for i in range(5)])
    printed = capsys.readouterr().err.splitlines()
    records = [r for r in caplog.records if r.name == "pardo"]
    assert [r.getMessage() for r in records] == printed
    assert {r.levelno for r in records} == {logging.INFO}


def test_verbose_set_after_construction_is_used(capsys: pytest.CaptureFixture[str]) -> None:
    """joblib reads ``self.verbose`` at call time; so does pardo."""
    par = Parallel(n_jobs=1)
    par.verbose = 10
    par([delayed(abs)(1)])
    assert "finished" in capsys.readouterr().err


def test_subclass_name_is_the_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    """The prefix is the instance's repr, so a subclass shows its own name (as with joblib)."""

    class MyParallel(Parallel):
        pass

    MyParallel(n_jobs=1, verbose=10)([delayed(abs)(1)])
    assert capsys.readouterr().err.startswith("[MyParallel(n_jobs=1)]: Done")
