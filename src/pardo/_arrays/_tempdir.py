"""Where pardo's memmap folders live: pick the root, create private folders, reclaim dead ones.

A folder is named ``pardo-<pid>-<pidns>-<random>``: the creating process's pid and pid namespace
let a later process tell that the creator is gone (it crashed or was killed before cleaning up)
and remove the folder; the namespace keeps a container sharing ``/dev/shm`` with another from
mistaking a live process of the other namespace for a dead one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable

__all__ = [
    "FOLDER_PREFIX",
    "SHM_ROOT",
    "choose_root",
    "default_roots",
    "disk_root",
    "free_bytes",
    "make_folder",
    "note_root",
    "remove_folder",
    "remove_folders_of",
    "roots_seen",
    "sweep_stale",
]

FOLDER_PREFIX = "pardo-"
#: Shared memory: files there are RAM, so workers map the parent's bytes without any disk I/O.
SHM_ROOT = "/dev/shm"


def disk_root() -> str:
    """The system temp folder (``$TMPDIR``, ``/tmp``...): the fallback when shared memory is full."""
    return tempfile.gettempdir()


def explicit_root(temp_folder: str | None) -> str | None:
    """The root the user asked for (argument or config, else ``$JOBLIB_TEMP_FOLDER``), if any."""
    if temp_folder is not None:
        return os.fspath(temp_folder)
    return os.environ.get("JOBLIB_TEMP_FOLDER") or None


def free_bytes(root: str) -> int:
    """Bytes free for us under ``root`` now (0 when that cannot be told)."""
    try:
        return shutil.disk_usage(root).free
    except OSError:
        return 0


def shm_has_room(nbytes: int) -> bool:
    """True when ``/dev/shm`` exists, is writable and has ``nbytes`` free right now."""
    if not (os.path.isdir(SHM_ROOT) and os.access(SHM_ROOT, os.W_OK | os.X_OK)):
        return False
    return free_bytes(SHM_ROOT) >= nbytes


def choose_root(temp_folder: str | None, nbytes: int) -> tuple[str, bool]:
    """The root folder for ``nbytes`` of new data, and whether it was the user's choice.

    Order: ``temp_folder``, ``$JOBLIB_TEMP_FOLDER``, ``/dev/shm`` when it has room for
    ``nbytes``, the system temp folder.
    """
    root = explicit_root(temp_folder)
    if root is not None:
        return root, True
    if shm_has_room(nbytes):
        return SHM_ROOT, False
    return disk_root(), False


def default_roots() -> set[str]:
    """The roots pardo uses unless a call names its own: shared memory, ``$JOBLIB_TEMP_FOLDER``,
    the system temp folder."""
    roots = {SHM_ROOT, disk_root()}
    env = explicit_root(None)
    if env is not None:
        roots.add(env)
    return roots


#: Roots of the pardo folders this process has read files from (a worker learns a call's own
#: ``temp_folder`` this way, to clean it up if the call's process is killed).
_ROOTS_SEEN: set[str] = set()


def note_root(folder_file: str) -> None:
    """Remember the root above the pardo folder holding ``folder_file``."""
    _ROOTS_SEEN.add(os.path.dirname(os.path.dirname(folder_file)))


def roots_seen() -> set[str]:
    return set(_ROOTS_SEEN)


def remove_folders_of(pid: int, roots: Iterable[str]) -> list[str]:
    """Remove our uid's pardo folders under ``roots`` made by process ``pid``, which is dead.

    Workers call it when their parent died without cleaning up (SIGKILL, the OOM killer): the
    caller knows ``pid`` is gone, which ``sweep_stale`` can only guess from outside.
    """
    prefix = f"{FOLDER_PREFIX}{pid}-{_pid_namespace()}-"
    uid = os.getuid() if hasattr(os, "getuid") else None
    removed: list[str] = []
    for root in set(roots):
        try:
            names = [n for n in os.listdir(root) if n.startswith(prefix)]
        except OSError:
            continue
        for name in names:
            path = os.path.join(root, name)
            try:
                if uid is not None and os.stat(path, follow_symlinks=False).st_uid != uid:
                    continue
            except OSError:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _pid_namespace() -> str:
    try:
        link = os.readlink("/proc/self/ns/pid")
    except OSError:
        return "0"
    return "".join(ch for ch in link if ch.isdigit()) or "0"


def make_folder(root: str) -> str:
    """Create a fresh private (0700) folder under ``root``, after reclaiming dead processes' ones."""
    os.makedirs(root, exist_ok=True)
    namespace = _pid_namespace()
    sweep_stale(root, namespace)
    return tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-{namespace}-", dir=root)


def remove_folder(folder: str) -> None:
    """Delete ``folder`` and everything in it; already gone is fine."""
    shutil.rmtree(folder, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists but belongs to someone else (EPERM), or we cannot tell
    return True


def sweep_stale(root: str, namespace: str) -> list[str]:
    """Remove our uid's pardo folders in ``root`` whose creator (same pid namespace) is dead."""
    removed: list[str] = []
    try:
        names = [n for n in os.listdir(root) if n.startswith(FOLDER_PREFIX)]
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for name in names:
        parts = name[len(FOLDER_PREFIX) :].split("-")
        if len(parts) < 3 or not parts[0].isdigit() or parts[1] != namespace:
            continue
        pid = int(parts[0])
        path = os.path.join(root, name)
        try:
            owner = os.stat(path, follow_symlinks=False).st_uid
        except OSError:
            continue
        if pid == os.getpid() or (uid is not None and owner != uid) or _pid_alive(pid):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed
