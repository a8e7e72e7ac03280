"""The documentation cannot rot: its code runs, its examples run, and the site builds.

Every fenced ```python block in README.md and docs/*.md runs: one fresh interpreter per page
executes the page's blocks in order, in one namespace, so a later block may use what an earlier
one defined. A block is skipped only when the line before its fence (blank lines aside) is the
HTML comment ``<!-- no-run -->``; keep that for code that cannot run here (cluster commands).
A block titled as a file (```` ```python title="mylib.py" ````) is written to that file in the
page's working folder instead of being run, so later blocks can import it as a module.
The script keeps the page's line numbers, so a traceback points at the failing line of the page.
Every ``examples/*.py`` runs with ``PARDO_EXAMPLES_SMALL=1`` (small sizes), and
``mkdocs build --strict`` must succeed (skipped when mkdocs is not installed).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
NO_RUN = "<!-- no-run -->"
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n]*)$")
_TITLE = re.compile(r"""title=["'](?P<name>[\w./-]+\.py)["']""")
PAGE_TIMEOUT = 180
EXAMPLE_TIMEOUT = 180


class PageCode(NamedTuple):
    """What a page's python blocks amount to: one script, and the module files it imports."""

    script: str
    files: dict[str, str]


def page_code(markdown: str) -> PageCode:
    """The page's runnable python blocks as one script (other lines left blank), plus files.

    Line ``n`` of the script is line ``n`` of the page, so tracebacks name page lines.
    """
    lines = markdown.splitlines()
    out = [""] * len(lines)
    files: dict[str, str] = {}
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        words = opening["info"].replace("{", " ").replace("}", " ").split()
        language = words[0].lstrip(".").lower() if words else ""
        title = _TITLE.search(opening["info"])
        previous = next((line.strip() for line in reversed(lines[:i]) if line.strip()), "")
        run = language in ("python", "py") and previous != NO_RUN
        body: list[str] = []
        i += 1
        while i < len(lines) and not _closes(lines[i], fence):
            line = lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i]
            if run and title is None:
                out[i] = line
            body.append(line)
            i += 1
        if run and title is not None:
            files[title["name"]] = "\n".join(body) + "\n"
        i += 1  # the closing fence
    return PageCode("\n".join(out) + "\n", files)


def runnable_script(markdown: str) -> str:
    """Just the script of ``page_code``."""
    return page_code(markdown).script


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and set(stripped) == {fence[0]}


def _pages() -> list[Path]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [p for p in pages if p.exists()]


