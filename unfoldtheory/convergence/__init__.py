"""Convergence and contraction: closed-form rates and certified worst cases of learned schedules (PEP).

* :mod:`~unfoldtheory.convergence.closed_form`: gradient / proximal gradient contraction factors,
  products over a schedule, heavy ball and Nesterov on quadratics (each derived in ``proofs/``).
* :func:`pep_rate`: the exact worst case of a K-step method with per-step parameters, by
  performance estimation, certified from the dual multipliers; :func:`pep_rate_of` applies it to the
  classical method detected in any spec or model (``UnfoldedISTA``, ``ALISTA``, a traced user module).
* :func:`contraction_bound`: the certified contraction factor of a weight-tied iteration
  ``x ↦ φ(Wx + By + b)`` read off any spec (LipSDP on one layer); :func:`detect_method`: the classical
  method (ISTA, gradient descent, accelerated gradient) that a spec's layers are, from the weights.
* :func:`generalized_coherence`, :func:`alista_rate_bound`, :func:`lista_cp_certificate`: coherence and
  the LISTA-CP / ALISTA per-layer certificates, evaluated with trained weights.
* :func:`error_trace`, :func:`fit_linear_rate`: the measured per-layer errors and rates they bound.
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
from unfoldtheory.convergence.coherence import (
    LayerwiseCertificate,
    alista_rate_bound,
    generalized_coherence,
    lista_cp_certificate,
)
from unfoldtheory.convergence.detect import DetectedMethod, detect_method
from unfoldtheory.convergence.empirical import ErrorTrace, error_trace, fit_linear_rate, layer_iterates
from unfoldtheory.convergence.pep import ScheduleRates, pep_rate, pep_rate_of
from unfoldtheory.convergence.spec_contraction import contraction_bound, tied_iteration

__all__ = [
    "DetectedMethod",
    "ErrorTrace",
    "LayerwiseCertificate",
    "ScheduleRates",
    "alista_rate_bound",
    "contraction_bound",
    "detect_method",
    "error_trace",
    "fit_linear_rate",
    "gd_optimal_step",
    "gd_rate",
    "generalized_coherence",
    "heavy_ball_polyak",
    "heavy_ball_rate",
    "layer_iterates",
    "lista_cp_certificate",
    "nesterov_optimal",
    "nesterov_rate",
    "nesterov_standard",
    "pep_rate",
    "pep_rate_of",
    "proximal_gradient_rate",
    "schedule_rate",
    "tied_iteration",
]
