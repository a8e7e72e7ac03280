"""Ctrl-C (SIGINT to the whole process group) and SIGTERM (to the parent) during a call."""

from __future__ import annotations

import glob
import multiprocessing
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from _polling import alive, gone_within, wait_until

from pardo._arrays import _tempdir
from pardo.backends._board import PARENT_CHECK_SECONDS

Runner = Callable[..., dict[str, Any]]

pytestmark = pytest.mark.slow

#: What a caller may wait, from the signal to KeyboardInterrupt in its hands (issue: "a couple").
MAX_LATENCY = 2.0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("mode", ["interrupt_list", "interrupt_generator"])
def test_signal_stops_the_call_and_everything_it_started(
    scenario: Runner, backend: str, mode: str, sig: int
) -> None:
    out = scenario(mode, backend, sig=sig)
    assert out["error"] == "KeyboardInterrupt"
    assert out["latency"] < MAX_LATENCY
    # the harness checked the rest: workers gone, folders removed, fds back, next call works


@pytest.mark.parametrize("when", ["interrupt_list", "idle"], ids=["during-a-call", "between-calls"])
def test_workers_do_not_outlive_a_killed_parent(
    spawn: Callable[[str, str], subprocess.Popen[str]],
    process_backend: str,
    tmp_path: Path,
    when: str,
) -> None:
    if when == "idle" and process_backend == "multiprocessing":
        pytest.skip("a multiprocessing pool does not outlive its call")
    proc = spawn(when, process_backend)
    if when == "idle":
        workers = [
            c.pid
            for c in psutil.Process(proc.pid).children()
            if "tracker" not in " ".join(c.cmdline())
        ]
    else:
        while not list(tmp_path.glob("started-*")):
            time.sleep(0.02)
        workers = [int(p.name.rsplit("-", 1)[1]) for p in tmp_path.glob("pid-*")]
    assert workers
    # SIGKILL (the OOM killer) or SIGTERM between calls: the parent cleans nothing up.
    os.kill(proc.pid, signal.SIGKILL if when == "interrupt_list" else signal.SIGTERM)
    proc.wait()
    assert gone_within(workers, 5 + PARENT_CHECK_SECONDS)
    _sweep_what_it_left(proc.pid)
    assert wait_until(lambda: not _semaphores(proc.pid), 10), _semaphores(proc.pid)


@pytest.mark.parametrize("name", ["killed_with_array", "killed_with_array_temp_folder"])
def test_nothing_of_a_sigkilled_call_remains(
    spawn: Callable[[str, str], subprocess.Popen[str]],
    process_backend: str,
    tmp_path: Path,
    name: str,
) -> None:
    """Issue 16: within 5 s of a SIGKILL, no process, folder or semaphore of the call is left.

    Nothing of the next pardo run helps here (no sweep): the killed call's own workers clean up.
    """
    proc = spawn(name, process_backend)
    assert wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 2, 30)
    family = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
    roots = [tempfile.gettempdir(), "/dev/shm", str(tmp_path / "chosen")]

    def folders() -> list[str]:
        return [f for root in roots for f in glob.glob(os.path.join(root, f"pardo-{proc.pid}-*"))]

    def semaphores() -> list[str]:
        return _semaphores(proc.pid)

    def memmapped() -> list[str]:
        return [f for f in folders() if glob.glob(os.path.join(f, "array-*"))]

    assert memmapped(), "the call's array lies in a memmap folder while it runs"
    assert family
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = time.monotonic()

    def nothing_left() -> bool:
        return not folders() and not semaphores() and not any(alive(p) for p in family)

    assert wait_until(nothing_left, 5), (
        f"left {time.monotonic() - killed:.1f} s after the kill: folders {folders()}, "
        f"semaphores {semaphores()}, processes {[p for p in family if alive(p)]}"
    )


def _semaphores(pid: int) -> list[str]:
    """Named semaphores made by process ``pid`` (loky's are ``sem.loky-PID-RANDOM``)."""
    return glob.glob(f"/dev/shm/sem.*-{pid}-*")


def _sweep_what_it_left(pid: int) -> None:
    """What a dead parent left, the next pardo call of this user removes (make_folder sweeps)."""
    for root in {tempfile.gettempdir(), "/dev/shm"}:
        _tempdir.sweep_stale(root, _tempdir._pid_namespace())
    assert not glob.glob(f"/dev/shm/pardo-{pid}-*")


@pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(), reason="no forkserver here"
)
def test_fork_served_workers_do_not_outlive_a_killed_parent(
    spawn: Callable[[str, str], subprocess.Popen[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python 3.14's default start method: a worker's parent is the fork server, not the caller."""
    monkeypatch.setenv("JOBLIB_START_METHOD", "forkserver")
    proc = spawn("interrupt_list", "multiprocessing")
    while not list(tmp_path.glob("started-*")):
        time.sleep(0.02)
    workers = [int(p.name.rsplit("-", 1)[1]) for p in tmp_path.glob("pid-*")]
    server = {w.ppid() for w in map(psutil.Process, workers)} - {proc.pid}
    assert len(server) == 1, "the workers' parent is the fork server"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert gone_within([*workers, *server], 5 + PARENT_CHECK_SECONDS)
    _sweep_what_it_left(proc.pid)
    assert wait_until(lambda: not _semaphores(proc.pid), 10), _semaphores(proc.pid)
