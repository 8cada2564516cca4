"""Soft thresholding: proximal operator of theta*|.|, slope in [0, 1], firmly nonexpansive.

Let theta >= 0 and ST(v) = sign(v) * max(|v| - theta, 0) (coordinatewise; theta
may differ per coordinate, every statement below is per coordinate).

Claims (Parikh & Boyd, "Proximal Algorithms", Sec. 6.5 (prox of the l1 norm:
soft thresholding); Combettes & Pesquet, "Proximal splitting methods in signal
processing", Sec. 10.2; Bauschke & Combettes, "Convex Analysis and Monotone
Operator Theory", Ch. 12 (proximity operators are firmly nonexpansive) and
Ch. 16 (Fermat's rule, subdifferential of |.|)):

(a) ST(v) = prox_{theta|.|}(v) = argmin_x 1/2 (x - v)**2 + theta |x|.  The
    objective is convex, so by Fermat's rule x is a minimiser iff
    v - x in theta * d|x|, with d|x| = {sign x} for x != 0 and [-1, 1] at 0.
    We show: x = ST(v) satisfies this for every v (regions v < -theta,
    |v| <= theta, v > theta), and conversely every x that satisfies it equals
    ST(v) (cases x > 0, x < 0, x = 0).  Hence the minimiser exists and is
    unique (also: the objective is 1-strongly convex, the quadratic part
    satisfies the strong-convexity identity checked below).  With per-coordinate
    thresholds the objective 1/2||x - v||^2 + sum_i theta_i |x_i| separates over
    coordinates, so the vector prox is ST applied coordinatewise.
(b) ST is slope-restricted in [0, 1]: 0 <= (ST(a) - ST(b)) / (a - b) <= 1 for
    all a != b (all 9 region pairs), and both ends are attained.
    Off the kinks v = +-theta the derivative is 1 for |v| > theta and 0 for
    |v| < theta, matching ``SoftThreshold.slopes``; for theta > 0 the
    one-sided derivatives at a kink are 0 and 1, so the package's choice 0
    lies in the Clarke generalised derivative [0, 1].  For theta = 0, ST is
    the identity (derivative 1 everywhere, also at v = 0).
(c) Hence ST is firmly nonexpansive:
    (ST(a) - ST(b))(a - b) >= (ST(a) - ST(b))**2, and for the separable vector
    map <ST(a) - ST(b), a - b> >= ||ST(a) - ST(b)||^2.
"""

import sympy as sp
from _check import (
    check,
    check_firm_from_slope,
    check_slope,
    finish,
    ge,
    gt,
    holds_on,
    is_zero,
    section,
)

theta = sp.Symbol("theta", real=True)
v = sp.Symbol("v", real=True)
THETA_NONNEG = [ge(theta, 0)]


def st_formula(x):
    """The definition used by the package."""
    return sp.sign(x) * sp.Max(sp.Abs(x) - theta, 0)


def st(x):
    """The same map written piecewise over the three regions."""
    return sp.Piecewise((x + theta, x < -theta), (0, x <= theta), (x - theta, True))


REGIONS = [
    ("(-oo, -theta)", lambda x: [gt(-theta, x)]),
    ("[-theta, theta]", lambda x: [ge(x, -theta), ge(theta, x)]),
    ("(theta, oo)", lambda x: [gt(x, theta)]),
]

section("ST formula equals its piecewise form (splitting |v| <= theta at 0 for sign/abs)")
for name, region in [
    ("v < -theta", [gt(-theta, v)]),
    ("-theta <= v < 0", [ge(v, -theta), gt(0, v)]),
    ("0 <= v <= theta", [ge(v, 0), ge(theta, v)]),
    ("v > theta", [gt(v, theta)]),
]:
    cert = holds_on(THETA_NONNEG + region, [theta, v], st_formula(v) - st(v), "==")
    check(f"sign(v)max(|v|-theta,0) == piecewise on {name} [{cert}]", cert is not None)

section("(a) x = ST(v) satisfies the optimality condition v - x in theta*d|x|")
x = st(v)
region = THETA_NONNEG + REGIONS[0][1](v)
cert = holds_on(region, [theta, v], -x, ">")
check(f"v < -theta: x < 0, so d|x| = {{-1}} [{cert}]", cert is not None)
cert = holds_on(region, [theta, v], (v - x) - theta * (-1), "==")
check(f"v < -theta: v - x == theta*(-1) [{cert}]", cert is not None)
region = THETA_NONNEG + REGIONS[1][1](v)
cert = holds_on(region, [theta, v], x, "==")
check(f"|v| <= theta: x == 0, so theta*d|x| = [-theta, theta] [{cert}]", cert is not None)
cert_lo = holds_on(region, [theta, v], (v - x) + theta, ">=")
cert_hi = holds_on(region, [theta, v], theta - (v - x), ">=")
check(f"|v| <= theta: v - x >= -theta [{cert_lo}]", cert_lo is not None)
check(f"|v| <= theta: v - x <= theta [{cert_hi}]", cert_hi is not None)
region = THETA_NONNEG + REGIONS[2][1](v)
cert = holds_on(region, [theta, v], x, ">")
check(f"v > theta: x > 0, so d|x| = {{1}} [{cert}]", cert is not None)
cert = holds_on(region, [theta, v], (v - x) - theta * 1, "==")
check(f"v > theta: v - x == theta*1 [{cert}]", cert is not None)

