"""Argument grids: ``product`` (GNU Parallel's ``:::``) and ``zip`` (its ``:::+``).

``product(a, b)`` yields every combination with the *first* source varying slowest, the order GNU
Parallel runs ``::: a... ::: b...`` in. ``zip(a, b)`` pairs values up and stops at the shortest,
as ``:::+`` does. A ``zip`` given to ``product`` counts as one source whose tuples are spliced
into the combination, so ``product(zip(xs, ys), zs)`` is ``::: xs :::+ ys ::: zs``. The command
line builds its jobs with these same two functions.
"""

from __future__ import annotations

import builtins
import itertools
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["Zipped", "product", "zip"]


class Zipped(Iterable[tuple[Any, ...]]):
    """Linked sources: iterating yields one tuple per position, stopping at the shortest source.

    Iterable more than once when its sources are (lists, ranges, tuples).
    """

    __slots__ = ("sources",)

    def __init__(self, sources: tuple[Iterable[Any], ...]) -> None:
        self.sources = sources

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return builtins.zip(*self.sources, strict=False)

    def __repr__(self) -> str:
        return f"pardo.zip({', '.join(repr(s) for s in self.sources)})"


def zip(*sources: Iterable[Any]) -> Zipped:
    """Link sources value by value (GNU Parallel's ``:::+``); the shortest one sets the length.

    Example:
        ``list(pardo.zip([1, 2, 3], "ab")) == [(1, "a"), (2, "b")]``
    """
    return Zipped(sources)


def _as_rows(source: Iterable[Any]) -> Iterable[tuple[Any, ...]]:
    if isinstance(source, Zipped):
        return source
    return ((value,) for value in source)


def product(*sources: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    """Every combination of the sources' values, the first source varying slowest.

    The first source is read lazily (so it may be a long or endless stream, such as stdin); the
    others are read once, up front. A ``pardo.zip(...)`` source contributes all of its values.

    Example:
        ``list(pardo.product([0.1, 1], [0.2, 2]))`` is
        ``[(0.1, 0.2), (0.1, 2), (1, 0.2), (1, 2)]``.
    """
    if not sources:
        yield ()
        return
    first, *rest = sources
    later = [list(_as_rows(source)) for source in rest]
    for head in _as_rows(first):
        for tail in itertools.product(*later):
            yield head + tuple(itertools.chain.from_iterable(tail))
