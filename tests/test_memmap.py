"""Large numpy arrays reach process workers as memmaps of one private temp file, never copied.

The first half drives ``MemmapContext`` directly (what the batch pickler does), loading the
reduce tuples in-process; the second half checks the same behaviour through ``Parallel`` on both
process backends, including cleanup on every way a call can end.
"""

from __future__ import annotations

import errno
import gc
import io
import os
import pickle
import stat
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from _polling import wait_until

from pardo import Parallel, WorkerDiedError, delayed
from pardo._arrays import _memmap, _tempdir
from pardo._arrays._memmap import MemmapContext, TempFolderError, reduce_result_array

np = pytest.importorskip("numpy")

BIG = 200 * 1024  # bytes; tests use max_nbytes=LIMIT so arrays of BIG bytes are memmapped
LIMIT = 1024


def big_array(value: float = 1.0, n: int = BIG // 8) -> Any:
    return np.full(n, value, dtype=np.float64)


def roundtrip(ctx: MemmapContext, obj: Any) -> Any:
    """What a worker gets: ``obj`` reduced by ``ctx`` and loaded back."""
    reduced = ctx.reducer_override(obj)
    assert reduced is not NotImplemented, f"{type(obj)} was not memmapped"
    loader, args = reduced
    return loader(*args)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[MemmapContext]:
    context = MemmapContext(str(tmp_path), LIMIT, "r")
    yield context
    context.close()


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "user.bin"
    np.arange(20 * 30, dtype=np.float64).tofile(path)
    return path


# -- the reducer, in-process --------------------------------------------------------------------


def test_non_arrays_small_arrays_and_object_arrays_are_left_to_pickle(ctx: MemmapContext) -> None:
    for obj in (1, "x", (1, 2), [big_array()], {"a": 1}, np.zeros(10)):
        assert ctx.reducer_override(obj) is NotImplemented
    objects = np.empty(BIG // 8, dtype=object)
    assert ctx.reducer_override(objects) is NotImplemented
    assert not ctx.folders, "nothing large was seen, so no folder may be created"


def test_max_nbytes_none_disables_memmapping(tmp_path: Path) -> None:
    context = MemmapContext(str(tmp_path), None, "r")
    assert context.reducer_override(big_array()) is NotImplemented
    context.close()


@pytest.mark.parametrize(("mode", "expected"), [("r", "r"), ("r+", "r+"), ("c", "c"), ("w+", "r+")])
def test_large_array_loads_as_memmap_in_mode(tmp_path: Path, mode: str, expected: str) -> None:
    context = MemmapContext(str(tmp_path), LIMIT, mode)
    array = big_array(3.0)
    loaded = roundtrip(context, array)
    assert type(loaded) is np.memmap
    assert loaded.mode == expected
    assert np.array_equal(loaded, array)
    context.close()


def test_read_only_mode_refuses_writes(ctx: MemmapContext) -> None:
    loaded = roundtrip(ctx, big_array())
    with pytest.raises(ValueError, match="read-only"):
        loaded[0] = 2.0


def test_mmap_mode_none_gives_a_plain_writable_array(tmp_path: Path) -> None:
    context = MemmapContext(str(tmp_path), LIMIT, None)
    array = np.arange(BIG // 8, dtype=np.float64).reshape(-1, 8)[:, ::2]
    loaded = roundtrip(context, np.asfortranarray(array))
    assert type(loaded) is np.ndarray and loaded.flags.writeable
    assert np.array_equal(loaded, array)
    context.close()


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a,
        lambda a: np.asfortranarray(a),
        lambda a: a.T,
        lambda a: a[::3, ::-2],
        lambda a: a[5],
        lambda a: a[:, 7],
        lambda a: a.astype(">i4"),
        lambda a: a.view([("x", "f8"), ("y", "f8")]),
    ],
    ids=["c", "fortran", "transpose", "strided-negative", "row", "column", "big-endian", "record"],
)
def test_layouts_round_trip(ctx: MemmapContext, make: Any) -> None:
    source = np.arange(400 * 64, dtype=np.float64).reshape(400, 64)
    array = make(source)
    if array.nbytes <= LIMIT:
        array = np.tile(array, 100)
    loaded = roundtrip(ctx, array)
    assert loaded.dtype == array.dtype
    assert np.array_equal(loaded, array)
    if array.flags.f_contiguous and not array.flags.c_contiguous:
        assert loaded.flags.f_contiguous, "Fortran order must survive"


def test_same_array_is_written_once_and_not_kept_alive(ctx: MemmapContext) -> None:
    array = big_array()
    first = ctx.reducer_override(array)
    assert ctx.reducer_override(array) is first
    equal_copy = array.copy()
    assert ctx.reducer_override(equal_copy)[1][0] != first[1][0], "one file per array object"
    (folder,) = ctx.folders
    assert len(os.listdir(folder)) == 2
    watcher = weakref.ref(array)
    del array, first
    gc.collect()
    assert watcher() is None, "the context must not keep arrays alive"


def test_a_new_array_at_a_reused_address_gets_its_own_file(ctx: MemmapContext) -> None:
    # Freed arrays' ids are reused at once by CPython; each must still load its own data.
    for value in range(20):
        array = big_array(float(value))
        assert roundtrip(ctx, array)[0] == value
        del array


def test_an_unchanged_array_keeps_its_file_across_calls(ctx: MemmapContext) -> None:
    array = big_array()
    ctx.start_call()
    first = ctx.reducer_override(array)
    for _ in range(3):
        ctx.start_call()
        assert ctx.reducer_override(array) is first
    (folder,) = ctx.folders
    assert os.listdir(folder) == [os.path.basename(first[1][0])]


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a.__setitem__(0, 42.0),
        lambda a: a.__setitem__(slice(100, 200), -1.0),
        lambda a: np.negative(a[::-3], out=a[::-3]),
        lambda a: setattr(a, "shape", (2, -1)),
        lambda a: setattr(a, "dtype", np.int64),
    ],
    ids=["element", "slice", "through-a-view", "shape", "dtype"],
)
def test_an_array_changed_in_place_is_rewritten_next_call(ctx: MemmapContext, change: Any) -> None:
    array = np.arange(BIG // 8, dtype=np.float64)
    ctx.start_call()
    first = ctx.reducer_override(array)
    assert np.array_equal(first[0](*first[1]), array)
    change(array)
    assert ctx.reducer_override(array) is first, "checked once per call, not per task"
    ctx.start_call()
    new = roundtrip(ctx, array)
    assert new.dtype == array.dtype and new.shape == array.shape
    assert np.array_equal(new, array)
    (folder,) = ctx.folders
    assert len(os.listdir(folder)) == 1, "rewritten in place, or the stale file removed"


def test_r_plus_files_written_by_workers_are_rewritten(tmp_path: Path) -> None:
    context = MemmapContext(str(tmp_path), LIMIT, "r+")
    array = big_array(1.0)
    context.start_call()
    roundtrip(context, array)[3] = 7.0  # a worker writes into the temp file
    context.start_call()
    assert roundtrip(context, array)[3] == 1.0
    context.close()


def test_digest_covers_every_layout() -> None:
    source = np.arange(400 * 64, dtype=np.float64).reshape(400, 64)
    for view in (source, source.T, source[::3, ::-2], np.asfortranarray(source)):
        changed = view.copy(order="K")
        changed.flat[-1] += 1
        assert _memmap.digest_array(view) == _memmap.digest_array(view.copy(order="K"))
        assert _memmap.digest_array(view) != _memmap.digest_array(changed)


def test_user_memmaps_travel_by_reference(ctx: MemmapContext, user_file: Path) -> None:
    m = np.memmap(user_file, dtype=np.float64, mode="r+", shape=(20, 30))
    for view in (m, m[2:5], m[:, 3], m[::-2, ::-7], np.asarray(m)[1:, 1:], m.T, m[4, 4:5]):
        loader, args = ctx.reducer_override(view)
        assert args[0] == str(user_file)
        loaded = loader(*args)
        assert isinstance(loaded, np.memmap) and loaded.mode == "r+"
        assert loaded.shape == view.shape and np.array_equal(loaded, view)
    strided = roundtrip(ctx, m[::-2, ::-7])
    strided[0, 0] = -1.0
    assert m[19, 29] == -1.0, "writes through a by-reference view reach the user's file"
    assert not ctx.folders, "by-reference arrays need no temp file"


def test_user_memmap_offset_and_w_plus(ctx: MemmapContext, tmp_path: Path) -> None:
    path = tmp_path / "offset.bin"
    m = np.memmap(path, dtype=np.int32, mode="w+", offset=100, shape=(50,))
    m[:] = np.arange(50)
    loaded = roundtrip(ctx, m[10:20])
    assert loaded.mode == "r+", "w+ would truncate the file in the worker"
    assert loaded.tolist() == list(range(10, 20))


def test_copy_on_write_memmaps_are_copied_not_referenced(
    ctx: MemmapContext, user_file: Path
) -> None:
    m = np.memmap(user_file, dtype=np.float64, mode="c", shape=(20, 30))
    m[0, 0] = 99.0  # private to this process: only a copy carries it
    loaded = roundtrip(ctx, m)
    assert loaded[0, 0] == 99.0
    assert os.path.dirname(loaded.filename) in ctx.folders


def _result_pickle(obj: Any) -> Any:
    class Pickler(cloudpickle.Pickler):  # type: ignore[misc]
        def reducer_override(self, o: Any) -> Any:
            reduced = reduce_result_array(o)
            return reduced if reduced is not NotImplemented else super().reducer_override(o)

    buffer = io.BytesIO()
    Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return pickle.loads(buffer.getvalue())


def test_results_temp_memmaps_come_back_as_arrays(ctx: MemmapContext, user_file: Path) -> None:
    temp = roundtrip(ctx, big_array(2.0))
    user = np.memmap(user_file, dtype=np.float64, mode="r", shape=(20, 30))
    back = _result_pickle([temp, temp[3:9], user[1:3], np.arange(3), "text"])
    assert type(back[0]) is np.ndarray and type(back[1]) is np.ndarray
    assert np.array_equal(back[0], temp) and back[1].tolist() == [2.0] * 6
    assert type(back[2]) is np.memmap and back[2].filename == str(user_file)
    assert back[3].tolist() == [0, 1, 2] and back[4] == "text"
    assert reduce_result_array((1, 2)) is NotImplemented


# -- folders: where, permissions, fallbacks, reclaiming -----------------------------------------


def test_folder_and_files_are_private(ctx: MemmapContext) -> None:
    loaded = roundtrip(ctx, big_array())
    (folder,) = ctx.folders
    assert os.path.basename(folder).startswith(f"pardo-{os.getpid()}-")
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(loaded.filename).st_mode) == 0o600


