"""Closed-form contraction rates; each formula is derived in a sympy script under ``proofs/``.

* **Gradient step** on an L-smooth μ-strongly convex f (``0 ≤ μ ≤ L``):
  ``‖x − γ∇f(x) − x*‖ ≤ max(|1 − γμ|, |1 − γL|)·‖x − x*‖``, tight (attained by a quadratic), and
  ``max_{λ∈[μ,L]} |1 − γλ|`` is that maximum; the step ``γ = 2/(L + μ)`` minimises it, with rate
  ``(κ − 1)/(κ + 1)``, ``κ = L/μ`` (``proofs/gradient_rate.py``).
* **A schedule** ``γ_1..γ_K``: the product of the per-step rates bounds ``‖x_K − x*‖/‖x_0 − x*‖``.
  It is tight when every step sits on the same side of ``2/(L + μ)``; otherwise the exact worst
  case (:func:`~unfoldtheory.convergence.pep_rate`) can be smaller.
* **Proximal gradient step** (f as above plus a closed convex h): the same tight rate, since the
  prox is nonexpansive and ``x* = prox_{γh}(x* − γ∇f(x*))`` (Taylor, Hendrickx & Glineur 2018;
  ``proofs/proximal_gradient_rate.py``).
* **Heavy ball** ``x⁺ = x − γ∇f(x) + β(x − x⁻)`` and **Nesterov**
  ``y = x + β(x − x⁻)``, ``x⁺ = y − γ∇f(y)`` on quadratics with Hessian spectrum in ``[μ, L]``: the
  asymptotic linear rate is the largest spectral radius of the 2×2 iteration matrices, attained at
  ``λ = μ`` or ``λ = L`` for ``β ≥ 0`` (``proofs/momentum_quadratic.py``). Polyak's tuning
  ``γ = 4/(√L + √μ)²``, ``β = ((√κ − 1)/(√κ + 1))²`` gives ``(√κ − 1)/(√κ + 1)``; Nesterov's
  ``γ = 1/L``, ``β = (√κ − 1)/(√κ + 1)`` gives ``1 − 1/√κ`` and ``γ = 4/(3L + μ)``,
  ``β = (√(3κ+1) − 2)/(√(3κ+1) + 2)`` gives ``1 − 2/√(3κ + 1)`` (Lessard, Recht & Packard 2016).
  These are rates on quadratics only: heavy ball with Polyak's tuning can fail to converge on
  general strongly convex f (Lessard et al. 2016 give a counterexample).

The gradient and proximal rates are evaluated exactly in rationals and rounded up to float64
(certified); the momentum rates involve square roots and are evaluated in float64 (not certified).
"""

from __future__ import annotations

import math
import time
from fractions import Fraction
from typing import Any

import numpy as np

from unfoldtheory.convergence.inputs import real_scalar, real_vector
from unfoldtheory.results import Bound


def _mu_L(mu: Any, L: Any) -> tuple[float, float]:
    mu = real_scalar(mu, "mu", low=0.0)
    L = real_scalar(L, "L", low=0.0, low_open=True)
    if mu > L:
        raise ValueError(f"mu must be <= L (got mu={mu}, L={L})")
    return mu, L


def _round_up(q: Fraction, what: str) -> float:
    """The smallest float64 ≥ the rational ``q``; a ValueError naming ``what`` if that exceeds float64's range."""
    if q > Fraction(np.finfo(float).max):
        raise ValueError(f"{what} is {float(math.log10(q.numerator) - math.log10(q.denominator)):.1f} in log10, beyond "
                         "float64's range (steps·L too large for a representable rate)")
    x = float(q)
    return x if Fraction(x) >= q else math.nextafter(x, math.inf)


def _contraction(mu: float, L: float, steps: np.ndarray) -> Fraction:
    """``Π_k max(|1 − γ_kμ|, |1 − γ_kL|)`` exactly."""
    m, big = Fraction(mu), Fraction(L)
    rate = Fraction(1)
    for g in steps:
        g = Fraction(float(g))
        rate *= max(abs(1 - g * m), abs(1 - g * big))
    return rate


def _steps(steps: Any) -> np.ndarray:
    steps = real_vector(steps, "steps")
    if steps.size == 0:
        raise ValueError("steps is empty; give at least one step size")
    if np.any(steps <= 0):
        k = int(np.argmax(steps <= 0))
        raise ValueError(f"steps must be > 0 (the rate's proof assumes γ > 0); steps[{k}] = {steps[k]}")
    return steps


def _rate_bound(mu: Any, L: Any, steps: Any, method: str, proof: str) -> Bound:
    start = time.perf_counter()
    mu, L = _mu_L(mu, L)
    steps = _steps(steps)
    exact = _contraction(mu, L, steps)
    K = steps.size
    what = "gradient" if method == "gradient" else "proximal gradient (f + h, h convex)"
    return Bound(
        value=_round_up(exact, "the product of the per-step rates"), kind="upper",
        quantity=f"‖x_K − x*‖ / ‖x_0 − x*‖ (the rate of the distance, not squared) after K={K} {what} step(s), "
                 f"f ∈ F(μ={mu:g}, L={L:g})",
        method=f"closed form: product of max(|1 − γμ|, |1 − γL|) ({proof})", certified=True,
        certificate={"exact": str(exact), "proof": proof}, seconds=time.perf_counter() - start,
        details={"mu": mu, "L": L, "steps": steps.copy(), "tight": K == 1 or bool(np.all(steps <= 2 / (L + mu)))
                 or bool(np.all(steps >= 2 / (L + mu)))},
    )


