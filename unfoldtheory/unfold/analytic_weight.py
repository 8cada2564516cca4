"""ALISTA's analytic weight (Liu, Chen, Wang & Yin, ICLR 2019, eq. (13)–(14)).

    W̃ = argmin_W ‖WᵀA‖_F²   subject to   (W_{:,i})ᵀA_{:,i} = 1 for every column i,

a data-free convex program. It separates by column into ``min_w ‖Aᵀw‖²`` s.t. ``a_iᵀw = 1``; with
``M = AAᵀ = RᵀR`` the objective is ``‖R W‖_F²``, which keeps the cvxpy problem at m·n variables.
The solution is solved with Clarabel (named), rescaled column by column so that the constraint
holds to rounding, and then checked: a status other than optimal, or a residual
``max_i |w_iᵀa_i − 1| > 1e-9``, raises.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unfoldtheory.validation import as_finite_array

CONSTRAINT_TOL = 1e-9


def analytic_weight(A: Any) -> np.ndarray:
    """The ALISTA weight ``W̃`` (same shape as ``A``) with ``diag(W̃ᵀA) = 1`` checked."""
    import cvxpy as cp

    A = as_finite_array(A, "A", ndim=2)
    m, n = A.shape
    norms = np.linalg.norm(A, axis=0)
    if np.any(norms == 0):
        raise ValueError(f"A has a zero column ({int(np.argmin(norms))}); diag(WᵀA) = 1 is infeasible")
    evals, evecs = np.linalg.eigh(A @ A.T)
    R = np.sqrt(np.clip(evals, 0.0, None))[:, None] * evecs.T  # RᵀR = AAᵀ
    W = cp.Variable((m, n))
    problem = cp.Problem(cp.Minimize(cp.sum_squares(R @ W)), [cp.sum(cp.multiply(W, A), axis=0) == 1])
    problem.solve(solver=cp.CLARABEL)
    if problem.status != cp.OPTIMAL or W.value is None:
        raise RuntimeError(f"ALISTA weight program: Clarabel returned status {problem.status!r}")
    Wv = np.asarray(W.value)
    diag = np.einsum("ij,ij->j", Wv, A)
    if np.any(np.abs(diag) < 0.5):
        raise RuntimeError(f"ALISTA weight program: solution violates diag(WᵀA) = 1 (min {diag.min():.3g})")
    Wv = Wv / diag  # exact feasibility, column by column
    residual = float(np.max(np.abs(np.einsum("ij,ij->j", Wv, A) - 1.0)))
    if residual > CONSTRAINT_TOL:
        raise RuntimeError(f"ALISTA weight: diag(WᵀA) = 1 holds only to {residual:.3g}")
    return Wv
