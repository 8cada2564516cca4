"""Test NMSE against depth: a resumable sweep over depth × sparsity × seed, locally or on a Dask cluster.

Every cell trains one unfolded model (``unfoldtheory.sweep.cells.train_cell``: default ALISTA,
m = 32, n = 64, a fixed training set) and measures its test NMSE beside ISTA's at equal depth.
Finished cells are stored one JSON file each in OUT/cells, so a killed run, started again with
the same options, runs only the missing cells. Outputs:

    OUT/table.{md,tex,csv,json}     mean ± std (over seeds) of the test NMSE per sparsity and depth
    OUT/nmse_vs_depth.{png,pdf}     the same as a figure, ISTA dashed

Locally the cells run in a process pool (``--workers``); on a cluster start a Dask scheduler and
workers (``dask scheduler``, ``dask worker tcp://HOST:8786 --nthreads 1``) and pass
``--scheduler tcp://HOST:8786``. ``--quick`` runs a small grid in seconds.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from unfoldtheory.diagnostics import atomic_write_json, markdown_table, new_figure, save_figure, save_table
from unfoldtheory.sweep import Grid, ResultStore, executor_for, run_sweep
from unfoldtheory.sweep.cells import SPARSE_MODELS, train_cell

HEADER = ["sparsity", "depth", "seeds", "test NMSE mean (dB)", "test NMSE std (dB)", "ISTA NMSE mean (dB)",
          "gap test − train mean (dB)", "training time mean (s)"]
QUICK = {"depths": [2, 4, 8], "sparsities": [0.1, 0.2], "seeds": [0, 1], "steps": 100, "m": 16, "n": 32, "train_samples": 200}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scheduler", default=None,
                   help="'processes' (default), 'serial', 'local-dask', or a Dask scheduler address tcp://HOST:PORT")
    p.add_argument("--workers", type=int, default=None, help="local processes or LocalCluster workers (default: CPUs)")
    p.add_argument("--out", type=Path, default=Path("studies/out/sweep_depth"))
    p.add_argument("--quick", action="store_true", help=f"a small grid (defaults {QUICK}); options given explicitly still apply")
    p.add_argument("--depths", type=int, nargs="+", default=[2, 4, 8, 12, 16])
    p.add_argument("--sparsities", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--model", default="ALISTA", choices=SPARSE_MODELS)
    p.add_argument("--m", type=int, default=32)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--train-samples", type=int, default=1000, help="fixed training set size (0: fresh samples every step)")
    p.add_argument("--steps", type=int, default=300, help="optimiser steps per cell")
    p.add_argument("--quiet", action="store_true")
    if p.parse_args(argv).quick:
        p.set_defaults(**QUICK)  # explicit options still win
    return p.parse_args(argv)


def summarize(records: list[dict[str, Any]]) -> list[list[Any]]:
    """Rows of :data:`HEADER`: the cells grouped by (sparsity, depth), statistics over seeds."""
    groups: dict[tuple[float, int], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[record["cell"]["sparsity"], record["cell"]["depth"]].append(record["result"])

    def stat(results: list[dict[str, Any]], field: str, how: Any = np.mean) -> float:
        values = [float(r[field]) for r in results if r[field] is not None]
        return float(how(values)) if values else float("nan")

    return [[sparsity, depth, len(rs), stat(rs, "test_nmse_db"), stat(rs, "test_nmse_db", np.std), stat(rs, "ista_nmse_db"),
             stat(rs, "gap_db"), stat(rs, "train_seconds")] for (sparsity, depth), rs in sorted(groups.items())]


def figure(rows: list[list[Any]], stem: Path, model: str, title: str) -> list[Path]:
    """Mean test NMSE ± one standard deviation against depth, one colour per sparsity; ISTA dashed."""
    fig, ax = new_figure(width=6.0, height=4.0)
    for i, sparsity in enumerate(sorted({r[0] for r in rows})):
        depth, mean, std, ista = (np.array(col, dtype=float) for col in zip(*[(r[1], r[3], r[4], r[5]) for r in rows
                                                                                if r[0] == sparsity], strict=True))
        ax.plot(depth, mean, marker="o", ms=3, color=f"C{i}", label=f"{model}, {sparsity:.0%} nonzeros")
        ax.fill_between(depth, mean - std, mean + std, color=f"C{i}", alpha=0.2)
        ax.plot(depth, ista, "--", color=f"C{i}", label=f"ISTA, {sparsity:.0%} nonzeros")
    ax.set_xlabel("depth (layers / iterations)")
    ax.set_ylabel("test NMSE (dB)")
    ax.set_title(title)
    ax.legend(ncol=2)
    return save_figure(fig, stem)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    grid = Grid(depth=args.depths, sparsity=args.sparsities, seed=args.seeds, model=args.model, m=args.m, n=args.n,
                train_samples=args.train_samples or None, steps=args.steps)
    with executor_for(args.scheduler, args.workers) as executor:
        records = run_sweep(train_cell, grid, ResultStore(args.out / "cells"), executor,
                            progress=False if args.quiet else None)
    rows = summarize(records)
    save_table(HEADER, rows, args.out / "table")
    title = f"{args.model} against ISTA, m={args.m}, n={args.n}, {len(args.seeds)} seeds"
    figure(rows, args.out / "nmse_vs_depth", args.model, title)
    atomic_write_json(args.out / "config.json", {**vars(args), "out": str(args.out), "cells": len(grid)})
    print(markdown_table(HEADER, rows, digits=4))
    return 0


if __name__ == "__main__":
    sys.exit(main())
