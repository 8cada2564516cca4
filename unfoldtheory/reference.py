"""Reference solutions of the Lasso ``min ½‖Ax − y‖² + λ‖x‖₁``, one per row of ``Y``.

Two independent routes:

* ``method="cvxpy"``: each instance solved by cvxpy with Clarabel (named explicitly, tolerances
  1e-12, data scaled to ‖y‖∞ = 1 and scaled back). It is the reference that the package's own
  solver is checked against.
* ``method="certified"``: a batched solver of the package's own (FISTA with adaptive restart,
  vectorised over the batch, plus a primal–dual active-set polish on the identified support)
  that stops only when the rigorous relative duality gap is at most ``tol`` (default 1e-10).
  The gap, recomputed from the returned ``x`` with an explicit dual point ``u`` that is feasible in
  exact arithmetic (:func:`unfoldtheory.lasso.certified_gap`), is the certificate:
  ``P(x) − P(x*) ≤ P(x) − D(u) ≤ gap`` on the float64 data.

Both return a :class:`LassoSolution`; its ``duality_gap`` is computed the same way for both. A row
whose relative gap exceeds ``tol`` while the float64 resolution of the certificate does too (λ near
the float floor relative to ‖y‖, say) is reported ``"inaccurate: …"`` with the resolution, never
``"optimal"``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from unfoldtheory.activations import soft_threshold
from unfoldtheory.lasso import certified_gap
from unfoldtheory.validation import as_finite_array, finite_float, positive_int

DEFAULT_TOL = 1e-10
#: Clarabel's tolerances for the reference, tighter than its defaults (1e-8): at unit scale they cost
#: almost no time and bring cvxpy's relative duality gap to ~1e-11.
CLARABEL_OPTIONS = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12}


@dataclass(frozen=True, eq=False)
class LassoSolution:
    """Per-row Lasso solutions.

    Attributes
    ----------
    x: (batch, n) solutions (NaN rows where a solver returned none or a non-finite one).
    objective: (batch,) primal values ``P(x)``.
    duality_gap: (batch,) a rigorous upper bound on ``P(x) − D(u) ≥ P(x) − P(x*)``, recomputed from
        ``x`` (exact arithmetic on the float64 data; ``inf`` where none).
    relative_gap: (batch,) ``duality_gap / objective_lower`` rounded up: an upper bound on
        ``(P(x) − P(x*))/P(x)``.
    status: per row, for the certified solver ``"optimal"`` when the relative gap is within ``tol``,
        else ``"inaccurate: …"`` (the float64 resolution of the certificate exceeds ``tol`` too; the
        message gives it) or ``"max_iterations"``; for cvxpy its status string, with ``"optimal"``
        replaced by ``"inaccurate: …"`` on the same condition; ``"failed: …"`` where ``x`` is not finite.
    method, seconds, iterations: how it was solved.
    dual: (batch, m) the certificates' dual points ``u`` (``‖Aᵀu‖∞ ≤ λ`` exactly; 0 for failed rows).
    objective_lower: (batch,) a rigorous lower bound on ``P(x)`` (NaN for failed rows).
    gap_resolution: (batch,) the relative float64 resolution of the certificate
        (:func:`unfoldtheory.lasso.certified_gap`): relative gaps below it cannot be certified.
    """

    x: np.ndarray
    objective: np.ndarray
    duality_gap: np.ndarray
    relative_gap: np.ndarray
    status: list[str]
    method: str
    seconds: float
    iterations: np.ndarray
    dual: np.ndarray | None = None
    objective_lower: np.ndarray | None = None
    gap_resolution: np.ndarray | None = None

    @property
    def all_optimal(self) -> bool:
        """True when every row has status ``"optimal"``."""
        return all(s == "optimal" for s in self.status)


def lasso(A: Any, Y: Any, lam: float, method: Literal["cvxpy", "certified"] = "cvxpy", *,
          tol: float = DEFAULT_TOL, max_iter: int = 20_000, progress: bool | None = None) -> LassoSolution:
    """Solve ``min_x ½‖Ax − y‖² + λ‖x‖₁`` for every row ``y`` of ``Y``.

    Parameters
    ----------
    A: (m, n) matrix.
    Y: (batch, m) right-hand sides (a single (m,) vector is a batch of one).
    lam: λ > 0.
    method: ``"cvxpy"`` (Clarabel, per instance) or ``"certified"`` (batched, gap-certified).
    tol: relative duality gap at which the certified solver stops; for both methods, a row above it
        whose certificate cannot resolve it in float64 is reported ``"inaccurate: …"``.
    max_iter: iteration cap of the certified solver; rows that reach it get status
        ``"max_iterations"`` and keep their (honest) gap.
    progress: show a progress bar (None: only on a terminal).
    """
    A = as_finite_array(A, "A", ndim=2)
    if A.shape[0] == 0 or A.shape[1] == 0:
        raise ValueError(f"A has shape {A.shape}; it needs at least one row and one column")
    Y = as_finite_array(Y, "Y", ndim=(1, 2))
    Y = Y[None, :] if Y.ndim == 1 else Y
    if Y.shape[0] == 0:
        raise ValueError("Y is empty: it has no rows to solve")
    if Y.shape[1] != A.shape[0]:
        raise ValueError(f"Y has {Y.shape[1]} columns; expected m = {A.shape[0]} (rows of A)")
    lam = finite_float(lam, "lam", low=0.0, low_open=True)
    tol = finite_float(tol, "tol", low=0.0, low_open=True)
    max_iter = positive_int(max_iter, "max_iter")
    start = time.perf_counter()
    if method == "cvxpy":
        X, status, iters = _solve_cvxpy(A, Y, lam, progress)
    elif method == "certified":
        X, iters = _solve_certified_scaled(A, Y, lam, tol, max_iter, progress)
        status = [None] * Y.shape[0]
    else:
        raise ValueError(f"method {method!r} is not known; choose 'cvxpy' or 'certified'")
    failed = ~np.isfinite(X).all(axis=1)
    cert = certified_gap(A, np.where(failed[:, None], 0.0, X), Y, lam)
    gap, primal, lower, rel, res = cert.gap, cert.primal, cert.primal_lower, cert.relative, cert.relative_resolution
    gap[failed], primal[failed], lower[failed], rel[failed], res[failed] = np.inf, np.nan, np.nan, np.inf, np.inf
    cert.dual[failed] = 0.0
    status = [_status(method, status[i], rel[i], res[i], tol)
              if not (failed[i] and (method == "certified" or status[i] == "optimal"))
              else "failed: the solution left the float64 range (non-finite x)" for i in range(Y.shape[0])]
    X = np.where(failed[:, None], np.nan, X)
    return LassoSolution(X, primal, gap, rel, status, method, time.perf_counter() - start, iters,
                         cert.dual, lower, res)


def _status(method: str, solver_status: str | None, rel: float, resolution: float, tol: float) -> str:
    """A row's status from its rigorous relative gap: ``"optimal"`` (certified solver) or the solver's
    status (cvxpy) unless the gap exceeds ``tol`` and the certificate's float64 resolution does too."""
    unresolved = rel > tol and resolution > tol
    if unresolved and (method == "certified" or solver_status == "optimal"):
        return (f"inaccurate: the duality gap cannot be resolved in float64 below {resolution:.1e} relative "
                f"(tolerance {tol:.1e}): the rounding error of the residual y − Ax moves the dual certificate by that much")
    if method == "cvxpy":
        return str(solver_status)
    return "optimal" if rel <= tol else "max_iterations"


