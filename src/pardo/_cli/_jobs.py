"""Run one job: its command in a shell, in its own process group, with timeout, retries and capture.

``run_job`` is the task pardo's ``Parallel`` runs for each job. It is a module-level function of
plain frozen dataclasses, so it pickles by reference and also runs on dask workers (``--dask``),
where ``control`` is None: no slots, no halting from inside, no killing from pardo's side.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass

from pardo._cli._control import KILL_GRACE_SECONDS, JobControl, signal_group
from pardo._cli._template import Template

__all__ = ["Job", "JobResult", "JobSettings", "run_job", "run_once", "terminate"]


@dataclass(frozen=True)
class Job:
    """One row of the grid: ``index`` is its place in the run (for ``-k``), ``seq`` its ``{#}``."""

    index: int
    seq: int
    values: tuple[str, ...]


@dataclass(frozen=True)
class JobSettings:
    """What every job of a run shares."""

    template: Template
    shell: str
    timeout: float | None = None
    retries: int = 0
    n_slots: int = 1
    remote: bool = False


@dataclass(frozen=True)
class JobResult:
    """A finished job. ``status`` is "done", "skipped" (never started) or "killed" (by pardo)."""

    job: Job
    command: str = ""
    status: str = "done"
    host: str = ":"
    start: float = 0.0
    runtime: float = 0.0
    exitval: int = 0
    signal: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False

    @property
    def failed(self) -> bool:
        return self.exitval != 0 or self.signal != 0


def run_job(job: Job, settings: JobSettings, control: JobControl | None) -> JobResult:
    """Run ``job`` (up to ``max(retries, 1)`` times, as GNU Parallel counts) and report it."""
    slot = (job.index % settings.n_slots) + 1 if control is None else control.begin()
    if slot is None:
        return JobResult(job, status="skipped")
    try:
        command = settings.template.expand(job.values, job.seq, slot)
        result = JobResult(job, status="skipped")
        for _ in range(max(settings.retries, 1)):
            if control is not None and control.stopping:
                break
            result = run_once(job, command, slot, settings, control)
            if result.status != "done" or not result.failed:
                break
        if control is not None and result.status == "done":
            control.record(result.exitval, result.signal)
        return result
    finally:
        if control is not None:
            control.end(slot)


def _environment(job: Job, slot: int, extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    # GNU Parallel's names too, so scripts written for it keep working.
    env["PARDO_SEQ"] = env["PARALLEL_SEQ"] = str(job.seq)
    env["PARDO_SLOT"] = env["PARALLEL_JOBSLOT"] = str(slot)
    return env


def run_once(
    job: Job,
    command: str,
    slot: int,
    settings: JobSettings,
    control: JobControl | None,
    extra_env: Mapping[str, str] | None = None,
) -> JobResult:
    """One attempt of ``job`` here; ``extra_env`` adds variables (``$PARALLEL_SSHLOGIN``)."""
    host = socket.gethostname() if settings.remote else ":"
    start, began = time.time(), time.monotonic()
    proc = subprocess.Popen(
        [settings.shell, "-c", command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=_environment(job, slot, extra_env),
    )
    waited = wait_for(proc, control, settings.timeout)
    stdout, stderr, killed, timed_out = (
        waited.stdout,
        waited.stderr,
        waited.killed,
        waited.timed_out,
    )
    runtime = time.monotonic() - began
    code = proc.returncode
    exitval, sig = (0, -code) if code < 0 else (code, 0)
    if timed_out:
        exitval, sig = -1, sig or signal.SIGTERM
    status = "killed" if killed and not timed_out else "done"
    return JobResult(
        job, command, status, host, start, runtime, exitval, sig, stdout, stderr, timed_out
    )


@dataclass(frozen=True)
class Waited:
    """How a started job's process ended: what it printed, and whether pardo stopped it."""

    stdout: bytes
    stderr: bytes
    killed: bool
    timed_out: bool


def wait_for(
    proc: subprocess.Popen[bytes], control: JobControl | None, timeout: float | None
) -> Waited:
    """Wait for a job's process (here, or ssh to a node) under ``control``, so that Ctrl-C and
    ``--halt`` can stop it, and ``--timeout``; it is never left running past an exception."""
    killed = timed_out = False
    try:
        if control is not None and not control.adopt(proc):
            stdout, stderr = terminate(proc)
            killed = True
        else:
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                stdout, stderr = terminate(proc)
    except BaseException:  # Ctrl-C in the caller's thread (-j 1): never leave the job running
        terminate(proc)
        raise
    finally:
        if control is not None:
            killed = control.release(proc) or killed
    return Waited(stdout, stderr, killed, timed_out)


def terminate(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """SIGTERM the job's group, SIGKILL it after a grace period; return what it printed."""
    signal_group(proc, signal.SIGTERM)
    try:
        return proc.communicate(timeout=KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        signal_group(proc, signal.SIGKILL)
    try:
        return proc.communicate(timeout=KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        # Something escaped the group (setsid) and holds the pipes: give up on its output.
        proc.kill()
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        return b"", b""
