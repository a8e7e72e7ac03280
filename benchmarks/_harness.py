"""Run one engine on one workload in fresh processes, sample their memory, and collect medians.

The parent (``run.py``) calls ``run_engine``; that starts ``python _harness.py --child SPEC`` with
the current interpreter, once for all repetitions or once per repetition (``fresh_per_rep``).
The child runs the workload's ``measure`` and prints one ``@@BENCH@@ {json}`` line. While a
child runs, a ``TreeSampler`` thread in the parent records the memory of the child and all its
descendants (RSS and PSS: PSS splits shared pages between the processes that map them, so a
memmapped array shared by 2 workers counts once) and the system's used memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EngineResult", "TreeSampler", "medians", "run_engine"]

HERE = Path(__file__).resolve().parent
MARKER = "@@BENCH@@ "
#: Environment variables removed in benchmark processes: tuned for one CPU model, they would
#: mislead numpy/OpenBLAS on another (the suite is also run on a 16-core machine).
DROPPED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@dataclass
class EngineResult:
    """All repetitions of one engine on one workload, or the error that stopped it."""

    engine: str
    reps: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(rep.get("ok", True) for rep in self.reps)


#: What ``TreeSampler`` records, as growth names: RSS of the root process, RSS and PSS summed
#: over the process tree, the system's used memory (total - available: counts /dev/shm files),
#: and "extra": the tree's PSS without its shared-memory pages, plus /dev/shm usage. Memmapped
#: temp files so count once, mapped or not (adding plain PSS would count a page twice while a
#: worker maps it).
SERIES = ("root_rss_growth", "tree_rss_growth", "tree_pss_growth", "system_growth", "extra_growth")


class TreeSampler(threading.Thread):
    """Samples the memory of a process tree (see ``SERIES``) every ``interval`` s until stopped."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True, name=f"sampler-{pid}")
        self.pid = pid
        self.interval = interval
        #: (monotonic time, then one value per name in ``SERIES``), bytes.
        self.samples: list[tuple[float, ...]] = []
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._halt.is_set():
            # Listing children scans /proc (~1 ms) but must be fresh: a worker missed in the
            # baseline and found later would read as growth.
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            self._sample(procs, psutil)
            self._halt.wait(self.interval)

    def _sample(self, procs: list[Any], psutil: Any) -> None:
        now = time.monotonic()
        rss = pss = pss_shmem = root_rss = 0
        for proc in procs:
            rollup = _rollup(proc.pid)
            if rollup is None:
                continue
            rss += rollup["Rss"]
            pss += rollup["Pss"]
            pss_shmem += rollup.get("Pss_Shmem", 0)
            if proc.pid == self.pid:
                root_rss = rollup["Rss"]
        memory = psutil.virtual_memory()
        used = memory.total - memory.available
        extra = pss - pss_shmem + _shm_used()
        self.samples.append((now, root_rss, rss, pss, used, extra))

    def growth(self, t0: float, t1: float) -> dict[str, int]:
        """Peak minus baseline within [t0, t1] for each series (the baseline: last sample <= t0)."""
        before = [s for s in self.samples if s[0] <= t0]
        during = [s for s in self.samples if t0 <= s[0] <= t1 + self.interval]
        if not before or not during:
            return {}
        base = before[-1]
        return {
            name: max(0, int(max(s[i] for s in during) - base[i]))
            for i, name in enumerate(SERIES, start=1)
        }


