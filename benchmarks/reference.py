"""Throughput of the two Lasso references: cvxpy/Clarabel per instance against the batched certified solver.

Usage::

    python benchmarks/reference.py [--instances 1000] [--m 128] [--n 256] [--sparsity 0.1]
                                   [--noise-std 0.0] [--seed 0] [--cvxpy-instances N] [--json PATH]

Both methods solve the same ``SparseRecovery(m, n, sparsity, noise_std, seed=seed)`` instances
(``lam`` is the problem's default) through the public API ``unfoldtheory.reference.lasso``. The
certified solver always runs on all ``--instances``; cvxpy runs on the first ``--cvxpy-instances``
(default: all of them). When that is fewer, its total time for all instances is extrapolated from the
measured throughput and marked as such in the table. Printed: a Markdown table (method, instances
solved, total seconds, instances/second, how many were certified optimal, median and max relative
duality gap), the throughput ratio certified/cvxpy, and the largest objective difference between the
two methods on the instances both solved. ``--json PATH`` also writes all of it to PATH (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from unfoldtheory.problems import SparseRecovery
from unfoldtheory.reference import DEFAULT_TOL, lasso


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=_positive_int, default=1000, help="instances to solve (default 1000)")
    parser.add_argument("--m", type=_positive_int, default=128, help="measurements (default 128)")
    parser.add_argument("--n", type=_positive_int, default=256, help="signal dimension (default 256)")
    parser.add_argument("--sparsity", type=float, default=0.1, help="Bernoulli–Gaussian sparsity (default 0.1)")
    parser.add_argument("--noise-std", type=float, default=0.0, help="measurement noise (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="problem and sample seed (default 0)")
    parser.add_argument("--cvxpy-instances", type=_positive_int, default=None,
                        help="time cvxpy on only the first N instances and extrapolate its throughput "
                             "(default: all instances, no extrapolation)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the results to PATH")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bars (default: only on a terminal)")
    args = parser.parse_args(argv)
    if args.cvxpy_instances is None or args.cvxpy_instances > args.instances:
        args.cvxpy_instances = args.instances
    return args


def _row(method: str, sol, solved: int, total: int, seconds: float) -> dict:
    rate = solved / seconds if seconds > 0 else float("inf")
    rel = sol.relative_gap
    return {
        "method": method,
        "instances": total,
        "timed_instances": solved,
        "extrapolated": solved < total,
        "total_seconds": total / rate,
        "measured_seconds": seconds,
        "instances_per_second": rate,
        "optimal": int(sum(s == "optimal" for s in sol.status)),
        "median_relative_gap": float(np.median(rel)),
        "max_relative_gap": float(np.max(rel)),
        "iterations_median": float(np.median(sol.iterations)),
    }


def run(args: argparse.Namespace) -> dict:
    problem = SparseRecovery(args.m, args.n, args.sparsity, noise_std=args.noise_std, seed=args.seed)
    Y, _ = problem.sample(args.instances, seed=args.seed)
    A, lam = problem.A, problem.lam
    k = args.cvxpy_instances

    start = time.perf_counter()
    cvx = lasso(A, Y[:k], lam, method="cvxpy", progress=args.progress)
    cvx_seconds = time.perf_counter() - start

    start = time.perf_counter()
    cert = lasso(A, Y, lam, method="certified", progress=args.progress)
    cert_seconds = time.perf_counter() - start

    rows = [_row("cvxpy (Clarabel, per instance)", cvx, k, args.instances, cvx_seconds),
            _row(f"certified (batched, tol {DEFAULT_TOL:g})", cert, args.instances, args.instances, cert_seconds)]
    diff = cert.objective[:k] - cvx.objective
    both = np.isfinite(diff)
    absdiff = np.abs(diff[both])
    reldiff = absdiff / np.maximum(np.abs(cvx.objective[both]), np.finfo(float).tiny)
    # each solver's gap bounds its own suboptimality, hence its excess over the other one
    violations = int(np.sum(diff[both] > cert.duality_gap[:k][both] + 1e-12 * np.abs(cvx.objective[both]))
                     + np.sum(-diff[both] > cvx.duality_gap[both] + 1e-12 * np.abs(cvx.objective[both])))
    return {
        "problem": repr(problem),
        "parameters": {"instances": args.instances, "m": args.m, "n": args.n, "sparsity": args.sparsity,
                       "noise_std": args.noise_std, "seed": args.seed, "lam": lam,
                       "cvxpy_instances": k, "tol": DEFAULT_TOL},
        "rows": rows,
        "throughput_ratio_certified_over_cvxpy": rows[1]["instances_per_second"] / rows[0]["instances_per_second"],
        "common_instances": int(both.sum()),
        "max_abs_objective_difference": float(absdiff.max(initial=0.0)),
        "max_rel_objective_difference": float(reldiff.max(initial=0.0)),
        "certified_better_count": int(np.sum(diff[both] < 0)),
        "gap_bound_violations": violations,
        "environment": {"python": platform.python_version(), "numpy": np.__version__, "cvxpy": _version("cvxpy"),
                        "clarabel": _version("clarabel"), "machine": platform.machine(),
                        "cpus": os.cpu_count(), "platform": platform.platform()},
    }


def _version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return "unknown"


def markdown(result: dict) -> str:
    p = result["parameters"]
    lines = [
        f"Lasso references on {result['problem']}, λ = {p['lam']:g}",
        "",
        "| method | instances | total seconds | instances/second | optimal | median relative gap | max relative gap |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        if r["extrapolated"]:
            total = f"{r['total_seconds']:.1f} (extrapolated from {r['measured_seconds']:.1f} s on {r['timed_instances']})"
            optimal = f"{r['optimal']}/{r['timed_instances']}"
        else:
            total = f"{r['total_seconds']:.2f}"
            optimal = f"{r['optimal']}/{r['instances']}"
        lines.append(f"| {r['method']} | {r['instances']} | {total} | {r['instances_per_second']:.2f} | {optimal} | "
                     f"{r['median_relative_gap']:.2e} | {r['max_relative_gap']:.2e} |")
    cvx = result["rows"][0]
    basis = (f"cvxpy throughput measured on {cvx['timed_instances']} of {cvx['instances']} instances and extrapolated"
             if cvx["extrapolated"] else "both measured on all instances")
    lines += [
        "",
        f"Throughput ratio certified/cvxpy: **{result['throughput_ratio_certified_over_cvxpy']:.1f}×** ({basis}).",
        f"Largest objective difference on the {result['common_instances']} common instances: "
        f"{result['max_abs_objective_difference']:.3e} absolute, {result['max_rel_objective_difference']:.3e} relative "
        f"(certified lower on {result['certified_better_count']}; "
        f"differences exceeding the solvers' own duality gaps: {result['gap_bound_violations']}).",
    ]
    return "\n".join(lines)


def write_json_atomically(result: dict, path: Path) -> None:
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(result | {"markdown": markdown(result)}, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print(markdown(result))
    env = result["environment"]
    print(f"\n(Python {env['python']}, numpy {env['numpy']}, cvxpy {env['cvxpy']}, clarabel {env['clarabel']}, "
          f"{env['cpus']} CPUs, {env['platform']})")
    if args.json is not None:
        write_json_atomically(result, args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
