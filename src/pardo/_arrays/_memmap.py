"""Large numpy arrays -> memmaps in a private temp folder, shared with process workers.

The parent's batch pickler asks ``MemmapContext.reducer_override`` about every object it pickles.
Arrays above ``max_nbytes`` are written once per context (one call, or one ``with Parallel()``
block) straight from their buffer to a file, and travel as ``(load_array, (path, ...))``, so
each worker maps the same pages instead of unpickling a copy. A file is reused for the same
array object in a later call of the context only if the array still has the bytes the file was
written from (an xxh3-128 digest taken while writing, compared once per call), so an in-place
change between calls reaches the workers. Arrays that already are memmaps of
a user's file travel by reference (file, offset, shape, strides), views included. In the worker,
``reduce_result_array`` turns memmaps of pardo's temp files back into ordinary arrays, since the
files are deleted when the context closes.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import pickle
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pardo._arrays import _tempdir
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

#: Bytes copied at a time to write a non-contiguous array: bounds the extra memory of the copy.
COPY_CHUNK_BYTES = 16 * 1024**2
#: Folders holding at least this much are deleted by a helper thread, not by the caller:
#: bench_memmap.py measured 35 ms to unlink 200 MB of /dev/shm and 0.35 s for 2 GB.
BACKGROUND_REMOVE_BYTES = 64 * 1024**2
#: Bytes hashed then written at a time: a piece just hashed is still in the CPU cache when it is
#: written, so the digest adds no measurable time to the write (bench_memmap.py: 200 MB written
#: in 1 MiB pieces, each hashed first, took 80-86 ms against 85-89 ms for one plain write()).
HASH_PIECE_BYTES = 1024**2
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)

Reduced = tuple[Callable[..., Any], tuple[Any, ...]]


def write_order(array: Any) -> str:
    """The order ``write_array`` stores ``array`` in: F for Fortran-only arrays, else C."""
    fortran = array.ndim > 1 and array.flags.f_contiguous and not array.flags.c_contiguous
    return "F" if fortran else "C"


def write_array(array: Any, write: Callable[[memoryview], object]) -> str:
    """Pass ``array``'s bytes to ``write`` (no pickle copy); return the order written, C or F.

    C- or F-contiguous arrays are written from their own buffer in one call; others are copied
    in C order, ``COPY_CHUNK_BYTES`` at a time.
    """
    import numpy as np

    fortran = write_order(array) == "F"
    if fortran or array.flags.c_contiguous:
        flat: Any = (array.T if fortran else array).reshape(-1).view(np.uint8)
        write(memoryview(flat))
        return "F" if fortran else "C"
    size = max(COPY_CHUNK_BYTES // max(array.itemsize, 1), 1)
    flags = ["external_loop", "buffered", "zerosize_ok"]
    chunks: Any = np.nditer(array, flags=flags, buffersize=size, order="C")  # type: ignore[call-overload]
    for chunk in chunks:
        piece: Any = np.ascontiguousarray(chunk).view(np.uint8)
        write(memoryview(piece))
    return "C"


def _hasher() -> Any:
    import xxhash

    return xxhash.xxh3_128()


def digest_array(array: Any) -> bytes:
    """xxh3-128 of the bytes ``write_array`` writes for ``array`` (no copy when contiguous)."""
    hasher = _hasher()
    write_array(array, hasher.update)
    return bytes(hasher.digest())


def _digest_file(path: str) -> bytes:
    hasher = _hasher()
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        hasher.update(data)
    return bytes(hasher.digest())


def _hashing(write: Callable[[memoryview], object], hasher: Any) -> Callable[[memoryview], None]:
    """A ``write`` that also feeds ``hasher``, piece by piece while the piece is cache-hot."""

    def write_and_hash(view: memoryview) -> None:
        for start in range(0, len(view), HASH_PIECE_BYTES):
            piece = view[start : start + HASH_PIECE_BYTES]
            hasher.update(piece)
            write(piece)

    return write_and_hash


def load_array(
    filename: str,
    dtype: Any,
    mode: str | None,
    offset: int,
    shape: tuple[int, ...],
    order: str,
    strides: tuple[int, ...] | None = None,
    span: int = 0,
) -> Any:
    """Open bytes of ``filename`` as an array: a memmap in ``mode``, or read into memory (None).

    With ``strides``, ``offset`` is where the lowest byte of the view lies, ``span`` how many
    bytes the view reaches, and the first element sits ``-sum(negative extents)`` bytes in.
    """
    import numpy as np

    if strides is None:
        if WORKER_MAPS.enabled and is_pardo_temp(filename):
            _tempdir.note_root(filename)  # to clean it up if the parent gets killed
            if mode in ("r", "r+"):
                return WORKER_MAPS.get(filename, dtype, mode, offset, shape, order)
        if mode is None:
            count = int(np.prod(shape, dtype=np.int64))
            flat = np.fromfile(filename, dtype=dtype, count=count, offset=offset)
            return flat.reshape(shape, order=order)  # type: ignore[call-overload]
        return np.memmap(filename, dtype=dtype, mode=mode, offset=offset, shape=shape, order=order)  # type: ignore[call-overload]
    first = -sum(min(0, (n - 1) * s) for n, s in zip(shape, strides, strict=True))
    if mode is None:
        raw = np.fromfile(filename, dtype=np.uint8, count=span, offset=offset)
        return np.ndarray(shape, dtype, buffer=raw, offset=first, strides=strides).copy()
    base = np.memmap(filename, dtype=np.uint8, mode=mode, offset=offset, shape=(span,))  # type: ignore[call-overload]
    view = np.ndarray.__new__(np.memmap, shape, dtype, buffer=base, offset=first, strides=strides)
    # memmap only copies its file attributes to views made by slicing; set them here.
    view._mmap, view.filename, view.offset, view.mode = base._mmap, filename, offset, mode
    return view


class WorkerMaps:
    """Worker side: memmaps of pardo temp files kept mapped from one task to the next.

    A worker that maps a file anew for each task takes a page fault on every page it reads, each
    call again; keeping the mapping makes later calls of a ``with Parallel()`` block read at
    memory speed (bench_memmap.py --calls 5: 45-50 ms per later call without it). Safe because a
    temp file's name is never reused for other bytes, and only for modes that share one view of
    the file ("r", "r+"): each task gets its own view object, so changing its shape or dtype
    cannot reach the next task. ``forget_removed`` drops the mappings of files their context
    deleted; the worker's parent watch calls it every second, so a closed context's memory is
    freed within a second. Enabled by ``pardo.backends._board.start_worker`` only.
    """

    def __init__(self) -> None:
        self.enabled = False
        self._maps: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def get(
        self, filename: str, dtype: Any, mode: str, offset: int, shape: tuple[int, ...], order: str
    ) -> Any:
        import numpy as np

        key = (filename, dtype, mode, offset, shape, order)
        with self._lock:
            cached = self._maps.get(key)
            if cached is None:
                cached = np.memmap(
                    filename, dtype=dtype, mode=mode, offset=offset, shape=shape, order=order
                )  # type: ignore[call-overload]
                self._maps[key] = cached
        return cached.view()

    def forget_removed(self) -> None:
        """Unmap the files that no longer exist (their context closed)."""
        with self._lock:
            gone = [key for key in self._maps if not os.path.exists(key[0])]
            for key in gone:
                del self._maps[key]

    def clear(self) -> None:
        with self._lock:
            self._maps.clear()


#: The one per process (a registry: process workers enable it at start).
WORKER_MAPS = WorkerMaps()


def _backing_memmap(array: Any, ndarray: Any, memmap_type: Any) -> Any:
    """The memmap that maps ``array``'s memory from a user's file (and is safe to share), or None.

    A copy-on-write ("c") memmap is not shared: its changes live only in this process.
    """
    node: Any = array
    while isinstance(node, ndarray):
        if isinstance(node, memmap_type) and isinstance(node.base, mmap.mmap):
            usable = node.filename is not None and node.mode != "c"
            return node if usable else None
        node = node.base
    return None


def _reduce_by_reference(array: Any, root: Any) -> Reduced | None:
    """Reduce a view of the memmap ``root`` to where its bytes lie in ``root``'s file."""
    if array.size == 0:
        return None
    mode = "r+" if root.mode == "w+" else root.mode
    filename = os.fspath(root.filename)
    address = array.__array_interface__["data"][0]
    from_root = address - root.__array_interface__["data"][0]
    if array.flags.c_contiguous or array.flags.f_contiguous:
        order = "C" if array.flags.c_contiguous else "F"
        args = (filename, array.dtype, mode, root.offset + from_root, array.shape, order)
        return load_array, args
    extents = [(n - 1) * s for n, s in zip(array.shape, array.strides, strict=True)]
    low = sum(e for e in extents if e < 0)
    span = sum(abs(e) for e in extents) + array.itemsize
    offset = root.offset + from_root + low
    args2 = (filename, array.dtype, mode, offset, array.shape, "C", array.strides, span)
    return load_array, args2


