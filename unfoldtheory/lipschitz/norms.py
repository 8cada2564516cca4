"""Rigorous float64 upper bounds on spectral norms, and upward-rounded arithmetic.

:func:`spectral_norm_upper` returns a number that is ``≥ ‖W‖₂`` (the largest singular value of
the exact matrix held in float64), not merely an estimate of it. It is the minimum of two upper
bounds:

1. **Backward-stable SVD.** LAPACK's SVD (``numpy.linalg.svd`` → ``*gesdd``) is backward stable:
   the computed singular values are the exact singular values of ``W + E`` with
   ``‖E‖₂ ≤ p(m, n)·ε·‖W‖₂``, where ``p`` is a modestly growing function of the dimensions
   (LAPACK Users' Guide, §4.9 "Error bounds for the singular value decomposition"; it says
   ``p(m, n)`` is in practice of order 1). By Weyl's inequality for singular values,
   ``|σ̂₁ − σ₁| ≤ ‖E‖₂ ≤ p·ε·σ₁``, hence ``σ₁ ≤ σ̂₁ / (1 − p·ε) ≤ σ̂₁·(1 + 2p·ε)`` when
   ``p·ε ≤ ½``. We take the conservative ``p = 10·max(m, n)``. This bound is rigorous *given*
   LAPACK's backward-error constant, which is not published as an explicit number; that is why
   it is combined with (2).
2. **Frobenius norm.** ``‖W‖₂ ≤ ‖W‖_F``, and the float64 sum of ``mn`` nonnegative squares has
   relative error at most ``γ_{mn} = mn·ε/(1 − mn·ε)`` (Higham, *Accuracy and Stability of
   Numerical Algorithms*, §3.1/§4.2, any summation order), the square and the square root add a
   few ε more. This bound needs no assumption on LAPACK.

Underflow of tiny entries and overflow of huge ones are avoided by first scaling ``W`` by a power
of two (exact) so that its largest entry lies in [½, 1); an absolute term of ``2⁻⁹⁰⁰`` (in the
scaled units, where ``‖W‖₂ ≥ ½``) absorbs subnormal rounding. The result is rounded upward with
``nextafter``. Both bounds are returned through their minimum, so the value is always
``≤ ‖W‖_F·(1 + O(mn·ε))``.

The helpers :func:`up_add`, :func:`up_mul` round an operation on nonnegative floats upward:
a round-to-nearest result is within half a spacing of the exact value, so the next float up is
an upper bound. Recursions built only from them (sums and products of nonnegative upper
bounds) therefore return upper bounds on their exact-arithmetic values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from unfoldtheory.validation import as_finite_array

EPS = float(np.finfo(np.float64).eps)
_ABS_TINY = 2.0 ** -900


def _up(x: float) -> float:
    return float(np.nextafter(x, math.inf))


def up_add(a: float, b: float) -> float:
    """An upper bound on ``a + b`` (one float op rounded to nearest, then one step up)."""
    return _up(float(a) + float(b))


def up_mul(a: float, b: float) -> float:
    """An upper bound on ``a · b`` for nonnegative ``a``, ``b``."""
    return _up(float(a) * float(b))


def gamma_bound(n: int) -> float:
    """An upper bound on ``γ_n = n·ε/(1 − n·ε)`` (ε = 2⁻⁵², twice the unit roundoff: conservative)."""
    ne = n * EPS
    if ne >= 0.5:
        raise ValueError(f"dimension {n} is too large for a float64 rounding-error bound")
    return _up(2.0 * ne)  # n·ε/(1 − n·ε) ≤ 2·n·ε for n·ε ≤ ½


def _scaled(W: np.ndarray) -> tuple[np.ndarray, int]:
    """``W·2^(−e)`` with its largest entry in [½, 1), and ``e`` (exact: a power-of-two scaling)."""
    amax = float(np.max(np.abs(W)))
    _, e = math.frexp(amax)  # amax = f·2^e, f in [½, 1)
    return np.ldexp(W, -e), e


def spectral_norm_upper(W: Any) -> float:
    """A rigorous float64 upper bound on ``‖W‖₂`` (see the module docstring for the argument).

    ``W`` is a finite 2-D array (a 1-D array is read as a row). Returns 0.0 for a zero matrix.
    """
    W = as_finite_array(W, "W", ndim=(1, 2))
    if W.ndim == 1:
        W = W[None, :]
    if W.size == 0:
        return 0.0
    if not np.any(W):
        return 0.0
    m, n = W.shape
    S, e = _scaled(W)
    # (2) Frobenius: fl(Σ s²) ≤ (1 + γ_{mn+1}) Σ s² (+ subnormal absolute error), then sqrt.
    fro2 = float(np.sum(S * S))
    fro_bound = math.sqrt(up_add(fro2 * (1.0 + gamma_bound(m * n + 2)), _ABS_TINY))
    fro_bound = _up(fro_bound * (1.0 + 4.0 * EPS))
    best = fro_bound
    # (1) backward-stable SVD with a conservative p(m, n) = 10·max(m, n).
    try:
        sigma = float(np.linalg.svd(S, compute_uv=False)[0])
    except np.linalg.LinAlgError:
        sigma = math.nan
    if math.isfinite(sigma):
        p = 10 * max(m, n)
        svd_bound = up_add(sigma * (1.0 + 2.0 * gamma_bound(p)), _ABS_TINY)
        svd_bound = _up(svd_bound * (1.0 + 4.0 * EPS))
        best = min(best, svd_bound)
    out = math.ldexp(best, e)
    return _up(out) if out != 0.0 else _up(0.0)


def abs_norm_upper(W: np.ndarray) -> float:
    """A rigorous upper bound on ``‖|W|‖₂`` (entrywise absolute value): the minimum of
    ``‖W‖_F`` and ``√(‖W‖₁‖W‖_∞)`` (both bound the norm of ``|W|``), with upward rounding margins.

    Used to bound the rounding error of computed matrix products, ``|fl(AB) − AB| ≤ γ_n|A||B|``.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.size == 0 or not np.any(W):
        return 0.0
    m, n = W.shape
    S, e = _scaled(W)
    A = np.abs(S)
    g = 1.0 + gamma_bound(max(m, n) + 2)
    col = float(np.max(A.sum(axis=0))) * g
    row = float(np.max(A.sum(axis=1))) * g
    fro2 = float(np.sum(A * A)) * (1.0 + gamma_bound(m * n + 2))
    b = math.sqrt(up_add(min(col * row, fro2), _ABS_TINY)) * (1.0 + 4.0 * EPS)
    return _up(math.ldexp(_up(b), e))
