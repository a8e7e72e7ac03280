"""Coroutine functions: concurrent callers of one call compute it once, without blocking the loop."""

from __future__ import annotations

import asyncio
import pathlib

from pardo import Memory


def test_concurrent_coroutines_compute_a_call_once(tmp_path: pathlib.Path) -> None:
    runs: list[int] = []
    memory = Memory(tmp_path, verbose=0)

    @memory.cache
    async def slow_double(x: int) -> int:
        runs.append(x)
        await asyncio.sleep(0.2)  # the others arrive meanwhile: this is what is tested
        return 2 * x

    ticks: list[int] = []

    async def ticker() -> None:
        # Runs while the callers wait on the lock. A wait that blocked the loop would also block
        # the holder of the lock: the test would hang (and time out) instead of passing.
        for i in range(5):
            ticks.append(i)
            await asyncio.sleep(0.01)

    async def main() -> list[int]:
        results = await asyncio.gather(*(slow_double(21) for _ in range(4)), ticker())
        return [r for r in results if r is not None]

    assert asyncio.run(main()) == [42, 42, 42, 42]
    assert runs == [21]
    assert ticks == [0, 1, 2, 3, 4]


def test_call_recomputes_under_the_lock(tmp_path: pathlib.Path) -> None:
    runs: list[int] = []
    memory = Memory(tmp_path, verbose=0)

    @memory.cache
    async def double(x: int) -> int:
        runs.append(x)
        return 2 * x

    async def main() -> None:
        assert await double(1) == 2
        assert await double(1) == 2
        value, metadata = await double.call(1)
        assert value == 2 and "duration" in metadata

    asyncio.run(main())
    assert runs == [1, 1]
