"""Every argument of ``Memory``, ``Memory.cache`` and ``Memory.reduce_size``, tried with the same
values through joblib and pardo (issue 16's rule: what joblib accepts, pardo accepts with the same
meaning; what it rejects, pardo rejects). The exceptions are listed with their reasons, and in
docs/joblib.md.
"""

from __future__ import annotations

import datetime
import pathlib
import warnings
from types import ModuleType
from typing import Any

import pytest

import pardo

joblib = pytest.importorskip("joblib")

#: (where, argument, value) joblib accepts and pardo refuses, and why.
PARDO_REJECTS = {
    ("Memory", "location", "3"): "a number is not a folder (joblib makes a folder named '3')",
    ("Memory", "mmap_mode", "'x'"): "joblib takes an unknown mode silently until an array comes",
    ("cache", "mmap_mode", "'x'"): "idem",
    ("reduce_size", "bytes_limit", "-1"): "a negative size is a mistake; 0 empties the cache",
    ("reduce_size", "bytes_limit", "1.5"): "a byte count is whole; joblib compares the float",
    (
        "reduce_size",
        "items_limit",
        "-1",
    ): "joblib then keeps the wrong entries (a slice from the end)",
    ("reduce_size", "items_limit", "1.5"): "an entry count is whole",
}

#: (where, argument, value) joblib refuses (or crashes on) and pardo accepts, and why.
PARDO_ACCEPTS = {
    ("Memory", "backend_options", "{'compress': True}"): "the store's own option, as documented",
    ("reduce_size", "age_limit", "3"): "seconds, as expires_after; joblib crashes (AttributeError)",
}

CASES = {
    ("Memory", "location"): ["None", "'<tmp>'", "3"],
    ("Memory", "backend"): ["'local'", "'nope'", "3"],
    ("Memory", "mmap_mode"): ["None", "'r'", "'r+'", "'c'", "'w+'", "'x'"],
    ("Memory", "compress"): ["False", "True", "3", "0", "('zlib', 3)", "'zlib'", "10"],
    ("Memory", "verbose"): ["0", "1", "10", "2.5", "'x'", "None"],
    ("Memory", "backend_options"): ["None", "{}", "{'compress': True}", "3"],
    ("cache", "ignore"): ["None", "[]", "['y']", "['z']", "'y'", "3"],
    ("cache", "verbose"): ["None", "0", "5", "'x'"],
    ("cache", "mmap_mode"): ["False", "None", "'r'", "'x'"],
    ("cache", "cache_validation_callback"): ["None", "(lambda metadata: True)", "3"],
    ("reduce_size", "bytes_limit"): ["None", "100", "'1M'", "-1", "'x'", "1.5"],
    ("reduce_size", "items_limit"): ["None", "1", "0", "-1", "1.5", "'x'"],
    ("reduce_size", "age_limit"): [
        "None",
        "datetime.timedelta(days=1)",
        "3",
        "'x'",
        "datetime.timedelta(-1)",
    ],
}


def add(x: int, y: int = 1) -> int:
    return x + y


def outcome(lib: ModuleType, where: str, argument: str, value: Any, folder: pathlib.Path) -> str:
    """``"accepted"`` when building, caching and calling (or reducing) works, else ``"rejected"``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if where == "Memory":
                kwargs = {"location": folder, "verbose": 0, argument: value}
                lib.Memory(**kwargs).cache(add)(1)
            elif where == "cache":
                lib.Memory(folder, verbose=0).cache(add, **{argument: value})(1)
            else:
                memory = lib.Memory(folder, verbose=0)
                memory.cache(add)(1)
                memory.reduce_size(**{argument: value})
    except Exception:
        return "rejected"
    return "accepted"


@pytest.mark.parametrize(
    ("where", "argument", "text"),
    [(w, a, v) for (w, a), values in CASES.items() for v in values],
)
def test_same_values_accepted(where: str, argument: str, text: str, tmp_path: pathlib.Path) -> None:
    def value() -> Any:
        return str(tmp_path / "given") if text == "'<tmp>'" else eval(text)

    theirs = outcome(joblib, where, argument, value(), tmp_path / "joblib")
    ours = outcome(pardo, where, argument, value(), tmp_path / "pardo")
    key = (where, argument, text)
    if key in PARDO_REJECTS:
        assert (theirs, ours) == ("accepted", "rejected"), PARDO_REJECTS[key]
    elif key in PARDO_ACCEPTS:
        assert (theirs, ours) == ("rejected", "accepted"), PARDO_ACCEPTS[key]
    else:
        assert ours == theirs


def test_listed_differences_are_documented() -> None:
    page = (pathlib.Path(__file__).parents[2] / "docs" / "joblib.md").read_text()
    for where, argument, text in (*PARDO_REJECTS, *PARDO_ACCEPTS):
        assert f"{argument}={text}" in page, (
            f"docs/joblib.md does not list {where}({argument}={text})"
        )


_ = datetime  # the cases' texts name it
