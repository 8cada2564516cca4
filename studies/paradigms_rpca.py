"""Robust PCA: learned RPCA (LRPCA) against the classical scaled-gradient iteration and against PCP.

On ``Y = L + S`` (d × d, rank r, a fraction α of outliers; :class:`~unfoldtheory.problems.RobustPCA`)
this trains :class:`~unfoldtheory.unfold.LearnedRPCA` with :func:`unfoldtheory.train.fit` (layer-wise by
default, as Cai, Liu & Yin 2021 do) and compares, on a held-out test set:

* LearnedRPCA (2K + 1 learned scalars);
* the classical iteration at the same depth: the same network at its classical initialisation
  (ζ_k = ζ_0·0.7^k, η = 0.5; identical to :func:`~unfoldtheory.unfold.learned_rpca.scaled_gradient_rpca`);
* PCP (:func:`~unfoldtheory.problems.robust_pca.pcp`, cvxpy/Clarabel, with its recomputed duality gap)
  on the first ``--pcp`` test instances only: a d = 40 PCP is an SDP of size 80 that takes ~15 s.

The error is the relative error ``‖L̂ − L‖_F/‖L‖_F`` (mean over instances) and the NMSE
``10 log10(Σ‖L̂ − L‖²_F / Σ‖L‖²_F)`` in dB. Outputs (atomic writes):

    OUT/table.{md,tex,csv,json}          summary: error, parameters, training time, FLOPs, wall time
    OUT/error_per_layer.{md,tex,csv,json} relative error after each layer
    OUT/error_vs_layer.{png,pdf}         the same as a figure, PCP as a horizontal line
    OUT/results/METHOD.json              per-method details (name made file-safe), written as each finishes
    OUT/models/LearnedRPCA.pt            the trained checkpoint      OUT/config.json

``python studies/paradigms_rpca.py`` runs in about a minute or two on 2 idle CPU cores (training ~15 s,
PCP ~15 s per instance); ``--help`` for options.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unfoldtheory import unfold
from unfoldtheory.diagnostics import atomic_write_json, markdown_table, new_figure, save_figure, save_table
from unfoldtheory.metrics import nmse_db
from unfoldtheory.problems import RobustPCA
from unfoldtheory.problems.robust_pca import pcp
from unfoldtheory.train import SCHEMES, fit
from unfoldtheory.unfold import LearnedRPCA


@dataclass
class Result:
    """One method's errors and costs on the test set (or its first ``instances`` matrices for PCP)."""

    method: str
    instances: int
    rel_error: list[float]  # mean relative error after each layer (one entry for PCP)
    nmse_db: list[float]
    parameters: int
    train_seconds: float
    flops_per_sample: int | None
    seconds_per_sample: float
    details: dict[str, Any] = field(default_factory=dict)
    layered: bool = True  # False for PCP (a solver run to optimality, no layers)


def relative_errors(Lhat: np.ndarray, L: np.ndarray) -> np.ndarray:
    """``‖L̂ − L‖_F/‖L‖_F`` per instance."""
    return np.linalg.norm(Lhat - L, axis=(-2, -1)) / np.linalg.norm(L, axis=(-2, -1))


@torch.no_grad()
def evaluate(name: str, model: LearnedRPCA, Y: np.ndarray, L: np.ndarray, parameters: int, train_seconds: float,
             details: dict[str, Any]) -> tuple[Result, np.ndarray]:
    """Per-layer errors of ``model`` on ``(Y, L)``, its wall time per sample (the fastest of three timed runs
    after a warm-up, so that load from other processes inflates it least), and its final estimates."""
    ref = next(model.parameters())
    Yt = torch.as_tensor(Y, dtype=ref.dtype, device=ref.device)
    its = model(Yt, return_iterates=True)  # warm-up; also the evaluated output
    times = []
    for _ in range(3):
        if Yt.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(Yt)
        if Yt.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    per_sample = min(times) / Y.shape[0]
    its = [x.double().cpu().numpy() for x in its]
    result = Result(name, Y.shape[0], [float(relative_errors(x, L).mean()) for x in its], [nmse_db(x, L) for x in its],
                    parameters, train_seconds, model.flops_per_sample(), per_sample, details)
    return result, its[-1]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d", type=int, default=40, help="matrix size d × d")
    p.add_argument("--rank", type=int, default=3)
    p.add_argument("--outlier-fraction", type=float, default=0.1)
    p.add_argument("--layers", type=int, default=10)
    p.add_argument("--steps", type=int, default=600, help="optimiser steps (fresh samples each step)")
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-2, help="relative learning rate (see unfoldtheory.train)")
    p.add_argument("--scheme", default="layerwise", choices=SCHEMES)
    p.add_argument("--test", type=int, default=50, help="test instances")
    p.add_argument("--pcp", type=int, default=3, help="test instances also solved by PCP (slow: ~15 s each at d = 40)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: small batched solves gain nothing from more, and on a shared "
                        "machine OpenMP waits inflate the timings)")
    p.add_argument("--out", type=Path, default=Path("studies/out/paradigms_rpca"))
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda was requested but torch sees no CUDA device")
    if args.threads < 1:
        p.error("--threads must be at least 1")
    if not 0 <= args.pcp <= args.test:
        p.error(f"--pcp must be between 0 and --test ({args.test})")
    return args


