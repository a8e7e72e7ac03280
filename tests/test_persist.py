"""``dump``/``load``: values round-trip, arrays are stored raw and load as memmaps, codecs work."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from pardo._arrays._persist import ALIGN, MAGIC, dump, load

np = pytest.importorskip("numpy")


def sample() -> dict[str, Any]:
    grid = np.arange(60 * 40, dtype=np.float64).reshape(60, 40)
    return {
        "grid": grid,
        "again": grid,
        "fortran": np.asfortranarray(grid),
        "strided": grid[::3, ::-2],
        "ints": np.arange(7, dtype=">i4"),
        "record": np.zeros(3, dtype=[("x", "i2"), ("y", "f8")]),
        "scalar_array": np.array(2.5),
        "empty": np.zeros((0, 4)),
        "objects": np.array([1, "two", None], dtype=object),
        "plain": {"name": "run", "values": [1, 2.0, (3,)]},
    }


def check_equal(loaded: dict[str, Any], original: dict[str, Any]) -> None:
    for key, value in original.items():
        if isinstance(value, np.ndarray):
            assert loaded[key].dtype == value.dtype, key
            assert loaded[key].shape == value.shape, key
            assert loaded[key].tolist() == value.tolist(), key
        else:
            assert loaded[key] == value, key
    assert loaded["again"] is loaded["grid"], "one array referenced twice loads as one object"
    assert loaded["fortran"].flags.f_contiguous


def test_round_trip_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "value.pkl"
    assert dump(sample(), path) == [str(path)]
    loaded = load(path)
    check_equal(loaded, sample())
    assert type(loaded["grid"]) is np.ndarray and loaded["grid"].flags.writeable


@pytest.mark.parametrize("mode", ["r", "r+", "c"])
def test_arrays_load_as_memmaps(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "value.pkl"
    dump(sample(), path)
    loaded = load(path, mmap_mode=mode)
    check_equal(loaded, sample())
    grid = loaded["grid"]
    assert isinstance(grid, np.memmap) and grid.mode == mode
    assert os.fspath(grid.filename) == str(path)
    assert grid.offset % ALIGN == 0, "raw data is aligned inside the file"
    assert type(loaded["objects"]) is np.ndarray, "object arrays are pickled, not mapped"


def test_read_only_and_read_write_memmaps(tmp_path: Path) -> None:
    path = tmp_path / "value.pkl"
    dump({"a": np.zeros(100)}, path)
    with pytest.raises(ValueError, match="read-only"):
        load(path, mmap_mode="r")["a"][0] = 1.0
    writable = load(path, mmap_mode="r+")["a"]
    writable[5] = 3.0
    writable.flush()
    assert load(path)["a"][5] == 3.0, "r+ writes go to the file"
    assert load(path, mmap_mode="w+")["a"][5] == 3.0, "w+ must not truncate the file"


def test_arrays_are_stored_raw(tmp_path: Path) -> None:
    path = tmp_path / "raw.pkl"
    array = np.arange(1000, dtype=np.int64)
    dump(array, path)
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    assert array.tobytes() in data
    assert len(data) < array.nbytes + 512, "no second copy of the array in the pickle"


@pytest.mark.parametrize(
    "compress", [3, True, "zlib", "gzip", "bz2", "xz", "lzma", ("gzip", 9), ("xz", 1)]
)
def test_compressed_round_trip(tmp_path: Path, compress: Any) -> None:
    path = tmp_path / "value.pkl"
    dump(sample(), path, compress=compress)
    assert path.stat().st_size < len(np.zeros(1).tobytes()) + 60 * 40 * 8
    check_equal(load(path), sample())


@pytest.mark.parametrize("suffix", [".z", ".gz", ".bz2", ".xz", ".lzma"])
def test_compression_follows_the_file_extension(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"value.pkl{suffix}"
    dump({"zeros": np.zeros(100_000)}, path)
    assert path.stat().st_size < 100_000
    assert load(path)["zeros"].sum() == 0


def test_compressed_files_cannot_be_memmapped(tmp_path: Path) -> None:
    path = tmp_path / "value.pkl"
    dump({"a": np.ones(10)}, path, compress=1)
    with pytest.warns(UserWarning, match="mmap_mode='r' ignored"):
        loaded = load(path, mmap_mode="r")
    assert type(loaded["a"]) is np.ndarray and loaded["a"].sum() == 10


def test_file_objects(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    assert dump(sample(), buffer) == []
    buffer.seek(0)
    check_equal(load(buffer), sample())
    with (tmp_path / "f.pkl").open("wb") as file:
        dump([np.arange(3)], file, compress="bz2")
    with (tmp_path / "f.pkl").open("rb") as file:
        assert load(file)[0].tolist() == [0, 1, 2]


def test_values_without_arrays(tmp_path: Path) -> None:
    path = tmp_path / "plain.pkl"
    dump({"a": [1, 2, 3], "b": None}, path)
    assert load(path, mmap_mode="r") == {"a": [1, 2, 3], "b": None}


@pytest.mark.parametrize(
    "compress", [-1, 10, "snappy", ("gzip", 0), ("gzip", True), ("gzip", 1, 2), 2.5, 0.0]
)
def test_bad_compress_is_refused(tmp_path: Path, compress: Any) -> None:
    with pytest.raises(ValueError, match="compress="):
        dump([1], tmp_path / "x.pkl", compress=compress)


def test_bad_mmap_mode_is_refused(tmp_path: Path) -> None:
    dump([1], tmp_path / "x.pkl")
    with pytest.raises(ValueError, match="mmap_mode='rw'"):
        load(tmp_path / "x.pkl", mmap_mode="rw")


def test_joblib_empty_and_truncated_files(tmp_path: Path) -> None:
    import joblib

    joblib.dump({"a": 1}, tmp_path / "joblib.pkl")
    assert load(tmp_path / "joblib.pkl") == {"a": 1}, "joblib's files are read too"
    (tmp_path / "empty.pkl").write_bytes(b"")
    with pytest.raises(EOFError, match="empty"):
        load(tmp_path / "empty.pkl")
    path = tmp_path / "cut.pkl"
    dump({"a": np.arange(1000)}, path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(EOFError, match="truncated"):
        load(path)


def test_a_damaged_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v.pkl"
    dump({"answer": 41}, path)
    data = bytearray(path.read_bytes())
    data[data.rindex(bytes([41]))] = 42  # still a valid pickle, of another value
    path.write_bytes(bytes(data))
    with pytest.raises(pickle.UnpicklingError, match="damaged"):
        load(path)


def test_array_digests_are_checked_on_request_only(tmp_path: Path) -> None:
    """Writing through an "r+" map changes an array's bytes on purpose: ``load`` accepts that;
    ``read(check_arrays=True)`` (what Memory uses) does not."""
    from pardo._arrays._persist import read

    path = tmp_path / "v.pkl"
    dump({"a": np.zeros(100)}, path)
    writable = load(path, mmap_mode="r+")["a"]
    writable[3] = 1.0
    writable.flush()
    del writable
    assert load(path)["a"][3] == 1.0
    assert read(path, "r", check_arrays=True)["a"][3] == 1.0  # mapped: not read, not checked
    with pytest.raises(pickle.UnpicklingError, match="array 0"):
        read(path, None, check_arrays=True)


def test_format_1_files_without_digests_still_load(tmp_path: Path) -> None:
    """Files written before the digests (format 1): same layout without them."""
    import struct

    from pardo._arrays._persist import _align

    path = tmp_path / "v2.pkl"
    value = {"a": np.arange(10.0), "b": [1, 2]}
    dump(value, path)
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[16:24])
    pickled = raw[40 : 40 + length]
    arrays = raw[_align(40 + length) : len(raw) - 16]  # one array: one trailing digest
    old = MAGIC + bytes([1, 0]) + bytes(6) + struct.pack("<Q", length) + pickled
    old += bytes(_align(len(old)) - len(old)) + arrays
    (tmp_path / "v1.pkl").write_bytes(old)
    back = load(tmp_path / "v1.pkl")
    assert back["b"] == [1, 2] and np.array_equal(back["a"], value["a"])
