"""Exact-arithmetic oracle for a pair witness of a Lipschitz lower bound.

:func:`witness_holds` evaluates the spec at ``y₁`` and ``y₂`` in exact rationals on the float64 weights (every
operation of soft-thresholding, ReLU, box projection and the identity is rational: sums, products, comparisons)
and decides ``claimed² · ‖y₂ − y₁‖² ≤ ‖f(y₂) − f(y₁)‖²`` exactly, i.e. that ``claimed`` is at most the exact ratio.
Group soft-thresholding needs a square root (``‖v_g‖``), irrational in general; it is refused.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from unfoldtheory.activations import BoxProjection, Identity, ReLU, SoftThreshold, is_builtin
from unfoldtheory.oracle.rational import RationalVector, exact, matrix, matvec, squared_norm, vector
from unfoldtheory.spec import NetworkSpec


def _activation(act: Any, v: RationalVector) -> RationalVector:
    if not is_builtin(act) or not isinstance(act, (Identity, ReLU, SoftThreshold, BoxProjection)):
        raise ValueError(f"activation {act.name} has no exact rational evaluation"
                         + (" (group soft-thresholding needs a square root)" if is_builtin(act) else " (user-defined)"))
    if isinstance(act, Identity):
        return v
    if isinstance(act, ReLU):
        return [max(x, Fraction(0)) for x in v]
    if isinstance(act, SoftThreshold):
        theta = [exact(t) for t in np.broadcast_to(act.theta, (len(v),)).tolist()]
        return [(x - t if x > t else x + t if x < -t else Fraction(0)) for x, t in zip(v, theta, strict=True)]
    lo, hi = (np.broadcast_to(b, (len(v),)).tolist() for b in (act.lower, act.upper))
    out = []
    for x, a, b in zip(v, lo, hi, strict=True):
        if a != -np.inf and x < exact(a):
            x = exact(a)
        if b != np.inf and x > exact(b):
            x = exact(b)
        out.append(x)
    return out


def exact_output(spec: NetworkSpec, y: Any) -> RationalVector:
    """``f(y)`` in exact rational arithmetic on the spec's float64 data (no rounding anywhere)."""
    states = [vector(np.asarray(y, dtype=np.float64))]
    for ws, b, act in zip(spec.weights, spec.biases, spec.activations, strict=True):
        v = vector(b)
        for j, w in ws.items():
            v = [a + c for a, c in zip(v, matvec(matrix(w), states[j]), strict=True)]
        states.append(_activation(act, v))
    out = [Fraction(0)] * spec.output_dim
    for k, c in spec.readout.items():
        out = [a + x for a, x in zip(out, matvec(matrix(c), states[k]), strict=True)]
    return out


def witness_holds(spec: NetworkSpec, certificate: dict[str, Any], claimed: float) -> bool:
    """Whether ``claimed ≤ ‖f(y₂) − f(y₁)‖ / ‖y₂ − y₁‖`` holds exactly (``f`` exact on the float64 data).

    ``certificate`` holds the pair ``y1``, ``y2`` (float64 vectors). Decided as
    ``claimed² ‖y₂ − y₁‖² ≤ ‖f(y₂) − f(y₁)‖²`` in rationals (``claimed ≤ 0`` holds trivially). Raises ValueError for
    a non-finite ``claimed`` or an activation without an exact rational evaluation (group soft-thresholding,
    user-defined ones).
    """
    value = exact(claimed)
    y1 = np.asarray(certificate["y1"], dtype=np.float64)
    y2 = np.asarray(certificate["y2"], dtype=np.float64)
    f1, f2 = exact_output(spec, y1), exact_output(spec, y2)
    if value <= 0:
        return True
    gap = squared_norm([b - a for a, b in zip(vector(y1), vector(y2), strict=True)])
    return value * value * gap <= squared_norm([b - a for a, b in zip(f1, f2, strict=True)])


__all__ = ["exact_output", "witness_holds"]
