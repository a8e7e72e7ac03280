"""Loopback ssh nodes for the remote tests: a real sshd on 127.0.0.2 and one on 127.0.0.3.

Each node has its own sshd (own config and host key in a temporary directory, key-only login)
and its own unix user and home, so a file copied to one node is not seen on the other. Nothing
listens on 127.0.0.4: that is the dead node. ``Nodes.kill`` takes a node down mid-run (its sshd
and every process of its user, each by pid); ``Nodes.revive`` starts it again. Everything is
stopped by pid and the users removed at the end. No traffic leaves 127.0.0.0/8.

The nodes' sshd sets PATH so that ``python3`` on a node is this test run's interpreter (the node
users run it by absolute path, as docs/cluster.md says real nodes must have it).
These tests need root (useradd), sshd and rsync; without them they skip, saying which is missing
(and fail instead under ``PARDO_REQUIRE_REMOTE_TESTS=1``, which .ci/run sets).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import psutil
import pytest
from _polling import wait_until
from conftest import KEPT_PIDS

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
ADDRESSES = ("127.0.0.2", "127.0.0.3")
DEAD = "127.0.0.4"


def _missing() -> str | None:
    if SSHD is None:
        return "no sshd (Debian: apt-get install openssh-server)"
    for tool in ("ssh", "ssh-keygen", "rsync"):
        if shutil.which(tool) is None:
            return f"no {tool} (Debian: apt-get install openssh-client rsync)"
    if os.geteuid() != 0:
        return "not root: the loopback nodes need useradd and their own sshd"
    if shutil.which("useradd") is None:
        return "no useradd"
    return None


@dataclass
class Node:
    """One loopback node."""

    address: str
    port: int
    user: str
    home: str
    config: str
    proc: subprocess.Popen[bytes] | None = None

    @property
    def login(self) -> str:
        return f"{self.user}@{self.address}:{self.port}"

    def path(self, *parts: str) -> str:
        return os.path.join(self.home, *parts)


@dataclass
class Nodes:
    """The test cluster: ``ssh`` is the --ssh value that reaches the nodes."""

    root: str
    ssh: str
    nodes: list[Node]
    dead: str
    extra_users: list[str] = field(default_factory=list)
    acl: list[tuple[str, str]] = field(default_factory=list)

    def start(self, node: Node) -> None:
        assert SSHD is not None
        with open(os.path.join(self.root, f"sshd-{node.address}.log"), "ab") as log:
            node.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", node.config],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        KEPT_PIDS.add(node.proc.pid)

        def listening() -> bool:
            with socket.socket() as s:
                s.settimeout(0.2)
                return s.connect_ex((node.address, node.port)) == 0

        assert wait_until(listening, 10), f"sshd on {node.address}:{node.port} did not start"

    def kill(self, node: Node) -> None:
        """The node dies: its sshd with every session, and every process of its user."""
        if node.proc is not None:
            try:
                children = psutil.Process(node.proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                children = []
            node.proc.kill()
            node.proc.wait()
            for child in children:
                with _suppress():
                    child.kill()
            node.proc = None
        kill_user_processes(node.user)

    def revive(self, node: Node) -> None:
        self.start(node)

    def accepted(self, node: Node) -> int:
        """How many ssh logins the node's sshd has accepted so far."""
        with open(os.path.join(self.root, f"sshd-{node.address}.log"), encoding="utf-8") as log:
            return sum("Accepted publickey" in line for line in log)

    def logins(self) -> list[str]:
        return [node.login for node in self.nodes]

    def dead_login(self) -> str:
        return f"nobody@{self.dead}:{self.nodes[0].port}"

    def user_processes(self, node: Node) -> list[psutil.Process]:
        """The node user's processes now; ``p.info["name"]`` is read already (they come and go)."""
        return [
            p for p in psutil.process_iter(["username", "name"]) if p.info["username"] == node.user
        ]


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], psutil.Error)  # type: ignore[arg-type]


def kill_user_processes(user: str) -> None:
    for proc in psutil.process_iter(["username"]):
        if proc.info["username"] == user:
            with _suppress():
                proc.kill()


