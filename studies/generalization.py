# ruff: noqa: E402  (the BLAS thread count must be set before numpy is imported)
"""Generalization: the measured gap and every bound, as the training set and the depth grow.

For ALISTA, UnfoldedISTA and the matrix-weight models LISTA, LISTA-CP, HybridISTA and LearnedUpdate on sparse
recovery (default m = 64, n = 128, 10 % nonzeros, noiseless) every cell trains one model on a fixed training set and
computes

* the measured gap (``empirical_gap``: test − train, with a 95 % t interval) and the test loss;
* the covering-number bound (``covering_bound``; statement for data inside the training radii);
* the adapted spectral covering bound (Bartlett–Foster–Telgarsky), the adapted spectral PAC-Bayes bound
  (Neyshabur et al.) and the ℓ∞-peeling bound (Shultzman et al. style) for the loss clipped at b;
* the certified PAC-Bayes bound with an optimised Gaussian posterior and the data-free prior (the Gibbs
  predictor), and, for every model, the certified split-prior bound of
  :func:`unfoldtheory.generalization.split_prior.split_prior_bound`: the package splits the sample by a recorded
  seed (``--split-fraction`` to the prior, default a half), trains a prior net on it and bounds the best of its
  candidates (the prior net, a Gibbs predictor around it or around the model) on the rest, together with the
  unclipped bound E[ℓ·1_D] of the prior net on the data domain D (Ambroladze et al. 2007, Pérez-Ortiz et al. 2021,
  Langford 2005). Each row names the loss and the predictor it covers.

The clipping level b is the smallest power of two above the largest training loss, chosen from the
grid ``2^j``, ``|j| ≤ 30``: every bound pays the union bound over that grid (δ/61). The bounds on the
expected loss are the training loss plus the gap bound; for the clipped bounds they bound
``E min(ℓ, b)`` (``tail`` = test mean − clipped test mean estimates the part left out). A bound is
marked *vacuous* when it reaches b (the range of the clipped loss; for the covering bound its own range).

Cells (one per model, training-set size and depth, plus the headline cell) are stored in OUT/cells as
they finish, so a killed run, started again with the same options, runs only the missing ones.
Outputs (OUT = studies/out/generalization):

    OUT/table.{md,tex,csv,json}        bound / measured gap per model, method, size and depth
    OUT/headline.{md,tex,csv,json}     every model at the headline size: losses and bounds
    OUT/first_non_vacuous.{md,tex,csv,json}  per model and method, the fewest samples of the sweep at which the
                                       bound is non-vacuous (certified, and any)
    OUT/gap_vs_samples_MODEL.{png,pdf} the gap and every bound against the number of samples (log-log)
    OUT/gap_vs_depth_MODEL.{png,pdf}   the same against depth (log y)

``--quick`` runs a small grid; ``--workers`` sets the process pool (default 1). Run
``python studies/generalization.py --help`` for the options.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unfoldtheory import unfold
from unfoldtheory.diagnostics import atomic_write_json, markdown_table, new_figure, save_figure, save_table
from unfoldtheory.generalization.suite import METHODS, bound_rows, generalization_bounds
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.sweep import ResultStore, executor_for, run_sweep
from unfoldtheory.train import RELATIVE_LEARNING_RATES, fit

MODELS = ("ALISTA", "UnfoldedISTA", "LISTA", "LISTACP", "HybridISTA", "LearnedUpdate")
LEARNING_RATES = RELATIVE_LEARNING_RATES
TRAIN_SEED, TEST_SEED = 1, 2
QUICK = {"samples": [100, 1000], "depths": [2, 6], "depth_samples": 300, "headline_samples": 1000, "steps": 150,
         "test_samples": 4000, "m": 32, "n": 64, "layers": 6}


# ---------------------------------------------------------------------------- one cell
def _train(name: str, problem: SparseRecovery, data: tuple[np.ndarray, np.ndarray], layers: int, steps: int,
           seed: int) -> torch.nn.Module:
    model = getattr(unfold, name)(problem.A, layers, problem.lam)
    fit(model, problem, steps=steps, lr=LEARNING_RATES[name], data=data, seed=seed, keep_best=False, progress=False)
    return model


def generalization_cell(model: str, samples: int, depth: int, *, seed: int = 0, steps: int = 2000, m: int = 64,
                        n: int = 128, sparsity: float = 0.1, test_samples: int = 20000, delta: float = 0.05,
                        split: bool = True, split_fraction: float = 0.5) -> dict[str, Any]:
    """Train ``model`` (``depth`` layers) on ``samples`` samples and compute the gap and every bound
    (:func:`unfoldtheory.generalization.suite.generalization_bounds`)."""
    torch.set_num_threads(1)
    problem = SparseRecovery(m, n, sparsity, seed=seed)
    train = problem.sample(samples, seed=TRAIN_SEED)
    test = problem.sample(test_samples, seed=TEST_SEED)
    start = time.perf_counter()
    net = _train(model, problem, train, depth, steps, seed)
    train_seconds = time.perf_counter() - start
    retrain = (lambda data: _train(model, problem, data, depth, steps, seed)) if split else None
    out = generalization_bounds(net, train, test, delta=delta, retrain=retrain, split_fraction=split_fraction, seed=seed)
    out["train_seconds"] = train_seconds
    return out


# ---------------------------------------------------------------------------- tables and figures
TABLE_HEADER = ["model", "samples", "depth", "method", "loss covered", "predictor", "bound on gap", "measured gap",
                "bound / gap", "bound on E loss", "its test loss", "held-out covered loss", "bound / its test",
                "bound / model's test", "vacuous", "below test loss", "certified"]
HEADLINE_HEADER = ["model", "train loss", "model's test loss", "method", "loss covered", "predictor", "held-out covered loss",
                   "bound on E loss", "bound / its test", "bound / model's test", "vacuous", "certified"]
FIRST_HEADER = ["model", "method", "fewest samples, certified non-vacuous", "fewest samples, non-vacuous",
                "samples in the sweep"]


def table_rows(records: list[dict[str, Any]]) -> list[list[Any]]:
    """Rows of :data:`TABLE_HEADER`. ``below test loss`` marks a clipped bound under the (unclipped) test
    loss: the part of the loss above b, which the statement leaves out, is then visibly not small."""
    rows = []
    for rec in sorted(records, key=lambda r: (r["cell"]["model"], r["cell"]["depth"], r["cell"]["samples"])):
        c, res = rec["cell"], rec["result"]
        for method, r in bound_rows(res):
            rows.append([c["model"], c["samples"], c["depth"], method, r["covers"], r["predictor"], r["gap_bound"], r["measured"],
                         r["ratio_gap"], r["expected"], r["test"], r["clipped"], r["ratio_test"], r["ratio_model_test"],
                         r["vacuous"], r["below_test"], r["certified"]])
    return rows


def headline_rows(records: list[dict[str, Any]], samples: int, depth: int) -> list[list[Any]]:
    rows = []
    for rec in records:
        c, res = rec["cell"], rec["result"]
        if c["samples"] != samples or c["depth"] != depth:
            continue
        for method, r in bound_rows(res):
            rows.append([c["model"], res["train_loss"], res["test_loss"], method, r["covers"], r["predictor"], r["clipped"],
                         r["expected"], r["ratio_test"], r["ratio_model_test"], r["vacuous"], r["certified"]])
    return rows


def first_non_vacuous_rows(records: list[dict[str, Any]], depth: int) -> list[list[Any]]:
    """Per model and method, the fewest training samples of the sample sweep (at ``depth``) at which the bound is
    certified and non-vacuous, and at which it is non-vacuous at all ("—": at no size of the sweep)."""
    rows = []
    for model in sorted({r["cell"]["model"] for r in records}):
        chosen = sorted((r for r in records if r["cell"]["model"] == model and r["cell"]["depth"] == depth),
                        key=lambda r: r["cell"]["samples"])
        sizes = [r["cell"]["samples"] for r in chosen]
        for method in METHODS:
            found = [(r["cell"]["samples"], row) for r in chosen if (row := dict(bound_rows(r["result"])).get(method))]
            if not found:
                continue
            certified = next((n for n, row in found if row["certified"] and not row["vacuous"]), "—")
            anyhow = next((n for n, row in found if not row["vacuous"]), "—")
            rows.append([model, method, certified, anyhow, ", ".join(str(n) for n in sizes)])
    return rows


def _curves(records: list[dict[str, Any]], model: str, axis: str,
            fixed: dict[str, int]) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """x values and, per curve, (values, vacuous flags)."""
    chosen = sorted((r for r in records if r["cell"]["model"] == model
                     and all(r["cell"][k] == v for k, v in fixed.items())), key=lambda r: r["cell"][axis])
    xs = np.array([r["cell"][axis] for r in chosen], dtype=float)
    gaps = np.array([r["result"]["gap"] for r in chosen], dtype=float)
    curves = {"measured gap": (gaps, np.zeros(len(chosen), dtype=bool))}
    for method in METHODS:
        got = [r["result"]["bounds"].get(method, {}) for r in chosen]
        curves[method] = (np.array([b.get("gap_bound", np.nan) for b in got], dtype=float),
                          np.array([bool(b.get("vacuous", False)) for b in got]))
    return xs, curves


def figure(records: list[dict[str, Any]], model: str, axis: str, fixed: dict[str, int], stem: Path) -> list[Path]:
    """The measured gap and every bound on the gap against ``axis`` (log axes); vacuous points hollow,
    gaps ≤ 0 (not drawable on a log axis) counted in the legend."""
    xs, curves = _curves(records, model, axis, fixed)
    fig, ax = new_figure(width=6.4, height=4.2)
    for i, (label, (ys, vacuous)) in enumerate(curves.items()):
        y = np.where(ys > 0, ys, np.nan)
        if label == "measured gap":
            hidden = int(np.sum(ys <= 0))
            ax.plot(xs, y, marker="o", ms=4, color="black", lw=2,
                    label=label + (f" ({hidden} value(s) ≤ 0 not shown)" if hidden else ""))
            continue
        ax.plot(xs, y, marker="o", ms=4, color=f"C{i}", label=label)
        ax.plot(xs, np.where(vacuous, y, np.nan), linestyle="none", marker="o", ms=4, color=f"C{i}", markerfacecolor="white")
    ax.plot([], [], linestyle="none", marker="o", ms=4, color="0.3", markerfacecolor="white", label="hollow: vacuous")
    ax.set_yscale("log")
    if axis == "samples":
        ax.set_xscale("log")
    ax.set_xlabel("training samples" if axis == "samples" else "depth (layers)")
    ax.set_ylabel("gap (expected − training loss)")
    ax.set_title(f"{model}: measured gap and bounds ({', '.join(f'{k}={v}' for k, v in fixed.items())})")
    ax.legend(fontsize=7)
    fig.text(0.01, 0.005, "all but the covering bound are for the loss clipped at b; the measured gap is unclipped "
             "(a model that blows up on rare inputs can exceed them)", fontsize=6, color="0.3")
    return save_figure(fig, stem)


# ---------------------------------------------------------------------------- main
def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--quick", action="store_true", help=f"a small run (defaults {QUICK}); explicit options still apply")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--samples", type=int, nargs="+", default=[100, 300, 1000, 3000, 10000],
                   help="training-set sizes of the sample sweep (at --layers)")
    p.add_argument("--depths", type=int, nargs="+", default=[2, 4, 8, 12, 16], help="depths of the depth sweep")
    p.add_argument("--depth-samples", type=int, default=1000, help="training-set size of the depth sweep")
    p.add_argument("--headline-samples", type=int, default=5000, help="training-set size of the headline cell")
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--steps", type=int, default=2000, help="optimiser steps per model (batch 64)")
    p.add_argument("--test-samples", type=int, default=20000)
    p.add_argument("--m", type=int, default=64)
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--sparsity", type=float, default=0.1)
    p.add_argument("--delta", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-split", action="store_true", help="skip the split-prior PAC-Bayes variant")
    p.add_argument("--split-fraction", type=float, default=0.5, help="share of the sample that trains the split prior")
    p.add_argument("--workers", type=int, default=1, help="processes (1: serial)")
    p.add_argument("--out", type=Path, default=Path("studies/out/generalization"))
    p.add_argument("--quiet", action="store_true")
    if p.parse_args(argv).quick:
        p.set_defaults(**QUICK)
    return p.parse_args(argv)


def cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    fixed = {"seed": args.seed, "steps": args.steps, "m": args.m, "n": args.n, "sparsity": args.sparsity,
             "test_samples": args.test_samples, "delta": args.delta, "split": not args.no_split,
             "split_fraction": args.split_fraction}
    wanted = {(s, args.layers) for s in args.samples} | {(args.depth_samples, d) for d in args.depths}
    wanted.add((args.headline_samples, args.layers))
    return [{"model": model, "samples": s, "depth": d, **fixed} for model in args.models for s, d in sorted(wanted)]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(1)
    store = ResultStore(args.out / "cells")
    grid = cells(args)
    scheduler = "serial" if args.workers <= 1 else "processes"
    with executor_for(scheduler, args.workers if args.workers > 1 else None) as executor:
        records = run_sweep(generalization_cell, grid, store, executor, progress=False if args.quiet else None)
    rows = table_rows(records)
    save_table(TABLE_HEADER, rows, args.out / "table")
    headline = headline_rows(records, args.headline_samples, args.layers)
    save_table(HEADLINE_HEADER, headline, args.out / "headline")
    save_table(FIRST_HEADER, first_non_vacuous_rows(records, args.layers), args.out / "first_non_vacuous")
    for model in args.models:
        figure(records, model, "samples", {"depth": args.layers}, args.out / f"gap_vs_samples_{model}")
        figure(records, model, "depth", {"samples": args.depth_samples}, args.out / f"gap_vs_depth_{model}")
    atomic_write_json(args.out / "config.json", {**vars(args), "out": str(args.out), "cells": len(grid)})
    if not args.quiet:
        print(markdown_table(HEADLINE_HEADER, headline, digits=4))
    return 0


if __name__ == "__main__":
    sys.exit(main())
