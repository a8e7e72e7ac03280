"""``pardo`` as a real process: entry points, Ctrl-C and SIGTERM, the demo, --bar and --dask."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest


def test_python_dash_m(pardo_process) -> None:
    """``python -m pardo`` runs the command line."""
    result = pardo_process("-k", "echo", ":::", "a", "b")
    assert (result.status, result.out) == (0, "a\nb\n")


def test_version_and_help(pardo_process) -> None:
    """``--version`` names pardo; ``--help`` describes the options; both exit 0."""
    version = pardo_process("--version")
    assert version.status == 0 and version.out.startswith("pardo ")
    usage = pardo_process("--help")
    assert usage.status == 0 and "--joblog" in usage.out


def test_console_script(tmp_path: Path) -> None:
    """The installed ``pardo`` script is the same command."""
    script = shutil.which("pardo") or os.path.join(os.path.dirname(sys.executable), "pardo")
    if not os.path.exists(script):
        pytest.skip("the pardo console script is not installed in this environment")
    out = subprocess.run([script, "-k", "echo", ":::", "x"], capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, "x\n")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_stops_jobs_and_their_children(tmp_path: Path, sig: int) -> None:
    """Ctrl-C (or SIGTERM) stops the running jobs' whole process groups and exits 255 promptly."""
    command = "sleep 60 & echo $! >> pids; wait"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pardo", "-j", "2", command, ":::", "1", "2"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PARDO_SHELL": "/bin/sh"},
    )
    pids_file = tmp_path / "pids"
    deadline = time.monotonic() + 30
    while not (pids_file.exists() and len(pids_file.read_text().split()) == 2):
        assert time.monotonic() < deadline, "the jobs never started"
        assert proc.poll() is None
        time.sleep(0.01)
    began = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 255
    assert time.monotonic() - began < 5
    assert b"interrupted" in err
    sleepers = [int(pid) for pid in pids_file.read_text().split()]
    deadline = time.monotonic() + 5
    while not all(_gone(pid) for pid in sleepers):
        assert time.monotonic() < deadline, "a job's child outlived pardo"
        time.sleep(0.01)


def test_bar_keeps_output_intact(pardo) -> None:
    """``--bar`` draws on stderr; the jobs' stdout is unchanged."""
    result = pardo("--bar", "-k", "echo", ":::", "a", "b", "c")
    assert (result.status, result.lines) == (0, ["a", "b", "c"])


@pytest.mark.slow
def test_demo(pardo_process) -> None:
    """``python -m pardo demo`` runs the grid search both ways and finds the same results."""
    result = pardo_process("demo", "--quick")
    assert result.status == 0, result.err
    assert "serial" in result.out and "Parallel(n_jobs=-1)" in result.out
    assert "results equal: yes" in result.out


@pytest.mark.slow
def test_dask(pardo) -> None:
    """``--dask ADDRESS`` runs the jobs on a dask cluster with the same output and log."""
    pytest.importorskip("pardo.backends._dask")
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
    ) as cluster:
        result = pardo(
            "-k", "--dask", cluster.scheduler_address, "--joblog", "log",
            "echo {1}{2}; exit {3}", ":::", "a", "b", ":::", "x", ":::", "0", "1",
        )  # fmt: skip
    assert (result.status, result.lines) == (2, ["ax", "ax", "bx", "bx"])
    rows = Path("log").read_text().splitlines()[1:]
    assert sorted(row.split("\t")[6] for row in rows) == ["0", "0", "1", "1"]


@pytest.mark.slow
def test_dask_unreachable_scheduler_is_an_error(pardo) -> None:
    """An unreachable scheduler is reported and exits 255, without a traceback."""
    pytest.importorskip("pardo.backends._dask")
    pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "0.5s"}):
        result = pardo("--dask", "tcp://127.0.0.1:1", "echo", ":::", "a")
    assert result.status == 255
    assert "pardo:" in result.err and "Traceback" not in result.err
