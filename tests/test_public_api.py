"""The public surface: ``pardo.__all__`` pinned, every name documented, ``Parallel``'s signature.

scikit-learn subclasses ``joblib.Parallel``, binds its arguments through
``inspect.Signature.from_callable(super().__init__)`` and rewraps every task in ``__call__``; the
same subclass must work on ``pardo.Parallel``.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Callable, Iterable
from typing import Any

import pytest

import pardo
from pardo import Parallel, delayed

EXPECTED_ALL = [
    "Backend",
    "MemorizedResult",
    "Memory",
    "Parallel",
    "ParallelBackendBase",
    "PardoError",
    "RemoteTraceback",
    "StoreBackendBase",
    "TaskError",
    "TaskPicklingError",
    "TaskTimeout",
    "TaskTimeoutError",
    "TempFolderError",
    "TerminatedWorkerError",
    "TimeoutError",
    "WorkerDiedError",
    "cpu_count",
    "delayed",
    "dump",
    "effective_n_jobs",
    "expires_after",
    "hash",
    "load",
    "parallel_backend",
    "parallel_config",
    "product",
    "register_context_propagator",
    "register_parallel_backend",
    "register_store_backend",
    "ssh_cluster",
    "zip",
]

#: joblib 1.6's ``Parallel.__init__`` parameters, in order (``**backend_kwargs`` comes last).
JOBLIB_PARAMETERS = [
    "self",
    "n_jobs",
    "backend",
    "return_as",
    "verbose",
    "timeout",
    "pre_dispatch",
    "batch_size",
    "temp_folder",
    "max_nbytes",
    "mmap_mode",
    "prefer",
    "require",
]

JOBLIB_DEFAULTS = {
    "n_jobs": None,
    "backend": None,
    "return_as": "list",
    "verbose": 0,
    "timeout": None,
    "pre_dispatch": "2 * n_jobs",
    "batch_size": "auto",
    "temp_folder": None,
    "max_nbytes": "1M",
    "mmap_mode": "r",
    "prefer": None,
    "require": None,
}


def test_all_is_pinned_and_sorted() -> None:
    assert list(pardo.__all__) == EXPECTED_ALL
    assert list(pardo.__all__) == sorted(pardo.__all__)
    assert len(set(pardo.__all__)) == len(pardo.__all__)


def test_joblibs_parallel_names_are_all_exported() -> None:
    joblib_parallel_names = {
        "Parallel",
        "delayed",
        "cpu_count",
        "effective_n_jobs",
        "parallel_config",
        "parallel_backend",
        "register_parallel_backend",
        "ParallelBackendBase",
    }
    assert joblib_parallel_names <= set(pardo.__all__)


@pytest.mark.parametrize("name", EXPECTED_ALL)
def test_every_public_name_exists_and_is_documented(name: str) -> None:
    obj = getattr(pardo, name)
    doc = inspect.getdoc(obj)
    assert doc, f"pardo.{name} has no docstring"
    assert len(doc.split()) >= 3, f"pardo.{name}'s docstring is too short to help: {doc!r}"


def test_package_and_version_are_documented() -> None:
    assert (pardo.__doc__ or "").strip()
    assert isinstance(pardo.__version__, str)


def test_import_starts_nothing() -> None:
    code = (
        "import sys, threading, pardo\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "heavy = [m for m in ('loky', 'multiprocessing.pool',"
        " 'distributed', 'dask', 'tqdm') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def _parameters() -> list[inspect.Parameter]:
    return list(inspect.signature(Parallel.__init__).parameters.values())


def test_parallel_signature_starts_with_joblibs_parameters() -> None:
    params = _parameters()
    head = params[: len(JOBLIB_PARAMETERS)]
    assert [p.name for p in head] == JOBLIB_PARAMETERS
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in head)


def test_parallel_signature_ends_with_backend_kwargs() -> None:
    params = _parameters()
    assert params[-1].name == "backend_kwargs"
    assert params[-1].kind is inspect.Parameter.VAR_KEYWORD
    extras = params[len(JOBLIB_PARAMETERS) : -1]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extras), extras


def _default_value(param: inspect.Parameter) -> Any:
    """The default a parameter stands for (both libraries wrap config-able defaults in markers)."""
    default = param.default
    for attribute in ("value", "default_value"):
        if hasattr(default, attribute):
            return getattr(default, attribute)
    return default


def test_parallel_defaults_are_joblibs() -> None:
    defaults = {p.name: _default_value(p) for p in _parameters()[1 : len(JOBLIB_PARAMETERS)]}
    assert defaults == JOBLIB_DEFAULTS


def test_signature_matches_installed_joblib() -> None:
    joblib = pytest.importorskip("joblib")
    theirs = list(inspect.signature(joblib.Parallel.__init__).parameters.values())
    ours = _parameters()
    assert [p.name for p in theirs[:-1]] == [p.name for p in ours[: len(theirs) - 1]]
    assert (theirs[-1].name, theirs[-1].kind) == (ours[-1].name, ours[-1].kind)
    for mine, their in zip(ours, theirs[:-1], strict=False):
        assert _default_value(mine) == _default_value(their), mine.name


# -- a scikit-learn-style subclass -------------------------------------------------------------

_ACTIVE_CONFIG: dict[str, Any] = {}


class _WithConfig:
    """Runs a task's function under the caller's config, as scikit-learn's wrapper does."""

    def __init__(self, function: Callable[..., Any], config: dict[str, Any]) -> None:
        self.function = function
        self.config = config

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        saved = dict(_ACTIVE_CONFIG)
        _ACTIVE_CONFIG.clear()
        _ACTIVE_CONFIG.update(self.config)
        try:
            return self.function(*args, **kwargs)
        finally:
            _ACTIVE_CONFIG.clear()
            _ACTIVE_CONFIG.update(saved)


def read_config(key: str, scale: int) -> Any:
    return (_ACTIVE_CONFIG.get(key), scale * 2)


class SkLikeParallel(Parallel):
    """Binds its arguments against ``Parallel.__init__`` and rewraps triples lazily."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        signature = inspect.Signature.from_callable(super().__init__)
        bound = signature.bind(*args, **kwargs)
        self.bound_arguments = dict(bound.arguments)
        super().__init__(*bound.args, **bound.kwargs)

    def __call__(self, iterable: Iterable[Any]) -> Any:
        config = {"assume_finite": True}
        rewrapped = ((_WithConfig(f, config), a, k) for f, a, k in iterable)
        return super().__call__(rewrapped)


def test_sklearn_style_subclass_binds_positional_and_keyword_arguments() -> None:
    p = SkLikeParallel(2, "threading", "list", verbose=0, pre_dispatch="n_jobs", idle=3)
    assert p.bound_arguments["n_jobs"] == 2
    assert p.bound_arguments["backend"] == "threading"
    assert p.bound_arguments["pre_dispatch"] == "n_jobs"
    assert p.bound_arguments["backend_kwargs"] == {"idle": 3}
    assert p.n_jobs == 2


def test_sklearn_style_subclass_runs_on_every_backend(backend: str) -> None:
    p = SkLikeParallel(n_jobs=2, backend=backend)
    out = p(delayed(read_config)("assume_finite", i) for i in range(5))
    assert out == [(True, 2 * i) for i in range(5)]
