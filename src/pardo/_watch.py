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
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time

from pardo import _tempdir
from pardo.backends._process import run_encoded

__all__ = ["Board", "kill_tree", "run_watched"]

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
    result = run_encoded(payload)
    # Not in a ``finally``: a batch that raised out of run_encoded broke the worker anyway.
    _note(board, _IDLE, start)
    return result


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
        shutil.rmtree(self.path, ignore_errors=True)


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
