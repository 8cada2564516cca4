"""Soundness of the rigorous Lasso duality gap (unfoldtheory/lasso.py, ``certified_gap``).

Notation: ``P(x) = ½‖Ax − y‖² + λ‖x‖₁``, ``r = Ax − y``, ``D(u) = ⟨u, y⟩ − ½‖u‖²``, ``g = Aᵀu``,
``u = 2⁻⁵³`` the unit roundoff (written ``uu`` below), ``τ = 2⁻¹⁰⁷⁴``.

Claims
------
1. **Cancellation-free gap.** ``P(x) − D(u) = ½‖r + u‖² + Σ_i (λ|x_i| − g_i x_i)`` identically (checked
   on m = 2, n = 3 with ``|x_i|`` as free symbols: the identity does not use what ``|x_i|`` is).
2. **Weak duality.** ``|g_i| ≤ λ`` gives ``λ|z| − g_i z ≥ 0`` for every real ``z`` (both signs of z,
   Farkas/slack certificates), so by 1 at any ``z``: ``P(z) − D(u) ≥ 0``, hence ``D(u) ≤ min P`` and
   ``P(x) − min P ≤ P(x) − D(u)``.
3. **Homogeneity (the row scaling).** ``P(βx; βy, βλ) = β²P(x; y, λ)``, ``D(βu; βy) = β²D(u; y)`` and
   ``Aᵀ(βu) = βAᵀu``, so feasibility and the gap bound transfer between scaled and unscaled rows.
4. **Sums of nonnegative terms.** With ``|ŝ − S| ≤ γ_{k−1}S`` (Higham, Thm 4.2 / Lemma 3.1, any order)
   and ``t = (k − 1)uu ≤ ¼``: ``S ≤ ŝ(1 + 4k·uu)`` and ``S ≥ ŝ(1 − 4k·uu)`` (``gamma_bound(k) = 4k·uu``).
5. **Products.** If ``|M̂ − N| ≤ γ_k N + kτ`` (``M̂ = fl(|L||R|)``, ``N`` its exact value) and the error
   of ``fl(LR)`` is ``≤ γ_k N + kτ`` (Higham Thm 3.5 plus ``|η| ≤ τ/2`` per underflowing product), then
   that error is ``≤ 4k·uu·M̂ + 2kτ`` for ``k·uu ≤ ¼``.
6. **One sum, read back.** ``fl(a + b) = (a + b)(1 + δ)``, ``|δ| ≤ uu`` gives
   ``|a + b| ≤ |fl(a + b)|(1 + 2uu)``; with ``|r̂ − r| ≤ e_r``: ``|r_i + u_i| ≤ w_i`` so
   ``(r_i + u_i)² ≤ w_i²``; and ``|r_i| ≥ max(|r̂_i| − e_r, 0)`` bounds ``r_i²`` below.
7. **One term of the second part.** ``t̂ = fl(fl(λ|x|) − fl(ĝx))`` satisfies
   ``λ|x| − ĝx ≤ t̂ + 12uu(λ|x| + |ĝx|) + 2τ`` (``gamma_bound(3) = 12uu``). The error is multilinear in
   the five rounding variables, so its maximum over their box is at a vertex: all 32 vertices are
   checked, for both signs of ``ĝx``. Adding ``(ĝ − g)x ≤ e_g|x|`` bounds ``λ|x| − gx``.
8. **Relative gap.** ``gap ≥ P − D ≥ 0`` and ``0 < P̲ ≤ P`` give ``gap/P̲ ≥ (P − D)/P``.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _check import check, finish, ge, holds_on, is_nonneg, is_zero, section


def _nonneg_on(expr, var, hi) -> bool:
    """``expr(var) ≥ 0`` for every ``var`` in ``[0, hi]`` (univariate, decided by sympy's solveset)."""
    domain = sp.Interval(0, hi)
    return domain.is_subset(sp.solveset(sp.simplify(expr) >= 0, var, domain))


def cancellation_free_identity() -> None:
    section("1. P(x) − D(u) = ½‖r + u‖² + Σ (λ|x_i| − (Aᵀu)_i x_i)")
    m, n = 2, 3
    A = sp.Matrix(m, n, lambda i, j: sp.Symbol(f"a{i}{j}", real=True))
    x = sp.Matrix(sp.symbols(f"x0:{n}", real=True))
    y = sp.Matrix(sp.symbols(f"y0:{m}", real=True))
    u = sp.Matrix(sp.symbols(f"u0:{m}", real=True))
    absx = sp.symbols(f"abs_x0:{n}", real=True)
    lam = sp.Symbol("lam", real=True)
    r = A * x - y
    P = (r.T * r)[0] / 2 + lam * sum(absx)
    D = (u.T * y)[0] - (u.T * u)[0] / 2
    g = A.T * u
    form = ((r + u).T * (r + u))[0] / 2 + sum(lam * absx[i] - g[i] * x[i] for i in range(n))
    check("P(x) − D(u) equals ½‖r + u‖² + Σ(λ|x_i| − g_i x_i) (m = 2, n = 3)", is_zero(sp.expand(P - D - form)))
    old = (y.T * y)[0] / 2 - ((y - u).T * (y - u))[0] / 2
    check("D(u) = ⟨u, y⟩ − ½‖u‖² equals the old form ½‖y‖² − ½‖y − u‖²", is_zero(sp.expand(D - old)))


def weak_duality() -> None:
    section("2. |g| ≤ λ ⇒ λ|z| − g·z ≥ 0 for every z")
    lam, g, z = sp.symbols("lam g z", real=True)
    region = [ge(lam - g), ge(lam + g)]
    pos = holds_on([*region, ge(z)], [lam, g, z], lam * z - g * z, ">=")
    neg = holds_on([*region, ge(-z)], [lam, g, z], -lam * z - g * z, ">=")
    check(f"z ≥ 0: λz − gz ≥ 0 [{pos}]", pos is not None)
    check(f"z ≤ 0: −λz − gz ≥ 0 [{neg}]", neg is not None)


def homogeneity() -> None:
    section("3. scaling rows by β")
    m, n = 2, 2
    A = sp.Matrix(m, n, lambda i, j: sp.Symbol(f"a{i}{j}", real=True))
    x = sp.Matrix(sp.symbols(f"x0:{n}", real=True))
    y = sp.Matrix(sp.symbols(f"y0:{m}", real=True))
    u = sp.Matrix(sp.symbols(f"u0:{m}", real=True))
    lam, beta = sp.Symbol("lam", real=True), sp.Symbol("beta", positive=True)

    def P(x, y, lam):
        r = A * x - y
        return (r.T * r)[0] / 2 + lam * sum(sp.Abs(v) for v in x)

    def D(u, y):
        return (u.T * y)[0] - (u.T * u)[0] / 2

    check("P(βx; βy, βλ) = β² P(x; y, λ)", is_zero(sp.expand(P(beta * x, beta * y, beta * lam) - beta**2 * P(x, y, lam))))
    check("D(βu; βy) = β² D(u; y)", is_zero(sp.expand(D(beta * u, beta * y) - beta**2 * D(u, y))))
    check("|Aᵀ(βu)|_i ≤ βλ ⟺ |Aᵀu|_i ≤ λ (β > 0)",
          all(is_zero(sp.Abs((A.T * (beta * u))[i]) - beta * sp.Abs((A.T * u)[i])) for i in range(n)))


def sums_of_nonnegative_terms() -> None:
    section("4. sums of nonnegative terms: S ≤ ŝ(1 + 4k·uu), S ≥ ŝ(1 − 4k·uu)")
    t = sp.Symbol("t", nonnegative=True)  # t = (k − 1)·uu ≤ k·uu, with k·uu ≤ 1/4
    gam = t / (1 - t)
    # S ≤ ŝ/(1 − γ) and 1/(1 − γ) ≤ 1 + 4t ≤ 1 + 4k·uu
    check("1/(1 − γ_{k−1}) ≤ 1 + 4t on t ∈ [0, 1/4]", _nonneg_on(1 + 4 * t - 1 / (1 - gam), t, sp.Rational(1, 4)))
    # S ≥ ŝ/(1 + γ) ≥ ŝ(1 − 4t)
    check("1/(1 + γ_{k−1}) ≥ 1 − 4t on t ∈ [0, 1/4]", _nonneg_on(1 / (1 + gam) - (1 - 4 * t), t, sp.Rational(1, 4)))


def products() -> None:
    section("5. products: error ≤ 4k·uu·M̂ + 2kτ")
    t = sp.Symbol("t", nonnegative=True)  # t = k·uu ≤ 1/4
    gam = t / (1 - t)
    # N ≤ (M̂ + kτ)/(1 − γ); error ≤ γN + kτ ≤ γ/(1 − γ)(M̂ + kτ) + kτ
    ratio = sp.simplify(gam / (1 - gam))
    check("γ_k/(1 − γ_k) = t/(1 − 2t)", is_zero(ratio - t / (1 - 2 * t)))
    check("coefficient of M̂: 4t − t/(1 − 2t) ≥ 0 on [0, 1/4]", _nonneg_on(4 * t - ratio, t, sp.Rational(1, 4)))
    check("coefficient of kτ: 2 − (1 + t/(1 − 2t)) ≥ 0 on [0, 1/4]", _nonneg_on(1 - ratio, t, sp.Rational(1, 4)))


def one_sum_read_back() -> None:
    section("6. |a + b| ≤ |fl(a + b)|(1 + 2uu); squares of bounded quantities")
    uu = sp.Symbol("uu", nonnegative=True)
    # |a + b| = |fl|/|1 + δ| ≤ |fl|/(1 − uu)
    check("1/(1 − uu) ≤ 1 + 2uu on uu ∈ [0, 1/4]", _nonneg_on(1 + 2 * uu - 1 / (1 - uu), uu, sp.Rational(1, 4)))
    v, s = sp.Symbol("v", real=True), sp.Symbol("s", nonnegative=True)
    # w = |v| + s (a bound on |v|): w² − v² = s(2|v| + s) ≥ 0
    check("|v| ≤ w ⇒ v² ≤ w² (w = |v| + s, s ≥ 0)", is_nonneg(sp.expand((sp.Abs(v) + s) ** 2 - v**2)))
    lo = sp.Symbol("lo", nonnegative=True)
    # lo ≤ |r| (lo = max(|r̂| − e, 0) and |r| ≥ |r̂| − e): r² − lo² = (|r| − lo)(|r| + lo) ≥ 0, |r| = lo + s
    check("0 ≤ lo ≤ |r| ⇒ r² ≥ lo²", is_nonneg(sp.expand((lo + s) ** 2 - lo**2)))


def one_gap_term() -> None:
    section("7. λ|x| − ĝx ≤ t̂ + 12uu(λ|x| + |ĝx|) + 2τ (32 vertices × 2 signs)")
    a, b = sp.symbols("a b", nonnegative=True)  # a = λ|x|, b = |ĝx|
    uu, tau = sp.symbols("uu tau", nonnegative=True)
    d1, d2, d3, e1, e2 = sp.symbols("d1 d2 d3 e1 e2", real=True)
    ok = True
    for sign in (1, -1):
        c = sign * b  # c = ĝx
        t_hat = ((a * (1 + d1) + e1) - (c * (1 + d2) + e2)) * (1 + d3)
        err = sp.expand((a - c) - t_hat)
        multilinear = all(sp.degree(err, v) <= 1 for v in (d1, d2, d3, e1, e2))
        check(f"ĝx = {'+' if sign > 0 else '−'}|ĝx|: the error is multilinear in (δ1, δ2, δ3, η1, η2)", multilinear)
        ok &= multilinear
        for signs in itertools.product((-1, 1), repeat=5):
            vertex = dict(zip((d1, d2, d3, e1, e2), (signs[0] * uu, signs[1] * uu, signs[2] * uu,
                                                      signs[3] * tau / 2, signs[4] * tau / 2), strict=True))
            slack = sp.expand(12 * uu * (a + b) + 2 * tau - err.subs(vertex))
            poly = sp.Poly(slack, a, b, tau)
            for coeff in poly.coeffs():
                ok &= _nonneg_on(coeff, uu, sp.Rational(1, 16))
            ok &= poly.total_degree() <= 1
    check("at every vertex the slack is linear in (a, b, τ) with coefficients ≥ 0 for uu ∈ [0, 1/16]", ok)


def relative_gap() -> None:
    section("8. gap/P̲ ≥ (P − D)/P")
    e = sp.Symbol("e", nonnegative=True)  # P − D
    s1, s2 = sp.symbols("s1 s2", nonnegative=True)
    low = sp.Symbol("L", positive=True)
    gap, primal = e + s1, low + s2  # gap ≥ P − D, P ≥ P̲ > 0
    check("(e + s1)/L − e/(L + s2) ≥ 0", is_nonneg(sp.together(gap / low - e / primal)))


if __name__ == "__main__":
    cancellation_free_identity()
    weak_duality()
    homogeneity()
    sums_of_nonnegative_terms()
    products()
    one_sum_read_back()
    one_gap_term()
    relative_gap()
    finish()
