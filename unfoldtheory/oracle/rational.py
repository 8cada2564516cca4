"""Exact rational arithmetic on float64 data: the common ground of the exact-arithmetic oracles.

Every float64 number is a rational, and :class:`fractions.Fraction` represents it exactly
(``Fraction(x) == x`` for every finite float ``x``). These helpers convert arrays, multiply and
add them without rounding, and decide positive semidefiniteness exactly, so that an oracle can
recompute a certified quantity on the very numbers the certificate was computed from.
They are cubic in the size with growing numerators: meant for tiny instances (tens of rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

RationalMatrix = list[list[Fraction]]
RationalVector = list[Fraction]


def exact(x: Any) -> Fraction:
    """The exact rational value of a finite float (or int, or Fraction); non-finite values raise ValueError."""
    if isinstance(x, Fraction):
        return x
    value = float(x) if not isinstance(x, int) else x
    if isinstance(value, float) and not np.isfinite(value):
        raise ValueError(f"{value!r} has no exact rational value")
    return Fraction(value)


def vector(v: Any) -> RationalVector:
    """A 1-D float array as a list of exact rationals."""
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a vector, got shape {arr.shape}")
    return [exact(x) for x in arr.tolist()]


def matrix(a: Any) -> RationalMatrix:
    """A 2-D float array as a list of rows of exact rationals."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"expected a matrix, got shape {arr.shape}")
    return [[exact(x) for x in row] for row in arr.tolist()]


def zeros(rows: int, cols: int) -> RationalMatrix:
    return [[Fraction(0)] * cols for _ in range(rows)]


def identity(n: int) -> RationalMatrix:
    return [[Fraction(int(i == j)) for j in range(n)] for i in range(n)]


def matmul(a: RationalMatrix, b: RationalMatrix) -> RationalMatrix:
    """``a @ b`` exactly."""
    if a and b and len(a[0]) != len(b):
        raise ValueError(f"inner dimensions differ: {len(a[0])} and {len(b)}")
    cols = list(zip(*b, strict=True)) if b else []
    return [[sum((x * y for x, y in zip(row, col, strict=True)), Fraction(0)) for col in cols] for row in a]


def matvec(a: RationalMatrix, v: RationalVector) -> RationalVector:
    """``a @ v`` exactly."""
    return [sum((x * y for x, y in zip(row, v, strict=True)), Fraction(0)) for row in a]


def add(a: RationalMatrix, b: RationalMatrix, scale: Fraction | int = 1) -> RationalMatrix:
    """``a + scale·b`` exactly."""
    return [[x + scale * y for x, y in zip(ra, rb, strict=True)] for ra, rb in zip(a, b, strict=True)]


def transpose(a: RationalMatrix) -> RationalMatrix:
    return [list(col) for col in zip(*a, strict=True)] if a else []


def dot(u: RationalVector, v: RationalVector) -> Fraction:
    return sum((x * y for x, y in zip(u, v, strict=True)), Fraction(0))


def squared_norm(v: RationalVector) -> Fraction:
    """``‖v‖²`` exactly (norms themselves are irrational in general; oracles compare squares)."""
    return dot(v, v)


def is_positive_semidefinite(a: Sequence[Sequence[Fraction]]) -> bool:
    """Whether the symmetric rational matrix ``a`` is positive semidefinite, decided exactly.

    Symmetric Gaussian elimination (an LDLᵀ factorisation without pivoting): a PSD matrix has a
    nonnegative pivot at every step, and a zero pivot only with a zero row (``a_kk = 0`` and
    ``a ⪰ 0`` force ``a_kj = 0``, from the 2×2 minors); the Schur complement of a positive pivot is
    PSD exactly when the matrix is. Raises ValueError if ``a`` is not square and symmetric.
    """
    n = len(a)
    work = [list(row) for row in a]
    if any(len(row) != n for row in work):
        raise ValueError("the matrix is not square")
    if any(work[i][j] != work[j][i] for i in range(n) for j in range(i)):
        raise ValueError("the matrix is not symmetric")
    for k in range(n):
        pivot = work[k][k]
        if pivot < 0:
            return False
        if pivot == 0:
            if any(work[k][j] != 0 for j in range(k + 1, n)):
                return False
            continue
        row = work[k]
        for i in range(k + 1, n):
            factor = work[i][k] / pivot
            if factor:
                target = work[i]
                for j in range(k + 1, n):
                    target[j] -= factor * row[j]
    return True


__all__ = ["add", "dot", "exact", "identity", "is_positive_semidefinite", "matmul", "matrix", "matvec",
           "squared_norm", "transpose", "vector", "zeros"]
