"""Measure what joblib and pardo do on each fault scenario (the source of docs/faults.md's table).

Run: ``python tests/faults/compare_joblib.py [joblib|pardo ...]``. Each scenario runs in a fresh
interpreter; the script prints one JSON line per scenario and library: what the call raised
(type, first words of the message, notes), how long it took, whether the next call worked, and
what was left behind (worker processes alive after the interpreter exited, temp folders).
Not collected by pytest (no ``test_`` prefix); needs joblib installed.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import psutil

CHILD = textwrap.dedent(
    """
    import ctypes, json, os, signal, sys, threading, time
    LIB, SCENARIO, WORKDIR = sys.argv[1:4]
    if LIB == "joblib":
        from joblib import Parallel, delayed
    else:
        from pardo import Parallel, delayed

    def note(i):
        open(os.path.join(WORKDIR, f"pid-{i}-{os.getpid()}"), "w").close()

    def task(i, how):
        note(i)
        if i == 2:
            if how == "exit": os._exit(3)
            marker = os.path.join(WORKDIR, "crashed")
            if how == "exit_once" and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(3)
            if how == "segfault": ctypes.string_at(0)
            if how == "sigkill": os.kill(os.getpid(), signal.SIGKILL)
            if how in ("error", "collect"): raise ValueError("task 2 fails")
            if how == "stuck": time.sleep(60)
            if how == "lock": return threading.Lock()
        if how in ("interrupt", "interrupt_threads"):
            open(os.path.join(WORKDIR, f"started-{i}"), "w").close()
            time.sleep(60 if how == "interrupt" else 1)
            open(os.path.join(WORKDIR, f"finished-{i}"), "w").close()
        if how == "error" and i == 3:
            time.sleep(30)
        time.sleep(0.2)
        return i

    extra = {
        "exit_once": {"retries": 1},
        "collect": {"on_error": "collect"},
        "interrupt_threads": {"backend": "threading"},
    }.get(SCENARIO, {})
    if SCENARIO == "stuck":  # joblib has no per-task timeout: only a wait limit for the call
        extra = {"timeout": 1} if LIB == "joblib" else {"task_timeout": 1, "on_timeout": "return"}
    how = SCENARIO
    args = [(i, how) for i in range(6)]
    if SCENARIO == "unpicklable_arg":
        how, args = "ok", [(threading.Lock(), "ok")] + [(i, "ok") for i in range(1, 4)]
    print("ready", flush=True)
    if SCENARIO == "idle":  # a call, then nothing: the pool waits for the next one
        Parallel(n_jobs=2)(delayed(task)(i, "ok") for i in range(4))
        open(os.path.join(WORKDIR, "started-idle"), "w").close()
        time.sleep(60)
    start = time.monotonic()
    out = {}
    try:
        results = Parallel(n_jobs=2, **extra)(delayed(task)(*a) for a in args)
        out["raised"] = None
        out["results"] = repr(results)[:120]
    except BaseException as exc:
        out["caught_at"] = time.time()
        out["raised"] = type(exc).__name__
        out["message"] = str(exc)[:160]
        out["notes"] = getattr(exc, "__notes__", [])
    out["seconds"] = round(time.monotonic() - start, 2)
    try:
        Parallel(n_jobs=2)(delayed(abs)(i) for i in range(4))
        out["next_call"] = "works"
    except BaseException as exc:
        out["next_call"] = type(exc).__name__
    print(json.dumps(out), flush=True)
    """
)

SOAK = textwrap.dedent(
    """
    import gc, json, os, sys, threading, time, psutil
    LIB = sys.argv[1]
    if LIB == "joblib":
        from joblib import Parallel, delayed
    else:
        from pardo import Parallel, delayed

    def task(i, how):
        if i == 1 and how == "exit": os._exit(3)
        if i == 1 and how == "error": raise ValueError(i)
        if i == 1 and how == "stuck": time.sleep(60)
        return i

    def state():
        me = psutil.Process()
        return {"fds": me.num_fds(), "threads": me.num_threads(),
                "children": len(me.children(recursive=True)), "rss_mb": me.memory_info().rss >> 20}

    Parallel(n_jobs=2)(delayed(abs)(i) for i in range(4))
    before = state()
    for n in range(200):
        how = ("ok", "error", "exit", "stuck")[n % 4]
        kw = {}
        if how == "stuck":
            kw = {"timeout": 0.5} if LIB == "joblib" else {"task_timeout": 0.5}
        try:
            Parallel(n_jobs=2, **kw)(delayed(task)(i, how) for i in range(4))
        except Exception:
            pass
    Parallel(n_jobs=2)(delayed(abs)(i) for i in range(4))
    time.sleep(2)
    print(json.dumps({"before": before, "after": state()}))
    """
)

SCENARIOS = ("exit", "segfault", "sigkill", "exit_once", "error", "collect", "stuck", "lock")
SCENARIOS += ("unpicklable_arg",)
#: scenario: (signal, to the whole process group?, what the child is doing then)
SIGNALLED = {
    "sigint": (signal.SIGINT, True, "interrupt"),
    "sigterm": (signal.SIGTERM, False, "interrupt"),
    "sigkill_parent": (signal.SIGKILL, False, "interrupt"),
    "sigterm_idle": (signal.SIGTERM, False, "idle"),
    "sigint_threads": (signal.SIGINT, True, "interrupt_threads"),
}


def _folders(pid: int) -> list[str]:
    roots = {tempfile.gettempdir(), "/dev/shm"}
    names = (f"joblib_memmapping_folder_{pid}_*", f"pardo-{pid}-*", f"sem.*-{pid}-*")
    return sorted(f for r in roots for n in names for f in glob.glob(os.path.join(r, n)))


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def measure(lib: str, scenario: str) -> dict[str, object]:
    workdir = tempfile.mkdtemp(prefix="faults-")
    how = SIGNALLED[scenario][2] if scenario in SIGNALLED else scenario
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, lib, how, workdir],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    sent = None
    if scenario in SIGNALLED:
        while not glob.glob(os.path.join(workdir, "started-*")):
            time.sleep(0.02)
        sig, group, _ = SIGNALLED[scenario]
        sent = time.time()
        (os.killpg if group else os.kill)(proc.pid, sig)
    try:
        proc.wait(timeout=90)  # not communicate(): orphaned workers may hold stdout open
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return {"lib": lib, "scenario": scenario, "hang": True}
    exited_after = None if sent is None else round(time.time() - sent, 2)
    finished = len(glob.glob(os.path.join(workdir, "finished-*")))
    time.sleep(3)  # give orphans a chance to notice their parent is gone
    pids = {int(p.rsplit("-", 1)[1]) for p in glob.glob(os.path.join(workdir, "pid-*"))}
    alive = len([p for p in pids if _alive(p)])
    left = _folders(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the orphans, if any
    lines = proc.stdout.read().strip().splitlines()
    result: dict[str, object] = json.loads(lines[-1]) if lines else {"died": proc.returncode}
    if sent is not None and "caught_at" in result:
        result["latency"] = round(float(result.pop("caught_at")) - sent, 2)  # type: ignore[arg-type]
    result["workers_alive_after_exit"] = alive
    if sent is not None:
        result.update(exited_after=exited_after, tasks_finished=finished)
    result["left_in_tmp"] = left
    result.update(lib=lib, scenario=scenario)
    return result


def soak(lib: str) -> dict[str, object]:
    """200 calls (errors, crashes, timeouts) in one interpreter: its state before and after."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SOAK, lib],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    out_text, _ = proc.communicate(timeout=600)
    result: dict[str, object] = json.loads(out_text.strip().splitlines()[-1])
    result["left_in_tmp_after_exit"] = _folders(proc.pid)
    result.update(lib=lib, scenario="soak")
    return result


def main() -> None:
    libs = [a for a in sys.argv[1:] if a in ("joblib", "pardo")] or ["joblib", "pardo"]
    chosen = [a for a in sys.argv[1:] if a not in libs]
    for scenario in chosen or (*SCENARIOS, *SIGNALLED, "soak"):
        for lib in libs:
            found = soak(lib) if scenario == "soak" else measure(lib, scenario)
            print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main()
