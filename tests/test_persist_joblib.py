"""``pardo.load`` reads what ``joblib.dump`` wrote: every compressor, memmaps, old layouts.

Files are written by the installed joblib (the test extra) into ``tmp_path``; the pre-1.0
layouts come from the sample files joblib ships in ``joblib/test/data`` (written by joblib
0.8.4 to 0.11 under Python 2.7 and 3.3 to 3.6).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from pardo import load

np = pytest.importorskip("numpy")
joblib = pytest.importorskip("joblib")

# np.matrix (a subclass joblib files hold) is pending deprecation in numpy.
pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")

COMPRESS = [0, 3, "zlib", "gzip", "bz2", "xz", "lzma", "lz4"]


class Holder:
    def __init__(self, weights: Any) -> None:
        self.weights = weights


def value() -> dict[str, Any]:
    grid = np.arange(60 * 40, dtype=np.float64).reshape(60, 40)
    return {
        "grid": grid,
        "again": grid,
        "fortran": np.asfortranarray(grid),
        "strided": grid[::3, ::-2],
        "big_endian": np.arange(7, dtype=">i8"),
        "big_endian_float": np.linspace(0, 1, 9).astype(">f4"),
        "record": np.array([(1, 2.5), (3, 4.5)], dtype=[("x", ">i4"), ("y", "<f8")]),
        "bools": np.array([True, False, True]),
        "complex": np.arange(4) * (1 + 2j),
        "unicode": np.array(["a", "été", "xyz"]),
        "bytes": np.array([b"ab", b"c"]),
        "dates": np.array(["2024-01-01", "2026-12-01"], dtype="datetime64[D]"),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 4)),
        "objects": np.array([1, "two", None, {"k": [3]}], dtype=object),
        "matrix": np.matrix([[1, 2], [3, 4]]),
        "holder": Holder(np.ones((30, 30))),
        "plain": {"name": "run", "values": [1, 2.0, (3,)], "text": "C'est l'été !"},
    }


def check(loaded: dict[str, Any], original: dict[str, Any]) -> None:
    for key, expected in original.items():
        got = loaded[key]
        if isinstance(expected, np.ndarray):
            assert got.shape == expected.shape, key
            assert got.dtype.newbyteorder("=") == expected.dtype.newbyteorder("="), key
            if expected.dtype.hasobject:
                assert got.tolist() == expected.tolist(), key
            else:
                np.testing.assert_array_equal(got, expected, err_msg=key)
            if isinstance(expected, np.matrix):
                assert isinstance(got, np.matrix), key
        elif key == "holder":
            np.testing.assert_array_equal(got.weights, expected.weights)
        else:
            assert got == expected, key
    assert loaded["fortran"].flags.f_contiguous


def dump_with_joblib(tmp_path: Path, compress: Any, obj: Any = None) -> Path:
    if compress == "lz4":
        pytest.importorskip("lz4")
    path = tmp_path / f"joblib-{compress}.pkl"
    joblib.dump(value() if obj is None else obj, path, compress=compress)
    return path


@pytest.mark.parametrize("compress", COMPRESS)
def test_reads_every_compressor(tmp_path: Path, compress: Any) -> None:
    path = dump_with_joblib(tmp_path, compress)
    loaded = load(path)
    check(loaded, value())
    assert type(loaded["grid"]) is np.ndarray


@pytest.mark.parametrize("compress", COMPRESS)
def test_reads_from_open_file_objects(tmp_path: Path, compress: Any) -> None:
    path = dump_with_joblib(tmp_path, compress)
    with path.open("rb") as file:
        check(load(file), value())
    check(load(io.BytesIO(path.read_bytes())), value())


class Unseekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


def test_reads_from_an_unseekable_stream(tmp_path: Path) -> None:
    path = dump_with_joblib(tmp_path, "gzip")
    check(load(io.BufferedReader(Unseekable(path.read_bytes()))), value())


@pytest.mark.parametrize("mode", ["r", "r+", "c"])
def test_uncompressed_arrays_load_as_memmaps(tmp_path: Path, mode: str) -> None:
    path = dump_with_joblib(tmp_path, 0)
    loaded = load(path, mmap_mode=mode)
    check(loaded, value())
    grid = loaded["grid"]
    assert isinstance(grid, np.memmap) and grid.mode == mode
    assert os.fspath(grid.filename) == str(path)
    assert isinstance(loaded["big_endian"], np.memmap), "a memmap keeps the file's byte order"
    assert loaded["big_endian"].dtype == np.dtype(">i8")
    assert type(loaded["objects"]) is np.ndarray, "object arrays are pickled, not mapped"


def test_r_plus_writes_reach_the_joblib_file(tmp_path: Path) -> None:
    path = dump_with_joblib(tmp_path, 0, {"a": np.zeros(1000)})
    writable = load(path, mmap_mode="r+")["a"]
    writable[5] = 3.0
    writable.flush()
    del writable
    assert joblib.load(path)["a"][5] == 3.0
    with pytest.raises(ValueError, match="read-only"):
        load(path, mmap_mode="r")["a"][0] = 1.0


def test_compressed_or_file_object_memmap_request_warns(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="mmap_mode='r' ignored.*compressed"):
        loaded = load(dump_with_joblib(tmp_path, 3), mmap_mode="r")
    assert type(loaded["grid"]) is np.ndarray
    path = dump_with_joblib(tmp_path, 0)
    with path.open("rb") as file, pytest.warns(UserWarning, match="a file object"):
        check(load(file, mmap_mode="r"), value())


def test_in_memory_arrays_come_back_in_native_byte_order(tmp_path: Path) -> None:
    """scikit-learn's test_different_endianness_joblib_pickle: a model saved on a big-endian
    machine has big-endian node arrays; compiled code expects the native order."""
    node = np.dtype([("left", "<i8"), ("right", "<i8"), ("feature", "<i8"), ("threshold", "<f8")])
    nodes = np.zeros(5, dtype=node)
    nodes["left"] = np.arange(5)
    nodes["threshold"] = np.linspace(0, 1, 5)
    swapped = nodes.byteswap().view(nodes.dtype.newbyteorder(">"))
    path = dump_with_joblib(tmp_path, 0, {"nodes": swapped, "values": np.arange(9, dtype=">f8")})
    loaded = load(path)
    assert loaded["nodes"].dtype.isnative and loaded["values"].dtype.isnative
    assert loaded["nodes"].tolist() == nodes.tolist()
    assert loaded["values"].tolist() == list(range(9))


def test_32_bit_layouts_keep_their_dtypes(tmp_path: Path) -> None:
    """scikit-learn's test_different_bitness_joblib_pickle: a model saved by a 32-bit Python
    holds intp arrays as int32. The pickle itself does not depend on the word size, so such a
    file is an ordinary file whose arrays are int32; they must come back as int32."""
    node32 = np.dtype([("left", "<i4"), ("right", "<i4"), ("threshold", "<f8")])
    nodes = np.array([(1, 2, 0.5), (-1, -1, 0.0)], dtype=node32)
    path = dump_with_joblib(tmp_path, 0, {"nodes": nodes, "n": 2})
    loaded = load(path)
    assert loaded["nodes"].dtype == node32
    assert loaded["nodes"].tolist() == nodes.tolist()


def test_load_does_not_import_joblib(tmp_path: Path) -> None:
    path = dump_with_joblib(tmp_path, 0, {"grid": value()["grid"], "objects": value()["objects"]})
    code = (
        "import sys, pardo; value = pardo.load(sys.argv[1], mmap_mode='r'); "
        "assert 'joblib' not in sys.modules, 'joblib was imported'; "
        "print(float(value['grid'].sum()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    assert float(out.stdout) == float(value()["grid"].sum())


# -- the files joblib ships, written by joblib 0.8.4 to 0.11 -------------------------------------

DATA = Path(joblib.__file__).parent / "test" / "data"


def expected_sample() -> list[Any]:
    """What joblib's create_numpy_pickle.py dumped into each sample file."""
    return [
        np.arange(5, dtype="<i8"),
        np.arange(5, dtype="<f8"),
        np.array([1, "abc", {"a": 1, "b": 2}], dtype=object),
        np.arange(256, dtype=np.uint8).tobytes(),
        np.matrix([0, 1, 2], dtype="<i8"),
        "C'est l'\xe9t\xe9 !",
    ]


