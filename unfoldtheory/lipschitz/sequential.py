"""``"sequential"``: closed-form, layer-by-layer LipSDP multipliers for chains with input injection.

In the spirit of ECLipsE-Fast (Xu & Sivaranjani, NeurIPS 2024), but on the spec's own graph: the
input y stays one block of the LipSDP matrix instead of being carried through identity neurons.
For a chain with input injection (layer k reads state k − 1 and/or the input), the matrix
``M(ρ, λ)`` of :mod:`.quadratic_form` is block-tridiagonal plus an arrow on y, so eliminating
``x_1, x_2, …, x_K`` in turn by Schur complements (:func:`schur_rho`) gives the smallest feasible
``ρ`` for given multipliers in ``O(K (m + n)³)`` — the cliques are ``{y, x_{k−1}, x_k}``.

Multipliers are one scalar per layer, ``λ_k = c_k · 2/(β_k² λ_max(W_k (−T_{k−1})⁻¹ W_kᵀ))``, where
``T_{k−1}`` is the eliminated state block so far (ECLipsE-Fast's choice keeps every Schur
complement negative definite: any factor below 2 would), and the factors ``c_k`` are tuned by a
coordinate search on ``log c_k`` that minimises ``ρ`` (starting from a global scale large enough
for the read-out term ``CᵀC``). The search only proposes; the bound is
certified by :func:`~.certificate.certify_multipliers` on the full matrix, exactly as for the SDP.
"""

from __future__ import annotations

import time

import numpy as np

from unfoldtheory.lipschitz.certificate import QUANTITY, bound_from_multipliers
from unfoldtheory.lipschitz.chain import ChainLayer, chain_layers, cholesky_lower, forward_solve, initial_state, schur_rho, step
from unfoldtheory.lipschitz.quadratic_form import quadratic_form
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.validation import positive_int, time_budget_seconds


def sequential_multipliers(layers: list[ChainLayer], C: np.ndarray, factors: np.ndarray) -> list[np.ndarray] | None:
    """ECLipsE-style scalar multipliers ``λ_k = c_k · 2/(β² λ_max(W_k (−T_{k−1})⁻¹ W_kᵀ))`` along the
    recursion (``λ_1 = c_1``); None if a state block stops being negative definite."""
    state = initial_state(layers)
    lams: list[np.ndarray] = []
    for k, layer in enumerate(layers):
        Txx = state[2]
        base = 1.0
        chol = None
        if Txx is not None and layer.W is not None:
            chol = cholesky_lower(-Txx)
            if chol is None:
                return None
            Q = forward_solve(chol, layer.W.T)  # W (−Txx)⁻¹ Wᵀ = QᵀQ
            top = float(np.linalg.eigvalsh(Q.T @ Q)[-1]) * float(np.max(layer.beta**2))
            # a (numerically) zero W puts no constraint on λ_k: it then takes the scale of the state block so
            # far, and the search tunes it. Both sides of the test scale alike with the multipliers (an
            # absolute cut-off on `top` alone would drop the coupling once the multipliers are large).
            state_scale = float(np.max(-np.diag(Txx)))  # > 0: −Txx is positive definite here
            base = 2.0 / top if top * state_scale > 1e-12 else state_scale
        lams.append(np.full(layer.V.shape[0], factors[k] * base))
        result = step(state, layer, lams[-1], C if k == len(layers) - 1 else None, state_factor=chol)
        if result is None:
            return None
        state = result[0]
    return lams


def _rho_of(layers: list[ChainLayer], C: np.ndarray, log_factors: np.ndarray) -> tuple[float, list[np.ndarray] | None]:
    try:
        lams = sequential_multipliers(layers, C, np.exp(log_factors))
        return (np.inf, None) if lams is None else (schur_rho(layers, C, lams), lams)
    except np.linalg.LinAlgError:  # data beyond float64's reach (e.g. an overflowed recursion): no proposal
        return np.inf, None


