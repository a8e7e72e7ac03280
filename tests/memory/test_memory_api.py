"""``pardo.Memory``'s joblib-compatible surface: caching, binding, wrappers, clearing, errors."""

from __future__ import annotations

import asyncio
import pathlib
import pickle
import subprocess
import sys
from typing import Any

import cloudpickle
import numpy as np
import pytest

import pardo
from pardo import Memory, expires_after
from pardo._memory._func import AsyncMemorizedFunc, MemorizedFunc
from pardo._memory._notmemorized import NotMemorizedFunc

CALLS: list[Any] = []


def add(x: int, y: int = 1) -> int:
    CALLS.append((x, y))
    return x + y


def noisy(x: int, verbose: int = 0) -> int:
    CALLS.append(x)
    return x


def star(*args: Any, **kwargs: Any) -> Any:
    CALLS.append((args, kwargs))
    return (args, sorted(kwargs.items()))


@pytest.fixture
def memory(tmp_path: pathlib.Path) -> Memory:
    CALLS.clear()
    return Memory(str(tmp_path), verbose=0)


def test_results_are_cached_and_defaults_bound(memory: Memory) -> None:
    f = memory.cache(add)
    assert [f(5), f(5), f(5, y=1), f(x=5), f(5, 1)] == [6] * 5
    assert CALLS == [(5, 1)]
    assert f(5, 2) == 7
    assert CALLS == [(5, 1), (5, 2)]


def test_str_location_stores_under_joblib_and_path_directly(tmp_path: pathlib.Path) -> None:
    assert Memory(str(tmp_path / "a"), verbose=0).store_backend.location.endswith("/joblib")  # type: ignore[union-attr]
    assert Memory(tmp_path / "b", verbose=0).store_backend.location == str(tmp_path / "b")  # type: ignore[union-attr]


def test_cache_with_arguments_and_ignore(memory: Memory) -> None:
    f = memory.cache(ignore=["verbose"])(noisy)
    assert f(1, verbose=0) == f(1, verbose=5) == 1
    assert CALLS == [1]
    assert f.ignore == ["verbose"]
    assert f.func is noisy


def test_unknown_ignored_name_is_an_error(memory: Memory) -> None:
    f = memory.cache(ignore=["nope"])(add)
    with pytest.raises(ValueError, match="nope"):
        f(1)


def test_var_args_and_kwargs(memory: Memory) -> None:
    f = memory.cache(star)
    assert f(1, 2, a=3, b=4) == f(1, 2, b=4, a=3)
    assert len(CALLS) == 1
    f(1, 2, a=3)
    assert len(CALLS) == 2


def test_caching_a_cached_function_does_not_wrap_twice(memory: Memory) -> None:
    f = memory.cache(add)
    g = memory.cache(f)
    assert isinstance(g, MemorizedFunc) and g.func is add


def test_call_recomputes_and_returns_metadata(memory: Memory) -> None:
    f = memory.cache(add)
    f(1)
    out, metadata = f.call(1)
    assert out == 2 and CALLS == [(1, 1), (1, 1)]
    assert set(metadata) == {"duration", "time", "input_args"}
    assert metadata["input_args"] == {"x": "1", "y": "1"}


def test_call_and_shelve_returns_a_picklable_reference(memory: Memory) -> None:
    f = memory.cache(add)
    result = f.call_and_shelve(2)
    assert isinstance(result, pardo.MemorizedResult)
    assert result.get() == 3
    copy = pickle.loads(pickle.dumps(result))
    assert copy.get() == 3
    assert "location=" in repr(result) and "args_id=" in repr(result) and "add" in repr(result)
    result.clear()
    with pytest.raises(KeyError):
        copy.get()


def test_check_call_in_cache_and_why(memory: Memory) -> None:
    f = memory.cache(add)
    assert not f.check_call_in_cache(3)
    assert f.check_why_call_not_in_cache(3) == "call not in cache"
    f(3)
    assert f.check_call_in_cache(3)
    assert f.check_why_call_not_in_cache(3) == ""
    assert CALLS == [(3, 1)]


def test_clear_function_and_memory(memory: Memory) -> None:
    f = memory.cache(add)
    f(1)
    f.clear()
    f(1)
    memory.clear()
    f(1)
    assert len(CALLS) == 3


def test_location_none_caches_nothing() -> None:
    CALLS.clear()
    f = Memory(None).cache(add)
    assert isinstance(f, NotMemorizedFunc)
    assert f(1) == f(1) == 2 and len(CALLS) == 2
    assert f.call(1) == (2, {})
    assert f.call_and_shelve(1).get() == 2
    assert not f.check_call_in_cache(1)
    f.clear()


def test_eval(memory: Memory) -> None:
    assert memory.eval(add, 4) == memory.eval(add, 4) == 5
    assert CALLS == [(4, 1)]
    assert Memory(None).eval(add, 1, y=2) == 3


async def afetch(x: int) -> int:
    CALLS.append(x)
    await asyncio.sleep(0)
    return x * 10


def test_coroutine_functions_get_an_async_wrapper(memory: Memory) -> None:
    f = memory.cache(afetch)
    assert isinstance(f, AsyncMemorizedFunc)
    assert asyncio.run(f(2)) == asyncio.run(f(2)) == 20
    assert CALLS == [2]
    assert asyncio.run(Memory(None).cache(afetch)(3)) == 30


