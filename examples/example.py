#!/usr/bin/env python3
"""One point of a hyperparameter grid, as a script: the README's command-line example runs it.

    pardo python example.py --set-gamma {1} --set-c {2} ::: 0.1 1 10 ::: 0.2 2 20

fits an RBF kernel ridge regression (numpy only) with the given gamma and C on a fixed synthetic
data set, prints its validation R^2 and saves the fitted weights as ``iris_svm_g{gamma}_c{C}.mdl``
(a numpy .npy file; the name is the one GNU Parallel's remote example returns, with the values
as given on the command line). Each run takes a fraction of a second. On several machines
(docs/cli.md, "Several machines"):

    pardo --sshloginfile nodefile --workdir ~/parallel-example --basefile example.py \
        --return "iris_svm_g{1}_c{2}.mdl" ./example.py --set-gamma {1} --set-c {2} ::: 0.1 1 10 ::: 0.2 2 20
"""

from __future__ import annotations

import argparse

import numpy as np


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A fixed regression problem: 400 training and 200 validation points in 5 dimensions."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(600, 5))
    y = np.sin(X[:, 0]) * X[:, 1] + 0.5 * X[:, 2] ** 2 + 0.1 * rng.standard_normal(600)
    return X[:400], y[:400], X[400:], y[400:]


def rbf(A: np.ndarray, B: np.ndarray, gamma: float) -> np.ndarray:
    squared = (A**2).sum(1)[:, None] + (B**2).sum(1)[None, :] - 2 * A @ B.T
    return np.exp(-gamma * np.maximum(squared, 0.0))


def fit(gamma: float, c: float) -> np.ndarray:
    """Kernel ridge regression weights for kernel width ``gamma`` and penalty ``1/c``."""
    X, y, _, _ = data()
    return np.linalg.solve(rbf(X, X, gamma) + np.eye(len(X)) / c, y)


def score(gamma: float, c: float, weights: np.ndarray | None = None) -> float:
    """Validation R^2 of kernel ridge regression with kernel width ``gamma``, penalty ``1/c``."""
    X, _, X_val, y_val = data()
    weights = fit(gamma, c) if weights is None else weights
    residual = rbf(X_val, X, gamma) @ weights - y_val
    return float(1 - residual @ residual / ((y_val - y_val.mean()) ** 2).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set-gamma", required=True, help="RBF kernel width")
    parser.add_argument("--set-c", required=True, help="inverse regularisation")
    args = parser.parse_args()
    gamma, c = float(args.set_gamma), float(args.set_c)
    weights = fit(gamma, c)
    with open(f"iris_svm_g{args.set_gamma}_c{args.set_c}.mdl", "wb") as model:
        np.save(model, weights)
    print(f"gamma={gamma:g} C={c:g} R2={score(gamma, c, weights):.4f}")


if __name__ == "__main__":
    main()