def test_close_removes_everything(tmp_path: Path) -> None:
    context = MemmapContext(str(tmp_path), LIMIT, "r")
    roundtrip(context, big_array())
    roundtrip(context, big_array())
    context.close()
    assert list(tmp_path.iterdir()) == []
    context.close()  # closing twice is harmless


def test_large_folders_are_removed_by_a_helper_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import threading

    removed_by: list[str] = []

    def remove_folder(folder: str) -> None:
        removed_by.append(threading.current_thread().name)
        real_remove(folder)

    real_remove = _tempdir.remove_folder
    monkeypatch.setattr(_tempdir, "remove_folder", remove_folder)
    monkeypatch.setattr(_memmap, "BACKGROUND_REMOVE_BYTES", BIG)
    context = MemmapContext(str(tmp_path), LIMIT, "r")
    roundtrip(context, big_array())
    context.close()
    for thread in threading.enumerate():
        if thread.name == "pardo-memmap-cleanup":
            thread.join(timeout=10)
    assert removed_by == ["pardo-memmap-cleanup"]
    assert list(tmp_path.iterdir()) == []


def test_root_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JOBLIB_TEMP_FOLDER", str(tmp_path / "env"))
    assert _tempdir.choose_root(str(tmp_path / "arg"), 10) == (str(tmp_path / "arg"), True)
    assert _tempdir.choose_root(None, 10) == (str(tmp_path / "env"), True)
    monkeypatch.delenv("JOBLIB_TEMP_FOLDER")
    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setattr(_tempdir, "SHM_ROOT", str(shm))
    free = _tempdir.shutil.disk_usage(str(shm)).free
    assert _tempdir.choose_root(None, 10) == (str(shm), False)
    assert _tempdir.choose_root(None, free + 1) == (tempfile.gettempdir(), False)
    monkeypatch.setattr(_tempdir, "SHM_ROOT", str(tmp_path / "missing"))
    assert _tempdir.choose_root(None, 10) == (tempfile.gettempdir(), False)


