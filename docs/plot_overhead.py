"""Measure tasks/s against task duration for pardo and joblib, and plot it to docs/img/overhead.png.

    pip install -e ".[docs,bench]"
    python docs/plot_overhead.py                  # about a minute on 2 cores
    python docs/plot_overhead.py --backend threading --out /tmp/threads.png

Each task busy-waits for a fixed duration (pure Python, holding the GIL like real Python work),
so the ideal throughput is ``n_jobs / duration``. The gap between a curve and the ideal line is
the per-task overhead. Both libraries run on warm pools in this one process, each measured
``--reps`` times and reported as the median; on a shared machine, compare the curves of one run,
not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Task durations in seconds; 0 means a trivial task (pure dispatch overhead).
DURATIONS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)
#: Wall-clock budget per measurement at the ideal rate; sets the number of tasks per point.
BUDGET_SECONDS = 0.5
MAX_TASKS = 100_000
MIN_TASKS = 40


def busy(seconds: float) -> float:
    """Hold the CPU for ``seconds`` (a stand-in for pure-Python work)."""
    if seconds:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
    return seconds


def n_tasks(duration: float, n_jobs: int) -> int:
    if duration == 0:
        return MAX_TASKS
    return max(MIN_TASKS, min(MAX_TASKS, int(BUDGET_SECONDS * n_jobs / duration)))


#: Runs ``count`` tasks of ``duration`` seconds; returns how many results came back.
Runner = Callable[[float, int], int]


def make_runners(backend: str, n_jobs: int) -> dict[str, Runner]:
    import joblib  # type: ignore[import-untyped]

    import pardo

    def with_pardo(duration: float, count: int) -> int:
        task = pardo.delayed(busy)
        return len(
            pardo.Parallel(n_jobs=n_jobs, backend=backend)(task(duration) for _ in range(count))
        )

    def with_joblib(duration: float, count: int) -> int:
        task = joblib.delayed(busy)
        return len(
            joblib.Parallel(n_jobs=n_jobs, backend=backend)(task(duration) for _ in range(count))
        )

    return {
        f"pardo ({backend})": with_pardo,
        f"joblib {joblib.__version__} ({backend})": with_joblib,
    }


def measure(run: Runner, duration: float, n_jobs: int, reps: int) -> float:
    """Median tasks per second of ``run`` over ``reps`` repetitions."""
    count = n_tasks(duration, n_jobs)
    rates = []
    for _ in range(reps):
        start = time.perf_counter()
        done = run(duration, count)
        rates.append(count / (time.perf_counter() - start))
        if done != count:
            msg = f"{count} tasks of {duration} s returned {done} results: the rate would be wrong"
            raise RuntimeError(msg)
    return statistics.median(rates)


def collect(runners: dict[str, Runner], n_jobs: int, reps: int) -> dict[str, list[float]]:
    for run in runners.values():
        run(0.0, 100)  # warm the pool: startup is not what this plot is about
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for duration in DURATIONS:
        for name, run in runners.items():
            rate = measure(run, duration, n_jobs, reps)
            rates[name].append(rate)
            print(f"{name:32} task {duration * 1e6:>8.0f} µs: {rate:>12,.0f} tasks/s", flush=True)
    return rates


def plot(rates: dict[str, list[float]], n_jobs: int, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # A zero duration cannot sit on a log axis: plot it at 1 µs and label it "trivial".
    xs = [max(d, 1e-6) for d in DURATIONS]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ideal = [n_jobs / d for d in xs[1:]]
    ax.plot(xs[1:], ideal, "k--", linewidth=1, label=f"ideal: {n_jobs} workers, no overhead")
    for (name, values), marker in zip(rates.items(), "os^v", strict=False):
        ax.plot(xs, values, marker=marker, label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels(["trivial", "10 µs", "100 µs", "1 ms", "10 ms"])
    ax.set_xlabel("time per task")
    ax.set_ylabel("tasks per second (higher is better)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="loky", help="backend for both libraries")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "img" / "overhead.png")
    args = parser.parse_args(argv)
    rates = collect(make_runners(args.backend, args.n_jobs), args.n_jobs, args.reps)
    title = f"Throughput vs task duration, n_jobs={args.n_jobs}, {args.backend} backend"
    plot(rates, args.n_jobs, args.out, title)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
