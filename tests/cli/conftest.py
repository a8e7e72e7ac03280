"""Fixtures for the command-line tests: run ``pardo`` in-process or as a real process."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from pardo._cli import main


@dataclass
class Outcome:
    """What one ``pardo`` run printed and returned."""

    status: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


Runner = Callable[..., Outcome]


@pytest.fixture
def pardo(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]
) -> Runner:
    """``pardo("-k", "echo", ":::", "a")`` runs the command line in this process, in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PARDO_SHELL", "/bin/sh")

    def run(*argv: str, stdin: str = "") -> Outcome:
        capfd.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        status = main(list(argv))
        captured = capfd.readouterr()
        return Outcome(status, captured.out, captured.err)

    return run


@pytest.fixture
def pardo_process(tmp_path: os.PathLike[str]) -> Runner:
    """``pardo_process(*argv)`` runs ``python -m pardo`` as a real process, in tmp_path."""

    def run(*argv: str, stdin: str = "", timeout: float = 60) -> Outcome:
        env = {**os.environ, "PARDO_SHELL": "/bin/sh"}
        done = subprocess.run(
            [sys.executable, "-m", "pardo", *argv],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=timeout,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)

    return run
