"""The same command lines through GNU Parallel and pardo: same commands, output, logs, statuses.

Skipped when GNU Parallel is not installed (``apt-get install parallel``). Commands are compared
word by word (``shlex.split``), since GNU Parallel quotes a few characters pardo leaves bare
(``a=b`` vs ``'a=b'``): the shell sees the same words either way.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

GNU = shutil.which("parallel")
pytestmark = pytest.mark.skipif(GNU is None, reason="GNU Parallel is not installed")


def gnu(*argv: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert GNU is not None
    env = {**os.environ, "PARALLEL_SHELL": "/bin/sh"}
    return subprocess.run(
        [GNU, "--will-cite", *argv], input=stdin, capture_output=True, text=True, env=env, cwd=cwd
    )


def words(text: str) -> list[list[str]]:
    return [shlex.split(line) for line in text.splitlines()]


DRY_RUNS = [
    ("echo", "{}", ":::", "a b", "c;d", "e'f", "$HOME", "*", "a=b", "é", ""),
    ("echo", ":::", "a", "b", ":::", "c", "d"),
    ("echo {1} {2}; echo x", ":::", "a", "b", ":::", "c", "d"),
    (
        "echo",
        "{.}",
        "{/}",
        "{//}",
        "{/.}",
        "{#}",
        ":::",
        "dir/sub/f.tar.gz",
        "plain",
        "/abs/x.y",
        ".h",
        "dir/",
    ),
    ("echo", "{1/.}", "{2.}", "{3}", ":::", "a/b.c", ":::", "d/e.f"),
    ("echo", "{1}", "{2}", "{3}", ":::", "a", "b", ":::", "x", "y", "z", ":::+", "1", "2"),
    ("echo", "{1}", "{2}", ":::", "a", "b", "c", ":::+", "1", "2"),
    ("--header", ":", "echo", "{a}", "{b}", "{1}", "{foo}", ":::", "a", "1", "2", ":::", "b", "3"),
    ("--header", ":", "echo", "{x.}", "{x/}", ":::", "x", "a.b/c.d"),
    ("echo", "{}", "{.}", ":::", "a.x", ":::", "b c.y"),
    (":::", "echo a b", "ls;x"),
    ("echo", "{}{}", "pre{}post", "{print}", ":::", "x"),
]


@pytest.mark.parametrize("argv", DRY_RUNS, ids=lambda argv: " ".join(argv)[:40])
def test_dry_run_commands(pardo, argv: tuple[str, ...]) -> None:
    """``--dry-run -k`` prints the same commands, word for word."""
    expected = gnu("--dry-run", "-k", *argv)
    assert expected.returncode == 0, expected.stderr
    got = pardo("--dry-run", "-k", *argv)
    assert got.status == 0
    assert words(got.out) == words(expected.stdout)


def test_dry_run_stdin(pardo) -> None:
    """Lines of stdin are values, spaces and all."""
    expected = gnu("--dry-run", "-k", "echo", stdin="x y\nz\n")
    assert words(pardo("--dry-run", "-k", "echo", stdin="x y\nz\n").out) == words(expected.stdout)


RUNS = [
    ("-k", "echo {1}-{2}", ":::", "a", "b", "c", ":::", "1", "2"),
    ("-k", "-j", "3", "printf '%s\\n' {}", ":::", "a b", "c;d", "e'f"),
    ("-k", "--tag", "echo {1}; echo err >&2", ":::", "a b", ":::", "c"),
    ("-k", "--tag", "printf 'l1\\nl2'", ":::", "a"),
    ("-k", "echo out{}; echo err{} >&2", ":::", "1", "2", "3"),
    ("-k", "exit {}", ":::", "0", "1", "2", "0", "7"),
    ("-k", "-j", "1", "--halt", "now,fail=1", "echo {}; exit {}", ":::", "0", "5", "6"),
    ("-k", "-j", "1", "--halt", "soon,fail=20%", "exit {}", ":::", "0", "5", "6", "7", *"000000"),
    ("-k", "-j", "1", "--halt", "now,success=1", "echo {}; exit {}", ":::", "1", "0", "2"),
    ("-k", "-j", "1", "--halt", "now,fail=1", "kill -9 $$", ":::", "1"),
    ("-k", "--retries", "2", "echo {}; exit {}", ":::", "0", "4"),
]


@pytest.mark.slow
@pytest.mark.parametrize("argv", RUNS, ids=lambda argv: " ".join(argv)[:40])
def test_output_and_exit_status(pardo, argv: tuple[str, ...]) -> None:
    """``-k`` runs print the same stdout (and stderr lines) and exit with the same status."""
    expected = gnu(*argv)
    got = pardo(*argv)
    assert (got.status, got.out) == (expected.returncode, expected.stdout)
    errors = [line for line in got.err.splitlines() if not line.startswith("pardo:")]
    assert errors == job_lines(expected.stderr)


def job_lines(stderr: str) -> list[str]:
    """GNU Parallel's stderr without its own messages (a halt note and the command it quotes)."""
    kept: list[str] = []
    quoting = False
    for line in stderr.splitlines():
        if line.startswith("parallel:"):
            quoting = line.rstrip().endswith(":")
        elif quoting:
            quoting = False
        else:
            kept.append(line)
    return kept


@pytest.mark.slow
def test_joblog_columns(pardo, tmp_path: Path) -> None:
    """Both logs hold the same rows but for the times: Seq Host Send Receive Exitval Signal
    Command, with the same header and the same Starttime/JobRuntime formats."""
    argv = ("-k", "echo {1} {2}; exit {3}", ":::", "a", "b c", ":::", "x", ":::", "0", "3")
    gnu("--joblog", str(tmp_path / "gnu.log"), *argv, cwd=tmp_path)
    pardo("--joblog", "pardo.log", *argv)

    def rows(name: str) -> tuple[str, list[tuple[object, ...]]]:
        header, *lines = (tmp_path / name).read_text().splitlines()
        cells = sorted((line.split("\t") for line in lines), key=lambda r: int(r[0]))
        shape = [(len(r[2].split(".")[1]), len(r[3]), len(r[3].split(".")[1])) for r in cells]
        kept = [(*r[:2], *r[4:8], shlex.split(r[8])) for r in cells]
        return header, list(zip(kept, shape, strict=False))

    assert rows("pardo.log") == rows("gnu.log")


@pytest.mark.slow
def test_resume_and_resume_failed(pardo, tmp_path: Path) -> None:
    """A log written by GNU Parallel resumes in pardo: the same jobs are skipped and rerun."""
    argv = ("-k", "--joblog", "log", "echo {}; exit {}", ":::", "0", "1", "2")
    gnu(*argv, cwd=tmp_path)
    more = ("-k", "--joblog", "log", "echo {}; exit {}", ":::", "0", "1", "2", "0")
    assert pardo("--resume", *more).lines == ["0"]
    failed = pardo("--resume-failed", *more)
    assert (failed.status, failed.lines) == (2, ["1", "2"])


@pytest.mark.slow
def test_results_layout(pardo, tmp_path: Path) -> None:
    """``--results`` writes the same tree of files with the same contents."""
    argv = ("echo {1} {2}; echo e >&2", ":::", "a", "b c", ":::", "x/y", "z")
    gnu("--results", "gnu", *argv, cwd=tmp_path)
    pardo("--results", "mine", *argv)

    def tree(root: Path) -> dict[str, bytes]:
        return {
            str(path.relative_to(root)): path.read_bytes()
            for path in root.rglob("*")
            if path.is_file()
        }

    assert tree(tmp_path / "mine") == tree(tmp_path / "gnu")
