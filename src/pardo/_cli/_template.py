"""The command template: GNU Parallel's replacement strings, expanded into one shell command line.

The command's words are joined with spaces and later run by the shell, so ``'exit {}'``, pipes
and ``;`` work as in GNU Parallel. Each substituted value is quoted (``shlex.quote``) so that it
stays one word whatever it holds. Replacement strings:

=========  =====================================================================
``{}``     every value of the job (quoted, space separated)
``{N}``    the value of input source N (1-based)
``{name}`` the source named ``name`` by ``--header :``
``{#}``    the job's sequence number; ``{%}`` its slot (1..jobs)
=========  =====================================================================

``{}``, ``{N}`` and ``{name}`` take GNU's modifiers: ``.`` (drop the extension), ``/`` (basename),
``//`` (dirname) and ``/.`` (basename without extension), as in ``{.}``, ``{2/}``, ``{name/.}``.
A command with no replacement string gets the values appended; an empty command runs the values
themselves as the command line.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Template", "expand_name", "modify"]

_REF = re.compile(r"\{(#|%|(\d+|[A-Za-z_][A-Za-z0-9_]*)?(//|/\.|/|\.)?)\}")


def _dirname(value: str) -> str:
    # Perl's File::Basename::dirname, which GNU Parallel uses: "dir/" -> ".", "" -> ".".
    stripped = value.rstrip("/")
    if not stripped:
        return "/" if value else "."
    if "/" not in stripped:
        return "."
    return stripped.rpartition("/")[0].rstrip("/") or "/"


def _drop_extension(value: str) -> str:
    head, dot, extension = value.rpartition(".")
    return head if dot and "/" not in extension else value


def modify(value: str, modifier: str) -> str:
    """``value`` under a GNU Parallel modifier: "" (as is), ".", "/", "//" or "/."."""
    if modifier == ".":
        return _drop_extension(value)
    if modifier == "/":
        return value.rpartition("/")[2]
    if modifier == "//":
        return _dirname(value)
    if modifier == "/.":
        return _drop_extension(value.rpartition("/")[2])
    return value


@dataclass(frozen=True)
class _Ref:
    """One replacement string: ``kind`` is "all", "index", "seq" or "slot"."""

    kind: str
    index: int = 0
    modifier: str = ""


@dataclass(frozen=True)
class Template:
    """A parsed command: literal text and replacement strings, alternating."""

    parts: tuple[str | _Ref, ...]
    raw_values: bool = False

    @classmethod
    def parse(cls, words: Sequence[str], names: Mapping[str, int] | None = None) -> Template:
        """Parse the command ``words``; ``names`` maps ``--header`` names to 1-based positions.

        A ``{word}`` that is not a header name stays literal text (``awk '{print}'`` keeps working).
        """
        if not words:
            return cls((_Ref("all"),), raw_values=True)
        text = " ".join(words)
        parts: list[str | _Ref] = []
        position = 0
        for match in _REF.finditer(text):
            ref = _reference(match, names or {})
            if ref is None:
                continue
            parts.extend((text[position : match.start()], ref))
            position = match.end()
        parts.append(text[position:])
        if len(parts) == 1:
            parts.extend((" ", _Ref("all"), ""))
        return cls(tuple(part for part in parts if part != ""))

    def expand(self, values: Sequence[str], seq: int, slot: int) -> str:
        """The shell command line for one job."""
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif self.raw_values:
                out.append(" ".join(values))
            else:
                out.append(_substitute(part, values, seq, slot))
        return "".join(out)


def expand_name(text: str, values: Sequence[str], seq: int, slot: int) -> str:
    """``text`` (a file or directory name, e.g. ``--return out_{1}.txt``) with its replacement
    strings substituted as they are, unquoted, and nothing appended when it has none."""
    template = Template.parse([text])
    out = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
        elif part.kind == "all":
            out.append(" ".join(modify(value, part.modifier) for value in values))
        elif part.kind in ("seq", "slot"):
            out.append(str(seq if part.kind == "seq" else slot))
        elif 1 <= part.index <= len(values):
            out.append(modify(values[part.index - 1], part.modifier))
    parts = template.parts
    if len(parts) == 3 and isinstance(parts[0], str) and parts[1:] == (" ", _Ref("all")):
        return text  # parse appended " {}" to a name with no replacement string
    return "".join(out)


def _reference(match: re.Match[str], names: Mapping[str, int]) -> _Ref | None:
    body, key, modifier = match.group(1), match.group(2), match.group(3) or ""
    if body == "#":
        return _Ref("seq")
    if body == "%":
        return _Ref("slot")
    if key is None:
        return _Ref("all", 0, modifier)
    if key.isdigit():
        return _Ref("index", int(key), modifier)
    if key in names:
        return _Ref("index", names[key], modifier)
    return None


def _substitute(ref: _Ref, values: Sequence[str], seq: int, slot: int) -> str:
    if ref.kind == "seq":
        return str(seq)
    if ref.kind == "slot":
        return str(slot)
    if ref.kind == "all":
        return " ".join(shlex.quote(modify(value, ref.modifier)) for value in values)
    if not 1 <= ref.index <= len(values):
        return ""  # GNU Parallel substitutes nothing for a source that does not exist
    return shlex.quote(modify(values[ref.index - 1], ref.modifier))
