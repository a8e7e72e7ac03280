"""Shared fixtures: the ``backend`` fixture every behaviour test uses, and the leak checks.

Leak checks run around every test: no pardo temp folder, no non-daemon thread and no child
process that pardo does not keep on purpose (loky's reusable pool and its resource tracker)
may be left behind.
"""

from __future__ import annotations

import glob
import os
import tempfile
import threading
from collections.abc import Callable, Iterator

import psutil
import pytest
from _polling import wait_until

BACKENDS = ("sequential", "threading", "loky", "multiprocessing")
PROCESS_BACKENDS = ("loky", "multiprocessing")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every built-in backend name, one test run each."""
    return str(request.param)


@pytest.fixture(params=PROCESS_BACKENDS)
def process_backend(request: pytest.FixtureRequest) -> str:
    """The backends whose workers are separate processes."""
    return str(request.param)


def pardo_temp_folders() -> set[str]:
    """Every pardo memmap folder that exists now, in the places pardo puts them."""
    roots = {tempfile.gettempdir(), "/dev/shm"}
    env = os.environ.get("JOBLIB_TEMP_FOLDER")
    if env:
        roots.add(env)
    found: set[str] = set()
    for root in roots:
        # Only this process's folders: other test runs on the same machine make their own.
        found.update(glob.glob(os.path.join(root, f"pardo-{os.getpid()}-*")))
    return found


#: Pids of processes a session fixture keeps alive on purpose (the dask test cluster's workers).
KEPT_PIDS: set[int] = set()


def _kept_on_purpose(proc: psutil.Process) -> bool:
    """loky's reusable executor workers and resource trackers outlive calls by design."""
    if proc.pid in KEPT_PIDS:
        return True
    try:
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return True
    return "loky" in cmdline or "resource_tracker" in cmdline or "forkserver" in cmdline


def leftover_children(before: frozenset[int] = frozenset()) -> list[psutil.Process]:
    """Children of this process, not in ``before``, that are neither gone nor kept on purpose."""
    me = psutil.Process()
    out = []
    for child in me.children(recursive=True):
        if child.pid in before:
            continue
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                child.wait(timeout=0)
                continue
        except (psutil.NoSuchProcess, psutil.TimeoutExpired):
            continue
        if not _kept_on_purpose(child):
            out.append(child)
    return out


def _wait_for(condition: Callable[[], object], seconds: float = 5.0) -> bool:
    """Workers take a moment to exit: give them ``seconds``."""
    return wait_until(condition, seconds)


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves temp folders, non-daemon threads or stray child processes."""
    folders_before = pardo_temp_folders()
    threads_before = {t.ident for t in threading.enumerate()}
    # One test's stray process is reported once, by that test, not by every later one.
    children_before = frozenset(p.pid for p in psutil.Process().children(recursive=True))
    yield
    new_folders = pardo_temp_folders() - folders_before
    assert not new_folders, f"temp folders left behind: {sorted(new_folders)}"

    def no_new_threads() -> bool:
        return not [
            t
            for t in threading.enumerate()
            if t.ident not in threads_before
            and not t.daemon
            and t.is_alive()
            # loky's reusable pool keeps its manager thread on purpose, like its workers
            and "ExecutorManagerThread" not in type(t).__name__
        ]

    assert _wait_for(no_new_threads), f"threads left running: {threading.enumerate()}"
    assert _wait_for(lambda: not leftover_children(children_before)), (
        f"processes left: {leftover_children(children_before)}"
    )
