"""Cross-validation over a large array shared with process workers as a memmap, never copied.

Each (alpha, fold) pair is a task, and every task receives the same 200 MB design matrix. Pickled
per task, that would mean 20 copies and seconds of pickling. pardo instead writes the array once
per call to a file in its private temp folder (``/dev/shm`` when there is room) and sends each task
a small reference, and each worker maps the file. The folder is removed when the call ends.

Each task fits ridge regression on four folds without copying them: it subtracts the held-out
fold's share from the full ``X.T @ X``. Then it scores the held-out fold.

    python examples/cross_validation_memmap.py                         # 200 MB, a few seconds
    PARDO_EXAMPLES_SMALL=1 python examples/cross_validation_memmap.py  # 3 MB, a few seconds
"""

from __future__ import annotations

import os
import time

import numpy as np

from pardo import Parallel, delayed

SMALL = os.environ.get("PARDO_EXAMPLES_SMALL") == "1"
N_SAMPLES, N_FEATURES = (20_000, 20) if SMALL else (250_000, 100)
N_FOLDS = 5
ALPHAS = (1.0, 1e3, 1e4, 1e5)


def fold_score(x: np.ndarray, y: np.ndarray, alpha: float, fold: int) -> dict[str, object]:
    """Fit ridge on every fold but ``fold``; return its held-out R² and how ``x`` arrived."""
    size = len(x) // N_FOLDS
    held_out = slice(fold * size, (fold + 1) * size)
    x_out, y_out = x[held_out], y[held_out]  # slices of a memmap are views: nothing is copied
    gram = x.T @ x - x_out.T @ x_out + alpha * np.eye(x.shape[1])
    weights = np.linalg.solve(gram, x.T @ y - x_out.T @ y_out)
    residual = y_out - x_out @ weights
    r2 = 1.0 - float(residual @ residual) / float(((y_out - y_out.mean()) ** 2).sum())
    return {
        "alpha": alpha,
        "fold": fold,
        "r2": r2,
        "type": type(x).__name__,
        "writeable": x.flags.writeable,
    }


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_SAMPLES, N_FEATURES))
    true_weights = rng.normal(size=N_FEATURES)
    y = x @ true_weights + rng.normal(scale=2.0, size=N_SAMPLES)
    print(f"X: {x.shape}, {x.nbytes / 2**20:.0f} MiB; {len(ALPHAS) * N_FOLDS} tasks")

    start = time.perf_counter()
    scores = Parallel(n_jobs=-1, max_nbytes="1M", mmap_mode="r")(
        delayed(fold_score)(x, y, alpha, fold) for alpha in ALPHAS for fold in range(N_FOLDS)
    )
    elapsed = time.perf_counter() - start

    arrived = {(s["type"], s["writeable"]) for s in scores}
    print(f"in the workers, X was: {', '.join(f'{t} (writeable={w})' for t, w in sorted(arrived))}")
    for alpha in ALPHAS:
        r2 = [float(s["r2"]) for s in scores if s["alpha"] == alpha]
        print(
            f"alpha={alpha:<8g} mean R² {np.mean(r2):.4f} (folds: {', '.join(f'{v:.3f}' for v in r2)})"
        )
    print(f"cross-validation took {elapsed:.2f} s")


if __name__ == "__main__":
    main()
