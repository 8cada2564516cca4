"""A rigorous lower bound on the smallest eigenvalue of a symmetric matrix, from a float64 Cholesky factor.

**Lemma** (``proofs/cholesky_residual.py``). Let ``S`` be real symmetric, ``Ŝ`` a float64 symmetric
matrix with ``‖S − Ŝ‖_F ≤ ε``, ``σ`` a float and ``R`` *any* float matrix. With
``Δ = RᵀR − (Ŝ − σI)`` (exact), ``S − σI = RᵀR − Δ + (S − Ŝ)`` and ``RᵀR ⪰ 0``, so by Weyl's inequality
``λ_min(S) ≥ σ − ‖Δ‖₂ − ‖S − Ŝ‖₂ ≥ σ − ‖Δ‖_F − ε``. Nothing is assumed about how ``R`` was
computed (LAPACK's accuracy does not enter): a poor factor only gives a poor bound.

**Rounding.** ``Δ̂ = fl(fl(RᵀR) − Ŝ + σI)`` is computed with ``|Δ̂ − Δ| ≤ γ_{d+2}(|R|ᵀ|R| + |Ŝ| + |σ|I) +
(d + 2)·2⁻¹⁰⁷⁴`` entrywise (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., Lemma 3.1
and §3.1 for any summation order, with the underflow model (2.8): a product is ``ab(1 + δ) + η``,
``|η| ≤ 2⁻¹⁰⁷⁵``, sums carry no η). The computed magnitude bound is inflated by 2 to cover its own
rounding, Frobenius norms are rounded up (:func:`norm_up`), and every scalar step is rounded outward by
one ulp (round-to-nearest returns a neighbour of the exact value, so one step past it bounds it).
"""

from __future__ import annotations

import numpy as np

U = float(np.finfo(float).eps) / 2  # unit roundoff
TINY = float(np.nextafter(0.0, 1.0))  # 2^-1074, the smallest subnormal


def gamma(k: int) -> float:
    """Higham's ``γ_k = ku/(1 − ku)`` (rounded up by one ulp)."""
    return float(np.nextafter(k * U / (1 - k * U), np.inf))


def up(x: float) -> float:
    """One ulp above the round-to-nearest result ``x``: an upper bound of the exact value it rounds."""
    return float(np.nextafter(x, np.inf))


def down(x: float) -> float:
    """One ulp below: a lower bound of the exact value that ``x`` rounds."""
    return float(np.nextafter(x, -np.inf))


def norm_up(X: np.ndarray) -> float:
    """An upper bound of ``‖X‖_F`` computed in float64 (``inf`` on overflow).

    ``Σx²`` is computed with error ``≤ γ_N Σx² + N·2⁻¹⁰⁷⁵`` (N squares and summands), so
    ``Σx² ≤ (s + N·2⁻¹⁰⁷⁴)/(1 − γ_N)``; the square root and each step are rounded up."""
    X = np.asarray(X, dtype=float)
    N = max(X.size, 1)
    with np.errstate(over="ignore", under="ignore"):
        s = float(np.sum(X * X))
    if not np.isfinite(s):
        return np.inf
    total = up(up(s + up(N * TINY)) * up(1 + 2 * gamma(N + 2)))
    return up(up(np.sqrt(total)) * (1 + 2 * U))


def lambda_min_lower(S_hat: np.ndarray, error: float, sigma: float | None = None) -> tuple[float, float]:
    """``(ℓ, margin)`` with ``λ_min(S) ≥ ℓ`` for every symmetric ``S`` with ``‖S − Ŝ‖_F ≤ error`` (module
    docstring); ``margin = ‖Δ‖_F + error`` bounded above. ``sigma`` is the shift (default: half the
    float64 estimate of ``λ_min(Ŝ)``, or a small fraction below it when that is ≤ 0). ``ℓ = −inf`` when
    the Cholesky factorisation of ``Ŝ − σI`` fails or a quantity overflows."""
    S_hat = np.asarray(S_hat, dtype=float)
    d = S_hat.shape[0]
    if S_hat.shape != (d, d) or not np.all(np.isfinite(S_hat)) or not np.isfinite(error):
        return -np.inf, np.inf
    if sigma is None:
        est = float(np.linalg.eigvalsh(S_hat)[0])
        sigma = est / 2 if est > 0 else est - 1e-12 * max(abs(est), float(np.abs(S_hat).max(initial=0.0)))
    shifted = S_hat - sigma * np.eye(d)
    try:
        R = np.linalg.cholesky(shifted).T  # any R will do; only its residual enters the bound
    except np.linalg.LinAlgError:
        return -np.inf, np.inf
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        residual = R.T @ R - S_hat + sigma * np.eye(d)
        absR = np.abs(R)
        magnitude = absR.T @ absR + np.abs(S_hat) + abs(sigma) * np.eye(d)
        bound = 2 * gamma(d + 2) * magnitude + 2 * (d + 2) * TINY
    margin = up(up(norm_up(residual) + norm_up(bound)) + error)
    if not np.isfinite(margin):
        return -np.inf, np.inf
    return down(sigma - margin), margin


