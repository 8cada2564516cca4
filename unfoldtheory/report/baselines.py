"""Report section: the classical baselines on the default sparse-recovery problem.

1. sample the problem; 2. solve every instance with the gap-certified reference and cross-check
a subset against cvxpy/Clarabel; 3. run ISTA and FISTA for K iterations; 4. compare ISTA's error
to the reference with the closed-form rate on the support, ``ρ_S = 1 − λ_min(A_SᵀA_S)/L``.

After the iteration ``k₀`` from which ISTA's support and signs equal those of ``x*``, the error
obeys ``e_{k+1} = (I − A_SᵀA_S/L) e_k`` exactly, so ``‖e_k‖ ≤ ρ_S^{k−k₀}‖e_{k₀}‖`` is a bound, not
a fit; the section checks it on every instance and counts violations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unfoldtheory.classical import fista, ista, ista_support_rate
from unfoldtheory.diagnostics import markdown_table, new_figure, save_figure
from unfoldtheory.diagnostics.figures import styled
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.reference import lasso
from unfoldtheory.report.config import ReportConfig
from unfoldtheory.report.section import Section

# Rounding slack for the envelope check: errors below this (relative to ‖x*‖) are at float precision.
_FLOOR = 1e-12
CROSSCHECK_RTOL = 1e-6


def identification_iteration(iterates: np.ndarray, x_star: np.ndarray) -> int | None:
    """First k such that every iterate from k on has the support and signs of ``x_star`` (None: never)."""
    same = np.all(np.sign(iterates) == np.sign(x_star), axis=1)
    if not same[-1]:
        return None
    bad = np.flatnonzero(~same)
    return 0 if bad.size == 0 else int(bad[-1] + 1)


def tail_rate(errors: np.ndarray, start: int, floor: float) -> float | None:
    """Geometric-mean contraction of ``errors`` from ``start`` until they reach ``floor``."""
    usable = np.flatnonzero(errors[start:] > floor)
    if usable.size < 3:
        return None
    end = start + int(usable[-1])
    return float((errors[end] / errors[start]) ** (1.0 / (end - start)))


def run(config: ReportConfig, out: Path, progress: bool | None = None) -> Section:
    problem = SparseRecovery(config.m, config.n, config.sparsity, config.noise_std, seed=config.seed)
    Y, X_true = problem.sample(config.instances, seed=config.seed)
    A, lam, K = problem.A, problem.lam, config.iterations

    ref = lasso(A, Y, lam, method="certified", progress=progress)
    if not ref.all_optimal:
        raise RuntimeError(f"certified reference did not reach its tolerance on {ref.status.count('max_iterations')} instances")
    cvx = lasso(A, Y[: config.crosscheck], lam, method="cvxpy", progress=progress)
    common = ref.objective[: config.crosscheck]
    obj_rel = np.abs(cvx.objective - common) / np.maximum(np.abs(common), 1e-300)
    x_diff = np.abs(cvx.x - ref.x[: config.crosscheck]).max(axis=1)
    crosscheck = {
        "instances": config.crosscheck,
        "cvxpy_status": sorted(set(cvx.status)),
        "max_relative_objective_difference": float(np.max(obj_rel)),
        "max_solution_difference_inf": float(np.max(x_diff)),
        "certified_max_relative_gap": float(ref.relative_gap.max()),
        "cvxpy_max_relative_gap": float(cvx.relative_gap.max()),
        "certified_seconds_per_instance": ref.seconds / config.instances,
        "cvxpy_seconds_per_instance": cvx.seconds / config.crosscheck,
    }
    agree = bool(np.max(obj_rel) <= CROSSCHECK_RTOL and all(s == "optimal" for s in cvx.status))

    X_star = ref.x
    runs = {"ISTA": ista(A, Y, lam, K), "FISTA": fista(A, Y, lam, K)}
    scale = np.linalg.norm(X_star, axis=1)
    scale = np.where(scale > 0, scale, 1.0)
    errors = {name: np.linalg.norm(it - X_star[None], axis=2) / scale[None] for name, it in runs.items()}

    rates, fitted, k0s, violations = [], [], [], 0
    for i in range(config.instances):
        rho = ista_support_rate(A, X_star[i])
        k0 = identification_iteration(runs["ISTA"][:, i], X_star[i])
        rates.append(rho)
        k0s.append(k0)
        if k0 is None:
            fitted.append(None)
            continue
        e = errors["ISTA"][:, i]
        envelope = e[k0] * rho ** np.arange(K + 1 - k0)
        violations += int(np.sum(e[k0:] > envelope * (1 + 1e-9) + _FLOOR))
        fitted.append(tail_rate(e, k0, 1e3 * _FLOOR))
    identified = [i for i, k0 in enumerate(k0s) if k0 is not None]
    pairs = [(rates[i], fitted[i]) for i in identified if fitted[i] is not None]

    nmse = {name: float(10 * np.log10(np.sum((it[-1] - X_true) ** 2) / np.sum(X_true**2))) for name, it in runs.items()}
    ref_nmse = float(10 * np.log10(np.sum((X_star - X_true) ** 2) / np.sum(X_true**2)))
    final = {name: float(np.median(err[-1])) for name, err in errors.items()}

    figures = _figures(errors, rates, k0s, pairs, K, out)

    results: dict[str, Any] = {
        "problem": {"m": problem.m, "n": problem.n, "sparsity": problem.sparsity, "noise_std": problem.noise_std,
                    "lam": lam, "L": problem.L, "instances": config.instances, "iterations": K},
        "reference_crosscheck": crosscheck,
        "median_relative_error_to_reference_at_K": final,
        "nmse_db_to_ground_truth_at_K": nmse,
        "nmse_db_reference_to_ground_truth": ref_nmse,
        "ista_support_rate": {
            "closed_form_median": float(np.median(rates)),
            "instances_identified": len(identified),
            "identification_iteration_median": float(np.median([k0s[i] for i in identified])) if identified else None,
            "fitted_over_closed_form_max": max((f / r for r, f in pairs if r > 0), default=None),
            "envelope_violations": violations,
        },
    }
    checks = {"reference_agrees_with_cvxpy": agree, "ista_within_support_rate_envelope": violations == 0}
    md = _markdown(results, crosscheck, agree, figures, out)
    title = "Classical baselines: ISTA and FISTA against the certified reference"
    return Section("baselines", title, md, results, figures, checks)


@styled
def _figures(errors: dict[str, np.ndarray], rates: list[float], k0s: list[int | None],
             pairs: list[tuple[float, float]], K: int, out: Path) -> list[Path]:
    fig, (ax1, ax2) = new_figure(ncols=2, height=2.6)
    ks = np.arange(K + 1)
    colours = {"ISTA": "C0", "FISTA": "C1"}
    for name, err in errors.items():
        ax1.semilogy(ks, np.median(err, axis=1), color=colours[name], label=f"{name}: median")
        ax1.fill_between(ks, np.quantile(err, 0.1, axis=1), np.quantile(err, 0.9, axis=1), color=colours[name], alpha=0.2,
                         linewidth=0, label=f"{name}: 10–90% of instances")
    identified = [i for i, k0 in enumerate(k0s) if k0 is not None]
    if identified:
        i = identified[int(np.argmin([k0s[j] for j in identified]))]
        k0 = k0s[i]
        e = errors["ISTA"][:, i]
        ax1.semilogy(ks, e, color="C0", lw=0.8, ls=":", label=f"ISTA, instance {i}")
        ax1.semilogy(ks[k0:], e[k0] * rates[i] ** np.arange(K + 1 - k0), color="k", ls="--", lw=1.0,
                     label=fr"closed form $\rho_S^{{k-k_0}}$, $\rho_S$ = {rates[i]:.4f}")
        ax1.axvline(k0, color="grey", lw=0.6)
    ax1.set_ylim(bottom=1e-13)
    ax1.set_xlabel("iteration k")
    ax1.set_ylabel(r"$\|x_k - x^\star\|_2 / \|x^\star\|_2$")
    ax1.set_title("error to the certified Lasso solution")
    ax1.legend(loc="lower left")
    if pairs:
        r, f = np.array(pairs).T
        lo, hi = min(r.min(), f.min()) * 0.995, 1.0
        ax2.plot([lo, hi], [lo, hi], color="k", ls="--", lw=1.0, label="fitted = closed form")
        ax2.scatter(r, f, s=12, color="C0", label="instances")
        ax2.set_xlim(lo, hi)
        ax2.set_ylim(lo, hi)
        ax2.legend(loc="upper left")
    ax2.set_xlabel(r"closed-form rate on the support $\rho_S$")
    ax2.set_ylabel("fitted ISTA rate")
    ax2.set_title("ISTA: fitted against closed-form rate")
    return save_figure(fig, out / "baselines_error")


def _markdown(results: dict[str, Any], cc: dict[str, Any], agree: bool, figures: list[Path], out: Path) -> str:
    p = results["problem"]
    rate = results["ista_support_rate"]
    lines = [
        f"Problem: m = {p['m']}, n = {p['n']}, sparsity {p['sparsity']}, noise σ = {p['noise_std']}, "
        f"λ = {p['lam']:.4g}, L = ‖A‖₂² = {p['L']:.4g}; {p['instances']} instances, K = {p['iterations']} iterations.",
        "",
        f"**Reference cross-check** on {cc['instances']} instances (certified batched solver against cvxpy/Clarabel): "
        f"{'agree' if agree else 'DISAGREE'} (tolerance {CROSSCHECK_RTOL:g} relative).",
        "",
        markdown_table(
            ["quantity", "value"],
            [["largest relative objective difference", cc["max_relative_objective_difference"]],
             ["largest solution difference (∞-norm)", cc["max_solution_difference_inf"]],
             ["certified solver: largest relative duality gap", cc["certified_max_relative_gap"]],
             ["cvxpy/Clarabel: largest relative duality gap", cc["cvxpy_max_relative_gap"]],
             ["cvxpy statuses", ", ".join(cc["cvxpy_status"])],
             ["certified solver: seconds per instance", cc["certified_seconds_per_instance"]],
             ["cvxpy/Clarabel: seconds per instance", cc["cvxpy_seconds_per_instance"]]]),
        "**ISTA and FISTA** after K iterations:",
        "",
        markdown_table(
            ["method", "median ‖x_K − x*‖/‖x*‖", "NMSE to ground truth (dB)"],
            [[name, results["median_relative_error_to_reference_at_K"][name], results["nmse_db_to_ground_truth_at_K"][name]]
             for name in ("ISTA", "FISTA")] + [["Lasso solution x*", 0.0, results["nmse_db_reference_to_ground_truth"]]]),
        f"**Closed-form ISTA rate on the support** ρ_S = 1 − λ_min(A_SᵀA_S)/L: median {rate['closed_form_median']:.5f}. "
        f"ISTA identified the support and signs on {rate['instances_identified']}/{p['instances']} instances "
        f"(median iteration {rate['identification_iteration_median']}). From then on the bound "
        f"‖e_k‖ ≤ ρ_S^(k−k₀)‖e_k₀‖ was violated {rate['envelope_violations']} times; "
        f"the largest fitted/closed-form rate ratio is {rate['fitted_over_closed_form_max']}.",
        "",
    ]
    lines += [f"![ISTA and FISTA error]({figures[0].relative_to(out).as_posix()})", ""]
    return "\n".join(lines)
