"""The binary relative entropy ``kl(p‖q)``, its upper inverse, and the constants of the kl-form bounds.

* ``kl(p‖q) = p log(p/q) + (1 − p) log((1 − p)/(1 − q))`` (``0 log 0 = 0``), the relative entropy
  between Bernoulli(p) and Bernoulli(q).
* :func:`kl_inverse_upper` ``(p, c) = sup{q ∈ [p, 1] : kl(p‖q) ≤ c}``. ``q ↦ kl(p‖q)`` is 0 at
  ``q = p`` and increasing on ``[p, 1]`` (``∂_q kl = (q − p)/(q(1 − q))``, ``proofs/kl_inverse.py``),
  so the supremum is found by bisection. The returned value is checked after the search: either it
  is 1 or ``kl(p‖q) ≥ c`` (proved in interval arithmetic), which by monotonicity means it is ≥ the exact
  supremum. Closed form at
  ``p = 0``: ``1 − e^{−c}``; relaxations (proved in ``proofs/kl_inverse.py``):
  ``q ≤ p + √(c/2)`` (Pinsker) and ``q ≤ p + √(2pc) + 2c``.
* :func:`maurer_log_xi` ``(m) = log ξ(m)``, ``ξ(m) = Σ_k C(m,k) (k/m)^k (1 − k/m)^{m−k}``. Maurer
  (2004, "A note on the PAC Bayesian theorem", Thm 1) shows that for i.i.d. ``[0, 1]``-valued losses
  ``E exp(m·kl(mean‖E)) ≤ ξ(m)`` (the Bernoulli case is the worst), and ``√m ≤ ξ(m) ≤ 2√m`` for
  ``m ≥ 8`` (his Thm 5); we use the exact ``ξ(m)``, which gives the PAC-Bayes-kl bound
  ``kl(R̂_Q‖R_Q) ≤ (KL(Q‖P) + log(ξ(m)/δ))/m`` (Seeger 2002; Maurer 2004).
* :func:`kl_upper_confidence` ``(mean, n, δ) = kl_inverse_upper(mean, log(1/δ)/n)``: for ``n``
  independent ``[0, 1]``-valued variables with average expectation ``μ``,
  ``P(μ > kl_inverse_upper(mean, log(1/δ)/n)) ≤ δ`` (Hoeffding 1963, Thm 1, which holds for
  independent, not necessarily identically distributed, variables: ``P(mean ≤ μ − t) ≤
  exp(−n·kl(μ − t‖μ))``). Langford & Caruana (2001) state the two-sided version with
  ``log(2/δ)``; only the upper side is used here.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln, logsumexp, rel_entr

from unfoldtheory.rounding import interval, mp_lower, precision
from unfoldtheory.validation import finite_float, positive_int

_BISECTION_STEPS = 200
_EPS = float(np.finfo(np.float64).eps)


def kl_bernoulli(p: float, q: float) -> float:
    """``kl(p‖q)`` for ``p, q ∈ [0, 1]`` (``inf`` where it is infinite)."""
    p = finite_float(p, "p", low=0.0, high=1.0)
    q = finite_float(q, "q", low=0.0, high=1.0)
    return float(rel_entr(p, q) + rel_entr(1.0 - p, 1.0 - q))


def kl_inverse_upper(p: float, c: float) -> float:
    """``sup{q ∈ [p, 1] : kl(p‖q) ≤ c}`` for ``p ∈ [0, 1]``, ``c ≥ 0``, as a float ≥ the exact value.

    After the bisection the value is stepped up until ``kl(p‖q) ≥ c`` holds with a margin for the
    rounding of the evaluation (or ``q = 1``), so it is ≥ the exact supremum.
    """
    p = finite_float(p, "p", low=0.0, high=1.0)
    c = finite_float(c, "c", low=0.0)
    if p >= 1.0:
        return 1.0
    lo, hi = p, 1.0
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if kl_bernoulli(p, mid) <= c:
            lo = mid
        else:
            hi = mid
    # step up until the rounding-aware check passes: kl(p‖q) ≥ c even after subtracting an error bound
    q, step = hi, 1e-15 * (1.0 + hi)
    while q < 1.0 and not _kl_exceeds(p, q, c):
        q, step = min(1.0, q + step), 2.0 * step
    return q


def _kl_exceeds(p: float, q: float, c: float) -> bool:
    """Whether the exact ``kl(p‖q)`` is ≥ ``c`` (``p ≤ q < 1``), proved in mpmath interval arithmetic: the lower
    end of the enclosure of ``p log(p/q) + (1 − p) log((1 − p)/(1 − q))`` at the exact float values is ≥ ``c``.
    A cheap float pre-test (value less a generous ``64ε(|t₁| + |t₂| + 1)``) skips the interval work when it fails."""
    t1, t2 = float(rel_entr(p, q)), float(rel_entr(1.0 - p, 1.0 - q))
    if not t1 + t2 - 64.0 * _EPS * (abs(t1) + abs(t2) + 1.0) >= c:
        return False
    with precision() as iv:
        P, Q = interval(p), interval(q)
        first = P * iv.log(P / Q) if p > 0 else interval(0)
        return mp_lower(first + (1 - P) * iv.log((1 - P) / (1 - Q))) >= c


def kl_upper_confidence(mean: float, n: int, delta: float) -> float:
    """An upper confidence bound (level ``1 − δ``) on the average expectation of ``n`` independent
    ``[0, 1]``-valued variables whose observed average is ``mean`` (module docstring)."""
    n = positive_int(n, "n")
    delta = finite_float(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
    return kl_inverse_upper(mean, math.log(1.0 / delta) / n)


def maurer_log_xi(m: int) -> float:
    """``log ξ(m)`` with ``ξ(m) = Σ_{k=0}^m C(m,k) (k/m)^k (1 − k/m)^{m−k}`` (module docstring)."""
    m = positive_int(m, "m")
    k = np.arange(m + 1, dtype=np.float64)
    log_binom = gammaln(m + 1.0) - gammaln(k + 1.0) - gammaln(m - k + 1.0)
    frac = k / m
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = log_binom + np.where(k > 0, k * np.log(frac), 0.0) + np.where(k < m, (m - k) * np.log1p(-frac), 0.0)
    # the sum has m + 1 positive terms evaluated with relative error ~1e-13; a margin of 1e-10 covers it
    return float(logsumexp(terms)) + 1e-10


def pinsker_upper(p: float, c: float) -> float:
    """``min(1, p + √(c/2))`` ≥ :func:`kl_inverse_upper` (Pinsker's inequality ``kl ≥ 2(q − p)²``)."""
    return min(1.0, p + math.sqrt(c / 2.0))


def refined_upper(p: float, c: float) -> float:
    """``min(1, p + √(2pc) + 2c)`` ≥ :func:`kl_inverse_upper` (from ``kl(p‖q) ≥ (q − p)²/(2q)``, q ≥ p)."""
    return min(1.0, p + math.sqrt(2.0 * p * c) + 2.0 * c)
