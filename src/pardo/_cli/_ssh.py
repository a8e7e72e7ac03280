"""OpenSSH and rsync command lines for one host, and its ControlMaster connection.

pardo runs the user's own ``ssh`` (``--ssh``, else ``$PARALLEL_SSH``, else ``ssh``) so that
``~/.ssh/config``, the agent, ProxyJump and known_hosts all apply. ``BatchMode=yes`` keeps a job
from waiting on a password prompt nobody can answer. By default every host gets one master
connection (``ControlMaster``) whose socket lives in a short directory of pardo's own under /tmp
(``sun_path`` holds about 104 bytes, and ``$TMPDIR`` can be long on macOS); jobs, rsync and
probes share it, so a grid of short jobs costs one sshd login per host. If the master cannot be
started the host is used with plain connections.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import time
from dataclasses import dataclass

from pardo._sshlogin import SshLogin

__all__ = ["Master", "SshCommand", "quote_remote"]

#: Seconds to wait for a master connection (and ssh's own ConnectTimeout): a loopback or LAN
#: host answers within milliseconds, a dead one is refused at once or times out here.
CONNECT_SECONDS = 10


def quote_remote(command: str) -> str:
    """The words ssh sends so that the node's login shell runs ``command`` with /bin/sh, whatever
    that login shell quotes like: one single-quoted layer for it, none left for sh."""
    return f"exec /bin/sh -c {shlex.quote(command)}"


@dataclass(frozen=True)
class SshCommand:
    """How to reach one host: the ssh program and options, and the ControlPath when multiplexed."""

    login: SshLogin
    program: tuple[str, ...] = ("ssh",)
    control_path: str | None = None

    def base(self) -> list[str]:
        """ssh with every option for this host, up to (not including) the host name."""
        argv = list(self.login.ssh or self.program)
        argv += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_SECONDS}"]
        if self.login.user:
            argv += ["-l", self.login.user]
        if self.login.port:
            argv += ["-p", str(self.login.port)]
        if self.control_path is not None:
            argv += ["-o", f"ControlPath={self.control_path}", "-o", "ControlMaster=no"]
        return argv

    def run(self, command: str) -> list[str]:
        """argv running the shell ``command`` on the host (with /bin/sh)."""
        return [*self.base(), "-T", "--", self.login.host, quote_remote(command)]

    def rsync(self, *args: str, workdir: str = "") -> list[str]:
        """argv of an rsync over this ssh; ``workdir`` is created on the host first."""
        argv = ["rsync", "-rlDzR", "-s", "-e", shlex.join(self.base())]
        if workdir not in ("", "."):
            argv.append(f"--rsync-path=mkdir -p {shlex.quote(workdir)} && rsync")
        return [*argv, *args]

    def remote(self, path: str) -> str:
        """An rsync remote argument for ``path`` on this host."""
        host = self.login.host
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{path}"


def _last_line(data: bytes) -> str:
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines()]
    return next((line for line in reversed(lines) if line), "")


class Master:
    """One ``ssh -M -N`` process for a host; ``start`` says whether multiplexing works."""

    def __init__(self, ssh: SshCommand) -> None:
        assert ssh.control_path is not None
        self.ssh = ssh
        self.error = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> bool:
        """Open the master; False (with ``error`` set) when it exits or never gets ready."""
        path = self.ssh.control_path
        assert path is not None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a stale socket of a master that died with its node
        argv = list(self.ssh.login.ssh or self.ssh.program)
        argv += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_SECONDS}"]
        if self.ssh.login.user:
            argv += ["-l", self.ssh.login.user]
        if self.ssh.login.port:
            argv += ["-p", str(self.ssh.login.port)]
        argv += ["-o", f"ControlPath={path}", "-o", "ControlMaster=yes"]
        # No -M on top of ControlMaster=yes: the two together mean "ask", which refuses every
        # session in batch mode. The master's own session (cat) reads its stdin, a pipe held
        # here, so it ends with the master.
        argv += ["-o", "ControlPersist=no", "-T", "--", self.ssh.login.host]
        argv.append("exec cat >/dev/null")
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C in the terminal must not drop every host at once
        )
        deadline = time.monotonic() + CONNECT_SECONDS + 2
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                _, err = self._proc.communicate()  # also closes its pipes
                self.error = _last_line(err) or f"ssh exited {self._proc.returncode}"
                self._proc = None
                return False
            if os.path.exists(path):
                return True
            time.sleep(0.02)
        self.error = f"no master connection within {CONNECT_SECONDS + 2} s"
        self.close()
        return False

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        """Stop the master (by its pid) and remove its socket."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.terminate()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdin, proc.stderr):
                if pipe is not None:
                    pipe.close()
        if self.ssh.control_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.ssh.control_path)