SUFFIXES = (".pkl", ".gz", ".gzip", ".bz2", ".xz", ".lzma")
SAMPLES = sorted(p.name for p in DATA.glob("joblib_*") if p.name.endswith(SUFFIXES))


def check_sample(loaded: list[Any]) -> None:
    expected_list = expected_sample()
    assert len(loaded) == len(expected_list)
    for got, expected in zip(loaded, expected_list, strict=True):
        if isinstance(expected, np.ndarray):
            assert got.dtype == expected.dtype
            assert type(got) in (type(expected), np.memmap)
            assert got.tolist() == expected.tolist()
        else:
            assert got == expected


@pytest.mark.skipif(not SAMPLES, reason="this joblib ships no sample files")
@pytest.mark.parametrize("name", SAMPLES)
def test_files_of_older_joblib_versions(name: str) -> None:
    path = DATA / name
    if "_py27_" in name:  # Python 2 pickles: joblib refuses them too
        with pytest.raises(ValueError, match="Python 2"):
            load(path)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load(path)
    check_sample(loaded)


@pytest.mark.skipif(not SAMPLES, reason="this joblib ships no sample files")
@pytest.mark.parametrize("name", [n for n in SAMPLES if n.endswith(".pkl") and "_py27_" not in n])
def test_older_uncompressed_files_as_memmaps(name: str) -> None:
    path = DATA / name
    before_alignment = "_0.9" not in name  # 0.10 and 0.11 store arrays inline, unaligned
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load(path, mmap_mode="r")
    check_sample(loaded)  # outside: building the expected np.matrix warns
    assert isinstance(loaded[0], np.memmap) and isinstance(loaded[1], np.memmap)
    if "_0.9" in name:  # arrays in .npy files beside the pickle
        assert os.fspath(loaded[0].filename).endswith(".npy")
    aligned = [w for w in caught if "not aligned" in str(w.message)]
    assert bool(aligned) == before_alignment, [str(w.message) for w in caught]
