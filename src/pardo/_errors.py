"""Every exception pardo raises, and the two marker values it can put in a result slot.

The tree::

    Exception
    ├── PardoError                      base of pardo's own errors
    │   ├── WorkerDiedError             a worker process died while running a task
    │   │      (also a concurrent.futures.process.BrokenProcessPool, as joblib's
    │   │       TerminatedWorkerError is; that name is an alias)
    │   ├── TaskTimeoutError            a task ran past ``task_timeout`` (also builtins.TimeoutError)
    │   ├── TaskPicklingError           a task or its result could not be pickled
    │   │      (also pickle.PicklingError)
    │   ├── UnsupportedSettingError     a setting the backend cannot honour (also ValueError
    │   │      and AssertionError, which joblib raises there)
    │   └── TempFolderError             a large array could not be written for the workers
    │          (also OSError: the folder is full or not writable)
    ├── TimeoutError                    ``Parallel(timeout=...)`` expired; subclass of both
    │      multiprocessing.TimeoutError (what joblib raises) and builtins.TimeoutError
    └── RemoteTraceback                 carries a worker's formatted traceback as ``__cause__``

    TaskError, TaskTimeout              not exceptions: values placed in a result slot by
                                        ``on_error="collect"`` / ``on_timeout="return"``

A task's own exception is never wrapped: it is re-raised with its original type, the remote
traceback as ``__cause__`` and a note (PEP 678) naming the task.
"""

from __future__ import annotations

import builtins
import multiprocessing
import pickle
from dataclasses import dataclass

try:
    from concurrent.futures.process import BrokenProcessPool
except ImportError:
    # Python built without _multiprocessing (Pyodide, other single-threaded builds): no process
    # pool exists there to break, and pardo must still import. BrokenExecutor is its base class.
    from concurrent.futures import BrokenExecutor as BrokenProcessPool  # type: ignore[assignment]

__all__ = [
    "BrokenProcessPool",
    "PardoError",
    "RemoteTraceback",
    "TaskError",
    "TaskPicklingError",
    "TaskTimeout",
    "TaskTimeoutError",
    "TempFolderError",
    "TerminatedWorkerError",
    "TimeoutError",
    "UnsupportedSettingError",
    "WorkerDiedError",
]


class PardoError(Exception):
    """Base class of the errors pardo itself raises."""


class WorkerDiedError(PardoError, BrokenProcessPool):
    """A worker process died (killed, crashed, out of memory) while it held tasks."""


#: joblib's name for the same failure, so ``except TerminatedWorkerError`` keeps working.
TerminatedWorkerError = WorkerDiedError


class TaskTimeoutError(PardoError, builtins.TimeoutError):
    """A task ran longer than ``task_timeout`` seconds."""


class TaskPicklingError(PardoError, pickle.PicklingError):
    """A task (its function or arguments) or its result could not be pickled."""


class UnsupportedSettingError(PardoError, ValueError, AssertionError):
    """A setting the chosen backend cannot honour (``inner_max_num_threads`` on threads).

    Also an ``AssertionError``: joblib raises that type for the same mistake, and code written
    for joblib may catch it.
    """


class TempFolderError(PardoError, OSError):
    """A large array could not be written to the temp folder for the workers (full, not writable).

    ``errno`` is the underlying error's (``ENOSPC`` when the folder is full).
    """


class TimeoutError(multiprocessing.TimeoutError, builtins.TimeoutError):
    """No result arrived within ``Parallel(timeout=...)`` seconds."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, attached as ``__cause__``."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n"""\n{self.tb}"""'


@dataclass(frozen=True)
class TaskError:
    """Placed in a failed task's result slot when ``on_error="collect"``.

    Attributes:
        index: the task's position in the input.
        exception: the exception the task raised (its ``__cause__`` holds the remote traceback).
        traceback: the formatted remote traceback.
    """

    index: int
    exception: BaseException
    traceback: str

    def __bool__(self) -> bool:
        # A failed slot reads as false, so ``[r for r in out if r]`` keeps the successes.
        return False


@dataclass(frozen=True)
class TaskTimeout:
    """Placed in a task's result slot when it ran past ``task_timeout`` and ``on_timeout="return"``."""

    index: int
    seconds: float

    def __bool__(self) -> bool:
        return False
