"""Directed rounding for certificates: float64 operations rounded outward, norms bounded from both sides,
and interval (mpmath ``iv``) evaluation of scalar formulas converted back to floats in the safe direction.

Model of float64 arithmetic (Higham, *Accuracy and Stability of Numerical Algorithms*, §2.2, with
underflow): an operation ``op ∈ {+, −, ×, ÷, √}`` rounded to nearest returns ``(x op y)(1 + δ) + η``
with ``|δ| ≤ u = 2⁻⁵³`` and ``|η| ≤ 2⁻¹⁰⁷⁵`` (``η = 0`` for ``+``, ``−``, ``√``). Hence

* one step of ``nextafter`` away from the rounded value is a bound on the exact value in that
  direction (:func:`up`, :func:`down`, and :func:`~unfoldtheory.lipschitz.norms.up_add` /
  :func:`~unfoldtheory.lipschitz.norms.up_mul`, which this module reuses);
* an expression in nonnegative float inputs evaluated with ``k`` operations, every one of them
  monotone in its inputs (sums, products, a matrix–vector product of nonnegative factors), is at most
  ``computed·(1 − u)^{−k} + k·2⁻¹⁰⁷⁴``; :func:`inflate` returns a float at least that large
  (``(1 − u)^{−k} ≤ 1 + γ_{k+2}`` with the conservative ``γ`` of ``gamma_bound``);
* scalar formulas with logarithms and square roots are evaluated in mpmath interval arithmetic
  (``mpmath.iv``, outward rounding at ``PREC`` bits, exact conversion of float inputs) and the end
  point is converted with :func:`mp_upper` / :func:`mp_lower`, which compare exactly.

No assumption on the accuracy of ``libm`` is made anywhere in this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mpmath
import numpy as np

from unfoldtheory.lipschitz.norms import EPS, gamma_bound, up_add, up_mul

TINY = 2.0 ** -1074
PREC = 96
_iv = mpmath.iv


def up(x: Any) -> Any:
    """One float step up (elementwise): ≥ the exact value of a round-to-nearest result."""
    return np.nextafter(x, np.inf)


def down(x: Any) -> Any:
    """One float step down (elementwise): ≤ the exact value of a round-to-nearest result."""
    return np.nextafter(x, -np.inf)


def up_div(a: float, b: float) -> float:
    """An upper bound on ``a / b`` (``b > 0``)."""
    return float(up(float(a) / float(b)))


def down_div(a: float, b: float) -> float:
    """A lower bound on ``a / b`` (``b > 0``)."""
    return float(down(float(a) / float(b)))


def up_sqrt(x: float) -> float:
    """An upper bound on ``√x`` (``math.sqrt`` is correctly rounded, IEEE 754)."""
    return float(up(math.sqrt(x)))


def down_sqrt(x: float) -> float:
    """A lower bound on ``√x`` (0 for ``x ≤ 0``)."""
    return float(max(0.0, float(down(math.sqrt(x))))) if x > 0 else 0.0


def inflate(x: Any, ops: int) -> Any:
    """An upper bound on the exact value of a nonnegative expression that float64 evaluated as ``x`` with at
    most ``ops`` monotone operations per entry (module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    return up(x * (1.0 + gamma_bound(ops + 2)) + (ops + 1) * TINY)


def _scale(v: np.ndarray) -> int:
    """``e`` with ``max|v|·2^−e`` in [½, 1) (``frexp`` exponent)."""
    return math.frexp(float(np.max(np.abs(v))))[1]


def norm_upper(v: Any) -> float:
    """A rigorous upper bound on ``‖v‖₂`` of a float vector (power-of-two scaling, then upward rounding)."""
    v = np.abs(np.asarray(v, dtype=np.float64).ravel())
    if v.size == 0 or not np.any(v):
        return 0.0
    if not np.all(np.isfinite(v)):
        return math.inf
    e = _scale(v)
    s = up(np.ldexp(v, -e))  # ≥ |v|·2^−e entrywise (ldexp may round a subnormal result)
    total = float(inflate(float(np.sum(s * s)), v.size + 1))
    return float(up(math.ldexp(up_sqrt(total), e)))


def norm_lower(v: Any) -> float:
    """A rigorous lower bound on ``‖v‖₂`` of a float vector (the largest finite float if it overflows)."""
    v = np.abs(np.asarray(v, dtype=np.float64).ravel())
    if v.size == 0 or not np.any(v):
        return 0.0
    e = _scale(v)
    s = np.nextafter(np.ldexp(v, -e), 0.0)  # ≤ |v|·2^−e entrywise
    total = float(np.sum(s * s))
    total = float(down(total * (1.0 - gamma_bound(v.size + 2)) - (v.size + 1) * TINY))
    out = math.ldexp(down_sqrt(total), e) if total > 0 else 0.0
    return float(np.finfo(np.float64).max) if math.isinf(out) else float(max(0.0, float(down(out)) if out else 0.0))


def diff_upper(a: Any, b: Any) -> np.ndarray:
    """Entrywise upper bounds on ``|a − b|`` for float arrays (``|fl(a − b)| ≥ (1 − u)|a − b|``)."""
    d = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return up(d * (1.0 + EPS))


def diff_norm_upper(a: Any, b: Any) -> float:
    """A rigorous upper bound on ``‖a − b‖₂`` for float vectors."""
    return norm_upper(diff_upper(a, b))


# ---------------------------------------------------------------------------- interval evaluation
@contextmanager
def precision(bits: int = PREC) -> Iterator[Any]:
    """``mpmath.iv`` at ``bits`` of working precision (restored afterwards); yields the ``iv`` context."""
    old = _iv.prec
    _iv.prec = bits
    try:
        yield _iv
    finally:
        _iv.prec = old


def interval(x: Any) -> Any:
    """The exact point interval of a float (or int)."""
    return _iv.mpf(float(x)) if not isinstance(x, int) else _iv.mpf(x)


def _end(x: Any, which: int) -> mpmath.mpf:
    return mpmath.mp.make_mpf(x._mpi_[which])


def mp_upper(x: Any) -> float:
    """The smallest float ≥ the upper end of the interval ``x`` (``inf`` beyond the float range)."""
    hi = _end(x, 1)
    if mpmath.isinf(hi) or mpmath.isnan(hi):
        return math.inf
    try:
        f = float(hi)
    except OverflowError:
        return math.inf
    return float(up(f)) if mpmath.mpf(f) < hi else f


def mp_lower(x: Any) -> float:
    """The largest float ≤ the lower end of the interval ``x``."""
    lo = _end(x, 0)
    if mpmath.isinf(lo) or mpmath.isnan(lo):
        return -math.inf
    try:
        f = float(lo)
    except OverflowError:
        return -math.inf if lo < 0 else float(np.finfo(np.float64).max)
    return float(down(f)) if mpmath.mpf(f) > lo else f


def log_upper(x: float) -> float:
    """A rigorous upper bound on ``log x`` (``x > 0``), by interval arithmetic."""
    with precision() as iv:
        return mp_upper(iv.log(interval(x)))


def iv_min(a: Any, b: Any) -> Any:
    """The interval of ``min(α, β)`` for ``α ∈ a``, ``β ∈ b``."""
    lo = min(_end(a, 0), _end(b, 0))
    hi = min(_end(a, 1), _end(b, 1))
    return _iv.mpf([lo, hi])


def iv_max(a: Any, b: Any) -> Any:
    """The interval of ``max(α, β)`` for ``α ∈ a``, ``β ∈ b``."""
    lo = max(_end(a, 0), _end(b, 0))
    hi = max(_end(a, 1), _end(b, 1))
    return _iv.mpf([lo, hi])


def iv_ceil_upper(x: Any) -> int:
    """An integer ≥ every point of the interval ``x`` (the ceiling of its upper end)."""
    return int(mpmath.ceil(_end(x, 1)))


__all__ = ["PREC", "TINY", "diff_norm_upper", "diff_upper", "down", "down_div", "down_sqrt", "inflate", "interval",
           "iv_ceil_upper", "iv_max", "iv_min", "log_upper", "mp_lower", "mp_upper", "norm_lower", "norm_upper", "precision",
           "up", "up_add", "up_div", "up_mul", "up_sqrt"]
