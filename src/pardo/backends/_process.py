"""What process backends share: pickling a batch in the parent, running it in the worker.

The parent pickles each batch itself, with cloudpickle (lambdas, closures, ``__main__`` functions)
and the call's memmap reducer, and hands the pool only bytes. So the pool's own pickler never
needs per-call state, an unpicklable argument is reported with the task that holds it, and the
worker side is one small function.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import cloudpickle

from pardo._errors import PardoError, TaskPicklingError
from pardo._task import Batch, BatchResult, Failure

__all__ = ["chain_decoded", "decode_result", "encode_batch", "run_encoded"]


class _BatchPickler(cloudpickle.Pickler):  # type: ignore[misc]
    def __init__(self, file: io.BytesIO, override: Callable[[Any], Any] | None) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._override = override

    def reducer_override(self, obj: Any) -> Any:
        if self._override is not None:
            reduced = self._override(obj)
            if reduced is not NotImplemented:
                return reduced
        return super().reducer_override(obj)


def _dumps(obj: Any, override: Callable[[Any], Any] | None) -> bytes:
    buffer = io.BytesIO()
    _BatchPickler(buffer, override).dump(obj)
    return buffer.getvalue()


def encode_batch(batch: Batch, override: Callable[[Any], Any] | None = None) -> bytes:
    """Pickle ``batch``; on failure, name the first task that cannot be pickled and why."""
    try:
        return _dumps(batch, override)
    except PardoError:
        raise  # pardo's own errors (a full temp folder) already say what went wrong
    except Exception as exc:
        for offset, task in enumerate(batch.tasks):
            try:
                _dumps(task, override)
            except Exception as task_exc:
                func = getattr(task[0], "__qualname__", repr(task[0]))
                # "Could not pickle the task to send it to the workers" is joblib's phrase.
                msg = (
                    "Could not pickle the task to send it to the workers: task "
                    f"{batch.start + offset} ({func}): {type(task_exc).__name__}: {task_exc}. "
                    "Use a threading backend for objects that cannot be pickled (locks, open "
                    "files, sockets)."
                )
                raise TaskPicklingError(msg) from task_exc
        msg = (
            "Could not pickle the task to send it to the workers: the batch starting at task "
            f"{batch.start} fails to pickle: {exc}"
        )
        raise TaskPicklingError(msg) from exc


def _result_override(obj: Any) -> Any:
    from pardo._arrays._worker import reduce_result_array

    return reduce_result_array(obj)


def run_encoded(payload: bytes) -> bytes:
    """Worker side: unpickle a batch, run it, and pickle its outcome (naming what cannot travel)."""
    batch: Batch = pickle.loads(payload)
    result = batch()
    try:
        return _dumps(result, _result_override)
    except Exception:
        pass
    failures = []
    for failure in result.failures:
        try:
            _dumps(failure.exception, None)
        except Exception:
            exc = failure.exception
            stand_in = PardoError(f"{type(exc).__name__}: {exc}")
            failure = Failure(failure.offset, stand_in, failure.traceback)
        failures.append(failure)
    results = result.results
    for offset, value in enumerate(results):
        try:
            _dumps(value, _result_override)
        except Exception as exc:
            msg = (
                f"the result of task {batch.start + offset} has type {type(value).__qualname__}, "
                f"which cannot be pickled to send it back: {exc}"
            )
            failures.append(Failure(offset, TaskPicklingError(msg), ""))
            del results[offset:]
            break
    return _dumps(result._replace(results=results, failures=failures), _result_override)


def decode_result(raw: bytes) -> BatchResult:
    """Parent side of ``run_encoded``."""
    result: BatchResult = pickle.loads(raw)
    return result._replace(nbytes=len(raw))


def chain_decoded(inner: Future[bytes]) -> Future[BatchResult]:
    """A Future that resolves to the decoded ``BatchResult`` once ``inner`` is done."""
    outer: Future[BatchResult] = Future()

    def relay(done: Future[bytes]) -> None:
        failure = None if done.cancelled() else done.exception()
        if failure is not None:
            # Passed on without raising it here: a raise would give it a traceback through
            # this frame and the pool's manager thread, a cycle that keeps the dead pool's
            # pipes open until the cycle collector runs.
            outer.set_exception(failure)
            return
        try:
            outer.set_result(decode_result(done.result()))
        except BaseException as exc:
            outer.set_exception(exc)

    inner.add_done_callback(relay)
    return outer