def is_pardo_temp(filename: Any) -> bool:
    """Whether ``filename`` lies in a pardo temp folder (it is deleted when its context closes)."""
    if not filename:
        return False
    folder: str = os.path.basename(os.path.dirname(os.fspath(filename)))
    return folder.startswith(_tempdir.FOLDER_PREFIX)


def reduce_result_array(obj: Any) -> Any:
    """Worker side: how a result object is pickled (pardo temp memmaps become plain arrays).

    Runs for every object of every result, so anything but a memmap leaves after one check.
    """
    if type(obj).__name__ != "memmap":
        return NotImplemented
    np = sys.modules.get("numpy")
    if np is None or not isinstance(obj, np.memmap):
        return NotImplemented
    root = _backing_memmap(obj, np.ndarray, np.memmap)
    if root is not None and not is_pardo_temp(root.filename):
        reduced = _reduce_by_reference(obj, root)
        if reduced is not None:
            return reduced
    return obj.view(np.ndarray).__reduce_ex__(pickle.HIGHEST_PROTOCOL)


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
        root = _backing_memmap(array, *self._types)
        if root is not None:
            reduced = _reduce_by_reference(array, root)
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
        hasher = _hasher()
        try:
            with open(entry.path, "r+b") as file:
                write_array(array, _hashing(file.write, hasher))
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
            return _digest_file(entry.path) == entry.digest
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
        hasher = _hasher()
        try:
            with open(fd, "wb") as file:
                order = write_array(array, _hashing(file.write, hasher))
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
