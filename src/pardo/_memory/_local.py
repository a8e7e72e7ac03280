"""The default store: one folder tree on a local (or shared) file system.

Layout under the root (``<location>/joblib`` for a str location, the path itself for a Path)::

    <module>/<name>/<code digest>/<key[:2]>/<key>.pkl    the result (pardo.dump format)
                                           /<key>.json   metadata: duration, time, input_args
    .locks/<lock[:2]>/<lock>.lock                        per-entry compute lock (flock), named
                                                         by a digest of the whole EntryRef;
                                                         reduce_size deletes those of gone entries
    .size, .size.lock                                    the byte count that ``bytes_limit``
                                                         writers share (pardo._memory._limit)

Two files per entry, in 256 shard folders per code version, so no folder grows past a few
hundred names at 100,000 entries. Both files are written to a temporary name and renamed into
place, metadata first: an entry exists once its ``.pkl`` does, so a writer killed at any moment
leaves either nothing readable or a complete entry. Leftover temporary files (their names carry
the writer's pid) are removed when that key is written again and by ``entries`` (reduce_size).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pathlib
import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Any

import filelock
import xxhash

from pardo._arrays._persist import dump, read
from pardo._memory._store import CorruptEntry, EntryInfo, EntryRef, StoreBackendBase

__all__ = ["LocalStore"]

_TMP = ".tmp-"
_LOCKS = ".locks"
#: The shared byte count of ``bytes_limit`` (``pardo._memory._limit``), and its ``.lock``.
_SIZE = ".size"


#: What the ``.gitignore`` written in a new cache location says (joblib writes the same).
GITIGNORE = "# Created by joblib automatically.\n*\n"


class LocalStore(StoreBackendBase):
    """Entries as files under one root folder (see the module docstring)."""

    location: str  # the root, once configured

    def configure(
        self, location: Any, verbose: int = 0, backend_options: dict[str, Any] | None = None
    ) -> None:
        options = backend_options or {}
        self.compress = options.get("compress", False)
        if isinstance(location, pathlib.PurePath):
            root = os.fspath(location)
        elif isinstance(location, str):
            root = os.path.join(location, "joblib")
        else:
            msg = f"location={location!r} is not valid: use a str or pathlib.Path folder, or None"
            raise TypeError(msg)
        if os.path.exists(root) and not os.path.isdir(root):
            msg = f"location {root!r} exists and is not a directory: give a folder for the cache"
            raise ValueError(msg)
        try:
            os.makedirs(root, exist_ok=True)
        except OSError as exc:
            msg = f"cannot create the cache folder {root!r}: {exc.strerror}"
            raise ValueError(msg) from exc
        if not os.access(root, os.W_OK | os.X_OK):
            msg = f"cache folder {root!r} is not writable: give a folder you can write to"
            raise ValueError(msg)
        # Keep the cache out of git, in the folder the user named. joblib's very text: the folder
        # is joblib's too (``<location>/joblib``), and either library may be the first to write it.
        ignore = os.path.join(os.fspath(location), ".gitignore")
        if not os.path.exists(ignore):
            with contextlib.suppress(OSError), open(ignore, "w") as f:
                f.write(GITIGNORE)
        self.location = root

    # -- paths ------------------------------------------------------------------------------

    def _base(self, ref: EntryRef) -> str:
        return f"{self.location}/{ref.func_id}/{ref.code}/{ref.key[:2]}/{ref.key}"

    # -- reading ----------------------------------------------------------------------------

    def load(self, ref: EntryRef, mmap_mode: str | None) -> Any:
        path = self._base(ref) + ".pkl"
        try:
            return read(path, mmap_mode, check_arrays=True)
        except FileNotFoundError:
            raise KeyError(ref) from None
        except Exception as exc:  # truncated, overwritten, not a pardo file
            raise CorruptEntry(f"{path}: {exc}") from exc

    def contains(self, ref: EntryRef) -> bool:
        return os.path.exists(self._base(ref) + ".pkl")

    def metadata(self, ref: EntryRef) -> dict[str, Any] | None:
        try:
            with open(self._base(ref) + ".json", "rb") as f:
                data = json.loads(f.read())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def touch(self, ref: EntryRef) -> None:
        with contextlib.suppress(OSError):
            os.utime(self._base(ref) + ".json")

    # -- writing ----------------------------------------------------------------------------

    def dump(self, ref: EntryRef, value: Any, metadata: dict[str, Any]) -> None:
        base = self._base(ref)
        folder = os.path.dirname(base)
        os.makedirs(folder, exist_ok=True)
        _remove_leftovers(folder, os.path.basename(base))
        self._write(base + ".json", lambda path: _write_json(path, metadata))
        self._write(base + ".pkl", lambda path: dump(value, path, compress=self.compress))

    def _write(self, final: str, write: Any) -> None:
        temp = f"{final}{_TMP}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            write(temp)
            os.replace(temp, final)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                msg = f"cache location {self.location!r} is full: could not write {final!r}"
                raise OSError(exc.errno, msg) from exc
            raise

    def remove(self, ref: EntryRef) -> None:
        base = self._base(ref)
        for suffix in (".pkl", ".json"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(base + suffix)
        _unlink_unheld(self._lock_path(ref))

    # -- the whole store --------------------------------------------------------------------

    def entries(self) -> Iterator[EntryInfo]:
        live: set[str] = set()
        for info in self._walk():
            live.add(_lock_name(info.ref))
            yield info
        self._reclaim_locks(live)

    def _reclaim_locks(self, live: set[str]) -> None:
        """Delete the lock files of entries that are gone (killed computations, evicted keys)."""
        for folder, _, files in os.walk(f"{self.location}/{_LOCKS}"):
            for name in files:
                if name.removesuffix(".lock") not in live:
                    _unlink_unheld(os.path.join(folder, name))

    def _walk(self) -> Iterator[EntryInfo]:
        for folder, dirs, files in os.walk(self.location):
            if _LOCKS in dirs:
                dirs.remove(_LOCKS)
            names = set(files)
            for name in files:
                path = os.path.join(folder, name)
                if _TMP in name:
                    _remove_if_orphan(path, name)
                    continue
                if not name.endswith(".pkl"):
                    if name.endswith(".json") and name[:-5] + ".pkl" not in names:
                        _remove_if_older(path, 60.0)  # metadata whose result never arrived
                    continue
                rel = os.path.relpath(folder, self.location).split(os.sep)
                if len(rel) < 3:
                    continue
                ref = EntryRef("/".join(rel[:-2]), rel[-2], name[:-4])
                try:
                    nbytes = os.stat(path).st_size
                    meta = path[:-4] + ".json"
                    used = (
                        os.stat(meta).st_mtime if os.path.exists(meta) else os.stat(path).st_mtime
                    )
                except OSError:
                    continue
                if os.path.exists(meta):
                    nbytes += os.stat(meta).st_size
                yield EntryInfo(ref, nbytes, used)

    def create_function_location(self, func_id: str) -> None:
        os.makedirs(f"{self.location}/{func_id}", exist_ok=True)

    def code_versions(self, func_id: str) -> list[str]:
        try:
            return sorted(os.listdir(f"{self.location}/{func_id}"))
        except OSError:
            return []

    def clear(self, func_id: str | None = None) -> None:
        target = self.location if func_id is None else f"{self.location}/{func_id}"
        if func_id is None:
            for name in os.listdir(target) if os.path.isdir(target) else []:
                shutil.rmtree(os.path.join(target, name), ignore_errors=True)
            with contextlib.suppress(OSError):
                os.unlink(f"{target}/{_SIZE}")  # unknown again: the next limited write scans
        else:
            shutil.rmtree(target, ignore_errors=True)

    def add_bytes(self, nbytes: int) -> int | None:
        path = f"{self.location}/{_SIZE}"
        with filelock.FileLock(path + ".lock"):
            try:
                with open(path, "rb") as f:
                    total = int(f.read()) + nbytes
            except (OSError, ValueError):
                return None  # never counted, or cleared: the caller scans
            if nbytes:
                _write_count(path, total)
            return total

    def set_bytes(self, total: int) -> None:
        path = f"{self.location}/{_SIZE}"
        with filelock.FileLock(path + ".lock"):
            _write_count(path, total)

    def lock(self, ref: EntryRef) -> filelock.FileLock:
        path = self._lock_path(ref)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return filelock.FileLock(path)

    def _lock_path(self, ref: EntryRef) -> str:
        name = _lock_name(ref)
        return f"{self.location}/{_LOCKS}/{name[:2]}/{name}.lock"


def _lock_name(ref: EntryRef) -> str:
    """One lock per entry, not per argument key: ``f(1)`` and ``g(1)`` share a key, and when
    ``f``'s body calls ``g(1)`` a shared lock would be taken twice by one thread (a deadlock)."""
    whole = f"{ref.func_id}\x00{ref.code}\x00{ref.key}".encode("utf-8", "surrogatepass")
    return xxhash.xxh3_128_hexdigest(whole)


