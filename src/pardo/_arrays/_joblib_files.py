"""Read files written by ``joblib.dump`` (1.x and the pre-0.10 layouts) without importing joblib.

- joblib 0.10 and later write one pickle stream, compressed as a whole or not. The compressor is
  told by the first bytes: ``x`` (zlib), ``1f 8b`` (gzip), ``BZh`` (bz2), ``fd 37 7a 58 5a``
  (xz), ``5d 00 00`` (lzma "alone"), ``04 22 4d 18`` (lz4 frame); anything else is plain.
  Each numpy array is pickled as a ``joblib.numpy_pickle.NumpyArrayWrapper`` object (attributes
  subclass, shape, order, dtype, allow_mmap, and since joblib 1.2 numpy_array_alignment_bytes),
  and the array's bytes follow the wrapper's BUILD opcode directly in the stream: one length
  byte and that many padding bytes when an alignment is set, then the raw data in the array's
  order (C or F). Arrays of objects are a nested pickle at that place instead. With protocol 4
  and up, the pickle frame ends at that BUILD, so the bytes can be read from the file itself.
- joblib before 0.10 wrote the pickle to the file and each array to a ``.npy`` file beside it,
  referred to by a ``NDArrayWrapper`` (attributes filename, subclass, allow_mmap); compressed
  dumps start with ``ZF``, a 19-character hexadecimal length (sometimes followed by a space) and
  a zlib stream, and their arrays are ``ZNDArrayWrapper`` objects (filename, init_args, state)
  naming such a zlib file of raw data beside the main one.

The pure-Python unpickler's BUILD step finds the wrappers (the C one reads ahead of the file).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pickle
import warnings
import zlib
from collections.abc import Callable
from typing import IO, Any, ClassVar

__all__ = ["load_joblib", "rewound"]

_COMPRESSED = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ", "xz"),
    (b"]\x00\x00", "lzma"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"x", "zlib"),
)
_ZFILE_PREFIX = b"ZF"
_ZFILE_LENGTH_CHARS = 19  # len(hex(2**64)): the width joblib pads the length to
#: Bytes read at a time into an array's buffer (bounds a decompressor's temporary copies).
_READ_CHUNK = 16 * 1024**2
#: Compressed bytes fed to zlib at a time, and the most it may inflate them to in one step.
_INFLATE_INPUT = 256 * 1024
_INFLATE_OUTPUT = 4 * 1024**2
_WRAPPER_NAMES = ("NumpyArrayWrapper", "NDArrayWrapper", "ZNDArrayWrapper")


class _NumpyArrayWrapper:
    """joblib >= 0.10: the array's bytes follow in the stream."""


class _NDArrayWrapper:
    """joblib < 0.10: the array lies in a .npy file beside the pickle."""


class _ZNDArrayWrapper:
    """joblib < 0.10, compressed: the array's raw bytes lie in a zlib file beside the pickle."""


_CLASSES = {
    "NumpyArrayWrapper": _NumpyArrayWrapper,
    "NDArrayWrapper": _NDArrayWrapper,
    "ZNDArrayWrapper": _ZNDArrayWrapper,
}