def _rollup(pid: int) -> dict[str, int] | None:
    """``/proc/PID/smaps_rollup`` in bytes (Rss, Pss, Pss_Shmem, ...), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as file:
            lines = file.read().splitlines()[1:]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = {}
    for line in lines:
        name, _, value = line.partition(":")
        number = value.split()
        if number and number[0].isdigit():
            fields[name] = int(number[0]) * 1024
    return fields if "Pss" in fields else None


def _shm_used() -> int:
    """Bytes in use on /dev/shm, where pardo and joblib put their memmapped arrays."""
    try:
        stat = os.statvfs("/dev/shm")
    except OSError:
        return 0
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize


def byte_compile_pardo() -> None:
    """Write pardo's ``.pyc`` files before anything is timed, as an installed package has them.

    pip byte-compiles a package it installs, but not an editable install (``pip install -e``),
    and where ``PYTHONDONTWRITEBYTECODE`` is set (this machine sets it) Python never writes them
    itself. Every benchmark process, and every worker, would then compile pardo's sources at
    import: 45 ms of a 0.37 s cold start under cProfile (2026-12-02), while joblib and loky come
    precompiled from site-packages. ``compileall`` writes them whatever that variable says.
    """
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("pardo")
    if spec is not None and spec.origin is not None:
        compileall.compile_dir(os.path.dirname(spec.origin), quiet=1)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    # Spawned workers (loky) import the task module by name: they need this folder on the path.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    return env


def _kill_tree(proc: subprocess.Popen[str]) -> None:
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    proc.kill()


def _run_child(spec: dict[str, Any], memory: bool, timeout: float) -> list[dict[str, Any]]:
    """One benchmark process; its repetitions, with memory growth added when sampled."""
    command = [sys.executable, str(HERE / "_harness.py"), "--child", json.dumps(spec)]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        cwd=HERE,
    )
    sampler = TreeSampler(proc.pid) if memory else None
    if sampler is not None:
        sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        proc.communicate()
        msg = f"timed out after {timeout:.0f} s"
        raise RuntimeError(msg) from None
    finally:
        if sampler is not None:
            sampler.stop()
    lines = [line for line in out.splitlines() if line.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        tail = (err.strip().splitlines() or [f"exit code {proc.returncode}, no result"])[-1]
        raise RuntimeError(tail)
    reps: list[dict[str, Any]] = json.loads(lines[-1][len(MARKER) :])
    if sampler is not None:
        for rep in reps:
            if "t0" in rep:
                grown = sampler.growth(rep["t0"], rep["t1"])
                rep.update({k: v for k, v in grown.items() if k not in rep})
    return reps


def run_engine(
    workload: Any, engine: str, params: dict[str, Any], n_jobs: int, reps: int, timeout: float
) -> EngineResult:
    """Every repetition of ``engine`` on ``workload``; an error ends it and is kept, not raised."""
    result = EngineResult(engine)
    spec = {"workload": workload.name, "engine": engine, "n_jobs": n_jobs, "params": params}
    runs = [1] * reps if workload.fresh_per_rep else [reps]
    try:
        for count in runs:
            result.reps += _run_child({**spec, "reps": count}, workload.memory, timeout)
    except Exception as exc:
        result.error = str(exc) or type(exc).__name__
    return result


def medians(result: EngineResult, primary: str = "wall") -> dict[str, Any]:
    """Median of each numeric metric over the repetitions (the most common value of the others),
    and ``spread``: (max - min) / median of the ``primary`` metric."""
    keys = {key for rep in result.reps for key in rep if key not in ("t0", "t1", "ok")}
    out: dict[str, Any] = {}
    for key in keys:
        values = [rep[key] for rep in result.reps if rep.get(key) is not None]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if numbers and len(numbers) == len(values):
            out[key] = float(statistics.median(numbers))
        elif values:
            out[key] = statistics.mode(values)
    main = [rep[primary] for rep in result.reps if isinstance(rep.get(primary), float)]
    if len(main) > 1 and statistics.median(main) > 0:
        out["spread"] = (max(main) - min(main)) / statistics.median(main)
    return out


def _child_main(spec_json: str) -> None:
    import workloads

    spec = json.loads(spec_json)
    workload = workloads.WORKLOADS[spec["workload"]]
    reps = workload.measure(spec["engine"], spec["n_jobs"], spec["reps"], spec["params"])
    sys.stdout.write(MARKER + json.dumps(reps) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child_main(sys.argv[2])
    else:
        sys.exit("usage: python benchmarks/_harness.py --child SPEC (run.py starts this)")
