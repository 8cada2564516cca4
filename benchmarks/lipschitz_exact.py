"""The exact global ℓ2 Lipschitz constant (``exact_bound``, branch and bound) on trained LISTA / ALISTA nets (issue 13).

Networks: LISTA and ALISTA trained as ``benchmarks/lipschitz.py`` trains them (its ``trained``: ``--train-steps``
steps, seed ``--seed``) at each ``--sizes`` entry ``m,n,K`` (both models) or ``m,n,K:ALISTA`` (one model). Per net
one row: neurons (n·K), the certified exact interval [lower, upper] of ``exact_bound(spec, time_budget=--budget)``,
upper/lower, closed to rtol 1e-3?, seconds, nodes, node boxes found / phases forced by node intervals, and beside it
the global "best" interval (``upper_bound(spec, "best")`` with ``--global-budget``, ``lower_bound``) and
``agnostic_floor``.

Goals (issue 13): closed within 60 s on trained nets up to 100 neurons; on ALISTA (20, 40, 4) upper/lower ≤ 1.05
within 600 s. BLAS runs on one thread. ``--cache DIR`` keeps the trained specs as JSON (no pickle).

``--radii r …`` (fractions of ‖y‖) adds the local constant: for ``--inputs`` test inputs ``y`` of the net's problem
(``problem.sample``, seed 40 000 + ``--seed``, as ``benchmarks/lipschitz_local.py``) one row per ball
``Ball(y, r‖y‖)``: ``exact_bound(spec, region=ball, time_budget=--local-budget)`` (interval, upper/lower, closed?,
seconds, nodes) beside ``local_lower_bound`` / ``local_upper_bound`` (``--local-budget`` each) and their ratio.

    python benchmarks/lipschitz_exact.py [--budget 60] [--sizes 10,20,4 8,16,6 20,40,2 20,40,4:ALISTA] [--seed 0]
    python benchmarks/lipschitz_exact.py --sizes 20,40,4 --radii 0.01 0.05 --local-only [--local-budget 10]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from unfoldtheory.diagnostics import markdown_table
from unfoldtheory.lipschitz import agnostic_floor, lower_bound, upper_bound
from unfoldtheory.lipschitz.exact import exact_bound
from unfoldtheory.lipschitz.local import local_upper_bound
from unfoldtheory.lipschitz.local_lower import local_lower_bound
from unfoldtheory.lipschitz.regions import Ball
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.spec import NetworkSpec


def networks(args) -> list[tuple[str, NetworkSpec, SparseRecovery]]:
    """The trained nets of ``--sizes`` (``benchmarks/lipschitz.py``'s ``trained``), loaded from ``--cache`` if there."""
    import lipschitz as family  # benchmarks/lipschitz.py: a script's own folder is on sys.path
    out = []
    for entry in args.sizes:
        size, _, only = entry.partition(":")
        m, n, K = (int(v) for v in size.split(","))
        problem = SparseRecovery(m, n, 0.1, seed=args.seed)
        for name in (only,) if only else ("LISTA", "ALISTA"):
            stem = f"{name}_{m}x{n}x{K}_steps{args.train_steps}_seed{args.seed}"
            cached = None if args.cache is None else args.cache / f"{stem}.json"
            if cached is not None and cached.exists():
                spec = NetworkSpec.from_dict(json.loads(cached.read_text()))
            else:
                spec = family.trained(name, problem, K, args.train_steps, args.seed).spec()
                if cached is not None:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    tmp = cached.with_suffix(".tmp")
                    tmp.write_text(json.dumps(spec.to_dict()))
                    tmp.replace(cached)
            out.append((f"{name} ({m}, {n}, {K})", spec, problem))
    return out


def row(name: str, spec: NetworkSpec, args) -> list:
    neurons = sum(spec.dims[1:])
    start = time.perf_counter()
    ex = exact_bound(spec, rtol=1e-3, time_budget=args.budget, progress=False)
    seconds = time.perf_counter() - start
    lo = ex.details["lower"].value
    best = upper_bound(spec, "best", time_budget=args.global_budget)
    wit = lower_bound(spec, time_budget=args.global_budget)
    floor = agnostic_floor(spec, seed=args.seed)
    return [name, neurons, f"[{lo:.5g}, {ex.value:.5g}]", f"{ex.value / lo:.4f}" if lo > 0 else "inf",
            "yes" if ex.details["closed"] else "no", f"{seconds:.1f}", ex.details["nodes"],
            f"{ex.details.get('boxes', '—')} / {ex.details.get('forced_by_intervals', '—')}",
            f"[{wit.value:.5g}, {best.value:.5g}]", f"{floor.value:.5g}"]


def _ratio(upper: float, lower: float) -> str:
    return f"{upper / lower:.4f}" if lower > 0 else "inf"


def local_rows(name: str, spec: NetworkSpec, problem: SparseRecovery, args) -> list[list]:
    """One row per test input and radius: the exact local interval beside local_lower_bound / local_upper_bound."""
    Y, _ = problem.sample(args.inputs, seed=40_000 + args.seed)
    out = []
    for index, y in enumerate(np.asarray(Y, dtype=float)):
        for r in args.radii:
            region = Ball(y, r * float(np.linalg.norm(y)))
            start = time.perf_counter()
            ex = exact_bound(spec, region=region, rtol=1e-3, time_budget=args.local_budget, progress=False)
            seconds = time.perf_counter() - start
            lo = ex.details["lower"].value
            low = local_lower_bound(spec, region, seed=args.seed, time_budget=args.local_budget)
            up = local_upper_bound(spec, region, time_budget=args.local_budget)
            out.append([name, index, f"{r:g}", f"[{lo:.5g}, {ex.value:.5g}]", _ratio(ex.value, lo),
                        "yes" if ex.details["closed"] else "no", f"{seconds:.1f}", ex.details["nodes"],
                        f"[{low.value:.5g}, {up.value:.5g}]", _ratio(up.value, low.value)])
    return out


LOCAL_HEADER = ["network", "input", "radius (·‖y‖)", "exact local [lower, upper]", "upper/lower", "closed (rtol 1e-3)",
                "seconds", "nodes", "[local_lower_bound, local_upper_bound]", "their ratio"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["10,20,4", "8,16,6", "20,40,2", "20,40,4:ALISTA"],
                        help="m,n,K (LISTA and ALISTA) or m,n,K:NAME (one of them)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of exact_bound per net")
    parser.add_argument("--global-budget", type=float, default=45.0, help="seconds of upper_bound 'best' and lower_bound")
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=None, help="folder for the trained specs (JSON)")
    parser.add_argument("--radii", nargs="*", type=float, default=[], help="local rows: ball radii as fractions of ‖y‖")
    parser.add_argument("--inputs", type=int, default=2, help="test inputs y per network for the local rows")
    parser.add_argument("--local-budget", type=float, default=10.0,
                        help="seconds of the local exact search, and of local_lower_bound / local_upper_bound each")
    parser.add_argument("--local-only", action="store_true", help="only the local rows (no global exact search)")
    args = parser.parse_args()
    threadpool_limits(1)
    print("BLAS threads: " + ", ".join(f"{i['internal_api']} {i['num_threads']}" for i in threadpool_info()), flush=True)
    header = ["network", "neurons", "exact [lower, upper]", "upper/lower", "closed (rtol 1e-3)", "seconds", "nodes",
              "boxes / forced",
              "global [lower_bound, best]", "agnostic_floor"]
    rows, local = [], []
    for name, spec, problem in networks(args):
        if not args.local_only:
            rows.append(row(name, spec, args))
            print(" | ".join(str(x) for x in rows[-1]), flush=True)
        for line in local_rows(name, spec, problem, args) if args.radii else []:
            local.append(line)
            print(" | ".join(str(x) for x in line), flush=True)
    if rows:
        print()
        print(markdown_table(header, rows))
    if local:
        print()
        print(markdown_table(LOCAL_HEADER, local))


if __name__ == "__main__":
    main()
