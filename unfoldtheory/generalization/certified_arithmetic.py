"""Directed-rounding evaluation of every number in a PAC-Bayes-kl bound (issue 15).

Each function returns a float that is provably on the safe side of the exact real value of its formula at the
given float inputs (the model of float64 arithmetic in :mod:`unfoldtheory.rounding`; logarithms, exponentials and
divisions in mpmath interval arithmetic, converted outward). Together they make the bound of
:mod:`~unfoldtheory.generalization.pac_bayes` a certified number:

* :func:`log_xi_upper` ``≥ log ξ(m)``, ``ξ(m) = Σ_k C(m,k)(k/m)^k(1 − k/m)^{m−k}`` (Maurer 2004): log-factorials
  as interval sums of ``log j``, then an interval log-sum-exp. No recalled bound on ``ξ`` is used.
* :func:`gaussian_kl_upper` ``≥ KL(N(μ_q, diag σ_q²) ‖ N(μ_p, diag σ_p²))
  = ½Σ_i[ρ_i − 1 − log ρ_i + (μ_q,i − μ_p,i)²/σ_p,i²]``, ``ρ_i = σ_q,i²/σ_p,i²``: the variance part per distinct pair
  ``(σ_q, σ_p)`` in interval arithmetic (block posteriors have few distinct pairs), the mean part per distinct ``σ_p``
  from an upward sum of squared differences.
* :func:`mean_upper` / :func:`mean_lower`: the exact mean of a float array from the correctly rounded
  ``math.fsum`` and one directed division.
* :func:`complexity_upper` ``≥ (KL + log ξ(m) + log(count/δ))/m`` and :func:`confidence_cost_upper`
  ``≥ log(count/δ)/N``.
* :func:`pieces_upper`: ``Z_j(ℓ) = min((ℓ − t_{j−1})₊, Δ_j)/Δ_j`` is nondecreasing in ``ℓ``, so its value at an upper
  bound of the loss, rounded up, bounds the exact piece (``proofs/split_kl.py`` for the decomposition).
* :func:`squared_loss_bounds`: the exact ``Σ(o_i − x_i)²`` of a float output ``o`` from its float evaluation
  (``|fl(o − x)| ≥ (1 − u)|o − x|``, a sum of ``n`` nonnegative terms in any order: :func:`~unfoldtheory.rounding.inflate`).
* :func:`split_kl_upper` ``≥ Σ_j Δ_j kl⁻¹(z_j, C)``: each ``kl⁻¹`` is proved by
  :func:`~unfoldtheory.generalization.kl.kl_inverse_upper`; products and sums are rounded up.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from unfoldtheory.generalization.kl import kl_inverse_upper
from unfoldtheory.lipschitz.norms import gamma_bound
from unfoldtheory.rounding import TINY, down, inflate, interval, mp_lower, mp_upper, precision, up, up_add, up_mul
from unfoldtheory.validation import finite_float, positive_int

#: mpmath working precision (bits) of the interval evaluations here.
BITS = 128


@lru_cache(maxsize=64)
def log_xi_upper(m: int) -> float:
    """A float ``≥ log ξ(m)`` (module docstring), computed in interval arithmetic in ``O(m)`` operations."""
    m = positive_int(m, "m")
    with precision(BITS) as iv:
        logs = [iv.mpf(0)] * (m + 1)  # logs[j] ∋ log j!
        acc = iv.mpf(0)
        for j in range(1, m + 1):
            acc = acc + iv.log(iv.mpf(j))
            logs[j] = acc
        log_m = iv.log(iv.mpf(m))
        terms = []
        for k in range(m + 1):
            t = logs[m] - logs[k] - logs[m - k]
            if 0 < k:
                t = t + k * (iv.log(iv.mpf(k)) - log_m)
            if k < m:
                t = t + (m - k) * (iv.log(iv.mpf(m - k)) - log_m)
            terms.append(t)
        top = max(mp_upper(t) for t in terms)
        shift = iv.mpf(top)
        total = iv.mpf(0)
        for t in terms:
            total = total + iv.exp(t - shift)
        return mp_upper(shift + iv.log(total))


def _group_sum_upper(values: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ``keys``, their counts and upper bounds on the exact sum of the nonnegative ``values`` per key."""
    uniq, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    sums = np.zeros(len(uniq))
    np.add.at(sums, inverse.ravel(), values)
    return uniq, counts, inflate(sums, int(counts.max()) if counts.size else 1)


