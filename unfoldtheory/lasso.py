"""Lasso arithmetic shared by the problems, the references and the classical iterations, with a
rigorous duality gap.

Convention: ``P(x) = ½‖Ax − y‖² + λ‖x‖₁`` and ``r = Ax − y``. Its Fenchel dual is

    D(u) = ⟨u, y⟩ − ½‖u‖²   subject to   ‖Aᵀu‖_∞ ≤ λ,

and for every ``x`` and ``u`` (proofs/lasso_gap.py, claim 1)

    P(x) − D(u) = ½‖r + u‖² + Σ_i (λ|x_i| − (Aᵀu)_i x_i),                                    (*)

a sum of nonnegative terms when ``u`` is feasible (then ``|(Aᵀu)_i| ≤ λ``; claim 2), so ``D(u) ≤ P(z)`` for
every ``z`` (weak duality) and ``P(x) − P(x*) ≤ P(x) − D(u)``. Unlike ``½‖y‖² − ½‖y − u‖²``, the
form (*) has no cancellation: near the optimum both parts are small and computed small.

:func:`certified_gap` returns, per row, an upper bound on ``P(x) − D(u)`` that holds in exact
arithmetic on the float64 data ``A, x, y, λ`` and the returned float64 dual point ``u``:

1. **Scaling.** The Lasso is homogeneous: ``(x, y, λ, u) → 2^k (x, y, λ, u)`` multiplies ``P``, ``D``
   and the gap by ``4^k`` and keeps feasibility. Each row is scaled by a power of two that brings
   ``max(‖y‖∞, ‖A‖max‖x‖∞)`` near 1, where this scaling is exact (checked by round trip), so that
   neither ``r²`` overflows nor ``λ|x|`` underflows; otherwise the row is left unscaled (claim 3).
2. **Residual.** ``r̂ = fl(Ax − y)`` with ``|r̂ − r| ≤ e_r``, ``e_r`` an upward-rounded
   ``γ_{n+1}(|A||x| + |y|)`` plus the underflow of the products (proofs/lasso_gap.py, claim 5).
3. **Dual point.** ``u = −s·r̂`` with ``s ∈ [0, 1]`` from a rigorous bound on ``‖Aᵀr̂‖∞``; then
   ``ĝ = fl(Aᵀu)`` with its bound ``e_g`` and ``fl(|ĝ_i| + e_g_i)`` rounded up is checked ``≤ λ``
   for every ``i`` (so ``‖Aᵀu‖∞ ≤ λ`` exactly). Rows that fail are shrunk and re-checked; ``u = 0``
   (always feasible) is the last resort.
4. **Gap.** ``|r_i + u_i| ≤ |fl(r̂_i + u_i)|(1 + ε) + e_{r,i}`` (claim 6) bounds the first part; each
   term of the second is bounded by its computed value plus ``γ(λ|x_i| + |ĝ_i x_i|) + e_{g,i}|x_i|``
   (claim 7); the nonnegative terms are summed with a relative bound (claim 4), every step rounded
   upward.
5. **Relative gap.** ``gap / P̲(x)`` rounded up, with ``P̲(x) ≤ P(x)`` from
   ``|r_i| ≥ |r̂_i| − e_{r,i}`` rounded downward: an upper bound on ``(P(x) − P(x*)) / P(x)`` (claim 8).

The arithmetic model is IEEE 754 binary64 with round-to-nearest and gradual underflow (no
flush-to-zero): ``fl(a ∘ b) = (a ∘ b)(1 + δ) + η``, ``|δ| ≤ u = 2⁻⁵³``, ``|η| ≤ 2⁻¹⁰⁷⁵`` for a
product and ``η = 0`` for a sum (Higham, *Accuracy and Stability*, §2.1–2.2, §3.1). A dot product
of length ``k`` in any order, with or without FMA, is within ``γ_k Σ|a_j b_j| + k·2⁻¹⁰⁷⁴`` of the
exact value. ``nextafter`` after a round-to-nearest operation gives a directed bound.

The **float64 resolution** of a row is what this certificate cannot see below: the rounding error
``e_r`` of the residual moves the dual point ``u ≈ y − Ax`` and hence the second part of (*) by up
to ``Σ_i (|A|ᵀe_r)_i |x_i|``; with the bound's own allowances (its excess over the float64 value of
(*)) it is ``resolution`` (absolute) and ``relative_resolution`` (over ``P̲(x)``). When the latter exceeds a
tolerance the gap cannot be certified below it in float64 (λ near the float floor relative to
``‖y‖``, say): the solvers then report the row as ``"inaccurate"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from unfoldtheory.lipschitz.norms import gamma_bound

_TAU = 2.0 ** -1074  # the smallest subnormal; twice the largest underflow error of one product
_EPS = float(np.finfo(np.float64).eps)  # 2u
_SHRINK_TRIES = 3


def lasso_objective(A: np.ndarray, X: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    """``½‖A x_i − y_i‖² + λ‖x_i‖₁`` for each row pair, in float64; X (b, n), Y (b, m) → (b,)."""
    R = X @ A.T - Y
    return 0.5 * np.einsum("ij,ij->i", R, R) + lam * np.abs(X).sum(axis=1)


@dataclass(frozen=True, eq=False)
class DualityGap:
    """The rigorous duality-gap certificate of each row (see the module docstring).

    Attributes
    ----------
    gap: (b,) upper bound on ``P(x) − D(u)`` in exact arithmetic, hence on ``P(x) − P(x*)``
        (``inf`` where it cannot be bounded in float64).
    dual: (b, m) the float64 dual points ``u``, with ``‖Aᵀu‖∞ ≤ λ`` exactly.
    primal: (b,) ``P(x)`` in float64 (an estimate).
    primal_lower: (b,) a rigorous lower bound on ``P(x)``.
    relative: (b,) ``gap / primal_lower`` rounded up: an upper bound on ``(P(x) − P(x*))/P(x)``.
    resolution: (b,) the float64 resolution of the certificate (absolute; an estimate).
    relative_resolution: (b,) ``resolution / primal_lower``.
    """

    gap: np.ndarray
    dual: np.ndarray
    primal: np.ndarray
    primal_lower: np.ndarray
    relative: np.ndarray
    resolution: np.ndarray
    relative_resolution: np.ndarray


def certified_gap(A: np.ndarray, X: np.ndarray, Y: np.ndarray, lam: float) -> DualityGap:
    """The rigorous duality gap of each row ``x_i`` of X for ``y_i``; X (b, n), Y (b, m), λ > 0.

    Every bound holds in exact arithmetic on the float64 inputs and the returned dual points
    (module docstring; proofs/lasso_gap.py). Rows with non-finite entries get ``gap = inf``.
    """
    A, X, Y = (np.asarray(v, dtype=np.float64) for v in (A, X, Y))
    lam = float(lam)
    if not lam > 0 or not math.isfinite(lam):
        raise ValueError(f"lam must be a positive finite number, got {lam!r}")
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        k = _row_exponents(A, X, Y, lam)
        scaled = _core(A, np.ldexp(X, k[:, None]), np.ldexp(Y, k[:, None]), np.ldexp(lam, k))
        U = np.ldexp(scaled["dual"], -k[:, None])
        exact = np.all(np.ldexp(U, k[:, None]) == scaled["dual"], axis=1)
        if not exact.all():  # u would round when scaled back: certify those rows unscaled
            k = np.where(exact, k, 0)
            redo = _core(A, X[~exact], Y[~exact], np.full(int((~exact).sum()), lam))
            for key, value in redo.items():
                scaled[key][~exact] = value
            U[~exact] = redo["dual"]
        gap = _unscale(scaled["gap"], k, up=True)
        lower = _unscale(scaled["lower"], k, up=False)
        resolution = _unscale(scaled["resolution"], k, up=True)
        primal = lasso_objective(A, X, Y, lam)
    return DualityGap(gap, U, primal, lower, relative_gap(scaled["gap"], scaled["lower"]), resolution,
                      _ratio(scaled["resolution"], scaled["lower"]))


def duality_gap(A: np.ndarray, X: np.ndarray, Y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """``(gap, primal)`` per row: the rigorous ``gap ≥ P(x) − D(u) ≥ P(x) − P(x*)`` of :func:`certified_gap`
    and the float64 ``P(x)``."""
    cert = certified_gap(A, X, Y, lam)
    return cert.gap, cert.primal


def dual_point(A: np.ndarray, X: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    """The dual point ``u_i`` of each row's certificate: ``‖Aᵀu_i‖_∞ ≤ λ`` holds exactly."""
    return certified_gap(A, X, Y, lam).dual


