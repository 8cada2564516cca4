"""``"first-order"``: LipSDP-Neuron with per-neuron multipliers, solved on the Schur recursion.

LipSDP-Neuron (Fazlyab et al., NeurIPS 2019) is ``min_λ≥0 ρ(λ)`` with ``ρ(λ) = λ_max(A − BZ⁻¹Bᵀ)``
the smallest feasible ``ρ`` for given multipliers, a convex function (:mod:`.chain`). Instead of a
dense interior-point solve of an LMI of size ``m + Σ_k n_k``, this minimises ``ρ`` directly over
``log λ`` with L-BFGS, each evaluation being one Schur recursion along the chain
(``O(K (m + n)³)``, the cliques ``{y, x_{k−1}, x_k}``) plus a back substitution for the gradient.
``λ_max`` is not smooth where the top eigenvalue is multiple, so the search follows the softmax
surrogate ``t·log Σ_j exp(μ_j/t) ≥ λ_max`` down a decreasing sequence of temperatures ``t``
(a smoothing continuation, as in Nesterov's smooth minimisation of the maximal eigenvalue,
*Math. Program.* 110, 2007). It starts from the sequential method's multipliers, so it is never worse
than them, and it keeps the best exact ``ρ`` seen. The multipliers it finds are then certified by
:func:`~.certificate.certify_multipliers` like any solver's.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import optimize

from unfoldtheory.lipschitz.certificate import QUANTITY, bound_from_multipliers
from unfoldtheory.lipschitz.chain import chain_layers, schur_rho_gradient
from unfoldtheory.lipschitz.quadratic_form import quadratic_form
from unfoldtheory.lipschitz.sequential import sequential_search
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.validation import as_finite_array, finite_float, positive_int

#: Temperatures, relative to the starting ρ, and L-BFGS iterations at each.
SCHEDULE = ((1e-1, 80), (1e-2, 80), (1e-3, 40))
#: A refinement round (the schedule's low-temperature stages again) that lowers ρ by less than this
#: fraction ends the search.
ROUND_GAIN = 1e-3
#: How far (in log λ) the search may move each multiplier from its start.
LOG_RANGE = 30.0


def first_order_bound(spec: NetworkSpec, *, max_iterations: int = 200, max_rounds: int = 8, time_budget: float = 60.0,
                      start_multipliers: np.ndarray | None = None, check_start: bool = True) -> Bound:
    """Certified upper bound from per-neuron multipliers minimising ``ρ(λ)`` (module docstring).

    ``start_multipliers`` (one per neuron, > 0) replaces the sequential search as the starting point,
    e.g. the certificate of a :func:`~.sequential.sequential_bound` already computed.
    ``max_iterations`` caps the L-BFGS iterations over the whole temperature schedule (scaled to it);
    up to ``max_rounds`` refinement rounds then repeat its low-temperature stages from the best point
    found while a round lowers ρ by more than ``ROUND_GAIN`` (0.1 %);
    ``time_budget`` (seconds) covers the whole search: a third at most for the sequential start (when
    ``start_multipliers`` is not given), the rest for L-BFGS, which stops early keeping the best
    multipliers found so far. The starting multipliers are certified too (and returned if they prove
    less) unless ``check_start=False``, for a caller that has certified them already.
    """
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"first_order_bound takes a NetworkSpec, got {type(spec).__name__}")
    positive_int(max_iterations, "max_iterations")
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, (int, np.integer)) or max_rounds < 0:
        raise ValueError(f"max_rounds must be a non-negative integer, got {max_rounds!r}")
    finite_float(time_budget, "time_budget", low=0.0, low_open=True)
    start = time.perf_counter()
    layers, C = chain_layers(spec)
    sizes = [layer.V.shape[0] for layer in layers]
    splits = np.cumsum(sizes)[:-1]
    if start_multipliers is None:
        # the start gets a third of the budget (as in upper_bound's "best"), the refinement the rest
        with np.errstate(all="ignore"):  # a proposal only, as in sequential_bound
            rho0, lams0, search = sequential_search(layers, C, time_budget=time_budget / 3)
    else:
        start_multipliers = as_finite_array(start_multipliers, "start_multipliers", shape=(sum(sizes),))
        if np.any(start_multipliers <= 0):
            raise ValueError("start_multipliers must be positive (the search runs over log λ)")
        lams0, search = np.split(start_multipliers, splits), {}
        rho0 = schur_rho_gradient(layers, C, lams0)[1]
    if lams0 is None or not np.isfinite(rho0):
        why = search.get("stopped", "no starting multipliers kept every Schur complement negative definite")
        return Bound(np.inf, "upper", QUANTITY, "first-order", False, None, time.perf_counter() - start,
                     {**search, "check": why}, reason=why)
    best = {"rho": rho0, "log": np.log(np.concatenate(lams0))}
    evaluations = [0]

    class OutOfTime(Exception):
        pass

    def objective(log_lam: np.ndarray, temperature: float) -> tuple[float, np.ndarray]:
        if time.perf_counter() - start > time_budget:
            raise OutOfTime
        evaluations[0] += 1
        lam = np.exp(log_lam)
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                value, exact, grads = schur_rho_gradient(layers, C, np.split(lam, splits), temperature)
        except np.linalg.LinAlgError:
            grads = None
        if grads is None or not (np.isfinite(value) and all(np.all(np.isfinite(g)) for g in grads)):
            # outside the domain: a value above any feasible one sends the line search back
            return 10.0 * abs(best["rho"]) + 1.0, np.zeros_like(log_lam)
        if exact < best["rho"]:
            best["rho"], best["log"] = exact, log_lam.copy()
        return value, lam * np.concatenate(grads)

    total = sum(iters for _, iters in SCHEDULE)
    x = best["log"].copy()
    box = list(zip(x - LOG_RANGE, x + LOG_RANGE, strict=True))  # keeps exp(log λ) finite
    stopped = None
    scale = max(abs(rho0), 1e-300)  # temperatures are relative to ρ, which may be tiny (a map with L ≈ 1e-12)
    rounds = 0

    def run(schedule: tuple[tuple[float, int], ...], x: np.ndarray, scale: float) -> None:
        for relative, iters in schedule:
            x = optimize.minimize(objective, x, args=(relative * scale,), jac=True, method="L-BFGS-B", bounds=box,
                                  options={"maxiter": max(1, round(iters * max_iterations / total)), "maxcor": 20,
                                           "ftol": 1e-13, "gtol": 1e-12}).x

    try:
        run(SCHEDULE, x, scale)
        # the iteration cap, not convergence, ends the schedule on larger nets: repeat its low-temperature
        # stages from the best point, at its ρ's scale, while a round still gains more than ROUND_GAIN
        while rounds < max_rounds:
            before = best["rho"]
            rounds += 1
            run(SCHEDULE[1:], best["log"].copy(), max(abs(before), 1e-300))
            if before - best["rho"] <= ROUND_GAIN * abs(before):
                break
    except OutOfTime:
        stopped = f"time budget of {time_budget} s reached"
    details = {**search, "start_rho": rho0, "search_rho": best["rho"], "evaluations": evaluations[0],
               "refinement_rounds": rounds, "stopped": stopped or "converged (a round gained less than "
                                                                   f"{ROUND_GAIN:g} of ρ, or {max_rounds} rounds)"}
    form = quadratic_form(spec)
    refined = bound_from_multipliers(form, np.exp(best["log"]), "first-order", start, details)
    if not check_start:
        return refined
    # The start is checked too: the search's floating ρ can hide a large rounding margin (e.g. huge
    # multipliers), and a refinement must never certify less than its starting point.
    started = bound_from_multipliers(form, np.concatenate(lams0), "first-order", start,
                                     {**details, "refined_check": refined.details["check"], "refined_value": refined.value})
    if started.certified and (not refined.certified or started.value < refined.value):
        return started
    return refined
