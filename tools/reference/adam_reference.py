#!/usr/bin/env python3
"""Reference values for tests/test_adam.cpp, computed by torch.optim.Adam.

Runs torch.optim.Adam (default flags: no weight decay, no AMSGrad, no maximize) for
5 steps on a fixed small tensor with fixed per-step gradients, in float64 and float32,
with non-default betas/eps as well as the defaults, prints the inputs and every
iterate, and writes them to tests/fixtures/adam_reference.json.

Usage (Debian's python3-torch; a pyenv python3 may not have torch):
    /usr/bin/python3 tools/reference/adam_reference.py [output.json]
"""
import json
import pathlib
import sys

import torch

INITIAL = [0.5, -1.25, 2.0, 0.0, -0.75, 3.5]
# One gradient per step; mixed signs and magnitudes, a zero entry and a sign flip so that
# m and v evolve differently per coordinate.
GRADIENTS = [
    [0.1, -0.2, 0.3, 0.0, 1.5, -0.05],
    [0.2, -0.1, -0.4, 0.0, 1.0, 0.02],
    [-0.3, 0.05, 0.25, 1e-3, -2.0, 0.5],
    [0.05, 0.3, -0.1, 0.0, 0.5, -1.0],
    [0.15, -0.25, 0.2, -1e-3, 0.75, 0.3],
]
CASES = [
    {"name": "defaults", "lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
    {"name": "custom", "lr": 5e-2, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-3},
]


def run(case, dtype):
    param = torch.tensor(INITIAL, dtype=dtype, requires_grad=True)
    optimizer = torch.optim.Adam([param], lr=case["lr"], betas=(case["beta1"], case["beta2"]),
                                 eps=case["epsilon"])
    iterates = []
    for gradient in GRADIENTS:
        optimizer.zero_grad()
        param.grad = torch.tensor(gradient, dtype=dtype)
        optimizer.step()
        iterates.append(param.detach().tolist())
    state = optimizer.state[param]
    return {
        "parameters": iterates,
        "first_moment": state["exp_avg"].tolist(),
        "second_moment": state["exp_avg_sq"].tolist(),
    }


def main():
    default_out = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "adam_reference.json"
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else default_out
    fixture = {"torch_version": torch.__version__, "initial": INITIAL, "gradients": GRADIENTS, "cases": []}
    print("initial  ", INITIAL)
    for step, gradient in enumerate(GRADIENTS, start=1):
        print(f"gradient {step}", gradient)
    for case in CASES:
        entry = dict(case)
        entry["float64"] = run(case, torch.float64)
        entry["float32"] = run(case, torch.float32)
        fixture["cases"].append(entry)
        print(f"case {case['name']}: lr={case['lr']} betas=({case['beta1']}, {case['beta2']}) eps={case['epsilon']}")
        for step, iterate in enumerate(entry["float64"]["parameters"], start=1):
            print(f"  step {step} float64", iterate)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(fixture, indent=2) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
