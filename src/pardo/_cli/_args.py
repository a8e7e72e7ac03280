"""The command line, parsed: ``pardo [options] [command ...] [::: values ...]``.

Options come first and stop at the first word that is not one (or at ``--``); the rest up to the
first separator (``:::``, ``:::+``, ``::::``, ``::::+``) is the command. Usage errors raise
``UsageError``, which the entry point turns into exit status 255, as GNU Parallel does.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field

from pardo._cli._halt import HaltSpec, parse_halt
from pardo._cli._inputs import SEPARATORS, SourceSpec, split_sources

__all__ = ["CliOptions", "RemoteOptions", "UsageError", "parse_args", "resolve_jobs"]

#: Ceiling for ``-j 0``. GNU Parallel stops at its free file handles; jobs here hold 2 pipes
#: each, so 250 stays well inside the common ``ulimit -n`` of 1024.
MAX_JOBS = 250


_EPILOG = """\
example:
  pardo python train.py --gamma {1} --c {2} ::: 0.1 1 ::: 1 10

Without ::: or :::: the values are the lines of stdin. Replacement strings:
{} {1} {.} {/} {//} {/.} {#} {%} {name}. `pardo demo` runs a demo of the Python API.
"""


class UsageError(Exception):
    """A bad command line; the message says what is wrong."""


@dataclass(frozen=True)
class RemoteOptions:
    """The options for jobs on other machines (``-S`` and friends), as given."""

    sshlogins: tuple[str, ...] = ()
    sshloginfiles: tuple[str, ...] = ()
    workdir: str = ""
    basefiles: tuple[str, ...] = ()
    transfers: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()
    cleanup: bool = False
    env: tuple[str, ...] = ()
    ssh: str | None = None
    controlmaster: bool = True
    onall: bool = False
    nonall: bool = False

    @property
    def wanted(self) -> bool:
        return bool(self.sshlogins or self.sshloginfiles)


@dataclass(frozen=True)
class CliOptions:
    """Everything the command line asked for."""

    command: tuple[str, ...]
    sources: tuple[SourceSpec, ...]
    jobs: str | None = None
    keep_order: bool = False
    dry_run: bool = False
    tag: bool = False
    bar: bool = False
    timeout: float | None = None
    retries: int = 0
    halt: HaltSpec = field(default_factory=HaltSpec)
    joblog: str | None = None
    resume: bool = False
    resume_failed: bool = False
    results: str | None = None
    delay: float = 0.0
    shuf: bool = False
    dask: str | None = None
    header: bool = False
    remote: RemoteOptions = field(default_factory=RemoteOptions)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        msg = f"{text!r} is not a number of seconds > 0"
        raise argparse.ArgumentTypeError(msg)
    return value


def _count(text: str) -> int:
    if not text.isdigit():
        msg = f"{text!r} is not a whole number >= 0"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def _parser() -> _Parser:
    p = _Parser(
        prog="pardo",
        usage="pardo [options] [command ...] [::: values ...] [:::+ values ...] [:::: file ...]",
        allow_abbrev=False,
        description="Run a shell command for every combination of arguments, in parallel.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = p.add_argument
    add("-j", "--jobs", metavar="N", help="jobs at once: N, N%% of the CPUs, +N, -N, 0 = max")
    add("-k", "--keep-order", action="store_true", help="print output in input order")
    add("--dry-run", action="store_true", help="print the commands, run nothing")
    add("--tag", action="store_true", help="prefix output lines with the job's arguments")
    add("--bar", "--progress", dest="bar", action="store_true", help="show a progress bar")
    add("--timeout", type=_seconds, metavar="SECS", help="kill a job running longer")
    add("--retries", type=_count, default=0, metavar="N", help="run a failing job up to N times")
    add("--halt", default="never", metavar="WHEN,WHY=N", help="e.g. now,fail=1 or soon,fail=10%%")
    add("--joblog", metavar="[+]FILE", help="log each job (GNU Parallel's format); + appends")
    add("--resume", action="store_true", help="skip the jobs already in --joblog")
    add("--resume-failed", action="store_true", help="skip the jobs that succeeded in --joblog")
    add("--results", metavar="DIR", help="save each job's stdout/stderr under DIR")
    add("--delay", type=_seconds, default=0.0, metavar="SECS", help="pause between job starts")
    add("--shuf", action="store_true", help="run the jobs in random order")
    add("--dask", metavar="ADDRESS", help="run the jobs on this dask scheduler")
    add("--header", metavar=":", help="use each source's first value as its name: {name}")
    group = p.add_argument_group("several machines (over ssh)")
    add = group.add_argument
    add(
        "-S",
        "--sshlogin",
        action="append",
        default=[],
        metavar="[N/][user@]host[:port]",
        help="run jobs there (':' = here); repeatable, comma-separated",
    )
    add(
        "--slf",
        "--sshloginfile",
        action="append",
        default=[],
        metavar="FILE",
        help="sshlogins, one a line ('..' = ~/.parallel/sshloginfile)",
    )
    add(
        "--wd",
        "--workdir",
        default="",
        metavar="DIR",
        help="job directory on the node ('...' = a fresh one per job)",
    )
    add(
        "--bf",
        "--basefile",
        action="append",
        default=[],
        metavar="FILE",
        help="copy FILE to every node before its first job",
    )
    add(
        "--tf",
        "--transferfile",
        action="append",
        default=[],
        metavar="FILE",
        help="copy FILE ({} etc. allowed) to the node before each job",
    )
    add("--transfer", action="store_true", help="the same as --tf {}")
    add(
        "--return",
        dest="returns",
        action="append",
        default=[],
        metavar="FILE",
        help="bring FILE back after each job",
    )
    add("--cleanup", action="store_true", help="remove transferred and returned files on the node")
    add(
        "--trc",
        action="append",
        default=[],
        metavar="FILE",
        help="--transfer --return FILE --cleanup",
    )
    add("--env", action="append", default=[], metavar="VAR", help="copy VAR to the node's jobs")
    add("--ssh", metavar="CMD", help="the ssh command (default $PARALLEL_SSH or ssh)")
    add(
        "-M",
        "--controlmaster",
        action="store_true",
        help="one multiplexed connection per host (the default)",
    )
    add("--no-controlmaster", action="store_true", help="a new ssh connection per job")
    add("--onall", action="store_true", help="run every job on every host")
    add("--nonall", action="store_true", help="run the command, without values, once per host")
    add("--filter-hosts", action="store_true", help="accepted: down hosts are always left out")
    add = p.add_argument
    add("--version", action="version", version=_version())
    add("command", nargs=argparse.REMAINDER, help="command and its arguments")
    return p


def _version() -> str:
    from pardo import __version__

    return f"pardo {__version__}"


def parse_args(argv: Sequence[str]) -> CliOptions:
    """Parse ``argv`` (without the program name)."""
    argv = list(argv)
    cut = next((i for i, word in enumerate(argv) if word in SEPARATORS), len(argv))
    head, tail = argv[:cut], argv[cut:]
    ns = _parser().parse_args(head)
    command = list(ns.command)
    if command[:1] == ["--"]:
        command.pop(0)
    if ns.header not in (None, ":"):
        msg = f"--header {ns.header!r} is not supported; use --header : (first value = name)"
        raise UsageError(msg)
    if (ns.resume or ns.resume_failed) and not ns.joblog:
        raise UsageError("--resume and --resume-failed need --joblog FILE")
    try:
        sources = split_sources(tail)
        halt = parse_halt(ns.halt)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if ns.jobs is not None:
        resolve_jobs(ns.jobs, None, 1)  # reject a bad -j before anything runs
    remote = _remote(ns)
    if remote.nonall and sources:
        raise UsageError("--nonall runs the command once per host and takes no ::: values")
    if (remote.onall or remote.nonall) and not remote.wanted:
        raise UsageError("--onall and --nonall need hosts: -S or --sshloginfile")
    if remote.wanted and ns.dask is not None:
        raise UsageError("-S/--sshloginfile and --dask cannot be combined; pick one")
    return CliOptions(
        tuple(command), tuple(sources), ns.jobs, ns.keep_order, ns.dry_run, ns.tag, ns.bar,
        ns.timeout, ns.retries, halt, ns.joblog, ns.resume, ns.resume_failed, ns.results,
        ns.delay, ns.shuf, ns.dask, ns.header is not None, remote,
    )  # fmt: skip


def _remote(ns: argparse.Namespace) -> RemoteOptions:
    transfers = list(ns.tf)
    if ns.transfer or ns.trc:
        transfers.append("{}")
    return RemoteOptions(
        tuple(ns.sshlogin), tuple(ns.slf), ns.wd, tuple(ns.bf), tuple(transfers),
        tuple(ns.returns) + tuple(ns.trc), ns.cleanup or bool(ns.trc), tuple(ns.env), ns.ssh,
        not ns.no_controlmaster, ns.onall, ns.nonall,
    )  # fmt: skip


def resolve_jobs(spec: str | None, total: int | None, cpus: int) -> int:
    """Jobs to run at once for ``-j spec``: N, N% of ``cpus``, +N/-N around it, 0 = as many as
    there are jobs (up to ``MAX_JOBS``); the default is one per CPU."""
    text = (spec or "100%").strip()
    number = text[1:] if text[:1] in "+-" else text
    number = number[:-1] if number.endswith("%") else number
    if not number.isdigit() or (text[:1] in "+-" and text.endswith("%")):
        msg = f"-j {spec!r} is not valid; expected N, N%, +N, -N or 0"
        raise UsageError(msg)
    value = int(number)
    if text.endswith("%"):
        return max(1, cpus * value // 100)
    if text[0] == "+":
        return cpus + value
    if text[0] == "-":
        return max(1, cpus - value)
    if value == 0:
        return max(1, min(total if total is not None else MAX_JOBS, MAX_JOBS))
    return value
