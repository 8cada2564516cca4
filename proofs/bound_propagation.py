"""Soundness of the bound propagation (unfoldtheory/lipschitz/bound_propagation.py, linear_relaxation.py).

Claims
------
1. **Breakpoint lemma.** If ``h`` is affine on ``[a, b]`` (``a < b``) and ``h(a), h(b) ≥ 0`` then ``h ≥ 0`` on
   ``[a, b]``: ``(b − a) h(t) = (b − t) h(a) + (t − a) h(b)``. Applied to ``h = φ − line`` (lower line) or
   ``line − φ`` (upper line) between consecutive breakpoints (``l``, ``u`` and the kinks inside), a line is below /
   above a piecewise-linear ``φ`` on ``[l, u]`` iff it is so at those points. At an infinite end the outer piece
   has slope ``s``: for ``t ≤ κ`` (the first kink) ``h(t) − h(κ) = (s − a)(t − κ) ≥ 0`` when ``a ≥ s`` (lower line
   at ``l = −∞``), and symmetrically at ``+∞``; so the check at ``κ`` covers the unbounded piece.
2. **Directed intercepts.** With ``c ≤ φ(t) − a t`` at every breakpoint, ``a t + c ≤ φ(t)`` there; a float computed
   by rounding to nearest and then stepping one float down (``nextafter``) lies below the exact value: the exact
   value is within half a spacing of the rounded one on its side, the step is a full spacing (checked on the
   worst case, a power of two where the spacing halves below it).
3. **Relaxations of the built-ins** (CROWN's choices, which the code finds among its candidate slopes), checked at
   the breakpoints: ReLU's chord above and slopes 0/1 below; soft-thresholding's hull edges ``s₁(v − θ)`` below and
   ``s₂(v + θ)`` above on ``l < −θ < θ < u``; the group soft-threshold sandwich
   ``min(v, 0) ≤ c·v ≤ max(v, 0)`` for ``c ∈ [0, 1]`` (GST scales each group by ``c = max(1 − θ/‖v_g‖, 0)``).
4. **Concretisation.** ``|a·x| ≤ ‖a‖₂‖x‖₂`` (Lagrange's identity, 2-D), ``a·x ≥ −(|a₁| + |a₂|) r`` for
   ``|x_i| ≤ r`` (Hölder ℓ1/ℓ∞ and the midpoint–radius form of a box, every sign pattern): so
   ``min_{y ∈ B} a·y ≥ a·c − r‖a‖``.
5. **Rounding of a dot product.** ``fl(fl(a₁b₁) + fl(a₂b₂))`` differs from ``a₁b₁ + a₂b₂`` by at most
   ``γ₂(|a₁b₁| + |a₂b₂|)``, ``γ_n = nu/(1 − nu)`` (Higham, Lemma 3.1): ``(1 + u)² − 1 ≤ γ₂`` and
   ``1 − (1 − u)² ≤ γ₂``; and ``γ_n ≤ 2nu`` for ``nu ≤ ½``, the bound the code uses.
6. **Free slopes and skipped rows** (``method="alpha-crown"``, and the rows ``"crown"`` skips). For *every* real slope
   ``a`` the intercept ``c = min_i (φ(t_i) − a t_i)`` over the breakpoints puts the line below ``φ`` at each of them,
   so by claim 1 on the whole finite interval: the slope may be any float, chosen per row by a float optimiser
   (checked for three breakpoints; the directed rounding of claim 2 keeps it in floats). A soft-threshold / ReLU /
   box neuron whose interval meets only pieces of slope 0 has the same state on every sub-interval (checked for the
   dead zone ``[−θ, θ]`` and ReLU's ``v ≤ 0``), so no later bound depends on how tight its own interval is.
"""

import sympy as sp
from _check import check, finish, ge, gt, holds_on, is_zero, section

t, a, b, ha, hb, s, kappa, q = sp.symbols("t a b h_a h_b s kappa q", real=True)

