"""The four design paradigms on sparse recovery, against ISTA and FISTA at equal depth.

Trains every unfolded sparse-recovery model on the default problem (m = 64, n = 128, 10 %
nonzeros, 12 layers) and writes, per method: NMSE (dB) after each layer on a held-out test set,
the number of learned parameters, the training time, the inference FLOPs per sample and the wall
time per sample. Outputs (written atomically, one JSON per finished model so a killed run loses
nothing and ``--resume`` skips finished models):

    OUT/table.{md,tex,csv,json}   summary table       OUT/nmse_per_layer.{md,csv,...}
    OUT/nmse_vs_layer.{png,pdf}   NMSE against layer  OUT/models/NAME.pt   trained checkpoints

Run ``python studies/paradigms_sparse.py --help`` for the options; ``--device cuda`` for GPUs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from unfoldtheory import unfold
from unfoldtheory.comparison import (
    TABLE_HEADER,
    MethodResult,
    classical_results,
    nmse_figure,
    table_rows,
    train_and_evaluate,
)
from unfoldtheory.diagnostics import atomic_write_json, markdown_table, save_table
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.train import RELATIVE_LEARNING_RATES

#: Relative learning rate per model (unfoldtheory.train.RELATIVE_LEARNING_RATES).
LEARNING_RATES = RELATIVE_LEARNING_RATES
MODELS = tuple(LEARNING_RATES)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--m", type=int, default=64)
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--sparsity", type=float, default=0.1)
    p.add_argument("--noise-std", type=float, default=0.0)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps per model (batch 64, fresh samples)")
    p.add_argument("--scheme", default="end_to_end", choices=["end_to_end", "per_iteration", "unsupervised", "layerwise"])
    p.add_argument("--test", type=int, default=2000, help="test samples")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: these small models gain nothing from more, and threads contend)")
    p.add_argument("--float64", action="store_true", help="train in float64 (default float32)")
    p.add_argument("--out", type=Path, default=Path("studies/out/paradigms_sparse"))
    p.add_argument("--resume", action="store_true", help="skip models whose results are already in OUT/results")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    problem = SparseRecovery(args.m, args.n, args.sparsity, args.noise_std, seed=args.seed)
    Y, X = problem.sample(args.test, seed=10_000 + args.seed)
    results: list[MethodResult] = classical_results(problem, Y, X, args.layers)
    (args.out / "results").mkdir(parents=True, exist_ok=True)
    for name in args.models:
        cached = args.out / "results" / f"{name}.json"
        if args.resume and cached.exists():
            results.append(MethodResult(**json.loads(cached.read_text())))
            continue
        model = getattr(unfold, name)(problem.A, args.layers, problem.lam)
        if not args.float64:
            model = model.float()
        result, _ = train_and_evaluate(name, model, problem, (Y, X), scheme=args.scheme, steps=args.steps,
                                       lr=LEARNING_RATES[name], seed=args.seed, device=args.device,
                                       progress=False if args.quiet else None)
        unfold.save(model, args.out / "models" / f"{name}.pt")
        atomic_write_json(cached, result)
        results.append(result)
        print(f"{name:14s} NMSE {result.final_nmse_db:7.2f} dB  ({result.train_seconds:.0f} s)", flush=True)

    rows = table_rows(results)
    save_table(TABLE_HEADER, rows, args.out / "table")
    layer_header = ["method"] + [f"k={k}" for k in range(1, args.layers + 1)]
    save_table(layer_header, [[r.name, *r.nmse_db] for r in results], args.out / "nmse_per_layer", digits=3)
    nmse_figure(results, args.out / "nmse_vs_layer",
                f"sparse recovery, m={args.m}, n={args.n}, {args.sparsity:.0%} nonzeros, {args.layers} layers")
    atomic_write_json(args.out / "config.json", {**vars(args), "out": str(args.out), "torch": torch.__version__})
    print(markdown_table(TABLE_HEADER, rows, digits=4))
    return 0


if __name__ == "__main__":
    sys.exit(main())