class _ZlibReader(io.RawIOBase):
    """A readable raw zlib stream (what joblib's "zlib" compressor writes)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._inflate = zlib.decompressobj()
        self._pending = b""
        self._at = 0  # bytes of _pending already handed out

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while self._at == len(self._pending) and not self._inflate.eof:
            source = self._inflate.unconsumed_tail or self._raw.read(_INFLATE_INPUT)
            if not source:
                break
            self._pending, self._at = self._inflate.decompress(source, _INFLATE_OUTPUT), 0
        count = min(len(view), len(self._pending) - self._at)
        view[:count] = self._pending[self._at : self._at + count]
        self._at += count
        return count


def _decompressing(raw: IO[bytes], method: str) -> Any:
    if method == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if method == "bz2":
        return bz2.BZ2File(raw, "rb")
    if method in ("xz", "lzma"):
        return lzma.LZMAFile(raw, "rb")
    if method == "lz4":
        try:
            import lz4.frame  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError:
            msg = "this file was compressed with lz4 by joblib.dump: pip install lz4 to read it"
            raise ValueError(msg) from None
        return lz4.frame.LZ4FrameFile(raw, "rb")
    return io.BufferedReader(_ZlibReader(raw))


def read_zfile(file: IO[bytes]) -> bytes:
    """The data of a pre-0.10 ``ZF`` file (``file`` at its start)."""
    header = file.read(len(_ZFILE_PREFIX) + _ZFILE_LENGTH_CHARS)
    length = int(header[len(_ZFILE_PREFIX) :].strip(), 16)
    rest = file.read()
    if rest[:1] == b" ":  # some writers padded the length one character wider
        rest = rest[1:]
    return zlib.decompress(rest, 15, length)


def rewound(file: IO[bytes], header: bytes, name: str) -> IO[bytes]:
    """``file`` back at the start of ``header`` (its first bytes, already read)."""
    if not header:
        raise EOFError(f"{name} is empty: nothing to load")
    try:
        seekable = bool(file.seekable())
    except (AttributeError, OSError, ValueError):
        seekable = False
    if not seekable:
        return io.BytesIO(header + file.read())
    file.seek(-len(header), io.SEEK_CUR)
    return file


def load_joblib(file: IO[bytes], path: str | None, mode: str | None, name: str) -> Any:
    """Unpickle the joblib dump ``file`` (positioned at its start; ``path`` its name, if any).

    ``mode`` ("r", "r+", "c" or None) memmaps the arrays of an uncompressed file given by path.
    """
    prefix = file.read(5)
    file.seek(-len(prefix), io.SEEK_CUR)
    dirname = os.path.dirname(path) if path else ""
    if prefix.startswith(_ZFILE_PREFIX):  # compressed, joblib < 0.10
        _warn_unmappable(mode, name, "compressed")
        return _unpickle(io.BytesIO(read_zfile(file)), None, None, name, dirname)
    method = next((m for magic, m in _COMPRESSED if prefix.startswith(magic)), None)
    if method is not None:
        _warn_unmappable(mode, name, "compressed")
        stream = _decompressing(file, method)
        try:
            return _unpickle(stream, None, None, name, dirname)
        finally:
            stream.close()
    if path is None:
        _warn_unmappable(mode, name, "a file object")
        mode = None
    return _unpickle(file, path, mode, name, dirname)


def _warn_unmappable(mode: str | None, name: str, why: str) -> None:
    if mode is not None:
        warnings.warn(
            f"mmap_mode={mode!r} ignored for {name}: it is {why}, so arrays are read into memory",
            UserWarning,
            stacklevel=4,
        )


def _unpickle(file: IO[bytes], path: str | None, mode: str | None, name: str, dirname: str) -> Any:
    reader = _JoblibUnpickler(file, path, mode, name, dirname)
    try:
        return reader.load()
    except UnicodeDecodeError as exc:
        msg = (
            f"{name} could not be read: it looks like a joblib pickle written by Python 2, "
            "which Python 3 cannot read in general. Load it with Python 2 and dump it again."
        )
        raise ValueError(msg) from exc


class _JoblibUnpickler(pickle._Unpickler):
    """The pure-Python unpickler, with joblib's array wrappers turned into arrays at BUILD."""

    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = dict(pickle._Unpickler.dispatch)

    def __init__(
        self, file: IO[bytes], path: str | None, mode: str | None, name: str, dirname: str
    ) -> None:
        super().__init__(file)
        self._raw = file
        self._path = path
        self._mode = mode
        self._name = name
        self._dirname = dirname

    def find_class(self, module: str, name: str) -> Any:
        joblib_module = module.endswith(("joblib.numpy_pickle", "joblib.numpy_pickle_compat"))
        if joblib_module and name in _WRAPPER_NAMES:
            return _CLASSES[name]
        return super().find_class(module, name)

    def _load_build(self) -> None:
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
        stack: list[Any] = self.stack  # type: ignore[attr-defined]
        wrapper = stack[-1]
        if isinstance(wrapper, _NumpyArrayWrapper):
            stack[-1] = self._read_inline(vars(wrapper))
        elif isinstance(wrapper, _NDArrayWrapper):
            stack[-1] = self._read_npy(vars(wrapper))
        elif isinstance(wrapper, _ZNDArrayWrapper):
            stack[-1] = self._read_zarray(vars(wrapper))

    dispatch[pickle.BUILD[0]] = _load_build

    def _read_inline(self, state: dict[str, Any]) -> Any:
        import numpy as np

        dtype = np.dtype(state["dtype"])
        shape = tuple(state["shape"])
        order = state.get("order", "C")
        raw = self._raw
        if dtype.hasobject:
            return pickle.load(raw)  # joblib pickles object arrays in place, protocol 2
        alignment = state.get("numpy_array_alignment_bytes")
        if alignment is not None:
            (padding,) = raw.read(1)
            raw.read(padding)
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = count * dtype.itemsize
        if self._mode is not None and self._path is not None and state.get("allow_mmap", True):
            offset = raw.tell()
            if alignment is None and offset % max(dtype.alignment, 1):
                warnings.warn(
                    f"an array memmapped from {self._name} is not aligned in the file (written "
                    "by joblib < 1.2): libraries that need aligned data may crash "
                    "(segmentation fault) on it; dump the file again to align it",
                    UserWarning,
                    stacklevel=2,
                )
            array: Any = np.memmap(  # type: ignore[call-overload]
                self._path, dtype=dtype, mode=self._mode, offset=offset, shape=shape, order=order
            )
            raw.seek(offset + nbytes)
            return self._subclass(array, state.get("subclass"))
        buffer: Any = np.empty(nbytes, dtype=np.uint8)
        self._fill(memoryview(buffer))
        flat = buffer.view(dtype)
        array = flat.reshape(shape[::-1]).T if order == "F" else flat.reshape(shape)
        return self._subclass(_native(array), state.get("subclass"))

    def _fill(self, view: memoryview) -> None:
        done = 0
        while done < len(view):
            chunk = self._raw.read(min(_READ_CHUNK, len(view) - done))
            if not chunk:
                msg = f"{self._name} is truncated: {len(view) - done} bytes of array data missing"
                raise EOFError(msg)
            view[done : done + len(chunk)] = chunk
            done += len(chunk)

    def _subclass(self, array: Any, subclass: Any) -> Any:
        import numpy as np

        if subclass is None or subclass in (np.ndarray, np.memmap):
            return array
        return array.view(subclass)

    def _beside(self, filename: str) -> str:
        return os.path.join(self._dirname, os.path.basename(filename))

    def _read_npy(self, state: dict[str, Any]) -> Any:
        import numpy as np

        mode: Any = self._mode if state.get("allow_mmap", True) else None
        array = np.load(self._beside(state["filename"]), mmap_mode=mode, allow_pickle=True)
        if mode is None:
            array = _native(array)
        return self._subclass(array, state.get("subclass"))

    def _read_zarray(self, state: dict[str, Any]) -> Any:
        import numpy as np

        subclass, shape, dtype = state["init_args"]
        array = np.ndarray.__new__(subclass, shape, dtype)
        with open(self._beside(state["filename"]), "rb") as file:
            data = read_zfile(file)
        array.__setstate__((*state["state"], data))
        return _native(array)


def _native(array: Any) -> Any:
    """``array`` in this machine's byte order (what code compiled for it expects)."""
    if array.dtype.isnative:
        return array
    return array.astype(array.dtype.newbyteorder("="))
