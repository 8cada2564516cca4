"""The clipped squared loss used by the norm-based and PAC-Bayes bounds (unfoldtheory/generalization/).

Let b > 0, r = ||u - x|| >= 0 and ℓ_b = min(r², b).

(1) Lipschitz: |min(r1², b) - min(r2², b)| <= 2 sqrt(b) |r1 - r2| for r1, r2 >= 0 (three cases:
    both below sqrt(b), both above, one on each side), and r is 1-Lipschitz in u, so ℓ_b is
    2 sqrt(b)-Lipschitz in the prediction u (used with the contraction inequalities).
(2) Derandomisation (spectral PAC-Bayes): if a, a' >= 0, |a - a'| <= d and t > 0, then
    min(a², b) <= (1 + t) min(a'², b) + min((1 + 1/t) d², b). Steps:
    (i) a² <= (a' + d)² <= (1 + t)a'² + (1 + 1/t)d²: the difference is (sqrt(t)a' - d/sqrt(t))²;
    (ii) min(x + y, b) <= min(x, b) + min(y, b) for x, y >= 0;
    (iii) min((1 + t)x, b) <= (1 + t) min(x, b) for x >= 0, t >= 0;
    and min is increasing in its first argument.
(3) A conditioned posterior: for Q' = Q restricted to G and renormalised, Z = Q(G),
    KL(Q'||P) = (1/Z) ∫_G q log(q/p) - log Z (checked on a finite space), and since x log x >= -1/e
    (minimum at x = 1/e), ∫_{G^c} q log(q/p) = ∫_{G^c} p (q/p) log(q/p) >= -1/e, so
    KL(Q'||P) <= (KL(Q||P) + 1/e)/Z + log(1/Z).
(4) The Gaussian KL: KL(N(μ_q, σ_q²) || N(μ_p, σ_p²)) = ½[σ_q²/σ_p² + (μ_q - μ_p)²/σ_p² - 1 + log(σ_p²/σ_q²)]
    (from E[x] = μ_q, E[x²] = σ_q² + μ_q²); for diagonal Gaussians it adds over coordinates.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _check import check, finish, ge, gt, holds_on, is_nonneg, is_zero, section

section("(1) min(r², b) is 2 sqrt(b)-Lipschitz in r >= 0")
a, t, w = sp.symbols("a t w", nonnegative=True)
# r1 = a <= r2 = a + t; sqrt(b) placed by the slack w
check("both <= sqrt(b) (sqrt(b) = a + t + w): 2 sqrt(b) t - ((a+t)² - a²) == t² + 2wt >= 0",
      is_zero(2 * (a + t + w) * t - ((a + t) ** 2 - a ** 2) - (t ** 2 + 2 * w * t)) and is_nonneg(t ** 2 + 2 * w * t))
check("both >= sqrt(b): min(r², b) == b for both, difference 0 <= 2 sqrt(b) t", is_nonneg(2 * (a + t) * t))
# r1 = a <= sqrt(b) = a + w <= r2 = a + w + t
check("r1 <= sqrt(b) <= r2 (sqrt(b) = a + w, r2 = a + w + t): 2 sqrt(b)(w + t) - (b - a²) == 2at + w² + 2wt >= 0",
      is_zero(2 * (a + w) * (w + t) - ((a + w) ** 2 - a ** 2) - (2 * a * t + w ** 2 + 2 * w * t)))

section("(2) derandomisation inequality")
ap, dd = sp.symbols("a' d", nonnegative=True)
tt = sp.symbols("t", positive=True)
gap = (1 + tt) * ap ** 2 + (1 + 1 / tt) * dd ** 2 - (ap + dd) ** 2
check("(i) (1+t)a'² + (1+1/t)d² - (a' + d)² == (sqrt(t)a' - d/sqrt(t))² >= 0",
      is_zero(gap - (sp.sqrt(tt) * ap - dd / sp.sqrt(tt)) ** 2))
x, y, b = sp.symbols("x y b", real=True)


def mn(u, v):
    return sp.Piecewise((u, u <= v), (v, True))


# open regions (a branch condition on a boundary is undecided); both sides are continuous, so the
# inequalities extend to the boundaries
base = [ge(x, 0), ge(y, 0), gt(b, 0)]
regions_ii = {
    "x + y < b": [gt(b, x + y)],
    "x + y > b, x < b, y < b": [gt(x + y, b), gt(b, x), gt(b, y)],
    "x > b, y < b": [gt(x, b), gt(b, y)],
    "y > b, x < b": [gt(y, b), gt(b, x)],
    "x > b, y > b": [gt(x, b), gt(y, b)],
}
for name, region in regions_ii.items():
    cert = holds_on(base + region, [x, y, b], mn(x, b) + mn(y, b) - mn(x + y, b), ">=")
    check(f"(ii) min(x, b) + min(y, b) - min(x + y, b) >= 0 on {name} [{cert}]", cert is not None)
t1 = sp.Rational(3, 2)  # the claim is linear in (x, b) for a fixed t; checked at t = 1/2 and 3/2 and symbolically below
for tv in (sp.Rational(1, 2), t1):
    for name, region in {"(1+t)x < b": [gt(b, (1 + tv) * x)], "x < b < (1+t)x": [gt(b, x), gt((1 + tv) * x, b)],
                         "x > b": [gt(x, b)]}.items():
        cert = holds_on([ge(x, 0), gt(b, 0), *region], [x, b], (1 + tv) * mn(x, b) - mn((1 + tv) * x, b), ">=")
        check(f"(iii) t = {tv}: (1+t)min(x, b) - min((1+t)x, b) >= 0 on {name} [{cert}]", cert is not None)
xs, bs = sp.symbols("x b", nonnegative=True)
check("(iii) any t >= 0, x <= b: (1+t)x >= min((1+t)x, b) since min(u, b) <= u", is_nonneg(tt * xs))
check("(iii) any t >= 0, x >= b: (1+t)b - b == t b >= 0 and min((1+t)x, b) <= b", is_nonneg(tt * bs))

section("(3) KL of a conditioned posterior")
q1, q2, q3, p1, p2, p3 = sp.symbols("q1 q2 q3 p1 p2 p3", positive=True)
Z = q1 + q2  # G = {1, 2}
lhs = sum((qi / Z) * sp.log((qi / Z) / pi) for qi, pi in ((q1, p1), (q2, p2)))
rhs = (q1 * sp.log(q1 / p1) + q2 * sp.log(q2 / p2)) / Z - sp.log(Z)
check("KL(Q'||P) == (1/Z) Σ_G q log(q/p) - log Z on a 3-point space with G = {1, 2}",
      is_zero(sp.expand_log(lhs - rhs, force=True)))
u = sp.symbols("u", positive=True)
phi = u * sp.log(u)
check("x log x: derivative log x + 1 vanishes at x = 1/e", is_zero(sp.diff(phi, u).subs(u, sp.exp(-1))))
check("x log x: second derivative 1/x > 0 (convex, so 1/e is the global minimum)", is_zero(sp.diff(phi, u, 2) - 1 / u))
check("x log x at 1/e == -1/e", is_zero(phi.subs(u, sp.exp(-1)) + sp.exp(-1)))
KLv, Zs = sp.symbols("KL Z", positive=True)
check("(KL + 1/e)/Z + log(1/Z) at Z = 1/2 == 2 KL + 2/e + log 2",
      is_zero(((KLv + sp.exp(-1)) / Zs + sp.log(1 / Zs)).subs(Zs, sp.Rational(1, 2)) - (2 * KLv + 2 * sp.exp(-1) + sp.log(2))))

section("(4) Gaussian KL")
mq, mp = sp.symbols("mu_q mu_p", real=True)
sq, sp_ = sp.symbols("sigma_q sigma_p", positive=True)
X1, X2 = mq, sq ** 2 + mq ** 2  # E[x], E[x²] under q


def log_density(xx2, xx1, m_, s_):
    """E[log N(x; m, s²)] written with E[x] = xx1, E[x²] = xx2."""
    return -sp.log(s_) - sp.log(2 * sp.pi) / 2 - (xx2 - 2 * m_ * xx1 + m_ ** 2) / (2 * s_ ** 2)


kl_gauss = log_density(X2, X1, mq, sq) - log_density(X2, X1, mp, sp_)
formula = sp.Rational(1, 2) * (sq ** 2 / sp_ ** 2 + (mq - mp) ** 2 / sp_ ** 2 - 1 + sp.log(sp_ ** 2 / sq ** 2))
check("E_q[log q - log p] == ½[σq²/σp² + (μq-μp)²/σp² - 1 + log(σp²/σq²)]",
      is_zero(sp.expand_log(kl_gauss - formula, force=True)))

finish()
