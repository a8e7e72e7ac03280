"""Dead and dying nodes, and stopping remote jobs: what pardo does better than GNU Parallel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from _polling import wait_until

from .conftest import Nodes


def run(pardo, nodes: Nodes, *argv: str):
    return pardo("--ssh", nodes.ssh, *argv)


def joblog(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()[1:]]


def test_a_dead_node_loses_no_job(pardo, nodes: Nodes, tmp_path: Path) -> None:
    logins = [*nodes.logins(), nodes.dead_login()]
    values = [str(i) for i in range(30)]
    result = run(
        pardo,
        nodes,
        "-S",
        ",".join(f"2/{x}" for x in logins),
        "--joblog",
        "log",
        "echo",
        ":::",
        *values,
    )
    assert result.status == 0, result.err
    assert sorted(result.lines, key=int) == values
    rows = joblog(tmp_path / "log")
    assert len(rows) == 30 and all(row[6] == "0" for row in rows)
    assert nodes.dead not in {row[1].split("@")[-1].split(":")[0] for row in rows}
    # one message for the dead host, naming its sshlogin, not one per job
    down = [line for line in result.err.splitlines() if "is down" in line]
    assert len(down) == 1 and nodes.dead_login() in down[0]


def test_no_host_left_fails_naming_every_host(pardo, nodes: Nodes) -> None:
    result = run(pardo, nodes, "-S", nodes.dead_login(), "echo", ":::", "1", "2")
    assert result.status == 255
    assert "no host left" in result.err and nodes.dead_login() in result.err
    assert "2 of 2 jobs not run" in result.err


def test_exit_255_is_the_jobs_not_the_nodes(pardo, nodes: Nodes, tmp_path: Path) -> None:
    result = run(
        pardo, nodes, "-S", nodes.logins()[0], "--joblog", "log", "exit {}", ":::", "255", "0"
    )
    assert result.status == 1
    assert sorted(row[6] for row in joblog(tmp_path / "log")) == ["0", "255"]
    assert "is down" not in result.err


def test_retries_prefer_a_host_where_the_job_has_not_failed(
    pardo, nodes: Nodes, tmp_path: Path
) -> None:
    bad, good = nodes.logins()
    result = run(
        pardo,
        nodes,
        "-S",
        f"1/{bad},1/{good}",
        "--retries",
        "2",
        "--joblog",
        "log",
        f'true {{}}; [ "$PARALLEL_SSHLOGIN" != "{bad}" ]',
        ":::",
        *"abcd",
    )
    assert result.status == 0, result.err
    assert {row[1] for row in joblog(tmp_path / "log")} == {good}


def _start(nodes: Nodes, tmp_path: Path, *argv: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PARDO_SHELL": "/bin/sh"}
    return subprocess.Popen(
        [sys.executable, "-m", "pardo", "--ssh", nodes.ssh, *argv],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip


def test_a_node_dying_mid_run_has_its_jobs_rerun_elsewhere(nodes: Nodes, tmp_path: Path) -> None:
    victim, survivor = nodes.nodes
    proc = _start(
        nodes,
        tmp_path,
        "-S",
        f"2/{victim.login},2/{survivor.login}",
        "--joblog",
        "log",
        "sleep 1; echo {}",
        ":::",
        *[str(i) for i in range(8)],
    )
    try:
        assert wait_until(
            lambda: any(p.info["name"] == "sleep" for p in nodes.user_processes(victim)), 20
        )
        nodes.kill(victim)
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    text = err.decode()
    assert proc.returncode == 0, text
    assert sorted(out.decode().split(), key=int) == [str(i) for i in range(8)]
    rows = joblog(tmp_path / "log")
    assert len(rows) == 8 and all(row[6] == "0" for row in rows)
    assert f"host {victim.login} is down" in text and "go back to the queue" in text
    assert "requeued" in text  # the per-host summary


def _remote_sleeps(nodes: Nodes) -> list[int]:
    return [
        p.pid for n in nodes.nodes for p in nodes.user_processes(n) if p.info["name"] == "sleep"
    ]


def test_timeout_kills_the_remote_process_group(pardo, nodes: Nodes, tmp_path: Path) -> None:
    result = run(
        pardo,
        nodes,
        "-S",
        nodes.logins()[0],
        "--timeout",
        "1",
        "--joblog",
        "log",
        "sleep 60 & sleep 60; true",
        ":::",
        "1",
    )
    assert result.status == 1
    assert joblog(tmp_path / "log")[0][6] == "-1"
    assert wait_until(lambda: not _remote_sleeps(nodes), 10)  # both sleeps, the whole group


def test_halt_now_kills_remote_jobs(pardo, nodes: Nodes) -> None:
    result = run(
        pardo,
        nodes,
        "-S",
        ",".join(nodes.logins()),
        "--halt",
        "now,fail=1",
        "sleep {}; exit 1",
        ":::",
        "0",
        "60",
        "60",
        "60",
    )
    assert result.status == 1
    assert wait_until(lambda: not _remote_sleeps(nodes), 10)


def test_ctrl_c_kills_remote_jobs(nodes: Nodes, tmp_path: Path) -> None:
    proc = _start(nodes, tmp_path, "-S", ",".join(nodes.logins()), "sleep", ":::", "60", "60")
    try:
        assert wait_until(lambda: len(_remote_sleeps(nodes)) == 2, 20)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 255
    assert wait_until(lambda: not _remote_sleeps(nodes), 10)


def test_sigkill_of_pardo_still_stops_remote_jobs(nodes: Nodes, tmp_path: Path) -> None:
    proc = _start(
        nodes, tmp_path, "-S", nodes.logins()[0], "--no-controlmaster", "sleep", ":::", "60"
    )
    try:
        assert wait_until(lambda: len(_remote_sleeps(nodes)) == 1, 20)
        proc.kill()
        proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # the job's ssh client sees its stdin close and exits; the node's watchdog kills the job
    assert wait_until(lambda: not _remote_sleeps(nodes), 15)
