"""Verbose lines and progress bars for one call: pure formatting, the writer injected (stub)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["VerboseReporter"]


class VerboseReporter:
    """joblib-format progress lines, written through ``write``."""

    def __init__(self, verbose: int, n_jobs: int, write: Callable[[str], None]) -> None:
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.write = write

    def progress(self, n_completed: int, n_dispatched: int, input_done: bool) -> None:
        pass

    def batch_size_changed(self, size: int, seconds: float) -> None:
        pass


class CallReporter:
    """Everything one call reports: verbose lines, the progress bar, ``print_progress`` hooks."""

    def __init__(
        self,
        options: Any,
        backend: Any,
        n_jobs: int,
        total: int | None,
        on_change: Callable[[int, int], None],
    ) -> None:
        self.total = total
        self._on_change = on_change

    def progress(self, n_completed: int, n_dispatched: int, input_done: bool) -> None:
        self._on_change(n_completed, n_dispatched)

    def batch_size_changed(self, size: int, seconds: float) -> None:
        pass

    def report(self, n_completed: int, n_dispatched: int) -> None:
        pass

    def close(self, ok: bool) -> None:
        pass
