"""Benchmark: per-task overhead on a dask LocalCluster, pardo's dask backend vs joblib's.

Each run of an (engine, workload) pair is a fresh Python process that starts its own
LocalCluster (2 worker processes x 1 thread on 127.0.0.1 unless told otherwise), warms it up
with one small call, then times ``--reps`` calls; ``--rounds`` such processes per engine run
alternately, so that drifting machine load hits both engines alike. Overhead per task =
(median wall time - ideal time) / tasks, where the ideal time is the tasks' own work (their
sleeps, as measured on this machine) spread over the cluster's threads.

    python benchmarks/bench_dask.py                     # noop, 1ms and shared-array workloads
    python benchmarks/bench_dask.py --reps 5 --rounds 5 --workers 4
    python benchmarks/bench_dask.py --scatter           # also: what a scatter costs vs inlining
    python benchmarks/bench_dask.py --targets           # also: pardo's overhead per batch_target

Prints a markdown table of medians and the pardo / joblib ratio. The ``--scatter`` and
``--targets`` tables are what set ``SCATTER_NBYTES`` and ``DaskBackend.batch_target`` (see
pardo.backends._dask).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

ENGINES = ("pardo", "joblib")
#: name -> (tasks, seconds of work per task, MB of array shared by all tasks)
WORKLOADS = {
    "noop": (20_000, 0.0, 0),
    "1ms": (2_000, 0.001, 0),
    "shared 50 MB array": (400, 0.0, 50),
}


def work(x: int, seconds: float, shared: Any = None) -> int:
    """The task: sleep ``seconds``, return ``x``. Sleeping, not spinning, leaves the CPU to the
    scheduler and the client, so on a small machine the overhead measured is dispatch's own."""
    if seconds:
        time.sleep(seconds)
    return x


def _seconds(action: Any) -> float:
    begin = time.perf_counter()
    action()
    return time.perf_counter() - begin


def _cluster(workers: int) -> Any:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
    )
    return cluster, Client(cluster)


def _one_call(engine: str, tasks: int, seconds: float, shared: Any) -> float:
    lib: Any = __import__(engine)
    begin = time.perf_counter()
    with lib.parallel_config(backend="dask"):
        out = lib.Parallel(n_jobs=-1)(lib.delayed(work)(i, seconds, shared) for i in range(tasks))
    elapsed = time.perf_counter() - begin
    assert out == list(range(tasks))
    return elapsed


