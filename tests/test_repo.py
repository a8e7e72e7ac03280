"""Repository rules: README and CI agree on the test command; every module says what its one job is.

There is no line limit: one job per module is the rule (docs/design.md), and a long module is a
prompt to look, not a number to squeeze under.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "pardo"
MODULES = sorted(PACKAGE.rglob("*.py"))


def ci_test_command() -> str:
    """The command ``.ci/run`` runs: its last line that is neither blank nor a comment."""
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [
        line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")
    ]
    return commands[-1]


def test_ci_runs_the_test_extra_and_pytest() -> None:
    command = ci_test_command()
    assert '".[test]"' in command
    assert "pytest" in command


def test_readme_shows_the_ci_test_command_word_for_word() -> None:
    readme_lines = [line.strip() for line in (ROOT / "README.md").read_text().splitlines()]
    assert ci_test_command() in readme_lines


def test_there_are_modules_to_check() -> None:
    assert PACKAGE / "__init__.py" in MODULES
    assert len(MODULES) > 5


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_has_a_docstring(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert docstring and docstring.strip(), f"{path.name} has no module docstring"
