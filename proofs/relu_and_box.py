"""ReLU, one-sided soft threshold, box projection and identity: slope in [0, 1], firmly nonexpansive.

Claims (scalar maps, applied coordinatewise):

* ReLU(v) = max(v, 0), the projection onto [0, oo);
* the one-sided soft threshold ReLU(v - theta) = max(v - theta, 0), theta real;
* the box projection clip(v, l, u) = min(max(v, l), u) with l <= u, the
  projection onto [l, u], and its one-sided versions for infinite bounds,
  clip(v, l, +oo) = max(v, l) and clip(v, -oo, u) = min(v, u);

are slope-restricted in [0, 1]: 0 <= (f(a) - f(b)) / (a - b) <= 1 for all
a != b (every pair of regions checked), and therefore firmly nonexpansive
coordinatewise, (f(a) - f(b))(a - b) >= (f(a) - f(b))**2, and as separable
vector maps <f(a) - f(b), a - b> >= ||f(a) - f(b)||^2.  The identity has
difference quotient exactly 1 (slope interval [1, 1]; it is firmly
nonexpansive with equality).  Where these maps are differentiable (off the
kinks) their derivative is 0 or 1, matching ``slopes()`` in the package, which
at a kink picks a value in [0, 1], the Clarke generalised derivative there.

Sources: Bauschke & Combettes, "Convex Analysis and Monotone Operator Theory",
Ch. 4 (projections onto closed convex sets are firmly nonexpansive) and Ch. 12
(proximity operators are firmly nonexpansive); Parikh & Boyd, "Proximal
Algorithms", Sec. 6.2 (projection onto a box);
Fazlyab et al., "Efficient and Accurate Estimation of Lipschitz Constants for
Deep Neural Networks" (NeurIPS 2019), slope-restricted activations in [0, 1].
"""

import sympy as sp
from _check import check, check_firm_from_slope, check_slope, finish, ge, gt, holds_on, is_zero, section

v, theta, lo, up = sp.symbols("v theta l u", real=True)


def relu(x):
    return sp.Piecewise((0, x < 0), (x, True))


def relu_shifted(x):
    return sp.Piecewise((0, x <= theta), (x - theta, True))


def clip(x):
    return sp.Piecewise((lo, x < lo), (x, x <= up), (up, True))


def clip_below(x):
    """clip(v, l, +oo)"""
    return sp.Piecewise((lo, x < lo), (x, True))


def clip_above(x):
    """clip(v, -oo, u)"""
    return sp.Piecewise((x, x <= up), (up, True))


RELU_REGIONS = [("(-oo, 0)", lambda x: [gt(0, x)]), ("[0, oo)", lambda x: [ge(x, 0)])]
SHIFTED_REGIONS = [("(-oo, theta]", lambda x: [ge(theta, x)]), ("(theta, oo)", lambda x: [gt(x, theta)])]
BOX = [ge(up, lo)]
BOX_REGIONS = [
    ("(-oo, l)", lambda x: [gt(lo, x)]),
    ("[l, u]", lambda x: [ge(x, lo), ge(up, x)]),
    ("(u, oo)", lambda x: [gt(x, up)]),
]
BELOW_REGIONS = [("(-oo, l)", lambda x: [gt(lo, x)]), ("[l, oo)", lambda x: [ge(x, lo)])]
ABOVE_REGIONS = [("(-oo, u]", lambda x: [ge(up, x)]), ("(u, oo)", lambda x: [gt(x, up)])]

section("formulas equal their piecewise forms on every region")
for name, region in RELU_REGIONS:
    cert = holds_on(region(v), [v], sp.Max(v, 0) - relu(v), "==")
    check(f"max(v, 0) == piecewise on {name} [{cert}]", cert is not None)
for name, region in SHIFTED_REGIONS:
    cert = holds_on(region(v), [theta, v], sp.Max(v - theta, 0) - relu_shifted(v), "==")
    check(f"max(v - theta, 0) == piecewise on {name} [{cert}]", cert is not None)
for name, region in BOX_REGIONS:
    cert = holds_on(BOX + region(v), [lo, up, v], sp.Min(sp.Max(v, lo), up) - clip(v), "==")
    check(f"min(max(v, l), u) == piecewise on {name}, l <= u [{cert}]", cert is not None)

for name, region in BELOW_REGIONS:
    cert = holds_on(region(v), [lo, v], sp.Max(v, lo) - clip_below(v), "==")
    check(f"max(v, l) == piecewise on {name} [{cert}]", cert is not None)
for name, region in ABOVE_REGIONS:
    cert = holds_on(region(v), [up, v], sp.Min(v, up) - clip_above(v), "==")
    check(f"min(v, u) == piecewise on {name} [{cert}]", cert is not None)

section("derivatives on the open regions (off the kinks) are 0 or 1")
open_cases = [
    ("ReLU", relu, [], [("v < 0", [gt(0, v)], 0), ("v > 0", [gt(v, 0)], 1)]),
    ("ReLU(v-theta)", relu_shifted, [], [("v < theta", [gt(theta, v)], 0), ("v > theta", [gt(v, theta)], 1)]),
    (
        "clip",
        clip,
        BOX,
        [("v < l", [gt(lo, v)], 0), ("l < v < u", [gt(v, lo), gt(up, v)], 1), ("v > u", [gt(v, up)], 0)],
    ),
]
for label, f, assumptions, pieces in open_cases:
    for name, region, expected in pieces:
        cert = holds_on([*assumptions, *region], [theta, lo, up, v], sp.diff(f(v), v) - expected, "==")
        check(f"{label}: derivative == {expected} on {name} [{cert}]", cert is not None)

section("ReLU: slope in [0, 1], all 4 region pairs")
check_slope("ReLU", relu, RELU_REGIONS)

section("one-sided soft threshold ReLU(v - theta): slope in [0, 1], all 4 region pairs")
check_slope("ReLU(v-theta)", relu_shifted, SHIFTED_REGIONS, params=[theta])

section("box projection clip(v, l, u), l <= u: slope in [0, 1], all 9 region pairs")
check_slope("clip", clip, BOX_REGIONS, params=[lo, up], assumptions=BOX)

section("one-sided boxes max(v, l) and min(v, u): slope in [0, 1], all 4 region pairs each")
check_slope("clip(v, l, +oo)", clip_below, BELOW_REGIONS, params=[lo])
check_slope("clip(v, -oo, u)", clip_above, ABOVE_REGIONS, params=[up])

section("identity: difference quotient is exactly 1")
a, b = sp.symbols("a b", real=True)
check("(a - b)/(a - b) == 1 for a != b", is_zero((a - b) / (a - b) - 1))
check("identity: <a - b, a - b> - ||a - b||^2 == 0 (firm nonexpansiveness with equality)", is_zero((a - b) ** 2 - (a - b) ** 2))

section("firm nonexpansiveness from slope in [0, 1] (all maps above)")
check_firm_from_slope("slope in [0,1]")

finish()
