"""Exact-arithmetic oracle for pre-activation bounds and linear relaxations.

:func:`exact_preactivations` evaluates ``v_k = Σ_j W_kj z_j + b_k`` at an input in exact rationals on the spec's
float64 data (soft-thresholding, ReLU, box projection and the identity are rational; group soft-thresholding is
refused, as in :mod:`unfoldtheory.oracle.witness`). :func:`bounds_contain` decides exactly whether bounds from
:func:`unfoldtheory.lipschitz.bound_propagation.preactivation_bounds` contain them, and :func:`relaxation_holds`
whether the lines of a relaxation lie below / above the activation at given points.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unfoldtheory.activations import Activation
from unfoldtheory.oracle.rational import RationalVector, exact, matrix, matvec, vector
from unfoldtheory.oracle.witness import _activation
from unfoldtheory.spec import NetworkSpec


def exact_preactivations(spec: NetworkSpec, y: Any) -> list[RationalVector]:
    """The pre-activations ``v_1 … v_N`` at ``y`` in exact rational arithmetic on the spec's float64 data."""
    states = [vector(np.asarray(y, dtype=np.float64))]
    pres: list[RationalVector] = []
    for ws, b, act in zip(spec.weights, spec.biases, spec.activations, strict=True):
        v = vector(b)
        for j, w in ws.items():
            v = [a + c for a, c in zip(v, matvec(matrix(w), states[j]), strict=True)]
        pres.append(v)
        states.append(_activation(act, v))
    return pres


def _le(a: float, x: Any) -> bool:
    return a == -np.inf or (a != np.inf and exact(a) <= x)


def bounds_contain(bounds: Any, spec: NetworkSpec, y: Any) -> bool:
    """Whether ``bounds.lower[k] ≤ v_k(y) ≤ bounds.upper[k]`` holds exactly for every layer and neuron."""
    for v, lo, hi in zip(exact_preactivations(spec, y), bounds.lower, bounds.upper, strict=True):
        for x, a, b in zip(v, lo.tolist(), hi.tolist(), strict=True):
            if not (_le(a, x) and (b == np.inf or (b != -np.inf and x <= exact(b)))):
                return False
    return True


def relaxation_holds(act: Activation, a_l: Any, c_l: Any, a_u: Any, c_u: Any, points: Any) -> np.ndarray:
    """Per point and neuron (``points`` of shape (r, d)), whether ``a_l t + c_l ≤ φ(t) ≤ a_u t + c_u`` exactly
    (an infinite intercept: that side has no line and holds trivially)."""
    P = np.asarray(points, dtype=np.float64)
    out = np.zeros(P.shape, dtype=bool)
    al, cl, au, cu = (np.asarray(x, dtype=float).tolist() for x in (a_l, c_l, a_u, c_u))
    for r, row in enumerate(P):
        phi = _activation(act, vector(row))
        for i, (t, f) in enumerate(zip(row.tolist(), phi, strict=True)):
            low = cl[i] == -np.inf or exact(al[i]) * exact(t) + exact(cl[i]) <= f
            high = cu[i] == np.inf or f <= exact(au[i]) * exact(t) + exact(cu[i])
            out[r, i] = low and high
    return out


__all__ = ["bounds_contain", "exact_preactivations", "relaxation_holds"]
