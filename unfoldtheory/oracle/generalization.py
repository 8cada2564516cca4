"""Exact-direction oracles for the generalization bounds: the kl inverse and the covering formula.

* :func:`kl_inverse_holds` decides that ``q`` is ≥ the exact ``sup{q' ∈ [p, 1] : kl(p‖q') ≤ c}``: either
  ``q ≥ 1``, or ``q ≥ p`` and ``kl(p‖q) ≥ c``, decided with mpmath interval arithmetic at 256 bits (the lower
  end of the enclosure of ``kl(p‖q)`` must be ≥ ``c``; ``q ↦ kl(p‖q)`` increases on ``[p, 1]``).
* :func:`covering_formula_holds` decides ``value ≥ 2·(12/√m)·√D·a·√(log(1 + q) + q·log(1 + 1/q)) +
  b·√(log(1/δ)/(2m))`` (the covering bound's formula, ``a = min(b, ρ)/2``, ``q = 2ρ/a``) at the exact values of
  the float inputs, with every irrational term enclosed at 256 bits and compared through its lower/upper end.
"""

from __future__ import annotations

import math

import mpmath

from unfoldtheory.rounding import interval, iv_min, mp_lower, precision

BITS = 256


def kl_inverse_holds(p: float, c: float, q: float) -> bool:
    """Whether ``q`` is an upper bound on the kl inverse ``sup{q' ∈ [p, 1] : kl(p‖q') ≤ c}`` (module docstring)."""
    if q >= 1.0:
        return True
    if q < p:
        return False
    with precision(BITS) as iv:
        P, Q = interval(p), interval(q)
        first = P * iv.log(P / Q) if p > 0 else interval(0)
        second = (1 - P) * iv.log((1 - P) / (1 - Q)) if p < 1 else interval(0)
        return mpmath.mpf(mp_lower(first + second)) >= mpmath.mpf(c)


def covering_formula_holds(value: float, num_samples: int, delta: float, D: int, K_L: float, r: float, B_h: float,
                           B: float) -> bool:
    """Whether ``value`` is ≥ the covering formula at the exact float inputs (module docstring)."""
    q_scale = math.frexp(max(1.0, 8.0 * float(K_L) * float(r) / max(float(B_h) + float(B), 1e-300)))[1]
    with precision(BITS + q_scale) as iv:  # log(1 + 1/q) cancels log2(q) bits
        b = (interval(B_h) + interval(B)) ** 2
        rho = 2 * (interval(B_h) + interval(B)) * interval(K_L) * interval(r)
        a = iv_min(b, rho) / 2
        m = interval(num_samples)
        integral = interval(0)
        if rho > 0:
            q = 2 * rho / a
            integral = a * iv.sqrt(iv.log(1 + q) + q * iv.log(1 + 1 / q))
        total = 24 / iv.sqrt(m) * iv.sqrt(interval(D)) * integral + b * iv.sqrt(-iv.log(interval(delta)) / (2 * m))
        return bool(interval(value) >= total)


__all__ = ["covering_formula_holds", "kl_inverse_holds"]
