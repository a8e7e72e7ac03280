"""GNU Parallel's remote options on two loopback nodes: -S forms, slots, files, env, quoting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pardo._sshlogin import parse_sshlogin, read_sshlogins

from .conftest import Nodes


def run(pardo, nodes: Nodes, *argv: str):
    return pardo("--ssh", nodes.ssh, *argv)


class TestSshloginParsing:
    def test_forms(self) -> None:
        login = parse_sshlogin("4/alice@node1:2222")
        assert (login.cpus, login.user, login.host, login.port, login.name) == (
            4,
            "alice",
            "node1",
            2222,
            "alice@node1:2222",
        )
        assert parse_sshlogin(":").local and parse_sshlogin("2/:").cpus == 2
        assert (
            parse_sshlogin("ssh -p 2 h").ssh == ("ssh", "-p", "2")
            and parse_sshlogin("ssh -p 2 h").host == "h"
        )

    def test_commas_repeats_files_comments_and_dotdot(self, tmp_path: Path, monkeypatch) -> None:
        monkeypatch.setenv("HOME", str(tmp_path))
        (tmp_path / ".parallel").mkdir()
        (tmp_path / ".parallel" / "sshloginfile").write_text("# nodes\nc  # third\n\n2/d\n")
        logins = read_sshlogins(["a,b", "a"], [".."])
        assert [login.name for login in logins] == ["a", "b", "c", "d"]

    @pytest.mark.parametrize("bad", ["0/host", "a@", "host:port"])
    def test_bad_sshlogin_is_a_usage_error(self, pardo, bad: str) -> None:
        result = pardo("-S", bad, "echo", ":::", "1")
        assert result.status == 255 and "sshlogin" in result.err


def test_values_with_spaces_quotes_and_semicolons_survive_both_shells(pardo, nodes: Nodes) -> None:
    values = ["a b", "it's", 'say "hi"', "x; echo INJECTED", "$HOME", "back\\slash"]
    result = run(pardo, nodes, "-S", nodes.logins()[0], "-k", "printf '%s\\n'", ":::", *values)
    assert result.status == 0, result.err
    assert result.lines == values


def test_env_is_forwarded_only_when_asked(pardo, nodes: Nodes, monkeypatch) -> None:
    monkeypatch.setenv("MYVAR", "one 'two'; three")
    monkeypatch.setenv("OTHER", "not sent")
    login = nodes.logins()[0]
    result = run(
        pardo, nodes, "-S", login, "--env", "MYVAR", 'true {}; echo "[$MYVAR][$OTHER]"', ":::", "1"
    )
    assert result.lines == ["[one 'two'; three][]"]


def test_job_variables_and_slots(pardo, nodes: Nodes) -> None:
    logins = [f"1/{login}" for login in nodes.logins()]
    result = run(
        pardo,
        nodes,
        "-S",
        ",".join(logins),
        "echo {%} $PARALLEL_SSHLOGIN $PARDO_SSHLOGIN $PARALLEL_SEQ $(id -un)",
        ":::",
        *"abcd",
    )
    assert result.status == 0, result.err
    rows = [line.split() for line in result.lines]
    assert {row[0] for row in rows} <= {"1", "2"}  # one slot per host, two in all
    for _slot, login, same, _seq, user in rows:
        assert login == same and login.split("@")[0] == user
    assert sorted(row[3] for row in rows) == ["1", "2", "3", "4"]


def test_cpu_count_is_asked_on_the_node(pardo, nodes: Nodes) -> None:
    result = run(pardo, nodes, "-S", nodes.logins()[0], "true", ":::", "1")
    assert f"{os.cpu_count()} slots" in result.err  # nproc on the (loopback) node


def test_jobs_per_host(pardo, nodes: Nodes) -> None:
    result = run(pardo, nodes, "-S", f"3/{nodes.logins()[0]}", "-j", "1", "true", ":::", "1")
    assert "1 slots" in result.err


def test_nonall_and_onall(pardo, nodes: Nodes) -> None:
    both = ",".join(nodes.logins())
    result = run(pardo, nodes, "-S", both, "--nonall", "id", "-un")
    assert sorted(result.lines) == sorted(node.user for node in nodes.nodes)
    result = run(pardo, nodes, "-S", both, "--onall", "echo {} $(id -un)", ":::", "x", "y")
    assert sorted(result.lines) == sorted(f"{v} {n.user}" for v in "xy" for n in nodes.nodes)


def test_workdir_with_replacement_strings_is_made(pardo, nodes: Nodes) -> None:
    node = nodes.nodes[0]
    result = run(pardo, nodes, "-S", node.login, "--wd", "wd1/sub/{}", "pwd", ":::", "p", "q")
    assert sorted(result.lines) == [node.path("wd1", "sub", v) for v in "pq"]


def test_workdir_dots_is_fresh_per_job_and_removed(pardo, nodes: Nodes) -> None:
    node = nodes.nodes[0]
    result = run(pardo, nodes, "-S", node.login, "--wd", "...", "pwd", ":::", "p", "q")
    assert result.status == 0, result.err
    assert len(set(result.lines)) == 2 and all("/.pardo/tmp/" in line for line in result.lines)
    assert not os.path.exists(node.path(".pardo"))


def test_transfer_return_cleanup(pardo, nodes: Nodes, tmp_path: Path) -> None:
    node = nodes.nodes[1]
    (tmp_path / "d" / "sub dir").mkdir(parents=True)
    (tmp_path / "d" / "sub dir" / "in 1.txt").write_text("hello\n")
    result = run(
        pardo,
        nodes,
        "-S",
        node.login,
        "--wd",
        "wd4",
        "--transferfile",
        "{}",
        "--return",
        "out {#}.txt",
        "--cleanup",
        "cat 'sub dir/in 1.txt' > 'out {#}.txt'; ls -R",
        ":::",
        "d/./sub dir/in 1.txt",
    )
    assert result.status == 0, result.err
    assert (tmp_path / "out 1.txt").read_text() == "hello\n"  # came back, same relative path
    assert "sub dir" in result.out  # arrived as "sub dir/in 1.txt": the dir/./rest rule
    assert not os.path.exists(node.path("wd4"))  # --cleanup took the files and the workdir


def test_trc_and_basefile_cleanup(pardo, nodes: Nodes, tmp_path: Path) -> None:
    node = nodes.nodes[0]
    (tmp_path / "base.sh").write_text("echo base\n")
    (tmp_path / "x.in").write_text("x\n")
    result = run(
        pardo,
        nodes,
        "-S",
        node.login,
        "--wd",
        "w",
        "--bf",
        "base.sh",
        "--trc",
        "{.}.out",
        "sh base.sh > {.}.out; cat {} >> {.}.out",
        ":::",
        "x.in",
    )
    assert result.status == 0, result.err
    assert (tmp_path / "x.out").read_text() == "base\nx\n"
    assert not os.path.exists(node.path("w"))


def test_return_of_a_missing_file_is_reported(pardo, nodes: Nodes) -> None:
    result = run(pardo, nodes, "-S", nodes.logins()[0], "--return", "nope", "true", ":::", "1")
    assert "nope" in result.err


def test_controlmaster_one_login_per_host(pardo, nodes: Nodes, tmp_path: Path) -> None:
    node = nodes.nodes[0]
    for i in range(8):
        (tmp_path / f"f{i}").write_text("x")
    before = nodes.accepted(node)
    result = run(
        pardo,
        nodes,
        "-S",
        node.login,
        "--trc",
        "{}.out",
        "touch {}.out",
        ":::",
        *[f"f{i}" for i in range(8)],
    )
    assert result.status == 0, result.err
    assert nodes.accepted(node) - before == 1
    before = nodes.accepted(node)
    run(pardo, nodes, "--no-controlmaster", "-S", node.login, "true", ":::", "1", "2")
    assert nodes.accepted(node) - before == 3  # the probe and one per job


def test_local_host_colon_runs_here(pardo, nodes: Nodes) -> None:
    result = run(pardo, nodes, "-S", ":", "true {}; echo $PARALLEL_SSHLOGIN", ":::", "1")
    assert result.lines == [":"]


def test_joblog_host_column_is_the_sshlogin(pardo, nodes: Nodes, tmp_path: Path) -> None:
    login = nodes.logins()[0]
    run(pardo, nodes, "-S", f"2/{login}", "--joblog", "log", "exit {}", ":::", "0", "3")
    rows = [line.split("\t") for line in (tmp_path / "log").read_text().splitlines()[1:]]
    assert {row[1] for row in rows} == {login}
    assert sorted(row[6] for row in rows) == ["0", "3"]