def sequential_search(layers: list[ChainLayer], C: np.ndarray, sweeps: int = 3, time_budget: float = np.inf,
                      feasibility_budget: float | None = None) -> tuple[float, list[np.ndarray] | None, dict]:
    """The coordinate search over ``log c_k`` (module docstring): ``(ρ, multipliers, details)``.

    ``sweeps`` rounds on the grid ±{2, 1, ½, ¼}, after raising the factors until the read-out term
    ``CᵀC`` is dominated: first c_1 alone, which scales every later multiplier when the layers are
    coupled, then (uncoupled layers, W ≈ 0) all of them. The sweeps stop once ``time_budget`` seconds
    have passed, keeping the best factors found; the raising stops after ``feasibility_budget`` seconds
    (default ``time_budget``), with no factors if no feasible scale was found by then.
    """
    feasibility_budget = time_budget if feasibility_budget is None else feasibility_budget
    start = time.perf_counter()
    K = len(layers)
    logs = np.zeros(K)
    best, lams = _rho_of(layers, C, logs)
    evaluations = 1
    for raise_all in (False, True):
        if raise_all and not np.isfinite(best):
            logs = np.zeros(K)  # c_1 alone did not help: start again from 1 and raise every factor
        for _ in range(60):
            if np.isfinite(best) or time.perf_counter() - start > feasibility_budget:
                break
            if raise_all:
                logs += np.log(4.0)
            else:
                logs[0] += np.log(4.0)
            best, lams = _rho_of(layers, C, logs)
            evaluations += 1
    if not np.isfinite(best) and time.perf_counter() - start > feasibility_budget:
        return best, None, {"search_rho": best, "evaluations": evaluations, "factors": np.exp(logs),
                            "stopped": f"time budget of {feasibility_budget} s reached before a feasible scale was found"}
    for _ in range(sweeps):
        for delta in (2.0, 1.0, 0.5, 0.25):
            for k in range(K):
                for sign in (1.0, -1.0):
                    if time.perf_counter() - start > time_budget:
                        return best, lams, {"search_rho": best, "evaluations": evaluations, "factors": np.exp(logs),
                                            "stopped": f"time budget of {time_budget} s reached"}
                    trial = logs.copy()
                    trial[k] += sign * delta
                    value, trial_lams = _rho_of(layers, C, trial)
                    evaluations += 1
                    if value < best:
                        best, lams, logs = value, trial_lams, trial
    return best, lams, {"search_rho": best, "evaluations": evaluations, "factors": np.exp(logs)}


def sequential_bound(spec: NetworkSpec, sweeps: int = 3, time_budget: float = np.inf,
                     feasibility_budget: float | None = None) -> Bound:
    """Certified upper bound from layer-by-layer multipliers (module docstring); the search stops after
    ``time_budget`` seconds with the best multipliers found (finding a first feasible scale may take up
    to ``feasibility_budget`` seconds, by default the same)."""
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"sequential_bound takes a NetworkSpec, got {type(spec).__name__}")
    positive_int(sweeps, "sweeps")
    time_budget = time_budget_seconds(time_budget)
    if feasibility_budget is not None:
        feasibility_budget = time_budget_seconds(feasibility_budget, "feasibility_budget")
    start = time.perf_counter()
    layers, C = chain_layers(spec)
    with np.errstate(all="ignore"):  # the search only proposes: multipliers whose recursion overflows fail the check
        best, lams, details = sequential_search(layers, C, sweeps, time_budget, feasibility_budget)
    if lams is None or not np.isfinite(best):
        why = details.get("stopped", "no multipliers kept every Schur complement negative definite")
        return Bound(np.inf, "upper", QUANTITY, "sequential", False, None, time.perf_counter() - start,
                     {**details, "check": why}, reason=why)
    return bound_from_multipliers(quadratic_form(spec), np.concatenate(lams), "sequential", start, details)
