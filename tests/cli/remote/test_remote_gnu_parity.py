"""The same remote command lines through GNU Parallel and pardo, on the same loopback nodes:
outputs, returned files, joblog rows and exit statuses must match. Skipped without GNU Parallel
(.ci/run installs it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Nodes

pytestmark = pytest.mark.skipif(
    shutil.which("parallel") is None, reason="GNU Parallel not installed"
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "example.py"


def _both(nodes: Nodes, where: Path, *argv: str) -> dict[str, tuple[int, str, list[list[str]]]]:
    """Run ``argv`` with each tool in its own copy of ``where``; status, stdout, joblog rows."""
    out = {}
    for tool, head in (
        ("parallel", ["parallel", "--will-cite"]),
        ("pardo", [sys.executable, "-m", "pardo"]),
    ):
        cwd = where / tool
        shutil.copytree(where / "src", cwd)
        proc = subprocess.run(
            [*head, "--ssh", nodes.ssh, "--joblog", "log", *argv],
            cwd=cwd, capture_output=True, text=True, timeout=120,
            env={**os.environ, "PARDO_SHELL": "/bin/sh"},
        )  # fmt: skip
        rows = [line.split("\t") for line in (cwd / "log").read_text().splitlines()[1:]]
        out[tool] = (proc.returncode, proc.stdout, rows)
    return out


def _comparable(rows: list[list[str]]) -> list[tuple[str, ...]]:
    # Seq, Host, Exitval, Signal, Command (start times, runtimes and byte counts differ)
    return sorted((r[0], r[1], r[6], r[7], r[8]) for r in rows)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    return tmp_path


def test_quoting_output_and_joblog_match(nodes: Nodes, src: Path) -> None:
    logins = ",".join(f"1/{x}" for x in nodes.logins())
    runs = _both(nodes, src, "-k", "-S", logins, "echo", ":::", "a b", "it's", "x; y", '"q"')
    (gs, gout, grows), (ps, pout, prows) = runs["parallel"], runs["pardo"]
    assert (gs, gout) == (ps, pout)
    assert [r[8] for r in sorted(grows)] == [r[8] for r in sorted(prows)]
    assert {r[1] for r in grows} >= {r[1] for r in prows}  # Host: the sshlogin without N/


def test_exit_statuses_match(nodes: Nodes, src: Path) -> None:
    login = f"2/{nodes.logins()[0]}"
    runs = _both(nodes, src, "-S", login, "exit {}", ":::", "0", "3", "42", "255")
    assert runs["parallel"][0] == runs["pardo"][0] == 3
    assert _comparable(runs["parallel"][2]) == _comparable(runs["pardo"][2])


def test_blog_command_line_returns_the_same_files(nodes: Nodes, src: Path) -> None:
    shutil.copy(EXAMPLE, src / "src" / "example.py")
    (src / "src" / "nodefile").write_text("".join(f"2/{x}\n" for x in nodes.logins()))
    runs = _both(
        nodes, src, "--sshloginfile", "nodefile", "--workdir", "parallel-example",
        "--basefile", "example.py", "--return", "iris_svm_g{1}_c{2}.mdl",
        "./example.py", "--set-gamma", "{1}", "--set-c", "{2}", ":::", "0.1", "1", "10",
        ":::", "0.2", "2", "20",
    )  # fmt: skip
    assert runs["parallel"][0] == runs["pardo"][0] == 0
    assert sorted(runs["parallel"][1].splitlines()) == sorted(runs["pardo"][1].splitlines())
    gnu = sorted(p.name for p in (src / "parallel").glob("*.mdl"))
    ours = sorted(p.name for p in (src / "pardo").glob("*.mdl"))
    assert len(gnu) == 9 and gnu == ours
    for name in gnu:
        assert (src / "parallel" / name).read_bytes() == (src / "pardo" / name).read_bytes()
    assert [r[8] for r in sorted(runs["parallel"][2], key=lambda r: int(r[0]))] == [
        r[8] for r in sorted(runs["pardo"][2], key=lambda r: int(r[0]))
    ]


def test_transfer_return_cleanup_match(nodes: Nodes, src: Path) -> None:
    # The returned name has no space: GNU Parallel 20221122 with rsync >= 3.2.4 cannot return
    # "f 1.out" (it quotes the name twice); pardo can (test_remote_options).
    (src / "src" / "d" / "sub dir").mkdir(parents=True)
    (src / "src" / "d" / "sub dir" / "f1.txt").write_text("one\n")
    node = nodes.nodes[1]
    runs = _both(nodes, src, "-S", f"1/{node.login}", "--wd", "wd5", "--transfer",
                 "--return", "{/.}.out", "--cleanup", "wc -c < 'sub dir/f1.txt' > {/.}.out",
                 ":::", "d/./sub dir/f1.txt")  # fmt: skip
    assert runs["parallel"][0] == runs["pardo"][0] == 0
    assert (src / "parallel" / "f1.out").read_text() == (src / "pardo" / "f1.out").read_text()
    assert not os.path.exists(node.path("wd5"))


def test_nonall_matches(nodes: Nodes, src: Path) -> None:
    logins = ",".join(f"1/{x}" for x in nodes.logins())
    runs = {}
    for tool, head in (
        ("parallel", ["parallel", "--will-cite"]),
        ("pardo", [sys.executable, "-m", "pardo"]),
    ):
        proc = subprocess.run([*head, "--ssh", nodes.ssh, "-S", logins, "--nonall", "id", "-un"],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        runs[tool] = (proc.returncode, sorted(proc.stdout.split()))
    assert runs["parallel"] == runs["pardo"]
