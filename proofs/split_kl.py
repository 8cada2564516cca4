"""The split of the clipped loss into pieces (unfoldtheory/generalization/pac_bayes.py).

For levels 0 = t_0 < t_1 < ... < t_J = b, widths Δ_j = t_j - t_{j-1} and
Z_j(ℓ) = min(max(ℓ - t_{j-1}, 0), Δ_j)/Δ_j in [0, 1]:

    min(ℓ, b) = Σ_j Δ_j Z_j(ℓ)   for every ℓ >= 0.

So E min(ℓ, b) = Σ_j Δ_j E Z_j, and a kl bound on each [0, 1]-valued Z_j (union bound over j) bounds
the clipped loss with no discretisation error (the "split-kl" idea of Wu & Seldin 2022, here with
continuous pieces). Checked for J = 4 with symbolic levels in each of the regions ℓ <= t_1,
t_{i-1} <= ℓ <= t_i (i = 2..4) and ℓ >= b: on each region every piece is at a fixed branch (full, partial
or empty), which the slack substitution of _check resolves. The regions are open (a branch condition
at a level is undecided there); both sides are continuous in ℓ, so the identity extends to the
levels themselves. Also: each Z_j lies in [0, 1].
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _check import check, finish, gt, holds_on, section

J = 4
ell = sp.Symbol("ell", real=True)
t = sp.symbols(f"t1:{J + 1}", real=True)  # t_1 .. t_J = b
levels = (sp.Integer(0), *t)


def piece(j: int) -> sp.Expr:
    """Δ_j Z_j = min(max(ℓ - t_{j-1}, 0), Δ_j) as a Piecewise."""
    lo, hi = levels[j - 1], levels[j]
    return sp.Piecewise((0, ell <= lo), (ell - lo, ell <= hi), (hi - lo, True))


ordered = [gt(t[0], 0)] + [gt(t[i], t[i - 1]) for i in range(1, J)]
total = sum(piece(j) for j in range(1, J + 1))
variables = [*t, ell]

section(f"min(ℓ, b) == Σ_j Δ_j Z_j for J = {J}")
regions = {"0 < ℓ < t_1": [gt(ell, 0), gt(t[0], ell)]}
for i in range(2, J + 1):
    regions[f"t_{i - 1} < ℓ < t_{i}"] = [gt(ell, t[i - 2]), gt(t[i - 1], ell)]
for name, region in regions.items():
    cert = holds_on(ordered + region, variables, total - ell, "==")
    check(f"Σ_j Δ_j Z_j == ℓ on {name} (so == min(ℓ, b)) [{cert}]", cert is not None)
cert = holds_on([*ordered, gt(ell, t[-1])], variables, total - t[-1], "==")
check(f"Σ_j Δ_j Z_j == b on ℓ > b [{cert}]", cert is not None)

section("each piece lies in [0, Δ_j]")
for j in range(1, J + 1):
    width = levels[j] - levels[j - 1]
    for name, region in {**regions, "ℓ > b": [gt(ell, t[-1])]}.items():
        lo = holds_on(ordered + region, variables, piece(j), ">=")
        hi = holds_on(ordered + region, variables, width - piece(j), ">=")
        check(f"0 <= Δ_{j} Z_{j} <= Δ_{j} on {name}", lo is not None and hi is not None)

finish()
