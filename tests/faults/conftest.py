"""Run one fault scenario in a fresh interpreter, with a hard time limit, and check what it left.

``run_scenario(name, backend)`` starts ``fault_scenarios.py`` in a new session, optionally sends
it a signal once its tasks are running, and returns the child's JSON outcome. Before returning
it checks what must hold after *any* fault: the child reported no stray child process, no
``pardo-*`` folder of its own and no more open fds or threads than before the fault, and,
after it exited, none of its worker processes is still alive and it left no named semaphore.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from _polling import alive, wait_until

HERE = Path(__file__).resolve().parent
#: Hard limit for one scenario (a hang is a failure, never a stuck test run).
SCENARIO_SECONDS = 60

Runner = Callable[..., dict[str, Any]]

#: Pids of the scenario interpreters this test session started (their folders are ours to check).
_CHILDREN: set[int] = set()


def _start(name: str, backend: str, workdir: Path) -> subprocess.Popen[str]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    )
    code = "import fault_scenarios; fault_scenarios.main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, name, backend, str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: a "terminal" to send Ctrl-C to
    )


def _signal_when_started(proc: subprocess.Popen[str], workdir: Path, sig: int) -> float:
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    assert wait_until(lambda: bool(list(workdir.glob("started-*"))), 30), "tasks never started"
    sent = time.time()
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # what Ctrl-C in a terminal does: the whole foreground group
    else:
        os.kill(proc.pid, sig)  # what ``kill PID`` does
    return sent


def run_scenario(
    name: str,
    backend: str,
    workdir: Path,
    sig: int | None = None,
    seconds: float = SCENARIO_SECONDS,
) -> dict[str, Any]:
    proc = _start(name, backend, workdir)
    _CHILDREN.add(proc.pid)
    try:
        sent = _signal_when_started(proc, workdir, sig) if sig is not None else None
        out, err = proc.communicate(timeout=seconds)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    lines = out.strip().splitlines()
    assert proc.returncode == 0 and lines, (
        f"scenario crashed (rc {proc.returncode}):\n{err[-3000:]}"
    )
    outcome: dict[str, Any] = json.loads(lines[-1])
    outcome["stderr"] = err
    if sent is not None:
        outcome["latency"] = outcome.get("caught_at", float("inf")) - sent
    _check_leftovers(outcome, proc.pid)
    return outcome


def _check_leftovers(outcome: dict[str, Any], child: int) -> None:
    left = outcome["leftovers"]
    assert outcome["next_call_ok"] is True, f"the next call failed: {outcome['next_call_ok']}"
    assert not left["strays"], f"stray processes: {left['strays']}"
    assert not left["folders"], f"temp folders left: {left['folders']}"
    assert left["now"]["fds"] <= left["baseline"]["fds"], f"fds leaked: {left}"
    assert left["now"]["threads"] <= left["baseline"]["threads"], f"threads leaked: {left}"
    workers = outcome["worker_pids"]
    assert wait_until(lambda: not any(alive(p) for p in workers), 10), (
        "a worker outlived its parent"
    )
    # loky names them sem.loky-PID-RANDOM: match the whole pid, not digits inside another one
    semaphores = glob.glob(f"/dev/shm/sem.*-{child}-*")
    assert not semaphores, f"named semaphores left: {semaphores}"
    assert not _folders({child}), "the scenario's temp folders outlived it"


def _folders(pids: set[int]) -> set[str]:
    roots = {tempfile.gettempdir(), "/dev/shm"}
    return {f for r in roots for p in pids for f in glob.glob(os.path.join(r, f"pardo-{p}-*"))}


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """tests/conftest.py's leak check, but for folders of this process and its scenarios only.

    ``/dev/shm`` is shared by every process of the machine: on a busy one, other programs'
    pardo calls create folders while these (long) tests run.
    """
    before = _folders({os.getpid()})
    threads_before = {t.ident for t in threading.enumerate()}
    # Processes that were there before (an earlier test's kept loky pool) are not this test's.
    children_before = {c.pid for c in psutil.Process().children(recursive=True)}
    yield
    new = _folders({os.getpid(), *_CHILDREN}) - before
    assert not new, f"temp folders left behind: {sorted(new)}"

    def no_new_threads() -> bool:
        return not [
            t for t in threading.enumerate() if t.ident not in threads_before and not t.daemon
        ]

    assert wait_until(no_new_threads, 5), f"threads left running: {threading.enumerate()}"

    def strays() -> list[psutil.Process]:
        return [
            c
            for c in psutil.Process().children(recursive=True)
            if c.pid not in children_before and alive(c.pid) and not _kept_pool(c)
        ]

    assert wait_until(lambda: not strays(), 5), f"processes left: {strays()}"


def _kept_pool(proc: psutil.Process) -> bool:
    """loky's reusable workers and resource tracker outlive a call by design."""
    try:
        cmdline = " ".join(proc.cmdline())
    except psutil.Error:
        return True
    return "loky" in cmdline or "resource_tracker" in cmdline


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[[str, str], subprocess.Popen[str]]]:
    """``spawn(name, backend)``: start a scenario and return its process, once it is ready."""
    started: list[subprocess.Popen[str]] = []

    def start(name: str, backend: str) -> subprocess.Popen[str]:
        proc = _start(name, backend, tmp_path)
        _CHILDREN.add(proc.pid)
        started.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for proc in started:
        if proc.poll() is not None:
            # The test killed the scenario: its loky resource tracker (same process group) is
            # still waiting for the workers to go and then unlinking their semaphores. Killing
            # the group before that ends would itself leave them in /dev/shm.
            wait_until(lambda pgid=proc.pid: not _group(pgid), 15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def _group(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    members = []
    for p in psutil.process_iter():
        with contextlib.suppress(OSError, psutil.Error):
            if os.getpgid(p.pid) == pgid and alive(p.pid):
                members.append(p.pid)
    return members


@pytest.fixture
def scenario(tmp_path: Path) -> Runner:
    """``scenario(name, backend, sig=None, seconds=60)``: run it in a fresh interpreter; its JSON
    outcome (``seconds``: the hard limit, past which it counts as a hang)."""

    def run(
        name: str, backend: str, sig: int | None = None, seconds: float = SCENARIO_SECONDS
    ) -> dict[str, Any]:
        return run_scenario(name, backend, tmp_path, sig, seconds)

    return run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Scenarios run in fresh subprocesses, which have no dask cluster (test_dask covers dask's
    faults on a LocalCluster): the ``backend`` fixture skips cluster backends here."""
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.no_cluster)
