# ruff: noqa: E402  (the BLAS thread count must be set before numpy is imported)
"""The four design paradigms compared on sparse recovery and robust PCA, on the criteria of the deep-unfolding tutorial.

Sparse recovery (default m = 64, n = 128, 10 % nonzeros, 12 layers): ISTA and FISTA against the eight
unfolded models of ``studies/paradigms_sparse.py`` (learned hyperparameters: UnfoldedISTA, UnfoldedFISTA,
ALISTA, UnfoldedADMM; learned objective: LISTA, LISTA-CP; learned correction: HybridISTA; DNN inductive
bias: LearnedUpdate). Robust PCA (d = 40, rank 3, 10 % outliers, 10 layers): ScaledGD, LearnedRPCA and PCP
as in ``studies/paradigms_rpca.py``. Every method is measured on

* **accuracy against depth**: test NMSE of models trained at each depth of ``--depths``, and after every
  layer of the full-depth model;
* **complexity**: learned parameters, FLOPs and wall time per sample, training time;
* **interpretability**: certified ℓ2 Lipschitz bounds of every iteration's state map (< 1: a certified
  contraction), the support-restricted contraction factor on the test signals' supports (one-layer
  iterations), and whether learned steps stay in the classical stable range
  (:mod:`unfoldtheory.robustness`);
* **robustness**: NMSE under test-time noise and model mismatch (a perturbed sensing matrix; another outlier
  fraction for robust PCA) with the trained model unchanged; the Lipschitz interval
  [``lower_bound``, ``upper_bound``] of the input-output map; the worst-case perturbation of the lower
  bound's witness pair; the largest gain found by a pair witness at test inputs.

Every training run and every analysis is a cell stored as one JSON file in OUT/cells (the name holds a
hash of its settings) as soon as it finishes, with checkpoints in OUT/models: a killed run, started again
with the same options, redoes only the missing cells. A cell whose analysis raised is not stored (its
error is reported, and a rerun retries it). Outputs (OUT = studies/out/paradigms):

    OUT/report.md                         the report: setup, summary table, one section per criterion
    OUT/summary.{md,tex,csv,json}         the summary table (one row per method)
    OUT/accuracy_vs_depth.{png,pdf}       OUT/robustness.{png,pdf}
    OUT/lipschitz_intervals.{png,pdf}     OUT/contraction.{png,pdf}
    OUT/depth.{md,...} OUT/robustness_*.{md,...} OUT/ranges.{md,...} OUT/iterations.{md,...}   detail tables

``--quick`` runs a small version in a few minutes; ``--help`` lists the options.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import importlib.util
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from matplotlib.ticker import MaxNLocator
from tqdm.auto import tqdm

from unfoldtheory import unfold
from unfoldtheory.comparison import MethodResult, classical_results, train_and_evaluate
from unfoldtheory.diagnostics import atomic_write_json, atomic_write_text, markdown_table, new_figure, save_figure, save_table
from unfoldtheory.lipschitz import lower_bound, upper_bound
from unfoldtheory.problems import RobustPCA, SparseRecovery
from unfoldtheory.problems.robust_pca import pcp
from unfoldtheory.robustness import (
    classical_range,
    iteration_bounds,
    iteration_maps,
    model_predictor,
    nmse_curve,
    one_layer_weight,
    pair_witness,
    rpca_test_set,
    sparse_test_set,
    support_factor,
    witness_perturbation,
)
from unfoldtheory.spec import NotRepresentable
from unfoldtheory.sweep import ResultStore, cell_key
from unfoldtheory.train import fit


def _sibling(name: str) -> ModuleType:
    """A study next to this file, imported by path (``studies`` is not a package)."""
    module_name = f"_studies_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up while the file executes
        spec.loader.exec_module(module)
    return sys.modules[module_name]


_sparse = _sibling("paradigms_sparse")
_rpca = _sibling("paradigms_rpca")
SPARSE_MODELS: tuple[str, ...] = _sparse.MODELS
CLASSICAL = {"ISTA": "UnfoldedISTA", "FISTA": "UnfoldedFISTA"}  # an untrained model *is* the classical iteration
QUICK = {"m": 16, "n": 32, "layers": 6, "depths": [2, 4, 6], "steps": 200, "test": 500, "robust_test": 300,
         "rpca_d": 16, "rpca_rank": 2, "rpca_layers": 6, "rpca_depths": [2, 4, 6], "rpca_steps": 120, "rpca_test": 20,
         "pcp": 1, "lipschitz_budget": 3.0, "map_budget": 0.5, "restarts": 4}
FLOOR_DB = -80.0  # robustness plots: lower edge of the NMSE axis
HEADER = ["problem", "method", "paradigm", "NMSE (dB)", "NMSE by depth (dB)", "parameters", "FLOPs / sample",
          "wall time / sample (µs)", "training time (s)", "certified contracting iterations", "max iteration-map bound",
          "max support factor", "steps in classical range", "NMSE, test noise (dB)", "NMSE, model mismatch (dB)",
          "Lipschitz lower", "witness ‖δ‖", "Lipschitz upper", "upper-bound method", "gain at test inputs"]


# ---------------------------------------------------------------------------- options
def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--quick", action="store_true", help=f"a small study (defaults {QUICK}); options given explicitly still apply")
    p.add_argument("--out", type=Path, default=Path("studies/out/paradigms"))
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps per sparse model (batch 64, fresh samples)")
    p.add_argument("--layers", type=int, default=12, help="depth K of the sparse models analysed in full")
    p.add_argument("--depths", type=int, nargs="+", default=[4, 8, 12], help="sparse depths trained for accuracy vs depth")
    p.add_argument("--models", nargs="+", default=list(SPARSE_MODELS), choices=SPARSE_MODELS)
    p.add_argument("--m", type=int, default=64)
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--sparsity", type=float, default=0.1)
    p.add_argument("--test", type=int, default=2000, help="sparse test samples")
    p.add_argument("--robust-test", type=int, default=1000, help="sparse test samples per noise / mismatch level")
    p.add_argument("--noise-levels", type=float, nargs="+", default=[0.0, 0.01, 0.05, 0.1],
                   help="test noise std (sparse; training is noiseless); robust PCA: the same numbers times the RMS entry of L")
    p.add_argument("--mismatch-levels", type=float, nargs="+", default=[0.0, 0.01, 0.05, 0.1],
                   help="relative Frobenius size of the test-time perturbation of A")
    p.add_argument("--rpca-d", type=int, default=40)
    p.add_argument("--rpca-rank", type=int, default=3)
    p.add_argument("--rpca-outliers", type=float, default=0.1, help="outlier fraction in training")
    p.add_argument("--rpca-test-outliers", type=float, nargs="+", default=[0.05, 0.1, 0.15, 0.2],
                   help="outlier fractions at test time (robust PCA's model mismatch)")
    p.add_argument("--rpca-layers", type=int, default=10)
    p.add_argument("--rpca-depths", type=int, nargs="+", default=[4, 7, 10])
    p.add_argument("--rpca-steps", type=int, default=600)
    p.add_argument("--rpca-test", type=int, default=50)
    p.add_argument("--pcp", type=int, default=2, help="test instances solved by PCP, per test set (~10 s each at d = 40)")
    p.add_argument("--lipschitz-budget", type=float, default=20.0, help="seconds for each upper and lower bound search")
    p.add_argument("--map-budget", type=float, default=2.0, help="seconds for each iteration-map upper bound")
    p.add_argument("--map-sdp-size", type=int, default=200,
                   help="largest LipSDP matrix solved as an SDP for an iteration map (larger: the other bounds only)")
    p.add_argument("--restarts", type=int, default=8, help="restarts of the lower-bound search")
    p.add_argument("--witness-inputs", type=int, default=4, help="test inputs searched by the pair witness")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="training device (analyses run in float64 on the CPU)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    if p.parse_args(argv).quick:
        p.set_defaults(**QUICK)
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda was requested but torch sees no CUDA device")
    for name in ("steps", "layers", "m", "n", "test", "robust_test", "rpca_d", "rpca_rank", "rpca_layers", "rpca_steps",
                 "rpca_test", "restarts", "witness_inputs", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 <= args.pcp <= args.rpca_test:
        p.error(f"--pcp must be between 0 and --rpca-test ({args.rpca_test})")
    for depths, layers in (("depths", "layers"), ("rpca_depths", "rpca_layers")):
        values = sorted(set(getattr(args, depths)) | {getattr(args, layers)})
        if values[0] < 1 or values[-1] > getattr(args, layers):
            p.error(f"--{depths.replace('_', '-')} must lie in 1..--{layers.replace('_', '-')} ({getattr(args, layers)})")
        setattr(args, depths, values)
    args.rpca_test_outliers = sorted(set(args.rpca_test_outliers) | {args.rpca_outliers})
    return args


# ---------------------------------------------------------------------------- resumable cells
class Cells:
    """Finished cells in ``root/KIND/KEY.json`` (:class:`~unfoldtheory.sweep.ResultStore` records; KEY from the
    cell's settings). A result with a non-empty ``"errors"`` list is returned but not stored."""

    def __init__(self, root: Path, bar: Any) -> None:
        self.root, self.bar = root, bar

    def get(self, kind: str, cell: dict[str, Any], compute: Callable[[], dict[str, Any]], needs: Path | None = None) -> Any:
        store = ResultStore(self.root / kind)
        key = cell_key(cell)
        self.bar.set_postfix_str(f"{kind} {cell.get('method', '')} K={cell.get('depth', '')}")
        if needs is None or needs.exists():
            try:
                record = store.load(key)
            except (KeyError, ValueError):  # not finished, or unreadable: run it (again)
                pass
            else:
                self.bar.update(1)
                return record["result"]
        start = time.perf_counter()
        result = compute()
        self.bar.update(1)
        if isinstance(result, dict) and result.get("errors"):
            return result
        return store.save(key, f"studies/paradigms.py:{kind}", cell, result, time.perf_counter() - start)["result"]


def _checkpoint(args: argparse.Namespace, kind: str, cell: dict[str, Any]) -> Path:
    return args.out / "models" / kind / f"{cell_key(cell)}.pt"


# ---------------------------------------------------------------------------- analyses shared by both problems
def _bound_record(bound: Any) -> dict[str, Any]:
    return {"value": bound.value, "certified": bound.certified, "method": bound.method, "seconds": bound.seconds}


def _attempt(errors: list[str], what: str, compute: Callable[[], Any]) -> Any:
    try:
        return compute()
    except NotRepresentable as exc:
        return {"na": str(exc)}
    except Exception as exc:  # any failure of one analysis is reported; the others go on
        errors.append(f"{what}: {type(exc).__name__}: {exc}")
        return {"na": f"{type(exc).__name__}: {exc}"}


def _ranges(model: torch.nn.Module) -> list[dict[str, Any]]:
    return [{"test": c.test, "interval": c.interval, "values": c.values, "within": c.within, "passed": c.passed,
             "reference": c.reference} for c in classical_range(model)]


def _local_witness(model: torch.nn.Module, inputs: np.ndarray, seed: int) -> dict[str, Any]:
    bound = pair_witness(lambda y: model(y), inputs, seed=seed)
    return {**_bound_record(bound), **witness_perturbation(bound)}


# ---------------------------------------------------------------------------- sparse recovery
def _sparse_cell(args: argparse.Namespace) -> dict[str, Any]:
    return {"m": args.m, "n": args.n, "sparsity": args.sparsity, "seed": args.seed, "test": args.test}


def _train_sparse(args: argparse.Namespace, problem: SparseRecovery, test: tuple[np.ndarray, np.ndarray], name: str,
                  depth: int, path: Path, progress: bool | None) -> dict[str, Any]:
    model = getattr(unfold, name)(problem.A, depth, problem.lam).float()
    result, _ = train_and_evaluate(name, model, problem, test, scheme="end_to_end", steps=args.steps,
                                   lr=_sparse.LEARNING_RATES[name], seed=args.seed, device=args.device, progress=progress)
    unfold.save(model, path)
    return asdict(result)


def _analyse_sparse(args: argparse.Namespace, problem: SparseRecovery, model: unfold.UnfoldedModel, X: np.ndarray,
                    Y: np.ndarray) -> dict[str, Any]:
    errors: list[str] = []
    predict = model_predictor(model)
    seed = 20_000 + args.seed
    noise = nmse_curve(predict, {s: sparse_test_set(problem, args.robust_test, seed, noise_std=s) for s in args.noise_levels})
    mismatch = nmse_curve(predict, {e: sparse_test_set(problem, args.robust_test, seed, matrix_perturbation=e,
                                                       matrix_seed=args.seed) for e in args.mismatch_levels})
    spec = model.spec()
    supports = [x != 0 for x in X[:200]]

    def iterations() -> list[dict[str, Any]]:
        maps = iteration_maps(spec, model.layers)
        rows = []
        for k, b in iteration_bounds(spec, model.layers, args.map_budget, args.map_sdp_size).items():
            single = one_layer_weight(maps[k]) is not None
            rows.append({"k": k, **_bound_record(b), "contraction": b.details["contraction"],
                         "support_factor": support_factor(maps[k], supports).value if single else None})
        return rows

    def upper() -> dict[str, Any]:
        b = upper_bound(spec, "best", time_budget=args.lipschitz_budget)
        return {**_bound_record(b), "skipped": b.details.get("skipped", {})}

    def lower() -> dict[str, Any]:
        b = lower_bound(spec, restarts=args.restarts, seed=args.seed, time_budget=args.lipschitz_budget)
        return {**_bound_record(b), **witness_perturbation(b), "same_region": b.details["same_region"]}

    return {"noise": sorted(noise.items()), "mismatch": sorted(mismatch.items()), "ranges": _ranges(model),
            "iterations": _attempt(errors, "iteration maps", iterations), "upper": _attempt(errors, "upper bound", upper),
            "lower": _attempt(errors, "lower bound", lower),
            "local": _attempt(errors, "pair witness", lambda: _local_witness(model, Y[:args.witness_inputs], args.seed)),
            "errors": errors}


def sparse_study(args: argparse.Namespace, cells: Cells, progress: bool | None) -> list[dict[str, Any]]:
    """Rows (dicts) for ISTA, FISTA and every model of ``--models``: accuracy, complexity and analyses."""
    problem = SparseRecovery(args.m, args.n, args.sparsity, 0.0, seed=args.seed)
    Y, X = problem.sample(args.test, seed=10_000 + args.seed)
    base = _sparse_cell(args)
    rows = []
    classical = cells.get("sparse_train", {**base, "method": "ISTA and FISTA", "depth": args.layers},
                          lambda: {"results": [asdict(r) for r in classical_results(problem, Y, X, args.layers)]})
    for res in (MethodResult(**r) for r in classical["results"]):
        model = getattr(unfold, CLASSICAL[res.name])(problem.A, args.layers, problem.lam)
        cell = {**base, "method": res.name, "depth": args.layers, **_analysis_settings(args)}
        analysis = cells.get("sparse_analysis", cell, lambda model=model: _analyse_sparse(args, problem, model, X, Y))
        rows.append({"problem": "sparse recovery", "method": res.name, "paradigm": res.paradigm, "nmse_db": res.nmse_db,
                     "by_depth": {d: res.nmse_db[d - 1] for d in args.depths}, "parameters": 0,
                     "flops": res.flops_per_sample, "seconds_per_sample": res.seconds_per_sample, "train_seconds": 0.0,
                     "analysis": analysis})
    for name in args.models:
        trained = {}
        for depth in args.depths:
            cell = {**base, "method": name, "depth": depth, "steps": args.steps, "device": args.device}
            path = _checkpoint(args, "sparse", cell)
            trained[depth] = (cells.get("sparse_train", cell, lambda name=name, depth=depth, path=path: _train_sparse(
                args, problem, (Y, X), name, depth, path, progress), needs=path), path, cell)
        result, path, train_cell = trained[args.layers]
        model = unfold.load(path).double()
        cell = {**train_cell, **_analysis_settings(args)}
        analysis = cells.get("sparse_analysis", cell, lambda model=model: _analyse_sparse(args, problem, model, X, Y))
        rows.append({"problem": "sparse recovery", "method": name, "paradigm": result["paradigm"],
                     "nmse_db": result["nmse_db"], "by_depth": {d: trained[d][0]["nmse_db"][-1] for d in args.depths},
                     "parameters": result["parameters"], "flops": result["flops_per_sample"],
                     "seconds_per_sample": result["seconds_per_sample"], "train_seconds": result["train_seconds"],
                     "analysis": analysis})
    return rows


def _analysis_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"noise_levels": ",".join(map(str, args.noise_levels)), "mismatch_levels": ",".join(map(str, args.mismatch_levels)),
            "robust_test": args.robust_test, "lipschitz_budget": args.lipschitz_budget, "map_budget": args.map_budget,
            "map_sdp_size": args.map_sdp_size,
            "restarts": args.restarts, "witness_inputs": args.witness_inputs}