def _pages_with_code() -> list[Path]:
    return [p for p in _pages() if runnable_script(p.read_text(encoding="utf-8")).strip()]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PARDO_EXAMPLES_SMALL"] = "1"
    env["MPLBACKEND"] = "Agg"
    env["NO_MKDOCS_2_WARNING"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


def _run(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


class TestRunnableScript:
    """The extractor that turns a page into a script."""

    def test_keeps_python_blocks_at_their_page_lines(self) -> None:
        """Code lines stay on their own line numbers; prose and other languages become blank."""
        page = "# Title\n\n```python\nx = 1\n```\n\ntext\n\n```bash\nls\n```\n```py\ny = x\n```\n"
        script = runnable_script(page).splitlines()
        assert script[3] == "x = 1"
        assert script[12] == "y = x"
        assert [line for line in script if line] == ["x = 1", "y = x"]

    def test_no_run_marker_skips_only_the_next_block(self) -> None:
        """``<!-- no-run -->`` before a fence, blank lines allowed, skips that block alone."""
        page = "<!-- no-run -->\n\n```python\nboom()\n```\n```python\nok = 1\n```\n"
        assert [line for line in runnable_script(page).splitlines() if line] == ["ok = 1"]

    def test_indented_blocks_are_dedented(self) -> None:
        """Blocks inside admonitions or lists run at top level."""
        page = "!!! note\n    ```python\n    if True:\n        z = 2\n    ```\n"
        assert runnable_script(page).splitlines()[2:4] == ["if True:", "    z = 2"]

    def test_titled_blocks_become_files(self) -> None:
        """A block titled ``name.py`` is written to that file, not run."""
        page = '```python title="lib/mod.py"\nX = 1\n```\n```python\nfrom lib.mod import X\n```\n'
        code = page_code(page)
        assert code.files == {"lib/mod.py": "X = 1\n"}
        assert [line for line in code.script.splitlines() if line] == ["from lib.mod import X"]

    def test_longer_fences_and_attributes(self) -> None:
        """A ```` fence may contain ``` lines; ``{.python title="x"}`` counts as python."""
        page = '````{.python title="a"}\ns = """\n```\n"""\n````\n'
        assert runnable_script(page).splitlines()[1:4] == ['s = """', "```", '"""']


@pytest.mark.slow
@pytest.mark.parametrize("page", _pages_with_code(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_code_runs(page: Path, tmp_path: Path) -> None:
    """Every python block of the page runs, in order, in a fresh interpreter."""
    code = page_code(page.read_text(encoding="utf-8"))
    for name, text in code.files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    script = tmp_path / f"doc_{page.stem.replace('-', '_')}.py"
    script.write_text(code.script, encoding="utf-8")
    done = _run([sys.executable, str(script)], tmp_path, PAGE_TIMEOUT)
    if done.returncode != 0:
        where = page.relative_to(ROOT).as_posix()
        pytest.fail(
            f"code in {where} failed (script line = page line):\n{done.stdout}\n{done.stderr}"
        )


#: Examples that are scripts with required arguments get these (the CLI grid's one point).
EXAMPLE_ARGS: dict[str, list[str]] = {"example.py": ["--set-gamma", "1", "--set-c", "2"]}


def _examples() -> list[Path]:
    return sorted((ROOT / "examples").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("example", _examples(), ids=lambda p: p.name)
def test_example_runs(example: Path, tmp_path: Path) -> None:
    """The example exits 0 with small sizes (``PARDO_EXAMPLES_SMALL=1``)."""
    argv = [sys.executable, str(example), *EXAMPLE_ARGS.get(example.name, [])]
    done = _run(argv, tmp_path, EXAMPLE_TIMEOUT)
    if done.returncode != 0:
        pytest.fail(f"{example.name} failed:\n{done.stdout}\n{done.stderr}")


def test_api_page_names_every_public_name() -> None:
    """docs/api.md documents (``::: pardo.NAME``) or at least names every entry of ``__all__``."""
    import pardo

    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    missing = [
        name
        for name in pardo.__all__
        if f"::: pardo.{name}\n" not in text and f"`{name}`" not in text
    ]
    assert not missing, f"add to docs/api.md (as '::: pardo.NAME' in the right section): {missing}"


def _load_hooks() -> Any:
    spec = importlib.util.spec_from_file_location("pardo_docs_hooks", ROOT / "docs" / "_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestHooks:
    """docs/_hooks.py: the site builds while some planned pages are not written yet."""

    def test_nav_keeps_only_pages_that_exist(self, tmp_path: Path) -> None:
        """Missing pages leave the nav (and empty sections vanish); links to them become text."""
        (tmp_path / "a.md").write_text("# A\n", encoding="utf-8")
        hooks = _load_hooks()
        nav = [{"A": "a.md"}, {"Guide": [{"B": "b.md"}]}, {"Site": "https://example.org"}]
        config: dict[str, Any] = {"nav": nav, "docs_dir": str(tmp_path), "extra": {}}
        config = hooks.on_config(config)
        assert config["nav"] == [{"A": "a.md"}, {"Site": "https://example.org"}]

        page = SimpleNamespace(file=SimpleNamespace(src_uri="a.md"))
        text = "See [B](b.md#x) and [A](a.md) and [C](c.md)."
        out = hooks.on_page_markdown(text, page=page, config=config, files=None)
        assert out == "See B and [A](a.md) and [C](c.md)."


def _mkdocs_missing() -> list[str]:
    wanted = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
    missing = []
    for name in wanted:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


@pytest.mark.slow
def test_site_builds_strict(tmp_path: Path) -> None:
    """``mkdocs build --strict``: no broken link, missing page or docstring warning."""
    missing = _mkdocs_missing()
    if missing:
        pytest.skip(f"docs tooling not installed ({', '.join(missing)}): pip install -e '.[docs]'")
    site = tmp_path / "site"
    argv = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    done = _run(argv, ROOT, 300)
    if done.returncode != 0:
        pytest.fail(f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}")
    assert (site / "index.html").exists()
    assert (site / "api" / "index.html").exists()