section("1. breakpoint lemma")
h = sp.Symbol("p", real=True) * t + q
check("(b - a) h(t) == (b - t) h(a) + (t - a) h(b) for affine h",
      is_zero((b - a) * h - ((b - t) * h.subs(t, a) + (t - a) * h.subs(t, b))))
HA, HB = sp.symbols("H_a H_b", nonnegative=True)
cert = holds_on([ge(t, a), ge(b, t)], [a, b, t], (b - t) * HA + (t - a) * HB, ">=")
check(f"(b - t) h(a) + (t - a) h(b) >= 0 on a <= t <= b when h(a), h(b) >= 0 [{cert}]", cert is not None)
slope_line = sp.Symbol("a_line", real=True)
cert = holds_on([ge(slope_line, s), ge(kappa, t)], [s, slope_line, t, kappa], (s - slope_line) * (t - kappa), ">=")
check(f"outer piece: (s - a)(t - kappa) >= 0 for t <= kappa, a >= s [{cert}]", cert is not None)
cert = holds_on([ge(s, slope_line), ge(t, kappa)], [s, slope_line, t, kappa], (s - slope_line) * (t - kappa), ">=")
check(f"outer piece at +oo: (s - a)(t - kappa) >= 0 for t >= kappa, a <= s [{cert}]", cert is not None)

section("2. directed rounding: one step down from a round-to-nearest result")
f, hsp = sp.symbols("f spacing", positive=True)
x = sp.Symbol("x", real=True)
# rounding to nearest returns f: x is at least f - (spacing below f)/2, with spacing below >= (spacing above)/2
cert = holds_on([ge(x, f - hsp / 2)], [x, f, hsp], x - (f - hsp), ">=")
check(f"x >= f - spacing/2 implies x >= nextafter(f, -oo) = f - spacing [{cert}]", cert is not None)
cert = holds_on([ge(f + hsp / 2, x)], [x, f, hsp], (f + hsp) - x, ">=")
check(f"x <= f + spacing/2 implies x <= nextafter(f, +oo) = f + spacing [{cert}]", cert is not None)

section("3. relaxations at their breakpoints")
lo, up, theta = sp.symbols("l u theta", real=True)
relu = sp.Piecewise((0, t < 0), (t, True))
chord = up / (up - lo) * (t - lo)
for pt in (lo, 0, up):
    cert = holds_on([gt(0, lo), gt(up, 0)], [lo, up], (chord - relu).subs(t, pt), ">=")
    check(f"ReLU chord u(t - l)/(u - l) >= ReLU at t = {pt} (l < 0 < u) [{cert}]", cert is not None)
    for line in (0, t):
        cert = holds_on([gt(0, lo), gt(up, 0)], [lo, up], (relu - line).subs(t, pt), ">=")
        check(f"ReLU >= {line} at t = {pt} [{cert}]", cert is not None)
st_fn = lambda v: sp.Piecewise((v + theta, v < -theta), (0, v <= theta), (v - theta, True))  # noqa: E731
s1 = (-lo - theta) / (theta - lo)
s2 = (up - theta) / (up + theta)
region = [gt(theta, 0), gt(-theta, lo), gt(up, theta)]
for pt in (lo, -theta, theta, up):
    cert = holds_on(region, [theta, lo, up], sp.cancel((st_fn(pt) - s1 * (pt - theta)) * (theta - lo)), ">=")
    check(f"ST >= s1 (t - theta) at t = {pt} (times theta - l > 0) [{cert}]", cert is not None)
    cert = holds_on(region, [theta, lo, up], sp.cancel((s2 * (pt + theta) - st_fn(pt)) * (up + theta)), ">=")
    check(f"ST <= s2 (t + theta) at t = {pt} (times u + theta > 0) [{cert}]", cert is not None)
c = sp.Symbol("c", real=True)
for name, reg in (("v >= 0", [ge(t, 0)]), ("v < 0", [gt(0, t)])):
    lower = 0 if name == "v >= 0" else t
    upper = t if name == "v >= 0" else 0
    cert = holds_on([ge(c, 0), ge(1, c), *reg], [c, t], c * t - lower, ">=")
    check(f"GST sandwich: c v >= min(v, 0) on {name}, c in [0, 1] [{cert}]", cert is not None)
    cert = holds_on([ge(c, 0), ge(1, c), *reg], [c, t], upper - c * t, ">=")
    check(f"GST sandwich: c v <= max(v, 0) on {name}, c in [0, 1] [{cert}]", cert is not None)

