"""Crash safety, compute-once under concurrency, limits, layout and write errors of ``Memory``."""

from __future__ import annotations

import errno
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import warnings
from typing import Any

import numpy as np
import pytest

from pardo import Memory
from pardo._memory import _local

CALLS: list[Any] = []


def double(x: int) -> int:
    CALLS.append(x)
    return 2 * x


def _files(root: pathlib.Path) -> list[pathlib.Path]:
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and ".locks" not in p.parts and p.name != ".gitignore"
    ]


@pytest.fixture
def memory(tmp_path: pathlib.Path) -> Memory:
    CALLS.clear()
    return Memory(tmp_path, verbose=0)


def test_entries_are_sharded_with_two_files_each(memory: Memory, tmp_path: pathlib.Path) -> None:
    f = memory.cache(double)
    for x in range(50):
        f(x)
    files = _files(tmp_path)
    assert len(files) == 100
    assert {p.suffix for p in files} == {".pkl", ".json"}
    shards = {p.parent for p in files}
    assert len(shards) > 10 and all(len(p.parent.name) == 2 for p in files)


def test_truncated_entry_warns_once_and_recomputes(memory: Memory, tmp_path: pathlib.Path) -> None:
    f = memory.cache(double)
    f(7)
    (pkl,) = [p for p in _files(tmp_path) if p.suffix == ".pkl"]
    pkl.write_bytes(pkl.read_bytes()[:20])
    with pytest.warns(UserWarning, match="damaged"):
        assert f(7) == 14
    assert CALLS.count(7) == 2
    pkl.write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second damage of the same entry is not warned again
        assert f(7) == 14
    assert CALLS.count(7) == 3


def _flip(path: pathlib.Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def big(n: int) -> Any:
    CALLS.append(n)
    return {"n": n, "a": np.arange(n, dtype=np.int64)}


def test_a_flipped_byte_is_recomputed_not_read_back(memory: Memory, tmp_path: pathlib.Path) -> None:
    """A damaged byte that still decodes (an int's own byte) is caught by the stored digests."""
    f = memory.cache(big)
    f(1000)
    (pkl,) = [p for p in _files(tmp_path) if p.suffix == ".pkl"]
    size = pkl.stat().st_size
    _flip(pkl, size - 16 - 8 * 500)  # inside the array's bytes: element 500
    with pytest.warns(UserWarning, match="damaged"):
        out = f(1000)
    assert out["a"][500] == 500 and CALLS == [1000, 1000]
    g = memory.cache(double)
    g(7)
    (small,) = [p for p in _files(tmp_path) if p.suffix == ".pkl" and p != pkl]
    raw = small.read_bytes()
    _flip(small, raw.rindex(bytes([14])))  # the pickled 14 itself: it would decode as 15
    with pytest.warns(UserWarning, match="damaged"):
        assert g(7) == 14
    assert CALLS.count(7) == 2


def test_full_disk_names_the_location_and_keeps_earlier_entries(
    memory: Memory, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = memory.cache(double)
    f(1)

    def full(value: Any, path: str, compress: Any = 0) -> None:
        with open(path, "wb") as file:
            file.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_local, "dump", full)
    with pytest.raises(OSError, match="is full") as info:
        f(2)
    assert str(tmp_path) in str(info.value)
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]
    monkeypatch.undo()
    assert f(1) == 2 and CALLS == [1, 2]


def test_reduce_size_removes_least_recently_used(memory: Memory, tmp_path: pathlib.Path) -> None:
    f = memory.cache(double)
    for x in range(4):
        f(x)
    jsons = sorted((p for p in _files(tmp_path) if p.suffix == ".json"), key=lambda p: p.name)
    for age, path in enumerate(jsons):
        os.utime(path, (1000.0 * (age + 1), 1000.0 * (age + 1)))
    memory.reduce_size(items_limit=2)
    kept = {p.name for p in _files(tmp_path) if p.suffix == ".json"}
    assert kept == {jsons[2].name, jsons[3].name}
    locks = {p.stem for p in (tmp_path / ".locks").rglob("*.lock")}
    assert memory.store_backend is not None
    live = {_local._lock_name(e.ref) for e in memory.store_backend.entries()}
    assert len(live) == 2 and locks == live  # the evicted entries' locks are gone


def test_reduce_size_uses_the_use_time_pardo_records(
    memory: Memory, tmp_path: pathlib.Path
) -> None:
    f = memory.cache(double)
    f(1)
    f(2)
    for path in _files(tmp_path):
        os.utime(path, (1000.0, 1000.0))  # both long unused
    g = memory.cache(double)  # a fresh wrapper (a new process would do the same)
    g(1)  # a hit: records the use
    memory.reduce_size(items_limit=1)
    assert g.check_call_in_cache(1) and not g.check_call_in_cache(2)


