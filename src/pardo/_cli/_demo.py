"""``python -m pardo demo``: a small numpy grid search, run serially and then with ``Parallel``.

Ridge regression in closed form, scored by K-fold cross-validation over a grid of alphas, on a
synthetic data set that each task rebuilds from a seed (so no large array travels to workers).
The serial run is held to one BLAS thread, as each parallel worker is, so the speed-up shown is
the one pardo's workers give, not BLAS's own threads.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["cv_error", "demo"]

_SIZES = {"default": (4000, 400, 10, 5), "quick": (400, 30, 3, 2)}


def _data(n_samples: int, n_features: int, seed: int = 0) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    coef = rng.standard_normal(n_features) * (rng.random(n_features) < 0.3)
    y = X @ coef + rng.standard_normal(n_samples)
    return X, y


def cv_error(alpha: float, fold: int, n_folds: int, n_samples: int, n_features: int) -> float:
    """Validation mean squared error of ridge(alpha) fitted on every fold but ``fold``."""
    import numpy as np

    X, y = _data(n_samples, n_features)
    test = np.arange(n_samples) % n_folds == fold
    Xt, yt = X[~test], y[~test]
    weights = np.linalg.solve(Xt.T @ Xt + alpha * np.eye(n_features), Xt.T @ yt)
    residual = X[test] @ weights - y[test]
    return float(residual @ residual / residual.size)


def _grid(size: str) -> list[tuple[float, int, int, int, int]]:
    n_samples, n_features, n_alphas, n_folds = _SIZES[size]
    alphas = [10.0**k for k in range(-2, n_alphas - 2)]
    return [(a, f, n_folds, n_samples, n_features) for a in alphas for f in range(n_folds)]


def demo(argv: Sequence[str] = ()) -> int:
    """Run the demo; 0 when the serial and parallel results agree."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from pardo import Parallel, cpu_count, delayed

    parser = argparse.ArgumentParser(prog="pardo demo", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tiny grid (for tests)")
    size = "quick" if parser.parse_args(list(argv)).quick else "default"
    grid = _grid(size)
    n_samples, n_features, n_alphas, n_folds = _SIZES[size]
    print(
        f"pardo demo: ridge regression, {n_alphas} alphas x {n_folds} folds = {len(grid)} fits "
        f"on {n_samples} x {n_features} synthetic data"
    )
    with threadpool_limits(limits=1):
        began = time.perf_counter()
        serial = [cv_error(*point) for point in grid]
        serial_time = time.perf_counter() - began
    print(f"  serial (1 BLAS thread):        {serial_time:6.2f} s")
    began = time.perf_counter()
    parallel = Parallel(n_jobs=-1)(delayed(cv_error)(*point) for point in grid)
    parallel_time = time.perf_counter() - began
    print(f"  Parallel(n_jobs=-1), {cpu_count():3d} CPUs: {parallel_time:6.2f} s")
    equal = bool(np.allclose(serial, parallel, rtol=1e-9, atol=0.0))
    scores = np.asarray(parallel).reshape(n_alphas, n_folds).mean(axis=1)
    best = int(np.argmin(scores))
    print(
        f"  speed-up: {serial_time / parallel_time:.2f}x; results equal: {'yes' if equal else 'NO'};"
        f" best alpha = {grid[best * n_folds][0]:g} (CV MSE {scores[best]:.3f})"
    )
    return 0 if equal else 1
