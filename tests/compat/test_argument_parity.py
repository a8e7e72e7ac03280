"""Every argument of ``Parallel``, ``parallel_config``, ``parallel_backend``, ``dump`` and ``load``,
tried with the same values through joblib and pardo.

A value joblib accepts must be accepted by pardo with the same meaning (same results, same worker
count, same arrays memmapped, same read-only-ness...); a value joblib rejects must be rejected. The
exceptions are listed below, each with its reason, and in docs/joblib.md: values joblib takes and
then misbehaves on (pardo raises instead), booleans where a number is meant, and a few forms pardo
reads that joblib refuses. Memory's arguments: tests/memory/test_memory_argument_parity.py.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import pardo

joblib = pytest.importorskip("joblib")

ACCEPTED = "accepted"
REJECTED = "rejected"

#: (function, argument, value) that joblib accepts and pardo rejects, and why.
PARDO_REJECTS = {
    ("Parallel", "n_jobs", "True"): "a boolean for a count is almost always a mistake",
    ("parallel_config", "n_jobs", "True"): "idem",
    ("Parallel", "batch_size", "True"): "idem",
    ("Parallel", "timeout", "True"): "idem",
    (
        "Parallel",
        "timeout",
        "0",
    ): "joblib then raises TimeoutError at random, when a result is late",
    ("Parallel", "pre_dispatch", "0"): "joblib then runs nothing and returns []",
    (
        "Parallel",
        "mmap_mode",
        "'x'",
    ): "joblib takes an unknown mode silently (until an array comes)",
    ("Parallel", "mmap_mode", "'w'"): "idem",
    ("parallel_config", "mmap_mode", "'x'"): "idem",
    ("parallel_config", "temp_folder", "3"): "joblib fails later, when an array is memmapped",
    ("parallel_config", "inner_max_num_threads", "'x'"): "joblib writes it into OMP_NUM_THREADS",
    ("parallel_config", "inner_max_num_threads", "2.0"): "idem ('2.0' is no thread count)",
    ("parallel_config", "inner_max_num_threads", "0"): "joblib reads 0 as 'unset'; say None",
    ("Parallel+arrays", "max_nbytes", "True"): "a boolean for a size is almost always a mistake",
}

#: (function, argument, value) that joblib rejects (or crashes on) and pardo accepts, and why.
PARDO_ACCEPTS = {
    ("Parallel", "pre_dispatch", "'1e7'"): "joblib caps numbers in the expression at 1e6",
    ("parallel_config", "backend", "None"): "joblib fails with AttributeError (a bug)",
    ("effective_n_jobs", "n_jobs", "'2'"): "Parallel(n_jobs='2') works in both",
    ("Parallel+arrays", "mmap_mode", "None"): "joblib's loky workers fail to unpickle the task",
}

#: Accepted by both, with a result that differs on purpose.
PARDO_RESULT_DIFFERS = {
    (
        "effective_n_jobs",
        "n_jobs",
        "2.5",
    ): "joblib answers 2.5 workers; pardo counts 2, as Parallel",
    # joblib's loky pool keeps the temp folder of the call that started it (a bug).
    ("Parallel+arrays", "temp_folder", "'<tmp_path>'"): "joblib ignores it once its pool exists",
    ("Parallel+arrays", "temp_folder", "PosixPath('<tmp_path>')"): "idem",
}


def square(x: int) -> int:
    return x * x


def array_view(a: Any) -> tuple[str, bool, str]:
    """What a worker got for ``a``: its type, whether it is writeable, its backing file."""
    return type(a).__name__, bool(a.flags.writeable), str(getattr(a, "filename", "") or "")


def verdict(call: Callable[[], Any]) -> tuple[str, Any]:
    """(ACCEPTED, what ``call()`` returned) or (REJECTED, None) if it raised."""
    try:
        return ACCEPTED, call()
    except Exception:
        return REJECTED, None


def compare(
    function: str, argument: str, value: Any, run: Callable[[ModuleType], Any], shown: str = ""
) -> Any:
    """Run ``run`` with each library: same verdict and same result, or a listed difference.

    Returns pardo's result. ``shown`` replaces ``repr(value)`` in the key (for temporary paths).
    """
    (theirs, their_result), (ours, our_result) = (
        verdict(lambda: run(joblib)),
        verdict(lambda: run(pardo)),
    )
    key = (function, argument, shown or repr(value))
    if key in PARDO_REJECTS:
        assert (theirs, ours) == (ACCEPTED, REJECTED), key
    elif key in PARDO_ACCEPTS:
        assert (theirs, ours) == (REJECTED, ACCEPTED), key
    else:
        assert ours == theirs, key
        if key not in PARDO_RESULT_DIFFERS:
            assert our_result == their_result, key
    return our_result


def tasks(lib: ModuleType) -> list[Any]:
    return [lib.delayed(square)(i) for i in range(6)]


# -- Parallel ----------------------------------------------------------------------------------

PARALLEL_VALUES: dict[str, list[Any]] = {
    "n_jobs": [
        None,
        1,
        2,
        -1,
        -2,
        2.0,
        2.5,
        "2",
        np.int64(2),
        "2.3",
        0,
        0.5,
        True,
        False,
        "x",
        [2],
    ],
    "backend": ["loky", "threading", "sequential", "multiprocessing", "bogus", 3],
    "return_as": ["list", "generator", "generator_unordered", "bogus", None],
    "verbose": [0, 1, 10, 50, 5.5, True, -1, None, "x"],
    "timeout": [None, 1, 1.5, 30, 0, -1, "1", True],
    "pre_dispatch": ["2 * n_jobs", "all", 3, 2.0, 2.5, "n_jobs", "3*n_jobs", "1e7", 0, -1, "bogus"],
    "batch_size": ["auto", 1, 4, np.int64(2), True, 0, -1, 1.42, 4.0, "4", None],
    "prefer": [None, "threads", "processes", "gpu"],
    "require": [None, "sharedmem", "x"],
    "mmap_mode": [None, "r", "r+", "w+", "c", "x", "w"],  # no array big enough: see below
    "max_nbytes": ["1M", 1e6, None, "lots"],
}


@pytest.mark.parametrize(
    ("argument", "value"), [(a, v) for a, vs in PARALLEL_VALUES.items() for v in vs], ids=repr
)
def test_parallel_argument(argument: str, value: Any) -> None:
    def run(lib: ModuleType) -> Any:
        kwargs = {argument: value}
        if argument != "n_jobs":
            kwargs["n_jobs"] = 2
        if argument in ("timeout", "pre_dispatch", "batch_size", "verbose"):
            kwargs.setdefault("backend", "threading")  # the argument's meaning, not a pool's start
        p = lib.Parallel(**kwargs)
        out = list(p(tasks(lib)))
        # Same results in the same order (any order for generator_unordered), same n_jobs shown.
        return sorted(out) if value == "generator_unordered" else out, p.n_jobs

    compare("Parallel", argument, value, run)


@pytest.mark.parametrize("n_jobs", [None, 1, 2, -1, -2, 2.5, "2", np.int64(3)])
def test_same_effective_n_jobs(n_jobs: Any) -> None:
    compare("effective_n_jobs", "n_jobs", n_jobs, lambda lib: lib.effective_n_jobs(n_jobs))


BIG = np.arange(250, dtype=np.float64)  # 2,000 bytes
SMALL = np.arange(100, dtype=np.float64)  # 800 bytes


@pytest.mark.slow  # one loky pool per library
@pytest.mark.parametrize(
    "max_nbytes", ["1M", 1e6, 1000, 1000.0, 1999.5, None, "1K", "1.5K", 0, -1, "lots", True]
)
def test_max_nbytes_memmaps_the_same_arrays(max_nbytes: Any) -> None:
    def run(lib: ModuleType) -> Any:
        p = lib.Parallel(n_jobs=2, backend="loky", max_nbytes=max_nbytes)
        return [kind for kind, _, _ in p(lib.delayed(array_view)(a) for a in (BIG, SMALL))]

    compare("Parallel+arrays", "max_nbytes", max_nbytes, run)


@pytest.mark.slow  # one loky pool per library
@pytest.mark.parametrize("mmap_mode", [None, "r", "r+", "w+", "c", "x", "w"])
def test_mmap_mode_gives_workers_the_same_arrays(mmap_mode: Any) -> None:
    def run(lib: ModuleType) -> Any:
        p = lib.Parallel(n_jobs=2, backend="loky", max_nbytes=0, mmap_mode=mmap_mode)
        return [view[:2] for view in p(lib.delayed(array_view)(a) for a in (BIG, SMALL))]

    compare("Parallel+arrays", "mmap_mode", mmap_mode, run)


@pytest.mark.slow  # one loky pool per library
@pytest.mark.parametrize("form", [None, "str", "path", "int"])
def test_temp_folder_holds_the_memmaps(form: str | None, tmp_path: pathlib.Path) -> None:
    value: Any = {None: None, "str": str(tmp_path), "path": tmp_path, "int": 3}[form]

    def run(lib: ModuleType) -> Any:
        p = lib.Parallel(n_jobs=2, backend="loky", max_nbytes=0, temp_folder=value)
        files = [name for _, _, name in p(lib.delayed(array_view)(a) for a in (BIG, SMALL))]
        return [value is None or name.startswith(str(tmp_path)) for name in files]

    shown = repr(value).replace(str(tmp_path), "<tmp_path>")
    inside = compare("Parallel+arrays", "temp_folder", value, run, shown)
    assert inside in (None, [True, True])  # pardo puts them there, also on a reused pool


# -- parallel_config / parallel_backend --------------------------------------------------------

CONFIG_VALUES: dict[str, list[Any]] = {
    "backend": [None, "loky", "threading", "bogus", 3],
    "n_jobs": [None, 2, 2.5, "2", 0, "x", True],
    "verbose": [0, 10, 5.5, None, "x"],
    "temp_folder": [None, 3],
    "max_nbytes": ["1M", 1e6, None, -1, "lots"],
    "mmap_mode": [None, "r", "r+", "w+", "c", "x"],
    "prefer": [None, "threads", "processes", "gpu"],
    "require": [None, "sharedmem", "x"],
    "inner_max_num_threads": [None, 1, 2.0, 0, "x"],
}


@pytest.mark.parametrize(
    ("argument", "value"), [(a, v) for a, vs in CONFIG_VALUES.items() for v in vs], ids=repr
)
def test_parallel_config_argument(argument: str, value: Any) -> None:
    def run(lib: ModuleType) -> Any:
        kwargs = {argument: value}
        if argument == "inner_max_num_threads":
            kwargs["backend"] = "loky"
        with lib.parallel_config(**kwargs):
            p = lib.Parallel()
            return list(p(tasks(lib))), p.n_jobs

    compare("parallel_config", argument, value, run)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"backend": "threading"},
        {"backend": "threading", "n_jobs": None},
        {"backend": "threading", "n_jobs": 2},
        {"backend": "threading", "n_jobs": 2.5},
        {"backend": "threading", "n_jobs": 0},
        {"backend": "loky", "inner_max_num_threads": 1},
        {"backend": "threading", "inner_max_num_threads": 1},
        {"backend": "loky", "idle_worker_timeout": 10},
        {"backend": "bogus"},
    ],
    ids=repr,
)
def test_parallel_backend_arguments(kwargs: dict[str, Any]) -> None:
    def run(lib: ModuleType) -> Any:
        with lib.parallel_backend(**kwargs) as (backend, n_jobs):
            p = lib.Parallel()
            return list(p(tasks(lib))), n_jobs, p.n_jobs, type(backend).__name__

    compare("parallel_backend", "kwargs", kwargs, run)


# -- dump / load -------------------------------------------------------------------------------

DATA = {"array": np.arange(10.0), "text": "x"}


def round_trip(lib: ModuleType, path: pathlib.Path, **kwargs: Any) -> Any:
    """Dump with ``kwargs`` and load back with ``lib``: what came back, in comparable form."""
    lib.dump(DATA, path, **kwargs)
    back = lib.load(path)
    return back["array"].tolist(), back["text"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        *({"compress": c} for c in (0, 3, 9, True, False, None, 10, -1, 3.0, "bogus", "lz4")),
        *({"compress": c} for c in ("zlib", "gzip", "bz2", "lzma", "xz")),
        *({"compress": c} for c in (("zlib", 3), ("gzip", 3), ("bogus", 3), ("zlib", 10))),
        *({"protocol": p} for p in (None, 2, 4, 5, -1, 99)),
    ],
    ids=repr,
)
def test_dump_arguments(kwargs: dict[str, Any], tmp_path: pathlib.Path) -> None:
    compare(
        "dump", "kwargs", kwargs, lambda lib: round_trip(lib, tmp_path / lib.__name__, **kwargs)
    )


@pytest.mark.parametrize("target", ["str", "path", "file", "compressed file"])
def test_dump_and_load_targets(target: str, tmp_path: pathlib.Path) -> None:
    def run(lib: ModuleType) -> Any:
        name = tmp_path / lib.__name__
        kwargs = {"compress": 3} if target == "compressed file" else {}
        if target.endswith("file"):
            with open(name, "wb") as out:
                lib.dump(DATA, out, **kwargs)
            with open(name, "rb") as inp:
                back = lib.load(inp)
        else:
            where: Any = str(name) if target == "str" else name
            lib.dump(DATA, where, **kwargs)
            back = lib.load(where)
        return back["array"].tolist()

    compare("dump", "filename", target, run)


@pytest.mark.parametrize("mmap_mode", [None, "r", "r+", "c", "w+", "x", "w"])
def test_load_mmap_mode(mmap_mode: Any, tmp_path: pathlib.Path) -> None:
    def run(lib: ModuleType) -> Any:
        path = tmp_path / lib.__name__
        lib.dump(DATA, path)
        array = lib.load(path, mmap_mode=mmap_mode)["array"]
        return type(array).__name__, bool(array.flags.writeable), array.tolist()

    compare("load", "mmap_mode", mmap_mode, run)


def test_listed_differences_are_documented() -> None:
    page = (pathlib.Path(__file__).parents[2] / "docs" / "joblib.md").read_text()
    for function, argument, value in (*PARDO_REJECTS, *PARDO_ACCEPTS):
        written = f"{argument}={value}".replace("'", '"')  # as the page writes it: mmap_mode="x"
        assert written in page, (function, written)


def test_the_2013_talk_example_runs() -> None:
    # Parallel(2, max_nbytes=1e6) from joblib's early talks: a float threshold.
    assert pardo.Parallel(2, max_nbytes=1e6)(pardo.delayed(square)(i) for i in range(3)) == [
        0,
        1,
        4,
    ]