def _solve_cvxpy(A: np.ndarray, Y: np.ndarray, lam: float, progress: bool | None) -> tuple[np.ndarray, list[str], np.ndarray]:
    import cvxpy as cp

    m, n = A.shape
    x = cp.Variable(n)
    y = cp.Parameter(m)
    weight = cp.Parameter(nonneg=True)
    problem = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(A @ x - y) + weight * cp.norm1(x)))
    X = np.full((Y.shape[0], n), np.nan)
    status, iters = [], np.zeros(Y.shape[0], dtype=int)
    for i in tqdm(range(Y.shape[0]), desc="Lasso (cvxpy/Clarabel)", disable=_disabled(progress)):
        # The Lasso is homogeneous: x*(c·y, c·λ) = c·x*(y, λ). Solving at unit scale keeps Clarabel's
        # absolute tolerances meaningful for tiny or huge data.
        scale = max(float(np.abs(Y[i]).max()), lam)  # ‖y‖∞, not ‖y‖₂: it cannot overflow
        y.value = Y[i] / scale
        weight.value = lam / scale
        try:
            problem.solve(solver=cp.CLARABEL, **CLARABEL_OPTIONS)
        except cp.error.SolverError as exc:
            status.append(f"solver_error: {exc}")
            continue
        status.append(str(problem.status))
        if x.value is not None:
            X[i] = scale * x.value
        iters[i] = problem.solver_stats.num_iters or 0
    return X, status, iters


