"""The classical iterations that unfolded networks start from: ISTA and FISTA on the Lasso.

* ISTA (Daubechies, Defrise & De Mol 2004): ``x⁺ = ST_{λ/L}(x − (1/L)Aᵀ(Ax − y))``, ``L = ‖A‖₂²``.
* FISTA (Beck & Teboulle 2009): the same step at the extrapolated point
  ``z_k = x_k + ((t_{k−1} − 1)/t_k)(x_k − x_{k−1})``, ``t_k = (1 + √(1 + 4t_{k−1}²))/2``.

Once ISTA has identified the support S and signs of the solution it is the affine iteration
``e⁺ = (I − A_SᵀA_S/L) e`` on the error, so it contracts at the closed-form rate
``ρ_S = max |1 − λ_i(A_SᵀA_S)/L| = 1 − λ_min(A_SᵀA_S)/L`` (:func:`ista_support_rate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unfoldtheory.activations import soft_threshold
from unfoldtheory.spec import NetworkSpec, unrolled
from unfoldtheory.validation import as_finite_array, finite_float, positive_int


def _setup(A: Any, Y: Any, lam: float, iterations: int, step: float | None) -> tuple[np.ndarray, np.ndarray, float, int, float]:
    A = as_finite_array(A, "A", ndim=2)
    Y = as_finite_array(Y, "Y", ndim=(1, 2))
    Y = Y[None] if Y.ndim == 1 else Y
    if Y.shape[1] != A.shape[0]:
        raise ValueError(f"Y has {Y.shape[1]} columns; expected m = {A.shape[0]} (rows of A)")
    lam = finite_float(lam, "lam", low=0.0)
    iterations = positive_int(iterations, "iterations")
    L = float(np.linalg.norm(A, 2) ** 2)
    if step is None:
        if L == 0:
            raise ValueError("A is zero: the step 1/L is undefined; pass step explicitly")
        step = 1.0 / L
    step = finite_float(step, "step", low=0.0, low_open=True)
    if L > 0 and step > 2.0 / L:
        raise ValueError(f"step {step:.6g} exceeds 2/L = {2.0 / L:.6g}: the iteration need not converge")
    return A, Y, lam, iterations, step


def ista(A: Any, Y: Any, lam: float, iterations: int, step: float | None = None) -> np.ndarray:
    """ISTA iterates ``x_0 = 0, x_1, …, x_K`` for every row of ``Y``: shape (K + 1, batch, n).

    ``step`` defaults to ``1/‖A‖₂²``; steps above ``2/L`` are rejected.
    """
    A, Y, lam, K, step = _setup(A, Y, lam, iterations, step)
    X = np.zeros((K + 1, Y.shape[0], A.shape[1]))
    AtY = Y @ A
    G = A.T @ A
    for k in range(K):
        X[k + 1] = soft_threshold(X[k] - step * (X[k] @ G - AtY), step * lam)
    return X


def fista(A: Any, Y: Any, lam: float, iterations: int, step: float | None = None) -> np.ndarray:
    """FISTA iterates ``x_0 = 0, …, x_K`` for every row of ``Y``: shape (K + 1, batch, n).

    ``step`` defaults to ``1/‖A‖₂²`` and must be at most ``1/L`` for FISTA's guarantee.
    """
    A, Y, lam, K, step = _setup(A, Y, lam, iterations, step)
    L = float(np.linalg.norm(A, 2) ** 2)
    if L > 0 and step > 1.0 / L * (1 + 1e-12):
        raise ValueError(f"FISTA step {step:.6g} exceeds 1/L = {1.0 / L:.6g}")
    X = np.zeros((K + 1, Y.shape[0], A.shape[1]))
    AtY = Y @ A
    G = A.T @ A
    Z = X[0].copy()
    t = 1.0
    for k in range(K):
        X[k + 1] = soft_threshold(Z - step * (Z @ G - AtY), step * lam)
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        Z = X[k + 1] + ((t - 1.0) / t_next) * (X[k + 1] - X[k])
        t = t_next
    return X


def ista_spec(A: Any, lam: float, layers: int, step: float | None = None) -> NetworkSpec:
    """``layers`` ISTA iterations from ``x_0 = 0`` as a :class:`NetworkSpec` (input y, output x_K).

    ``W_k = I − γAᵀA``, ``V_k = γAᵀ``, ``θ_k = γλ`` with ``γ = 1/L`` by default.
    """
    A, _, lam, K, step = _setup(A, np.zeros(np.shape(A)[0]), lam, layers, step)
    n = A.shape[1]
    W = [None] + [np.eye(n) - step * A.T @ A] * (K - 1)
    return unrolled(W, [step * A.T] * K, [step * lam] * K, name=f"ISTA({K})")


def ista_support_rate(A: Any, x_star: Any, step: float | None = None) -> float:
    """Closed-form local rate of ISTA on the support S of ``x_star``: ``max_i |1 − γ λ_i(A_SᵀA_S)|``.

    With ``γ = 1/L`` this is ``1 − λ_min(A_SᵀA_S)/L``. Returns 1.0 when ``A_S`` is rank deficient
    (no local contraction is guaranteed) and 0.0 for an empty support (ISTA is exact after the
    support is identified).
    """
    A = as_finite_array(A, "A", ndim=2)
    x_star = as_finite_array(x_star, "x_star", shape=(A.shape[1],))
    gamma = 1.0 / float(np.linalg.norm(A, 2) ** 2) if step is None else finite_float(step, "step", low=0.0, low_open=True)
    S = np.flatnonzero(x_star)
    if S.size == 0:
        return 0.0
    eig = np.linalg.eigvalsh(A[:, S].T @ A[:, S])
    if S.size > A.shape[0]:
        return 1.0
    return float(np.max(np.abs(1.0 - gamma * eig)))
