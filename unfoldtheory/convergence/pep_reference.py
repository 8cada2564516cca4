"""The same worst-case problems through PEPit (the reference implementation), for cross-checks.

PEPit (``pip install pepit``, MIT; Goujaud, Moucer, Glineur, Hendrickx, Taylor & Dieuleveut) is a
test and benchmark dependency only; it is imported when :func:`pepit_rate` is called. The methods,
metrics and normalisation are those of :func:`unfoldtheory.convergence.pep_rate`; the solver is
Clarabel through PEPit's cvxpy wrapper, with verbose off and the tolerances of ``pep_rate`` (gap
``tolerance``, feasibility ``FEASIBILITY_FACTOR·tolerance``) so that both codes solve to the same
standard.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from unfoldtheory.convergence.pep import FEASIBILITY_FACTOR


def pepit_rate(steps: Any, mu: float, L: float, method: str = "gradient", momentum: Any = None,
               metric: str = "distance", tolerance: float = 1e-8) -> tuple[float, float, str]:
    """``(value, seconds, status)`` of PEPit on the problem :func:`~unfoldtheory.convergence.pep_rate`
    solves (its dual value, i.e. PEPit's worst-case guarantee). ``momentum`` must be explicit for
    ``method="accelerated"`` (β_1..β_{K−1})."""
    import cvxpy as cp
    from PEPit import PEP
    from PEPit.functions import ConvexFunction, SmoothStronglyConvexFunction
    from PEPit.primitive_steps import proximal_step

    start = time.perf_counter()
    steps = [float(s) for s in np.atleast_1d(steps)]
    problem = PEP()
    f = problem.declare_function(SmoothStronglyConvexFunction, mu=mu, L=L)
    if method == "proximal_gradient":
        h = problem.declare_function(ConvexFunction)
        total = f + h
    else:
        total = f
    xs = total.stationary_point()
    fs = total(xs)
    x0 = problem.set_initial_point()
    problem.set_initial_condition((x0 - xs) ** 2 <= 1)
    x = y = x0
    for k, gamma in enumerate(steps):
        if method == "proximal_gradient":
            x, _, _ = proximal_step(x - gamma * f.gradient(x), h, gamma)
        elif method == "accelerated":
            x_new = y - gamma * f.gradient(y)
            if k + 1 < len(steps):
                y = x_new + float(momentum[k]) * (x_new - x)
            x = x_new
        elif method == "gradient":
            x = x - gamma * f.gradient(x)
        else:
            raise ValueError(f"unknown method {method!r}")
    if metric == "distance":
        problem.set_performance_metric((x - xs) ** 2)
    elif metric == "function_value":
        problem.set_performance_metric(total(x) - fs)
    elif metric == "gradient_norm":
        problem.set_performance_metric(f.gradient(x) ** 2)
    else:
        raise ValueError(f"unknown metric {metric!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = problem.solve(wrapper="cvxpy", solver=cp.CLARABEL, verbose=0, tol_gap_abs=tolerance,
                              tol_gap_rel=tolerance, tol_feas=FEASIBILITY_FACTOR * tolerance)
    return float(value), time.perf_counter() - start, str(problem.wrapper.prob.status)
