"""``pardo.ssh_cluster``: a dask scheduler here, dask workers over ssh on the loopback nodes."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import pytest
from _polling import wait_until

import pardo
from pardo import Parallel, delayed, parallel_config

from .conftest import Nodes

pytest.importorskip("distributed")
pytest.importorskip("asyncssh")


def _options(nodes: Nodes) -> dict[str, object]:
    return {"client_keys": [os.path.join(nodes.root, "client_key")], "known_hosts": None}


def _pythons(nodes: Nodes) -> list[int]:
    return [
        p.pid for n in nodes.nodes for p in nodes.user_processes(n) if "python" in p.info["name"]
    ]


def test_parallel_runs_on_the_nodes_workers(nodes: Nodes, tmp_path: Path) -> None:
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("# two nodes\n:\n" + "".join(f"2/{x}\n" for x in nodes.logins()))
    with pardo.ssh_cluster(str(nodefile), scheduler_host="127.0.0.1",
                           connect_options=_options(nodes)) as client:  # fmt: skip
        assert sorted(client.nthreads().values()) == [2, 2]  # N/ threads per node
        with parallel_config(backend="dask"):
            users = Parallel(n_jobs=-1)(delayed(getpass.getuser)() for _ in range(20))
    assert set(users) <= {node.user for node in nodes.nodes} and len(users) == 20
    assert wait_until(lambda: not _pythons(nodes), 20)  # every worker stopped


def test_torn_down_after_an_error(nodes: Nodes) -> None:
    with pytest.raises(ZeroDivisionError), pardo.ssh_cluster(
        [nodes.logins()[0]], scheduler_host="127.0.0.1", connect_options=_options(nodes)
    ):
        assert _pythons(nodes)
        1 / 0  # noqa: B018
    assert wait_until(lambda: not _pythons(nodes), 20)


def test_a_file_without_remote_nodes_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "nodes").write_text(":\n")
    with pytest.raises(ValueError, match="no remote node"), pardo.ssh_cluster(str(tmp_path / "nodes")):
        pass
