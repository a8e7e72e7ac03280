"""Large numpy arrays -> memmaps in a private temp folder, shared with process workers (stub)."""

from __future__ import annotations

from typing import Any

__all__ = ["MemmapContext"]


class MemmapContext:
    """One temp folder per call or ``with Parallel()`` block; arrays above ``max_nbytes`` go there."""

    def __init__(self, temp_folder: str | None, max_nbytes: int | None, mmap_mode: str | None):
        self.temp_folder = temp_folder
        self.max_nbytes = max_nbytes
        self.mmap_mode = mmap_mode

    def reducer_override(self, obj: Any) -> Any:
        return NotImplemented

    def close(self) -> None:
        """Remove the folder and every file in it."""


def reduce_result_array(obj: Any) -> Any:
    """Worker side: how a result object is pickled (pardo temp memmaps become plain arrays)."""
    return NotImplemented
