"""Rigorous pre-activation bounds: unstable neurons and seconds per region, by method.

Networks: ``LISTA``, ``ALISTA`` and ``UnfoldedISTA`` at their initialisation on ``SparseRecovery(m, n, 0.1, 0.01,
seed=0)`` with ``--layers`` layers (default the report's size, 64×128 and 12 layers). Regions: ``Ball(y, r‖y‖)`` for
``--inputs`` inputs ``y`` of ``problem.sample(·, seed=1)`` and each radius of ``--radii`` (default 1 % and 5 %).

For each network, radius and method of ``preactivation_bounds`` (``interval``, ``crown``, ``alpha-crown``) one row: the
unstable neurons per input (:meth:`PreactivationBounds.unstable_counts`, summed over the layers) and the median seconds
per region (the best of ``--repeat`` runs, BLAS on one thread). Fewer unstable neurons make the local Lipschitz
certificates of ``local_upper_bound`` tighter and their SDPs smaller. ``--out STEM`` also writes the table (Markdown,
LaTeX, CSV, JSON).

    python benchmarks/bound_propagation.py [--size 64 128 12] [--radii 0.01 0.05] [--inputs 4] [--out results/bounds]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from unfoldtheory.diagnostics import markdown_table, save_table
from unfoldtheory.lipschitz.bound_propagation import METHODS, preactivation_bounds
from unfoldtheory.lipschitz.regions import Ball
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.unfold import ALISTA, LISTA, UnfoldedISTA

HEADER = ["network", "radius", "method", "unstable (per input)", "of", "seconds per region"]


def run(m: int, n: int, layers: int, radii: list[float], inputs: int, repeat: int) -> list[list[object]]:
    problem = SparseRecovery(m, n, 0.1, 0.01, seed=0)
    Y = problem.sample(inputs, seed=1)[0]
    rows: list[list[object]] = []
    with threadpool_limits(1):
        for model in (LISTA, ALISTA, UnfoldedISTA):
            spec = model(problem.A, layers, problem.lam).spec()
            total = sum(spec.dims[1:])
            for radius in radii:
                for method in METHODS:
                    counts, seconds = [], []
                    for y in Y:
                        region = Ball(y, radius * float(np.linalg.norm(y)))
                        best = np.inf
                        for _ in range(repeat):
                            start = time.perf_counter()
                            bounds = preactivation_bounds(spec, region, method=method)
                            best = min(best, time.perf_counter() - start)
                        counts.append(sum(bounds.unstable_counts(spec)))
                        seconds.append(best)
                    rows.append([model.__name__, f"{100 * radius:g} %", method, " ".join(map(str, counts)), total,
                                 float(np.median(seconds))])
                    print(markdown_table(HEADER, rows[-1:]).splitlines()[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=3, default=[64, 128, 12], metavar=("M", "N", "LAYERS"))
    parser.add_argument("--radii", type=float, nargs="+", default=[0.01, 0.05])
    parser.add_argument("--inputs", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = run(*args.size, args.radii, args.inputs, args.repeat)
    print(markdown_table(HEADER, rows))
    if args.out:
        save_table(HEADER, rows, args.out)


if __name__ == "__main__":
    main()
