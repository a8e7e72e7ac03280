"""Run the benchmark suite of issue 6 and print (and save) one markdown table per workload.

    python benchmarks/run.py                     # the full table, ~10 minutes on 2 cores
    python benchmarks/run.py --quick             # every workload tiny: a smoke test, no timings
    python benchmarks/run.py --only tiny,startup --engines pardo-loky,joblib-loky --cores 16

Each engine runs in fresh processes of this interpreter (see ``_harness``). Results go to
``benchmarks/results/<date>-<mode>.md`` and ``.json`` (git-ignored); copy the tables you keep to
``benchmarks/RESULTS.md``. Exit status 1 when an engine failed or returned wrong results.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _engines import ENGINES
from _harness import EngineResult, byte_compile_pardo, run_engine
from _report import machine_info, python_command, table
from _tasks import calibrate
from workloads import WORKLOADS

RESULTS = Path(__file__).resolve().parent / "results"


def _names(text: str | None, allowed: dict[str, Any], what: str) -> list[str]:
    if text is None:
        return list(allowed)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        msg = f"unknown {what} {unknown}; expected some of {', '.join(allowed)}"
        raise SystemExit(msg)
    return names


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repetition")
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser.add_argument("--cores", type=int, default=usable or 1, help="n_jobs for every engine")
    parser.add_argument("--only", help=f"comma-separated workloads: {', '.join(WORKLOADS)}")
    parser.add_argument("--engines", help=f"comma-separated engines: {', '.join(ENGINES)}")
    parser.add_argument("--reps", type=int, help="repetitions (default: per workload)")
    parser.add_argument("--timeout", type=float, help="seconds per benchmark process")
    parser.add_argument("--out", type=Path, help="markdown file to write (default: results/)")
    args = parser.parse_args(argv)
    if args.cores < 1:
        parser.error(f"--cores must be >= 1, got {args.cores}")
    args.workloads = _names(args.only, WORKLOADS, "workloads")
    args.engine_names = _names(args.engines, ENGINES, "engines")
    if args.timeout is None:
        args.timeout = 120.0 if args.quick else 600.0
    return args


def _engines_for(workload: Any, chosen: list[str]) -> list[str]:
    engines = [e for e in workload.engines if e in chosen]
    if workload.needs_serial and "serial" not in engines:
        engines.append("serial")  # efficiency columns divide by it
    return engines


def _run_workload(
    name: str, args: argparse.Namespace, rate: float
) -> tuple[list[str], dict[str, Any], bool]:
    """Every chosen engine on workload ``name``: its table lines, raw data, and whether all ran."""
    workload = WORKLOADS[name]
    params = workload.sizes(args.quick, rate)
    reps = args.reps or (1 if args.quick else workload.reps)
    engines = _engines_for(workload, args.engine_names)
    results = {engine: EngineResult(engine) for engine in engines}
    # Rounds: each repetition runs every engine once, in a fresh process, so a burst of load
    # from elsewhere on the machine hits all engines alike instead of one engine's whole row.
    for _ in range(reps):
        for engine in engines:
            result = results[engine]
            if result.error is not None:
                continue
            begin = time.monotonic()
            one = run_engine(workload, engine, params, args.cores, 1, args.timeout)
            result.reps += one.reps
            result.error = one.error
            status = "ok" if one.ok else f"FAILED: {one.error or 'wrong results'}"
            print(
                f"  {name:>9} {engine:<22} {time.monotonic() - begin:6.1f} s  {status}",
                file=sys.stderr,
                flush=True,
            )
    done = list(results.values())
    lines = table(workload, params, args.cores, done)
    raw = {r.engine: {"reps": r.reps, "error": r.error} for r in done}
    kept = {k: v for k, v in params.items() if k != "turns"}
    return lines, {"params": kept, "engines": raw}, all(r.ok for r in done)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    begin = time.monotonic()
    byte_compile_pardo()
    rate = calibrate()
    mode = "quick" if args.quick else "full"
    header = [f"## pardo benchmarks ({mode})", "", f"`{python_command()}`", ""]
    header += [*machine_info(args.cores, rate), ""]
    print("\n".join(header), flush=True)
    sections, raw, ok = [], {}, True
    for name in args.workloads:
        lines, raw[name], all_ok = _run_workload(name, args, rate)
        ok = ok and all_ok
        print("\n".join(lines), flush=True)
        sections += lines
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    footer = [f"- total time: {time.monotonic() - begin:.0f} s; load average at end: {load}"]
    print("\n".join(footer))
    out = args.out or RESULTS / f"{datetime.datetime.now():%Y%m%d-%H%M%S}-{mode}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join([*header, *sections, *footer]) + "\n")
    out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=str))
    print(f"written: {out}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
