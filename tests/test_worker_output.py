"""What tasks print or log in process workers reaches the parent: whole lines, records with levels.

Parent-side checks use ``capsys``/``caplog``, which only see the parent's ``sys.stdout``,
``sys.stderr`` and logging: a line that shows up there was forwarded, not written by the worker
straight to the terminal. The recording itself is also tested in-process through ``Batch``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from pardo import Parallel, delayed
from pardo._report._capture import OutputCapture, capture_spec
from pardo._task import Batch

log = logging.getLogger("pardo_tests.worker")


def say(i: int) -> int:
    print(f"task {i} says hello")
    print(f"task {i} complains", file=sys.stderr)
    return i


def say_in_pieces(i: int) -> int:
    print(f"task {i}:", end="")
    sys.stdout.write(" part")
    sys.stdout.write(" two")  # no newline: the parent must not leave a half line
    return i


def log_levels(i: int) -> int:
    log.debug("debug %d", i)
    log.info("info %d", i)
    log.warning("warning %d", i)
    return os.getpid()


def log_failure(i: int) -> None:
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        log.exception("task %d divided by zero", i)


class Unpicklable:
    def __reduce__(self) -> str:
        raise TypeError("no pickling")

    def __repr__(self) -> str:
        return "<Unpicklable>"


def log_odd_extra(i: int) -> None:
    log.warning("odd %s", Unpicklable(), extra={"thing": Unpicklable()})


def print_then_fail(i: int) -> None:
    print(f"last words of task {i}")
    raise RuntimeError(f"task {i} failed")


def mixed(i: int) -> None:
    print("first")
    log.warning("second")
    print("third")


@pytest.fixture
def warnings_only(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The parent's root logger at WARNING, its records captured."""
    caplog.set_level(logging.WARNING)
    yield caplog


