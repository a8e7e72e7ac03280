"""SIGTERM during a call becomes ``KeyboardInterrupt``, so ``kill <pid>`` cleans up like Ctrl-C.

By default SIGTERM ends the process at once: no ``finally`` runs, so workers are orphaned and
temp folders stay. While a call runs in the main thread, and only if SIGTERM still has its
default action (a program's own handler is left alone), ``TermGuard`` installs a handler that
raises ``KeyboardInterrupt``; the dispatch loop then stops the workers and removes its folders,
as for Ctrl-C. The handler puts the default back before raising, so a second SIGTERM during
that clean-up ends the process as usual.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

__all__ = ["TermGuard"]


class TermGuard:
    """Install with ``install()``, restore with ``restore()`` (both idempotent, both cheap)."""

    __slots__ = ("_handler", "_installed", "_pid")

    def __init__(self) -> None:
        self._installed = False
        self._handler = self._on_sigterm
        self._pid = os.getpid()

    def install(self) -> None:
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        signal.signal(signal.SIGTERM, self._handler)
        self._installed = True

    def restore(self) -> None:
        if not self._installed:
            return
        self._installed = False
        # Only undo our own handler: the program may have installed one since.
        if signal.getsignal(signal.SIGTERM) is self._handler:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:
            # A process forked during the call inherited this handler: SIGTERM ends it quietly.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        self.restore()
        raise KeyboardInterrupt("SIGTERM received during a pardo call")
