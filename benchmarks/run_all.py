#!/usr/bin/python3
"""Run every libsae training benchmark, print one table of the targets of the
performance issue, and write benchmarks/results/<name>.json.

It builds nothing: configure and build the benchmarks first (README, "Performance"):
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DSAE_BUILD_BENCHMARKS=ON \
        -DSAE_BUILD_TESTS=OFF -DSAE_BUILD_EXAMPLES=OFF -DSAE_BUILD_CLI=OFF
  cmake --build build-bench --target sae_training linear_assignment
  benchmarks/run_all.py --build-dir build-bench

Runs, in order (about 4 minutes on a 2-core machine):
  sae_training          TopK SAE training and encoding at three shapes against PyTorch
                        (benchmarks/sae_training_torch.py) and Eigen's GEMM rate; the MFR
                        ensemble against independent SAEs
  linear_assignment     the LAP solver against scipy.optimize.linear_sum_assignment
  sae_training --rss    peak memory of training, one fresh process per shape: the peak
                        resident set against the training state (parameters + Adam +
                        two batches), both whole and above the process's resident set
                        before training (code and libraries), each against the same goal

The benchmarks time with Google Benchmark (libbenchmark-dev, from tools/install-deps
--bench); their JSON lines, kept in the results file, name it ("timer").

PyTorch's matrix products go to the BLAS that libblas.so.3 resolves to. Debian's default
is the reference BLAS (one core, unblocked loops); with libopenblas0-pthread installed
(tools/install-deps --bench) this script points torch at OpenBLAS explicitly, and when
OpenBLAS does not recognise the CPU (it then falls back to its slowest "Prescott" kernels,
e.g. under some hypervisors) it names the right kernel family through OPENBLAS_CORETYPE,
so that the peer runs at its best. Both choices are recorded in the results.

The load average of the machine before and after the runs is recorded: timings on a
shared, loaded machine are lower bounds of what it can do.

Usage: benchmarks/run_all.py [--name NAME] [--build-dir DIR] [--threads N] [--quick]
                             [--no-torch] [--openblas-dir DIR]
"""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
OPENBLAS_DIRS = ["/usr/lib/x86_64-linux-gnu/openblas-pthread", "/usr/lib/aarch64-linux-gnu/openblas-pthread"]

TARGETS = {
    "train_over_torch": 6.0,
    "train_fraction_of_gemm_bound": 0.70,
    "encode_fraction_of_gemm_rate": 0.80,
    "mfr_refreshed_over_independent": 1.25,
    "lap_scipy_over_libsae": 1.0,
    "rss_over_state": 1.2,
}


def log(message):
    print(message, file=sys.stderr, flush=True)


def run(command, env=None, capture=True):
    log("+ " + " ".join(command))
    result = subprocess.run(command, env=env, cwd=ROOT, text=True, stdout=subprocess.PIPE if capture else None)
    if result.returncode != 0:
        raise SystemExit(f"run_all: command failed ({result.returncode}): {' '.join(command)}")
    return result.stdout if capture else ""


