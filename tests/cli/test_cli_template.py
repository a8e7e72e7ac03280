"""Replacement strings and quoting (expected values were read off GNU Parallel 20221122)."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from pardo._cli._template import Template, modify

# value -> ({.}, {/}, {//}, {/.}) as GNU Parallel prints them with --dry-run.
GNU_MODIFIERS = {
    "dir/sub/file.tar.gz": ("dir/sub/file.tar", "file.tar.gz", "dir/sub", "file.tar"),
    "plain": ("plain", "plain", ".", "plain"),
    "/abs/x.y": ("/abs/x", "x.y", "/abs", "x"),
    "dir.x/file": ("dir.x/file", "file", "dir.x", "file"),
    ".hidden": ("", ".hidden", ".", ""),
    "a/.hid": ("a/", ".hid", "a", ""),
    "dir/": ("dir/", "", ".", ""),
    "a.b.": ("a.b", "a.b.", ".", "a.b"),
    "": ("", "", ".", ""),
    "a b.c": ("a b", "a b.c", ".", "a b"),
}


def expand(words: list[str], values: tuple[str, ...], seq: int = 1, slot: int = 1) -> str:
    return Template.parse(words).expand(values, seq, slot)


class TestModifiers:
    @pytest.mark.parametrize("value", sorted(GNU_MODIFIERS))
    def test_same_as_gnu_parallel(self, value: str) -> None:
        """{.} {/} {//} {/.} give what GNU Parallel gives, edge cases included."""
        got = tuple(modify(value, m) for m in (".", "/", "//", "/."))
        assert got == GNU_MODIFIERS[value]

    @pytest.mark.parametrize(
        ("value", "dirname"), [("/", "/"), ("/x", "/"), ("a//b", "a"), ("a/b/", "a")]
    )
    def test_dirname_roots_and_slashes(self, value: str, dirname: str) -> None:
        """{//} follows Perl's dirname on roots, doubled and trailing slashes."""
        assert modify(value, "//") == dirname


class TestExpand:
    def test_values_are_quoted_as_one_word(self) -> None:
        """Spaces, ; and quotes in a value stay inside one shell word."""
        line = expand(["echo", "{}"], ("a b",))
        assert line == "echo 'a b'"
        assert expand(["echo", "{}"], ("c;d",)) == "echo 'c;d'"
        assert shlex.split(expand(["echo", "{}"], ("e'f",))) == ["echo", "e'f"]

    def test_quoted_value_is_one_argument_for_the_shell(self) -> None:
        """Running the line shows the shell saw each value as one argument, unexpanded."""
        line = expand(["printf", "'<%s>'", "{1}", "{2}"], ("a b", "$HOME;*"))
        out = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, check=True)
        assert out.stdout == "<a b><$HOME;*>"

    def test_command_words_are_shell_code(self) -> None:
        """Words are joined, not quoted: ';' and pipes in the command work."""
        assert expand(["echo {}; echo x"], ("a",)) == "echo a; echo x"

    def test_no_replacement_string_appends_values(self) -> None:
        """``echo ::: a ::: b c`` runs ``echo a b c``-style lines."""
        assert expand(["echo"], ("a", "b c")) == "echo a 'b c'"

    def test_empty_command_runs_the_values(self) -> None:
        """Without a command, the values are the command line, unquoted."""
        assert expand([], ("echo a b",)) == "echo a b"

    def test_all_values_with_modifier(self) -> None:
        """``{.}`` with two sources modifies and quotes each value."""
        assert expand(["echo", "{.}"], ("a.x", "b c.y")) == "echo a 'b c'"

    def test_positional_and_modifier(self) -> None:
        """``{1/.}`` and ``{2.}`` pick a source and modify it."""
        assert expand(["echo", "{1/.}", "{2.}"], ("a/b.c", "d/e.f")) == "echo b d/e"

    def test_missing_source_is_empty(self) -> None:
        """``{3}`` with two sources substitutes nothing, as GNU Parallel does."""
        assert expand(["echo", "{3}"], ("a", "b")) == "echo "

    def test_seq_and_slot(self) -> None:
        """``{#}`` is the job number, ``{%}`` its slot; neither appends the values."""
        assert expand(["echo", "{#}", "{%}"], ("a",), seq=7, slot=3) == "echo 7 3"

    def test_adjacent_replacements(self) -> None:
        """``{}{}`` and ``pre{}post`` substitute in place."""
        assert expand(["echo", "{}{}", "pre{}post"], ("x",)) == "echo xx prexpost"

    def test_header_names(self) -> None:
        """``{name}`` (and with a modifier) refers to the source named by --header."""
        template = Template.parse(["echo", "{lr}", "{path/}"], {"lr": 1, "path": 2})
        assert template.expand(("0.1", "d/f.txt"), 1, 1) == "echo 0.1 f.txt"

    def test_unknown_braces_stay_literal(self) -> None:
        """``{print}`` is not a header name: left alone, and the values get appended."""
        line = Template.parse(["awk", "'{print}'"], {"x": 1}).expand(("f",), 1, 1)
        assert line == "awk '{print}' f"
