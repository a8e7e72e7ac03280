"""Who a cached function is: its folder name (joblib's naming) and a digest of its code.

The name follows joblib: module path plus the qualified name; a function of a ``__main__``
script is named after the script's absolute path, an IPython cell without its cell number.
The code digest is taken from the function's source text (so moving it within its file changes
nothing), or, without source (REPL lambdas, compiled code), from its code object's fields.
"""

from __future__ import annotations

import inspect
import os
import types
from typing import Any

import xxhash

__all__ = ["code_digest", "func_id"]


def func_id(func: Any) -> str:
    """``module/parts/name`` as joblib builds it (its folder under the cache root)."""
    module = getattr(func, "__module__", None)
    if module is None and not hasattr(func, "__module__"):
        module = getattr(type(func), "__module__", "unknown")
    module = module or ""
    if module == "__main__":
        module = _main_module_name(func)
    parts = module.split(".")
    name = getattr(func, "__name__", "unknown")
    qualname = getattr(func, "__qualname__", name)
    if qualname != name:
        parts.extend(qualname.split(".")[:-1])
    return "/".join([*parts, name])


def _main_module_name(func: Any) -> str:
    try:
        source = inspect.getsourcefile(func)
    except TypeError:
        source = None
    if source is None:
        return "__main__"
    parts = os.path.abspath(source).split(os.sep)
    if parts[-1].startswith("<ipython-input"):
        pieces = parts[-1].split("-")
        parts[-1] = "-".join(pieces[:2] + pieces[3:])  # drop the cell number
    elif len(parts) > 2 and parts[-2].startswith("ipykernel_"):
        parts[-2] = "ipykernel"
    filename = "-".join(parts).removesuffix(".py")
    return f"__main__-{filename}"


def code_digest(func: Any) -> str:
    """16 hex digits naming this version of ``func``'s code."""
    target = inspect.unwrap(func) if callable(func) else func
    try:
        text = inspect.getsource(target)
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        if code is None:  # a builtin or a callable object: its name (a repr may hold an address)
            kind = target if inspect.isroutine(target) else type(target)
            name = f"{getattr(kind, '__module__', '')}.{getattr(kind, '__qualname__', '')}"
            return xxhash.xxh3_64_hexdigest(name.encode())
        text = "\x00code\x00" + _fingerprint(code)
    return xxhash.xxh3_64_hexdigest(text.encode("utf-8", "surrogatepass"))


def _fingerprint(code: types.CodeType) -> str:
    """The fields that define what a code object does (no ``hash()``: stable across processes)."""
    consts = [_fingerprint(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts]
    fields = (
        code.co_code.hex(),
        consts,
        code.co_names,
        code.co_varnames,
        code.co_freevars,
        code.co_cellvars,
        code.co_argcount,
        code.co_kwonlyargcount,
        code.co_flags,
    )
    return repr(fields)
