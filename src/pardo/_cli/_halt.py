"""``--halt`` and the exit status: when to stop early, and what number the run exits with.

The exit status follows GNU Parallel: 0 when every job succeeded, else the number of failed jobs
(1-253), 254 for more than 253 (newer GNU Parallel releases cap at 101 instead). With
``--halt ...,fail=1`` it is the failing job's own exit status; with a percentage (``fail=Y%`` or
``success=Y%``) it is the percentage of jobs that failed, rounded up; a met ``success`` condition
exits 0. A job fails when its exit value or its signal is non-zero (a timeout counts).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HaltSpec", "HaltTracker", "exit_code_of", "parse_halt"]

_LEGACY = {
    "0": "never",
    "1": "soon,fail=1",
    "2": "now,fail=1",
    "-1": "soon,success=1",
    "-2": "now,success=1",
}
_FORMS = "never, now|soon,fail|success|done=N or =N%, or 0, 1, 2, -1, -2, 1-99%"


@dataclass(frozen=True)
class HaltSpec:
    """``when`` is "never", "soon" (start no new job) or "now" (also kill running ones)."""

    when: str = "never"
    why: str = "fail"
    count: int = 1
    percent: bool = False


def parse_halt(text: str) -> HaltSpec:
    """Parse a ``--halt`` value such as ``now,fail=1``, ``soon,fail=20%`` or ``2``."""
    spec = _LEGACY.get(text, text)
    if spec.endswith("%") and "," not in spec:
        spec = f"soon,fail={spec}"
    if spec == "never":
        return HaltSpec()
    when, _, condition = spec.partition(",")
    why, _, amount = condition.partition("=")
    percent = amount.endswith("%")
    digits = amount[:-1] if percent else amount
    if (
        when not in ("now", "soon")
        or why not in ("fail", "success", "done")
        or not digits.isdigit()
    ):
        msg = f"--halt {text!r} is not valid; expected {_FORMS}"
        raise ValueError(msg)
    count = int(digits)
    if count < 1 or (percent and count > 100):
        msg = f"--halt {text!r}: the count must be >= 1 (a percentage 1-100)"
        raise ValueError(msg)
    return HaltSpec(when, why, count, percent)


def exit_code_of(exitval: int, signal: int) -> int:
    """A job's status as a shell reports it: 128+signal when killed, 255 for -1 (timeout)."""
    if exitval < 0:
        return 255
    return 128 + signal if signal else exitval


class HaltTracker:
    """Counts finished jobs against a ``HaltSpec`` (not thread-safe: callers hold a lock)."""

    def __init__(self, spec: HaltSpec, total: int | None) -> None:
        if spec.percent and total is None:
            msg = "a --halt percentage needs the number of jobs, which is not known here"
            raise ValueError(msg)
        self.spec = spec
        self.total = total
        self.failed = self.succeeded = 0
        self.first_failure = 0
        self.halted = False

    def record(self, exitval: int, signal: int) -> str | None:
        """Count one finished job; return "soon" or "now" when this job triggers the halt."""
        if exitval or signal:
            self.failed += 1
            if not self.first_failure:
                self.first_failure = exit_code_of(exitval, signal)
        else:
            self.succeeded += 1
        if self.halted or self.spec.when == "never" or not self._reached():
            return None
        self.halted = True
        return self.spec.when

    def _reached(self) -> bool:
        spec = self.spec
        seen = {"fail": self.failed, "success": self.succeeded}
        count = seen.get(spec.why, self.failed + self.succeeded)
        if spec.percent:
            return count * 100 >= spec.count * (self.total or 0)
        return count >= spec.count

    def exit_status(self) -> int:
        """The process exit status for the run so far (see the module docstring)."""
        spec = self.spec
        if self.halted and spec.why == "success":
            return 0
        if spec.percent and spec.why in ("fail", "success"):
            total = max(self.total or 0, 1)
            return -(-self.failed * 100 // total)
        if self.halted and spec.why == "fail" and spec.count == 1:
            return self.first_failure
        return self.failed if self.failed <= 253 else 254
