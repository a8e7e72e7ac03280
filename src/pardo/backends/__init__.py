"""Backends: the base class a new backend subclasses, and the registry of names (re-exported).

``Backend`` (``_base``) is the contract; ``ProcessBackend`` (``_pool``) the shared lifecycle of
process pools; one module per built-in backend; ``_registry`` maps names to them.
"""

from __future__ import annotations

from pardo.backends._base import Backend, CallSettings
from pardo.backends._registry import (
    available_backends,
    backend_factory,
    backend_type,
    check_backend_name,
    get_default_backend,
    make_backend,
    processes_available,
    register_parallel_backend,
)

__all__ = [
    "Backend",
    "CallSettings",
    "available_backends",
    "backend_factory",
    "backend_type",
    "check_backend_name",
    "get_default_backend",
    "make_backend",
    "processes_available",
    "register_parallel_backend",
]
