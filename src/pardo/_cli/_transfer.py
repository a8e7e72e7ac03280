"""Files to and from the nodes: ``--workdir``, ``--basefile``, ``--transferfile``, ``--return``,
``--cleanup``, all with rsync over the host's ssh.

Paths on a node are relative to the login directory. ``--workdir ...`` is a fresh directory per
job (``.pardo/tmp/<host>-<pid>-<seq>``), always removed after the job; ``--workdir .`` is the
local working directory taken relative to ``$HOME``. Transferred files keep their relative path
under the workdir; ``dir/./rest`` keeps only ``rest`` (rsync's ``--relative`` rule); absolute
paths stay absolute. A workdir under the local ``$HOME`` (``--workdir ~/x``) is taken relative to
it, since the node's home is elsewhere. Returned files land at the same relative path under the local working
directory. rsync's exit status 255 means the connection failed: a node failure, not the job's.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from pardo._cli._ssh import SshCommand
from pardo._cli._template import expand_name

__all__ = ["CONNECTION_FAILED", "Staging", "StepResult", "fresh_workdir"]

#: The exit status ssh and rsync give a failed connection.
CONNECTION_FAILED = 255
FRESH = "..."


@dataclass(frozen=True)
class StepResult:
    """One rsync or ssh step: its exit status and what it printed on stderr."""

    code: int
    stderr: bytes = b""

    @property
    def connection_failed(self) -> bool:
        return self.code == CONNECTION_FAILED


def fresh_workdir(host: str, seq: int) -> str:
    return f".pardo/tmp/{host.replace('/', '_')}-{os.getpid()}-{seq}"


def _local_dot() -> str:
    cwd, home = os.getcwd(), os.path.expanduser("~")
    rel = os.path.relpath(cwd, home)
    return cwd if rel.startswith("..") else rel


def _node_relative(path: str) -> str:
    """A workdir under the local $HOME is taken relative to it: ``--workdir ~/x``, which the
    local shell expands, means ``x`` in the login directory of each node."""
    home = os.path.expanduser("~").rstrip("/")
    if home and (path == home or path.startswith(home + "/")):
        return path[len(home) :].lstrip("/")
    return path


def _remote_path(workdir: str, path: str) -> str:
    if os.path.isabs(path):
        return "/./" + path.lstrip("/")
    base = workdir if workdir else "."
    return f"{base}/./{path}"


def _run(argv: Sequence[str]) -> StepResult:
    proc = subprocess.run(
        list(argv), stdin=subprocess.DEVNULL, capture_output=True, start_new_session=True
    )
    return StepResult(proc.returncode, proc.stderr)


@dataclass(frozen=True)
class Staging:
    """The run's file options."""

    workdir: str = ""
    basefiles: tuple[str, ...] = ()
    transfers: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()
    cleanup: bool = False

    def check(self) -> None:
        """``ValueError`` for combinations that cannot work."""
        if self.workdir == FRESH and any(not os.path.isabs(b) for b in self.basefiles):
            msg = "--basefile with a relative path cannot go with --workdir ... (a new dir per job)"
            raise ValueError(msg)
        if "{" in self.workdir and self.basefiles:
            msg = f"--basefile needs a fixed --workdir, not one with replacement strings ({self.workdir!r})"
            raise ValueError(msg)

    def job_workdir(self, host: str, values: Sequence[str], seq: int, slot: int) -> str:
        """The workdir of one job on ``host``, relative to the login directory ("" = it)."""
        if self.workdir == FRESH:
            return fresh_workdir(host, seq)
        if self.workdir == ".":
            return _local_dot()
        return _node_relative(expand_name(self.workdir, values, seq, slot))

    def base_workdir(self) -> str:
        return _local_dot() if self.workdir == "." else _node_relative(self.workdir)

    # -- steps ----------------------------------------------------------------------------------

    def send_basefiles(self, ssh: SshCommand) -> StepResult:
        return self._send(ssh, self.basefiles, self.base_workdir())

    def send(
        self, ssh: SshCommand, workdir: str, values: Sequence[str], seq: int, slot: int
    ) -> StepResult:
        files = [expand_name(name, values, seq, slot) for name in self.transfers]
        return self._send(ssh, files, workdir)

    def _send(self, ssh: SshCommand, files: Sequence[str], workdir: str) -> StepResult:
        relative = [f for f in files if not os.path.isabs(f)]
        absolute = [f for f in files if os.path.isabs(f)]
        if relative:
            target = ssh.remote((workdir or ".") + "/")
            step = _run(ssh.rsync(*relative, target, workdir=workdir))
            if step.code:
                return step
        if absolute:
            return _run(ssh.rsync(*absolute, ssh.remote("/")))
        return StepResult(0)

    def fetch(
        self, ssh: SshCommand, workdir: str, values: Sequence[str], seq: int, slot: int
    ) -> StepResult:
        """Bring the job's ``--return`` files back (a missing one is the job's failure)."""
        files = [expand_name(name, values, seq, slot) for name in self.returns]
        if not files:
            return StepResult(0)
        sources = [ssh.remote(_remote_path(workdir, f)) for f in files]
        return _run(ssh.rsync(*sources, "./"))

    def clean(
        self, ssh: SshCommand, workdir: str, values: Sequence[str], seq: int, slot: int
    ) -> StepResult:
        """Remove the job's transferred and returned files (``--cleanup``) and a ``...`` dir."""
        fresh = self.workdir == FRESH
        if not (self.cleanup or fresh):
            return StepResult(0)
        names = [expand_name(n, values, seq, slot) for n in (*self.transfers, *self.returns)]
        names = [_after_dot(n) for n in names]
        script = _removal(workdir, names, whole_dir=fresh)
        return _run(ssh.run(script))

    def clean_basefiles(self, ssh: SshCommand) -> StepResult:
        if not (self.cleanup and self.basefiles):
            return StepResult(0)
        names = [_after_dot(os.path.basename(b) if os.path.isabs(b) else b) for b in self.basefiles]
        return _run(ssh.run(_removal(self.base_workdir(), names, whole_dir=False)))


def _after_dot(path: str) -> str:
    """What ``dir/./rest`` is called on the node: ``rest``."""
    return path.split("/./", 1)[1] if "/./" in path else path


def _removal(workdir: str, names: Sequence[str], whole_dir: bool) -> str:
    """sh that removes ``names`` in ``workdir`` and then every directory left empty, up to the
    login directory (GNU Parallel removes the emptied workdir too)."""
    wd = shlex.quote(workdir or ".")
    lines = ["cd || exit 0", f"cd -- {wd} 2>/dev/null || exit 0"]
    if whole_dir:
        lines = ["cd || exit 0", f"rm -rf -- {wd}"]
    else:
        for name in names:
            q = shlex.quote(name)
            lines.append(f"rm -rf -- {q}")
            lines.append(f"d=$(dirname -- {q})")
            lines.append(
                'while [ "$d" != . ] && [ "$d" != / ] && rmdir -- "$d" 2>/dev/null; do d=$(dirname -- "$d"); done'
            )
        lines.append("cd")
    if workdir and not os.path.isabs(workdir):
        lines.append(f"d=$(dirname -- {wd})" if whole_dir else f"d={wd}")
        lines.append(
            'while [ "$d" != . ] && rmdir -- "$d" 2>/dev/null; do d=$(dirname -- "$d"); done'
        )
    lines.append("exit 0")
    return "\n".join(lines)
