"""The search budget of ``lipschitz.lower_bound`` against the exact SDP (``upper_bound``) on LISTA-type networks.

For each size (m, n, K) and each problem seed it builds two networks: ISTA weights (``ista_spec``: ``W = I − AᵀA/L``,
``V = Aᵀ/L``, ``θ = λ/L``) and a LISTA-like untied network (every layer's ``W_k``, ``V_k`` the ISTA ones perturbed
by 5 % and 10 % Gaussian noise, per-neuron thresholds ``θ_k`` drawn in [0.5, 1.5]·λ/L, built with
``spec.unrolled``). On each it times ``upper_bound`` (the default ``best``, which is the LipSDP-Neuron SDP at these
sizes) and ``lower_bound`` at several restart counts and region-ascent patiences (``patience=None``: the region
ascent climbs from every restart in passes of effort 1, 4, 16 until its 10 s cap, the default before issue 14). The
last configuration, 64 restarts without patience, is the many-restart reference. ``value / best`` divides by the
largest certified lower bound any configuration found on that network; ``× SDP`` is the time over the SDP's.
Every value is a certified lower bound, so a larger one is simply better. BLAS runs on one thread.

    python benchmarks/lower_bound_budget.py [--sizes 10,20,4 20,40,6 32,64,8] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from unfoldtheory.classical import ista_spec
from unfoldtheory.diagnostics import markdown_table
from unfoldtheory.lipschitz import lower_bound, upper_bound
from unfoldtheory.lipschitz.lower import PATIENCE
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.spec import NetworkSpec, unrolled

# (restarts, patience): the default first, the pre-issue-14 default and the many-restart reference last
CONFIGS = tuple(dict.fromkeys(((16, PATIENCE), (4, 1), (8, 1), (32, 1), (16, 2), (16, 4), (16, None), (64, None))))


def lista_like(problem: SparseRecovery, K: int, seed: int) -> NetworkSpec:
    """Untied LISTA-type weights near ISTA's: perturbed ``W_k``, ``V_k`` and per-neuron thresholds."""
    A, (m, n) = problem.A, problem.A.shape
    L = float(np.linalg.norm(A, 2) ** 2)
    rng = np.random.default_rng(seed + 100)
    W = [None] + [np.eye(n) - A.T @ A / L + 0.05 * rng.standard_normal((n, n)) / np.sqrt(n) for _ in range(K - 1)]
    V = [A.T / L * (1 + 0.1 * rng.standard_normal((n, m))) for _ in range(K)]
    return unrolled(W, V, [problem.lam / L * rng.uniform(0.5, 1.5, n) for _ in range(K)], name=f"LISTA-like({K})")


def networks(m: int, n: int, K: int, seed: int) -> list[tuple[str, NetworkSpec]]:
    problem = SparseRecovery(m, n, 0.1, seed=seed)
    return [("ISTA", ista_spec(problem.A, problem.lam, K)), ("LISTA-like", lista_like(problem, K, seed))]


def measure(spec: NetworkSpec) -> tuple[float, list[tuple[int, int | None, float, float, bool]]]:
    start = time.perf_counter()
    upper = upper_bound(spec)
    sdp_seconds = time.perf_counter() - start
    if not upper.certified:
        print(f"  upper_bound not certified ({upper.reason}); its time is still the anchor")
    runs = []
    for restarts, patience in CONFIGS:
        start = time.perf_counter()
        low = lower_bound(spec, restarts=restarts, patience=patience)
        runs.append((restarts, patience, time.perf_counter() - start, low.value, low.certified))
    return sdp_seconds, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["10,20,4", "20,40,6", "32,64,8"], help="m,n,K ...")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="problem seeds")
    args = parser.parse_args()
    header = ("network", "m,n,K", "seed", "restarts", "patience", "seconds", "value", "value / best", "× SDP")
    rows, summary = [], {}
    with threadpool_limits(1, user_api="blas"):
        for size in args.sizes:
            m, n, K = (int(v) for v in size.split(","))
            for seed in args.seeds:
                for name, spec in networks(m, n, K, seed):
                    sdp_seconds, runs = measure(spec)
                    best = max(r[3] for r in runs)
                    print(f"{name} ({m},{n},{K}) seed {seed}: SDP {sdp_seconds:.2f} s, best lower {best:.6g}", flush=True)
                    for restarts, patience, seconds, value, certified in runs:
                        rows.append((name, size, seed, restarts, "none" if patience is None else patience, seconds,
                                     f"{value:.6g}" + ("" if certified else " †"), value / best, seconds / sdp_seconds))
                        summary.setdefault((restarts, patience), []).append((value / best, seconds / sdp_seconds))
    print()
    print(markdown_table(header, rows, digits=3))
    print("† not certified\n")
    print(markdown_table(("restarts", "patience", "worst value / best", "mean value / best", "median × SDP", "worst × SDP"),
                         [(r, "none" if p is None else p, min(v for v, _ in s), float(np.mean([v for v, _ in s])),
                           float(np.median([t for _, t in s])), max(t for _, t in s)) for (r, p), s in summary.items()],
                         digits=3))


if __name__ == "__main__":
    main()
