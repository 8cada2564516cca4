"""The binary kl and its upper inverse (unfoldtheory/generalization/kl.py).

kl(p||q) = p log(p/q) + (1 - p) log((1 - p)/(1 - q)) for p in [0, 1], q in (0, 1).

(1) d/dq kl(p||q) = (q - p)/(q(1 - q)): kl(p||.) is 0 at q = p, decreasing below p and increasing
    above, so sup{q >= p : kl(p||q) <= c} is found by bisection and a q with kl(p||q) >= c is an
    upper bound on it (Seeger 2002; Maurer 2004 use the same inverse).
(2) p = 0: kl(0||q) = -log(1 - q), so the inverse is 1 - exp(-c) exactly.
(3) Pinsker: kl(p||q) >= 2(q - p)². f = kl - 2(q - p)² has f(p) = 0 and
    f' = (q - p)(1 - 2q)²/(q(1 - q)), of the sign of q - p: f is smallest at q = p.
    Hence the inverse is <= p + sqrt(c/2).
(4) For q >= p: kl(p||q) >= (q - p)²/(2q). g = kl - (q - p)²/(2q) has g(p) = 0 and
    g' = (q - p)(q - p + q² + pq)/(2q²(1 - q)) >= 0 for q >= p. With d = q - p the inverse satisfies
    d² <= 2c(p + d), so d <= c + sqrt(c² + 2cp) <= 2c + sqrt(2cp).
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _check import check, finish, is_nonneg, is_zero, section

p, q = sp.symbols("p q", positive=True)
kl = p * sp.log(p / q) + (1 - p) * sp.log((1 - p) / (1 - q))

section("(1) derivative in q")
check("d/dq kl(p||q) == (q - p)/(q(1 - q))", is_zero(sp.diff(kl, q) - (q - p) / (q * (1 - q))))
check("kl(p||p) == 0", is_zero(kl.subs(q, p)))

section("(2) closed form at p = 0")
c = sp.symbols("c", positive=True)
kl0 = -sp.log(1 - q)
check("lim_{p->0} p log(p/q) == 0 (the convention 0 log 0 = 0)", is_zero(sp.limit(p * sp.log(p / q), p, 0)))
check("at p = 0 the other term (1 - p) log((1 - p)/(1 - q)) == -log(1 - q)",
      is_zero(sp.expand_log(((1 - p) * sp.log((1 - p) / (1 - q))).subs(p, 0) - kl0, force=True)))
check("q = 1 - exp(-c) solves -log(1 - q) == c", is_zero(kl0.subs(q, 1 - sp.exp(-c)) - c))

section("(3) Pinsker's inequality")
f = kl - 2 * (q - p) ** 2
fprime = (q - p) * (1 - 2 * q) ** 2 / (q * (1 - q))
check("f'(q) == (q - p)(1 - 2q)²/(q(1 - q))", is_zero(sp.diff(f, q) - fprime))
check("f(p) == 0", is_zero(f.subs(q, p)))
check("1/(q(1 - q)) - 4 == (1 - 2q)²/(q(1 - q)) (so q(1 - q) <= 1/4 is all that is used)",
      is_zero(1 / (q * (1 - q)) - 4 - (1 - 2 * q) ** 2 / (q * (1 - q))))
s, w = sp.symbols("s w", positive=True)  # q = p + s (above p) or p = q + s (below p); 1 - q = w
check("q > p: f' = s(1 - 2q)²/(q w) >= 0", is_nonneg(s * (1 - 2 * q) ** 2 / (q * w)))
check("q < p: f' = -s(1 - 2q)²/(q w) <= 0", is_nonneg(s * (1 - 2 * q) ** 2 / (q * w)))
d = sp.symbols("d", positive=True)
check("inverse: 2d² <= c gives d <= sqrt(c/2)", is_zero(sp.solve(sp.Eq(2 * d ** 2, c), d)[0] - sp.sqrt(c / 2)))

section("(4) the refined relaxation (q >= p)")
g = kl - (q - p) ** 2 / (2 * q)
gprime = (q - p) * (q - p + q ** 2 + p * q) / (2 * q ** 2 * (1 - q))
check("g'(q) == (q - p)(q - p + q² + pq)/(2q²(1 - q))", is_zero(sp.diff(g, q) - gprime))
check("g(p) == 0", is_zero(g.subs(q, p)))
pp = sp.symbols("p0", nonnegative=True)
check("q = p + s, 1 - q = w: g' == s(s + q² + pq)/(2q² w) >= 0",
      is_nonneg(s * (s + (pp + s) ** 2 + pp * (pp + s)) / (2 * (pp + s) ** 2 * w)))
cc, pn = sp.symbols("c p", nonnegative=True)
root = cc + sp.sqrt(cc ** 2 + 2 * cc * pn)
check("d = c + sqrt(c² + 2cp) is the positive root of d² = 2c(p + d)", is_zero(sp.expand(root ** 2 - 2 * cc * (pn + root))))
check("(c + sqrt(2cp))² - (c² + 2cp) == 2c sqrt(2cp) >= 0, so sqrt(c² + 2cp) <= c + sqrt(2cp)",
      is_zero(sp.expand((cc + sp.sqrt(2 * cc * pn)) ** 2 - (cc ** 2 + 2 * cc * pn)) - 2 * cc * sp.sqrt(2 * cc * pn)))

section("numeric sanity check (in addition to the proof)")
ok = True
for pv, qv in [(0.1, 0.3), (0.5, 0.51), (0.01, 0.02), (0.7, 0.95)]:
    klv = float(kl.subs({p: pv, q: qv}))
    ok = ok and klv >= 2 * (qv - pv) ** 2 - 1e-15 and klv >= (qv - pv) ** 2 / (2 * qv) - 1e-15
check("Pinsker and the refined bound at sample points", ok)

finish()
