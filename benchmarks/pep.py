"""PEP worst cases: ``unfoldtheory.convergence.pep_rate`` against PEPit, same problems, same solver.

Both run Clarabel through cvxpy with the same tolerances (gap and feasibility ``--tolerance``,
default 1e-8, Clarabel's own default), PEPit with verbose off. The problem is the gradient method
(``--method``, ``--metric``) on ``F_{μ,L}`` with a learned-looking schedule
``γ_k = (1 + 0.5 sin(k + 1))/L ∈ [0.5/L, 1.5/L]``; every step is below ``2/(L + μ)``, so the exact
worst case of the distance metric is known in closed form, ``Π_k (1 − γ_kμ)²``
(``unfoldtheory.convergence.schedule_rate`` squared), and the table reports both codes' relative
error against it. Our time includes building the SDP and the post-solve certificate check.

For each K (``--ks``, default 1 5 10 20 50) the table lists value ours, value PEPit, their relative
difference, each against the closed form (distance metric only), time ours, time PEPit (each the
median over repeats totalling ``--min-time`` s, at most ``--max-repeats``) and the speed ratio.
``--largest`` then searches, for each code, the largest K on the grid ``--largest-ks`` (upward,
stopping at the first failure) that finishes within ``--budget`` seconds (default 60; each attempt
runs once, in a spawned child process that is stopped at the budget); the solver status and, for
ours, whether the value was certified are printed with it.

    python benchmarks/pep.py [--ks 1 5 10 20 50] [--largest] [--json PATH]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import platform
import queue as queue_module
import time
from typing import Any

import numpy as np

from unfoldtheory.convergence import pep_rate, schedule_rate
from unfoldtheory.convergence.pep_reference import pepit_rate
from unfoldtheory.diagnostics import atomic_write_json, markdown_table

STARTUP = 30.0  # seconds allowed for a spawned child's imports and first-call set-up


def schedule(K: int, L: float) -> np.ndarray:
    """``γ_k = (1 + 0.5 sin(k + 1))/L``, k = 0..K−1."""
    return (1.0 + 0.5 * np.sin(np.arange(1, K + 1))) / L


def _momentum(K: int, args: argparse.Namespace) -> np.ndarray | None:
    if args.method != "accelerated":
        return None
    from unfoldtheory.unfold.learned_hyperparameters import fista_momentum

    return fista_momentum(K)


def _timed(run, args: argparse.Namespace) -> tuple[Any, float, int]:
    """``run()``'s result and its median time over repeats (until ``args.min_time`` s or
    ``args.max_repeats`` runs; machines shared with others make single small timings noisy)."""
    times, result = [], None
    while not times or (sum(times) < args.min_time and len(times) < args.max_repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return result, float(np.median(times)), len(times)


def ours(K: int, args: argparse.Namespace) -> dict[str, Any]:
    bound, seconds, repeats = _timed(lambda: pep_rate(schedule(K, args.L), args.mu, args.L, args.method, _momentum(K, args),
                                                      args.metric, tolerances=(args.tolerance,)), args)
    # in PEPit's normalisation: pep_rate reports the distance metric unsquared (‖x_K − x*‖/‖x_0 − x*‖)
    power = 2 if args.metric == "distance" else 1
    value = bound.details.get("squared", bound.value**power)
    return {"value": value, "seconds": seconds, "repeats": repeats, "ok": bound.certified,
            "status": bound.details["status"], "lower": bound.details["lower"] ** power}


def pepit(K: int, args: argparse.Namespace) -> dict[str, Any]:
    (value, _, status), seconds, repeats = _timed(lambda: pepit_rate(schedule(K, args.L), args.mu, args.L, args.method,
                                                                      _momentum(K, args), args.metric,
                                                                      tolerance=args.tolerance), args)
    return {"value": value, "seconds": seconds, "repeats": repeats, "ok": status == "optimal", "status": status}


def _child(fn, K, args, results) -> None:
    fn(1, argparse.Namespace(**{**vars(args), "min_time": 0.0}))  # imports and first-call set-up, not timed
    results.put(attempt(fn, K, args))


def attempt(fn, K: int, args: argparse.Namespace) -> dict[str, Any]:
    """``fn(K, args)``, or a failed record with the error (e.g. Clarabel failing inside PEPit)."""
    start = time.perf_counter()
    try:
        return fn(K, args)
    except Exception as exc:  # a solver failure is a result to report, not a crash of the benchmark
        return {"value": math.nan, "seconds": time.perf_counter() - start, "repeats": 1, "ok": False,
                "status": f"failed: {type(exc).__name__}: {exc}"[:120]}


def within_budget(fn, K: int, args: argparse.Namespace) -> dict[str, Any] | None:
    """``fn(K, args)`` in a fresh child process (spawned: forking would copy the solver's thread
    pool), or None if its own timing exceeds ``args.budget`` s; the child is stopped once the budget
    plus ``STARTUP`` s for its imports has passed."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_child, args=(fn, K, args, queue))
    child.start()
    try:
        result = queue.get(timeout=args.budget + STARTUP)
    except queue_module.Empty:
        result = None
    if child.is_alive():
        child.terminate()
    child.join()
    if result is not None and result["seconds"] > args.budget:
        return None
    return result


