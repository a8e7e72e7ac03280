"""``-S/--sshlogin`` and ``--slf/--sshloginfile``: GNU Parallel's sshlogin strings, parsed.

An sshlogin is ``[N/][sshcmd ][user@]host[:port]``: ``N/`` fixes the host's CPU count, a leading
command (``ssh -p 2222 host``) replaces the ssh program for that host, and ``:`` alone means this
machine, without ssh. ``-S`` values may hold several sshlogins separated by commas (``\\,`` is a
literal comma); a login file has one a line, ``#`` starting a comment. The file name ``..`` means
``~/.parallel/sshloginfile``; a relative name not found in the working directory is looked up in
``~/.parallel`` too, as GNU Parallel does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LOCAL", "SshLogin", "parse_sshlogin", "read_sshlogins"]

#: The sshlogin that means this machine.
LOCAL = ":"

_HOST = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?P<host>\[[^\]]+\]|[^:@\s]+)(?::(?P<port>\d+))?$")


@dataclass(frozen=True)
class SshLogin:
    """One parsed sshlogin. ``name`` is the sshlogin without ``N/``: the joblog's Host column,
    ``$PARALLEL_SSHLOGIN`` and the name in pardo's messages."""

    name: str
    host: str = ""
    user: str | None = None
    port: int | None = None
    cpus: int | None = None
    ssh: tuple[str, ...] = ()

    @property
    def local(self) -> bool:
        return self.name == LOCAL

    @property
    def label(self) -> str:
        """The name, with the address after it when that says more (for messages)."""
        return self.name if self.address == self.name else f"{self.name} ({self.address})"

    @property
    def address(self) -> str:
        """``user@host:port`` as far as given (for messages)."""
        if self.local:
            return "this machine"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.host}{port}"


def parse_sshlogin(text: str) -> SshLogin:
    """Parse one sshlogin; ``ValueError`` names a malformed one."""
    raw = text.strip()
    cpus: int | None = None
    head, slash, rest = raw.partition("/")
    if slash and head.isdigit() and " " not in head:
        cpus = int(head)
        if cpus < 1:
            msg = f"sshlogin {text!r}: the CPU count before '/' must be >= 1"
            raise ValueError(msg)
        raw = rest.strip()
    if raw == LOCAL:
        return SshLogin(LOCAL, cpus=cpus)
    words = raw.split()
    if not words:
        msg = f"sshlogin {text!r} is empty; expected [N/][user@]host[:port] or ':'"
        raise ValueError(msg)
    match = _HOST.match(words[-1])
    if match is None:
        msg = f"sshlogin {text!r} is not valid; expected [N/][sshcmd ][user@]host[:port] or ':'"
        raise ValueError(msg)
    host = match.group("host").strip("[]")
    port = int(match.group("port")) if match.group("port") else None
    return SshLogin(raw, host, match.group("user"), port, cpus, tuple(words[:-1]))


def _split_commas(value: str) -> list[str]:
    parts = re.split(r"(?<!\\),", value)
    return [part.replace("\\,", ",") for part in parts]


def _login_file(name: str) -> str:
    home = os.path.expanduser("~")
    if name == "..":
        return os.path.join(home, ".parallel", "sshloginfile")
    if name == ".":
        return "/etc/parallel/sshloginfile"
    if not os.path.isabs(name) and not os.path.exists(name):
        fallback = os.path.join(home, ".parallel", name)
        if os.path.exists(fallback):
            return fallback
    return name


def read_sshlogins(values: Sequence[str], files: Sequence[str]) -> tuple[SshLogin, ...]:
    """Every sshlogin of the ``-S`` values and the ``--slf`` files, first mention first; a host
    named twice is kept once."""
    texts: list[str] = []
    for value in values:
        for line in value.splitlines():
            texts.extend(_split_commas(line))
    for name in files:
        path = _login_file(name)
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError as exc:
            msg = f"--sshloginfile {name!r}: cannot read {path}: {exc.strerror}"
            raise ValueError(msg) from exc
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if line:
                texts.extend(_split_commas(line))
    logins: dict[str, SshLogin] = {}
    for text in texts:
        if text.strip():
            login = parse_sshlogin(text)
            logins.setdefault(login.name, login)
    if (values or files) and not logins:
        raise ValueError("-S/--sshloginfile gave no sshlogin")
    return tuple(logins.values())
