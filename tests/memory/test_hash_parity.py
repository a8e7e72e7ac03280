"""``pardo.hash`` gives exactly ``joblib.hash``'s digests, over many kinds of objects."""

from __future__ import annotations

import collections
import datetime
import decimal
from typing import Any

import numpy as np
import pytest

import pardo

joblib = pytest.importorskip("joblib")


class Point:
    def __init__(self, x: int) -> None:
        self.x = x

    def norm(self) -> int:
        return abs(self.x)


def _objects(tmp_path: Any) -> list[Any]:
    memmap = np.memmap(tmp_path / "m.dat", dtype="f8", mode="w+", shape=(4, 3))
    memmap[:] = 1.5
    return [
        0,
        1,
        -7,
        2**100,
        1.5,
        float("inf"),
        complex(1, 2),
        True,
        None,
        "text",
        "é",
        b"bytes",
        (),
        (1, "a"),
        [1, [2, [3]]],
        {"b": 1, "a": 2},
        {"a": 2, "b": 1},
        {1: "a", "b": 2},
        {1, 2, 3},
        {"x", "y"},
        {1, "a"},
        frozenset([1, 2]),
        collections.OrderedDict(a=1, b=2),
        decimal.Decimal("1.5"),
        datetime.date(2020, 1, 2),
        datetime.timedelta(seconds=3),
        np.arange(10),
        np.arange(12.0).reshape(3, 4),
        np.arange(12.0).reshape(3, 4).T,
        np.arange(20)[::3],
        np.zeros((0, 3)),
        np.array(5),
        np.float32(3.5),
        np.int64(2),
        np.arange(6, dtype=">i4"),
        np.array(["a", "bc"]),
        np.ones(3, dtype=object),
        np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
        np.dtype("f8"),
        memmap,
        memmap[1:],
        [memmap, np.asarray(memmap)],
        len,
        Point,
        Point(3).norm,
        [].append,
        np.sum,
        {"k": [np.arange(3), {"n": np.ones(2)}]},
        [Point, Point],
        ["s", "s"],
    ]


@pytest.mark.parametrize("hash_name", ["md5", "sha1"])
@pytest.mark.parametrize("coerce_mmap", [False, True])
def test_digests_equal_joblibs(tmp_path: Any, hash_name: str, coerce_mmap: bool) -> None:
    for obj in _objects(tmp_path):
        expected = joblib.hash(obj, hash_name=hash_name, coerce_mmap=coerce_mmap)
        assert pardo.hash(obj, hash_name=hash_name, coerce_mmap=coerce_mmap) == expected, obj


def test_dict_and_set_order_does_not_matter() -> None:
    assert pardo.hash({"a": 1, "b": 2}) == pardo.hash({"b": 2, "a": 1})
    assert pardo.hash({3, 1, 2}) == pardo.hash({1, 2, 3})


def test_memmap_equals_array_only_under_coerce_mmap(tmp_path: Any) -> None:
    memmap = np.memmap(tmp_path / "m.dat", dtype="f8", mode="w+", shape=(5,))
    array = np.zeros(5)
    assert pardo.hash(memmap) != pardo.hash(array)
    assert pardo.hash(memmap, coerce_mmap=True) == pardo.hash(array, coerce_mmap=True)


def test_bad_hash_name_is_refused() -> None:
    with pytest.raises(ValueError, match="Valid options for 'hash_name' are"):
        pardo.hash(1, hash_name="sha256")
