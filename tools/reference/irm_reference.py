#!/usr/bin/env python3
"""Reference values for libsae's IRM statistics (include/sae/irm/), from NumPy and SciPy.

Writes tests/fixtures/irm/reference.json, read by tests/test_irm.cpp:

* rank correlations: scipy.stats.kendalltau (variant "b"), scipy.stats.spearmanr and
  scipy.stats.rankdata (method "average") on seeded random samples, continuous and with
  many ties, up to n = 2000 (where an O(n^2) count would still be exact but the C++ side
  uses Knight's O(n log n) algorithm);
* ridge regression with an intercept: solved here as the augmented least-squares problem
  min || [Xc; sqrt(alpha) I] w - [yc; 0] ||^2 with numpy.linalg.lstsq (an SVD), a different
  route from the C++ normal equations / dual system solved by LDLT; both a tall case
  (rows > features: primal) and a wide one (features > rows: dual);
* numpy.percentile (default "linear" method) and the IRM authors' mapping onto the
  utility scale: (v - p10) / (p90 - p10) * (high - low) + low, clipped to [low, high]
  (Probing-Learned-Feedback-Patterns, Notebooks/train_linear_probe.ipynb, rescale_value,
  without its rounding to two decimals).

Run from the repository root with Debian's Python (NumPy 1.24, SciPy 1.10):
    /usr/bin/python3 tools/reference/irm_reference.py [--out tests/fixtures/irm/reference.json]
The output is deterministic (seeded numpy.random.Generator).
"""
import argparse
import json
import os

import numpy as np
import scipy
import scipy.stats


def rank_case(name, x, y):
    tau = scipy.stats.kendalltau(x, y, variant="b")
    rho = scipy.stats.spearmanr(x, y)
    return {
        "name": name,
        "x": [float(v) for v in x],
        "y": [float(v) for v in y],
        "kendall_tau_b": float(tau.statistic),
        "spearman_rho": float(rho.statistic),
        "average_ranks_x": [float(v) for v in scipy.stats.rankdata(x, method="average")],
    }


def ridge_case(name, x, y, alpha):
    x_mean = x.mean(axis=0)
    y_mean = y.mean()
    xc = x - x_mean
    yc = y - y_mean
    m = x.shape[1]
    augmented = np.vstack([xc, np.sqrt(alpha) * np.eye(m)])
    rhs = np.concatenate([yc, np.zeros(m)])
    w, *_ = np.linalg.lstsq(augmented, rhs, rcond=None)
    b = y_mean - x_mean @ w
    return {
        "name": name,
        "alpha": alpha,
        "rows": int(x.shape[0]),
        "cols": int(m),
        "x": [float(v) for v in x.ravel()],  # row-major
        "y": [float(v) for v in y],
        "weights": [float(v) for v in w],
        "intercept": float(b),
    }


def mapping_case(name, values, low, high):
    p10, p90 = np.percentile(values, [10, 90])
    mapped = np.clip((values - p10) / (p90 - p10) * (high - low) + low, low, high)
    return {
        "name": name,
        "values": [float(v) for v in values],
        "low": low,
        "high": high,
        "p10": float(p10),
        "p90": float(p90),
        "mapped": [float(v) for v in mapped],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="tests/fixtures/irm/reference.json")
    args = parser.parse_args()
    rng = np.random.default_rng(20240607)

    ranks = []
    x = rng.normal(size=50)
    ranks.append(rank_case("continuous_50", x, 0.6 * x + rng.normal(size=50)))
    # Small integer values: many ties in x, in y and in both at once.
    x = rng.integers(0, 6, size=200).astype(float)
    ranks.append(rank_case("ties_200", x, np.floor(0.5 * x + rng.integers(0, 4, size=200))))
    # VADER-like utilities (one decimal) against noisy predictions rounded to 0.1.
    x = np.round(rng.uniform(-3.9, 3.4, size=2000), 1)
    ranks.append(rank_case("utilities_2000", x, np.round(0.3 * x + rng.normal(size=2000), 1)))
    x = rng.normal(size=31)
    ranks.append(rank_case("anticorrelated_31", x, -x ** 3 + 0.1 * rng.normal(size=31)))

    ridge = []
    x = rng.normal(size=(40, 6))
    ridge.append(ridge_case("tall_40x6", x, x @ rng.normal(size=6) + 3.0 + 0.5 * rng.normal(size=40), 0.7))
    x = rng.normal(size=(7, 12))  # more features than rows: the dual system
    ridge.append(ridge_case("wide_7x12", x, rng.normal(size=7) - 1.0, 1.5))

    values = rng.normal(size=37) * 2.0 + 0.3
    percentiles = {
        "values": [float(v) for v in values],
        "q": [0.0, 10.0, 25.0, 33.3, 50.0, 90.0, 100.0],
        "expected": [float(np.percentile(values, q)) for q in [0.0, 10.0, 25.0, 33.3, 50.0, 90.0, 100.0]],
    }
    mapping = mapping_case("normal_60", rng.normal(size=60) * 1.7 - 0.4, -3.9, 3.4)

    out = {
        "generator": "tools/reference/irm_reference.py",
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "rank_correlation": ranks,
        "ridge": ridge,
        "percentile": percentiles,
        "mapping": mapping,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
