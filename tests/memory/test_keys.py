"""Memory's cache key: equal values give equal keys, different values different keys."""

from __future__ import annotations

import pathlib

import numpy as np

from pardo._memory._keys import call_key


def test_dict_and_set_order_do_not_matter() -> None:
    assert call_key({"a": 1, "b": 2}) == call_key({"b": 2, "a": 1})
    assert call_key({3, 1, 2}) == call_key({1, 2, 3})
    assert call_key({1: "x", "k": 2}) == call_key({"k": 2, 1: "x"})  # unorderable keys


def test_shared_sub_objects_do_not_change_the_key() -> None:
    v, v2 = [1, 2], [1, 2]
    assert call_key([{"a": v}, v]) == call_key([{"a": v2}, v])  # joblib#1283
    s = "x" * 10
    assert call_key((s, s)) == call_key((s, "".join(["x"] * 10)))


def test_equal_arrays_equal_keys_whatever_their_object(tmp_path: pathlib.Path) -> None:
    a = np.arange(12.0).reshape(3, 4)
    memmap = np.memmap(tmp_path / "m", dtype="f8", mode="w+", shape=(3, 4))
    memmap[:] = a
    assert call_key((a,)) == call_key((a.copy(),)) == call_key((memmap,))
    assert call_key((a[:, ::2],)) == call_key((np.ascontiguousarray(a[:, ::2]),))


def test_different_values_give_different_keys() -> None:
    a = np.arange(10.0)
    keys = {
        call_key((a,)),
        call_key((a.astype("f4"),)),
        call_key((a.reshape(2, 5),)),
        call_key((a + 1,)),
        call_key((1,)),
        call_key((1.0,)),
        call_key(("1",)),
        call_key(([1],)),
        call_key(((1,),)),
        call_key(({"a": 1},)),
        call_key(([("a", 1)],)),
    }
    assert len(keys) == 11


def test_cyclic_structures_still_get_a_key() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    assert len(call_key(loop)) == 32