def lambda_min_lower_tight(S_hat: np.ndarray, error: float) -> float:
    """The best :func:`lambda_min_lower` over shifts just below the float64 estimate of ``λ_min(Ŝ)``
    (relative gaps 1e-10 … 1e-2, then half): a bound within a small relative gap of ``λ_min`` when
    ``Ŝ`` is well conditioned."""
    S_hat = np.asarray(S_hat, dtype=float)
    if not np.all(np.isfinite(S_hat)):
        return -np.inf
    est = float(np.linalg.eigvalsh(S_hat)[0])
    scale = max(abs(est), float(np.abs(S_hat).max(initial=0.0)) * 1e-12)
    best = -np.inf
    for gap in (1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 0.5):
        best = max(best, lambda_min_lower(S_hat, error, est - gap * scale)[0])
    return best


def gram_extremes(A: np.ndarray) -> tuple[float, float]:
    """Rigorous ``(ℓ, h)`` with ``ℓ ≤ λ_min(AᵀA)`` (clipped at 0, always valid for a Gram matrix) and
    ``h ≥ λ_max(AᵀA) = ‖A‖₂²``, for a finite float matrix ``A``.

    ``A`` is first scaled by a power of two so that its largest entry is near 1 (verified exact;
    otherwise ValueError), ``Ĝ = fl(AᵀA)`` has ``|Ĝ − G| ≤ γ_m|A|ᵀ|A| + m·2⁻¹⁰⁷⁵`` (bounded by twice the
    computed magnitudes plus ``2m·2⁻¹⁰⁷⁴``), and both ends come from :func:`lambda_min_lower` applied to
    ``Ĝ`` and to ``cI − Ĝ`` (then ``λ_max(G) ≤ c − λ_min(cI − G)``)."""
    A = np.asarray(A, dtype=float)
    peak = float(np.abs(A).max(initial=0.0))
    if peak == 0:
        return 0.0, 0.0
    k = int(np.frexp(peak)[1])
    scaled = np.ldexp(A, -k)
    if not np.array_equal(np.ldexp(scaled, k), A):
        raise ValueError("A's entries span more than float64 can scale exactly (from subnormal to huge); no certified "
                         "bound on its spectrum")
    m, n = scaled.shape
    G = scaled.T @ scaled
    err = norm_up(2 * gamma(m + 2) * (np.abs(scaled).T @ np.abs(scaled)) + 2 * m * TINY)
    low = max(lambda_min_lower_tight(G, err), 0.0)
    est = float(np.linalg.eigvalsh(G)[-1])
    high = np.inf
    for gap in (1e-10, 1e-8, 1e-6, 1e-3, 1.0):
        c = up(est * (1 + gap) + gap * TINY * 2**60)
        T = c * np.eye(n) - G
        diag_err = norm_up(U * np.abs(np.diag(T)))
        ell, _ = lambda_min_lower(T, up(err + diag_err), 0.0)
        if np.isfinite(ell):
            high = min(high, up(c - ell))
    if not np.isfinite(high):
        raise ValueError("no certified upper bound on ‖A‖₂² could be found (Cholesky failed at every shift)")
    with np.errstate(over="ignore", under="ignore"):
        lo, hi = float(np.ldexp(low, 2 * k)), float(np.ldexp(high, 2 * k))  # exact unless under/overflow
        lo = lo if np.ldexp(lo, -2 * k) == low else max(down(lo), 0.0)
        hi = hi if np.ldexp(hi, -2 * k) == high else up(hi)
    return lo, hi