@pytest.mark.skipif(not _tempdir.shm_has_room(BIG), reason="no usable /dev/shm here")
def test_default_root_is_shared_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBLIB_TEMP_FOLDER", raising=False)
    context = MemmapContext(None, LIMIT, "r")
    loaded = roundtrip(context, big_array())
    assert loaded.filename.startswith("/dev/shm/pardo-")
    context.close()


def _fail_first_write(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = _memmap.write_array

    def write_array(array: Any, write: Any) -> str:
        calls.append(1)
        if len(calls) == 1:
            write(memoryview(b"partial"))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(array, write)

    monkeypatch.setattr(_memmap, "write_array", write_array)
    return calls


def test_full_shared_memory_falls_back_to_disk(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("JOBLIB_TEMP_FOLDER", raising=False)
    shm, disk = tmp_path / "shm", tmp_path / "disk"
    shm.mkdir()
    monkeypatch.setattr(_tempdir, "SHM_ROOT", str(shm))
    monkeypatch.setattr(_tempdir, "disk_root", lambda: str(disk))
    _fail_first_write(monkeypatch)
    context = MemmapContext(None, LIMIT, "r")
    loaded = roundtrip(context, big_array(5.0))
    assert loaded.filename.startswith(str(disk)) and loaded[0] == 5.0
    (shm_folder,) = shm.iterdir()
    assert list(shm_folder.iterdir()) == [], "the partial file must be removed"
    context.close()
    assert list(shm.iterdir()) == [] and list(disk.iterdir()) == []


def test_full_chosen_folder_raises_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, ctx: MemmapContext
) -> None:
    _fail_first_write(monkeypatch)
    with pytest.raises(TempFolderError, match=r"no room to write a 200\.0 KiB array") as info:
        ctx.reducer_override(big_array())
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert ctx.folders[0] in str(info.value) and str(BIG) in str(info.value)


def test_an_unusable_chosen_folder_raises_a_clear_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_bytes(b"")
    context = MemmapContext(str(not_a_folder / "sub"), LIMIT, "r")
    with pytest.raises(TempFolderError, match=r"could not write a 200\.0 KiB array") as info:
        context.reducer_override(big_array())
    assert info.value.errno == errno.ENOTDIR and str(not_a_folder) in str(info.value)
    context.close()


def test_a_full_folder_fails_the_call_with_that_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fail_first_write(monkeypatch)
    with pytest.raises(TempFolderError, match="no room to write"):
        Parallel(n_jobs=2, backend="loky", max_nbytes=LIMIT, temp_folder=str(tmp_path))(
            [delayed(total)(big_array())]
        )
    assert list(tmp_path.iterdir()) == []


def test_sweep_reclaims_folders_of_dead_processes_only(tmp_path: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = int(child.stdout)
    namespace = _tempdir._pid_namespace()
    stale = tmp_path / f"pardo-{dead}-{namespace}-abc"
    alive = tmp_path / f"pardo-{os.getppid()}-{namespace}-abc"
    other_namespace = tmp_path / f"pardo-{dead}-1{namespace}-abc"
    foreign = tmp_path / "pardo-notapid"
    for folder in (stale, alive, other_namespace, foreign):
        folder.mkdir()
        (folder / "array-1.bin").write_bytes(b"x")
    fresh = _tempdir.make_folder(str(tmp_path))
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {alive.name, other_namespace.name, foreign.name, os.path.basename(fresh)}


CRASHING_PARENT = """
import os, sys
import numpy as np
from pardo._arrays._memmap import MemmapContext
context = MemmapContext(sys.argv[1], 1024, "r")
context.reducer_override(np.ones(10_000))
print(context.folders[0], flush=True)
os._exit(0)  # no close, no atexit: what a kill -9 leaves behind
"""


def test_a_crashed_parents_folder_is_reclaimed_by_the_next_one(tmp_path: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_PARENT, str(tmp_path)],
        check=True,
        capture_output=True,
        text=True,
    )
    orphan = child.stdout.strip()
    assert os.path.isdir(orphan)
    context = MemmapContext(str(tmp_path), LIMIT, "r")
    roundtrip(context, big_array())
    assert not os.path.exists(orphan)
    context.close()


# -- through Parallel, on loky and multiprocessing ----------------------------------------------


def describe(x: Any) -> tuple[str, str | None, bool, str]:
    folder = os.path.dirname(x.filename) if isinstance(x, np.memmap) else ""
    return type(x).__name__, getattr(x, "mode", None), bool(x.flags.writeable), folder


def try_write(x: Any) -> str:
    try:
        x[0] = 42.0
    except ValueError as exc:
        return str(exc)
    return "written"


def test_worker_gets_a_read_only_memmap(process_backend: str) -> None:
    array = big_array()
    out = Parallel(n_jobs=2, backend=process_backend, max_nbytes="1K")(
        [delayed(describe)(array), delayed(try_write)(array)]
    )
    kind, mode, writeable, folder = out[0]
    assert (kind, mode, writeable) == ("memmap", "r", False)
    assert os.path.basename(folder).startswith("pardo-")
    assert "read-only" in out[1]
    assert array[0] == 1.0


def test_threshold_string_and_none(process_backend: str) -> None:
    small, large = np.ones(128), np.ones(129)  # 1024 and 1032 bytes
    out = Parallel(n_jobs=2, backend=process_backend, max_nbytes="1K")(
        delayed(describe)(a) for a in (small, large)
    )
    assert [o[0] for o in out] == ["ndarray", "memmap"]
    off = Parallel(n_jobs=2, backend=process_backend, max_nbytes=None)(
        delayed(describe)(a) for a in (large, large)
    )
    assert [o[0] for o in off] == ["ndarray", "ndarray"]


def write_slot(x: Any, i: int) -> int:
    x[i] = i + 100
    return i


def total(x: Any) -> float:
    return float(np.sum(x))


def test_r_plus_writes_reach_a_user_memmap(process_backend: str, tmp_path: Path) -> None:
    m = np.memmap(tmp_path / "shared.bin", dtype=np.float64, mode="w+", shape=(50,))
    out = Parallel(n_jobs=2, backend=process_backend)(delayed(write_slot)(m, i) for i in range(50))
    assert out == list(range(50))
    assert m.tolist() == [i + 100.0 for i in range(50)]


def test_r_plus_writes_to_temp_memmaps_never_reach_a_later_call(process_backend: str) -> None:
    """Workers' writes land in the temp file; the next call gets the caller's array again."""
    array = np.zeros(BIG // 8)
    with Parallel(n_jobs=2, backend=process_backend, max_nbytes=LIMIT, mmap_mode="r+") as p:
        p(delayed(write_slot)(array, i) for i in range(10))
        (seen,) = p([delayed(total)(array)])
    assert seen == 0.0, "the second call must compute on what the caller passed"
    assert not array.any(), "the caller's own array is never written"


def checksum(x: Any) -> tuple[float, bool, bool, str]:
    return (
        float((x * np.arange(x.size).reshape(x.shape)).sum()),
        x.flags.f_contiguous,
        x.flags.c_contiguous,
        type(x).__name__,
    )


def test_views_and_fortran_order_in_workers(process_backend: str, user_file: Path) -> None:
    source = np.arange(300 * 40, dtype=np.float64).reshape(300, 40)
    m = np.memmap(user_file, dtype=np.float64, mode="r", shape=(20, 30))
    # (array, (F, C) flags expected in the worker): in-memory strided views arrive compacted
    # in C order; views of a user's memmap keep their strides (they are the same bytes).
    cases = [
        (np.asfortranarray(source), (True, False)),
        (source[::2, ::-3], (False, True)),
        (source.T, (True, False)),
        (m[::3, 1:], (False, False)),
        (m.T, (True, False)),
    ]
    out = Parallel(n_jobs=2, backend=process_backend, max_nbytes=LIMIT)(
        delayed(checksum)(a) for a, _ in cases
    )
    for (array, flags), (value, fortran, c_order, kind) in zip(cases, out, strict=True):
        assert value == checksum(array)[0]
        assert kind == "memmap"
        assert (fortran, c_order) == flags


class Holder:
    def __init__(self, data: Any) -> None:
        self.data = data


def kinds(nested: Any) -> list[str]:
    return [
        type(nested["list"][0]).__name__,
        type(nested["tuple"][1]).__name__,
        type(nested["obj"].data).__name__,
        type(nested["deep"][0]["x"]).__name__,
    ]


def test_arrays_nested_in_containers_and_objects(process_backend: str) -> None:
    a = big_array()
    nested = {"list": [a], "tuple": (1, a), "obj": Holder(a), "deep": [{"x": a}]}
    (out,) = Parallel(n_jobs=2, backend=process_backend, max_nbytes=LIMIT)([delayed(kinds)(nested)])
    assert out == ["memmap"] * 4


def files_beside(x: Any) -> tuple[str, int]:
    folder = os.path.dirname(x.filename)
    return folder, len(os.listdir(folder))


@pytest.mark.slow
def test_one_file_for_one_array_sent_to_100_tasks(process_backend: str) -> None:
    array = big_array()
    out = Parallel(n_jobs=2, backend=process_backend, max_nbytes=LIMIT, batch_size=1)(
        delayed(files_beside)(array) for _ in range(100)
    )
    assert len(out) == 100
    assert {folder for folder, _ in out} == {out[0][0]}
    assert {count for _, count in out} == {1}


@pytest.mark.parametrize("how", ["argument", "config", "env"])
def test_temp_folder_choice_reaches_workers(
    process_backend: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pardo import parallel_config

    root = tmp_path / how
    monkeypatch.delenv("JOBLIB_TEMP_FOLDER", raising=False)
    kwargs: dict[str, Any] = {"n_jobs": 2, "backend": process_backend, "max_nbytes": LIMIT}
    if how == "argument":
        kwargs["temp_folder"] = str(root)
    elif how == "env":
        monkeypatch.setenv("JOBLIB_TEMP_FOLDER", str(root))
    with parallel_config(temp_folder=str(root) if how == "config" else None):
        out = Parallel(**kwargs)([delayed(describe)(big_array())] * 2)
    assert os.path.dirname(out[0][3]) == str(root)
    assert list(root.iterdir()) == [], "the folder is removed when the call ends"


def returns_input(x: Any, i: int) -> Any:
    return x if i == 0 else x[2:5]


def test_results_come_back_as_plain_arrays(process_backend: str, user_file: Path) -> None:
    array = big_array(7.0)
    m = np.memmap(user_file, dtype=np.float64, mode="r", shape=(20, 30))
    out = Parallel(n_jobs=2, backend=process_backend, max_nbytes=LIMIT)(
        [
            delayed(returns_input)(array, 0),
            delayed(returns_input)(array, 1),
            delayed(returns_input)(m, 0),
        ]
    )
    assert type(out[0]) is np.ndarray and np.array_equal(out[0], array)
    assert type(out[1]) is np.ndarray and out[1].tolist() == [7.0] * 3
    assert type(out[2]) is np.memmap and out[2].filename == str(user_file)


def same_object(x: Any, original_id: int) -> bool:
    return id(x) == original_id


@pytest.mark.parametrize("backend_name", ["threading", "sequential"])
def test_in_process_backends_pass_arrays_untouched(backend_name: str) -> None:
    array = big_array()
    out = Parallel(n_jobs=2, backend=backend_name, max_nbytes=LIMIT)(
        delayed(same_object)(array, id(array)) for _ in range(4)
    )
    assert out == [True] * 4


# -- cleanup on every ending --------------------------------------------------------------------


def folder_of(x: Any, i: int) -> str:
    if i == 3:
        raise RuntimeError("task 3 fails")
    return os.path.dirname(x.filename)


def crash_or_folder(x: Any, i: int) -> str:
    if i == 3:
        os._exit(7)
    return os.path.dirname(x.filename)


def block_or_folder(x: Any, i: int) -> str:
    if i == 3:
        time.sleep(60)  # stands for a task that never finishes; the call's timeout kills it
    return os.path.dirname(x.filename)


def tasks_watching(root: Path, func: Any, seen: list[str], n: int = 8) -> Iterator[Any]:
    """Tasks for ``func``; records the call's folders once the first ones have been sent."""
    array = big_array()
    for i in range(n):
        if i == 2:
            seen.extend(str(p) for p in root.iterdir())
        yield delayed(func)(array, i)


def run_and_check_cleanup(root: Path, seen: list[str]) -> None:
    assert seen and all(os.path.basename(s).startswith("pardo-") for s in seen), "vacuous test"
    assert list(root.iterdir()) == []


def parallel_in(root: Path, backend: str, **kwargs: Any) -> Parallel:
    return Parallel(
        n_jobs=2, backend=backend, max_nbytes=LIMIT, temp_folder=str(root), batch_size=1, **kwargs
    )


def test_cleanup_after_a_task_error(process_backend: str, tmp_path: Path) -> None:
    seen: list[str] = []
    with pytest.raises(RuntimeError, match="task 3 fails"):
        parallel_in(tmp_path, process_backend)(tasks_watching(tmp_path, folder_of, seen))
    run_and_check_cleanup(tmp_path, seen)


def test_cleanup_after_a_dropped_generator(process_backend: str, tmp_path: Path) -> None:
    seen: list[str] = []
    p = parallel_in(tmp_path, process_backend, return_as="generator")
    results = p(tasks_watching(tmp_path, crash_or_folder, seen, n=3))
    assert os.path.isdir(next(results))
    del results
    gc.collect()
    run_and_check_cleanup(tmp_path, seen)


def test_cleanup_after_ctrl_c(process_backend: str, tmp_path: Path) -> None:
    seen: list[str] = []

    def interrupted() -> Iterator[Any]:
        yield from tasks_watching(tmp_path, crash_or_folder, seen, n=3)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        parallel_in(tmp_path, process_backend, pre_dispatch=8)(interrupted())
    run_and_check_cleanup(tmp_path, seen)


@pytest.mark.slow
def test_cleanup_after_a_worker_crash(process_backend: str, tmp_path: Path) -> None:
    seen: list[str] = []
    with pytest.raises(WorkerDiedError):
        parallel_in(tmp_path, process_backend)(tasks_watching(tmp_path, crash_or_folder, seen))
    run_and_check_cleanup(tmp_path, seen)


@pytest.mark.slow
def test_cleanup_after_a_timeout(process_backend: str, tmp_path: Path) -> None:
    from pardo import TimeoutError as PardoTimeout

    seen: list[str] = []
    with pytest.raises(PardoTimeout):
        parallel_in(tmp_path, process_backend, timeout=1.0)(
            tasks_watching(tmp_path, block_or_folder, seen)
        )
    run_and_check_cleanup(tmp_path, seen)


def test_with_block_keeps_one_folder_until_it_ends(process_backend: str, tmp_path: Path) -> None:
    array = big_array()
    with parallel_in(tmp_path, process_backend) as p:
        first = p([delayed(files_beside)(array)])
        second = p([delayed(files_beside)(array)])
        assert first == second == [(first[0][0], 1)], "same folder, same single file"
        assert os.path.isdir(first[0][0])
    assert list(tmp_path.iterdir()) == []


def shape_and_total(x: Any) -> tuple[tuple[int, ...], str, float]:
    return x.shape, x.dtype.str, float(np.sum(x))


def _expected(x: Any) -> tuple[tuple[int, ...], str, float]:
    return x.shape, x.dtype.str, float(np.sum(x))


@pytest.mark.parametrize(
    "change",
    [
        lambda a: a.__setitem__(0, 42.0),
        lambda a: a.__setitem__(slice(1000, 3000), 2.5),
        lambda a: np.add(a.reshape(-1, 8)[:, 3], 1.0, out=a.reshape(-1, 8)[:, 3]),
        lambda a: setattr(a, "shape", (8, -1)),
    ],
    ids=["element", "slice", "through-a-view", "reshaped-in-place"],
)
def test_in_place_changes_between_calls_reach_the_workers(
    process_backend: str, tmp_path: Path, change: Any
) -> None:
    """Issue 16: the second call of a ``with`` block must not compute on the first call's copy."""
    array = np.zeros(BIG // 8)
    with parallel_in(tmp_path, process_backend) as p:
        assert p(delayed(shape_and_total)(array) for _ in range(4)) == [_expected(array)] * 4
        change(array)
        assert p(delayed(shape_and_total)(array) for _ in range(4)) == [_expected(array)] * 4
        assert p([delayed(files_beside)(array)])[0][1] == 1, "the stale file was removed"
    assert list(tmp_path.iterdir()) == []


def test_a_view_passed_again_after_its_base_changed(process_backend: str, tmp_path: Path) -> None:
    base = np.zeros(2 * BIG // 8)
    view = base[::2]
    with parallel_in(tmp_path, process_backend) as p:
        assert p([delayed(total)(view)]) == [0.0]
        base[10] = 5.0  # element 5 of the view
        assert p([delayed(total)(view)]) == [5.0]


def test_a_new_array_at_a_freed_arrays_address(process_backend: str, tmp_path: Path) -> None:
    with parallel_in(tmp_path, process_backend) as p:
        for value in range(6):
            array = big_array(float(value))
            assert p([delayed(total)(array)]) == [value * array.size]
            del array


def test_an_unchanged_array_is_written_once_for_many_calls(
    process_backend: str, tmp_path: Path
) -> None:
    array = big_array()
    with parallel_in(tmp_path, process_backend) as p:
        seen = {p([delayed(files_beside)(array)])[0] for _ in range(5)}
        (folder,) = os.listdir(tmp_path)
        (name,) = os.listdir(tmp_path / folder)
        assert name == "array-1.bin", "one write for five calls"
    assert len(seen) == 1


def pid_and_folder(x: Any) -> tuple[int, str]:
    return os.getpid(), os.path.dirname(x.filename)


def reshape_and_report(x: Any) -> tuple[tuple[int, ...], int]:
    shape = x.shape
    x.shape = (2, -1)  # changes this task's view only
    return shape, os.getpid()


def maps_of(pid: int, folder: str) -> bool:
    try:
        with open(f"/proc/{pid}/maps") as maps:
            return folder in maps.read()
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_workers_unmap_a_closed_contexts_files(process_backend: str, tmp_path: Path) -> None:
    """Workers keep temp files mapped between tasks, but not once their context has closed."""
    array = big_array()
    with parallel_in(tmp_path, process_backend) as p:
        seen = set(p(delayed(pid_and_folder)(array) for _ in range(6)))
        shapes = p(delayed(reshape_and_report)(array) for _ in range(6))
    assert {shape for shape, _ in shapes} == {array.shape}, "a task's reshape stays its own"
    (folder,) = {f for _, f in seen}
    pids = {pid for pid, _ in seen}
    assert wait_until(lambda: not any(maps_of(pid, folder) for pid in pids), 5), (
        "a worker still maps the removed files"
    )


def own_folders() -> list[str]:
    """This process's pardo folders in the default roots (other programs may use them too)."""
    prefix = f"pardo-{os.getpid()}-"
    return [
        os.path.join(root, name)
        for root in {tempfile.gettempdir(), _tempdir.SHM_ROOT}
        if os.path.isdir(root)
        for name in os.listdir(root)
        if name.startswith(prefix)
    ]


@pytest.mark.slow
def test_no_leftovers_across_500_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBLIB_TEMP_FOLDER", raising=False)
    array = big_array()
    p = Parallel(n_jobs=2, backend="loky", max_nbytes=LIMIT)
    for _ in range(500):
        assert p([delayed(files_beside)(array), delayed(total)(array)])[0][1] == 1
    assert own_folders() == []
