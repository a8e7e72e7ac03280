"""``pardo.dump`` / ``pardo.load``: pickle a value with its numpy arrays stored raw, loadable as memmaps.

Layout (pardo's own, which joblib cannot read; ``load`` also reads joblib's, see _joblib_files)::

    header   16 bytes: b"PARDOPKL", format version, codec (0 = none), 6 zero bytes
    body     (compressed as a whole when a codec is set)
             8 bytes little-endian: length of the pickle
             16 bytes: the pickle's xxh3-128 digest                        (format 2 on)
             the pickle, in which each array is a persistent id (index, dtype, shape, order, where)
             the arrays' raw bytes, each starting at a multiple of 64 bytes of the uncompressed file
             16 bytes per array: the xxh3-128 digest of its bytes, in order   (format 2 on)

Arrays follow the pickle in the order it meets it: one pass when compressed, else memmaps.
The digests make damage detectable (a flipped byte in a pickle can decode to another value
without any error): ``load`` always checks the pickle's; ``read(..., check_arrays=True)``
(Memory's entries) also checks each array it reads into memory. Memory-mapped arrays are not
checked (that would read every page, which mapping exists to avoid); their lengths are.
Format 1 files, which have no digests, still load.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pickle
import struct
import sys
import warnings
from collections.abc import Callable
from typing import IO, Any, Protocol, cast

from pardo._arrays._bytes import digest_bytes, hashing, new_hasher, write_array, write_order
from pardo._arrays._joblib_files import load_joblib, rewound

__all__ = ["dump", "load", "read"]

MAGIC = b"PARDOPKL"
FORMAT_VERSION = 2
_HEADER = struct.Struct("<8sBB6x")
_LENGTH = struct.Struct("<Q")
#: Size of an xxh3-128 digest (format 2 on).
_DIGEST = 16
#: Array data starts at multiples of this (cache lines; any dtype's alignment).
ALIGN = 64
_PID_TAG = "pardo.ndarray"

#: Codec names -> id in the header. "zlib" is DEFLATE in gzip framing (the same compressor).
#: "lz4" needs the lz4 package, as in joblib.
_CODECS = {"gzip": 1, "zlib": 1, "bz2": 2, "xz": 3, "lzma": 4, "lz4": 5}
_EXTENSIONS = {
    ".z": "zlib",
    ".gz": "gzip",
    ".bz2": "bz2",
    ".xz": "xz",
    ".lzma": "lzma",
    ".lz4": "lz4",
}
_DEFAULT_LEVEL = 3
_VALID_MODES = (None, "r", "r+", "w+", "c")

Target = str | os.PathLike[str] | IO[bytes]


class _Sink(Protocol):
    def write(self, data: Any, /) -> Any: ...

    def close(self) -> None: ...


class _Source(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...

    def readinto(self, buffer: Any, /) -> int | None: ...

    def close(self) -> None: ...


def _align(offset: int) -> int:
    return -(-offset // ALIGN) * ALIGN


def _parse_compress(compress: Any, filename: Target) -> tuple[int, int]:
    """(codec id, level) for ``dump``'s ``compress`` argument; 0 = store uncompressed."""
    method: Any = None
    level: Any = _DEFAULT_LEVEL
    if compress is True:
        method = "zlib"
    elif isinstance(compress, str):
        method = compress
    elif isinstance(compress, tuple):
        method, level = compress if len(compress) == 2 else (compress, 0)
    elif isinstance(compress, int) and not isinstance(compress, bool) and 1 <= compress <= 9:
        method, level = "zlib", compress
    elif compress not in (0, False, None) or isinstance(compress, float):
        method = compress  # refused below
    elif isinstance(filename, (str, os.PathLike)):
        method = _EXTENSIONS.get(os.path.splitext(os.fspath(filename))[1].lower())
    if method is None:
        return 0, 0
    if method not in _CODECS or isinstance(level, bool) or level not in range(1, 10):
        msg = (
            f"compress={compress!r} is not valid; expected an int 0-9 (zlib level), True, "
            f"a method in {sorted(_CODECS)} or a (method, level 1-9) tuple"
        )
        raise ValueError(msg)
    if method == "lz4":
        _lz4_frame()  # fail now, naming the missing package, not halfway through the file
    return _CODECS[method], int(level)


def _lz4_frame() -> Any:
    try:
        import lz4.frame  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        msg = "compress='lz4' needs the lz4 package (pip install lz4), as in joblib"
        raise ValueError(msg) from None
    return lz4.frame


def _compressed_writer(raw: IO[bytes], codec: int, level: int) -> _Sink:
    if codec == 1:
        return gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level, mtime=0)
    if codec == 2:
        return bz2.BZ2File(raw, "wb", compresslevel=level)
    if codec == 5:
        sink: _Sink = _lz4_frame().LZ4FrameFile(raw, "wb", compression_level=level)
        return sink
    form = lzma.FORMAT_XZ if codec == 3 else lzma.FORMAT_ALONE
    return lzma.LZMAFile(raw, "wb", format=form, preset=level)


