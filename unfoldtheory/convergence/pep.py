"""Certified worst-case rates of K-step methods with per-step (learned) parameters, by PEP.

:func:`pep_rate` writes the performance-estimation SDP (Drori & Teboulle 2014; Taylor, Hendrickx &
Glineur 2017) of the method directly from the interpolation conditions
(:mod:`~unfoldtheory.convergence.interpolation`, :mod:`~unfoldtheory.convergence.pep_problem`),
solves it with cvxpy + Clarabel, and certifies the answer from the dual multipliers
(:mod:`~unfoldtheory.convergence.pep_certificate`). **Convention** (the package's, shared with the closed
forms of :mod:`~unfoldtheory.convergence.closed_form` and the contraction certificates): the ``"distance"``
metric is the rate of the distance ``‖x_K − x*‖ / ‖x_0 − x*‖``, *not* squared (the certified square root of
PEPit's ``‖x_K − x*‖²/‖x_0 − x*‖²``, which is kept in ``details["squared"]``); the function-value and
gradient-norm metrics are divided by ``‖x_0 − x*‖²`` as in PEPit. Every ``Bound.quantity`` says which.

:func:`pep_rate_of` applies it to the classical method that a network's layers are, detected from the weights.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from unfoldtheory.convergence.detect import ROUNDING, TOLERANCE, DetectedMethod, detect_method
from unfoldtheory.convergence.inputs import check_finite_parameters, real_scalar, real_vector
from unfoldtheory.convergence.pep_certificate import MultiplierCheck, check_multipliers
from unfoldtheory.convergence.pep_problem import (
    DATA_RANGE,
    METHODS,
    METRICS,
    PEPProblem,
    build_problem,
    objective_matrix,
    row_matrix,
)
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec

#: Clarabel gap tolerances tried in turn until the status is optimal; the first is Clarabel's default.
#: The feasibility tolerance is FEASIBILITY_FACTOR times looser: the certificate repairs the
#: multipliers' equalities exactly and verifies the rest, so it does not depend on dual feasibility
#: (past K ≈ 40 Clarabel's dual residual stalls near 2e-8). The certified value is recomputed from
#: the multipliers (typically to ~1e-9 relative even when the solver's own value is off by 1e-6).
TOLERANCES: tuple[float, ...] = (1e-8, 1e-7, 1e-6)
FEASIBILITY_FACTOR = 10.0
#: Clarabel settings besides the tolerances: a static regularisation of 1e-7 (default 1e-8) and a
#: step fraction of 0.95 (default 0.99) took 80 of 80 random PEPs (K ≤ 7, all methods and metrics) to
#: status optimal at 1e-8, against 76 with the defaults (the PEP's optimal faces are degenerate; e.g.
#: f ≡ 0 is a worst case for μ = 0).
CLARABEL_SETTINGS: dict[str, float] = {"static_regularization_constant": 1e-7, "max_step_fraction": 0.95}
#: Largest Gram dimension whose dual matrix is factorised exactly in rationals by default (above it: the
#: exactly assembled matrix is checked by a float64 Cholesky with a rigorous residual bound).
EXACT_MAX_DIM = 12
#: Trace bonuses ε tried in turn when the first multipliers cannot be certified, and the weights t of
#: the mixtures (1 − t)λ₀ + tλ_ε that are checked (see :func:`pep_rate`).
TRACE_BONUSES: tuple[float, ...] = (1e-7, 1e-6, 1e-5)
MIXTURES: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)

_METRIC_WORDS = {
    "distance": "‖x_K − x*‖ / ‖x_0 − x*‖ (the rate of the distance, not squared)",
    "function_value": "(f(x_K) − f(x*)) / ‖x_0 − x*‖²",
    "gradient_norm": "‖∇f(x_K)‖² / ‖x_0 − x*‖²",
}
_METHOD_WORDS = {
    "gradient": "gradient method",
    "proximal_gradient": "proximal gradient method (f + h, h convex)",
    "accelerated": "accelerated gradient method (per-step momentum)",
}


@dataclass(frozen=True)
class _Solution:
    status: str
    primal: float
    dual: float
    multipliers: np.ndarray | None
    tolerance: float
    gram: np.ndarray | None = None
    values: np.ndarray | None = None


def _validate(steps: Any, mu: Any, L: Any, method: str, momentum: Any,
              metric: str) -> tuple[np.ndarray, float, float, np.ndarray]:
    if method not in METHODS:
        raise ValueError(f"method is {method!r}; expected one of {METHODS}")
    if metric not in METRICS:
        raise ValueError(f"metric is {metric!r}; expected one of {METRICS}")
    if method == "proximal_gradient" and metric == "gradient_norm":
        raise ValueError("metric 'gradient_norm' is not applicable to the proximal gradient method: F = f + h has "
                         "no gradient (use 'distance' or 'function_value')")
    steps = real_vector(steps, "steps")
    if steps.size == 0:
        raise ValueError("steps is empty; give at least one step size")
    if np.any(steps <= 0):
        k = int(np.argmax(steps <= 0))
        raise ValueError(f"steps must be > 0 (step sizes, not multiples of 1/L); steps[{k}] = {steps[k]}")
    mu = real_scalar(mu, "mu", low=0.0)
    L = real_scalar(L, "L", low=0.0, low_open=True)
    if not mu < L:
        raise ValueError(f"mu must be < L (got mu={mu}, L={L}); the interpolation conditions need L − μ > 0")
    _check_range(steps, mu, L)
    K = steps.size
    if method != "accelerated":
        if momentum is not None:
            raise ValueError(f"momentum is only used by method='accelerated', not {method!r}")
        return steps, mu, L, np.zeros(0)
    if momentum is None:
        from unfoldtheory.unfold.learned_hyperparameters import fista_momentum

        return steps, mu, L, fista_momentum(K)
    momentum = real_vector(momentum, "momentum")
    if momentum.size != K - 1:
        raise ValueError(f"momentum has {momentum.size} entries; expected K − 1 = {K - 1} (β_1..β_(K−1), applied "
                         "before steps 2..K)")
    return steps, mu, L, momentum


def _check_range(steps: np.ndarray, mu: float, L: float) -> None:
    """ValueError unless ``L``, ``μ`` and every ``γ_k·L`` lie where the PEP's float64 data are exact:
    ``L`` within ``2^±DATA_RANGE``, ``γ_kL`` within ``2^±(DATA_RANGE/2)`` (its square enters the data and
    the worst case), ``μ`` zero or a normal float (not subnormal). :func:`~.pep_problem.plan` then checks
    the sizes the whole schedule reaches."""
    low, high = 2.0 ** -DATA_RANGE, 2.0 ** DATA_RANGE
    if not low <= L <= high:
        raise ValueError(f"L = {L:g} is outside [2^-{DATA_RANGE}, 2^{DATA_RANGE}]: the PEP's float64 data (gradients of size "
                         "L, weights 1/(2(L − μ))) would lose precision or overflow; rescale f (the rate is invariant under "
                         "f → cf, γ → γ/c)")
    if 0 < mu < np.finfo(float).tiny:
        raise ValueError(f"mu = {mu:g} is subnormal: float64 cannot represent the products μ·x in the PEP's data "
                         "(use mu = 0)")
    with np.errstate(over="ignore", under="ignore"):
        scaled = steps * L
    half = DATA_RANGE // 2
    bad = np.flatnonzero(~((scaled >= 2.0 ** -half) & (scaled <= 2.0 ** half)))
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"steps[{k}]·L = {steps[k]:g}·{L:g} = {scaled[k]:.3g} is outside [2^-{half}, 2^{half}]: its square "
                         "(the size of one step's worst case and of the PEP's data) cannot be represented in float64")


def _solve(problem: PEPProblem, rows, tolerance: float, trace_bonus: float = 0.0) -> _Solution:
    import cvxpy as cp
    import scipy.sparse as sp

    d = problem.dim
    G = cp.Variable((d, d), PSD=True)
    g = cp.vec(G, order="C")
    lhs = rows @ g
    objective = 0
    if problem.obj_vec is not None:
        objective = objective_matrix(problem).ravel() @ g
    if trace_bonus:
        objective = objective + trace_bonus * cp.trace(G)
    if problem.n_values:
        F = cp.Variable(problem.n_values)
        lhs = lhs + sp.csr_matrix(problem.value_rows) @ F
        if np.any(problem.value_objective):
            objective = objective + (problem.value_objective / problem.objective_scale) @ F
    constraints = [lhs <= 0, G[0, 0] <= 1]
    sdp = cp.Problem(cp.Maximize(objective), constraints)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an inaccurate solution is recorded as the status
            # ignore_dpp: the problem has no cvxpy Parameters, so DPP's compilation would only cost time
            sdp.solve(solver=cp.CLARABEL, tol_gap_abs=tolerance, tol_gap_rel=tolerance, tol_feas=FEASIBILITY_FACTOR * tolerance,
                      ignore_dpp=True, **CLARABEL_SETTINGS)
    except cp.SolverError as exc:
        return _Solution(f"solver_error: {exc}", float("nan"), float("nan"), None, tolerance)
    lam = constraints[0].dual_value
    primal = float(sdp.value) if sdp.value is not None and np.isfinite(sdp.value) else float("nan")
    tau = constraints[1].dual_value
    dual = float(tau) if tau is not None and np.isfinite(tau) else float("nan")
    values = F.value if problem.n_values else None
    return _Solution(str(sdp.status), primal, dual, None if lam is None else np.asarray(lam, dtype=float), tolerance,
                     None if G.value is None else np.asarray(G.value), None if values is None else np.asarray(values))


def _solve_until_optimal(problem: PEPProblem, rows, tolerances: tuple[float, ...]) -> _Solution:
    solution = _Solution("not solved", float("nan"), float("nan"), None, float("nan"))
    for tolerance in tolerances:
        solution = _solve(problem, rows, tolerance)
        if solution.status == "optimal":
            break
    return solution


def _certify(problem: PEPProblem, rows, solution: _Solution, exact: PEPProblem,
             exact_ldl: bool) -> tuple[MultiplierCheck, float, float]:
    """Check the solution's multipliers; if that fails on an optimal solve, re-solve with a trace
    bonus and check mixtures ``(1 − t)λ₀ + tλ_ε`` (the smallest certified value wins: a small ``t``
    keeps ``λ₀``'s accuracy and borrows just enough of ``λ_ε``'s margin ``S ⪰ εI``).
    Returns the check, the bonus ``ε`` and the mixing weight ``t`` (0, 0 when not needed)."""
    check = check_multipliers(problem, solution.multipliers, rows, exact, exact_ldl)
    if check.ok or solution.status != "optimal":
        return check, 0.0, 0.0
    for bonus in TRACE_BONUSES:
        retry = _solve(problem, rows, solution.tolerance, bonus)
        if retry.status != "optimal" or retry.multipliers is None:
            continue
        best: tuple[MultiplierCheck, float, float] | None = None
        for t in MIXTURES:
            mixed = (1 - t) * np.maximum(solution.multipliers, 0) + t * np.maximum(retry.multipliers, 0)
            candidate = check_multipliers(problem, mixed, rows, exact, exact_ldl)
            if candidate.ok and (best is None or candidate.tau < best[0].tau):
                best = (candidate, bonus, t)
        if best is not None:
            return best
    return check, 0.0, 0.0


def pep_rate(steps: Any, mu: float, L: float, method: str = "gradient", momentum: Any = None,
             metric: str = "distance", *, exact_max_dim: int = EXACT_MAX_DIM,
             tolerances: tuple[float, ...] = TOLERANCES) -> Bound:
    """Certified worst case of a K-step method with per-step parameters over ``F_{μ,L}`` (and
    closed convex ``h`` for ``method="proximal_gradient"``), by performance estimation.

    Parameters
    ----------
    steps:
        The actual step sizes ``γ_1..γ_K`` (> 0; not multiples of ``1/L``).
    mu, L:
        ``0 ≤ μ < L``: f is L-smooth and μ-strongly convex.
    method:
        ``"gradient"``, ``"proximal_gradient"`` or ``"accelerated"``; the iterations are stated in
        :mod:`~unfoldtheory.convergence.pep_problem`.
    momentum:
        ``"accelerated"`` only: ``β_1..β_{K−1}`` (``y_k = x_k + β_k(x_k − x_{k−1})``); default
        FISTA's sequence (:func:`~unfoldtheory.unfold.learned_hyperparameters.fista_momentum`).
    metric:
        ``"distance"`` (worst ``‖x_K − x*‖/‖x_0 − x*‖``, unsquared; the squared ratio, PEPit's value, is
        ``details["squared"]``), ``"function_value"``
        (``(f(x_K) − f*)/‖x_0 − x*‖²``; ``F = f + h`` for the proximal method) or ``"gradient_norm"``
        (``‖∇f(x_K)‖²/‖x_0 − x*‖²``; not applicable to the proximal method: ValueError).
    exact_max_dim:
        Gram dimensions up to this are certified exactly in rationals, larger ones in float64 with
        a rigorous rounding margin.
    tolerances:
        Clarabel gap tolerances tried in turn until the status is optimal (feasibility tolerance
        :data:`FEASIBILITY_FACTOR` times looser).

    **Rank > 1 worst cases.** Then the optimal dual matrix ``S`` is singular on a subspace that
    raising ``τ`` cannot reach, and the first multipliers ``λ₀`` may fail the check. The SDP is
    re-solved with the objective plus ``ε·tr(G)`` (``ε`` from :data:`TRACE_BONUSES`), whose
    multipliers ``λ_ε`` give ``S ⪰ εI`` for the *original* problem at a value larger by about
    ``ε·tr(G*)``; mixtures ``(1 − t)λ₀ + tλ_ε`` (``t`` from :data:`MIXTURES`) are checked and the
    smallest certified value kept, which costs only about ``t·ε·tr(G*)``
    (``details["trace_bonus"]``, ``details["mixture"]``; 0 when not needed).

    Returns
    -------
    Bound
        ``kind="upper"``. ``certified=True`` only if the solver status is optimal and the
        multipliers pass :func:`~unfoldtheory.convergence.pep_certificate.check_multipliers`; the
        value is then what they prove (for the distance: the square root of what they prove, rounded up).
        ``details["lower"]`` is the solver's primal value in the same units (a worst
        case attained by a Gram matrix feasible to the solver's tolerance: a lower bound up to that
        tolerance, not certified). Otherwise the value is the solver's (or ``inf``) with the reason.
    """
    start = time.perf_counter()
    steps, mu, L, momentum = _validate(steps, mu, L, method, momentum, metric)
    problem = build_problem(method, steps, mu, L, momentum, metric, exact=False)
    rows = row_matrix(problem)
    solution = _solve_until_optimal(problem, rows, tolerances)
    scale = problem.objective_scale
    K = steps.size
    composite = (method, metric) == ("proximal_gradient", "function_value")
    measure = "(F(x_K) − F(x*)) / ‖x_0 − x*‖², F = f + h" if composite else _METRIC_WORDS[metric]
    quantity = f"worst-case {measure} after K={K} steps of the {_METHOD_WORDS[method]}, f ∈ F(μ={mu:g}, L={L:g})"
    details: dict[str, Any] = {
        "method": method, "metric": metric, "K": K, "mu": mu, "L": L, "steps": steps.copy(),
        "momentum": momentum.copy() if method == "accelerated" else None,
        "solver": "clarabel", "status": solution.status, "tolerance": solution.tolerance,
        "lower": _in_units(solution.primal * scale, metric), "solver_value": _in_units(solution.dual * scale, metric),
        "gram_dimension": problem.dim, "constraints": problem.n_rows,
        "objective_unit": scale,
    }
    check: MultiplierCheck | None = None
    if solution.multipliers is not None:
        exact = build_problem(method, steps, mu, L, momentum, metric, exact=True, units=problem.units,
                              row_scale=problem.row_scale)
        check, bonus, mixture = _certify(problem, rows, solution, exact, problem.dim <= exact_max_dim)
        details.update(check_route=check.route, check=check.reason, tau_star=check.tau_star * scale,
                       tau_increase=check.tau_increase * scale, min_pivot=check.min_pivot, margin=check.margin,
                       balance_shift=check.balance_shift, trace_bonus=bonus, mixture=mixture)
    certified = solution.status == "optimal" and check is not None and check.ok
    if certified:
        value = _scaled_up(check.tau, scale)
        if metric == "distance":
            details["squared"] = value  # PEPit's normalisation: the worst ‖x_K − x*‖² / ‖x_0 − x*‖², certified
            value = _sqrt_up(value)
        certificate = {"tau": check.tau, "objective_unit": scale,
                       "multipliers": [str(q) for q in check.multipliers], "route": check.route,
                       "row_scale": [float(r) for r in problem.row_scale],
                       "iterate_leaf": [bool(v) for v in problem.units.iterate_leaf]}
    else:
        value = _in_units(solution.dual * scale, metric) if np.isfinite(solution.dual) else np.inf  # the solver's claim
        certificate = None
        reason = [] if solution.status == "optimal" else [f"solver status {solution.status!r}"]
        if check is not None and not check.ok:
            reason.append(check.reason)
        details["reason"] = "; ".join(reason) or "no multipliers returned"
    return Bound(value=value, kind="upper", quantity=quantity, method="pep (cvxpy + Clarabel; dual multipliers checked)",
                 certified=certified, certificate=certificate, seconds=time.perf_counter() - start, details=details)


def _in_units(squared: float, metric: str) -> float:
    """A PEP value in the Bound's units: the square root (of its positive part) for the distance metric."""
    if metric != "distance" or not np.isfinite(squared):
        return squared
    return float(np.sqrt(max(squared, 0.0)))


