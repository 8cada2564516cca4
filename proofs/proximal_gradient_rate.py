"""Proximal gradient step on f + h: the same tight rate max(|1 - eta*mu|, |1 - eta*L|).

Used by ``unfoldtheory.convergence.closed_form.proximal_gradient_rate`` (and, for the shape of the
PEP, by ``unfoldtheory.convergence.pep_problem``).  f is L-smooth and mu-strongly convex
(0 <= mu < L), h closed convex, F = f + h with minimiser x*, eta > 0, and
x+ = prox_{eta h}(u), u = x - eta grad f(x)  (Taylor, Hendrickx & Glineur, "Exact worst-case
convergence rates of the proximal gradient method for composite convex minimization", JOTA 2018).

Claims
------
1. **Prox as a subgradient step.** x+ = prox_{eta h}(u) iff u - x+ = eta s+ with s+ in dh(x+)
   (Fermat's rule for 1/2||x - u||^2 + eta h(x)).  x* minimises F iff s* := -grad f(x*) is in
   dh(x*), i.e. iff x* = prox_{eta h}(u*), u* = x* - eta grad f(x*): checked as the identity
   u* - x* = eta s*.
2. **Monotonicity from interpolation.** The two convex interpolation inequalities of the pair
   (x+, x*) for h sum to -<s+ - s*, x+ - x*> <= 0.
3. **Firm nonexpansiveness.** ||u - u*||^2 = ||x+ - x*||^2 + ||(u - u*) - (x+ - x*)||^2
   + 2 eta <x+ - x*, s+ - s*>, checked in R^3 with symbolic coordinates (the identity only uses
   inner products, so it holds in every dimension).  With claim 2: ||x+ - x*|| <= ||u - u*||.
4. **Rate.** u - u* = (x - x*) - eta(grad f(x) - grad f(x*)) is a gradient step, so by
   ``gradient_rate.py`` ||u - u*|| <= rho ||x - x*||, rho = max(|1 - eta mu|, |1 - eta L|).
5. **Tightness.** h = 0 gives prox = identity (u - x+ = 0 = eta*0), i.e. a gradient step, and
   the quadratic of ``gradient_rate.py`` attains rho.
"""

import sympy as sp
from _check import check, finish, is_zero, section

eta = sp.Symbol("eta", positive=True)


def vec(name: str) -> sp.Matrix:
    return sp.Matrix(sp.symbols(f"{name}1:4", real=True))


def prox_fixed_point() -> None:
    section("1. x* = prox_{eta h}(x* - eta grad f(x*)) when -grad f(x*) is in dh(x*)")
    xs, gs = vec("xs"), vec("gs")
    us = xs - eta * gs
    ss = -gs
    check("u* - x* = eta s* with s* = -grad f(x*)", is_zero((us - xs - eta * ss).norm()))


def monotone_from_interpolation() -> None:
    section("2. convex interpolation of (x+, x*) for h gives <s+ - s*, x+ - x*> >= 0")
    xp, xs, sp_, ss = vec("xp"), vec("xs"), vec("sp"), vec("ss")
    hp, hs = sp.symbols("h_p h_s", real=True)
    row_ps = hs - hp + ss.dot(xp - xs)  # h(x+) >= h(x*) + <s*, x+ - x*>
    row_sp = hp - hs + sp_.dot(xs - xp)  # h(x*) >= h(x+) + <s+, x* - x+>
    check("row(x+, x*) + row(x*, x+) = -<s+ - s*, x+ - x*>", is_zero(sp.expand(row_ps + row_sp + (sp_ - ss).dot(xp - xs))))


def firm_nonexpansive() -> None:
    section("3. ||u - u*||^2 = ||x+ - x*||^2 + ||(u - u*) - (x+ - x*)||^2 + 2 eta <x+ - x*, s+ - s*>")
    xp, xs, sp_, ss = vec("xp"), vec("xs"), vec("sp"), vec("ss")
    u, us = xp + eta * sp_, xs + eta * ss  # claim 1: u = x+ + eta s+
    du, dx = u - us, xp - xs
    rhs = dx.dot(dx) + (du - dx).dot(du - dx) + 2 * eta * dx.dot(sp_ - ss)
    check("the identity holds for u = x+ + eta s+, u* = x* + eta s*", is_zero(sp.expand(du.dot(du) - rhs)))
    check("(u - u*) - (x+ - x*) = eta (s+ - s*)", is_zero((du - dx - eta * (sp_ - ss)).norm()))


def rate_and_tightness() -> None:
    section("4-5. u - u* is a gradient step; h = 0 reduces to gradient descent")
    x, xs, g, gs = vec("x"), vec("xs"), vec("g"), vec("gs")
    u, us = x - eta * g, xs - eta * gs
    check("u - u* = (x - x*) - eta (grad f(x) - grad f(x*))", is_zero((u - us - ((x - xs) - eta * (g - gs))).norm()))
    zero = sp.zeros(3, 1)
    check("h = 0: s+ = 0 in dh(x+), so x+ = u (prox is the identity)", is_zero((u - (u - eta * zero)).norm()))


if __name__ == "__main__":
    prox_fixed_point()
    monotone_from_interpolation()
    firm_nonexpansive()
    rate_and_tightness()
    finish()
