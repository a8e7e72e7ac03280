"""Input sources: ``:::`` values, ``::::`` files, stdin lines; and the grid of jobs they form.

Sources after ``:::``/``::::`` form a Cartesian product, the first varying slowest; one given
with ``:::+``/``::::+`` is linked to the one before it (``pardo.zip``). With no source at all,
stdin's lines are the only source. With ``--header :`` each source's first value is its name.
Files and stdin are read lazily, so the first source may be an endless stream.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

from pardo._grid import Zipped, product

__all__ = ["SEPARATORS", "Inputs", "SourceSpec", "open_inputs", "split_sources"]

SEPARATORS = (":::", ":::+", "::::", "::::+")


@dataclass(frozen=True)
class SourceSpec:
    """One input source as written: literal ``values``, or a ``path`` ("-" is stdin)."""

    values: tuple[str, ...] = ()
    path: str | None = None
    linked: bool = False


@dataclass
class Inputs:
    """The job rows, lazily, plus what is known about them."""

    rows: Iterator[tuple[str, ...]]
    names: dict[str, int] = field(default_factory=dict)
    streaming: bool = False


def split_sources(tokens: Sequence[str]) -> list[SourceSpec]:
    """Parse ``::: a b :::+ c d :::: file`` (``tokens`` starts with a separator)."""
    specs: list[SourceSpec] = []
    i = 0
    while i < len(tokens):
        separator = tokens[i]
        end = i + 1
        while end < len(tokens) and tokens[end] not in SEPARATORS:
            end += 1
        words = tuple(tokens[i + 1 : end])
        linked = separator.endswith("+")
        if separator.startswith("::::"):
            if not words:
                msg = f"{separator} needs at least one file name (or - for stdin)"
                raise ValueError(msg)
            specs.extend(SourceSpec(path=path, linked=linked) for path in words)
        else:
            specs.append(SourceSpec(values=words, linked=linked))
        i = end
    if specs and specs[0].linked:
        msg = f"{tokens[0]} links to a previous input source, but there is none before it"
        raise ValueError(msg)
    return specs


def _lines(stream: IO[str]) -> Iterator[str]:
    try:
        for line in stream:
            yield line[:-1] if line.endswith("\n") else line
    finally:
        if stream is not sys.stdin:
            stream.close()


def _read(spec: SourceSpec, stdin: IO[str]) -> Iterator[str]:
    if spec.path is None:
        return iter(spec.values)
    if spec.path == "-":
        return _lines(stdin)
    try:
        stream = open(spec.path, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
    except OSError as exc:
        msg = f"cannot read input file {spec.path!r}: {exc.strerror}"
        raise ValueError(msg) from exc
    return _lines(stream)


def open_inputs(specs: Sequence[SourceSpec], header: bool, stdin: IO[str]) -> Inputs:
    """Open every source (stdin when there is none) and lay out the grid of job rows."""
    if not specs:
        specs = [SourceSpec(path="-")]
    names: dict[str, int] = {}
    groups: list[list[Iterable[str]]] = []
    for position, spec in enumerate(specs, start=1):
        values = _read(spec, stdin)
        if header:
            name = next(values, None)
            if name is not None:
                names.setdefault(name, position)
        if spec.linked:
            groups[-1].append(values)
        else:
            groups.append([values])
    sources = [group[0] if len(group) == 1 else Zipped(tuple(group)) for group in groups]
    streaming = any(spec.path == "-" for spec in specs)
    return Inputs(product(*sources), names, streaming)