# ---------------------------------------------------------------------------- robust PCA
def _rpca_analysis(args: argparse.Namespace, problem: RobustPCA, predict: Callable[[np.ndarray], np.ndarray], num: int,
                   model: unfold.LearnedRPCA | None, Y: np.ndarray) -> dict[str, Any]:
    errors: list[str] = []
    seed = 20_000 + args.seed
    noise = nmse_curve(predict, {s: rpca_test_set(problem, num, seed, noise_rms=s) for s in args.noise_levels})
    mismatch = nmse_curve(predict, {a: rpca_test_set(problem, num, seed, outlier_fraction=a) for a in args.rpca_test_outliers})
    out: dict[str, Any] = {"noise": sorted(noise.items()), "mismatch": sorted(mismatch.items()), "instances": num}
    if model is None:
        reason = "PCP is a convex program solved to optimality, not a network: it has no layers or learned steps"
        return {**out, "ranges": [], "iterations": {"na": reason}, "upper": {"na": reason}, "lower": {"na": reason},
                "local": {"na": reason}, "errors": errors}
    not_spec = _attempt(errors, "spec", model.spec)
    local = _attempt(errors, "pair witness", lambda: _local_witness(model, Y[:args.witness_inputs], args.seed))
    return {**out, "ranges": _ranges(model), "iterations": not_spec, "upper": not_spec, "lower": local, "local": local,
            "errors": errors}


