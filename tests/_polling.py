"""The one polling helper of the test suite: tests poll for what they wait for, never sleep blind."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], seconds: float, interval: float = 0.02) -> bool:
    """Poll ``condition()`` until it is true (return True) or ``seconds`` pass (return False)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
