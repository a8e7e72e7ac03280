"""Large numpy arrays -> memmaps in a private temp folder, shared with process workers.

The parent's batch pickler asks ``MemmapContext.reducer_override`` about every object it pickles.
Arrays above ``max_nbytes`` are written once per context (one call, or one ``with Parallel()``
block) straight from their buffer to a file, and travel as ``(load_array, (path, ...))``, so
each worker maps the same pages instead of unpickling a copy. A file is reused for the same
array object in a later call of the context only if the array still has the bytes the file was
written from (an xxh3-128 digest taken while writing, compared once per call), so an in-place
change between calls reaches the workers. Arrays that already are memmaps of a user's file
travel by reference (file, offset, shape, strides), views included. The worker side lives in
``pardo._arrays._worker``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pardo._arrays import _tempdir
from pardo._arrays._bytes import (
    digest_array,
    digest_file,
    hashing,
    new_hasher,
    write_array,
    write_order,
)
from pardo._arrays._worker import (
    WORKER_MAPS,
    WorkerMaps,
    backing_memmap,
    load_array,
    reduce_by_reference,
    reduce_result_array,
)
from pardo._errors import TempFolderError

__all__ = [
    "WORKER_MAPS",
    "MemmapContext",
    "TempFolderError",
    "WorkerMaps",
    "digest_array",
    "load_array",
    "reduce_result_array",
    "write_array",
    "write_order",
]

#: Folders holding at least this much are deleted by a helper thread, not by the caller:
#: bench_memmap.py measured 35 ms to unlink 200 MB of /dev/shm and 0.35 s for 2 GB.
BACKGROUND_REMOVE_BYTES = 64 * 1024**2
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)

Reduced = tuple[Callable[..., Any], tuple[Any, ...]]


def _human(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{nbytes} bytes"  # pragma: no cover - the loop always returns


@dataclass(slots=True)
class _Written:
    """A file written for one array object, and what it holds: layout and xxh3-128 digest."""

    ref: weakref.ref[Any]
    reduced: Reduced
    path: str
    layout: tuple[Any, tuple[int, ...], str]  # dtype, shape, order written
    digest: bytes
    checked: int  # the call in which the array was last known to hold the file's bytes


def _layout(array: Any) -> tuple[Any, tuple[int, ...], str]:
    return array.dtype, array.shape, write_order(array)


class MemmapContext:
    """One temp folder per call or ``with Parallel()`` block; arrays above ``max_nbytes`` go there.

    Folders are created on the first large array (a call without one touches no disk) and
    removed by ``close``, or at interpreter exit if ``close`` never ran.
    """

    def __init__(self, temp_folder: str | None, max_nbytes: int | None, mmap_mode: str | None):
        self.temp_folder = temp_folder
        self.max_nbytes = max_nbytes
        self.mmap_mode = "r+" if mmap_mode == "w+" else mmap_mode
        self._types: tuple[type, ...] = ()  # (ndarray, memmap) once numpy is imported
        self._written: dict[int, _Written] = {}
        self._call = 0
        self._folders: dict[str, str] = {}
        self._finalizers: list[weakref.finalize[Any, Any]] = []
        self._lock = threading.Lock()
        self._n_files = 0
        self._nbytes = 0

    @property
    def folders(self) -> list[str]:
        """The folders created so far (at most one per root: shared memory, then disk)."""
        return list(self._folders.values())

    def start_call(self) -> None:
        """A new call begins: each array met again is checked once against its file."""
        with self._lock:
            self._call += 1

    def reducer_override(self, obj: Any) -> Any:
        """A reduce tuple for arrays this context shares through files, else NotImplemented."""
        if type(obj) in self._types:
            return self._reduce_array(obj)
        if self._types or "numpy" not in sys.modules:
            return NotImplemented
        import numpy as np

        self._types = (np.ndarray, np.memmap)
        return self.reducer_override(obj)

    def _reduce_array(self, array: Any) -> Any:
        root = backing_memmap(array, *self._types)
        if root is not None:
            reduced = reduce_by_reference(array, root)
            return NotImplemented if reduced is None else reduced
        limit = self.max_nbytes
        if limit is None or array.nbytes <= limit or array.dtype.hasobject:
            return NotImplemented
        with self._lock:
            entry = self._written.get(id(array))
            if entry is not None and entry.ref() is array:
                if entry.checked == self._call or self._unchanged(entry, array):
                    entry.checked = self._call
                    return entry.reduced
                if _layout(array) == entry.layout and self._overwrite(entry, array):
                    return entry.reduced
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)  # the last call that used it has ended
            path, order, digest = self._write(array)
            reduced = (load_array, (path, array.dtype, self.mmap_mode, 0, array.shape, order))
            key, written = id(array), self._written
            ref = weakref.ref(array, lambda _, key=key: written.pop(key, None))  # type: ignore[misc]
            written[key] = _Written(ref, reduced, path, _layout(array), digest, self._call)
            return reduced

    def _overwrite(self, entry: _Written, array: Any) -> bool:
        """Write ``array``'s new bytes over its file, in place; False if that failed.

        The earlier calls that read the file have ended, and workers that keep it mapped see
        the new bytes (shared mapping). Reusing the file's pages is what makes it cheap: a fresh
        file's pages cost up to 3x the copy on first touch here (bench_memmap.py --change).
        """
        hasher = new_hasher()
        try:
            with open(entry.path, "r+b") as file:
                write_array(array, hashing(file.write, hasher))
        except OSError:
            return False
        entry.digest, entry.checked = bytes(hasher.digest()), self._call
        return True

    def _unchanged(self, entry: _Written, array: Any) -> bool:
        """Whether ``array`` still holds the bytes of ``entry``'s file (checked at memory speed).

        The file itself can only have changed under ``mmap_mode="r+"``: then it is hashed too.
        """
        if _layout(array) != entry.layout or digest_array(array) != entry.digest:
            return False
        if self.mmap_mode != "r+":
            return True
        try:
            return digest_file(entry.path) == entry.digest
        except OSError:
            return False

    def _write(self, array: Any) -> tuple[str, str, bytes]:
        """Write ``array`` to a new file; if shared memory fails (fills up), to the disk root."""
        nbytes = int(array.nbytes)
        root, chosen = _tempdir.choose_root(self.temp_folder, nbytes)
        try:
            return self._write_in(root, array)
        except OSError as exc:
            if chosen or root == _tempdir.disk_root():
                raise self._folder_error(root, nbytes, exc) from exc
        fallback = _tempdir.disk_root()
        try:
            return self._write_in(fallback, array)
        except OSError as exc:
            raise self._folder_error(fallback, nbytes, exc) from exc

    def _folder_error(self, root: str, nbytes: int, exc: OSError) -> TempFolderError:
        folder = self._folders.get(root, root)
        size = f"a {_human(nbytes)} array ({nbytes} bytes)"
        if exc.errno in _NO_SPACE:
            what = f"no room to write {size} for the workers in {folder!r} "
            what += f"({_human(_tempdir.free_bytes(root))} free): free space there, "
        else:
            what = f"could not write {size} for the workers in {folder!r}: {exc.strerror or exc}; "
        msg = what + (
            "point Parallel(temp_folder=...) or $JOBLIB_TEMP_FOLDER at a folder with room, "
            "or raise max_nbytes to pickle it instead"
        )
        return TempFolderError(exc.errno or errno.EIO, msg)

    def _write_in(self, root: str, array: Any) -> tuple[str, str, bytes]:
        folder = self._folders.get(root)
        if folder is None:
            folder = _tempdir.make_folder(root)
            self._folders[root] = folder
            self._finalizers.append(weakref.finalize(self, _tempdir.remove_folder, folder))
        self._n_files += 1
        self._nbytes += int(array.nbytes)
        path = os.path.join(folder, f"array-{self._n_files}.bin")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        hasher = new_hasher()
        try:
            with open(fd, "wb") as file:
                order = write_array(array, hashing(file.write, hasher))
        except BaseException:
            os.unlink(path)
            raise
        return path, order, bytes(hasher.digest())

    def close(self) -> None:
        """Remove the folder and every file in it (large folders from a helper thread)."""
        with self._lock:
            finalizers, self._finalizers = self._finalizers, []
            nbytes, self._nbytes = self._nbytes, 0
            self._written.clear()
            self._folders.clear()
        if nbytes < BACKGROUND_REMOVE_BYTES:
            _run_all(finalizers)
            return
        # Freeing the pages costs ~0.17 s per GB: the caller need not wait for it. Not a daemon
        # thread, so the interpreter finishes it before exiting.
        threading.Thread(target=_run_all, args=(finalizers,), name="pardo-memmap-cleanup").start()


def _run_all(finalizers: list[weakref.finalize[Any, Any]]) -> None:
    for finalizer in finalizers:
        finalizer()