def rpca_study(args: argparse.Namespace, cells: Cells, progress: bool | None) -> list[dict[str, Any]]:
    """Rows for ScaledGD (classical), LearnedRPCA and PCP on robust PCA."""
    d = args.rpca_d
    problem = RobustPCA(d, d, args.rpca_rank, args.rpca_outliers, seed=args.seed)
    Y, L = problem.sample(args.rpca_test, seed=10_000 + args.seed)
    base = {"d": d, "rank": args.rpca_rank, "outliers": args.rpca_outliers, "seed": args.seed, "test": args.rpca_test}
    analysis_settings = {**_analysis_settings(args), "mismatch_levels": ",".join(map(str, args.rpca_test_outliers))}
    rows = []

    def evaluate(name: str, model: unfold.LearnedRPCA, parameters: int, train_seconds: float) -> dict[str, Any]:
        result, _ = _rpca.evaluate(name, model, Y, L, parameters, train_seconds, {})
        return asdict(result)

    def train(depth: int, path: Path) -> dict[str, Any]:
        model = unfold.LearnedRPCA(args.rpca_rank, depth, d, d)
        history = fit(model, problem, "layerwise", args.rpca_steps, args.seed, batch_size=8, lr=1e-2, device=args.device,
                      progress=progress)
        unfold.save(model, path)
        return evaluate("LearnedRPCA", model, model.num_parameters(), history.seconds)

    for name in ("ScaledGD (classical)", "LearnedRPCA"):
        by_depth = {}
        for depth in args.rpca_depths:
            cell = {**base, "method": name, "depth": depth}
            if name == "LearnedRPCA":
                cell["steps"], cell["device"] = args.rpca_steps, args.device
                path = _checkpoint(args, "rpca", cell)
                result = cells.get("rpca_train", cell, lambda depth=depth, path=path: train(depth, path), needs=path)
            else:
                path = None
                result = cells.get("rpca_train", cell, lambda depth=depth, name=name: evaluate(
                    name, unfold.LearnedRPCA(args.rpca_rank, depth, d, d).to(args.device), 0, 0.0))
            by_depth[depth] = (result, path, cell)
        result, path, cell = by_depth[args.rpca_layers]
        model = unfold.load(path).double() if path else unfold.LearnedRPCA(args.rpca_rank, args.rpca_layers, d, d)
        analysis = cells.get("rpca_analysis", {**cell, **analysis_settings}, lambda model=model: _rpca_analysis(
            args, problem, model_predictor(model), args.rpca_test, model, Y))
        rows.append({"problem": "robust PCA", "method": name, "paradigm": "classical" if path is None else model.paradigm,
                     "nmse_db": result["nmse_db"], "by_depth": {k: v[0]["nmse_db"][-1] for k, v in by_depth.items()},
                     "parameters": result["parameters"], "flops": result["flops_per_sample"],
                     "seconds_per_sample": result["seconds_per_sample"], "train_seconds": result["train_seconds"],
                     "analysis": analysis})
    if args.pcp:
        n = args.pcp

        def solve(Ys: np.ndarray) -> np.ndarray:
            return pcp(Ys[:n], problem.lam, solver="CLARABEL", progress=False).L

        def run_pcp() -> dict[str, Any]:
            sol = pcp(Y[:n], problem.lam, solver="CLARABEL", progress=progress)
            nmse = float(10 * np.log10(np.sum((sol.L - L[:n]) ** 2) / np.sum(L[:n] ** 2)))
            return {"nmse_db": nmse, "seconds_per_sample": sol.seconds / n, "status": sorted(set(sol.status)),
                    "max_relative_gap": float(np.max(sol.relative_gap))}

        cell = {**base, "method": "PCP", "instances": n}
        result = cells.get("rpca_train", cell, run_pcp)
        analysis = cells.get("rpca_analysis", {**cell, **analysis_settings},
                             lambda: _rpca_analysis(args, problem, solve, n, None, Y))
        rows.append({"problem": "robust PCA", "method": f"PCP ({n} instance{'s' if n > 1 else ''})",
                     "paradigm": "convex reference (solver)",
                     "nmse_db": [result["nmse_db"]], "by_depth": {}, "parameters": 0, "flops": "n/a (interior point)",
                     "seconds_per_sample": result["seconds_per_sample"], "train_seconds": 0.0, "analysis": analysis,
                     "details": result})
    return rows


