"""The registry of backend names: the built-ins (imported lazily) and those registered at run time.

A built-in backend is looked up lazily: ``"loky"`` imports ``pardo.backends._loky`` and takes its
``backend_class``, so importing pardo starts no pool and imports no process machinery.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from pardo.backends._base import Backend

__all__ = [
    "available_backends",
    "backend_factory",
    "backend_type",
    "check_backend_name",
    "get_default_backend",
    "make_backend",
    "processes_available",
    "register_parallel_backend",
]

_BUILTIN = ("dask", "loky", "multiprocessing", "sequential", "threading")
#: Built-in backends whose workers are processes: they need the ``_multiprocessing`` module.
_PROCESS_BACKENDS = ("loky", "multiprocessing")

#: name -> factory for backends registered at run time; "" holds the default backend's name.
_REGISTRY: dict[str, Any] = {"": "loky"}


def register_parallel_backend(
    name: str, factory: Callable[..., Backend], make_default: bool = False
) -> None:
    """Make ``name`` usable as ``Parallel(backend=name)``; ``make_default`` makes it the default."""
    if not isinstance(name, str) or not name:
        msg = f"a backend name must be a non-empty string, got {name!r}"
        raise ValueError(msg)
    if not callable(factory):
        msg = f"factory for backend {name!r} must be callable, got {factory!r}"
        raise TypeError(msg)
    _REGISTRY[name] = factory
    if make_default:
        _REGISTRY[""] = name


def processes_available() -> bool:
    """Whether this Python can start worker processes (it has the ``_multiprocessing`` module).

    Single-threaded builds (Pyodide) lack it; there pardo still imports and runs in the caller.
    """
    try:
        import _multiprocessing  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def get_default_backend() -> str:
    """Name of the backend used when neither an argument nor a config names one.

    Without process support the process default gives way to ``"sequential"``, as joblib then
    runs everything in the caller: only a process backend asked for by name fails.
    """
    name: str = _REGISTRY[""]
    if name in _PROCESS_BACKENDS and not processes_available():
        return "sequential"
    return name


def available_backends() -> list[str]:
    """Every name ``Parallel(backend=...)`` accepts."""
    return sorted({*_BUILTIN, *(k for k in _REGISTRY if k)})


def check_backend_name(name: object) -> None:
    """Raise ``ValueError`` unless ``name`` is None, a known name, a ``Backend`` or a
    multiprocessing context (the error lists the known names)."""
    if isinstance(name, str) and name not in available_backends():
        msg = f"Invalid backend: {name!r}, expected one of {available_backends()!r}"
        raise ValueError(msg)
    if name is None or isinstance(name, (str, Backend)):
        return
    from multiprocessing.context import BaseContext

    if not isinstance(name, BaseContext):
        msg = (
            f"backend must be one of {available_backends()!r}, a pardo Backend instance or a "
            f"multiprocessing context, got {name!r}"
        )
        raise ValueError(msg)


def backend_factory(name: str) -> Callable[..., Backend]:
    """The class (or factory) ``name`` stands for; its class flags describe the backend."""
    if name in _REGISTRY and name:
        factory: Callable[..., Backend] = _REGISTRY[name]
        return factory
    if name in _BUILTIN:
        if name in _PROCESS_BACKENDS and not processes_available():
            msg = (
                f"backend {name!r} needs worker processes, but this Python has no "
                "_multiprocessing module (a single-threaded build such as Pyodide): use "
                "backend='sequential' or 'threading', or n_jobs=1"
            )
            raise ImportError(msg)
        module = importlib.import_module(f"pardo.backends._{name}")
        builtin: Callable[..., Backend] = module.backend_class
        return builtin
    msg = f"Invalid backend: {name!r}, expected one of {available_backends()!r}"
    raise ValueError(msg)


def backend_type(backend: Any) -> type[Backend] | None:
    """The class ``make_backend(backend)`` would build, when known without building one.

    None for a registered factory that is a plain function (only calling it tells).
    """
    if isinstance(backend, Backend):
        return type(backend)
    factory = backend_factory(backend if isinstance(backend, str) else "multiprocessing")
    return factory if isinstance(factory, type) and issubclass(factory, Backend) else None


def make_backend(
    backend: Any, params: Mapping[str, Any] | None = None, nesting_level: int = 0
) -> Backend:
    """A backend instance from a name (with its parameters), a multiprocessing context, or an
    instance given as is."""
    if isinstance(backend, Backend):
        if params:
            msg = f"backend parameters {sorted(params)} need a backend name, not an instance"
            raise ValueError(msg)
        return backend
    if not isinstance(backend, str):
        check_backend_name(backend)
        # As in joblib: a context (multiprocessing.get_context("spawn")) picks the
        # multiprocessing backend with that start method.
        params = {**(params or {}), "context": backend}
        backend = "multiprocessing"
    return backend_factory(backend)(nesting_level=nesting_level, **dict(params or {}))
