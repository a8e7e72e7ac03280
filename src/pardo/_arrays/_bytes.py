"""An array's bytes, as pardo's files hold them: written from its buffer, and their xxh3-128 digest.

C- and Fortran-contiguous arrays are handed out from their own buffer without a copy; others are
copied in C order a bounded piece at a time. The digest of those bytes is what tells a memmap
context that an array met again still holds what its file holds.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from typing import Any

__all__ = [
    "digest_array",
    "digest_bytes",
    "digest_file",
    "hashing",
    "new_hasher",
    "write_array",
    "write_order",
]

#: Bytes copied at a time to write a non-contiguous array: bounds the extra memory of the copy.
COPY_CHUNK_BYTES = 16 * 1024**2
#: Bytes hashed then written at a time: a piece just hashed is still in the CPU cache when it is
#: written, so the digest adds no measurable time (bench_memmap.py --write-pieces, 200 MiB to
#: /dev/shm: 83.0 ms in 1 MiB hashed pieces, 84.4 / 84.8 ms for 256 KiB / 4 MiB, 88.7 ms for one
#: plain write() without a digest).
HASH_PIECE_BYTES = 1024**2


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


def new_hasher() -> Any:
    import xxhash

    return xxhash.xxh3_128()


def digest_array(array: Any) -> bytes:
    """xxh3-128 of the bytes ``write_array`` writes for ``array`` (no copy when contiguous)."""
    hasher = new_hasher()
    write_array(array, hasher.update)
    return bytes(hasher.digest())


def digest_bytes(data: Any) -> bytes:
    """xxh3-128 of a bytes-like ``data`` (no copy)."""
    hasher = new_hasher()
    hasher.update(data)
    return bytes(hasher.digest())


def digest_file(path: str) -> bytes:
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return digest_bytes(data)


def hashing(write: Callable[[memoryview], object], hasher: Any) -> Callable[[memoryview], None]:
    """A ``write`` that also feeds ``hasher``, piece by piece while the piece is cache-hot."""

    def write_and_hash(view: memoryview) -> None:
        for start in range(0, len(view), HASH_PIECE_BYTES):
            piece = view[start : start + HASH_PIECE_BYTES]
            hasher.update(piece)
            write(piece)

    return write_and_hash
