"""Lasso arithmetic shared by the problems, the references and the classical iterations.

Convention: ``P(x) = ½‖Ax − y‖² + λ‖x‖₁``. Its Fenchel dual is

    D(u) = ½‖y‖² − ½‖y − u‖²   subject to   ‖Aᵀu‖_∞ ≤ λ,

so ``P(x) − D(u) ≥ P(x) − P(x*) ≥ 0`` for every feasible ``u`` (weak duality). The dual point used
here is the scaled residual ``u = r·min(1, λ/‖Aᵀr‖_∞)``, ``r = y − Ax`` (El Ghaoui et al. 2012;
Fercoq, Gramfort & Salmon 2015), which is optimal when ``x`` is.
"""

from __future__ import annotations

import numpy as np

# The scaled residual is shrunk by this relative amount so that rounding in ‖Aᵀr‖_∞ cannot make it
# infeasible; it changes the dual value by a relative O(1e-13), far below the 1e-10 tolerance.
_FEASIBILITY_SHRINK = 1e-13


def lasso_objective(A: np.ndarray, X: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    """``½‖A x_i − y_i‖² + λ‖x_i‖₁`` for each row pair; X (b, n), Y (b, m) → (b,)."""
    R = X @ A.T - Y
    return 0.5 * np.einsum("ij,ij->i", R, R) + lam * np.abs(X).sum(axis=1)


def dual_point(A: np.ndarray, X: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    """A dual-feasible ``u_i`` (``‖Aᵀu_i‖_∞ ≤ λ``) built from the residual of each ``x_i``."""
    R = Y - X @ A.T
    corr = np.abs(R @ A).max(axis=1)
    scale = np.ones_like(corr)
    over = corr > lam
    scale[over] = lam / corr[over]
    return (scale * (1.0 - _FEASIBILITY_SHRINK))[:, None] * R


def duality_gap(A: np.ndarray, X: np.ndarray, Y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """``(gap, primal)`` per row: ``gap = P(x) − D(u) ≥ P(x) − P(x*)`` with the dual point above."""
    primal = lasso_objective(A, X, Y, lam)
    U = dual_point(A, X, Y, lam)
    D = Y - U
    dual = 0.5 * np.einsum("ij,ij->i", Y, Y) - 0.5 * np.einsum("ij,ij->i", D, D)
    return np.maximum(primal - dual, 0.0), primal


def relative_gap(gap: np.ndarray, primal: np.ndarray) -> np.ndarray:
    """``gap / P(x)``; 0 where ``P(x) = 0`` and the gap is 0 (then ``y = 0`` and ``x = 0`` is exact),
    ``inf`` where there is no usable solution (``P`` is NaN, or the gap is infinite)."""
    safe = np.where(primal > 0, primal, 1.0)
    rel = np.where(primal > 0, gap / safe, np.where(gap > 0, np.inf, 0.0))
    return np.where(np.isnan(primal) | np.isinf(gap), np.inf, rel)