def child(engine: str, workload: str, reps: int, workers: int) -> None:
    """Fresh process: start a cluster, warm up, time ``reps`` calls, print JSON."""
    import numpy as np

    tasks, seconds, megabytes = WORKLOADS[workload]
    shared = np.ones(megabytes * 2**20 // 8) if megabytes else None
    # time.sleep(0.001) takes longer than 1 ms, more so on a loaded machine: measure it here.
    slept = statistics.median(_seconds(lambda: work(0, seconds)) for _ in range(200))
    cluster, client = _cluster(workers)
    try:
        _one_call(engine, 2 * workers, 0.0, None)
        times = [_one_call(engine, tasks, seconds, shared) for _ in range(reps)]
    finally:
        client.close()
        cluster.close()
    print(json.dumps({"times": times, "ideal": tasks * (slept if seconds else 0.0) / workers}))


def _spawn(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def overhead_table(reps: int, rounds: int, workers: int) -> str:
    rows = [
        f"| workload | tasks | pardo µs/task | joblib µs/task | pardo / joblib "
        f"| ({workers} workers x 1 thread; median of {rounds} processes x {reps} calls) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for workload, (tasks, _, _) in WORKLOADS.items():
        overheads: dict[str, list[float]] = {engine: [] for engine in ENGINES}
        for _ in range(rounds):
            for engine in ENGINES:
                run = _spawn(["--child", engine, workload, str(reps), str(workers)])
                overheads[engine] += [t - run["ideal"] for t in run["times"]]
        per_task = {e: max(statistics.median(o), 0.0) / tasks * 1e6 for e, o in overheads.items()}
        ratio = per_task["pardo"] / per_task["joblib"] if per_task["joblib"] else float("nan")
        rows.append(
            f"| {workload} | {tasks} | {per_task['pardo']:.0f} | {per_task['joblib']:.0f} "
            f"| {ratio:.2f} | |"
        )
    return "\n".join(rows)


def scatter_child(reps: int, workers: int) -> None:
    """Fresh process: a task round trip, a scatter, and a task carrying N bytes inline.

    The inline cost is measured against an empty task timed just before it (pairs, median of
    the differences), so drifting machine load cancels out.
    """
    import numpy as np

    cluster, client = _cluster(workers)

    def empty() -> None:
        client.submit(work, 0, 0.0, pure=False).result()

    try:
        for _ in range(10):
            empty()
        rows: dict[str, Any] = {
            "round trip": statistics.median(_seconds(empty) for _ in range(reps))
        }
        for nbytes in (10**3, 10**4, 10**5, 10**6, 10**7):
            array = np.ones(nbytes // 8)
            scatter = statistics.median(
                _seconds(lambda a=array: client.scatter([a], hash=False)) for _ in range(reps)
            )
            extra = statistics.median(
                _seconds(lambda a=array: client.submit(work, 0, 0.0, a, pure=False).result())
                - _seconds(empty)
                for _ in range(reps)
            )
            rows[str(nbytes)] = (scatter, extra)
    finally:
        client.close()
        cluster.close()
    print(json.dumps(rows))


def scatter_table(reps: int, workers: int) -> str:
    rows = _spawn(["--scatter-child", str(reps), str(workers)])
    lines = [
        f"One task round trip (submit + result, nothing to send): {rows.pop('round trip') * 1e3:.1f} ms",
        "",
        "| argument size | scatter it (ms) | extra cost to send it inline with one batch (ms) |",
        "|---:|---:|---:|",
    ]
    for nbytes, (scatter, inline) in rows.items():
        lines.append(f"| {int(nbytes):,} B | {scatter * 1e3:.1f} | {inline * 1e3:.1f} |")
    return "\n".join(lines)


TARGETS = (0.05, 0.1, 0.2, 0.5, 1.0)


def targets_child(reps: int, workers: int) -> None:
    """Fresh process, one cluster: pardo's overhead per task for each ``batch_target``, the
    targets and workloads interleaved so that machine load drifts over all of them alike."""
    from pardo.backends._dask import DaskBackend

    sleeps = {seconds for _, seconds, _ in WORKLOADS.values()}
    slept = {
        s: statistics.median(_seconds(lambda s=s: work(0, s)) for _ in range(200)) for s in sleeps
    }
    cluster, client = _cluster(workers)
    overheads: dict[str, dict[float, list[float]]] = {
        w: {t: [] for t in TARGETS} for w in WORKLOADS
    }
    try:
        _one_call("pardo", 2 * workers, 0.0, None)
        for _ in range(reps):
            for target in TARGETS:
                DaskBackend.batch_target = target
                for workload, (tasks, seconds, megabytes) in WORKLOADS.items():
                    if not megabytes:
                        ideal = tasks * (slept[seconds] if seconds else 0.0) / workers
                        spent = _one_call("pardo", tasks, seconds, None)
                        overheads[workload][target].append((spent - ideal) / tasks)
    finally:
        client.close()
        cluster.close()
    print(
        json.dumps(
            {w: {t: statistics.median(v) for t, v in d.items() if v} for w, d in overheads.items()}
        )
    )


def targets_table(reps: int, workers: int) -> str:
    rows = _spawn(["--targets-child", str(reps), str(workers)])
    lines = [
        "pardo µs/task by DaskBackend.batch_target (seconds):",
        "",
        "| workload | " + " | ".join(f"{t:g} s" for t in TARGETS) + " |",
        "|---|" + "---:|" * len(TARGETS),
    ]
    for workload, by_target in rows.items():
        if by_target:
            cells = " | ".join(f"{by_target[str(t)] * 1e6:.0f}" for t in TARGETS)
            lines.append(f"| {workload} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        engine, workload, reps, workers = sys.argv[2:6]
        child(engine, workload, int(reps), int(workers))
        return
    if sys.argv[1:2] == ["--scatter-child"]:
        scatter_child(int(sys.argv[2]), int(sys.argv[3]))
        return
    if sys.argv[1:2] == ["--targets-child"]:
        targets_child(int(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="timed calls per process")
    parser.add_argument("--rounds", type=int, default=3, help="processes per engine")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (1 thread each)")
    parser.add_argument("--scatter", action="store_true", help="also time scatter vs inline")
    parser.add_argument("--targets", action="store_true", help="also sweep batch_target")
    parser.add_argument("--only", choices=("scatter", "targets"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only is None:
        print(overhead_table(args.reps, args.rounds, args.workers))
    if args.scatter or args.only == "scatter":
        print()
        print(scatter_table(max(args.reps, 21), args.workers))
    if args.targets or args.only == "targets":
        print()
        print(targets_table(max(args.reps, 5), args.workers))


if __name__ == "__main__":
    main()