def _disabled(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


def _solve_certified_scaled(A: np.ndarray, Y: np.ndarray, lam: float, tol: float, max_iter: int,
                            progress: bool | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_solve_certified` on ``(2^-a A, 2^-b Y, 2^(-a-b) λ)`` with ``max|A|``, ``max|Y|`` in [½, 1), so that
    ``AᵀA`` and the iterates neither overflow nor underflow; ``x = 2^(b-a) x'``. The Lasso is invariant under this
    change of variables (``A'x' − y' = 2^-b (Ax − y)``, ``P' = 4^-b P``); where λ would not scale exactly the data
    are solved as they are. The certificate is recomputed on the original data either way."""
    amax, ymax = float(np.abs(A).max()), float(np.abs(Y).max())
    a = math.frexp(amax)[1] if amax > 0 else 0
    b = math.frexp(ymax)[1] if ymax > 0 else 0
    lam_s = math.ldexp(lam, -a - b)
    if not (lam_s > 0 and math.isfinite(lam_s) and math.ldexp(lam_s, a + b) == lam):
        return _solve_certified(A, Y, lam, tol, max_iter, progress)
    with np.errstate(under="ignore"):
        X, iters = _solve_certified(np.ldexp(A, -a), np.ldexp(Y, -b), lam_s, tol, max_iter, progress)
        with np.errstate(over="ignore"):
            return np.ldexp(X, b - a), iters


def _solve_certified(A: np.ndarray, Y: np.ndarray, lam: float, tol: float, max_iter: int,
                     progress: bool | None, check_every: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Batched FISTA with gradient-based adaptive restart (O'Donoghue & Candès 2015), checked
    every ``check_every`` iterations; rows whose support has settled are polished by a
    primal–dual active-set step (:func:`_active_set_polish`). A row stops when its relative gap
    is at most ``tol``; only the gap decides, so the polish can speed up but never fake
    convergence."""
    batch, n = Y.shape[0], A.shape[1]
    G = A.T @ A
    AtY = Y @ A
    L = float(np.linalg.eigvalsh(G)[-1]) * (1 + 1e-12) if n else 1.0
    if L <= 0:  # A = 0: x = 0 is optimal
        return np.zeros((batch, n)), np.zeros(batch, dtype=int)
    step = 1.0 / L
    X_out = np.zeros((batch, n))
    iters = np.full(batch, max_iter, dtype=int)
    rows = np.arange(batch)
    X = np.zeros((batch, n))
    Z = X.copy()
    t = np.ones(batch)
    last_support = np.zeros((batch, n), dtype=bool)
    bar = tqdm(total=batch, desc="Lasso (certified)", disable=_disabled(progress))
    it = 0
    while rows.size and it < max_iter:
        for _ in range(min(check_every, max_iter - it)):
            Xn = soft_threshold(Z - step * (Z @ G - AtY[rows]), step * lam)
            restart = np.einsum("ij,ij->i", Z - Xn, Xn - X) > 0
            tn = np.where(restart, 1.0, 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t)))
            beta = np.where(restart, 0.0, (t - 1.0) / tn)
            Z = Xn + beta[:, None] * (Xn - X)
            X, t = Xn, tn
            it += 1
        cert = certified_gap(A, X, Y[rows], lam)
        primal, rel = cert.primal, cert.relative
        support = X != 0
        settled = np.all(support == last_support, axis=1) & (rel > tol)
        last_support = support
        idx = np.flatnonzero(settled)
        if idx.size:
            kept, cands, crel = _polished(A, G, AtY[rows[idx]], Y[rows[idx]], lam, X[idx], step, primal[idx], rel[idx])
            X[idx[kept]], Z[idx[kept]], t[idx[kept]], rel[idx[kept]] = cands, cands, 1.0, crel
        done = rel <= tol
        if done.any():
            X_out[rows[done]] = X[done]
            iters[rows[done]] = it
            keep = ~done
            rows, X, Z, t, last_support = rows[keep], X[keep], Z[keep], t[keep], last_support[keep]
            bar.update(int(done.sum()))
    bar.close()
    X_out[rows] = X  # rows that hit max_iter keep their last iterate and their honest gap
    # A final polish of every row: where it reaches the tolerance too it is the exact solution of the
    # optimality system on the identified support, so x* itself, not just P(x*), is accurate to rounding.
    cert = certified_gap(A, X_out, Y, lam)
    primal, rel = cert.primal, cert.relative
    kept, cands, _ = _polished(A, G, AtY, Y, lam, X_out, step, primal, np.maximum(rel, tol))
    X_out[kept] = cands
    return X_out, iters


def _polished(A: np.ndarray, G: np.ndarray, AtY: np.ndarray, Y: np.ndarray, lam: float, X: np.ndarray, step: float,
              primal: np.ndarray, rel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The active-set polish of each row of ``X``, kept only if it lowers the objective and reaches a
    relative gap no larger than ``rel`` (so a polish can never undo progress or cycle). Returns the
    indices of the rows kept, their polished points and their relative gaps (one batched certificate)."""
    found = [(i, c) for i in range(X.shape[0]) if (c := _active_set_polish(G, AtY[i], lam, X[i], step)) is not None]
    if not found:
        return np.zeros(0, dtype=int), np.zeros((0, X.shape[1])), np.zeros(0)
    idx = np.array([i for i, _ in found])
    cands = np.array([c for _, c in found])
    cert = certified_gap(A, cands, Y[idx], lam)
    ok = (cert.primal <= primal[idx] * (1 + 1e-12)) & (cert.relative <= rel[idx])  # slack: P(x*) may round above P(x)
    return idx[ok], cands[ok], cert.relative[ok]


def _active_set_polish(G: np.ndarray, aty: np.ndarray, lam: float, x: np.ndarray, step: float,
                       max_steps: int = 6) -> np.ndarray | None:
    """Primal–dual active-set iterations (Fan, Jiao & Lu 2014) from ``x``.

    With ``v = x + step·Aᵀ(y − Ax)``, the active set is ``S = {|v_i| > step·λ}`` with signs
    ``s = sign(v_S)``; the new point solves the optimality system on S:
    ``A_SᵀA_S x_S = A_Sᵀy − λ s``, ``x_{S^c} = 0``. Stops when S repeats; returns None when a
    system has no accurate solution (a singular ``A_SᵀA_S``, say).
    """
    prev = None
    for _ in range(max_steps):
        v = x + step * (aty - G @ x)
        S = np.flatnonzero(np.abs(v) > step * lam)
        key = (S.tobytes(), np.sign(v[S]).tobytes())
        if key == prev:
            break
        prev = key
        x = np.zeros_like(x)
        if S.size:
            GS, rhs = G[np.ix_(S, S)], aty[S] - lam * np.sign(v[S])
            # lstsq also handles a singular A_SᵀA_S (duplicated columns), where the system is still
            # consistent and its minimum-norm solution satisfies the optimality conditions.
            sol = np.linalg.lstsq(GS, rhs, rcond=None)[0]
            if not np.all(np.isfinite(sol)) or np.linalg.norm(GS @ sol - rhs) > 1e-8 * max(np.linalg.norm(rhs), 1.0):
                return None
            x[S] = sol
    return x