# ---------------------------------------------------------------------------- tables
def _fmt(value: Any) -> Any:
    return float(value) if isinstance(value, (int, float, str)) and str(value) in ("inf", "-inf", "nan") else value


def _na(entry: Any) -> str | None:
    if entry is None:
        return "n/a"
    if isinstance(entry, dict) and "na" in entry:
        return "n/a"
    return None


def _last(pairs: list[list[float]]) -> float:
    return float(pairs[-1][1])


def summary_row(row: dict[str, Any]) -> list[Any]:
    """One row of :data:`HEADER`."""
    a = row["analysis"]
    its = a["iterations"]
    if _na(its):
        contracting = max_bound = max_support = "n/a"
    else:
        certified = sum(bool(r["contraction"]) for r in its)
        contracting = f"{certified}/{len(its)}"
        max_bound = max(float(r["value"]) for r in its)
        factors = [r["support_factor"] for r in its if r["support_factor"] is not None]
        max_support = max(factors) if factors else "n/a"
    ranges = a["ranges"]
    in_range = "n/a" if not ranges else "; ".join(f"{r['test']} {r['passed']}/{len(r['values'])}" for r in ranges)
    lower, upper, local = a["lower"], a["upper"], a["local"]
    by_depth = " / ".join(f"{row['by_depth'][d]:.1f}" for d in sorted(row["by_depth"])) or "n/a"
    return [row["problem"], row["method"], row["paradigm"], row["nmse_db"][-1], by_depth, row["parameters"], row["flops"],
            1e6 * row["seconds_per_sample"], row["train_seconds"], contracting, max_bound, max_support, in_range,
            _last(a["noise"]), _last(a["mismatch"]),
            _na(lower) or _fmt(lower["value"]), _na(lower) or lower["perturbation"],
            _na(upper) or _fmt(upper["value"]), _na(upper) or upper["method"], _na(local) or local["value"]]


