#!/usr/bin/python3
"""The SciPy side of benchmarks/linear_assignment.cpp.

Loads each cost matrix (float64 .npy) written by the C++ benchmark, solves it with
scipy.optimize.linear_sum_assignment (minimisation) --reps times, and writes one JSON
object to --out: per file the median seconds, every time, and the optimal total cost
(so that the C++ side can confirm that both found an optimum of the same value).

Usage: linear_assignment_scipy.py --out result.json [--reps 3] COST.npy...
"""

import argparse
import json
import statistics
import time

import numpy as np
import scipy
from scipy.optimize import linear_sum_assignment


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("costs", nargs="+")
    args = parser.parse_args()
    result = {"scipy": scipy.__version__, "numpy": np.__version__, "files": {}}
    for path in args.costs:
        cost = np.load(path)
        times = []
        for _ in range(args.reps):
            start = time.perf_counter()
            rows, cols = linear_sum_assignment(cost)
            times.append(time.perf_counter() - start)
        result["files"][path] = {"seconds": statistics.median(times), "all_seconds": times,
                                 "total_cost": float(cost[rows, cols].sum()), "rows": int(cost.shape[0])}
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
