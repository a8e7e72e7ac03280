"""One ``pardo`` run: build the jobs, run them with ``Parallel``, print, log, pick the exit status.

Jobs run on pardo's own engine: ``Parallel(backend="threading", return_as="generator_unordered")``
with one job per task, each job a subprocess in its own session (see ``pardo._cli._jobs``). With
``--dask ADDRESS`` the same tasks run on a dask cluster through ``parallel_config``. This thread
alone prints, writes the joblog and the ``--results`` files, so nothing interleaves.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from pardo._cli._args import CliOptions, UsageError, resolve_jobs
from pardo._cli._control import JobControl
from pardo._cli._halt import HaltSpec, HaltTracker
from pardo._cli._inputs import open_inputs
from pardo._cli._joblog import JobLog, JoblogRow, completed_seqs, split_name
from pardo._cli._jobs import Job, JobResult, JobSettings, run_job
from pardo._cli._output import Printer, save_results
from pardo._cli._process import signals_interrupt
from pardo._cli._template import Template
from pardo._config import cpu_count
from pardo._parallel import Parallel
from pardo._parallel_config import parallel_config

__all__ = ["run"]

#: Exit status for errors other than failed jobs (and for Ctrl-C), as in GNU Parallel.
OTHER_ERROR = 255
_POSIX_SHELLS = ("sh", "bash", "dash", "zsh", "ksh", "mksh")


def _shell() -> str:
    """``$PARDO_SHELL``, else the user's ``$SHELL`` when it quotes like sh, else /bin/sh."""
    chosen = os.environ.get("PARDO_SHELL")
    if chosen:
        return chosen
    user = os.environ.get("SHELL", "")
    return user if os.path.basename(user) in _POSIX_SHELLS else "/bin/sh"


def _number(rows: Iterable[tuple[str, ...]], skip: set[int]) -> Iterator[Job]:
    index = 0
    for seq, values in enumerate(rows, start=1):
        if seq not in skip:
            yield Job(index, seq, values)
            index += 1


def _plan(
    opts: CliOptions, stdin: IO[str]
) -> tuple[Template, list[str], Iterable[Job], int | None]:
    """The template, the source names, the jobs to run (lazy when streaming) and their count."""
    try:
        inputs = open_inputs(opts.sources, opts.header, stdin)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    template = Template.parse(opts.command, inputs.names)
    rows: Iterable[tuple[str, ...]] = inputs.rows
    if opts.shuf:
        rows = list(rows)
        random.shuffle(rows)
    skip: set[int] = set()
    if opts.resume or opts.resume_failed:
        skip = completed_seqs(split_name(opts.joblog or "")[0], failed_too=opts.resume)
    jobs: Iterable[Job] = _number(rows, skip)
    needs_count = opts.halt.percent or (opts.jobs or "").strip() == "0"
    if not inputs.streaming or needs_count:
        jobs = list(jobs)
    by_position = {position: name for name, position in inputs.names.items()}
    names = [by_position.get(i, str(i)) for i in range(1, _width(opts) + 1)]
    return template, names, jobs, len(jobs) if isinstance(jobs, list) else None


def _width(opts: CliOptions) -> int:
    return max(len(opts.sources), 1)


class _Feed:
    """The tasks for ``Parallel``; stops early once the run halts (so stdin is read no further)."""

    def __init__(
        self, jobs: Iterable[Job], settings: JobSettings, control: JobControl, local: bool
    ) -> None:
        self._jobs = jobs
        self._settings = settings
        self._control = control
        self._local = local

    def __iter__(self) -> Iterator[tuple[Any, tuple[Any, ...], dict[str, Any]]]:
        shared = self._control if self._local else None
        for job in self._jobs:
            if self._control.stopping:
                return
            yield run_job, (job, self._settings, shared), {}


class _SizedFeed(_Feed):
    """A feed whose length ``Parallel`` can read (for the progress bar's total)."""

    def __init__(
        self, jobs: list[Job], settings: JobSettings, control: JobControl, local: bool
    ) -> None:
        super().__init__(jobs, settings, control, local)
        self._count = len(jobs)

    def __len__(self) -> int:
        return self._count


def _parallel(n_jobs: int, opts: CliOptions) -> Parallel:
    kwargs: dict[str, Any] = {"n_jobs": n_jobs, "return_as": "generator_unordered"}
    # One job per task: jobs are processes (milliseconds at least), and a batch would hold
    # queued jobs back behind a slow one and delay --halt and Ctrl-C.
    kwargs["batch_size"] = 1
    if opts.dask is None:
        kwargs["backend"] = "threading"
    if opts.bar:
        kwargs["progress"] = True
    return Parallel(**kwargs)


def _dask_context(address: str | None) -> contextlib.AbstractContextManager[Any]:
    if address is None:
        return contextlib.nullcontext()
    try:
        import pardo.backends._dask  # noqa: F401 - only checks that the backend is there
    except ImportError as exc:
        msg = (
            f"--dask needs pardo's dask backend and distributed ({exc}): pip install 'pardo[dask]'"
        )
        raise UsageError(msg) from exc
    return parallel_config(backend="dask", scheduler_address=address)