def test_kill_between_the_two_files_leaves_no_entry(
    memory: Memory, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(value: Any, path: str, compress: Any = 0) -> None:
        raise KeyboardInterrupt  # stands for the writer dying while the result is written

    f = memory.cache(double)
    monkeypatch.setattr(_local, "dump", killed)
    with pytest.raises(KeyboardInterrupt):
        f(3)
    monkeypatch.undo()
    assert f.check_why_call_not_in_cache(3) == "call not in cache"
    assert f(3) == 6


def test_bytes_limit_is_enforced_as_entries_are_written(tmp_path: pathlib.Path) -> None:
    memory = Memory(tmp_path, verbose=0, bytes_limit="1M")
    f = memory.cache(np.zeros)
    for n in range(10):
        f(40_000 + n)  # 320 KB each
    total = sum(p.stat().st_size for p in _files(tmp_path))
    assert total <= 1024**2


def test_bytes_limit_holds_for_several_writers_of_one_cache(tmp_path: pathlib.Path) -> None:
    """Two Memory objects (each one counts as one process: its own Budget) writing to one
    location in turn keep it under the limit together: they share the store's byte count. With
    a count per writer, each filled the cache up to the limit on its own view of it."""
    writers = [Memory(tmp_path, verbose=0, bytes_limit="1M").cache(np.full) for _ in range(2)]
    entry = 40_000 * 8
    peak = 0
    for i in range(12):
        writers[i % 2](40_000, float(i))  # 320 KB each, every call a new entry
        total = sum(p.stat().st_size for p in _files(tmp_path) if p.suffix in (".pkl", ".json"))
        peak = max(peak, total)
    assert peak <= 1024**2 + entry, f"{peak / 1024**2:.2f} MiB in the cache at its peak"


_WRITER = """
import os, sys, numpy as np, pardo
from pardo._memory import _local
real = _local.dump
def slow(value, path, compress=0):
    with open(path, "wb") as f:
        f.write(b"x" * 1000)
        f.flush()
        print("writing", flush=True)
        sys.stdin.readline()  # killed here, in the middle of the write
    return real(value, path, compress)
_local.dump = slow
mem = pardo.Memory(sys.argv[1], verbose=0)
mem.cache(np.arange)(10)
"""


def test_sigkill_during_a_write_leaves_no_valid_entry(tmp_path: pathlib.Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    cache = tmp_path / "cache"
    child = subprocess.Popen(
        [sys.executable, str(script), str(cache)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert child.stdin is not None and child.stdout is not None
        child.stdin.close()
        child.stdout.close()
    assert [p for p in cache.rglob("*") if ".tmp-" in p.name]  # the killed writer's leftover
    memory = Memory(str(cache), verbose=0)
    f = memory.cache(np.arange)
    assert not f.check_call_in_cache(10)
    assert list(f(10)) == list(range(10))
    assert not [p for p in cache.rglob("*") if ".tmp-" in p.name]  # writing the key again reclaims


_CALLER = """
import os, sys, time, pardo
mem = pardo.Memory(sys.argv[1], verbose=0)
def slow(x):
    with open(os.path.join(sys.argv[2], str(os.getpid())), "w"):
        pass
    while len(os.listdir(sys.argv[3])) < int(sys.argv[4]):
        time.sleep(0.01)  # every caller has started: they all ask at about the same time
    time.sleep(0.3)
    return x + 1
slow.__module__ = "callers"
f = mem.cache(slow)
open(os.path.join(sys.argv[3], str(os.getpid())), "w").close()
print(f(41))
"""


def test_concurrent_processes_compute_once(tmp_path: pathlib.Path) -> None:
    script = tmp_path / "caller.py"
    script.write_text(_CALLER)
    computed, started = tmp_path / "computed", tmp_path / "started"
    computed.mkdir()
    started.mkdir()
    n = 4
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "c"), str(computed), str(started), str(n)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    outs = [p.communicate(timeout=90)[0].strip() for p in procs]
    assert outs == ["42"] * n
    assert len(os.listdir(computed)) == 1


def test_concurrent_threads_compute_once(memory: Memory) -> None:
    import threading

    barrier = threading.Barrier(4)

    def slow(x: int) -> int:
        CALLS.append(x)
        return x

    f = memory.cache(slow)
    results: list[int] = []

    def call() -> None:
        barrier.wait()
        results.append(f(5))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [5] * 4 and CALLS == [5]


def test_code_versions_coexist_and_reduce_size_reclaims_them(tmp_path: pathlib.Path) -> None:
    code = textwrap.dedent(
        """
        import pardo, sys
        mem = pardo.Memory(sys.argv[1], verbose=0)
        def f(x):
            return x * VERSION
        f.__module__ = "versions"
        print(mem.cache(f).check_why_call_not_in_cache(1))
        mem.cache(f)(1)
        """
    )
    outs = []
    for version in ("1", "2", "1"):
        script = tmp_path / "v.py"
        script.write_text(code.replace("VERSION", version))
        done = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "c")],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        outs.append(done.stdout.strip())
    assert outs == ["call not in cache", "code changed", ""]
    memory = Memory(str(tmp_path / "c"), verbose=0)
    memory.reduce_size(items_limit=1)
    assert len([p for p in _files(tmp_path / "c") if p.suffix == ".pkl"]) == 1
