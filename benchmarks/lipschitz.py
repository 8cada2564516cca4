"""Lipschitz bounds of LISTA-type networks: every method of unfoldtheory.lipschitz against the anchors.

For each size (m, n, K) it builds ISTA weights (``ista_spec``: ``W = I − AᵀA/L``, ``V = Aᵀ/L``) and
reports value and time for the product, averaged, sequential and SDP bounds (the SDP is the plain
dense LipSDP-Neuron formulation in cvxpy, certified afterwards, i.e. also the "plain cvxpy" anchor),
ECLipsE-Fast from ``eclipse-nn`` on the feed-forward embedding (y carried by identity neurons,
declared with slopes [0, 1] like the soft-thresholding neurons — valid, since slope 1 lies in
[0, 1], and the way REFERENCES.md measured it; skipped if the package is not installed:
``pip install eclipse-nn``), the witness lower bound, and the ratio best-certified/lower.

    python benchmarks/lipschitz.py [--sizes 20,40,4 32,64,8 64,128,16] [--sdp-max-size 1500]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from unfoldtheory.classical import ista_spec
from unfoldtheory.diagnostics import markdown_table
from unfoldtheory.lipschitz import averaged_bound, lower_bound, product_bound, sdp_bound, sequential_bound
from unfoldtheory.problems import SparseRecovery


def eclipse_fast_embedded(A: np.ndarray, lam: float, K: int) -> tuple[float, float] | None:
    """ECLipsE-Fast on ISTA embedded as a plain feed-forward net; None if eclipse-nn is missing."""
    try:
        import torch
        from eclipse_nn import ECLipsE_Fast
    except ImportError:
        return None
    m, n = A.shape
    L = float(np.linalg.norm(A, 2) ** 2)
    W, V = np.eye(n) - A.T @ A / L, A.T / L
    first = np.vstack([V, np.eye(m)])  # (x_1, y) from y
    carry = np.block([[W, V], [np.zeros((m, n)), np.eye(m)]])
    readout = np.hstack([np.eye(n), np.zeros((n, m))])
    weights = [torch.tensor(w, dtype=torch.float64) for w in [first] + [carry] * (K - 1) + [readout]]
    start = time.perf_counter()
    value = float(ECLipsE_Fast(weights, [0.0] * K, [1.0] * K))
    return value, time.perf_counter() - start


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    try:
        bound = fn(*args, **kwargs)
    except ValueError as exc:
        return None, str(exc), time.perf_counter() - start
    return bound, None, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["20,40,4", "32,64,8", "64,128,16"])
    parser.add_argument("--sdp-max-size", type=int, default=200,
                        help="largest LipSDP matrix solved (the dense SDP at (32, 64, 8), 544 rows, ran over 3 minutes)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    header = ["(m, n, K)", "method", "value", "certified", "seconds"]
    rows = []
    for size in args.sizes:
        m, n, K = (int(v) for v in size.split(","))
        problem = SparseRecovery(m, n, 0.1, seed=args.seed)
        spec = ista_spec(problem.A, problem.lam, K)
        label = f"({m}, {n}, {K})"
        results = {}
        for name, fn, kwargs in [("product", product_bound, {}), ("averaged", averaged_bound, {}),
                                 ("sequential", sequential_bound, {}),
                                 ("sdp (LipSDP-Neuron, cvxpy/SCS)", sdp_bound, {"max_size": args.sdp_max_size})]:
            bound, error, seconds = timed(fn, spec, **kwargs)
            if bound is None:
                rows.append([label, name, "—", "—", f"skipped: {error}"])
                continue
            results[name] = bound
            rows.append([label, name, bound.value, bound.certified, seconds])
        ecl = eclipse_fast_embedded(problem.A, problem.lam, K)
        rows.append([label, "ECLipsE-Fast (eclipse-nn, embedded)", *((ecl[0], "n/a", ecl[1]) if ecl else
                                                                      ("—", "—", "eclipse-nn not installed"))])
        low, _, seconds = timed(lower_bound, spec, restarts=8, seed=args.seed)
        rows.append([label, "lower bound (witness pair)", low.value, low.certified, seconds])
        certified = [b.value for b in results.values() if b.certified]
        if certified:
            rows.append([label, "best certified / lower", min(certified) / low.value, "", ""])
        print(f"done {label}", flush=True)
    print(markdown_table(header, rows, digits=5))


if __name__ == "__main__":
    main()
