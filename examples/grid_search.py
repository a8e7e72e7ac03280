"""A hyperparameter grid search with pardo: kernel ridge regression over a (gamma, C) grid.

Every point of the grid is one task. Each task gets the same training data; the arrays above
``max_nbytes`` (1 MB) reach the process workers as read-only memmaps, written once per call,
instead of being pickled again for every task. The grid runs once serially and once in
parallel, and the script prints both times and the speed-up.

    python examples/grid_search.py                        # a few seconds on 2 cores
    PARDO_EXAMPLES_SMALL=1 python examples/grid_search.py # a few seconds (what the tests run)
"""

from __future__ import annotations

import itertools
import os
import time

import numpy as np

from pardo import Parallel, delayed

SMALL = os.environ.get("PARDO_EXAMPLES_SMALL") == "1"
N_TRAIN, N_VALID = (300, 100) if SMALL else (1_500, 500)
GAMMAS = (0.1, 1.0, 10.0)
CS = (0.2, 2.0, 20.0)


def make_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A smooth non-linear target in 5 dimensions, with noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 5))
    y = np.sin(3 * x[:, 0]) + x[:, 1] ** 2 - x[:, 2] * x[:, 3] + 0.1 * rng.normal(size=n)
    return x, y


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared: np.ndarray = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    np.maximum(squared, 0.0, out=squared)  # rounding can make tiny distances negative
    return squared


def validation_error(
    gamma: float,
    c: float,
    d_train: np.ndarray,
    d_valid: np.ndarray,
    y_train: np.ndarray,
    y_valid: np.ndarray,
) -> float:
    """Fit kernel ridge regression (RBF kernel) for one grid point; return the validation MSE."""
    kernel = np.exp(-gamma * d_train)
    kernel[np.diag_indices_from(kernel)] += 1.0 / c
    weights = np.linalg.solve(kernel, y_train)
    predicted = np.exp(-gamma * d_valid) @ weights
    return float(np.mean((predicted - y_valid) ** 2))


def search(n_jobs: int, data: tuple[np.ndarray, ...]) -> tuple[list[float], float]:
    """Every grid point's error, and the seconds the whole grid took."""
    start = time.perf_counter()
    errors = Parallel(n_jobs=n_jobs)(
        delayed(validation_error)(gamma, c, *data) for gamma, c in itertools.product(GAMMAS, CS)
    )
    return errors, time.perf_counter() - start


def main() -> None:
    x_train, y_train = make_data(N_TRAIN, seed=0)
    x_valid, y_valid = make_data(N_VALID, seed=1)
    # Computed once here and shared by every task (memmapped for process workers).
    data = (
        squared_distances(x_train, x_train),
        squared_distances(x_valid, x_train),
        y_train,
        y_valid,
    )

    serial, serial_time = search(1, data)
    parallel, parallel_time = search(-1, data)
    assert np.allclose(serial, parallel), "parallel results must equal the serial ones"

    for (gamma, c), error in zip(itertools.product(GAMMAS, CS), parallel, strict=True):
        print(f"gamma={gamma:<5} C={c:<5} validation MSE {error:.4f}")
    best = min(zip(parallel, itertools.product(GAMMAS, CS), strict=True))
    print(f"best: gamma={best[1][0]}, C={best[1][1]} (MSE {best[0]:.4f})")
    print(
        f"serial {serial_time:.2f} s, parallel {parallel_time:.2f} s, speed-up {serial_time / parallel_time:.1f}x"
    )


if __name__ == "__main__":
    main()