def closed_form(K: int, args: argparse.Namespace) -> float | None:
    steps = schedule(K, args.L)
    if args.method == "accelerated" or args.metric != "distance" or np.any(steps > 2 / (args.L + args.mu)):
        return None
    return schedule_rate(args.mu, args.L, steps).value ** 2


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b else math.inf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 5, 10, 20, 50])
    parser.add_argument("--method", default="gradient", choices=["gradient", "proximal_gradient", "accelerated"])
    parser.add_argument("--metric", default="distance", choices=["distance", "function_value", "gradient_norm"])
    parser.add_argument("--mu", type=float, default=0.1)
    parser.add_argument("--L", type=float, default=1.0)
    parser.add_argument("--tolerance", type=float, default=1e-8)
    parser.add_argument("--largest", action="store_true", help="search the largest K solved within --budget seconds")
    parser.add_argument("--largest-ks", type=int, nargs="+", default=[30, 40, 50, 55, 60, 65, 70, 75, 80, 90, 100])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--min-time", type=float, default=1.0, help="repeat a timing until this many seconds (median)")
    parser.add_argument("--max-repeats", type=int, default=15)
    parser.add_argument("--json", default=None, help="also write the results to this path")
    args = parser.parse_args()

    pep_rate([1.0], 0.1, 1.0)  # imports and first-call set-up are not timed
    pepit_rate([1.0], 0.1, 1.0)
    largest_args = argparse.Namespace(**{**vars(args), "min_time": 0.0})  # one run per attempt
    header = ["K", "value ours", "value PEPit", "rel diff", "ours vs exact", "PEPit vs exact",
              "time ours (s)", "time PEPit (s)", "speed ratio", "ours certified", "PEPit status"]
    rows, records = [], []
    for K in args.ks:
        a, b = attempt(ours, K, args), attempt(pepit, K, args)
        exact = closed_form(K, args)
        record = {"K": K, "ours": a, "pepit": b, "exact": exact}
        records.append(record)
        rows.append([K, a["value"], b["value"], rel(a["value"], b["value"]),
                     "—" if exact is None else rel(a["value"], exact), "—" if exact is None else rel(b["value"], exact),
                     a["seconds"], b["seconds"], b["seconds"] / a["seconds"], a["ok"], b["status"]])
        print(f"done K={K}", flush=True)
    print(f"\n{args.method}, metric {args.metric}, μ = {args.mu}, L = {args.L}, schedule γ_k = (1 + 0.5 sin(k+1))/L, "
          f"Clarabel tolerance {args.tolerance:g}\n", flush=True)
    print(markdown_table(header, rows, digits=4), flush=True)
    largest: dict[str, Any] = {}
    if args.largest:
        for name, fn in (("ours", ours), ("PEPit", pepit)):
            best, attempts = None, []
            for K in args.largest_ks:
                result = within_budget(fn, K, largest_args)
                attempts.append({"K": K, "result": result})
                if result is None or not math.isfinite(result["value"]):
                    print(f"{name}: K={K} " + (f"did not finish within {args.budget:g} s" if result is None
                                               else f"finished without a value ({result['status']})"), flush=True)
                    break
                best = (K, result["seconds"])
                print(f"{name}: K={K} finished in {result['seconds']:.1f} s (status {result['status']}, "
                      f"{'certified' if name == 'ours' and result['ok'] else 'not certified' if name == 'ours' else 'value'} "
                      f"{result['value']:.6g})", flush=True)
            largest[name] = {"largest_K": None if best is None else best[0], "attempts": attempts}
            print(f"largest K solved within {args.budget:g} s by {name}: "
                  f"{'none on the grid' if best is None else f'{best[0]} ({best[1]:.1f} s)'}", flush=True)
    if args.json:
        atomic_write_json(args.json, {"parameters": vars(args), "rows": records, "largest": largest,
                                      "environment": {"python": platform.python_version(), "machine": platform.machine()}})


if __name__ == "__main__":
    main()
