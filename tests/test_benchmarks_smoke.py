"""The benchmark suite still runs: ``benchmarks/run.py --quick`` end to end (no timing checks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("joblib")
pytest.importorskip("mpire")

RUN = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
WORKLOADS = ("tiny", "medium", "coarse", "bigarg", "startup", "generator", "skewed")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_run_prints_every_table_and_exits_0(tmp_path: Path) -> None:
    """Every workload runs every engine once at a tiny size, with correct results."""
    out = tmp_path / "quick.md"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in WORKLOADS:
        assert f"### {name}: " in proc.stdout
    assert "| engine |" in proc.stdout
    assert "| pardo-loky |" in proc.stdout
    assert "WRONG" not in proc.stdout and "| error |" not in proc.stdout
    assert out.read_text().count("### ") == len(WORKLOADS)
    assert out.with_suffix(".json").exists()


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The benchmarks' ``_harness`` module (benchmarks/ is a folder of scripts, not a package)."""
    monkeypatch.syspath_prepend(str(RUN.parent))
    import _harness

    return _harness


def test_medians_and_spread(harness: ModuleType) -> None:
    """Numbers get their median, other values their mode, and the spread is (max - min) / median."""
    result = harness.EngineResult(
        "x", reps=[{"wall": 1.0, "how": "a"}, {"wall": 3.0, "how": "a"}, {"wall": 2.0, "how": "b"}]
    )
    got = harness.medians(result)
    assert got == {"wall": 2.0, "how": "a", "spread": 1.0}


def test_sampler_growth_is_peak_in_window_minus_last_sample_before(harness: ModuleType) -> None:
    """Memory growth of a repetition: the peak inside [t0, t1] over the last sample before t0."""
    sampler = harness.TreeSampler(pid=0, interval=0.01)
    sampler.samples = [
        (0.00, 10, 100, 50, 1000, 60),
        (0.10, 12, 110, 55, 1100, 65),  # baseline: last sample at or before t0 = 0.1
        (0.15, 40, 300, 90, 1500, 95),
        (0.20, 20, 200, 70, 1200, 300),
        (0.50, 99, 999, 99, 9999, 999),  # after the window
    ]
    assert sampler.growth(0.1, 0.2) == {
        "root_rss_growth": 28,
        "tree_rss_growth": 190,
        "tree_pss_growth": 35,
        "system_growth": 400,
        "extra_growth": 235,
    }


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_memmap_prints_both_tables() -> None:
    """``bench_memmap.py`` runs pardo and joblib (timed and sampled runs) at a small size."""
    script = RUN.parent / "bench_memmap.py"
    argv = [sys.executable, str(script), "--reps", "1", "--mb", "8", "--tasks", "4"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "8 MiB float64 array" in proc.stdout
    assert "| pardo |" in proc.stdout and "| joblib |" in proc.stdout


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_memmap_calls_in_a_with_block_are_right_after_a_change() -> None:
    """``--calls 3 --change``: pardo's every call computes on the changed array."""
    script = RUN.parent / "bench_memmap.py"
    argv = [sys.executable, str(script), "--reps", "1", "--mb", "8", "--tasks", "4"]
    argv += ["--calls", "3", "--change"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    pardo_row = next(line for line in proc.stdout.splitlines() if line.startswith("| pardo |"))
    assert pardo_row.endswith("| 3 of 3 |"), pardo_row
    assert "| joblib |" in proc.stdout


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux smaps_rollup")
def test_rollup_reads_this_process_in_bytes(harness: ModuleType) -> None:
    """The sampler's reading of /proc/PID/smaps_rollup: bytes, PSS within RSS, gone -> None."""
    import os

    rollup = harness._rollup(os.getpid())
    assert rollup is not None
    assert 0 < rollup["Pss"] <= rollup["Rss"]
    assert rollup["Rss"] % 1024 == 0
    assert 0 <= rollup.get("Pss_Shmem", 0) <= rollup["Pss"]
    assert harness._rollup(2**22 + 12345) is None