def gaussian_kl_upper(mean_q: Any, std_q: Any, mean_p: Any, std_p: Any) -> float:
    """A float ``≥ KL(N(μ_q, diag σ_q²) ‖ N(μ_p, diag σ_p²))`` of these float vectors (module docstring).

    ``σ_q = 0`` entries are refused (the KL is infinite unless the prior is a point mass there; use the point-mass bound).
    """
    mq, sq, mp, sp = (np.asarray(v, dtype=np.float64).ravel() for v in (mean_q, std_q, mean_p, std_p))
    if not (mq.shape == sq.shape == mp.shape == sp.shape):
        raise ValueError(f"the Gaussian KL needs vectors of one length, got {mq.size}, {sq.size}, {mp.size}, {sp.size}")
    for v, what in ((mq, "posterior mean"), (sq, "posterior std"), (mp, "prior mean"), (sp, "prior std")):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"the {what} has a non-finite entry")
    if np.any(sq <= 0) or np.any(sp <= 0):
        raise ValueError("the Gaussian KL needs positive standard deviations (a point mass has its own bound)")
    diff = up(np.abs(mq - mp) * (1.0 + 2.0 ** -52))  # ≥ |μ_q − μ_p| (one rounding)
    square = up(diff * diff) + TINY  # ≥ exact square of the bound
    scales, _, mean_sums = _group_sum_upper(square, sp)
    pairs, counts, _ = _group_sum_upper(np.zeros(sq.size), np.stack([sq, sp], axis=1))
    with precision(BITS) as iv:
        total = iv.mpf(0)
        for s, ssum in zip(scales, mean_sums, strict=True):
            total = total + interval(float(ssum)) / (interval(float(s)) ** 2)
        for (q, p), n in zip(pairs, counts, strict=True):
            rho = (interval(float(q)) / interval(float(p))) ** 2
            total = total + int(n) * (rho - 1 - iv.log(rho))
        return max(0.0, mp_upper(total / 2))


def mean_upper(values: Any) -> float:
    """A float ``≥`` the exact mean of the float array ``values``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError("mean_upper needs a non-empty array of finite values")
    total = math.fsum(v.tolist())  # correctly rounded: |fsum − Σ| ≤ ½ulp
    with precision(BITS):
        return mp_upper(interval(float(up(total))) / interval(v.size))


def mean_lower(values: Any) -> float:
    """A float ``≤`` the exact mean of the float array ``values``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise ValueError("mean_lower needs a non-empty array of finite values")
    total = math.fsum(v.tolist())
    with precision(BITS):
        return mp_lower(interval(float(down(total))) / interval(v.size))


