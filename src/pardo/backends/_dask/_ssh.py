"""``ssh_cluster``: a dask scheduler here and one dask worker per node of an sshlogin file, over ssh.

The node file is the one the command line's ``--sshloginfile`` reads (``[N/][user@]host[:port]``
a line, ``#`` comments; ``:`` is skipped: this machine runs the scheduler). Workers start through
dask.distributed's own ssh support (``distributed.deploy.ssh.Worker``, asyncssh), one per node
with ``N`` threads where ``N/`` is given (else dask's default, the node's CPU count). The
scheduler runs in this process. Everything stops when the ``with`` block ends, also after an
error or Ctrl-C: the client closes, each worker's ssh connection closes, and the scheduler stops.
Each node needs the same Python environment (dask, distributed, pardo and what the tasks
import), found at ``remote_python`` (default: the path of this interpreter).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pardo._sshlogin import SshLogin, read_sshlogins

__all__ = ["ssh_cluster"]


def _logins(nodes: str | Sequence[str]) -> list[SshLogin]:
    if isinstance(nodes, str):
        found = read_sshlogins((), (nodes,))
    else:
        found = read_sshlogins(tuple(nodes), ())
    remote = [login for login in found if not login.local]
    if not remote:
        msg = f"ssh_cluster: {nodes!r} names no remote node (':' is this machine, skipped)"
        raise ValueError(msg)
    return remote


@contextlib.contextmanager
def ssh_cluster(
    nodes: str | Sequence[str] = "nodefile",
    *,
    scheduler_host: str | None = None,
    remote_python: str | None = None,
    connect_options: Mapping[str, Any] | None = None,
    worker_options: Mapping[str, Any] | None = None,
) -> Iterator[Any]:
    """Start a dask cluster on the nodes of ``nodes`` and yield its ``distributed.Client``.

    Args:
        nodes: a node file name (GNU Parallel's sshlogin file), or a list of sshlogins.
        scheduler_host: the address of this machine that the nodes can reach; the scheduler
            listens there (default: the address of the interface with the default route).
        remote_python: the python on the nodes (default: ``sys.executable``, the same path).
        connect_options: extra ``asyncssh.connect`` options for every node (``client_keys``,
            ``known_hosts``, ``config``); user and port come from each sshlogin.
        worker_options: extra ``distributed.Nanny`` options for every worker.

    The client is the default one inside the block, so ``parallel_config(backend="dask")``
    uses it; ``parallel_config(backend="dask", client=client)`` says so explicitly.
    """
    import distributed
    from distributed.deploy.spec import SpecCluster
    from distributed.deploy.ssh import Worker
    from distributed.utils import get_ip

    logins = _logins(nodes)
    workers = {}
    for n, login in enumerate(logins):
        options: dict[str, Any] = dict(connect_options or {})
        if login.user:
            options["username"] = login.user
        if login.port:
            options["port"] = login.port
        kwargs: dict[str, Any] = {"host": login.host, **(worker_options or {})}
        if login.cpus:
            kwargs["nthreads"] = login.cpus
        workers[f"{n}-{login.name}"] = {
            "cls": Worker,
            "options": {
                "address": login.host,
                "connect_options": options,
                "kwargs": kwargs,
                "remote_python": remote_python or sys.executable,
            },
        }
    scheduler = {
        "cls": distributed.Scheduler,
        "options": {"host": scheduler_host or get_ip(), "dashboard": False},  # type: ignore[no-untyped-call]
    }
    with (
        SpecCluster(workers=workers, scheduler=scheduler, name="pardo-ssh") as cluster,  # type: ignore[no-untyped-call]
        distributed.Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        yield client
