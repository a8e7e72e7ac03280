"""Markdown output: the machine the numbers come from, and one table per workload."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from _harness import EngineResult, medians

__all__ = ["machine_info", "table"]

PACKAGES = ("pardo", "joblib", "loky", "mpire", "numpy", "cloudpickle", "psutil")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_revision() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + (" (src/ has uncommitted changes)" if dirty else "")


def machine_info(n_jobs: int, rate: float) -> list[str]:
    """Markdown bullet lines: CPU, counts, memory, Python, package versions, load, revision."""
    import psutil

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- CPU: {_cpu_model()}; {os.cpu_count()} logical CPUs ({psutil.cpu_count(logical=False)} "
        f"physical), {affinity} usable by this process; n_jobs = {n_jobs}",
        f"- memory: {psutil.virtual_memory().total / 2**30:.1f} GiB; "
        f"pure-Python speed: {rate / 1e6:.1f} M spin turns/s",
        f"- Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.platform()}",
        f"- {', '.join(versions)}",
        f"- pardo revision: {_git_revision()}",
        f"- load average at start (1, 5, 15 min): {load}",
    ]


def _cell(column: Any, engine: str, table_medians: dict[str, dict[str, Any]], ctx: Any) -> str:
    value = column.value(engine, table_medians, ctx)
    if value is None:
        return "—"
    try:
        return str(column.fmt.format(value))
    except (ValueError, TypeError):
        return str(value)


def table(
    workload: Any, params: dict[str, Any], n_jobs: int, results: list[EngineResult]
) -> list[str]:
    """The markdown section of one workload: title, one row per engine, notes on failures."""
    ctx = {"n_jobs": n_jobs, "params": params}
    all_medians = {r.engine: medians(r, workload.primary) for r in results if r.error is None}
    headers = ["engine", *(c.header for c in workload.columns), "reps", "spread"]
    lines = [
        f"### {workload.name}: {workload.title.format(**params)}",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    notes = []
    for result in results:
        if result.error is not None:
            cells = ["error"] + [""] * (len(headers) - 2)
            notes.append(f"- {result.engine}: {result.error}")
        else:
            cells = [_cell(c, result.engine, all_medians, ctx) for c in workload.columns]
            spread = all_medians[result.engine].get("spread")
            cells += [str(len(result.reps)), "—" if spread is None else f"{spread:.0%}"]
            if not result.ok:
                cells[0] = "WRONG RESULTS " + cells[0]
                notes.append(f"- {result.engine}: returned wrong or missing results")
        lines.append(f"| {result.engine} | " + " | ".join(cells) + " |")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [*lines, "", *notes, f"load average after it (1, 5, 15 min): {load}", ""]


def python_command() -> str:
    """How this run was started, for the header of the results file."""
    return " ".join(["python", *sys.argv])