def relative_gap(gap: np.ndarray, primal_lower: np.ndarray) -> np.ndarray:
    """``gap / P̲`` rounded up, for a lower bound ``P̲ ≤ P(x)``: an upper bound on ``gap / P(x)``.

    0 where the gap is 0 (at ``P = 0`` that means ``y = 0`` and ``x = 0``, exactly optimal); ``inf``
    where ``P̲ = 0`` and the gap is not, and where there is no usable solution (``P̲`` NaN, or the gap
    infinite or NaN)."""
    gap, primal_lower = np.asarray(gap, dtype=np.float64), np.asarray(primal_lower, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        q = gap / np.where(primal_lower > 0, primal_lower, 1.0)
        rel = np.where(gap == 0, 0.0, np.where(primal_lower > 0, np.nextafter(q, np.inf), np.inf))
    return np.where(np.isnan(primal_lower) | np.isnan(gap) | np.isinf(gap), np.inf, rel)


# --------------------------------------------------------------------------- directed rounding

def _up(v: np.ndarray) -> np.ndarray:
    return np.nextafter(v, np.inf)


def _mul_up(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """An upper bound on ``a·b`` for ``a, b ≥ 0`` (exact 0 when a factor is 0)."""
    a, b = np.asarray(a), np.asarray(b)
    return np.where((a == 0) | (b == 0), 0.0, _up(a * b))


def _add_up(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """An upper bound on ``a + b`` (exact when a term is 0)."""
    a, b = np.asarray(a), np.asarray(b)
    s = a + b
    return np.where((a == 0) | (b == 0), s, _up(s))


def _mul_down(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """A lower bound on ``a·b ≥ 0`` for ``a, b ≥ 0``, never below 0."""
    a, b = np.asarray(a), np.asarray(b)
    return np.where((a == 0) | (b == 0), 0.0, np.maximum(np.nextafter(a * b, -np.inf), 0.0))


def _sum_up(T: np.ndarray) -> np.ndarray:
    """An upper bound on the row sums of nonnegative ``T``: ``Σ ≤ fl(Σ)(1 + 4k·u)`` (claim 4)."""
    return _mul_up(T.sum(axis=-1), _up(1.0 + gamma_bound(max(T.shape[-1], 1))))


def _sum_down(T: np.ndarray) -> np.ndarray:
    """A lower bound on the row sums of nonnegative ``T``: ``Σ ≥ fl(Σ)(1 − 4k·u)`` (claim 4)."""
    return _mul_down(T.sum(axis=-1), np.nextafter(1.0 - gamma_bound(max(T.shape[-1], 1)), 0.0))


def _product_error(M: np.ndarray, k: int, nonzero: np.ndarray) -> np.ndarray:
    """An upper bound on ``|fl(LR) − LR|`` from ``M = fl(|L||R|)`` (inner dimension ``k``):
    ``4ku·M + 2k·2⁻¹⁰⁷⁴`` (claim 5); ``nonzero`` marks the entries that have a nonzero product term
    (the others are computed exactly, as 0 or as a single exact term)."""
    return _add_up(_mul_up(M, gamma_bound(k)), np.where(nonzero, 2 * k * _TAU, 0.0))


def _unscale(v: np.ndarray, k: np.ndarray, up: bool) -> np.ndarray:
    """``v·4^(−k)`` rounded up (``up``) or down: exact unless it under- or overflows."""
    out = np.ldexp(v, -2 * k)
    exact = np.ldexp(out, 2 * k) == v
    return np.where(exact, out, np.nextafter(out, np.inf) if up else np.maximum(np.nextafter(out, -np.inf), 0.0))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    q = num / np.where(den > 0, den, 1.0)
    return np.where(num == 0, 0.0, np.where(den > 0, q, np.inf))


# --------------------------------------------------------------------------- the certificate

def _row_exponents(A: np.ndarray, X: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    """Per row, ``k`` with ``2^k·max(‖y‖∞, ‖A‖max‖x‖∞·n)`` near 1, or 0 where scaling by ``2^k`` is not
    exact for ``x``, ``y`` or ``λ`` (or the row is zero or not finite)."""
    n = X.shape[1]
    ymax = np.abs(Y).max(axis=1, initial=0.0)
    xmax = np.abs(X).max(axis=1, initial=0.0)
    amax = float(np.abs(A).max(initial=0.0))
    ey = np.where(ymax > 0, np.frexp(ymax)[1], -100_000)
    ex = np.where((xmax > 0) & (amax > 0), np.frexp(xmax)[1] + math.frexp(amax)[1] + max(n, 1).bit_length(), -100_000)
    top = np.maximum(ey, ex)
    k = np.where(top > -100_000, -top, 0).astype(np.int64)
    e_lam = math.frexp(lam)[1]
    k = np.clip(k, -1021 - e_lam, 1000 - e_lam)  # keeps 2^k·λ a normal float (exact)
    ok = (np.all(np.ldexp(np.ldexp(X, k[:, None]), -k[:, None]) == X, axis=1)
          & np.all(np.ldexp(np.ldexp(Y, k[:, None]), -k[:, None]) == Y, axis=1)
          & (np.ldexp(np.ldexp(lam, k), -k) == lam) & np.isfinite(np.ldexp(lam, k)) & (np.ldexp(lam, k) > 0)
          & np.isfinite(X).all(axis=1) & np.isfinite(Y).all(axis=1))
    return np.where(ok, k, 0)


def _core(A: np.ndarray, X: np.ndarray, Y: np.ndarray, lam: np.ndarray) -> dict[str, np.ndarray]:
    """Steps 2–5 of the module docstring on (scaled) rows; ``lam`` is per row."""
    m, n = A.shape
    absA = np.abs(A)
    absX = np.abs(X)
    x_nonzero = np.any(X != 0, axis=1)
    # step 2: r̂ = fl(fl(Ax) − y), a dot product of length n + 1 with the terms (a_j x_j, −y)
    R = X @ A.T - Y
    S = absX @ absA.T + np.abs(Y)
    e_r = np.where(x_nonzero[:, None], _product_error(S, n + 1, np.ones_like(S, dtype=bool)), 0.0)
    # step 3: the dual point
    absR = np.abs(R)
    C = R @ A
    e_C = _product_error(absR @ absA, m, np.any(R != 0, axis=1)[:, None])
    kappa = _add_up(np.abs(C), _mul_up(2.0, e_C)).max(axis=1, initial=0.0)  # room for u's own rounding
    s = np.where(kappa <= lam, 1.0, np.nextafter(lam / np.where(kappa > 0, kappa, 1.0), 0.0))
    s = np.where(np.isfinite(s), s, 0.0)
    U, G, e_g = _feasible_dual(A, absA, R, s, lam)
    # step 4: the gap, ½‖r + u‖² + Σ(λ|x_i| − g_i x_i)
    w = _add_up(_mul_up(np.abs(R + U), 1.0 + _EPS), e_r)
    first = _mul_up(_sum_up(_mul_up(w, w)), 0.5)
    lam_x = lam[:, None] * absX
    t_hat = np.maximum(lam_x - G * X, 0.0)
    allowance = _add_up(_mul_up(gamma_bound(3), _add_up(_mul_up(lam[:, None], absX), _mul_up(np.abs(G), absX))),
                        _add_up(_mul_up(e_g, absX), np.where(X != 0, 2 * _TAU, 0.0)))
    second = _sum_up(_add_up(t_hat, allowance))
    gap = _add_up(first, second)
    # step 5: P̲(x) = ½Σ max(|r̂_i| − e_r,i, 0)² + λ‖x‖₁, rounded downward
    lo = np.maximum(np.nextafter(absR - e_r, -np.inf), 0.0)
    half_sq = _mul_down(_sum_down(_mul_down(lo, lo)), 0.5)
    l1 = _sum_down(_mul_down(lam[:, None], absX))
    lower = np.where((half_sq == 0) | (l1 == 0), half_sq + l1, np.maximum(np.nextafter(half_sq + l1, -np.inf), 0.0))
    # the float64 resolution: the bound's own rounding allowance (gap − the plain float64 value of (*)) plus
    # what the residual's rounding e_r does to the second part through u ≈ −r̂
    estimate = 0.5 * np.einsum("ij,ij->i", R + U, R + U) + t_hat.sum(axis=1)
    resolution = np.maximum(gap - estimate, 0.0) + ((e_r @ absA) * absX).sum(axis=1)
    bad = ~(np.isfinite(gap) & np.isfinite(X).all(axis=1) & np.isfinite(Y).all(axis=1) & np.isfinite(U).all(axis=1))
    U[bad] = 0.0
    gap = np.where(bad, np.inf, gap)
    lower = np.where(np.isnan(lower), 0.0, lower)
    resolution = np.where(np.isfinite(resolution), np.maximum(resolution, 0.0), np.inf)
    return {"gap": gap, "dual": U, "lower": lower, "resolution": resolution}


def _feasible_dual(A: np.ndarray, absA: np.ndarray, R: np.ndarray, s: np.ndarray,
                   lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``u = fl(−s·r̂)`` per row with ``‖Aᵀu‖∞ ≤ λ`` proved: ``fl(|ĝ_i| + e_g,i)`` rounded up ``≤ λ`` with
    ``ĝ = fl(Aᵀu)`` and ``e_g`` its error bound. A failing row is shrunk by ``λ/bound`` (rounded down)
    and re-checked; after :data:`_SHRINK_TRIES` it gets ``u = 0``. Returns ``(U, Ĝ, E_g)``."""
    m = A.shape[0]
    s = s.copy()
    U = np.zeros_like(R)
    G = np.zeros((R.shape[0], A.shape[1]))
    E = np.zeros_like(G)
    todo = np.ones(R.shape[0], dtype=bool)
    for _ in range(_SHRINK_TRIES):
        if not todo.any():
            break
        Ut = -(s[todo, None] * R[todo])
        Gt = Ut @ A
        Et = _product_error(np.abs(Ut) @ absA, m, np.any(Ut != 0, axis=1)[:, None])
        bound = _add_up(np.abs(Gt), Et).max(axis=1, initial=0.0)
        ok = (bound <= lam[todo]) & np.isfinite(Ut).all(axis=1)
        idx = np.flatnonzero(todo)
        U[idx[ok]], G[idx[ok]], E[idx[ok]] = Ut[ok], Gt[ok], Et[ok]
        shrink = np.nextafter(lam[todo] / np.where(bound > 0, bound, 1.0), 0.0) * (1.0 - 8 * m * _EPS)
        s[todo] = np.where(np.isfinite(shrink), s[todo] * shrink, 0.0)
        todo[idx[ok]] = False
    U[todo], G[todo], E[todo] = 0.0, 0.0, 0.0  # u = 0: Aᵀu = 0 exactly
    return U, G, E