def _compressed_reader(raw: IO[bytes], codec: int) -> _Source:
    if codec == 1:
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if codec == 2:
        return bz2.BZ2File(raw, "rb")
    if codec in (3, 4):
        return lzma.LZMAFile(raw, "rb")
    if codec == 5:
        source: _Source = _lz4_frame().LZ4FrameFile(raw, "rb")
        return source
    msg = f"unknown compression codec {codec} in a pardo dump file (this pardo reads 0-5)"
    raise ValueError(msg)


class _ArrayPickler(pickle.Pickler):
    """Replaces each numpy array (same object -> same entry) by a reference to its raw bytes."""

    def __init__(self, file: IO[bytes], protocol: int | None, types: tuple[type, ...]) -> None:
        super().__init__(file, protocol=protocol)
        self.arrays: list[Any] = []  # kept alive here, so that ids stay unique while dumping
        self._index: dict[int, tuple[Any, ...]] = {}
        self._types = types
        self._end = 0

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) not in self._types or obj.dtype.hasobject or obj.size == 0:
            return None
        pid = self._index.get(id(obj))
        if pid is None:
            order = write_order(obj)
            pid = (_PID_TAG, len(self.arrays), obj.dtype, obj.shape, order, self._end)
            self._index[id(obj)] = pid
            self.arrays.append(obj)
            self._end = _align(self._end + obj.nbytes)
        return pid


def dump(value: Any, filename: Target, compress: Any = 0, protocol: int | None = None) -> list[str]:
    """Pickle ``value`` to ``filename`` (a path or a binary file), numpy arrays stored raw.

    Args:
        compress: 0/False none (unless the name ends in .z, .gz, .bz2, .xz, .lzma or .lz4); an int
            1-9 zlib level; True (zlib, level 3); a method "zlib", "gzip", "bz2", "xz",
            "lzma", "lz4" (with the lz4 package); or a ``(method, level)`` tuple.
        protocol: pickle protocol (default: the highest).

    Returns:
        The names of the files written (``[]`` when ``filename`` is a file object).
    """
    codec, level = _parse_compress(compress, filename)
    types: tuple[type, ...] = ()
    if "numpy" in sys.modules:
        import numpy as np

        types = (np.ndarray, np.memmap)
    stream = io.BytesIO()
    pickler = _ArrayPickler(
        stream, pickle.HIGHEST_PROTOCOL if protocol is None else protocol, types
    )
    pickler.dump(value)
    pickled = stream.getbuffer()
    if isinstance(filename, (str, os.PathLike)):
        with open(filename, "wb") as file:
            _write_file(file, codec, level, pickled, pickler.arrays)
        return [os.fspath(filename)]
    _write_file(filename, codec, level, pickled, pickler.arrays)
    return []


def _write_file(file: IO[bytes], codec: int, level: int, pickled: Any, arrays: list[Any]) -> None:
    file.write(_HEADER.pack(MAGIC, FORMAT_VERSION, codec))
    body = _compressed_writer(file, codec, level) if codec else cast(_Sink, file)
    try:
        body.write(_LENGTH.pack(len(pickled)))
        body.write(digest_bytes(pickled))
        body.write(pickled)
        position = _HEADER.size + _LENGTH.size + _DIGEST + len(pickled)
        start = _align(position)
        digests = []
        for array in arrays:
            # Zero padding up to the next aligned start, then the array's own bytes, hashed
            # piece by piece as they are written (the piece is still in the CPU cache).
            body.write(bytes(start - position))
            hasher = new_hasher()
            write_array(array, hashing(body.write, hasher))
            digests.append(bytes(hasher.digest()))
            position = start + array.nbytes
            start = _align(position)
        body.write(b"".join(digests))
    finally:
        if codec:
            body.close()


def load(filename: Target, mmap_mode: str | None = None) -> Any:
    """Read back what ``dump`` or ``joblib.dump`` wrote; with ``mmap_mode`` ("r", "r+", "c"),
    the arrays of an uncompressed file are memmaps.

    ``"w+"`` is taken as ``"r+"`` (it would otherwise truncate the file). Compressed files and
    file objects cannot be memory-mapped: their arrays are read into memory, with a warning.
    A damaged pickle part raises ``pickle.UnpicklingError``; the arrays' digests are not
    checked here, since writing through an ``"r+"`` map changes their bytes on purpose.
    Like any pickle, only load files you trust.
    """
    return read(filename, mmap_mode, check_arrays=False)


def read(filename: Target, mmap_mode: str | None, *, check_arrays: bool) -> Any:
    """``load``, also checking the digest of every array read into memory when
    ``check_arrays`` (``pardo.Memory``'s entries: a result whose bytes changed is not the
    function's result any more, however it changed)."""
    if mmap_mode not in _VALID_MODES:
        msg = f"mmap_mode={mmap_mode!r} is not valid; expected one of {_VALID_MODES!r}"
        raise ValueError(msg)
    mode = "r+" if mmap_mode == "w+" else mmap_mode
    if isinstance(filename, (str, os.PathLike)):
        path = os.fspath(filename)
        with open(path, "rb") as file:
            return _load_from(file, path, mode, check_arrays)
    return _load_from(filename, None, mode, check_arrays)