def gd_rate(mu: float, L: float, step: float) -> Bound:
    """``max(|1 − γμ|, |1 − γL|)``: the tight contraction factor of one gradient step on ``F_{μ,L}``."""
    return _rate_bound(mu, L, [real_scalar(step, "step")], "gradient", "proofs/gradient_rate.py")


def gd_optimal_step(mu: float, L: float) -> float:
    """``2/(L + μ)``, the step minimising :func:`gd_rate`; its rate is ``(κ − 1)/(κ + 1)``."""
    mu, L = _mu_L(mu, L)
    return 2.0 / (L + mu)


def schedule_rate(mu: float, L: float, steps: Any) -> Bound:
    """``Π_k max(|1 − γ_kμ|, |1 − γ_kL|)``: a bound on ``‖x_K − x*‖/‖x_0 − x*‖`` for the gradient
    (and proximal gradient) method with the schedule ``steps``; ``details["tight"]`` says when it is
    attained (all steps on one side of ``2/(L + μ)``, or K = 1)."""
    return _rate_bound(mu, L, steps, "gradient", "proofs/gradient_rate.py")


def proximal_gradient_rate(mu: float, L: float, steps: Any) -> Bound:
    """The same product for the proximal gradient method on ``f + h`` (h closed convex): tight."""
    return _rate_bound(mu, L, steps, "proximal_gradient", "proofs/proximal_gradient_rate.py")


def _spectral_radius(a: float, b: float) -> float:
    """Largest root modulus of ``z² − a z + b``."""
    disc = a * a - 4 * b
    if disc < 0:
        return math.sqrt(b)
    return (abs(a) + math.sqrt(disc)) / 2


def _momentum_rate(mu: Any, L: Any, step: Any, momentum: Any, name: str, coefficients) -> Bound:
    start = time.perf_counter()
    mu, L = _mu_L(mu, L)
    step = real_scalar(step, "step", low=0.0, low_open=True)
    momentum = real_scalar(momentum, "momentum", low=0.0)
    radii = {lam: _spectral_radius(*coefficients(step * lam, momentum)) for lam in (mu, L)}
    return Bound(
        value=max(radii.values()), kind="upper",
        quantity=f"asymptotic linear rate of {name} on quadratics with spectrum in [μ={mu:g}, L={L:g}] "
                 "(spectral radius of the iteration)",
        method="closed form: max of the 2×2 spectral radii at λ = μ and λ = L (proofs/momentum_quadratic.py)",
        certified=False, seconds=time.perf_counter() - start,
        details={"mu": mu, "L": L, "step": step, "momentum": momentum, "radius_at_mu": radii[mu], "radius_at_L": radii[L],
                 "note": "float64 evaluation; a rate on quadratics only, not on general strongly convex f"},
    )


def heavy_ball_rate(mu: float, L: float, step: float, momentum: float) -> Bound:
    """Rate of heavy ball on quadratics: roots of ``z² − (1 + β − γλ)z + β``, worst at ``λ ∈ {μ, L}``."""
    return _momentum_rate(mu, L, step, momentum, "heavy ball", lambda t, beta: (1 + beta - t, beta))


def nesterov_rate(mu: float, L: float, step: float, momentum: float) -> Bound:
    """Rate of Nesterov's method on quadratics: roots of ``z² − (1 + β)(1 − γλ)z + β(1 − γλ)``."""
    return _momentum_rate(mu, L, step, momentum, "Nesterov's method",
                          lambda t, beta: ((1 + beta) * (1 - t), beta * (1 - t)))


def heavy_ball_polyak(mu: float, L: float) -> tuple[float, float]:
    """Polyak's tuning ``(γ, β) = (4/(√L + √μ)², ((√L − √μ)/(√L + √μ))²)``; rate ``(√κ − 1)/(√κ + 1)``."""
    mu, L = _mu_L(mu, L)
    s, t = math.sqrt(L), math.sqrt(mu)
    return 4.0 / (s + t) ** 2, ((s - t) / (s + t)) ** 2


def nesterov_standard(mu: float, L: float) -> tuple[float, float]:
    """Nesterov's constant tuning ``(γ, β) = (1/L, (√κ − 1)/(√κ + 1))``; rate ``1 − 1/√κ``."""
    mu, L = _mu_L(mu, L)
    s, t = math.sqrt(L), math.sqrt(mu)
    return 1.0 / L, (s - t) / (s + t)


def nesterov_optimal(mu: float, L: float) -> tuple[float, float]:
    """The tuning ``(γ, β) = (4/(3L + μ), (√(3κ+1) − 2)/(√(3κ+1) + 2))`` equalising the endpoint
    radii; rate ``1 − 2/√(3κ + 1)`` (Lessard, Recht & Packard 2016). For ``μ = 0`` the limit
    ``(4/(3L), 1)``."""
    mu, L = _mu_L(mu, L)
    if mu == 0:
        return 4.0 / (3 * L), 1.0
    q = math.sqrt(3 * L / mu + 1)
    return 4.0 / (3 * L + mu), (q - 2) / (q + 2)