def last_json(output):
    for line in reversed(output.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit("run_all: a benchmark printed no JSON line")


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine():
    info = {"system": platform.platform(), "cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu"] = models[0] if models else platform.processor()
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 1048576, 1)
    except OSError:
        pass
    compiler = subprocess.run(["c++", "--version"], text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    info["compiler"] = compiler.stdout.splitlines()[0] if compiler.returncode == 0 else "unknown"
    return info


def torch_environment(args):
    """The environment for the PyTorch runs (OpenBLAS when available) and a description."""
    env = dict(os.environ)
    directory = args.openblas_dir or next((d for d in OPENBLAS_DIRS if os.path.exists(os.path.join(d, "libblas.so.3"))), None)
    description = {"blas": "system libblas.so.3"}
    if directory is None:
        log("run_all: OpenBLAS not found; PyTorch uses the system BLAS (Debian's default is the reference BLAS)")
        return env, description
    env["LD_LIBRARY_PATH"] = directory + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    description = {"blas": "OpenBLAS " + directory}
    probe = subprocess.run([PYTHON, "-c", "import torch; torch.ones(64, 64) @ torch.ones(64, 64)"],
                           env=dict(env, OPENBLAS_VERBOSE="2"), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    match = re.search(r"Core: (\w+)", probe.stdout)
    core = match.group(1) if match else "unknown"
    description["openblas_detected_core"] = core
    if "OPENBLAS_CORETYPE" not in env and core.lower() in ("prescott", "unknown", "generic"):
        flags = cpu_flags()
        chosen = "SkylakeX" if "avx512f" in flags else "Haswell" if "avx2" in flags else None
        if chosen:
            env["OPENBLAS_CORETYPE"] = chosen
            description["openblas_coretype"] = chosen
            log(f"run_all: OpenBLAS detected core '{core}'; using OPENBLAS_CORETYPE={chosen}")
    elif "OPENBLAS_CORETYPE" in env:
        description["openblas_coretype"] = env["OPENBLAS_CORETYPE"]
    return env, description


def benchmark_dir(args):
    """The directory holding the built benchmark executables (this script builds nothing)."""
    bin_dir = os.path.join(os.path.abspath(args.build_dir), "benchmarks")
    missing = [name for name in ["sae_training", "linear_assignment"] if not os.access(os.path.join(bin_dir, name), os.X_OK)]
    if missing:
        raise SystemExit(f"run_all: {', '.join(missing)} not found in {bin_dir}; build them first with "
                         f"-DSAE_BUILD_BENCHMARKS=ON (see the docstring of this script or README, Performance)")
    return bin_dir


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def verdict(value, goal, at_least):
    if value is None:
        return "not measured"
    return "yes" if (value >= goal if at_least else value <= goal) else "NO"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", default=None, help="results file name (default: date and host)")
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    parser.add_argument("--threads", type=int, default=0, help="0: every core")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, no 8192 assignment (a smoke test)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--openblas-dir", default=None, help="directory holding OpenBLAS's libblas.so.3")
    args = parser.parse_args()

    started = datetime.datetime.now(datetime.timezone.utc)
    name = args.name or started.strftime("%Y-%m-%d_%H%M") + "_" + platform.node()
    bin_dir = benchmark_dir(args)
    load_before = load_average()
    env, torch_blas = torch_environment(args)
    threads = ["--threads", str(args.threads)] if args.threads > 0 else []

    training_command = [os.path.join(bin_dir, "sae_training")] + threads
    if args.quick:
        training_command += ["--steps", "2", "--warmup", "1", "--torch-steps", "1", "--mfr-steps", "1"]
    if args.no_torch:
        training_command.append("--no-torch")
    training_output = run(training_command, env=env)
    training = last_json(training_output)

    lap_command = [os.path.join(bin_dir, "linear_assignment")]
    if args.quick:
        lap_command += ["--sizes", "512,3072", "--reps", "1"]
    lap_output = run(lap_command)
    lap = last_json(lap_output)

    rss = {}
    rss_outputs = []
    for shape in ["synthetic", "gpt2", "modern"]:
        output = run([os.path.join(bin_dir, "sae_training"), "--rss", shape, "--steps", "3"] + threads)
        rss_outputs.append(output.strip().splitlines()[0])
        rss[shape] = last_json(output)

    # The benchmarks' own tables, then the targets.
    print(training_output.rsplit("\n{", 1)[0])
    print(lap_output.rsplit("\n{", 1)[0])
    print()
    for line in rss_outputs:
        print(line)

    modern = training.get("shapes", {}).get("modern", {})
    rows = []

    def add(target, measured, goal, at_least, note=""):
        rows.append({"target": target, "measured": measured, "goal": goal, "at_least": at_least,
                     "met": verdict(measured, goal, at_least), "note": note})

    for variant in ["dense", "sparse"]:
        # ratio / fraction of the bound = torch's step time / the encoder GEMM's time: the
        # ratio a step that did nothing but its one unavoidable GEMM would reach.
        ratio, fraction = modern.get(f"ratio_over_torch_{variant}"), modern.get("train_fraction_of_gemm_bound")
        ceiling = f"a step of exactly the encoder GEMM would reach {ratio / fraction:.2f}x" if ratio and fraction else ""
        add(f"TopK step 768->24576: tokens/s libsae / torch ({variant})", ratio, TARGETS["train_over_torch"], True, ceiling)
    add("TopK step 768->24576: fraction of the encoder-GEMM bound", modern.get("train_fraction_of_gemm_bound"),
        TARGETS["train_fraction_of_gemm_bound"], True)
    for shape, result in training.get("shapes", {}).items():
        add(f"encode-only {shape}: fraction of the GEMM rate", result.get("encode_fraction_of_gemm_rate"),
            TARGETS["encode_fraction_of_gemm_rate"], True)
    for shape, result in training.get("mfr", {}).items():
        add(f"MFR {shape} ({result['num_saes']} SAEs), {result['measured_run_steps']} steps with one refresh / "
            f"as many independent steps (measured)", result.get("ratio_measured_refreshed"),
            TARGETS["mfr_refreshed_over_independent"], False,
            f"modelled from single steps: every 100 {result['ratio_refreshed_every_100']:.2f}x, every 1000 "
            f"{result['ratio_refreshed_every_1000']:.2f}x, exact every step {result['ratio_exact']:.2f}x, "
            f"stale {result['ratio_stale']:.2f}x")
    for entry in lap.get("sizes", []):
        add(f"linear assignment n = {entry['n']}: SciPy time / libsae time", entry.get("ratio_scipy_over_libsae"),
            TARGETS["lap_scipy_over_libsae"], True,
            "same optimal cost" if entry.get("relative_cost_difference", 1.0) < 1e-9 else "COSTS DIFFER")
    for shape, result in rss.items():
        add(f"peak RSS of training {shape} / (parameters + Adam + two batches)", result.get("ratio"),
            TARGETS["rss_over_state"], False)
        add(f"peak RSS of training {shape} above the process baseline / state", result.get("ratio_above_baseline"),
            TARGETS["rss_over_state"], False,
            f"baseline {result['baseline_rss_bytes'] / 1048576:.1f} MiB" if "baseline_rss_bytes" in result else "")

    print(f"\nTargets (machine: {machine().get('cpu', '?')}, {os.cpu_count()} cores; timer: {training.get('timer', '?')}; "
          f"torch BLAS: {torch_blas['blas']}"
          f"{', OPENBLAS_CORETYPE=' + torch_blas['openblas_coretype'] if 'openblas_coretype' in torch_blas else ''})\n")
    print("| target | measured | goal | met | note |\n|---|---|---|---|---|")
    for row in rows:
        measured = "-" if row["measured"] is None else f"{row['measured']:.3f}"
        goal = ("≥ " if row["at_least"] else "≤ ") + f"{row['goal']:g}"
        print(f"| {row['target']} | {measured} | {goal} | {row['met']} | {row['note']} |")

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL).stdout.strip()
    load_after = load_average()
    print(f"load average (1, 5, 15 min) before: {load_before}, after: {load_after}")
    results = {"name": name, "date": started.isoformat(timespec="seconds"), "git_commit": commit, "machine": machine(),
               "load_average_before": load_before, "load_average_after": load_after,
               "torch_blas": torch_blas, "quick": args.quick, "targets": rows, "sae_training": training,
               "linear_assignment": lap, "rss": rss}
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    path = os.path.join(ROOT, "benchmarks", "results", name + ".json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    print(f"\nwrote {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
