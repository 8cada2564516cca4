"""Exact oracles for the parameter Lipschitz constant: the layer recursion's norms and the pair witness.

* :func:`norm_at_most` decides ``‖M‖₂ ≤ s`` exactly (``s ≥ 0`` and ``s²I − MᵀM ⪰ 0``).
* :func:`recursion_holds` decides that a certified :func:`~unfoldtheory.generalization.parameter_lipschitz`
  result holds on the exact rationals of the model's float64 weights: every per-layer number of the
  certificate dominates the exact norm it stands for (suprema over the ball at the exact end points of each
  step interval, or the centre plus ``r`` times an exactly checked factor), and the recursion assembled from
  those numbers gives ``K_L`` (:func:`~unfoldtheory.generalization.parameter_lipschitz.verify_recursion`, exact).
* :func:`traced_recursion_holds` decides the same for a certificate of the traced route
  (:mod:`~unfoldtheory.generalization.traced_lipschitz`): every stored norm dominates the exact norm of the traced
  spec's entry plus its move over the ball, and the recursion holds
  (:func:`~unfoldtheory.generalization.traced_lipschitz.verify_traced_recursion`, exact).
* :func:`witness_holds` decides that a certified lower bound's pair lies in the set and that its exact ratio
  ``‖h_θ₂(y) − h_θ₁(y)‖/‖θ₂ − θ₁‖`` (the layer map evaluated in rationals) is ``≥`` the certified value.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from unfoldtheory.generalization.parameter_lipschitz import verify_recursion, with_parameters
from unfoldtheory.generalization.traced_lipschitz import verify_traced_recursion
from unfoldtheory.oracle.rational import (
    RationalMatrix,
    RationalVector,
    add,
    exact,
    identity,
    is_positive_semidefinite,
    matmul,
    matrix,
    matvec,
    squared_norm,
    transpose,
    vector,
)
from unfoldtheory.results import Bound
from unfoldtheory.unfold import ALISTA, LISTA, LISTACP, UnfoldedISTA
from unfoldtheory.unfold.base import to_numpy


def norm_at_most(M: RationalMatrix, s: Fraction) -> bool:
    """Whether ``‖M‖₂ ≤ s`` exactly, through the smaller Gram matrix."""
    if s < 0:
        return False
    rows, cols = len(M), len(M[0]) if M else 0
    if rows == 0 or cols == 0:
        return True
    gram = matmul(M, transpose(M)) if rows <= cols else matmul(transpose(M), M)
    size = len(gram)
    return is_positive_semidefinite(add(_scaled(identity(size), s * s), gram, -1))


def _sqrt_upper(x: Fraction) -> Fraction:
    """A rational ``w ≥ √x``."""
    w = Fraction(math.sqrt(float(x)))
    while w * w < x:
        w = Fraction(np.nextafter(float(w), math.inf))
    return w


def _hstack(a: RationalMatrix, b: RationalMatrix) -> RationalMatrix:
    return [ra + rb for ra, rb in zip(a, b, strict=True)]


def _scaled(a: RationalMatrix, t: Fraction) -> RationalMatrix:
    return [[t * x for x in row] for row in a]


def recursion_holds(model: Any, bound: Bound) -> bool:
    """Whether the certificate of ``parameter_lipschitz(model, …)`` holds exactly (module docstring). The
    bound must have been computed with ``center=None`` (the model itself is the centre)."""
    cert = bound.certificate
    if not verify_recursion(cert):
        return False
    R, r = exact(cert["input_radius"]), exact(cert["parameter_radius"])
    c = with_parameters(model, np.concatenate([to_numpy(p).ravel() for p in model.parameters()]))
    A = matrix(c.A_numpy())
    n = len(A[0])
    eye = identity(n)
    for k, L in enumerate(cert["layers"]):
        a, inject, joint = exact(L["a"]), exact(L["inject"]), exact(L["joint"])
        terms = [(exact(c0), exact(c1)) for _, c0, c1 in L["terms"]]
        if terms[-1][0] ** 2 < n or terms[-1][1] != 0:  # the threshold coefficient √n
            return False
        if isinstance(c, (UnfoldedISTA, ALISTA)):
            P = matrix(to_numpy(c.W)) if isinstance(c, ALISTA) else A
            B = matmul(transpose(P), A)
            (c0, c1) = terms[0]
            if not (norm_at_most(P, c0 / R) and norm_at_most(B, c1)):
                return False
            g = exact(to_numpy(c.step[k]))
            for t in (g - r, g + r):
                M = add(eye, B, -t)
                if not (norm_at_most(M, a) and norm_at_most(_hstack(M, _scaled(transpose(P), t)), joint)
                        and norm_at_most(_scaled(P, t), inject)):
                    return False
        elif isinstance(c, LISTACP):
            W = matrix(to_numpy(c.W[k]))
            c0, normA = terms[0]
            M = add(eye, matmul(transpose(W), A), -1)
            wide = _sqrt_upper(normA * normA + 1)
            if not (c0 == R and norm_at_most(A, normA) and norm_at_most(M, a - r * normA)
                    and norm_at_most(W, inject - r) and norm_at_most(_hstack(M, transpose(W)), joint - r * wide)):
                return False
        elif isinstance(c, LISTA):
            W1 = matrix(to_numpy(c.W1[k]))
            if not norm_at_most(W1, inject - r):
                return False
            if k == 0:
                if a != 0 or terms[0] != (R, 0):
                    return False
                continue
            W2 = matrix(to_numpy(c.W2[k - 1]))
            if not (terms[0] == (0, 1) and terms[1] == (R, 0) and norm_at_most(W2, a - r)
                    and norm_at_most(_hstack(W2, W1), joint - r)):
                return False
        else:
            raise ValueError(f"model {type(c).__name__} is not covered by the oracle")
    return True


def traced_recursion_holds(spec: Any, bound: Bound) -> bool:
    """Whether a traced certificate of ``parameter_lipschitz`` holds exactly on the rationals of ``spec`` (the
    trace at the centre): each ``a_kj ≥ ‖W_kj‖ + |s|r``, ``J_k ≥ ‖[W_kj]_j‖ + r·spread``, ``β_k ≥ ‖b_k‖ + |s|r``,
    ``sup‖C_k‖ ≥ ‖C_k‖ + |s|r``, ``τ_k² ≥ s²·copies`` and ``‖φ_k(0)‖`` (module docstring)."""
    cert = bound.certificate
    if not verify_traced_recursion(cert):
        return False
    r = exact(cert["parameter_radius"])
    for k, S in enumerate(cert["states"], start=1):
        weights, spread = spec.weights[k - 1], {}
        for j, a, p, s in S["edges"]:
            if not norm_at_most(matrix(weights[j]), exact(a) - exact(s) * r):
                return False
            if p is not None:
                spread[p] = spread.get(p, Fraction(0)) + exact(s) ** 2
        blocks = [matrix(weights[j]) for j in sorted(weights)]
        joint = blocks[0] if blocks else []
        for block in blocks[1:]:
            joint = _hstack(joint, block)
        widest = _sqrt_upper(max(spread.values())) if spread else Fraction(0)
        if blocks and not norm_at_most(joint, exact(S["joint"]) - widest * r):
            return False
        sb = exact(S["bias_term"][1]) if S["bias_term"] is not None else Fraction(0)
        b = vector(spec.biases[k - 1])
        if exact(S["bias"]) - sb * r < 0 or squared_norm(b) > (exact(S["bias"]) - sb * r) ** 2:
            return False
        act = spec.activations[k - 1]
        if S["threshold_term"] is not None:
            theta = getattr(act, "theta", None)
            copies = len(act.groups) if hasattr(act, "groups") else (spec.dims[k] if np.ndim(theta) == 0 else 1)
            if exact(S["threshold_term"][1]) ** 2 < exact(S["threshold_term"][2]) ** 2 * copies:
                return False
        if squared_norm(vector(act(np.zeros(spec.dims[k])))) > exact(S["offset"]) ** 2:
            return False
    for k, norm, _, s in cert["readout"]:
        if not norm_at_most(matrix(spec.readout[k]), exact(norm) - exact(s) * r):
            return False
    return True


def _soft(v: RationalVector, t: Fraction) -> RationalVector:
    return [(x - t if x > t else x + t if x < -t else Fraction(0)) for x in v]


def exact_output(model: Any, y: Any) -> RationalVector:
    """``h_θ(y)`` of the layer map of :mod:`~unfoldtheory.generalization.parameter_lipschitz`, in exact rationals."""
    A = matrix(model.A_numpy())
    yv = vector(y)
    x: RationalVector = [Fraction(0)] * len(A[0])
    for k in range(model.layers):
        t = max(exact(to_numpy(model.threshold[k])), Fraction(0))
        if isinstance(model, (UnfoldedISTA, ALISTA)):
            P = matrix(to_numpy(model.W)) if isinstance(model, ALISTA) else A
            g = exact(to_numpy(model.step[k]))
            res = [a - b for a, b in zip(matvec(A, x), yv, strict=True)]
            v = [xi - g * si for xi, si in zip(x, matvec(transpose(P), res), strict=True)]
        elif isinstance(model, LISTACP):
            res = [b - a for a, b in zip(matvec(A, x), yv, strict=True)]
            v = [xi + si for xi, si in zip(x, matvec(transpose(matrix(to_numpy(model.W[k]))), res), strict=True)]
        elif isinstance(model, LISTA):
            v = matvec(matrix(to_numpy(model.W1[k])), yv)
            if k:
                v = [p + q for p, q in zip(matvec(matrix(to_numpy(model.W2[k - 1])), x), v, strict=True)]
        else:
            raise ValueError(f"model {type(model).__name__} is not covered by the oracle")
        x = _soft(v, t)
    return x


def witness_holds(model: Any, bound: Bound, center: Any, parameter_radius: float, input_radius: float) -> bool:
    """Whether a lower bound's pair witness holds exactly: both parameters within ``parameter_radius`` of
    ``center`` (a flat vector), ``‖y‖ ≤ input_radius`` and ``‖h₂ − h₁‖² ≥ value²‖θ₂ − θ₁‖²``."""
    cert = bound.certificate
    t1, t2, c = vector(cert["theta1"]), vector(cert["theta2"]), vector(center)
    y = cert["y"]
    r2, R2 = exact(parameter_radius) ** 2, exact(input_radius) ** 2
    inside = all(squared_norm([a - b for a, b in zip(t, c, strict=True)]) <= r2 for t in (t1, t2))
    if not inside or squared_norm(vector(y)) > R2:
        return False
    if bound.value <= 0:
        return True
    h1 = exact_output(with_parameters(model, cert["theta1"]), y)
    h2 = exact_output(with_parameters(model, cert["theta2"]), y)
    num = squared_norm([a - b for a, b in zip(h2, h1, strict=True)])
    return num >= exact(bound.value) ** 2 * squared_norm([a - b for a, b in zip(t2, t1, strict=True)])


__all__ = ["exact_output", "norm_at_most", "recursion_holds", "traced_recursion_holds", "witness_holds"]
