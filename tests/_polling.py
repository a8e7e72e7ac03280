"""Waiting in tests: poll for what is awaited, never sleep blind; and whether a process lives."""

from __future__ import annotations

import time
from collections.abc import Callable

import psutil


def wait_until(condition: Callable[[], object], seconds: float, interval: float = 0.02) -> bool:
    """Poll ``condition()`` until it is true (return True) or ``seconds`` pass (return False)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def gone_within(pids: list[int], seconds: float) -> bool:
    """Whether all of ``pids`` exit within ``seconds``."""
    return wait_until(lambda: not any(alive(p) for p in pids), seconds, interval=0.05)
