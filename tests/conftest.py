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
from typing import Any

import psutil
import pytest
from _polling import wait_until

from pardo.backends import available_backends, backend_factory


def _flag(name: str, flag: str) -> bool:
    return bool(getattr(backend_factory(name), flag, False))


#: Every backend the registry knows, so a new one joins every behaviour test. A backend that
#: needs a cluster (dask) runs on the session's LocalCluster (``dask_client``), started the
#: first time such a test runs.
BACKENDS = tuple(available_backends())
#: The backends whose workers are processes of this machine (memmapping, worker deaths...).
PROCESS_BACKENDS = tuple(
    name
    for name in BACKENDS
    if _flag(name, "records_worker_output") and not _flag(name, "worker_runs_batches_on_threads")
)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every registered backend name, one test run each (dask on a LocalCluster)."""
    name = str(request.param)
    if _flag(name, "needs_cluster"):
        if "no_cluster" in request.keywords:
            pytest.skip(f"{request.node.name} needs backends that run without a cluster")
        request.getfixturevalue("dask_client")
    return name


@pytest.fixture(params=PROCESS_BACKENDS)
def process_backend(request: pytest.FixtureRequest) -> str:
    """The backends whose workers are separate processes of this machine."""
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


def register_dask_workers(client: Any) -> None:
    """Wait for the test cluster's two workers and accept their pids in the leak check."""
    client.wait_for_workers(2, timeout=60)
    KEPT_PIDS.update(client.run(os.getpid).values())


@pytest.fixture(scope="session")
def dask_client() -> Iterator[Any]:
    """A Client on a session-wide LocalCluster, set as the default (``get_client()`` finds it)."""
    import dask
    import distributed
    import numpy as np

    environ = dict(os.environ)
    settings = {
        # The nanny writes these (OMP_NUM_THREADS=1...) into *our* environment before spawning,
        # which would change what later tests see.
        "distributed.nanny.pre-spawn-environ": {},
        # A single-thread worker then holds one task at a time, so a worker's death is blamed
        # on the task it ran, not also on one queued behind it.
        "distributed.scheduler.worker-saturation": 1.0,
    }
    with dask.config.set(settings):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",  # a free port: 8787 may be taken
        )
    client = distributed.Client(cluster)
    os.environ.clear()
    os.environ.update(environ)
    register_dask_workers(client)
    # Start dask's lazily created helper threads now, not inside the first test: the callback
    # thread, and the offload thread that serialises messages over 10 MB.
    client.submit(abs, -1, pure=False).add_done_callback(lambda f: None)
    assert client.submit(len, client.scatter([np.zeros(2_000_000)])[0]).result() == 2_000_000
    yield client
    client.close()
    cluster.close()
    KEPT_PIDS.clear()
