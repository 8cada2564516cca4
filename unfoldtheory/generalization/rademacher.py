"""Shared steps of the Rademacher-complexity bounds (:mod:`.spectral`, :mod:`.shultzman`) for the clipped loss.

* **Clipped loss.** ``ℓ_b(u, x) = min(‖u − x‖², b)`` takes values in ``[0, b]`` and is ``2√b``-Lipschitz
  in the prediction ``u`` (ℓ2; ``proofs/clipped_square_loss.py``). A bound for ``ℓ_b`` is a bound for the
  squared loss wherever it does not exceed ``b``; ``E(ℓ − b)₊`` is not covered.
* **Gap from the empirical Rademacher complexity** (Mohri, Rostamizadeh & Talwalkar, *Foundations of
  Machine Learning*, Thm 3.3, for ``[0, 1]``-valued classes, scaled to ``[0, b]``): with probability
  ≥ 1 − δ, for every f in the class, ``E f − Ê_S f ≤ 2R̂_S + 3b√(log(2/δ)/(2m))``. Only the loss needs
  to be bounded, not the inputs.
* **Chaining** (Shalev-Shwartz & Ben-David, *Understanding Machine Learning*, Lemma 27.4, written in the
  normalised metric ``d_S(f, g) = √((1/m)Σ(f(z_i) − g(z_i))²)``): if every f is within ``c`` of a fixed
  function, then for every integer ``M ≥ 1``,
  ``R̂_S ≤ c2^{−M} + (6c/√m) Σ_{k=1}^M 2^{−k} √log N(c2^{−k})``. For ``[0, b]``-valued classes the
  constant ``b/2`` is within ``c = b/2``.
* **Dyadic radii.** A class radius read off the trained model is rounded up to ``r_j = base·2^j``
  (``j ≥ 0``) and pays ``δ ↦ δ/((j + 1)(j + 2))`` (these weights sum to 1 over ``j``): a union bound
  over the grid, so radii may depend on the data.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from unfoldtheory.validation import finite_float, positive_int

MAX_CHAIN_DEPTH = 80


def clip_value(clip: float) -> float:
    """The clipping level ``b > 0`` (validated)."""
    return finite_float(clip, "clip", low=0.0, low_open=True)


def clipped_loss_lipschitz(clip: float) -> float:
    """``2√b``: the Lipschitz constant of ``u ↦ min(‖u − x‖², b)``."""
    return 2.0 * math.sqrt(clip_value(clip))


def gap_from_rademacher(rademacher: float, clip: float, num_samples: int, delta: float) -> float:
    """``2R̂_S + 3b√(log(2/δ)/(2m))`` (Mohri et al., Thm 3.3, scaled to ``[0, b]``)."""
    b = clip_value(clip)
    m = positive_int(num_samples, "num_samples")
    delta = finite_float(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
    return 2.0 * rademacher + 3.0 * b * math.sqrt(math.log(2.0 / delta) / (2.0 * m))


def chaining_bound(log_covering: Callable[[float], float], radius: float, num_samples: int) -> tuple[float, int]:
    """``min_M [c2^{−M} + (6c/√m)Σ_{k≤M} 2^{−k}√log N(c2^{−k})]`` and the minimising ``M`` (module docstring).

    ``log_covering(ε)`` must be an upper bound on ``log N(ε)`` in the normalised metric; negative values
    are read as 0 (a single ball).
    """
    c = finite_float(radius, "radius", low=0.0)
    m = positive_int(num_samples, "num_samples")
    if c == 0.0:
        return 0.0, 0
    best, best_M, running = math.inf, 0, 0.0
    for M in range(1, MAX_CHAIN_DEPTH + 1):
        eps = c * 2.0 ** (-M)
        running += 2.0 ** (-M) * math.sqrt(max(0.0, float(log_covering(eps))))
        value = eps + 6.0 * c / math.sqrt(m) * running
        if value < best:
            best, best_M = value, M
    return best, best_M


def dyadic_ceiling(value: float, base: float) -> tuple[float, int]:
    """The smallest ``base·2^j ≥ value`` (``j ≥ 0``) and ``j``."""
    value = finite_float(value, "value", low=0.0)
    base = finite_float(base, "base", low=0.0, low_open=True)
    j = 0 if value <= base else max(0, math.ceil(math.log2(value / base)))
    while base * 2.0 ** j < value:
        j += 1
    return base * 2.0 ** j, j


def grid_weight(j: int) -> float:
    """``1/((j + 1)(j + 2))``, the share of δ of grid index ``j`` (the weights sum to 1)."""
    return 1.0 / ((j + 1) * (j + 2))


def round_up_radii(values: np.ndarray, bases: np.ndarray) -> tuple[np.ndarray, float]:
    """Every value rounded up on its own dyadic grid, and the product of the grid weights (the factor
    by which δ shrinks for the union bound over all the grids at once)."""
    radii, weight = np.empty(len(values)), 1.0
    for i, (v, b) in enumerate(zip(values, bases, strict=True)):
        radii[i], j = dyadic_ceiling(float(v), float(b))
        weight *= grid_weight(j)
    return radii, weight