def _sqrt_up(value: float) -> float:
    """The smallest float64 ``≥ √value`` (decided exactly in rationals)."""
    if value == np.inf:
        return value
    root = float(np.sqrt(value))
    return root if Fraction(root) ** 2 >= Fraction(value) else float(np.nextafter(root, np.inf))


def _scaled_up(tau: float, unit: float) -> float:
    """The smallest float64 ``≥ τ·unit`` (exact for a power-of-two unit unless the product under- or
    overflows; rounded up then, so the certified value never drops below what the multipliers prove)."""
    exact = Fraction(tau) * Fraction(unit)
    value = float(exact) if abs(exact) < Fraction(np.finfo(float).max) else np.inf
    return value if value == np.inf or Fraction(value) >= exact else float(np.nextafter(value, np.inf))


@dataclass(frozen=True)
class ScheduleRates:
    """The learned step schedule of a model, certified by PEP next to the classical fixed step, and the
    detected method (:class:`~unfoldtheory.convergence.detect.DetectedMethod`) it was read from."""

    learned: Bound
    classical: Bound
    steps: np.ndarray
    classical_step: float
    mu: float
    L: float
    metric: str
    model: str
    certifies: str
    detected: DetectedMethod | None = None

    @property
    def ratio(self) -> float:
        """Learned worst case / classical worst case (< 1: the learned schedule is better in the worst case)."""
        return self.learned.value / self.classical.value if self.classical.value > 0 else float("inf")


