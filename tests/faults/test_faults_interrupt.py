"""Ctrl-C (SIGINT to the whole process group) and SIGTERM (to the parent) during a call."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import pytest

Runner = Callable[..., dict[str, Any]]

pytestmark = pytest.mark.slow

#: What a caller may wait, from the signal to KeyboardInterrupt in its hands (issue: "a couple").
MAX_LATENCY = 2.0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("mode", ["interrupt_list", "interrupt_generator"])
def test_signal_stops_the_call_and_everything_it_started(
    scenario: Runner, backend: str, mode: str, sig: int
) -> None:
    out = scenario(mode, backend, sig=sig)
    assert out["error"] == "KeyboardInterrupt"
    assert out["latency"] < MAX_LATENCY
    # the harness checked the rest: workers gone, folders removed, fds back, next call works