def _write_count(path: str, total: int) -> None:
    """Replace the count file's content (the caller holds its lock): a reader never sees half."""
    with open(path + ".new", "wb") as f:
        f.write(str(total).encode())
    os.replace(path + ".new", path)


def _unlink_unheld(path: str) -> None:
    """Delete a lock file unless someone holds it (this process included).

    A caller that opened it just before it goes may then compute that key at the same time as
    a newcomer: a duplicate computation, never a wrong entry (writes are atomic), and only for
    a key being removed right then.
    """
    if not os.path.exists(path):
        return
    try:
        with filelock.FileLock(path).acquire(timeout=0), contextlib.suppress(OSError):
            os.unlink(path)
    except filelock.Timeout:
        pass


def _write_json(path: str, metadata: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(metadata, f)


def _remove_leftovers(folder: str, stem: str) -> None:
    """Temporary files of this key whose writer is dead (killed mid-write)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if name.startswith(stem) and _TMP in name:
                _remove_if_orphan(os.path.join(folder, name), name)


def _remove_if_orphan(path: str, name: str) -> None:
    try:
        pid = int(name.rsplit(_TMP, 1)[1].split("-", 1)[0])
    except ValueError:
        pid = -1
    if pid == os.getpid():
        if time.time() - _mtime(path) < 60.0:
            return  # one of this process's threads may be writing it
    elif pid > 0 and _alive(pid):
        return  # its writer still runs: the file is in progress
    with contextlib.suppress(OSError):
        os.unlink(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_if_older(path: str, seconds: float) -> None:
    if time.time() - _mtime(path) > seconds:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return time.time()