def _load_from(file: IO[bytes], path: str | None, mode: str | None, check_arrays: bool) -> Any:
    name = path or repr(file)
    header = file.read(_HEADER.size)
    if header[:8] != MAGIC:
        return load_joblib(rewound(file, header, name), path, mode, name)
    _, version, codec = _HEADER.unpack(header)
    if version > FORMAT_VERSION:
        msg = f"{name} has dump format {version}; this pardo reads format {FORMAT_VERSION}"
        raise ValueError(msg)
    if mode is not None and (codec or path is None):
        why = "compressed" if codec else "a file object"
        warnings.warn(
            f"mmap_mode={mode!r} ignored for {name}: it is {why}, so arrays are read into memory",
            UserWarning,
            stacklevel=3,
        )
        mode = None
    body = _compressed_reader(file, codec) if codec else cast(_Source, file)
    try:
        (length,) = _LENGTH.unpack(_read_exact(body, _LENGTH.size, name))
        checked = version >= 2
        stored = _read_exact(body, _DIGEST, name) if checked else b""
        pickled = _read_exact(body, length, name)
        if checked and digest_bytes(pickled) != stored:
            msg = f"{name} is damaged: its pickle does not match the digest stored with it"
            raise pickle.UnpicklingError(msg)
        position = _HEADER.size + _LENGTH.size + len(stored) + length
        reader = _ArrayReader(pickled, body, path, mode, position, name)
        reader.hash_arrays = checked and check_arrays
        value = reader.load()
        if reader.read_digests:
            reader.check_digests()
        return value
    finally:
        if codec:
            body.close()


def _read_exact(body: _Source, count: int, name: str) -> bytes:
    data = body.read(count)
    if len(data) != count:
        msg = f"{name} is truncated: expected {count} more bytes, got {len(data)}"
        raise EOFError(msg)
    return data


class _ArrayReader(pickle.Unpickler):
    """Unpickles ``pickled``; array ids become memmaps or arrays read from ``body`` (a subclass:
    Python 3.13 made ``persistent_load`` read-only on instances)."""

    def __init__(
        self, pickled: bytes, body: _Source, path: str | None, mode: str | None, pos: int, name: str
    ):
        super().__init__(io.BytesIO(pickled))
        self._body = body
        self._path = path
        self._mode = mode
        self._position = pos  # offset in the uncompressed file that the next read starts at
        self._data_start = _align(pos)
        self._name = name
        self._loaded: dict[int, Any] = {}
        #: Whether to hash the arrays read into memory (for ``check_digests``).
        self.hash_arrays = False
        #: Their digests, by index (mapped arrays are not read, so not hashed).
        self.read_digests: dict[int, bytes] = {}

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == _PID_TAG):
            msg = f"{self._name} holds an unknown persistent reference {pid!r}"
            raise pickle.UnpicklingError(msg)
        _, index, dtype, shape, order, relative = pid
        if index not in self._loaded:
            offset = self._data_start + relative
            if self._mode is not None and self._path is not None:
                self._loaded[index] = self._map(dtype, shape, order, offset)
            else:
                self._loaded[index] = self._read(dtype, shape, order, offset, index)
        return self._loaded[index]

    def check_digests(self) -> None:
        """Compare the arrays read with the digests after the last one (all were read, in order)."""
        count = len(self._loaded)
        stored = _read_exact(self._body, _DIGEST * count, self._name)
        for index, digest in self.read_digests.items():
            if stored[index * _DIGEST : (index + 1) * _DIGEST] != digest:
                msg = (
                    f"{self._name} is damaged: the bytes of array {index} do not match the "
                    "digest stored with them"
                )
                raise pickle.UnpicklingError(msg)

    def _map(self, dtype: Any, shape: tuple[int, ...], order: str, offset: int) -> Any:
        import numpy as np

        path, mode = cast(str, self._path), cast(Any, self._mode)
        return np.memmap(path, dtype=dtype, mode=mode, offset=offset, shape=shape, order=order)  # type: ignore[call-overload]

    def _read(self, dtype: Any, shape: tuple[int, ...], order: str, offset: int, index: int) -> Any:
        import numpy as np

        if offset < self._position:
            msg = f"{self._name} is corrupt: array data at {offset} overlaps earlier data"
            raise pickle.UnpicklingError(msg)
        _read_exact(self._body, offset - self._position, self._name)  # the alignment padding
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        buffer: Any = np.empty(nbytes, dtype=np.uint8)
        _fill(self._body.readinto, memoryview(buffer), self._name)
        if self.hash_arrays:
            self.read_digests[index] = digest_bytes(buffer)
        self._position = offset + nbytes
        return buffer.view(dtype).reshape(shape, order=order)


def _fill(readinto: Callable[[memoryview], int | None], view: memoryview, name: str) -> None:
    done = 0
    while done < len(view):
        got = readinto(view[done:])
        if not got:
            msg = f"{name} is truncated: {len(view) - done} bytes of array data missing"
            raise EOFError(msg)
        done += got
