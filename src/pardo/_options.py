"""``Parallel``'s arguments, checked once, and merged with the active ``parallel_config``.

Each argument that ``parallel_config`` can also set defaults to a ``Default`` marker, so that an
explicit value (even one equal to the default) wins over the config and the default applies only
when neither gives one: joblib's precedence.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pardo._config import check_choice, check_n_jobs
from pardo._engine._faults import FaultPolicy
from pardo._expr import eval_count
from pardo._parallel_config import memmap_threshold, validate_settings
from pardo._report._bars import check_progress
from pardo.backends import (
    Backend,
    CallSettings,
    backend_type,
    check_backend_name,
    get_default_backend,
    make_backend,
)

if TYPE_CHECKING:
    from pardo._report._capture import OutputCapture

__all__ = ["Default", "Options", "resolve_backend"]

_RETURN_AS = ("list", "generator", "generator_unordered")
_ON_ERROR = ("raise", "collect")
_ON_TIMEOUT = ("raise", "return")


class Default:
    """Marks an argument the caller did not give; shows as ``default(value)`` in signatures."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"default({self.value!r})"


def _positive_or_none(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        msg = f"{name}={value!r} is not valid; expected a number of seconds > 0, or None"
        raise ValueError(msg)
    return float(value)


@dataclass(frozen=True)
class Options:
    """Validated ``Parallel`` arguments; ``given`` holds the config-able ones passed explicitly."""

    given: Mapping[str, Any]
    return_as: str
    timeout: float | None
    pre_dispatch: int | str
    batch_size: int | str
    progress: Any
    faults: FaultPolicy
    backend_kwargs: Mapping[str, Any]
    config: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_arguments(cls, args: Mapping[str, Any]) -> Options:
        configurable = (
            *("n_jobs", "backend", "verbose", "temp_folder"),
            *("max_nbytes", "mmap_mode", "prefer", "require"),
        )
        # As in joblib, an explicit n_jobs=None or backend=None means "unset" (scikit-learn
        # passes n_jobs=None through), so the enclosing parallel_config still applies.
        given = {
            k: args[k]
            for k in configurable
            if not isinstance(args[k], Default)
            and not (k in ("n_jobs", "backend") and args[k] is None)
        }
        validate_settings({k: v for k, v in given.items() if k != "backend"})
        check_backend_name(given.get("backend"))
        if given.get("require") == "sharedmem" and given.get("backend") is not None:
            _check_sharedmem(given["backend"])
        check_choice("return_as", args["return_as"], _RETURN_AS)
        check_choice("on_error", args["on_error"], _ON_ERROR)
        check_choice("on_timeout", args["on_timeout"], _ON_TIMEOUT)
        check_progress(args["progress"])
        batch_size = args["batch_size"]
        if batch_size != "auto":
            # numbers.Integral as in joblib (numpy ints too), but not bool.
            if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
                batch_size = 0
            if batch_size < 1:
                msg = (
                    f"batch_size={args['batch_size']!r} is not valid; expected 'auto' or an int > 0"
                )
                raise ValueError(msg)
            batch_size = int(batch_size)
        pre_dispatch = args["pre_dispatch"]
        if pre_dispatch != "all":
            try:
                _max_in_flight(pre_dispatch, 2)  # fail now, not at the first call
            except ValueError as exc:
                if "pre_dispatch" in str(exc):
                    raise
                msg = f"pre_dispatch={pre_dispatch!r} is not valid: {exc}"
                raise ValueError(msg) from None
        retries = args["retries"]
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            msg = f"retries={retries!r} is not valid; expected an int >= 0"
            raise ValueError(msg)
        retry_on = args["retry_on"]
        faults = FaultPolicy(
            retries=retries,
            collect=args["on_error"] == "collect",
            task_timeout=_positive_or_none("task_timeout", args["task_timeout"]),
            timeout_returns=args["on_timeout"] == "return",
            **({} if retry_on is None else {"retry_on": _check_retry_on(retry_on)}),
        )
        return cls(
            given=given,
            return_as=args["return_as"],
            timeout=_positive_or_none("timeout", args["timeout"]),
            pre_dispatch=pre_dispatch,
            batch_size=batch_size,
            progress=args["progress"],
            faults=faults,
            backend_kwargs=dict(args["backend_kwargs"]),
        )

    def default_n_jobs(self, config: Mapping[str, Any]) -> int:
        """The n_jobs that an unset one stands for: the chosen backend's default (joblib's)."""
        require = self.setting("require", config, None)
        name = self.given.get("backend") or config.get("backend")
        if name is None:
            prefer = self.setting("prefer", config, None)
            name = "threading" if prefer == "threads" else get_default_backend()
        kind = backend_type(name)
        if kind is None or (require == "sharedmem" and not kind.supports_sharedmem):
            return 1  # a factory function (the default's default), or threads replace it
        return kind.default_n_jobs

    def setting(self, name: str, config: Mapping[str, Any], default: Any) -> Any:
        """Explicit argument, else the config's value, else ``default``."""
        if name in self.given:
            return self.given[name]
        return config.get(name, default)

    def call_settings(self, config: Mapping[str, Any]) -> CallSettings:
        max_nbytes = self.setting("max_nbytes", config, "1M")
        mmap_mode = self.setting("mmap_mode", config, "r")
        return CallSettings(
            temp_folder=self.setting("temp_folder", config, None),
            max_nbytes=None if max_nbytes is None else memmap_threshold(max_nbytes),
            mmap_mode="r+" if mmap_mode == "w+" else mmap_mode,
            inner_max_num_threads=config.get("inner_max_num_threads"),
        )

    def capture_context(self, backend: Backend) -> tuple[tuple[Any, Any], ...]:
        """Snapshots of the caller's context that tasks should see (see pardo._context)."""
        from pardo._context import capture

        # Threads already run in a copy of the caller's context; the sequential backend runs
        # tasks in the caller itself, so registered state needs no restoring there.
        return capture(carry_vars=not backend.uses_threads, run_propagators=not backend.runs_inline)

    def capture_output(self, backend: Backend) -> OutputCapture | None:
        """How process workers record their tasks' logging and prints (see pardo._report._capture)."""
        # Threads print in the caller's process already. A worker that runs several batches
        # at once on threads (dask) gets output routed by thread instead of a swapped stdout.
        if not backend.records_worker_output:
            return None
        from pardo._report._capture import capture_spec

        return capture_spec(threaded=backend.worker_runs_batches_on_threads)

    def max_in_flight(self, n_jobs: int) -> int:
        """How many batches may be submitted and not yet handed back."""
        if self.pre_dispatch == "all":
            return 1 << 62
        return _max_in_flight(self.pre_dispatch, n_jobs)


def _max_in_flight(pre_dispatch: object, n_jobs: int) -> int:
    if isinstance(pre_dispatch, str):
        return eval_count(pre_dispatch, {"n_jobs": n_jobs})
    # int() as joblib does: 2.5 means 2. Below 1 joblib dispatches nothing and returns [].
    if (
        isinstance(pre_dispatch, (int, float))
        and not isinstance(pre_dispatch, bool)
        and math.isfinite(pre_dispatch)
        and pre_dispatch >= 1
    ):
        return int(pre_dispatch)
    msg = f"pre_dispatch={pre_dispatch!r} is not valid; expected an int > 0, 'all' or '2 * n_jobs'"
    raise ValueError(msg)


def _check_retry_on(retry_on: Any) -> tuple[type[BaseException], ...]:
    types = retry_on if isinstance(retry_on, tuple) else (retry_on,)
    for kind in types:
        if not (isinstance(kind, type) and issubclass(kind, BaseException)):
            msg = f"retry_on must be exception types, got {kind!r}"
            raise ValueError(msg)
    return types


def resolve_backend(options: Options, config: Mapping[str, Any]) -> tuple[Backend, int]:
    """The backend to use and the worker count asked of it, by joblib's precedence rules."""
    prefer = options.setting("prefer", config, None)
    require = options.setting("require", config, None)
    level = int(config.get("nesting_level", 0))
    explicit = options.given.get("backend")
    if explicit is not None:
        params = options.backend_kwargs
        backend = (
            explicit if isinstance(explicit, Backend) else make_backend(explicit, params, level)
        )
    elif config.get("backend") is not None:
        params = {**config.get("backend_params", {}), **options.backend_kwargs}
        backend = make_backend(config["backend"], params, level)
    else:
        name = "threading" if prefer == "threads" else get_default_backend()
        backend = make_backend(name, options.backend_kwargs, level)
    if require == "sharedmem" and not backend.supports_sharedmem:
        if explicit is not None:
            _check_sharedmem(backend)
        if options.setting("verbose", config, 0) >= 10:
            print(
                f"Using ThreadingBackend as joblib backend instead of {type(backend).__name__} "
                "as the latter does not provide shared memory semantics."
            )
        backend = make_backend("threading", options.backend_kwargs, level)
    n_jobs = check_n_jobs(options.setting("n_jobs", config, None))
    if n_jobs is None:
        n_jobs = backend.default_n_jobs
    # One worker runs in the caller, unless task_timeout needs a worker process it can kill.
    killable = options.faults.task_timeout is not None and backend.supports_task_timeout
    if backend.effective_n_jobs(n_jobs) == 1 and not backend.runs_inline and not killable:
        backend = make_backend("sequential", _initializer_only(options.backend_kwargs), level)
    if options.timeout is not None and not backend.supports_timeout:
        # joblib's exact words: its users' tests compare the whole message.
        warnings.warn(
            f"The backend class {type(backend).__name__!r} does not support timeout. "
            f"You have set 'timeout={options.timeout:g}' in Parallel but the 'timeout' parameter "
            "will not be used.",
            UserWarning,
            stacklevel=4,
        )
    return backend, n_jobs


def _check_sharedmem(backend: Any) -> None:
    """An explicit backend without shared memory cannot meet ``require="sharedmem"``."""
    kind = backend_type(backend)
    if kind is not None and not kind.supports_sharedmem:
        name = backend if isinstance(backend, str) else kind.__name__
        # "Backend X does not support shared memory" is joblib's phrase.
        msg = (
            f"Backend {name} does not support shared memory: require='sharedmem' needs a "
            "thread-based backend ('threading' or 'sequential'); drop backend= or require="
        )
        raise ValueError(msg)


def _initializer_only(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k in ("initializer", "initargs")}
