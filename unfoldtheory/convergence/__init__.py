"""Convergence and contraction: closed-form rates and certified worst cases of learned schedules (PEP).

* :mod:`~unfoldtheory.convergence.closed_form`: gradient / proximal gradient contraction factors,
  products over a schedule, heavy ball and Nesterov on quadratics (each derived in ``proofs/``).
* :func:`pep_rate`: the exact worst case of a K-step method with per-step parameters, by
  performance estimation, certified from the dual multipliers; :func:`pep_rate_of` applies it to the
  learned schedule of an ``UnfoldedISTA`` / ``ALISTA`` model.
"""

from unfoldtheory.convergence.closed_form import (
    gd_optimal_step,
    gd_rate,
    heavy_ball_polyak,
    heavy_ball_rate,
    nesterov_optimal,
    nesterov_rate,
    nesterov_standard,
    proximal_gradient_rate,
    schedule_rate,
)
from unfoldtheory.convergence.pep import ScheduleRates, pep_rate, pep_rate_of

__all__ = [
    "ScheduleRates",
    "gd_optimal_step",
    "gd_rate",
    "heavy_ball_polyak",
    "heavy_ball_rate",
    "nesterov_optimal",
    "nesterov_rate",
    "nesterov_standard",
    "pep_rate",
    "pep_rate_of",
    "proximal_gradient_rate",
    "schedule_rate",
]