def _closed_dirs() -> list[str]:
    """Directories above this interpreter that other users cannot enter (/root, mode 700)."""
    found: list[str] = []
    for start in {os.path.realpath(sys.executable), sys.prefix, sys.base_prefix}:
        path = os.path.dirname(start) if os.path.isfile(start) else start
        while True:
            if not os.stat(path).st_mode & 0o001 and path not in found:
                found.append(path)
            if path == "/":
                break
            path = os.path.dirname(path)
    return found


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _run(*argv: str) -> None:
    subprocess.run(list(argv), check=True, stdin=subprocess.DEVNULL, capture_output=True)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Nodes]:
    missing = _missing()
    if missing is not None:
        reason = f"remote tests need loopback ssh nodes: {missing}"
        if os.environ.get("PARDO_REQUIRE_REMOTE_TESTS"):  # set by .ci/run: CI must run them
            pytest.fail(reason)
        pytest.skip(reason)
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    root = tempfile.mkdtemp(prefix="pardo-nodes-")
    os.chmod(root, 0o755)
    key = os.path.join(root, "client_key")
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
    with open(key + ".pub", encoding="utf-8") as handle:
        public = handle.read()
    venv_bin = os.path.dirname(sys.executable)
    nodes: list[Node] = []
    users: list[str] = []
    cluster = Nodes(root, "", nodes, DEAD, users)
    try:
        for n, address in enumerate(ADDRESSES):
            user = f"pdt{os.getpid() % 100000}n{n}"
            home = os.path.join(root, f"home-{n}")
            _run("useradd", "-M", "-d", home, "-s", "/bin/sh", user)
            users.append(user)
            # useradd leaves the password "!", which sshd without PAM takes as a locked account.
            _run("usermod", "-p", "*", user)
            # The node users run this interpreter (with numpy and dask): let them reach it
            # where it lies under a closed directory, for this run only (undone at the end).
            for path in _closed_dirs():
                if shutil.which("setfacl") is None:
                    break
                _run("setfacl", "-m", f"u:{user}:x", path)
                cluster.acl.append((path, user))
            os.makedirs(os.path.join(home, ".ssh"))
            with open(os.path.join(home, ".ssh", "authorized_keys"), "w", encoding="utf-8") as f:
                f.write(public)
            info = pwd.getpwnam(user)
            for dirpath, _dirs, files in os.walk(home):
                os.chown(dirpath, info.pw_uid, info.pw_gid)
                for name in files:
                    os.chown(os.path.join(dirpath, name), info.pw_uid, info.pw_gid)
            os.chmod(home, 0o700)
            hostkey = os.path.join(root, f"hostkey-{n}")
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostkey)
            port = _free_port(address)
            config = os.path.join(root, f"sshd-{n}.conf")
            with open(config, "w", encoding="utf-8") as f:
                f.write(
                    f"ListenAddress {address}:{port}\nHostKey {hostkey}\n"
                    f"PidFile {root}/sshd-{n}.pid\nAllowUsers {user}\n"
                    "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                    "PubkeyAuthentication yes\nUsePAM no\nStrictModes no\n"
                    "MaxStartups 100\nMaxSessions 100\nLogLevel VERBOSE\n"
                    f"SetEnv PATH={venv_bin}:/usr/local/bin:/usr/bin:/bin\n"
                )
            nodes.append(Node(address, port, user, home, config))
        ssh_config = os.path.join(root, "ssh_config")
        with open(ssh_config, "w", encoding="utf-8") as f:
            f.write(
                "Host *\n  StrictHostKeyChecking no\n"
                f"  UserKnownHostsFile {root}/known_hosts\n  IdentityFile {key}\n"
                "  IdentitiesOnly yes\n  LogLevel ERROR\n"
            )
        cluster.ssh = f"ssh -F {ssh_config}"
        for node in nodes:
            cluster.start(node)
        yield cluster
    finally:
        for node in nodes:
            cluster.kill(node)
        for path, user in cluster.acl:
            subprocess.run(["setfacl", "-x", f"u:{user}", path], capture_output=True, check=False)
        for user in users:
            kill_user_processes(user)
            _remove_shm_of(user)
            subprocess.run(["userdel", user], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def _remove_shm_of(user: str) -> None:
    """Remove what a node user left in /dev/shm: ``userdel`` leaves it. The dask workers that
    ``ssh_cluster`` starts on a node leave multiprocessing semaphores (``sem.mp-*``) there when
    they stop, a known gap of distributed's nannies, not of pardo's jobs."""
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return
    for entry in os.scandir("/dev/shm"):
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_uid == uid:
                os.unlink(entry.path)


@pytest.fixture
def nodes(cluster: Nodes) -> Iterator[Nodes]:
    """The cluster with both nodes up and their homes emptied of earlier tests' files."""
    for node in cluster.nodes:
        if node.proc is None:
            cluster.revive(node)
        for name in os.listdir(node.home):
            if name != ".ssh":
                target = node.path(name)
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    os.unlink(target)
    yield cluster
