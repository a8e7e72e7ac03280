"""Smoke: a job reaches both nodes."""

from __future__ import annotations

from tests.cli.conftest import Runner

from .conftest import Nodes


def test_jobs_run_on_both_nodes(pardo: Runner, nodes: Nodes) -> None:
    result = pardo(
        "--ssh",
        nodes.ssh,
        "-S",
        ",".join(nodes.logins()),
        "-k",
        "echo {} $(id -un) $PARALLEL_SSHLOGIN",
        ":::",
        "a",
        "b",
        "c",
        "d",
    )
    print(result.err)
    assert result.status == 0
    assert len(result.lines) == 4
