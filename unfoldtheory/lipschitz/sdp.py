"""LipSDP-Neuron over a spec's graph, solved by :mod:`.structured_ipm` or cvxpy, certified by :mod:`.certificate`.

``min ρ  s.t.  M(ρ, λ) ⪯ 0, λ ≥ 0`` (Fazlyab et al., NeurIPS 2019) with one multiplier per neuron
of a separable layer and one per non-separable firmly nonexpansive block
(:mod:`.quadratic_form`). The solver's ρ is never reported: the multipliers it returns are
checked by :func:`~.certificate.certify_multipliers`, and the certified value is the one they
prove. A solver status other than optimal still yields a certified bound if its multipliers pass
the check, and none otherwise.

Both solvers work on the dense LMI of size m + Σ_k d_k, so this suits small and medium networks;
the structured solver's cost per iteration is O(size³) instead of a generic solver's
O(size² · multipliers²)-sized systems.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from unfoldtheory.lipschitz import structured_ipm
from unfoldtheory.lipschitz.certificate import QUANTITY, bound_from_multipliers
from unfoldtheory.lipschitz.product import product_bound
from unfoldtheory.lipschitz.quadratic_form import QuadraticForm, quadratic_form
from unfoldtheory.lipschitz.sequential import sequential_bound
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.validation import time_budget_seconds

SOLVERS = ("structured", "SCS", "CLARABEL")
STRICTNESS = 1e-6
#: the structured solver forms products of four data entries (its Schur complement): beyond this the float64
#: iterates would overflow, and the solve is refused with that reason
FLOAT64_SAFE = 1e75


def sdp_bound(spec: NetworkSpec, solver: str = "structured", max_size: int = 1500,
              time_budget: float | None = None) -> Bound:
    """Certified LipSDP-Neuron upper bound (see the module docstring).

    ``solver`` is ``"structured"`` (the default: this package's primal–dual interior-point method,
    :mod:`.structured_ipm`, which builds its Schur complement from the rank-two neuron constraints
    and is tens to hundreds of times faster than a generic solver here), or a cvxpy solver, ``"SCS"``
    or ``"CLARABEL"`` (the plain dense formulation). Every answer is verified anyway. Matrices larger
    than ``max_size`` are refused with a ValueError. ``time_budget`` (seconds) bounds the structured
    solver; the cvxpy solvers run to their own stopping rules.
    """
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"sdp_bound takes a NetworkSpec, got {type(spec).__name__}")
    if solver not in SOLVERS:
        raise ValueError(f"solver {solver!r} is not supported; choose one of {SOLVERS}")
    if time_budget is not None:
        time_budget = time_budget_seconds(time_budget)
    start = time.perf_counter()
    return _sdp_on_form(spec, quadratic_form(spec), solver, max_size, time_budget, start)


def _sdp_on_form(spec: NetworkSpec, form: QuadraticForm, solver: str, max_size: int, time_budget: float | None,
                      start: float, estimate: float | None = None) -> Bound:
    """:func:`sdp_bound` on ``spec``'s already built ``form = quadratic_form(spec)`` (arguments already checked;
    ``start`` is when the caller's clock began). ``estimate``: an upper bound on L that the caller has already
    computed (the structured solver's first input scale; default: the product bound)."""
    if form.size > max_size:
        raise ValueError(f"the LipSDP matrix has size {form.size} > max_size = {max_size}; the dense formulation "
                         "would be too large or too slow (raise max_size to try anyway)")
    if solver == "structured":
        with structured_ipm.one_blas_thread(form.size):  # the solve and the check's block factorisation
            return _structured_bound(spec, form, start, time_budget, estimate)
    data = scaled_data(spec, form)
    return _cvxpy_bound(form, data, solver, start)


@dataclass(frozen=True)
class ScaledData:
    """The LipSDP data after the two exact rescalings (``CᵀC/scale`` and the input congruence ``σ``)."""

    CtC: np.ndarray
    Fa: sparse.csr_matrix
    Fb: sparse.csr_matrix
    scale: float
    sigma: float


def scaled_data(spec: NetworkSpec, form: QuadraticForm, estimate: float | None = None) -> ScaledData:
    """Scale so that the data are O(1): ``L(c·f) = c·L(f)``, so ρ scales by c² and the multipliers by
    ``scale``; and scale the input by a congruence ``T = diag(σI_y, I)``: ``TᵀMT ⪯ 0 ⟺ M ⪯ 0`` with the
    same multipliers and ``ρ̃ = σ²ρ``, ``σ = 1/(a cheap upper bound on L)``, so that ρ̃ is O(1) and a
    solver's absolute tolerances and the strictness margin stay small against it (they would swamp ρ
    when the map is tiny, e.g. L ≈ 1e-5). ``estimate`` is an upper bound on L if the caller has one
    (default: the smaller of the product and one-sweep sequential bounds)."""
    scale = max(float(abs(form.CtC).sum(axis=1).max()), 1e-300)  # ‖CᵀC‖_∞ ≥ ‖CᵀC‖₂
    sigma = _input_scale(spec, scale, estimate)
    T = sparse.diags(np.concatenate([np.full(form.m, sigma), np.ones(form.size - form.m)]))
    return ScaledData((T @ form.CtC @ T).toarray() / scale, (form.Fa @ T).tocsr(), (form.Fb @ T).tocsr(),
                      scale, sigma)


def _structured_bound(spec: NetworkSpec, form: QuadraticForm, start: float, time_budget: float | None,
                      estimate: float | None = None) -> Bound:
    """The structured interior-point solve, with ``σ`` from ``estimate`` (default: the product bound alone, cheap)
    and one re-solve with ``σ`` from the solver's own ρ when that estimate was more than 8× loose (ρ̃ < 1/64)."""
    deadline = None if time_budget is None else start + time_budget
    G, solves = form.group_matrix.toarray(), []
    if estimate is None:
        estimate = product_bound(spec).value
    for _ in range(2):
        data = scaled_data(spec, form, estimate=estimate)
        peak = max(float(np.max(np.abs(data.Fa.data), initial=0.0)), float(np.max(np.abs(data.Fb.data), initial=0.0)))
        if not peak < FLOAT64_SAFE:
            return _failed(f"the scaled LipSDP data reach {peak:.3g}: the structured solver's Schur complement (products "
                           "of four data entries) would overflow in float64", start, "structured")
        with np.errstate(all="ignore"):  # the solver only proposes: an iterate that overflows fails the check
            result = structured_ipm.solve(structured_ipm.StructuredLMI(
                data.CtC, data.Fa.toarray(), data.Fb.toarray(), G, form.m, STRICTNESS, form.offsets), deadline=deadline)
        solves.append({"sigma": data.sigma, "status": result.status, "iterations": result.iterations,
                       "seconds": result.seconds})
        loose = result.status == "optimal" and 0 < result.rho < 1 / 64
        if not loose or (deadline is not None and time.perf_counter() > deadline):
            break
        estimate = np.sqrt(result.rho * data.scale) / data.sigma
    if not np.all(np.isfinite(result.lam)):
        return _failed(f"the structured solver stopped ({result.status}) with non-finite multipliers", start, "structured")
    details = {"solver": "structured", "status": result.status, "iterations": result.iterations,
               "solver_rho": result.rho * data.scale / data.sigma**2, "relative_gap": result.gap,
               "primal_infeasibility": result.primal_infeasibility, "dual_infeasibility": result.dual_infeasibility,
               "solves": solves}
    return bound_from_multipliers(form, np.maximum(result.lam, 0.0) * data.scale, "lipsdp-neuron", start, details)


def _cvxpy_bound(form: QuadraticForm, data: ScaledData, solver: str, start: float) -> Bound:
    """The plain dense formulation in cvxpy."""
    import cvxpy as cp

    lam = cp.Variable(form.num_multipliers, nonneg=True)
    rho = cp.Variable(nonneg=True)
    w = form.group_matrix @ lam
    S = data.Fa.T @ cp.diag(w) @ data.Fb
    Ein = np.zeros((form.size, form.size))
    Ein[: form.m, : form.m] = np.eye(form.m)
    M = data.CtC + 0.5 * (S + S.T) - rho * Ein
    # strict feasibility in the state block (Z ⪯ −δI) so that the check's Schur complement exists;
    # it costs O(δ) in ρ, and only the checked value is reported anyway
    strict = STRICTNESS * (np.eye(form.size) - Ein)
    problem = cp.Problem(cp.Minimize(rho), [0.5 * (M + M.T) + strict << 0])
    try:
        with warnings.catch_warnings():
            # "Solution may be inaccurate": the status is kept in details, and the check decides
            warnings.filterwarnings("ignore", message="Solution may be inaccurate", category=UserWarning)
            problem.solve(solver=getattr(cp, solver))
    except cp.error.SolverError as exc:
        return _failed(f"{solver} failed: {exc}", start, solver)
    if lam.value is None:
        return _failed(f"{solver} returned status {problem.status!r} and no multipliers", start, solver)
    multipliers = np.maximum(np.asarray(lam.value, dtype=float), 0.0) * data.scale
    solver_rho = float(rho.value) * data.scale / data.sigma**2 if rho.value is not None else None
    return bound_from_multipliers(form, multipliers, "lipsdp-neuron", start,
                                  {"solver": solver, "status": problem.status, "solver_rho": solver_rho})


def _input_scale(spec: NetworkSpec, scale: float, estimate: float | None = None) -> float:
    """``σ`` ≈ 1 / ``estimate`` (default: the smaller of the product and sequential bounds) in the units where
    ``‖CᵀC‖`` is 1, a power of two (exact scaling) within ``2^±20``; 1 if the estimate is not finite and positive."""
    if estimate is None:
        estimates = [product_bound(spec).value]
        with contextlib.suppress(ValueError):  # not a chain with input injection: the product bound alone
            estimates.append(sequential_bound(spec, sweeps=1).value)
        estimate = min(estimates)
    estimate = estimate / np.sqrt(scale)
    if not (np.isfinite(estimate) and estimate > 0):
        return 1.0
    # at most 2^±20: a map that is tiny only through a late layer (e.g. subnormal weights there) would
    # otherwise blow up the input columns of the early ones
    return float(np.ldexp(1.0, int(np.clip(-np.round(np.log2(estimate)), -20, 20))))


def _failed(reason: str, start: float, solver: str) -> Bound:
    return Bound(np.inf, "upper", QUANTITY, "lipsdp-neuron", False, None, time.perf_counter() - start,
                 {"solver": solver, "check": reason}, reason=reason)
