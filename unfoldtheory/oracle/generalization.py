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
from fractions import Fraction
from typing import Any

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


def _exact_log_xi(m: int, iv: Any) -> Any:
    """``log ξ(m)`` enclosed from the exact rational ``ξ(m) = Σ_k C(m,k) k^k (m−k)^{m−k} / m^m``."""
    xi = Fraction(sum(math.comb(m, k) * k**k * (m - k) ** (m - k) for k in range(m + 1)), m**m)
    return iv.log(iv.mpf(xi.numerator) / iv.mpf(xi.denominator))


def _rational(x: float) -> Fraction:
    return Fraction(float(x))


def pac_bayes_certificate_holds(cert: dict[str, Any], max_exact_m: int = 400) -> bool:
    """Whether every number of a PAC-Bayes certificate (:mod:`unfoldtheory.generalization.pac_bayes`) is on the safe
    side, recomputed here independently: the mean part of ``KL(Q‖P)`` and the split-kl sum in exact rationals,
    ``log ξ(m)`` from the exact rational ``ξ(m)`` (``m ≤ max_exact_m``; a point mass has no ``ξ``: its complexity is
``log(J·union/δ)/m``), logarithms at 256 bits, each ``kl⁻¹`` by
    :func:`kl_inverse_holds`."""
    m = int(cert["num_samples"])
    levels = [float(v) for v in cert["levels"]]
    J = len(levels) - 1
    with precision(BITS) as iv:
        if cert["form"] == "gaussian":
            if m > max_exact_m:
                raise ValueError(f"the exact ξ(m) is only formed for m <= {max_exact_m}, got {m}")
            if not interval(cert["log_xi"]) >= _exact_log_xi(m, iv):
                return False
            mean_part = sum(((_rational(a) - _rational(b)) / _rational(s)) ** 2 for a, b, s in
                            zip(cert["posterior_mean"], cert["prior_mean"], cert["prior_std"], strict=True))
            kl = iv.mpf(mean_part.numerator) / iv.mpf(mean_part.denominator)
            for q, p in zip(cert["posterior_std"], cert["prior_std"], strict=True):
                rho = (interval(q) / interval(p)) ** 2
                kl = kl + rho - 1 - iv.log(rho)
            if not interval(cert["kl"]) >= kl / 2:
                return False
            cost = (iv.log(interval(J)) - iv.log(interval(cert["delta_mc"]))) / interval(int(cert["mc_groups"]))
            if not interval(cert["mc_cost"]) >= cost:
                return False
            for mu, q in zip(cert["mc_mean_upper"], cert["piece_upper"], strict=True):
                if not kl_inverse_holds(min(1.0, float(mu)), float(cert["mc_cost"]), float(q)):
                    return False
            count = J * len(cert["prior_scales"]) * int(cert["union"])
            C = (interval(cert["kl"]) + interval(cert["log_xi"]) + iv.log(interval(count)) - iv.log(interval(cert["delta"]))) / m
        else:
            C = (iv.log(interval(J * int(cert["union"]))) - iv.log(interval(cert["delta"]))) / m
        if not interval(cert["complexity"]) >= C:
            return False
    total = Fraction(0)
    for j, (z, q) in enumerate(zip(cert["piece_upper"], cert["kl_inverse"], strict=True)):
        if not kl_inverse_holds(min(1.0, float(z)), float(cert["complexity"]), float(q)):
            return False
        total += (_rational(levels[j + 1]) - _rational(levels[j])) * _rational(q)
    return _rational(cert["value"]) >= total