def _spec_of(model: Any) -> tuple[NetworkSpec, str]:
    if isinstance(model, NetworkSpec):
        return model, model.name
    if not callable(getattr(model, "spec", None)):
        raise ValueError(f"pep_rate_of takes a NetworkSpec or a model with .spec(); got {type(model).__name__}")
    check_finite_parameters(model)
    return model.spec(), type(model).__name__


def _certifies(name: str, detected: DetectedMethod) -> str:
    if detected.surrogate is not None:
        text = f"{name}: {detected.surrogate}"
    else:
        text = (f"{name}'s layers detected as {detected.method} with steps γ_k on f = ½‖Ax − y‖² (A implied by the "
                "weights)")
        if detected.pep_method == "proximal_gradient":
            text += (" plus a convex h; exact for the network" if detected.same_prox else
                     " plus any convex h; the per-layer proxes (learned thresholds θ_k ≠ γ_k·λ) are not covered")
    if detected.covers_network:
        return text + f" (detection residual {detected.residual:.2g}: float64 rounding)"
    return text + (f"; detection residual {detected.residual:.2g} > {ROUNDING:g}: certified for the classical method with "
                   "these constants, not for the given network")


def pep_rate_of(model: Any, metric: str | None = None, *, A: Any = None, tol: float = TOLERANCE,
                **options: Any) -> ScheduleRates:
    """Certified worst case of the classical method that ``model``'s layers are, detected from its weights
    (:func:`~unfoldtheory.convergence.detect.detect_method`), next to the same method with the fixed step ``1/L``.

    ``model`` is a :class:`~unfoldtheory.spec.NetworkSpec` or anything with ``.spec()`` (every built-in
    model). ``A`` defaults to ``model.A_numpy()`` when the model has it; otherwise the A implied by the
    weights is used. ``tol`` is the detection's relative residual.

    **Function class.** ``f(x) = ½‖Ax − y‖²`` is L-smooth with ``L = ‖A‖₂²`` and μ-strongly convex
    with ``μ = λ_min(AᵀA)``, which is 0 when ``n > m`` (safe bounds: :func:`~.psd_bound.gram_extremes`, in the detection);
    proximal layers (soft threshold, ReLU, box, ...) add a convex h, so the method is
    ``"proximal_gradient"``; identity layers are ``"gradient"`` and identity layers with momentum
    ``"accelerated"``. **Metric.** Default ``"distance"`` (the unsquared rate ``‖x_K − x*‖/‖x_0 − x*‖``) when
    ``μ > 0``; when ``μ = 0`` the distance worst case is 1 for every schedule with steps ≤ 2/L (f may be
    flat around x*), so the default is ``"function_value"`` (worst ``(F(x_K) − F*)/‖x_0 − x*‖²``).

    **What is certified** (``certifies``, also in each Bound's ``details``): the detected classical method
    with the detected constants. Within float64 rounding of the weights it is the network; with a larger
    detection residual only the classical method. Learned thresholds ``θ_k ≠ γ_kλ`` mean a different h
    per layer: then the step schedule is certified on a fixed ``F = f + h``, not the thresholds. ALISTA's
    update ``x − γ_k W̃ᵀ(Ax − y)`` is not a gradient step on f: its steps are certified *used as
    proximal gradient steps* (what ISTA with ALISTA's steps guarantees), not ALISTA's own iterates.

    ``options`` go to :func:`pep_rate`. A network whose layers are no detected method raises a ValueError
    with the detection's reason (e.g. a step ``≤ 0``, naming the layer).
    """
    spec, name = _spec_of(model)
    if A is None and callable(getattr(model, "A_numpy", None)):
        A = model.A_numpy()
    detected = detect_method(spec, A=A, tol=tol)
    if not detected.detected:
        raise ValueError(f"{name}: no classical method with a PEP was detected in its layers: {detected.reason}")
    steps, mu, L = detected.steps, detected.mu, detected.L
    if metric is None:
        metric = "distance" if mu > 0 else "function_value"
    certifies = _certifies(name, detected)
    classical_step = 1.0 / float(np.linalg.norm(detected.A, 2) ** 2)
    method, momentum = detected.pep_method, detected.momentum
    learned = pep_rate(steps, mu, L, method, momentum, metric, **options)
    classical = pep_rate(np.full(steps.size, classical_step), mu, L, method, None, metric, **options)
    learned = learned.replace(details={**learned.details, "certifies": certifies, "model": name,
                                       "detected": detected.method, "detection_residual": detected.residual,
                                       "covers_network": detected.covers_network and detected.surrogate is None})
    reference = "FISTA's momentum" if method == "accelerated" else "no momentum"
    classical = classical.replace(details={**classical.details, "model": "classical",
                                           "certifies": f"the same method with the fixed step 1/L ({reference}) on the same "
                                                        "class"})
    return ScheduleRates(learned, classical, steps, classical_step, mu, L, metric, name, certifies, detected)