def confidence_cost_upper(count: float, delta: float, n: int) -> float:
    """A float ``≥ log(count/δ)/n`` (``count ≥ 1``, ``δ ∈ (0, 1)``)."""
    count = finite_float(count, "count", low=1.0)
    delta = finite_float(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
    n = positive_int(n, "n")
    with precision(BITS) as iv:
        return mp_upper((iv.log(interval(count)) - iv.log(interval(delta))) / interval(n))


def complexity_upper(kl: float, log_xi: float, count: float, delta: float, m: int) -> float:
    """A float ``≥ (KL + log ξ(m) + log(count/δ))/m`` for upper bounds ``kl ≥ KL`` and ``log_xi ≥ log ξ(m)``."""
    kl = finite_float(kl, "kl", low=0.0)
    log_xi = finite_float(log_xi, "log_xi", low=0.0)
    count = finite_float(count, "count", low=1.0)
    delta = finite_float(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
    m = positive_int(m, "m")
    with precision(BITS) as iv:
        return mp_upper((interval(kl) + interval(log_xi) + iv.log(interval(count)) - iv.log(interval(delta))) / interval(m))


def squared_loss_bounds(computed: Any, outputs: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds on the exact ``Σ_i (o_i − x_i)²`` (``outputs`` terms) from its float64 evaluation
    ``computed`` (any summation order; ``|fl(o − x)| = |o − x|(1 + δ)``, so each term and the sum carry
    ``outputs + 3`` monotone roundings)."""
    c = np.asarray(computed, dtype=np.float64)
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ValueError("squared losses must be finite and nonnegative")
    ops = positive_int(outputs, "outputs") + 3
    g = gamma_bound(ops + 2)
    lower = np.maximum(0.0, down(c * (1.0 - g) - (ops + 1) * TINY))
    return lower, inflate(c, ops)


def pieces_upper(loss_upper: Any, levels: np.ndarray) -> np.ndarray:
    """Upper bounds on the split-kl pieces ``Z_j(ℓ) ∈ [0, 1]`` (last axis j) of every loss whose exact value is at most
    ``loss_upper``; ``levels`` are the float levels ``0 = t_0 < … < t_J``."""
    lv = np.asarray(levels, dtype=np.float64)
    lo = lv[:-1]
    width_down = down(np.diff(lv))  # ≤ Δ_j (one rounded subtraction)
    num = up(np.asarray(loss_upper, dtype=np.float64)[..., None] - lo)  # ≥ ℓ↑ − t_{j−1}
    with np.errstate(over="ignore"):
        z = up(np.maximum(num, 0.0) / width_down)
    return np.clip(z, 0.0, 1.0)


def kl_inverses_upper(piece_upper: Any, complexity: float) -> np.ndarray:
    """``kl⁻¹(z_j, C)`` for every piece, each a proved upper bound (:func:`~.kl.kl_inverse_upper`)."""
    return np.array([kl_inverse_upper(float(min(1.0, max(0.0, z))), complexity) for z in np.asarray(piece_upper, float)])


def split_kl_upper(piece_upper: Any, levels: np.ndarray, complexity: float) -> float:
    """A float ``≥ Σ_j Δ_j kl⁻¹(z_j, C)`` for ``z_j`` at most ``piece_upper[j]`` and ``C ≤ complexity``
    (``kl⁻¹`` is increasing in both arguments)."""
    return weighted_sum_upper(kl_inverses_upper(piece_upper, complexity), levels)


def weighted_sum_upper(values: Any, levels: np.ndarray) -> float:
    """A float ``≥ Σ_j (t_j − t_{j−1})·v_j`` for nonnegative ``v`` (one per piece of ``levels``)."""
    lv = np.asarray(levels, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (lv.size - 1,):
        raise ValueError(f"{v.size} piece values for {lv.size - 1} pieces")
    total = 0.0
    for j, vj in enumerate(v):
        total = up_add(total, up_mul(float(up(lv[j + 1] - lv[j])), float(vj)))
    return float(total)


def check_levels(levels: Any) -> np.ndarray:
    """``levels`` as a float64 array ``0 = t_0 < t_1 < … < t_J`` (finite, strictly increasing, J ≥ 1), or a ValueError."""
    lv = np.asarray(levels, dtype=np.float64).ravel()
    if lv.size < 2 or not np.all(np.isfinite(lv)):
        raise ValueError("levels must be at least two finite values 0 = t_0 < … < t_J")
    if lv[0] != 0.0 or np.any(np.diff(lv) <= 0):
        raise ValueError(f"levels must start at 0 and increase strictly, got {lv[:4].tolist()}…")
    return lv


__all__ = ["BITS", "check_levels", "complexity_upper", "confidence_cost_upper", "gaussian_kl_upper", "kl_inverses_upper",
           "log_xi_upper", "mean_lower", "mean_upper", "pieces_upper", "split_kl_upper", "squared_loss_bounds",
           "weighted_sum_upper"]
