"""A run with ``-S``/``--sshloginfile``: the host pool opened and closed around it, its tasks,
its per-host ``--bar`` and the per-host summary at the end.

``open_remote`` parses the sshlogins, makes pardo's ControlMaster socket directory (short, under
/tmp), connects to every host and yields a ``RemoteRun``; on the way out, even after an error or
Ctrl-C, it removes basefiles (``--cleanup``), closes every master connection and the directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shlex
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import psutil

from pardo._cli._args import CliOptions, UsageError, resolve_jobs
from pardo._cli._control import JobControl
from pardo._cli._hosts import Host, HostPool, HostState
from pardo._cli._jobs import Job, JobResult, JobSettings
from pardo._cli._remote import make_token
from pardo._cli._remotejob import RemoteRun, connect_host, run_remote_job
from pardo._cli._ssh import SshCommand
from pardo._cli._transfer import Staging
from pardo._sshlogin import read_sshlogins

__all__ = ["Opened", "RemoteFeed", "open_remote", "remote_bar", "remote_ending"]


@dataclass(frozen=True)
class Opened:
    """The run's hosts, up or down, and how many job threads they need."""

    run: RemoteRun
    threads: int


_PREFIX = "pardo-ssh-"


def _remove_orphans(base: str) -> None:
    """Socket directories of pardo runs that were killed (SIGKILL skips their cleanup)."""
    for path in glob.glob(os.path.join(base, f"{_PREFIX}*-*")):
        pid = os.path.basename(path)[len(_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _program(opts: CliOptions) -> tuple[str, ...]:
    text = opts.remote.ssh or os.environ.get("PARALLEL_SSH") or "ssh"
    return tuple(shlex.split(text))


@contextlib.contextmanager
def open_remote(opts: CliOptions, total: int | None, stderr: IO[bytes]) -> Iterator[Opened]:
    """Connect to the hosts of ``opts`` (see the module docstring)."""
    remote = opts.remote
    try:
        logins = read_sshlogins(remote.sshlogins, remote.sshloginfiles)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    staging = Staging(remote.workdir, remote.basefiles, remote.transfers, remote.returns,
                      remote.cleanup)  # fmt: skip
    try:
        staging.check()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    for name in remote.env:
        if not name.isidentifier():
            raise UsageError(f"--env {name!r} is not a variable name")
    program = _program(opts)
    base = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
    _remove_orphans(base)
    control_dir = (
        tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=base)
        if remote.controlmaster
        else None
    )
    hosts = [
        Host(login, None if login.local else SshCommand(login, program),
             slots=resolve_jobs(opts.jobs, total, login.cpus) if login.cpus else 1)
        for login in logins
    ]  # fmt: skip

    def slots_for(cpus: int) -> int:
        return resolve_jobs(opts.jobs, total, cpus)

    pool = HostPool(
        hosts, lambda host: connect_host(host, staging, program, control_dir), slots_for, stderr
    )
    run = RemoteRun(pool, staging, make_token(), remote.env)
    try:
        threads = pool.start()
        yield Opened(run, threads)
    finally:

        def finish(host: Host) -> None:
            if host.ssh is not None:
                staging.clean_basefiles(host.ssh)

        pool.close(finish)
        if control_dir is not None:
            shutil.rmtree(control_dir, ignore_errors=True)


class RemoteFeed:
    """The tasks for ``Parallel``: each job once, or once per host with --onall/--nonall."""

    def __init__(
        self,
        jobs: Iterable[Job],
        settings: JobSettings,
        control: JobControl,
        run: RemoteRun,
        every_host: bool,
        count: int | None,
    ) -> None:
        self._jobs = jobs
        self._settings = settings
        self._control = control
        self._run = run
        self._every_host = every_host
        names = [host.name for host in run.pool.hosts]
        self._pins: list[str | None] = list(names) if every_host else [None]
        self._count = None if count is None else count * len(self._pins)

    def __iter__(self) -> Iterator[tuple[Any, tuple[Any, ...], dict[str, Any]]]:
        width = len(self._pins)
        for job in self._jobs:
            for offset, pin in enumerate(self._pins):
                if self._control.stopping or self._run.pool.exhausted:
                    return
                pinned = Job(job.index * width + offset, job.seq, job.values) if width > 1 else job
                args = (pinned, self._settings, self._control, self._run, pin)
                yield run_remote_job, args, {}

    def __len__(self) -> int:
        if self._count is None:
            raise TypeError("the number of jobs is not known")
        return self._count


def remote_bar(
    results: Iterator[JobResult], pool: HostPool, total: int | None, stderr: IO[bytes]
) -> Iterator[JobResult]:
    """Pass ``results`` through, drawing a tqdm bar whose postfix is every host's running, done,
    failed count or "down", refreshed twice a second."""
    from tqdm import tqdm

    bar = tqdm(total=total, file=_TextStream(stderr), unit="job", dynamic_ncols=True)
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(0.5):
            bar.set_postfix_str(pool.counts())

    ticker = threading.Thread(target=refresh, name="pardo-bar", daemon=True)
    ticker.start()
    try:
        for result in results:
            if result.status == "done":
                bar.update(1)
            bar.set_postfix_str(pool.counts())
            yield result
    finally:
        stop.set()
        ticker.join()
        bar.close()


class _TextStream:
    """tqdm writes text; pardo's stderr takes bytes."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(text.encode("utf-8", "replace"))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def remote_ending(pool: HostPool, total: int | None) -> tuple[list[str], bool]:
    """The lines to print after the run (the per-host summary, and when no host was left,
    which and why) and whether no host was left."""
    lines = ["per-host summary:"] + [f"  {line}" for line in pool.summary()]
    if pool.exhausted:
        ran = sum(h.stats.done + h.stats.failed for h in pool.hosts)
        left = f"; {total - ran} of {total} jobs not run" if total is not None else ""
        why = "; ".join(
            f"{h.login.label}: {h.reason}" for h in pool.hosts if h.state is HostState.DOWN
        )
        lines.append(f"no host left: {why}{left}")
    return lines, pool.exhausted
