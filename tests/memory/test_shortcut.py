"""``pardo._engine._shortcut``: cached values go back to their input positions, progress counts them."""

from __future__ import annotations

from typing import Any

import pytest

from pardo._engine._shortcut import Shortcut


class Cached:
    """A function whose even arguments are cached (``__pardo_lookup__`` protocol)."""

    def __call__(self, x: int) -> int:
        return x

    def __pardo_lookup__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, Any]:
        return (args[0] % 2 == 0, args[0])


def plain(x: int) -> int:
    return x


def _run(shortcut: Shortcut, tasks: list[Any], chunk: int) -> list[Any]:
    misses = shortcut.screen(list(tasks))
    results = [f(*a) for f, a, _ in misses]
    chunks = iter([results[i : i + chunk] for i in range(0, len(results), chunk)])
    return [x for c in shortcut.merge(chunks) for x in c]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 100])
def test_hits_return_to_their_positions(chunk: int) -> None:
    cached = Cached()
    tasks = [(cached if i % 3 else plain, (i,), {}) for i in range(20)]
    shortcut = Shortcut(ordered=True)
    assert _run(shortcut, tasks, chunk) == list(range(20))
    assert shortcut.n_hits == len([i for i in range(20) if i % 3 and i % 2 == 0])


def test_all_hits_and_unordered() -> None:
    cached = Cached()
    tasks = [(cached, (i,), {}) for i in range(0, 10, 2)]
    assert _run(Shortcut(ordered=True), tasks, 3) == [0, 2, 4, 6, 8]
    mixed = [(cached, (i,), {}) for i in range(10)]
    assert sorted(_run(Shortcut(ordered=False), mixed, 3)) == list(range(10))


def test_progress_counts_hits_as_done() -> None:
    seen: list[tuple[int, int, bool]] = []

    class Inner:
        def progress(self, done: int, dispatched: int, input_done: bool) -> None:
            seen.append((done, dispatched, input_done))

    shortcut = Shortcut(ordered=True)
    shortcut.screen([(Cached(), (0,), {}), (Cached(), (1,), {})])
    shortcut.reporter(Inner()).progress(1, 1, True)
    assert seen == [(2, 2, True)]
