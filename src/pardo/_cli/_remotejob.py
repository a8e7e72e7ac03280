"""One job of a run with ``-S``: pick a host, stage its files, run it there, bring results back.

``run_remote_job`` is the task pardo's ``Parallel`` runs per job when hosts are given. A failed
connection (before the job started, or lost while it ran, or while its files moved) is the
node's failure, not the job's: the host is marked down and the job goes to another host
without using one of its ``--retries``. A job that fails is retried on a host where it has not
failed yet when there is one. ``connect_host`` brings a host up for the pool: its master
connection, its CPU count (``N/`` or ``nproc``/``getconf`` asked on the node) and its basefiles.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pardo._cli._control import JobControl
from pardo._cli._hosts import Host, HostPool
from pardo._cli._jobs import Job, JobResult, JobSettings, run_once, wait_for
from pardo._cli._remote import read_report, wrapper
from pardo._cli._ssh import CONNECT_SECONDS, Master, SshCommand
from pardo._cli._transfer import Staging
from pardo._config import cpu_count

__all__ = ["RemoteRun", "connect_host", "run_remote_job"]

_CPU_PROBE = "nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1"


@dataclass(frozen=True)
class RemoteRun:
    """What every remote job of a run shares."""

    pool: HostPool
    staging: Staging
    token: str
    env_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class _NodeFailure:
    reason: str


def _last_line(data: bytes, default: str) -> str:
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1] if lines else default


def connect_host(
    host: Host, staging: Staging, program: tuple[str, ...], control_dir: str | None
) -> str | None:
    """Bring ``host`` up; None, or why it is down. Runs while the host is down, so no job uses
    ``host.ssh`` meanwhile."""
    if host.login.local:
        host.cpus = host.login.cpus or cpu_count()
        return None
    master_error = ""
    if host.master is not None:
        host.master.close()
        host.master = None
    host.ssh = SshCommand(host.login, program)
    if control_dir is not None:
        path = os.path.join(control_dir, host.login.host[:20] + f"-{abs(hash(host.name)) % 10**6}")
        master = Master(SshCommand(host.login, program, path))
        if master.start():
            host.master = master
            host.ssh = SshCommand(host.login, program, path)
        else:
            master_error = master.error
    try:
        probe = subprocess.run(
            host.ssh.run(_CPU_PROBE),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=CONNECT_SECONDS + 5,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        return f"no answer within {CONNECT_SECONDS + 5} s"
    words = probe.stdout.split()
    if probe.returncode != 0 or not words or not words[0].isdigit():
        if host.master is not None:
            host.master.close()
            host.master = None
        return _last_line(probe.stderr, master_error or f"ssh exited {probe.returncode}")
    host.cpus = host.login.cpus or int(words[0])
    step = staging.send_basefiles(host.ssh)
    if step.code:
        return f"copying --basefile failed: {_last_line(step.stderr, f'rsync exited {step.code}')}"
    return None


def run_remote_job(
    job: Job, settings: JobSettings, control: JobControl, remote: RemoteRun, pin: str | None
) -> JobResult:
    """Run ``job`` on the pool's hosts (only on ``pin`` for ``--onall``/``--nonall``)."""
    slot = control.begin()
    if slot is None:
        return JobResult(job, status="skipped")
    try:
        command = settings.template.expand(job.values, job.seq, slot)
        result = JobResult(job, command, status="skipped")
        failed_on: list[str] = []
        tries = 0
        while tries < max(settings.retries, 1) and not control.stopping:
            host = remote.pool.acquire(failed_on, pin, lambda: control.stopping)
            if host is None:
                break  # stopping, or no host left (the pool says which)
            outcome = "killed"
            try:
                attempt = _attempt(job, command, slot, host, settings, control, remote)
                if isinstance(attempt, _NodeFailure):
                    outcome = "requeued"
                    remote.pool.mark_down(host, attempt.reason)
                    continue
                result = attempt
                if result.status == "done":
                    outcome = "failed" if result.failed else "done"
            finally:
                remote.pool.release(host, outcome)
            tries += 1
            if result.status != "done" or not result.failed:
                break
            failed_on.append(host.name)
        if result.status == "done":
            control.record(result.exitval, result.signal)
        return result
    finally:
        control.end(slot)


def _environment(job: Job, slot: int, host: Host, names: Sequence[str]) -> dict[str, str]:
    env = {name: os.environ[name] for name in names if name in os.environ}
    env["PARDO_SEQ"] = env["PARALLEL_SEQ"] = str(job.seq)
    env["PARDO_SLOT"] = env["PARALLEL_JOBSLOT"] = str(slot)
    env["PARDO_SSHLOGIN"] = env["PARALLEL_SSHLOGIN"] = host.name
    env["PARALLEL_SSHHOST"] = host.login.host or ":"
    return env


def _attempt(
    job: Job,
    command: str,
    slot: int,
    host: Host,
    settings: JobSettings,
    control: JobControl,
    remote: RemoteRun,
) -> JobResult | _NodeFailure:
    env = _environment(job, slot, host, remote.env_names)
    if host.ssh is None or host.login.local:
        return run_once(job, command, slot, settings, control, env)
    ssh, staging = host.ssh, remote.staging
    workdir = staging.job_workdir(host.name, job.values, job.seq, slot)
    start, began = time.time(), time.monotonic()
    sent = staging.send(ssh, workdir, job.values, job.seq, slot)
    if sent.connection_failed:
        return _NodeFailure(_last_line(sent.stderr, "rsync could not connect"))
    if sent.code:
        return JobResult(
            job, command, "done", host.name, start, 0.0, sent.code, 0, b"", sent.stderr
        )
    script = wrapper(command, remote.token, workdir, env)
    # The job's stdin on the node is this pipe's read end; its write end stays open while the
    # job runs. When it closes (the job is stopped, pardo exits or dies) the node kills the job.
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen(
            ssh.run(script),
            stdin=read_end,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    finally:
        os.close(read_end)
    try:
        waited = wait_for(proc, control, settings.timeout)
    finally:
        os.close(write_end)
    stdout, stderr, killed, timed_out = (
        waited.stdout,
        waited.stderr,
        waited.killed,
        waited.timed_out,
    )
    runtime = time.monotonic() - began
    report = read_report(stderr, remote.token)
    if killed and not timed_out:
        return JobResult(
            job,
            command,
            "killed",
            host.name,
            start,
            runtime,
            -1,
            signal.SIGTERM,
            stdout,
            report.stderr,
        )
    if timed_out:
        staging.clean(ssh, workdir, job.values, job.seq, slot)
        return JobResult(
            job, command, "done", host.name, start, runtime, -1, signal.SIGTERM, stdout,
            report.stderr, timed_out=True,
        )  # fmt: skip
    if report.status is None:
        what = "lost while the job ran" if report.started else "failed"
        return _NodeFailure(f"connection {what}: {_last_line(report.stderr, 'ssh exited 255')}")
    err = report.stderr
    fetched = staging.fetch(ssh, workdir, job.values, job.seq, slot)
    if fetched.connection_failed:
        return _NodeFailure(f"--return failed: {_last_line(fetched.stderr, 'rsync exited 255')}")
    err += fetched.stderr
    staging.clean(ssh, workdir, job.values, job.seq, slot)
    runtime = time.monotonic() - began
    return JobResult(job, command, "done", host.name, start, runtime, report.status, 0, stdout, err)