def run(opts: CliOptions, stdin: IO[str], stdout: IO[bytes], stderr: IO[bytes]) -> int:
    """Run (or with ``--dry-run`` print) every job; return the exit status."""
    if not opts.sources and stdin.isatty():
        stderr.write(b"pardo: reading values from the terminal, one a line (Ctrl-D ends)\n")
    template, names, jobs, total = _plan(opts, stdin)
    n_jobs = resolve_jobs(opts.jobs, total, cpu_count())
    if opts.dry_run:
        for job in jobs:
            line = template.expand(job.values, job.seq, job.index % n_jobs + 1)
            stdout.write(line.encode("utf-8", "surrogateescape") + b"\n")
        stdout.flush()
        return 0
    if opts.remote.wanted:
        return _run_remote(opts, template, names, jobs, total, stdout, stderr)
    if opts.dask is not None and opts.jobs is None:
        n_jobs = -1  # every thread of every dask worker
    tracker = HaltTracker(opts.halt, total)
    control = JobControl(max(n_jobs, 1), tracker, opts.delay)
    settings = JobSettings(
        template, _shell(), opts.timeout, opts.retries, max(n_jobs, 1), opts.dask is not None
    )
    local = opts.dask is None
    feed = (
        _SizedFeed(jobs, settings, control, local)
        if isinstance(jobs, list)
        else _Feed(jobs, settings, control, local)
    )
    joblog = JobLog(opts.joblog, opts.resume or opts.resume_failed) if opts.joblog else None
    printer = Printer(stdout, stderr, opts.keep_order, opts.tag)
    try:
        with _dask_context(opts.dask), signals_interrupt():
            parallel = _parallel(n_jobs, opts)
            interrupted = _consume(lambda: parallel(feed), opts, names, control, joblog, printer)
    finally:
        printer.finish()
        if joblog is not None:
            joblog.close()
    return _ending(interrupted, tracker, printer)


def _ending(interrupted: bool, tracker: HaltTracker, printer: Printer) -> int:
    if interrupted:
        printer.note("interrupted: the running jobs were stopped")
        return OTHER_ERROR
    if tracker.halted:
        printer.note(_halt_note(tracker))
    return tracker.exit_status()


def _run_remote(
    opts: CliOptions,
    template: Template,
    names: list[str],
    jobs: Iterable[Job],
    total: int | None,
    stdout: IO[bytes],
    stderr: IO[bytes],
) -> int:
    """The run with -S: the same engine, one thread per slot over all hosts (see _remoterun)."""
    from pardo._cli._remoterun import RemoteFeed, open_remote, remote_bar, remote_ending

    if opts.remote.nonall:
        jobs, total = [Job(0, 1, ())], 1
    every_host = opts.remote.onall or opts.remote.nonall
    printer = Printer(stdout, stderr, opts.keep_order, opts.tag)
    joblog = JobLog(opts.joblog, opts.resume or opts.resume_failed) if opts.joblog else None
    try:
        with signals_interrupt(), open_remote(opts, total, stderr) as opened:
            n_jobs = max(opened.threads, 1)
            pool = opened.run.pool
            hosts = len(pool.hosts) if every_host else 1
            tracker = HaltTracker(opts.halt, None if total is None else total * hosts)
            control = JobControl(n_jobs, tracker, opts.delay)
            settings = JobSettings(template, _shell(), opts.timeout, opts.retries, n_jobs)
            feed = RemoteFeed(jobs, settings, control, opened.run, every_host, total)
            parallel = Parallel(
                n_jobs=n_jobs, backend="threading", return_as="generator_unordered", batch_size=1
            )

            def start() -> Iterator[JobResult]:
                results: Iterator[JobResult] = parallel(feed)
                if opts.bar:
                    count = None if total is None else total * hosts
                    results = remote_bar(results, pool, count, stderr)
                return results

            local_opts = opts if not opts.bar else _without_bar(opts)
            interrupted = _consume(start, local_opts, names, control, joblog, printer)
            lines, exhausted = remote_ending(pool, None if total is None else total * hosts)
    finally:
        printer.finish()
        if joblog is not None:
            joblog.close()
    for line in lines:
        printer.note(line)
    status = _ending(interrupted, tracker, printer)
    return OTHER_ERROR if exhausted and not interrupted else status


def _without_bar(opts: CliOptions) -> CliOptions:
    import dataclasses

    return dataclasses.replace(opts, bar=False)


def _consume(
    start: Callable[[], Iterator[JobResult]],
    opts: CliOptions,
    names: list[str],
    control: JobControl,
    joblog: JobLog | None,
    printer: Printer,
) -> bool:
    """Handle every result as it arrives; True when Ctrl-C (or SIGTERM) stopped the run."""
    remote = opts.dask is not None
    results: Iterator[JobResult] | None = None
    try:
        results = start()  # with -j 1 the first jobs already run in here
        for result in results:
            _handle(result, opts, names, joblog, printer)
            # Remote jobs cannot count themselves against --halt: count them here.
            counted = remote and result.status == "done"
            if counted and control.record(result.exitval, result.signal) == "now":
                break
    except BaseException as exc:
        control.stop(kill=True)  # an error here must not leave jobs running behind it
        if isinstance(exc, KeyboardInterrupt):
            return True
        raise
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()
    return False


def _handle(
    result: JobResult, opts: CliOptions, names: list[str], joblog: JobLog | None, printer: Printer
) -> None:
    if result.status == "done":
        if result.timed_out:
            printer.note(f"job {result.job.seq} timed out after {opts.timeout} s: {result.command}")
        if joblog is not None:
            joblog.write(JoblogRow(
                result.job.seq, result.host, result.start, result.runtime, len(result.stdout),
                result.exitval, result.signal, result.command,
            ))  # fmt: skip
        if opts.results is not None:
            save_results(opts.results, names, result)
    printer.add(result)


def _halt_note(tracker: HaltTracker) -> str:
    spec: HaltSpec = tracker.spec
    amount = f"{spec.count}{'%' if spec.percent else ''}"
    return (
        f"halted by --halt {spec.when},{spec.why}={amount} "
        f"({tracker.failed} failed, {tracker.succeeded} succeeded)"
    )
