"""Lipschitz constants of unfolded networks with respect to their input (ℓ2), as intervals.

* :func:`upper_bound` — certified upper bounds: ``"product"`` (norms with the input-injection
  recursion), ``"averaged"`` (Combettes–Pesquet for firmly nonexpansive activations),
  ``"sequential"`` (closed-form layer-by-layer multipliers on chains with input injection),
  ``"first-order"`` (LipSDP-Neuron's per-neuron multipliers found by L-BFGS on the Schur recursion
  of a chain, warm-started from the sequential ones: close to the SDP at a fraction of its cost),
  ``"sdp"`` (LipSDP-Neuron over the spec's graph, solved by this package's structured primal–dual
  interior-point method or by cvxpy, multipliers checked after the solve) and ``"best"`` (the
  tightest certified one of those that apply within a time budget).
* :func:`lower_bound` — a witness pair ``(y₁, y₂)`` whose ratio is re-evaluated from the spec.
* :func:`activation_agnostic` — for tiny nets, ``max ‖J(D)‖`` over the slope box's vertices:
  what any method that only uses the slope restrictions can at best certify; for larger nets
  :func:`agnostic_floor` climbs to a pattern whose ``‖J(D)‖`` such methods cannot go below.

**Local constants** over an input region (:class:`Ball`, :class:`Box`): :func:`preactivation_bounds` propagates
rigorous intervals for every neuron (interval arithmetic, then CROWN), :func:`restrict` removes the neurons whose
slope is fixed over the region, and :func:`local_upper_bound` certifies the restricted spec with the methods above;
:func:`local_lower_bound` finds a witness pair inside the region; :func:`attack_preactivations` gives empirical *inner*
ranges of the pre-activations (realised at points of the region, not a certificate), to see how tight the intervals
are. :func:`exact_bound` searches the activation patterns of a piecewise-linear spec for its exact global constant
(small nets).

Every function takes a :class:`~unfoldtheory.spec.NetworkSpec` and returns a
:class:`~unfoldtheory.results.Bound`.
"""

from __future__ import annotations

import time

import numpy as np

from unfoldtheory.activations import declaration_caveats
from unfoldtheory.lipschitz.agnostic import activation_agnostic, agnostic_floor
from unfoldtheory.lipschitz.averaged import averaged_bound
from unfoldtheory.lipschitz.bound_propagation import PreactivationBounds, preactivation_bounds
from unfoldtheory.lipschitz.exact import exact_bound
from unfoldtheory.lipschitz.first_order import first_order_bound
from unfoldtheory.lipschitz.local import local_upper_bound
from unfoldtheory.lipschitz.local_lower import local_lower_bound
from unfoldtheory.lipschitz.lower import lower_bound
from unfoldtheory.lipschitz.preactivation_attack import AttackedRanges, attack_preactivations
from unfoldtheory.lipschitz.product import product_bound
from unfoldtheory.lipschitz.quadratic_form import QuadraticForm, quadratic_form
from unfoldtheory.lipschitz.regions import Ball, Box, Region
from unfoldtheory.lipschitz.restriction import Restriction, restrict
from unfoldtheory.lipschitz.sdp import _sdp_on_form, sdp_bound
from unfoldtheory.lipschitz.sequential import sequential_bound
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.validation import time_budget_seconds

#: Up to this LipSDP matrix size "best" solves LipSDP-Neuron exactly by the structured interior-point method
#: (a fraction of a second at 180 rows) before anything else; above it, chains go to the first-order method.
STRUCTURED_SDP = 400

METHODS = ("product", "averaged", "sequential", "first-order", "sdp", "best")

__all__ = ["METHODS", "STRUCTURED_SDP", "AttackedRanges", "Ball", "Box", "PreactivationBounds", "Region", "Restriction",
           "activation_agnostic", "agnostic_floor", "attack_preactivations", "averaged_bound", "exact_bound",
           "first_order_bound", "local_lower_bound", "local_upper_bound", "lower_bound",
           "preactivation_bounds", "product_bound", "restrict", "sdp_bound", "sequential_bound", "upper_bound"]


def _sdp_with_fallback(spec: NetworkSpec, max_size: int, time_budget: float | None = None,
                       solvers: tuple[str, ...] = ("structured", "SCS", "CLARABEL"), form: QuadraticForm | None = None) -> Bound:
    """The structured interior-point solver first (within ``time_budget``); if its multipliers do not pass the
    check, SCS, then Clarabel. The details of every solver tried before the returned one are kept. ``form``:
    ``quadratic_form(spec)`` if the caller has already built it."""
    tried: dict[str, dict] = {}
    for solver in solvers:
        budget = time_budget if solver == "structured" else None
        bound = (sdp_bound(spec, solver=solver, max_size=max_size, time_budget=budget) if form is None
                 else _sdp_on_form(spec, form, solver, max_size, budget, time.perf_counter()))
        if bound.certified:
            break
        tried[solver] = bound.details
    tried.pop(bound.details["solver"], None)
    return bound.replace(details={**bound.details, "tried_before": tried}) if tried else bound


