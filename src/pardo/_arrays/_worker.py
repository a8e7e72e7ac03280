"""Worker side of memmapping: open the arrays a batch refers to, and send results back by value.

``load_array`` is what a reduced array unpickles to. In a process worker (``WORKER_MAPS``
enabled), pardo temp files stay mapped from one task to the next. ``reduce_result_array`` turns
memmaps of pardo's temp files back into ordinary arrays, since the files are deleted when their
context closes; memmaps of a user's file go back by reference.
"""

from __future__ import annotations

import mmap
import os
import pickle
import sys
import threading
from collections.abc import Callable
from typing import Any

from pardo._arrays import _tempdir

__all__ = [
    "WORKER_MAPS",
    "WorkerMaps",
    "backing_memmap",
    "is_pardo_temp",
    "load_array",
    "reduce_by_reference",
    "reduce_result_array",
]

Reduced = tuple[Callable[..., Any], tuple[Any, ...]]


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


def backing_memmap(array: Any, ndarray: Any, memmap_type: Any) -> Any:
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


def reduce_by_reference(array: Any, root: Any) -> Reduced | None:
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
    root = backing_memmap(obj, np.ndarray, np.memmap)
    if root is not None and not is_pardo_temp(root.filename):
        reduced = reduce_by_reference(obj, root)
        if reduced is not None:
            return reduced
    return obj.view(np.ndarray).__reduce_ex__(pickle.HIGHEST_PROTOCOL)
