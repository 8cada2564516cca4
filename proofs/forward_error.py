"""Lemmas of the running-error bounds in ``unfoldtheory/forward_error.py`` (issue 12).

Claims (u the unit roundoff, γ = γ_n, η the absolute underflow error of one operation):

1. **Inflation.** For 0 ≤ γ ≤ ½, 1/(1 − γ) ≤ 1 + 2γ: a bound formed in floating point from nonnegative terms
   in n operations is at least (1 − γ_n) times its exact value, so multiplying it by 1 + 2γ_n (rounded up)
   covers its own rounding (Higham, *Accuracy and Stability*, Lemma 3.1 and §3.1).
2. **Gap.** fl(a − b) = (a − b)(1 + δ), |δ| ≤ u, so |a − b| ≤ |fl(a − b)|/(1 − u).
3. **Difference of outputs.** fl(x − y) = (x − y)(1 + δ) is within u|x − y| ≤ 2u|fl(x − y)| of x − y (u ≤ ½).
4. **Square root.** If r, r̂ ≥ 0 and |r̂² − r²| ≤ γr² + B then |r̂ − r| ≤ γr + √B.
5. **Group-threshold scale.** c(t) = max(1 − θ/t, 0), θ > 0, is nondecreasing and for 0 < a ≤ b,
   c(b) − c(a) ≤ (b − a)/max(θ, a); with c ∈ [0, 1] also ≤ 1.
6. **Computed scale.** For q = θ/r̂ ∈ (0, 1), q̂ = q(1 + δ₁) + η₁ and ĉ = (1 − q̂)(1 + δ₂):
   |ĉ − (1 − q)| ≤ u + u² + η(1 + u) ≤ 2u when u² + 2η ≤ u; the product fl(ĉ v) adds u|ĉ v| + η.
7. **Parameters.** ST_θ(x) = sign(x)·max(|x| − θ, 0) and max(·, 0) is 1-Lipschitz (``relu_and_box.py``), so
   |ST_a(x) − ST_b(x)| ≤ |a − b|; likewise clip(x, l, h) moves by at most max(|Δl|, |Δh|) and group
   soft-thresholding (v minus its projection on the θ-ball) by at most |Δθ|, projections onto nested balls
   being |Δθ| apart.
"""

import sympy as sp
from _check import check, finish, section

s, s1, s2, t, u, eta, B, r, rh, q = sp.symbols("s s1 s2 t u eta B r rh q", nonnegative=True)
theta = sp.Symbol("theta", positive=True)


def nonneg(expr) -> bool:
    e = sp.factor(sp.simplify(expr))
    return bool(e.is_nonnegative) or bool(sp.simplify(sp.numer(sp.together(e))).is_nonnegative and
                                          sp.simplify(sp.denom(sp.together(e))).is_positive)


section("1. inflation covers the rounding of a nonnegative bound")
g = sp.Rational(1, 2) * s / (1 + s)  # every γ in [0, ½)
check("(1 + 2γ)(1 − γ) − 1 = γ(1 − 2γ) ≥ 0 for γ in [0, ½)", nonneg((1 + 2 * g) * (1 - g) - 1))
check("γ = ½ also: (1 + 1)(1 − ½) = 1", sp.simplify((1 + 2 * sp.Rational(1, 2)) * (1 - sp.Rational(1, 2))) == 1)

section("2-3. a rounded difference bounds the exact one")
d = sp.Symbol("delta", real=True)
x = sp.Symbol("x", positive=True)
# |a − b| = |fl|/|1 + δ| ≤ |fl|/(1 − u) for |δ| ≤ u < 1
check("1/(1 + δ) ≤ 1/(1 − u) for −u ≤ δ (with 1 − u > 0)",
      nonneg(1 / (1 - u / (1 + u)) - 1 / (1 + (-u / (1 + u)))) )  # the worst δ = −u, u ↦ u/(1+u) ∈ [0, 1)
uu = sp.Rational(1, 2) * s / (1 + s)  # u in [0, ½)
check("u|x| ≤ 2u|fl(x)| when |fl(x)| ≥ (1 − u)|x| and u ≤ ½", nonneg(2 * uu * (1 - uu) * x - uu * x))

section("4. the computed norm")
# |r̂ − r|(r̂ + r) = |r̂² − r²| ≤ γ r² + B; first term: γ r²/(r̂ + r) ≤ γ r
rp, w = sp.symbols("r_pos w", positive=True)  # r = 0 makes the term 0
check("γ r² / (r̂ + r) ≤ γ r (r > 0)", nonneg(t * rp - t * rp ** 2 / (rh + rp)))
# second term, when r̂ + r = Q = √B + s ≥ √B (B = w² > 0; B = 0 makes it 0): B/Q ≤ √B
check("B/Q ≤ √B for Q = √B + s", nonneg(w - w ** 2 / (w + s)))
# otherwise r̂ + r < √B and |r̂ − r| ≤ r̂ + r < √B: nothing to check beyond the triangle inequality
check("|r̂ − r| ≤ r̂ + r", nonneg(rh + r - (rh - r)) and nonneg(rh + r - (r - rh)))

section("5. the group-threshold scale c(t) = max(1 − θ/t, 0)")
a = theta + s1  # θ ≤ a ≤ b
b = a + s2
check("θ ≤ a ≤ b: (b − a)/a − (c(b) − c(a)) = (b − a)(b − θ)/(ab) ≥ 0",
      nonneg((b - a) / a - ((1 - theta / b) - (1 - theta / a))))
check("θ ≤ a ≤ b: c(b) − c(a) ≥ 0 (nondecreasing)", nonneg((1 - theta / b) - (1 - theta / a)))
a2 = theta * q / (1 + q)  # 0 < a ≤ θ  (q ≥ 0 ↦ a ∈ [0, θ))
b2 = theta + s2  # b ≥ θ
check("a ≤ θ ≤ b: c(b) − c(a) = 1 − θ/b ≤ (b − a)/θ", nonneg((b2 - a2) / theta - (1 - theta / b2)))
check("c(t) ∈ [0, 1] for t ≥ θ", nonneg(1 - theta / (theta + s1)) and nonneg(1 - (1 - theta / (theta + s1))))

section("6. the computed scale")
qq = q / (1 + q)  # q in [0, 1)
d1, d2 = sp.symbols("d1 d2", real=True)
# worst case of |ĉ − (1 − q)| = |−(q̂ − q)(1 + δ₂) + (1 − q) δ₂| with |q̂ − q| ≤ u q + η and |δ₂| ≤ u
worst = (u * qq + eta) * (1 + u) + u * (1 - qq)
check("(uq + η)(1 + u) + u(1 − q) ≤ u + u² + η(1 + u) for q in [0, 1)", nonneg(u + u ** 2 + eta * (1 + u) - worst))
U = sp.Rational(1, 4) * s / (1 + s)  # u in [0, ¼)
E = (U - U ** 2) * t / (2 * (1 + t))  # any η with u² + 2η ≤ u ... parametrised: 2η = (u − u²)·t/(1 + t)
check("u + u² + η(1 + u) ≤ 2u when u² + 2η ≤ u and u ≤ ¼", nonneg(2 * U - (U + U ** 2 + E * (1 + U))))

finish()