section("4. concretisation over balls and boxes")
a1, a2, x1, x2, r = sp.symbols("a1 a2 x1 x2 r", real=True)
check("Lagrange: (a1^2 + a2^2)(x1^2 + x2^2) - (a1 x1 + a2 x2)^2 == (a1 x2 - a2 x1)^2",
      is_zero((a1**2 + a2**2) * (x1**2 + x2**2) - (a1 * x1 + a2 * x2) ** 2 - (a1 * x2 - a2 * x1) ** 2))
for sg1 in (1, -1):
    for sg2 in (1, -1):
        reg = [ge(sg1 * a1, 0), ge(sg2 * a2, 0), ge(x1 + r, 0), ge(r - x1, 0), ge(x2 + r, 0), ge(r - x2, 0)]
        expr = a1 * x1 + a2 * x2 + (sg1 * a1 + sg2 * a2) * r
        cert = holds_on(reg, [a1, a2, x1, x2, r], expr, ">=")
        check(f"a.x >= -(|a1| + |a2|) r for |x_i| <= r, signs ({sg1:+d}, {sg2:+d}) [{cert}]", cert is not None)

section("5. rounding of a dot product")
u = sp.Symbol("u", positive=True)
g2 = 2 * u / (1 - 2 * u)
cert = holds_on([ge(sp.Rational(1, 4), u)], [u], sp.cancel((g2 - ((1 + u) ** 2 - 1)) * (1 - 2 * u)), ">=")
check(f"(1 + u)^2 - 1 <= gamma_2 for 0 < u <= 1/4 (times 1 - 2u > 0) [{cert}]", cert is not None)
cert = holds_on([ge(sp.Rational(1, 4), u)], [u], sp.cancel((g2 - (1 - (1 - u) ** 2)) * (1 - 2 * u)), ">=")
check(f"1 - (1 - u)^2 <= gamma_2 for 0 < u <= 1/4 [{cert}]", cert is not None)
nu = sp.Symbol("nu", positive=True)
w = sp.Symbol("w", nonnegative=True)  # w = 1 - 2nu >= 0
check("(2nu - nu/(1 - nu))(1 - nu) == nu (1 - 2nu)", is_zero((2 * nu - nu / (1 - nu)) * (1 - nu) - nu * (1 - 2 * nu)))
check("nu (1 - 2nu) >= 0 for nu <= 1/2, so gamma_n <= 2nu (1 - nu > 0)", (nu * w).is_nonnegative)

section("6. free slopes and skipped rows")
al = sp.Symbol("alpha", real=True)
ts = sp.symbols("t1:4", real=True)
gs = sp.symbols("g1:4", real=True)  # g_i = phi(t_i) - alpha t_i, so phi(t_i) = g_i + alpha t_i
for j in range(3):  # c = g_j attains the minimum
    region_j = [ge(gs[i], gs[j]) for i in range(3) if i != j]
    for i in range(3):
        cert = holds_on(region_j, list(gs), (gs[i] + al * ts[i]) - (al * ts[i] + gs[j]), ">=")
        check(f"every slope, min at t{j + 1}: alpha t{i + 1} + c <= phi(t{i + 1}) [{cert}]", cert is not None)
cert = holds_on([ge(t, -theta), ge(theta, t), gt(theta, 0)], [t, theta], st_fn(t), "==")
check(f"ST(v) == 0 on -theta <= v <= theta: a dead neuron's state is 0 on every sub-interval [{cert}]", cert is not None)
cert = holds_on([gt(0, t)], [t], relu, "==")
check(f"ReLU(v) == 0 on v < 0, and at v = 0 [{cert}]", cert is not None and relu.subs(t, 0) == 0)

finish()