section("(a) uniqueness: every x with v - x in theta*d|x| equals ST(v)")
xs = sp.Symbol("x", real=True)
# x > 0: the condition reads v = x + theta.
cert = holds_on([*THETA_NONNEG, gt(xs, 0)], [theta, xs], st(xs + theta) - xs, "==")
check(f"x > 0, v = x + theta  =>  ST(v) == x [{cert}]", cert is not None)
# x < 0: the condition reads v = x - theta.
cert = holds_on([*THETA_NONNEG, gt(0, xs)], [theta, xs], st(xs - theta) - xs, "==")
check(f"x < 0, v = x - theta  =>  ST(v) == x [{cert}]", cert is not None)
# x = 0: the condition reads -theta <= v <= theta.
cert = holds_on(THETA_NONNEG + REGIONS[1][1](v), [theta, v], st(v), "==")
check(f"x = 0, |v| <= theta  =>  ST(v) == 0 [{cert}]", cert is not None)

section("(a) strict convexity and separability of the prox objective")
x1, x2 = sp.symbols("x1 x2", real=True)
lam = sp.Symbol("lambda", positive=True)


def quad(z):
    return (z - v) ** 2 / 2


gap = lam * quad(x1) + (1 - lam) * quad(x2) - quad(lam * x1 + (1 - lam) * x2)
check(
    "1/2(x-v)^2 is 1-strongly convex: Jensen gap == lambda(1-lambda)(x1-x2)^2/2",
    is_zero(gap - lam * (1 - lam) * (x1 - x2) ** 2 / 2),
)
n = 3
xv = sp.symbols(f"x1:{n + 1}", real=True)
vs = sp.symbols(f"v1:{n + 1}", real=True)
ths = sp.symbols(f"theta1:{n + 1}", nonnegative=True)
objective = sum((xi - vi) ** 2 for xi, vi in zip(xv, vs, strict=True)) / 2 + sum(
    t * sp.Abs(xi) for t, xi in zip(ths, xv, strict=True)
)
per_coordinate = sum((xi - vi) ** 2 / 2 + t * sp.Abs(xi) for xi, vi, t in zip(xv, vs, ths, strict=True))
check(
    "1/2||x-v||^2 + sum theta_i|x_i| == sum of scalar prox objectives (n=3)",
    is_zero(objective - per_coordinate),
)

section("(b) slope restriction in [0, 1], all 9 region pairs")
check_slope("ST", st, REGIONS, params=[theta], assumptions=THETA_NONNEG)

section("(b) the interval [0, 1] is tight: both ends are attained")
a, b = sp.symbols("a b", real=True)
q = (st(a) - st(b)) / (a - b)
region = THETA_NONNEG + REGIONS[2][1](a) + REGIONS[2][1](b) + [gt(a, b)]
cert = holds_on(region, [theta, a, b], q - 1, "==")
check(f"a > b > theta: q == 1 [{cert}]", cert is not None)
region = THETA_NONNEG + REGIONS[1][1](a) + REGIONS[1][1](b) + [gt(a, b)]
cert = holds_on(region, [theta, a, b], q, "==")
check(f"theta >= a > b >= -theta: q == 0 [{cert}]", cert is not None)
witness = {theta: 1, a: 3, b: 2}
check("witness theta=1, a=3, b=2: q == 1", q.subs(witness) == 1)
witness = {theta: 1, a: sp.Rational(1, 2), b: 0}
check("witness theta=1, a=1/2, b=0: q == 0", q.subs(witness) == 0)

section("(b) derivative on the open regions: 1 for |v| > theta, 0 for |v| < theta")
for name, region, expected in [
    ("v < -theta", [gt(-theta, v)], 1),
    ("-theta < v < theta", [gt(v, -theta), gt(theta, v)], 0),
    ("v > theta", [gt(v, theta)], 1),
]:
    cert = holds_on(THETA_NONNEG + region, [theta, v], sp.diff(st(v), v) - expected, "==")
    check(f"dST/dv == {expected} on {name} [{cert}]", cert is not None)
h = sp.Symbol("h", real=True)
cert = holds_on([*THETA_NONNEG, gt(h, 0)], [theta, h], (st(theta + h) - st(theta)) / h - 1, "==")
check(f"kink v = theta: right difference quotient == 1 for every h > 0 [{cert}]", cert is not None)
cert = holds_on([gt(h, 0), ge(2 * theta, h)], [theta, h], (st(theta) - st(theta - h)) / h, "==")
check(f"kink v = theta: left difference quotient == 0 for 0 < h <= 2 theta [{cert}]", cert is not None)

st0 = st(v).subs(theta, 0)
cert_id = [holds_on(region, [v], st0 - v, "==") for region in ([gt(0, v)], [gt(v, 0)])]
check(f"theta = 0: ST(v) == v on v < 0 and on v > 0 {cert_id}", all(cert is not None for cert in cert_id))
check("theta = 0: ST(0) == 0", st0.subs(v, 0) == 0)

section("(c) firm nonexpansiveness from (b)")
check_firm_from_slope("ST")

section("numeric sanity check (in addition to the proof)")
sample_pairs = [(-3.0, -1.2), (-0.4, 0.3), (2.5, -2.5), (0.7, 0.69), (5.0, 1.0)]
st_numeric = sp.lambdify((v, theta), st_formula(v))
ok = True
for th in (0.0, 0.5, 1.0):
    for pa, pb in sample_pairs:
        dz, dv = st_numeric(pa, th) - st_numeric(pb, th), pa - pb
        ok = ok and bool(-1e-12 <= dz / dv <= 1 + 1e-12 and dz * dv >= dz**2 - 1e-12)
check("slope in [0,1] and firm nonexpansiveness at sample points", ok)

finish()
