"""Interpolation conditions as rows of a performance-estimation SDP.

A PEP works with a Gram matrix ``G`` of a few *leaf* vectors; every other vector of the problem
(iterates, gradients, subgradients) is a fixed linear combination of the leaves, so every inner
product is a linear function ``⟨sym(a bᵀ), G⟩`` of ``G``. A :class:`Vec` holds such a combination.

Classes and the inequality written for every ordered pair ``(i, j)``, ``i ≠ j``, of a function's
points ``(x_i, g_i, f_i)`` (Taylor, Hendrickx & Glineur, *Smooth strongly convex interpolation and
exact worst-case performance of first-order methods*, Math. Program. 2017, Thm. 4; the convex case
is their Thm. 1 with ``L = ∞``):

* ``F_{μ,L}`` (L-smooth, μ-strongly convex, ``0 ≤ μ < L``)::

      f_j − f_i + ⟨g_j, x_i − x_j⟩ + (μ/2)‖x_i − x_j‖²
                + 1/(2(L − μ)) ‖g_i − g_j − μ(x_i − x_j)‖² ≤ 0

  (the THG inequality, rearranged; ``proofs/pep_certificate.py`` checks the rearrangement and that
  every ``f ∈ F_{μ,L}`` satisfies it, which is all an upper bound needs);
* convex, possibly nonsmooth (``g_i`` a subgradient)::

      f_j − f_i + ⟨g_j, x_i − x_j⟩ ≤ 0.

Each row is ``Σ_t w_t ⟨sym(a_t b_tᵀ), G⟩ + (value terms) ≤ 0``; a :class:`TermBlock` stores one
``t`` for a run of rows. The same code builds the data in float64 (for the solver) and in exact
rationals (object arrays of :class:`~fractions.Fraction`, for the exact certificate check).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Vec:
    """A linear combination of the leaves: coefficients ``val`` (float64 or Fraction objects).

    ``mag`` is the same combination computed with the absolute value of every coefficient, i.e.
    the sum of the magnitudes of the monomials that make up each entry; it bounds the rounding
    error of ``val`` in the float64 certificate check.
    """

    val: np.ndarray
    mag: np.ndarray

    def __add__(self, other: Vec) -> Vec:
        return Vec(self.val + other.val, self.mag + other.mag)

    def __sub__(self, other: Vec) -> Vec:
        return Vec(self.val - other.val, self.mag + other.mag)

    def __mul__(self, c: Any) -> Vec:
        return Vec(self.val * c, self.mag * abs(c))

    __rmul__ = __mul__

    def __truediv__(self, c: Any) -> Vec:
        return Vec(self.val / c, self.mag / abs(c))


class Basis:
    """The leaf basis of dimension ``dim``, in float64 (``exact=False``) or exact rationals."""

    def __init__(self, dim: int, exact: bool) -> None:
        self.dim = dim
        self.exact = exact

    def num(self, x: float) -> float | Fraction:
        """``x`` in the working number type (floats convert to Fractions exactly)."""
        return Fraction(x) if self.exact else float(x)

    def zero(self) -> Vec:
        z = np.array([Fraction(0)] * self.dim, dtype=object) if self.exact else np.zeros(self.dim)
        return Vec(z, z.copy())

    def leaf(self, index: int, scale: float) -> Vec:
        """``scale · e_index``: the leaf vector stored in units of ``scale`` (a power of two)."""
        v = self.zero()
        v.val[index] = self.num(scale)
        v.mag[index] = abs(self.num(scale))
        return v


@dataclass(frozen=True)
class Point:
    """A point of a function: position ``x``, (sub)gradient ``g`` and the index of its value
    variable ``f`` (``None`` for the optimum, whose value is fixed to 0)."""

    x: Vec
    g: Vec
    f: int | None


@dataclass(frozen=True)
class TermBlock:
    """Rows ``start:stop`` get the term ``weight · ⟨sym(a bᵀ), G⟩`` with ``a = A[p], b = B[p]``."""

    start: int
    stop: int
    weight: Any
    A: Vec
    B: Vec


@dataclass(frozen=True)
class FunctionRows:
    """The interpolation rows of one function: term blocks, value coefficients and bookkeeping."""

    blocks: list[TermBlock]
    pairs: np.ndarray  # (P, 2): point indices (i, j) of each row
    value_index: np.ndarray  # (n_points,): value variable of each point, -1 for the optimum


def _stack(vecs: list[Vec]) -> Vec:
    return Vec(np.stack([v.val for v in vecs]), np.stack([v.mag for v in vecs]))


def _take(v: Vec, idx: np.ndarray) -> Vec:
    return Vec(v.val[idx], v.mag[idx])


def interpolation_rows(points: list[Point], start: int, kind: str, mu: Any = None, L: Any = None) -> FunctionRows:
    """All ordered-pair interpolation rows of one function, numbered from ``start``.

    ``kind`` is ``"smooth_strongly_convex"`` (needs ``mu < L`` in the basis' number type) or
    ``"convex"``. ``points[0]`` must be the optimum (value variable ``None``).
    """
    if points[0].f is not None:
        raise ValueError("the first point of a function must be its optimum (value fixed to 0)")
    n = len(points)
    first, second = np.nonzero(~np.eye(n, dtype=bool))
    P = len(first)
    X, Gr = _stack([p.x for p in points]), _stack([p.g for p in points])
    dx = _take(X, first) - _take(X, second)
    g_j = _take(Gr, second)
    blocks = [TermBlock(start, start + P, 1, g_j, dx)]
    if kind == "smooth_strongly_convex":
        dg = _take(Gr, first) - _take(Gr, second)
        shifted = dg - dx * mu
        blocks.append(TermBlock(start, start + P, mu / 2, dx, dx))
        blocks.append(TermBlock(start, start + P, 1 / (2 * (L - mu)), shifted, shifted))
    elif kind != "convex":
        raise ValueError(f"unknown function class {kind!r}")
    value_index = np.array([-1 if p.f is None else p.f for p in points])
    return FunctionRows(blocks, np.stack([first, second], axis=1), value_index)