def upper_bound(spec: NetworkSpec, method: str = "best", *, time_budget: float = 45.0, max_sdp_size: int = 1500) -> Bound:
    """A certified upper bound on the ℓ2 Lipschitz constant of ``spec``'s input–output map.

    ``method="best"`` computes the product bound. If the LipSDP matrix has at most ``STRUCTURED_SDP`` (400)
    rows it then solves LipSDP-Neuron exactly by the structured interior-point method and adds the averaged
    bound; otherwise, or if that solve does not converge or does not certify, it computes the sequential and first-order bounds
    where they apply (the sequential start gets a third of ``time_budget``, the first-order search what is
    left; it stops earlier once converged), the averaged bound if time is left, and the SDP bound when its
    matrix has at most ``max_sdp_size`` rows, the spec is not a chain that the first-order method handled,
    and time is left in ``time_budget`` seconds. It returns the smallest *certified* value, with every
    candidate listed in ``details["candidates"]``. ``method="sdp"`` tries the structured solver, then SCS,
    then Clarabel, until one's multipliers pass the check.

    A spec with a user-defined activation is certified only on that activation's declared slope interval,
    which :class:`~unfoldtheory.spec.NetworkSpec` checked on dense samples when it was built; such a bound
    says so in ``details["rests_on"]``.
    """
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"upper_bound takes a NetworkSpec, got {type(spec).__name__}")
    bound = _upper_bound(spec, method, time_budget, max_sdp_size)
    caveats = declaration_caveats(spec)
    return bound.replace(details={**bound.details, "rests_on": caveats}) if caveats else bound


def _upper_bound(spec: NetworkSpec, method: str, time_budget: float, max_sdp_size: int) -> Bound:
    if method == "product":
        return product_bound(spec)
    if method == "averaged":
        return averaged_bound(spec)
    if method == "sequential":
        return sequential_bound(spec)
    if method == "first-order":
        return first_order_bound(spec, time_budget=time_budget)
    if method == "sdp":
        return _sdp_with_fallback(spec, max_sdp_size, time_budget)
    if method != "best":
        raise ValueError(f"method {method!r} is not known; choose one of {METHODS}")
    start = time.perf_counter()

    def remaining() -> float:
        return time_budget - (time.perf_counter() - start)

    candidates = [product_bound(spec)]
    skipped: dict[str, str] = {}
    try:  # built once: the SDP solves below reuse it
        form: QuadraticForm | None = quadratic_form(spec)
    except ValueError as exc:
        form, skipped["sdp"] = None, str(exc)
    size = None if form is None else form.size
    small = size is not None and size <= min(STRUCTURED_SDP, max_sdp_size)
    if small:
        # the exact LipSDP-Neuron optimum is cheap here, and the sequential and first-order methods only
        # approximate it from above; the averaged bound is a different relaxation and costs little at this size
        # the product bound just computed is the solver's first input scale, as sdp_bound would compute it
        candidates.append(_sdp_on_form(spec, form, "structured", max_sdp_size, time_budget_seconds(time_budget),
                                       time.perf_counter(), estimate=candidates[0].value))
        if candidates[-1].certified and candidates[-1].details["status"] == "optimal":
            why = f"the LipSDP matrix has {size} ≤ {STRUCTURED_SDP} rows: solved exactly instead"
            skipped.update({"sequential": why, "first-order": why})
            try:
                candidates.append(averaged_bound(spec, time_budget=max(remaining(), 1e-3)))
            except ValueError as exc:
                skipped["averaged"] = str(exc)
            return _best_of(candidates, skipped, start)
    # one sweep of the sequential search is enough as the first-order method's start (a third of the budget;
    # finding a first feasible scale may take two thirds on very deep wide nets)
    try:
        candidates.append(sequential_bound(spec, sweeps=1, time_budget=time_budget / 3,
                                           feasibility_budget=2 * time_budget / 3))
    except ValueError as exc:
        skipped["sequential"] = str(exc)
    sequential = next((b for b in candidates if b.method == "sequential" and b.certified), None)
    if sequential is not None:  # a chain: refine the sequential multipliers per neuron
        candidates.append(first_order_bound(spec, time_budget=max(remaining(), 1e-3), check_start=False,
                                            start_multipliers=np.maximum(sequential.certificate["multipliers"], 1e-300)))
    else:
        skipped["first-order"] = "needs a chain with certified sequential multipliers to start from"
    # the averaged bound rarely wins on unfolded nets and costs O(K²) wide spectral norms: it gets what is left
    if remaining() > 0:
        try:
            candidates.append(averaged_bound(spec, time_budget=remaining()))
        except ValueError as exc:
            skipped["averaged"] = str(exc)
    else:
        skipped["averaged"] = "time budget spent"
    chain_done = any(b.method == "first-order" and b.certified for b in candidates)
    if size is not None:
        if chain_done:
            skipped["sdp"] = "the first-order method solved the same LipSDP-Neuron problem on the chain"
        elif size > max_sdp_size:
            skipped["sdp"] = f"LipSDP matrix of size {size} exceeds max_sdp_size = {max_sdp_size}"
        elif remaining() <= 0:
            skipped["sdp"] = "time budget spent"
        else:
            candidates.append(_sdp_with_fallback(spec, max_sdp_size, remaining(),
                                                 ("SCS", "CLARABEL") if small else ("structured", "SCS", "CLARABEL"), form))
    return _best_of(candidates, skipped, start)


def _best_of(candidates: list[Bound], skipped: dict[str, str], start: float) -> Bound:
    """The smallest certified candidate (the smallest value if none is certified), with every candidate listed."""
    certified = [b for b in candidates if b.certified]
    best = min(certified, key=lambda b: b.value) if certified else min(candidates, key=lambda b: b.value)
    summary = {_label(b): {"value": b.value, "certified": b.certified, "seconds": b.seconds} for b in candidates}
    return best.replace(method=f"best ({best.method})", seconds=time.perf_counter() - start,
                        details={**best.details, "candidates": summary, "skipped": skipped,
                                 "chosen": best.method if np.isfinite(best.value) else None})


def _label(bound: Bound) -> str:
    """The candidate's name in ``details["candidates"]``: the method, and for the SDP also its solver."""
    return f"{bound.method} ({bound.details['solver']})" if "solver" in bound.details else bound.method
