"""The input side: tasks held as columns (``pardo._task.Columns``), the look-ahead and the
flight limit of ``pardo._engine._input``.

The parent packs the ``(f, args, kwargs)`` triples it reads into columns while they share one
function and pass no keywords; whatever the input mixes, the batches must hold exactly the
tasks read, in input order, and behave as a list of triples would.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from pardo import delayed
from pardo._engine._batching import FixedBatcher
from pardo._engine._input import Feed, _LookAhead
from pardo._task import Batch, Columns, Task, pack


def f(x: int, y: int = 0) -> int:
    return x + y


def g(x: int) -> int:
    return -x


def test_columns_index_slice_iterate_and_pickle_as_triples() -> None:
    cols = Columns(f, [(1,), (2,), (3,)])
    assert len(cols) == 3
    assert cols[1] == (f, (2,), {})
    assert cols[-1] == (f, (3,), {})
    part = cols[1:]
    assert isinstance(part, Columns) and list(part) == [(f, (2,), {}), (f, (3,), {})]
    assert list(cols) == [(f, (1,), {}), (f, (2,), {}), (f, (3,), {})]
    again = pickle.loads(pickle.dumps(cols))
    assert type(again) is Columns and list(again) == list(cols)


def test_pack_only_packs_one_function_without_keywords() -> None:
    same: list[Task] = [(f, (1,), {}), (f, (2,), {})]
    assert type(pack(same)) is Columns
    mixed: list[Task] = [(f, (1,), {}), (g, (2,), {})]
    keywords: list[Task] = [(f, (1,), {}), (f, (2,), {"y": 1})]
    assert pack(mixed) is mixed
    assert pack(keywords) is keywords
    assert pack([]) == []


def _tasks(spec: str) -> list[Task]:
    """``"ffgk"``: f(i), f(i), g(i), f(i, y=1): one letter per task, i its position."""
    made = {"f": lambda i: delayed(f)(i), "g": lambda i: delayed(g)(i)}
    made["k"] = lambda i: delayed(f)(i, y=1)
    return [made[c](i) for i, c in enumerate(spec)]


@pytest.mark.parametrize(
    ("chunks", "cuts"),
    [
        (["ffff", "ffff"], [3, 3, 10]),  # columns throughout
        (["ffff", "gggg"], [2, 5, 10]),  # a second function: the rest as triples
        (["ffkf", "ffff"], [1, 4, 10]),  # keywords
        (["ff", "g", "ffff"], [3, 2, 10]),  # triples, emptied, then columns again
    ],
)
def test_the_lookahead_gives_back_what_was_read_in_order(
    chunks: list[str], cuts: list[int]
) -> None:
    buffer = _LookAhead()
    read: list[Task] = []
    out: list[Any] = []
    n = 0
    for chunk in chunks:
        tasks = _tasks(chunk)
        # renumber so that positions run across the chunks
        tasks = [(fn, (n + i, *a[1:]), kw) for i, (fn, a, kw) in enumerate(tasks)]
        n += len(tasks)
        read += tasks
        buffer.add(list(tasks))
        out += list(buffer.cut(cuts.pop(0)))
    while len(buffer):
        out += list(buffer.cut(3))
    assert out == read


def test_a_call_over_mixed_functions_keeps_every_result_in_order() -> None:
    from pardo import Parallel

    tasks = [delayed(f if i % 7 else g)(i) for i in range(200)]
    tasks += [delayed(f)(i, y=1) for i in range(200, 220)]
    expected = [fn(*a, **kw) for fn, a, kw in tasks]
    assert Parallel(n_jobs=2, backend="threading", batch_size=8)(iter(tasks)) == expected


def test_feed_batches_hold_columns_for_one_function() -> None:
    feed = Feed(
        iter([delayed(f)(i) for i in range(10)]),
        batcher=FixedBatcher(4),
        n_jobs=2,
        total=None,
        max_in_flight=4,
        make_batch=lambda tasks, start: Batch(tasks, start, {}),
    )
    batch = feed.next_batch(0)
    assert batch is not None and type(batch.tasks) is Columns
    assert batch.start == 0 and list(batch.tasks) == [(f, (i,), {}) for i in range(4)]
    assert batch().results == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("total", "per_task", "expected"),
    [
        (None, 0.01, 3),  # long batches over a generator: one per worker plus one
        (None, 0.0001, 4),  # short batches: the second one in flight hides the round trip
        (None, None, 4),  # nothing measured yet
        (200, 0.01, 4),  # a known length: the tail rule needs no look-ahead to see the end
    ],
)
def test_flight_limit_leaves_the_lookahead_room_while_the_end_is_unknown(
    total: int | None, per_task: float | None, expected: int
) -> None:
    from pardo._engine._batching import AutoBatcher

    batcher = AutoBatcher()
    batcher.size, batcher.per_task = 32, per_task
    feed = Feed(
        iter([]),
        batcher=batcher,
        n_jobs=2,
        total=total,
        max_in_flight=4,
        make_batch=lambda tasks, start: Batch(tasks, start, {}),
    )
    assert feed.flight_limit(4) == expected
    assert feed.flight_limit(2) == min(2, expected)  # never above the caller's own bound