# ---------------------------------------------------------------------------- figures
def _depth_figure(rows: list[dict[str, Any]], stem: Path) -> list[Path]:
    fig, axes = new_figure(ncols=3, width=5.2, height=4.0)
    sparse = [r for r in rows if r["problem"] == "sparse recovery"]
    for i, r in enumerate(sparse):
        style = "--" if r["paradigm"] == "classical" else "-"
        depths = sorted(r["by_depth"])
        axes[0].plot(depths, [r["by_depth"][d] for d in depths], style, marker="o", ms=3, color=f"C{i % 10}", label=r["method"])
        axes[1].plot(np.arange(1, len(r["nmse_db"]) + 1), r["nmse_db"], style, marker=".", ms=3, color=f"C{i % 10}",
                     label=r["method"])
    axes[0].set(xlabel="depth K (trained at each depth)", ylabel="test NMSE (dB)", title="sparse recovery: trained per depth")
    axes[1].set(xlabel="layer k of the full-depth model", ylabel="test NMSE (dB)", title="sparse recovery: per layer")
    for i, r in enumerate(x for x in rows if x["problem"] == "robust PCA"):
        if r["by_depth"]:
            depths = sorted(r["by_depth"])
            axes[2].plot(depths, [r["by_depth"][d] for d in depths], "--" if r["paradigm"] == "classical" else "-",
                         marker="o", ms=3, color=f"C{i}", label=r["method"])
        else:
            axes[2].axhline(r["nmse_db"][-1], ls=":", color=f"C{i}", label=r["method"])
    axes[2].set(xlabel="depth K (trained at each depth)", ylabel="test NMSE of L (dB)", title="robust PCA")
    for ax in axes:
        ax.legend(ncol=2, fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return save_figure(fig, stem)


def _robustness_figure(rows: list[dict[str, Any]], args: argparse.Namespace, stem: Path) -> list[Path]:
    fig, axes = new_figure(ncols=2, nrows=2, width=5.2, height=3.8)
    labels = {("sparse recovery", "noise"): "test noise std σ", ("sparse recovery", "mismatch"): "relative perturbation of A",
              ("robust PCA", "noise"): "test noise std / RMS entry of L", ("robust PCA", "mismatch"): "test outlier fraction"}
    for col, what in enumerate(("noise", "mismatch")):
        for row_i, problem in enumerate(("sparse recovery", "robust PCA")):
            ax = axes[row_i][col]
            for i, r in enumerate(x for x in rows if x["problem"] == problem):
                levels, values = zip(*r["analysis"][what], strict=True)
                ax.plot(levels, values, "--" if r["paradigm"] == "classical" else "-", marker="o", ms=3, color=f"C{i % 10}",
                        label=r["method"])
            if what == "mismatch" and problem == "robust PCA":
                ax.axvline(args.rpca_outliers, color="gray", lw=0.8, ls=":")
            if ax.get_ylim()[0] < FLOOR_DB:  # PCP's exact recoveries would flatten every other curve
                ax.set_ylim(bottom=FLOOR_DB)
                ax.text(0.02, 0.02, f"points below {FLOOR_DB} dB not shown", transform=ax.transAxes, fontsize=7)
            ax.set(xlabel=labels[problem, what], ylabel="test NMSE (dB)", title=f"{problem}: {what}")
            ax.legend(ncol=2, fontsize=7)
    return save_figure(fig, stem)


def _lipschitz_figure(rows: list[dict[str, Any]], stem: Path) -> list[Path]:
    fig, ax = new_figure(width=6.5, height=0.45 * len(rows) + 1.2)
    for i, r in enumerate(rows):
        lower, upper = r["analysis"]["lower"], r["analysis"]["upper"]
        lo = None if _na(lower) else float(lower["value"])
        hi = None if _na(upper) else float(_fmt(upper["value"]))
        if lo is not None and hi is not None and math.isfinite(hi):
            ax.plot([lo, hi], [i, i], "-", color="C0", lw=3)
        if lo is not None:
            ax.plot([lo], [i], "|", color="C2", ms=12, mew=2, label="certified lower (witness)" if i == 0 else None)
        if hi is not None and math.isfinite(hi):
            ax.plot([hi], [i], "|", color="C3", ms=12, mew=2, label="certified upper" if i == 0 else None)
        if lo is None or hi is None:
            missing = " and ".join(w for w, v in (("lower", lo), ("upper", hi)) if v is None)
            ax.annotate(f"{missing}: n/a", (0.01, i), xycoords=("axes fraction", "data"), va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{r['method']} ({'RPCA' if r['problem'] == 'robust PCA' else 'sparse'})" for r in rows])
    ax.set_xscale("log")
    ax.margins(x=0.1)
    ax.invert_yaxis()
    ax.set(xlabel="ℓ2 Lipschitz constant of the input–output map", title="Lipschitz intervals [lower, upper]")
    ax.legend(fontsize=7)
    return save_figure(fig, stem)


def _contraction_figure(rows: list[dict[str, Any]], stem: Path) -> list[Path]:
    fig, axes = new_figure(ncols=2, width=5.5, height=4.0)
    for i, r in enumerate(x for x in rows if not _na(x["analysis"]["iterations"])):
        its = r["analysis"]["iterations"]
        ks = [t["k"] for t in its]
        axes[0].semilogy(ks, [float(_fmt(t["value"])) for t in its], marker="o", ms=3, color=f"C{i % 10}", label=r["method"])
        if all(t["support_factor"] is not None for t in its):
            axes[1].plot(ks, [t["support_factor"] for t in its], marker="o", ms=3, color=f"C{i % 10}", label=r["method"])
    for ax, title in zip(axes, ("certified bound of iteration k's state map", "max ‖W_SS‖ over the test supports"), strict=True):
        ax.axhline(1.0, color="k", lw=0.8, ls=":")
        ax.set(xlabel="iteration k", title=title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(ncol=2, fontsize=7)
    return save_figure(fig, stem)


# ---------------------------------------------------------------------------- report
def _detail_tables(rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, tuple[list[str], list[list[Any]]]]:
    tables: dict[str, tuple[list[str], list[list[Any]]]] = {}
    for problem, depths in (("sparse recovery", args.depths), ("robust PCA", args.rpca_depths)):
        rs = [r for r in rows if r["problem"] == problem and r["by_depth"]]
        tables[f"depth_{problem.split()[0]}"] = (["method"] + [f"K={d}" for d in depths],
                                                 [[r["method"], *[r["by_depth"][d] for d in depths]] for r in rs])
    for problem in ("sparse recovery", "robust PCA"):
        rs = [r for r in rows if r["problem"] == problem]
        for what in ("noise", "mismatch"):
            levels = [lv for lv, _ in rs[0]["analysis"][what]]
            tables[f"robustness_{problem.split()[0]}_{what}"] = (
                ["method"] + [f"{lv:g}" for lv in levels], [[r["method"], *[v for _, v in r["analysis"][what]]] for r in rs])
    tables["ranges"] = (["problem", "method", "test", "classical range", "in range", "min", "max", "reference"],
                        [[r["problem"], r["method"], c["test"], c["interval"], f"{c['passed']}/{len(c['values'])}",
                          min(c["values"]), max(c["values"]), c["reference"]] for r in rows for c in r["analysis"]["ranges"]])
    with_its = [r for r in rows if not _na(r["analysis"]["iterations"])]
    if with_its:
        ks = [t["k"] for t in with_its[0]["analysis"]["iterations"]]
        body = [[r["method"], *[float(_fmt(t["value"])) for t in r["analysis"]["iterations"]]] for r in with_its]
        tables["iterations"] = (["method"] + [f"k={k}" for k in ks], body)
    lip = []
    for r in rows:
        a = r["analysis"]
        lo, up, loc = a["lower"], a["upper"], a["local"]
        lip.append([r["problem"], r["method"],
                    _na(lo) or _fmt(lo["value"]), _na(lo) or lo["method"], _na(lo) or lo["perturbation"],
                    _na(lo) or lo["relative_perturbation"], _na(lo) or lo["output_change"],
                    _na(up) or _fmt(up["value"]), _na(up) or up["method"], _na(up) or up["seconds"],
                    _na(loc) or loc["value"], "; ".join(a["errors"]) or "none"])
    tables["lipschitz"] = (["problem", "method", "lower", "lower method", "witness ‖δ‖", "‖δ‖/‖y‖", "‖f(y+δ) − f(y)‖",
                            "upper", "upper method", "upper seconds", "gain at test inputs", "errors"], lip)
    return tables


def _highlights(rows: list[dict[str, Any]]) -> str:
    """Per problem, computed from the rows: the most accurate method, the smallest losses under the largest test
    noise and model mismatch, and the tightest Lipschitz interval (upper / lower)."""
    lines = []
    for problem in ("sparse recovery", "robust PCA"):
        rs = [r for r in rows if r["problem"] == problem]
        if not rs:
            continue
        best = min(rs, key=lambda r: r["nmse_db"][-1])
        lines.append(f"* **{problem}**: most accurate {best['method']} ({best['nmse_db'][-1]:.2f} dB).")
        for what, label in (("noise", "test noise"), ("mismatch", "model mismatch")):
            loss = {r["method"]: _last(r["analysis"][what]) - r["analysis"][what][0][1] for r in rs}
            lo, hi = min(loss, key=loss.get), max(loss, key=loss.get)
            lines.append(f"  From the smallest to the largest {label}, NMSE changes by {loss[lo]:+.2f} dB ({lo}) to "
                         f"{loss[hi]:+.2f} dB ({hi}).")
        ratios = {r["method"]: float(_fmt(r["analysis"]["upper"]["value"])) / float(r["analysis"]["lower"]["value"])
                  for r in rs if not _na(r["analysis"]["upper"]) and not _na(r["analysis"]["lower"])}
        if ratios:
            tight, loose = min(ratios, key=ratios.get), max(ratios, key=ratios.get)
            lines.append(f"  Lipschitz interval upper/lower: from {ratios[tight]:.3g} ({tight}) to "
                         f"{ratios[loose]:.3g} ({loose}).")
    return "\n".join(lines) + "\n"


def _report(rows: list[dict[str, Any]], args: argparse.Namespace, tables: dict[str, Any], seconds: float) -> str:
    summary = markdown_table(HEADER, [summary_row(r) for r in rows], digits=4)
    na_reasons = sorted({r["analysis"]["upper"]["na"] for r in rows if isinstance(r["analysis"]["upper"], dict)
                         and "na" in r["analysis"]["upper"]})

    def table(name: str) -> str:
        return markdown_table(*tables[name], digits=4) if name in tables else "(none)\n"

    return f"""# The four design paradigms: a comparative study

Generated by `python studies/paradigms.py` in {seconds / 60:.1f} minutes (`{' '.join(sys.argv[1:]) or 'default options'}`;
settings in `config.json`; torch {torch.__version__}, {args.threads} thread(s), training on `{args.device}`).

* **Sparse recovery**: m = {args.m}, n = {args.n}, {args.sparsity:.0%} nonzeros (Bernoulli–Gaussian), noiseless training,
  λ = {SparseRecovery(args.m, args.n, args.sparsity, 0.0, seed=args.seed).lam:g}; every model trained end to end with
  {args.steps} Adam steps of 64 fresh samples (early stopping on 500 validation samples), float32; test set {args.test}
  samples; ISTA and FISTA are the untrained UnfoldedISTA / UnfoldedFISTA (step 1/L, threshold λ/L).
* **Robust PCA**: d = {args.rpca_d}, rank {args.rpca_rank}, {args.rpca_outliers:.0%} outliers; LearnedRPCA trained layer-wise
  ({args.rpca_steps} steps of 8 matrices), ScaledGD is its classical initialisation; PCP (Clarabel) on {args.pcp} test
  instance(s) per test set; test set {args.rpca_test} matrices.

## Summary

{summary}
{_highlights(rows)}
Columns: *NMSE by depth* lists depths {', '.join(map(str, args.depths))} (sparse) and {', '.join(map(str, args.rpca_depths))}
(robust PCA), each a separately trained model; *noise* is the largest test noise ({max(args.noise_levels):g}; for robust PCA
times the RMS entry of L), *model mismatch* the largest perturbation of A ({max(args.mismatch_levels):g}, relative
Frobenius size) or the largest test outlier fraction ({max(args.rpca_test_outliers):g}); *Lipschitz lower* is a certified
lower bound from a witness pair (sparse: `lipschitz.lower_bound`; robust PCA: the pair witness at test inputs), *witness ‖δ‖*
the size of that pair's perturbation; *gain at test inputs* is the pair witness (power iteration on JᵀJ) started at
{args.witness_inputs} test inputs.

## Accuracy against depth

![accuracy against depth](accuracy_vs_depth.png)

Test NMSE (dB) of models trained at each depth:

{table('depth_sparse')}
{table('depth_robust')}
## Complexity

Parameters, FLOPs per sample, wall time per sample (one timed forward pass of the whole test set on the training
device after a warm-up) and training time are in the summary table.

## Interpretability

**Certified contraction.** For every iteration k ≥ 2 the map from the state that iteration k reads to the state
iteration k + 1 reads (y fixed) is cut out of the model's NetworkSpec and bounded with `lipschitz.upper_bound(..., "best",
time_budget={args.map_budget:g})`; the iteration is a *certified contraction* when that certified bound is below 1.
A bound ≥ 1 means only "not certified a contraction". With n > m no ISTA-type iteration can pass: I − γAᵀA is the identity
on the null space of A. The *support factor* is the classical substitute for one-layer iterations x ↦ φ(Wx + b):
max over the supports S of 200 test signals of ‖W_SS‖₂, the factor by which the iteration contracts errors on S if its
output keeps the support (no false positives): an estimate, not a certificate.

![contraction](contraction.png)

{table('iterations')}
**Classical ranges** of learned steps (see `unfoldtheory/robustness.py` for the sources and the derivation for
ScaledGD):

{table('ranges')}
## Robustness

![robustness](robustness.png)

Sparse recovery, test noise std (training was noiseless):

{table('robustness_sparse_noise')}
Sparse recovery, relative Frobenius perturbation ε of A at test time (A' = A + ε‖A‖_F G/‖G‖_F; models keep A):

{table('robustness_sparse_mismatch')}
Robust PCA, test noise std / RMS entry of L:

{table('robustness_robust_noise')}
Robust PCA, outlier fraction at test time (trained at {args.rpca_outliers:g}):

{table('robustness_robust_mismatch')}
**Lipschitz intervals and worst-case perturbations.** Upper bounds from `lipschitz.upper_bound(spec, "best",
time_budget={args.lipschitz_budget:g})` (certified; the method that gave the smallest one is named), lower bounds from
`lipschitz.lower_bound(spec, restarts={args.restarts}, time_budget={args.lipschitz_budget:g})`: a pair (y, y + δ) whose
ratio ‖f(y + δ) − f(y)‖/‖δ‖ is the bound. For robust PCA no upper bound exists here:
{' '.join(na_reasons) or 'n/a'}

![Lipschitz intervals](lipschitz_intervals.png)

{table('lipschitz')}"""


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    progress = False if args.quiet else None
    total = (3 + len(args.models) * (len(args.depths) + 1)) + 2 * (len(args.rpca_depths) + 1) + (2 if args.pcp else 0)
    with tqdm(total=total, desc="paradigms study cells", disable=True if args.quiet else None) as bar:
        cells = Cells(args.out / "cells", bar)
        rows = sparse_study(args, cells, progress) + rpca_study(args, cells, progress)
    summary = [summary_row(r) for r in rows]
    save_table(HEADER, summary, args.out / "summary")
    tables = _detail_tables(rows, args)
    for name, (header, body) in tables.items():
        save_table(header, body, args.out / name)
    _depth_figure(rows, args.out / "accuracy_vs_depth")
    _robustness_figure(rows, args, args.out / "robustness")
    _lipschitz_figure(rows, args.out / "lipschitz_intervals")
    _contraction_figure(rows, args.out / "contraction")
    atomic_write_json(args.out / "rows.json", rows)
    atomic_write_json(args.out / "config.json", {**vars(args), "out": str(args.out), "torch": torch.__version__})
    atomic_write_text(args.out / "report.md", _report(rows, args, tables, time.perf_counter() - start))
    print(markdown_table(HEADER, summary, digits=4))
    return 0


if __name__ == "__main__":
    sys.exit(main())
