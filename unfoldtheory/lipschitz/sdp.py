"""LipSDP-Neuron over a spec's graph, solved by cvxpy, certified by :mod:`.certificate`.

``min ρ  s.t.  M(ρ, λ) ⪯ 0, λ ≥ 0`` (Fazlyab et al., NeurIPS 2019) with one multiplier per neuron
of a separable layer and one per non-separable firmly nonexpansive block
(:mod:`.quadratic_form`). The solver's ρ is never reported: the multipliers it returns are
checked by :func:`~.certificate.certify_multipliers`, and the certified value is the one they
prove. A solver status other than optimal still yields a certified bound if its multipliers pass
the check, and none otherwise.

This is the plain dense formulation (one LMI of size m + Σ_k d_k); it suits small and medium
networks.
"""

from __future__ import annotations

import contextlib
import time
import warnings

import numpy as np
from scipy import sparse

from unfoldtheory.lipschitz.certificate import QUANTITY, bound_from_multipliers
from unfoldtheory.lipschitz.product import product_bound
from unfoldtheory.lipschitz.quadratic_form import quadratic_form
from unfoldtheory.lipschitz.sequential import sequential_bound
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec

SOLVERS = ("SCS", "CLARABEL")
STRICTNESS = 1e-6


def sdp_bound(spec: NetworkSpec, solver: str = "SCS", max_size: int = 1500) -> Bound:
    """Certified LipSDP-Neuron upper bound (see the module docstring).

    ``solver`` names the cvxpy solver (SCS by default: it is the faster one here, and its answer
    is verified anyway). Matrices larger than ``max_size`` are refused with a ValueError.
    """
    import cvxpy as cp

    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"sdp_bound takes a NetworkSpec, got {type(spec).__name__}")
    if solver not in SOLVERS:
        raise ValueError(f"solver {solver!r} is not supported; choose one of {SOLVERS}")
    start = time.perf_counter()
    form = quadratic_form(spec)
    if form.size > max_size:
        raise ValueError(f"the LipSDP matrix has size {form.size} > max_size = {max_size}; the dense formulation "
                         "would be too large or too slow (raise max_size to try anyway)")
    # scale so that the data are O(1): L(c·f) = c·L(f); ρ scales by c²
    scale = max(float(abs(form.CtC).sum(axis=1).max()), 1e-300)  # ‖CᵀC‖_∞ ≥ ‖CᵀC‖₂
    # and the input by a congruence T = diag(σ I_y, I): TᵀMT ⪯ 0 ⟺ M ⪯ 0 with the same multipliers and
    # ρ̃ = σ²ρ, σ = 1/(a cheap upper bound on L), so that ρ̃ is O(1) and the solver's absolute tolerances and
    # the strictness margin below stay small against it (they swamp ρ when the map is tiny, e.g. L ≈ 1e-5)
    sigma = _input_scale(spec, scale)
    T = sparse.diags(np.concatenate([np.full(form.m, sigma), np.ones(form.size - form.m)]))
    Fa, Fb, CtC = form.Fa @ T, form.Fb @ T, T @ form.CtC @ T
    lam = cp.Variable(form.num_multipliers, nonneg=True)
    rho = cp.Variable(nonneg=True)
    weights = np.zeros((form.Fa.shape[0], form.num_multipliers))
    for g, rows in enumerate(form.groups):
        weights[rows, g] = 1.0
    w = weights @ lam
    S = Fa.T @ cp.diag(w) @ Fb
    Ein = np.zeros((form.size, form.size))
    Ein[: form.m, : form.m] = np.eye(form.m)
    M = CtC / scale + 0.5 * (S + S.T) - rho * Ein
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
    multipliers = np.maximum(np.asarray(lam.value, dtype=float), 0.0) * scale
    solver_rho = float(rho.value) * scale / sigma**2 if rho.value is not None else None
    return bound_from_multipliers(form, multipliers, "lipsdp-neuron", start,
                                  {"solver": solver, "status": problem.status, "solver_rho": solver_rho})


def _input_scale(spec: NetworkSpec, scale: float) -> float:
    """``σ`` ≈ 1 / (the smaller of the product and sequential bounds) in the units where ``‖CᵀC‖`` is 1, a
    power of two (exact scaling) within ``2^±20``; 1 if neither is finite and positive."""
    estimates = [product_bound(spec).value]
    with contextlib.suppress(ValueError):  # not a chain with input injection: the product bound alone
        estimates.append(sequential_bound(spec, sweeps=1).value)
    estimate = min(estimates) / np.sqrt(scale)
    if not (np.isfinite(estimate) and estimate > 0):
        return 1.0
    # at most 2^±20: a map that is tiny only through a late layer (e.g. subnormal weights there) would
    # otherwise blow up the input columns of the early ones
    return float(np.ldexp(1.0, int(np.clip(-np.round(np.log2(estimate)), -20, 20))))


def _failed(reason: str, start: float, solver: str) -> Bound:
    return Bound(np.inf, "upper", QUANTITY, "lipsdp-neuron", False, None, time.perf_counter() - start,
                 {"solver": solver, "check": reason})
