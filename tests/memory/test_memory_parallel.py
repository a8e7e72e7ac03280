"""Resumable grids: ``Parallel`` answers cached tasks in the parent and dispatches only misses."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np
import pytest

from pardo import Memory, Parallel, delayed


def square(x: int) -> int:
    return x * x


def record_and_square(x: int, log: str) -> int:
    with open(os.path.join(log, f"{x}-{os.getpid()}"), "w"):
        pass
    if x == 6 and not os.path.exists(os.path.join(log, "resume")):
        raise KeyboardInterrupt  # the run is interrupted here, the first time
    return x * x


@pytest.mark.parametrize("return_as", ["list", "generator", "generator_unordered"])
def test_hits_are_answered_in_order_without_dispatch(
    tmp_path: pathlib.Path, backend: str, return_as: str
) -> None:
    memory = Memory(tmp_path, verbose=0)
    cached = memory.cache(square)
    for x in (0, 3, 4, 9):
        cached(x)
    out = list(
        Parallel(n_jobs=2, backend=backend, return_as=return_as)(
            delayed(cached)(x) for x in range(10)
        )
    )
    if return_as == "generator_unordered":
        out.sort()
    assert out == [x * x for x in range(10)]


def test_all_hits_dispatch_nothing(tmp_path: pathlib.Path) -> None:
    memory = Memory(tmp_path, verbose=0)
    cached = memory.cache(square)
    for x in range(5):
        cached(x)
    seen: list[tuple[int, int]] = []
    out = Parallel(
        n_jobs=2, backend="threading", progress=lambda done, total: seen.append((done, total))
    )(delayed(cached)(x) for x in range(5))
    assert out == [0, 1, 4, 9, 16]
    assert seen and seen[-1] == (5, 5)


def test_interrupted_grid_resumes_with_only_the_unfinished_tasks(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "log"
    log.mkdir()
    memory = Memory(tmp_path / "cache", verbose=0)
    cached = memory.cache(record_and_square, ignore=["log"])
    grid = range(10)
    with pytest.raises(KeyboardInterrupt):
        Parallel(n_jobs=1, backend="sequential")(delayed(cached)(x, str(log)) for x in grid)
    first = {name.split("-")[0] for name in os.listdir(log)}
    assert first == {str(x) for x in range(7)}
    for name in os.listdir(log):
        os.unlink(log / name)
    (log / "resume").touch()
    out = Parallel(n_jobs=2, backend="loky")(delayed(cached)(x, str(log)) for x in grid)
    assert out == [x * x for x in grid]
    second = {name.split("-")[0] for name in os.listdir(log) if name != "resume"}
    assert second == {"6", "7", "8", "9"}


def test_memmapped_hits_reach_workers_as_file_references(tmp_path: pathlib.Path) -> None:
    memory = Memory(tmp_path, verbose=0, mmap_mode="r")
    ones = memory.cache(np.ones)
    array = ones(300_000)
    assert isinstance(array, np.memmap)

    def kind(a: Any) -> str:
        return type(a).__name__

    out = Parallel(n_jobs=2, backend="loky", max_nbytes=None)(
        delayed(kind)(array) for _ in range(2)
    )
    assert out == ["memmap", "memmap"]