def test_mmap_mode_returns_memmaps_on_first_call_and_hits(memory: Memory) -> None:
    f = memory.cache(mmap_mode="r")(np.ones)
    first, again = f(1000), f(1000)
    assert isinstance(first, np.memmap) and isinstance(again, np.memmap)
    assert f.mmap_mode == "r"


def test_expires_after_and_callback_metadata(memory: Memory) -> None:
    seen: list[dict[str, Any]] = []

    def keep(metadata: dict[str, Any]) -> bool:
        seen.append(metadata)
        return True

    f = memory.cache(cache_validation_callback=keep)(add)
    f(1)
    f(1)
    assert CALLS == [(1, 1)] and seen and seen[0]["input_args"] == {"x": "1", "y": "1"}
    g = memory.cache(cache_validation_callback=expires_after(seconds=-1))(add)
    g(7)
    assert g.check_why_call_not_in_cache(7) == "expired"
    g(7)
    assert CALLS.count((7, 1)) == 2
    h = memory.cache(cache_validation_callback=expires_after(days=1))(add)
    h(8)
    h(8)
    assert CALLS.count((8, 1)) == 1


def test_non_callable_callback_is_refused(memory: Memory) -> None:
    with pytest.raises(
        ValueError, match=r"cache_validation_callback needs to be callable\. Got True"
    ):
        memory.cache(add, cache_validation_callback=True)  # type: ignore[arg-type]


def test_bad_locations_and_backends(tmp_path: pathlib.Path) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        Memory(file)
    with pytest.raises(TypeError, match="Unknown location"):
        Memory(str(tmp_path), backend="nope")
    with pytest.raises(ValueError, match=r"bytes_limit|byte size"):
        Memory(str(tmp_path), bytes_limit="lots")


def test_reduce_size_arguments_are_checked(memory: Memory) -> None:
    with pytest.raises(ValueError, match="negative"):
        memory.reduce_size(age_limit=-1)
    with pytest.raises(ValueError, match="byte size"):
        memory.reduce_size(bytes_limit="huge")


def test_register_store_backend_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="should be a string"):
        pardo.register_store_backend(1, pardo.StoreBackendBase)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="should inherit StoreBackendBase"):
        pardo.register_store_backend("x", dict)  # type: ignore[arg-type]


def test_register_store_backend_is_used(tmp_path: pathlib.Path) -> None:
    from pardo._memory._local import LocalStore

    configured: list[Any] = []

    class Recording(LocalStore):
        def configure(self, location: Any, verbose: int = 0, backend_options: Any = None) -> None:
            configured.append(location)
            super().configure(location, verbose, backend_options)

    pardo.register_store_backend("recording", Recording)
    memory = Memory(str(tmp_path), backend="recording", verbose=0)
    assert memory.eval(add, 1) == 2 and configured == [str(tmp_path)]


def test_wrapper_pickles_with_its_cache(memory: Memory) -> None:
    f = memory.cache(add)
    f(1)
    copy = pickle.loads(cloudpickle.dumps(f))
    assert copy.check_call_in_cache(1)
    assert (
        pickle.loads(pickle.dumps(memory)).store_backend.location == memory.store_backend.location
    )  # type: ignore[union-attr]


def _source_of(body: str) -> str:
    return f"import pardo, sys\nmem = pardo.Memory(sys.argv[1], verbose=0)\n{body}\n"


def _run_script(tmp_path: pathlib.Path, source: str) -> str:
    script = tmp_path / "script.py"
    script.write_text(source)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_code_change_invalidates_moving_does_not(tmp_path: pathlib.Path) -> None:
    body = "@mem.cache\ndef f(x):\n    print('computed')\n    return x\nf(1)\n"
    assert _run_script(tmp_path, _source_of(body)) == "computed"
    assert _run_script(tmp_path, _source_of("\n\n\n" + body)) == ""  # moved: still cached
    changed = body.replace("return x", "return x + 0")
    assert _run_script(tmp_path, _source_of(changed)) == "computed"
    why = changed + "print(f.check_why_call_not_in_cache(1))\n"
    assert _run_script(tmp_path, _source_of(why)) == ""  # both versions coexist
    back = body + "print(f.check_call_in_cache(1))\n"
    assert _run_script(tmp_path, _source_of(back)) == "True"


def test_function_without_source_has_a_stable_identity(tmp_path: pathlib.Path) -> None:
    code = (
        "import pardo, sys\nmem = pardo.Memory(sys.argv[1], verbose=0)\n"
        "ns = {}\nexec(compile('def g(x):\\n    print(\"computed\")\\n    return x', '<string>', 'exec'), ns)\n"
        "mem.cache(ns['g'])(3)\n"
    )
    assert _run_script(tmp_path, code) == "computed"
    assert _run_script(tmp_path, code) == ""


def test_main_functions_are_named_after_the_script(tmp_path: pathlib.Path) -> None:
    code = _source_of("@mem.cache\ndef f(x):\n    return x\nprint(f.func_id)\n")
    name = _run_script(tmp_path, code)
    assert name.startswith("__main__-") and name.endswith("script/f")