def error_figure(results: list[Result], stem: Path, title: str) -> list[Path]:
    """Relative error against layer (log scale); PCP, which has no layers, as a horizontal line."""
    fig, ax = new_figure(width=6.0, height=4.0)
    for i, r in enumerate(results):
        if r.layered:
            style = "--" if r.parameters == 0 else "-"
            ax.semilogy(np.arange(1, len(r.rel_error) + 1), r.rel_error, style, marker="o", ms=3, color=f"C{i}",
                        label=r.method)
        else:
            ax.axhline(r.rel_error[0], ls=":", color=f"C{i}", label=f"{r.method} ({r.instances} instances)")
    ax.set_xlabel("layer / iteration k")
    ax.set_ylabel(r"$\|\hat L - L\|_F / \|L\|_F$ (mean)")
    ax.set_title(title)
    ax.legend(loc="upper right")
    return save_figure(fig, stem)


TABLE_HEADER = ["method", "test instances", "relative error", "NMSE (dB)", "learned parameters", "training time (s)",
                "FLOPs / sample", "wall time / sample (ms)"]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    problem = RobustPCA(args.d, args.d, args.rank, args.outlier_fraction, seed=args.seed)
    Y, L = problem.sample(args.test, seed=10_000 + args.seed)
    progress = False if args.quiet else None
    results_dir = args.out / "results"
    results: list[Result] = []
    finals: dict[str, np.ndarray] = {}

    def record(result: Result) -> None:
        slug = re.sub(r"[^A-Za-z0-9]+", "_", result.method).strip("_")  # e.g. PCP_cvxpy_Clarabel
        atomic_write_json(results_dir / f"{slug}.json", asdict(result))
        results.append(result)
        print(f"{result.method:22s} relative error {result.rel_error[-1]:.3e}  NMSE {result.nmse_db[-1]:7.2f} dB",
              flush=True)

    classical = LearnedRPCA(args.rank, args.layers, args.d, args.d).to(args.device)
    result, finals["ScaledGD (classical)"] = evaluate(
        "ScaledGD (classical)", classical, Y, L, 0, 0.0,
        {"zeta0": classical.zeta0, "decay": classical.decay, "eta": classical.eta0, "hand-set scalars": 3})
    record(result)

    model = LearnedRPCA(args.rank, args.layers, args.d, args.d)
    history = fit(model, problem, args.scheme, args.steps, args.seed, batch_size=args.train_batch, lr=args.lr,
                  device=args.device, progress=progress)
    unfold.save(model, args.out / "models" / "LearnedRPCA.pt")
    result, finals["LearnedRPCA"] = evaluate(
        "LearnedRPCA", model, Y, L, model.num_parameters(), history.seconds,
        {"scheme": args.scheme, "steps": args.steps, "batch": args.train_batch, "lr": args.lr,
         "thresholds": [t.item() for t in model.threshold], "step_sizes": [s.item() for s in model.step],
         "final_train_loss": history.loss[-1]})
    record(result)

    if args.pcp:
        n = args.pcp
        sol = pcp(Y[:n], problem.lam, solver="CLARABEL", progress=progress)
        subset = {name: float(relative_errors(final[:n], L[:n]).mean()) for name, final in finals.items()}
        record(Result("PCP (cvxpy/Clarabel)", n, [float(relative_errors(sol.L, L[:n]).mean())], [nmse_db(sol.L, L[:n])],
                      0, 0.0, None, sol.seconds / n,
                      {"status": sol.status, "duality_gap": sol.duality_gap, "relative_gap": sol.relative_gap,
                       "lam": sol.lam, "other methods on the same instances": subset}, layered=False))

    rows = [[r.method, r.instances, r.rel_error[-1], r.nmse_db[-1], r.parameters, r.train_seconds,
             r.flops_per_sample if r.flops_per_sample is not None else "n/a (interior-point SDP)",
             1e3 * r.seconds_per_sample] for r in results]
    save_table(TABLE_HEADER, rows, args.out / "table")
    layered = [r for r in results if r.layered]
    save_table(["method"] + [f"k={k}" for k in range(1, args.layers + 1)], [[r.method, *r.rel_error] for r in layered],
               args.out / "error_per_layer", digits=3)
    error_figure(results, args.out / "error_vs_layer",
                 f"robust PCA, d={args.d}, r={args.rank}, {args.outlier_fraction:.0%} outliers, {args.layers} layers")
    atomic_write_json(args.out / "config.json", {**vars(args), "out": str(args.out), "torch": torch.__version__,
                                                 "lam": problem.lam})
    print(markdown_table(TABLE_HEADER, rows, digits=4))
    if args.pcp:
        print(f"PCP on the first {args.pcp} test instances (statuses {sorted(set(sol.status))}, max relative duality gap "
              f"{float(np.max(sol.relative_gap)):.1e}); the learned and classical errors on the same instances: "
              + ", ".join(f"{k} {v:.3e}" for k, v in subset.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
