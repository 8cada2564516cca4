"""Exact check of a Lasso duality-gap certificate (:func:`unfoldtheory.lasso.certified_gap`).

For ``P(x) = ½‖Ax − y‖² + λ‖x‖₁`` and ``D(u) = ⟨u, y⟩ − ½‖u‖²``, a certificate ``(u, gap)`` is valid
when (1) ``‖Aᵀu‖∞ ≤ λ`` (then ``D(u) ≤ P(z)`` for every ``z``, weak duality) and (2)
``P(x) − D(u) ≤ gap``; together they give ``P(x) − min P ≤ gap``. :func:`check_lasso_certificate`
decides both in exact rational arithmetic on the float64 numbers, plus, when given, (3)
``P̲ ≤ P(x)`` for a claimed lower bound and (4) ``relative·P(x) ≥ P(x) − D(u)`` for a claimed
relative gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from unfoldtheory.oracle.rational import dot, exact, matrix, matvec, squared_norm, transpose, vector


@dataclass(frozen=True)
class LassoCheck:
    """The exact verdicts on one certificate; ``holds`` is True when every claim checked holds.

    ``primal`` and ``dual`` are the exact ``P(x)`` and ``D(u)``; ``correlation`` is ``‖Aᵀu‖∞`` exactly.
    """

    feasible: bool
    gap_holds: bool
    lower_holds: bool
    relative_holds: bool
    primal: Fraction
    dual: Fraction
    correlation: Fraction

    @property
    def holds(self) -> bool:
        return self.feasible and self.gap_holds and self.lower_holds and self.relative_holds


def check_lasso_certificate(A: Any, y: Any, lam: float, x: Any, u: Any, gap: float, *,
                            primal_lower: float | None = None, relative: float | None = None) -> LassoCheck:
    """Decide exactly whether ``(u, gap)`` certifies ``x`` for the Lasso on ``(A, y, λ)``.

    ``gap = +inf`` (and ``relative = +inf``) claim nothing and hold trivially; a NaN claim does not hold.
    Checks (1) ``max_i |(Aᵀu)_i| ≤ λ``, (2) ``P(x) − D(u) ≤ gap``, (3) ``primal_lower ≤ P(x)`` and
    (4) ``relative·P(x) ≥ P(x) − D(u)`` (at ``P(x) = 0``: ``relative`` finite or the gap ``≤ 0``).
    """
    Aq, yq, xq, uq = matrix(A), vector(y), vector(x), vector(u)
    lam_q = exact(lam)
    if len(Aq) != len(yq) or len(Aq) != len(uq) or (Aq and len(Aq[0]) != len(xq)):
        raise ValueError(f"shapes do not match: A {np.shape(A)}, y {np.shape(y)}, x {np.shape(x)}, u {np.shape(u)}")
    r = [ax - yi for ax, yi in zip(matvec(Aq, xq), yq, strict=True)]
    primal = squared_norm(r) / 2 + lam_q * sum((abs(v) for v in xq), Fraction(0))
    dual = dot(uq, yq) - squared_norm(uq) / 2
    correlation = max((abs(v) for v in matvec(transpose(Aq), uq)), default=Fraction(0)) if xq else Fraction(0)
    excess = primal - dual
    return LassoCheck(
        feasible=correlation <= lam_q,
        gap_holds=_at_least(gap, excess),
        lower_holds=primal_lower is None or (not math.isnan(primal_lower) and exact(primal_lower) <= primal),
        relative_holds=relative is None or _relative_holds(relative, excess, primal),
        primal=primal, dual=dual, correlation=correlation)


def _at_least(claim: float, value: Fraction) -> bool:
    claim = float(claim)
    if math.isnan(claim):
        return False
    return claim == math.inf or (claim != -math.inf and exact(claim) >= value)


def _relative_holds(relative: float, excess: Fraction, primal: Fraction) -> bool:
    relative = float(relative)
    if math.isnan(relative):
        return False
    if relative == math.inf:
        return True
    if primal == 0:
        return excess <= 0
    return exact(relative) * primal >= excess


__all__ = ["LassoCheck", "check_lasso_certificate"]