def test_prints_reach_the_parents_streams(
    process_backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """stdout and stderr of every task arrive once each, in the parent's own streams."""
    Parallel(n_jobs=2, backend=process_backend)(delayed(say)(i) for i in range(6))
    captured = capsys.readouterr()
    assert sorted(captured.out.splitlines()) == [f"task {i} says hello" for i in range(6)]
    assert sorted(captured.err.splitlines()) == [f"task {i} complains" for i in range(6)]


def test_partial_lines_are_completed_not_interleaved(
    process_backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A task's output is written whole and ends with a newline, so tasks never share a line."""
    Parallel(n_jobs=2, backend=process_backend, batch_size=1)(
        delayed(say_in_pieces)(i) for i in range(8)
    )
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines) == [f"task {i}: part two" for i in range(8)]


def test_log_records_are_forwarded_with_pid_and_task_index(
    process_backend: str, warnings_only: pytest.LogCaptureFixture
) -> None:
    """Records go through the parent's logging with ``worker_pid`` and ``task_index`` attached."""
    pids = Parallel(n_jobs=2, backend=process_backend)(delayed(log_levels)(i) for i in range(4))
    records = [r for r in warnings_only.records if r.name == log.name]
    assert sorted(r.getMessage() for r in records) == [f"warning {i}" for i in range(4)]
    for record in records:
        index = int(record.getMessage().split()[1])
        assert record.task_index == index  # type: ignore[attr-defined]
        assert record.worker_pid == pids[index] != os.getpid()  # type: ignore[attr-defined]
        assert record.levelno == logging.WARNING


def test_parent_levels_decide(process_backend: str, caplog: pytest.LogCaptureFixture) -> None:
    """A level set on the parent's logger lets DEBUG records through though root is at WARNING."""
    caplog.set_level(logging.WARNING)
    caplog.set_level(logging.DEBUG, logger=log.name)
    Parallel(n_jobs=2, backend=process_backend)(delayed(log_levels)(i) for i in range(2))
    messages = sorted(r.getMessage() for r in caplog.records if r.name == log.name)
    assert messages == sorted(f"{lv} {i}" for lv in ("debug", "info", "warning") for i in (0, 1))


def test_exception_tracebacks_travel_as_text(
    process_backend: str, warnings_only: pytest.LogCaptureFixture
) -> None:
    """``log.exception`` in a worker shows the worker's traceback in the parent's handlers."""
    Parallel(n_jobs=2, backend=process_backend)(delayed(log_failure)(i) for i in range(2))
    (first, _) = [r for r in warnings_only.records if r.name == log.name]
    assert "ZeroDivisionError: division by zero" in logging.Formatter().format(first)


def test_unpicklable_log_arguments_do_not_break_the_batch(
    process_backend: str, warnings_only: pytest.LogCaptureFixture
) -> None:
    """Arguments are formatted in the worker and odd ``extra`` values travel as their repr."""
    assert Parallel(n_jobs=2, backend=process_backend)(
        delayed(log_odd_extra)(i) for i in range(2)
    ) == [None, None]
    records = [r for r in warnings_only.records if r.name == log.name]
    assert [r.getMessage() for r in records] == ["odd <Unpicklable>"] * 2
    assert records[0].thing == "<Unpicklable>"  # type: ignore[attr-defined]


def test_output_of_a_failing_task_still_arrives(
    process_backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a task printed before raising is shown: it is what explains the error."""
    with pytest.raises(RuntimeError, match="task 0 failed"):
        Parallel(n_jobs=2, backend=process_backend)([delayed(print_then_fail)(0)])
    assert "last words of task 0" in capsys.readouterr().out


def test_thread_backends_do_not_capture(capsys: pytest.CaptureFixture[str], backend: str) -> None:
    """Threads and the sequential backend print in-process: output is there exactly once."""
    Parallel(n_jobs=2, backend=backend)(delayed(say)(i) for i in range(3))
    assert sorted(capsys.readouterr().out.splitlines()) == [
        f"task {i} says hello" for i in range(3)
    ]


# -- the recording, in-process -----------------------------------------------------------------


def run_captured(func: object, n: int, start: int = 10) -> tuple[object, ...]:
    tasks = [(func, (i,), {}) for i in range(n)]
    return Batch(tasks, start, {}, capture=capture_spec())().output  # type: ignore[arg-type]


def test_events_keep_order_and_task_index(caplog: pytest.LogCaptureFixture) -> None:
    """Prints and records are recorded in order, each tagged with its task's input index."""
    caplog.set_level(logging.WARNING)
    events = run_captured(mixed, 2)
    assert [(i, kind) for i, kind, _ in events] == [
        (10, "out"),
        (10, "log"),
        (10, "out"),
        (11, "out"),
        (11, "log"),
        (11, "out"),
    ]
    assert [p for _, kind, p in events if kind == "out"] == ["first\n", "third\n"] * 2


def test_streams_and_handlers_are_put_back() -> None:
    """After the batch the worker's own stdout, stderr and root handlers are back in place."""
    root = logging.getLogger()
    before = (sys.stdout, sys.stderr, list(root.handlers))
    run_captured(say, 1)
    assert (sys.stdout, sys.stderr, list(root.handlers)) == before


def test_capture_spec_carries_explicit_levels(caplog: pytest.LogCaptureFixture) -> None:
    """The spec holds the root's effective level and each level set explicitly."""
    caplog.set_level(logging.ERROR)
    caplog.set_level(logging.DEBUG, logger="pardo_tests.spec")
    levels = dict(capture_spec().levels)
    assert levels[""] == logging.ERROR
    assert levels["pardo_tests.spec"] == logging.DEBUG


def test_capture_is_off_without_a_spec() -> None:
    """Batches built without ``capture`` return no output (the thread backends' case)."""
    assert Batch([(say, (0,), {})], 0, {})().output == ()
    assert isinstance(capture_spec(), OutputCapture)


@pytest.mark.parametrize(
    ("name", "captured", "threaded"),
    [
        ("loky", True, False),
        ("multiprocessing", True, False),
        ("threading", False, False),
        ("sequential", False, False),
        ("dask", True, True),
    ],
)
def test_backends_ask_for_capture_by_flag(name: str, captured: bool, threaded: bool) -> None:
    """The front asks the backend's flags (never its name) whether and how workers record."""
    from pardo._options import Options
    from pardo.backends import backend_factory

    cls: Any = backend_factory(name)
    options = Parallel()._options
    assert isinstance(options, Options)
    spec = options.capture_output(cls.__new__(cls))
    assert (spec is not None) is captured
    assert spec is None or spec.threaded is threaded
