"""The status board: which batch each process worker is running, so the parent can blame or stop it.

A call on a process backend gets a board folder (``pardo-*`` under ``/dev/shm``, else the temp
dir). A worker writes one fixed-size record to the file named after its pid when it starts a
batch (state ``R``, the batch's first task index and the ``time.monotonic()`` it began) and again
when the batch ends (state ``I``), so the parent can tell, from outside and without any message
from the worker::

    worker pid 4711 ──write──► <board>/4711: "R      12   83412.250"   running task 12 since ...
    parent ──Board.running()──► {4711: (12, 83412.25)}
        which task a dead worker held (blame it, restart the others),
        how long a task has run (kill exactly that worker for ``task_timeout``).

Two small writes per batch, outside the task loop; ``time.monotonic`` is one clock for every
process of the machine, so the parent can compare the worker's start time with its own clock.

Workers also watch their parent (``start_worker``): if it dies without stopping them (SIGKILL,
the OOM killer, SIGTERM between two calls), they remove its pardo folders (memmapped arrays,
boards) and exit instead of living on as orphans. The watch also unmaps temp files whose
context has closed (``pardo._arrays._worker.WorkerMaps``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

from pardo._arrays import _tempdir
from pardo._arrays._worker import WORKER_MAPS
from pardo.backends._process import run_encoded

__all__ = ["Board", "kill_tree", "run_watched", "start_worker"]

#: Seconds between a worker's checks that its parent is alive: how long an orphan lives on.
PARENT_CHECK_SECONDS = 1.0
#: Exit status of a worker that ended because its parent was gone.
ORPHANED_EXIT = 75
_RECORD_SIZE = 48
_RUNNING = "R"
_IDLE = "I"


def _record(state: str, start: int) -> bytes:
    return f"{state}{start:>22d} {time.monotonic():>23.6f}\n".encode()


def _note(board: str, state: str, start: int) -> None:
    try:
        fd = os.open(os.path.join(board, str(os.getpid())), os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError:  # the call was aborted and its board removed: nobody is watching any more
        return
    try:
        # Fixed-size records overwrite each other in place: a reader never sees an empty file.
        os.write(fd, _record(state, start))
    finally:
        os.close(fd)


def run_watched(board: str, start: int, payload: bytes) -> bytes:
    """Worker side: note on ``board`` that batch ``start`` runs here, run it, note it ended."""
    _note(board, _RUNNING, start)
    try:
        return run_encoded(payload)
    finally:  # also when it could not even be unpickled here: the worker is idle again
        _note(board, _IDLE, start)


def start_worker(
    parent: int, initializer: Callable[..., Any] | None, args: tuple[Any, ...]
) -> None:
    """Worker side, once at start: watch process ``parent``, then run the user's ``initializer``.

    ``parent`` is the pid the pool was created in, not ``os.getppid()`` read here: a worker that
    starts up slowly may find itself already reparented, and under the forkserver start method
    its parent is the fork server, which outlives ``parent`` as long as any worker does.
    """

    def watch() -> None:
        if os.getppid() == parent:
            # Reparented (to init or a subreaper) means the parent is gone.
            while os.getppid() == parent:
                time.sleep(PARENT_CHECK_SECONDS)
                WORKER_MAPS.forget_removed()
        else:
            import psutil

            try:
                process = psutil.Process(parent)
                while process.is_running():  # compares start times: a reused pid is not it
                    time.sleep(PARENT_CHECK_SECONDS)
                    WORKER_MAPS.forget_removed()
            except psutil.Error:
                pass
        # The parent died without cleaning up: remove its folders (memmaps, board) now, so
        # that a killed call's arrays do not hold shared memory until some later pardo run.
        with contextlib.suppress(Exception):
            roots = _tempdir.default_roots() | _tempdir.roots_seen()
            _tempdir.remove_folders_of(parent, roots)
        os._exit(ORPHANED_EXIT)

    WORKER_MAPS.enabled = True
    threading.Thread(target=watch, name="pardo-parent-watch", daemon=True).start()
    if initializer is not None:
        initializer(*args)


class Board:
    """Parent side of one call's board folder."""

    def __init__(self) -> None:
        root = _tempdir.SHM_ROOT if _tempdir.shm_has_room(1 << 20) else _tempdir.disk_root()
        self.path = _tempdir.make_folder(root)
        self._epoch = 0.0

    def running(self) -> dict[int, tuple[int, float]]:
        """``{pid: (first task index, monotonic start time)}`` of batches running now."""
        out: dict[int, tuple[int, float]] = {}
        try:
            names = os.listdir(self.path)
        except OSError:
            return out
        for name in names:
            try:
                with open(os.path.join(self.path, name), "rb") as file:
                    record = file.read(_RECORD_SIZE).decode()
                start, since = int(record[1:23]), float(record[24:47])
            except (OSError, ValueError, UnicodeDecodeError):
                continue
            if record[0] == _RUNNING and since >= self._epoch and name.isdigit():
                out[int(name)] = (start, since)
        return out

    def reset(self) -> None:
        """Forget every record: the workers that wrote them were all replaced."""
        self._epoch = time.monotonic()
        try:
            names = os.listdir(self.path)
        except OSError:
            return
        for name in names:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.path, name))

    def close(self) -> None:
        """Remove the folder (a worker that writes after this finds no folder and gives up)."""
        for _ in range(3):  # a note written while rmtree ran leaves the folder non-empty
            shutil.rmtree(self.path, ignore_errors=True)
            if not os.path.exists(self.path):
                return


def kill_tree(pid: int) -> None:
    """SIGKILL process ``pid`` and its descendants (a stuck task may have started processes)."""
    import psutil  # here, not at the top: workers import this module and never need it

    try:
        process = psutil.Process(pid)
        family = [*process.children(recursive=True)[::-1], process]
    except psutil.Error:
        return
    for member in family:
        with contextlib.suppress(psutil.Error):
            member.kill()
