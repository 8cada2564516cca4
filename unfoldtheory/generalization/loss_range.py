"""Certified range of the unclipped squared loss on a data domain ``D = {‖y‖ ≤ R, ‖x‖ ≤ B}`` (issue 15, item 3).

**The function.** ``h`` is the model's :class:`~unfoldtheory.spec.NetworkSpec` evaluated in exact arithmetic on its
float64 entries: ``model.spec()`` for a package model, the exact trace of a float64 copy for any other torch module
(:func:`~unfoldtheory.generalization.parameter_lipschitz.spec_of`), or a spec given directly. It is the map that every
Lipschitz analysis of the package certifies.

**Output radius** ``X ≥ sup_{‖y‖ ≤ R} ‖h(y)‖``, the smallest certified value of three routes:

* *Lipschitz route.* ``‖h(y)‖ ≤ ‖h(0)‖ + ‖h(y) − h(0)‖ ≤ ‖h(0)‖ + L‖y‖`` (triangle inequality) with ``L`` a
  certified ℓ2 Lipschitz upper bound (:func:`unfoldtheory.lipschitz.upper_bound`) and ``‖h(0)‖`` bounded by
  ``‖|ĥ(0)| + e‖`` from the running-error enclosure ``|ĥ(0) − h(0)| ≤ e``
  (:func:`~unfoldtheory.forward_error.evaluate_with_error`).
* *Recursion route.* The state-norm recursion of :mod:`~unfoldtheory.generalization.traced_lipschitz` (step 3,
  ``X_0 = R``, ``X_k = ‖φ_k(0)‖ + ‖b_k‖ + min(Σ_j ‖W_kj‖X_j, ‖[W_kj]_j‖√(Σ_j X_j²))``, output ``Σ_k ‖C_k‖X_k``) on the
  spec itself with every entry constant: the parameter recursion at parameter radius 0, for exactly this ``h``.
  It needs 1-Lipschitz built-in activations and is re-checked in exact rationals
  (:func:`~unfoldtheory.generalization.traced_lipschitz.verify_traced_recursion`).
* *Propagation route.* The read-out appended as one identity state, CROWN bounds ``lo ≤ h(y) ≤ hi`` over the ball
  (:func:`unfoldtheory.lipschitz.preactivation_bounds`, outward rounded by construction), and
  ``‖h(y)‖ ≤ ‖max(|lo|, |hi|)‖`` rounded up. It uses the thresholds, which the other two routes ignore, and wins
  where most neurons are stable over the ball (ALISTA at the report's size).

**Loss range.** For ``(y, x) ∈ D``, ``‖h(y) − x‖ ≤ ‖h(y)‖ + ‖x‖ ≤ X + B``, so
``b_max = (X + B)² ≥ sup_D ‖h(y) − x‖²`` (attained when ``h`` is linear, ``X = ‖W‖R`` and ``x = −B·h(y)/‖h(y)‖``).

**What it is for.** On ``D`` the loss lies in ``[0, b_max]``, so a bound on ``E[ℓ·1_D]`` needs no clipping: the
split-kl levels can end at ``b_max``. ``P(D^c)`` is bounded separately by a kl bound on the indicator ``1_{D^c}``,
whose empirical count is :func:`outside_fraction`. Together (a union bound over the two events) they give, for the
unclipped loss, ``E[ℓ | D] = E[ℓ·1_D]/P(D) ≤ E[ℓ·1_D]⁺/(1 − P(D^c)⁺)`` and the probability ``P(D^c)⁺`` of the samples
the statement leaves out; ``E[ℓ·1_{D^c}]`` itself is not bounded without a tail assumption. The radii must be fixed
without the sample the bound is evaluated on (or paid for by a union bound); :func:`domain_radii` reads them off a
*different* sample (the prior's part, say).

All sums and products are rounded upward and each route's final arithmetic is re-checked in exact rationals before a
value is certified.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction
from types import SimpleNamespace
from typing import Any

import numpy as np
from torch import nn

from unfoldtheory.activations import Identity
from unfoldtheory.forward_error import evaluate_with_error
from unfoldtheory.generalization.data import as_dataset
from unfoldtheory.generalization.parameter_lipschitz import spec_of
from unfoldtheory.generalization.traced_lipschitz import assemble_traced, traced_layers, verify_traced_recursion
from unfoldtheory.lipschitz import METHODS, Ball, preactivation_bounds, upper_bound
from unfoldtheory.lipschitz.norms import up_add, up_mul
from unfoldtheory.results import Bound
from unfoldtheory.rounding import norm_lower, norm_upper, up
from unfoldtheory.spec import Layer, NetworkSpec, NotRepresentable
from unfoldtheory.tracing.provenance import constant
from unfoldtheory.validation import finite_float, time_budget_seconds

OUTPUT_QUANTITY = "output radius sup ‖h(y)‖ over ‖y‖ <= R (l2)"
LOSS_QUANTITY = "range of the unclipped squared loss sup ‖h(y) − x‖² over ‖y‖ <= R, ‖x‖ <= B"
ROUTES = ("lipschitz", "recursion", "propagation")


def model_spec(model: Any, example_input: Any = None) -> NetworkSpec:
    """The spec ``h`` of the module docstring: the spec itself, ``model.spec()`` for a package model, the exact trace of
    a float64 copy otherwise. A module that cannot be traced raises ``NotRepresentable`` naming why."""
    if isinstance(model, NetworkSpec):
        return model
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch nn.Module or a NetworkSpec, got {type(model).__name__}")
    try:
        return spec_of(model, example_input)
    except NotRepresentable as exc:
        raise NotRepresentable(f"{type(model).__name__} cannot be written as a NetworkSpec, so its output on the input "
                               f"ball has no certified bound: {exc}") from exc


def _lipschitz_route(spec: NetworkSpec, R: float, method: str, time_budget: float) -> dict[str, Any]:
    """``‖h(0)‖↑ + L↑·R`` (module docstring), with the Lipschitz Bound and the enclosure of ``h(0)``."""
    lip = upper_bound(spec, method, time_budget=time_budget)
    at_zero = evaluate_with_error(spec, np.zeros(spec.input_dim))
    route: dict[str, Any] = {"lipschitz_bound": lip, "lipschitz_constant": lip.value}
    if at_zero.error is None:
        return {**route, "value": math.inf, "certified": False, "reason": f"h(0) has no rigorous enclosure: {at_zero.reason}"}
    with np.errstate(over="ignore"):
        h0 = float(norm_upper(up(np.abs(at_zero.output) + at_zero.error)))  # ≥ ‖h(0)‖: |h(0)| ≤ |ĥ(0)| + e entrywise
    value = up_add(h0, up_mul(lip.value, R)) if math.isfinite(lip.value) else math.inf
    route.update({"h0_norm_upper": h0, "value": value if math.isfinite(value) else math.inf})
    if not lip.certified:
        return {**route, "certified": False, "reason": f"the Lipschitz upper bound is not certified: {lip.reason}"}
    if not math.isfinite(value):
        return {**route, "certified": False, "reason": "‖h(0)‖ + L·R overflowed float64"}
    if Fraction(value) < Fraction(h0) + Fraction(lip.value) * Fraction(R):  # the rounding, re-checked exactly
        return {**route, "certified": False, "reason": "the exact re-check of ‖h(0)‖ + L·R failed"}
    return {**route, "certified": True, "reason": ""}


def _constant_trace(spec: NetworkSpec) -> Any:
    """``spec`` as a traced model with no learned parameter: every weight, bias, threshold and read-out constant."""
    provenance: dict[tuple[str, int, int | None], Any] = {}
    for k in range(1, spec.num_layers + 1):
        for j in spec.weights[k - 1]:
            provenance[("weight", k, int(j))] = constant(f"W[{k}][{j}]")
        provenance[("bias", k, None)] = constant(f"b[{k}]")
        if getattr(spec.activations[k - 1], "theta", None) is not None:
            provenance[("threshold", k, None)] = constant(f"threshold of state {k}")
    for k in spec.readout:
        provenance[("readout", int(k), None)] = constant(f"C[{k}]")
    return SimpleNamespace(spec=spec, provenance=provenance, parameters={})


def _recursion_route(spec: NetworkSpec, R: float) -> dict[str, Any]:
    """The state-norm recursion on the spec at parameter radius 0 (module docstring), re-checked exactly."""
    try:
        states, readout = traced_layers(_constant_trace(spec), {}, R, 0.0)
    except ValueError as exc:
        return {"value": math.inf, "certified": False, "reason": f"the recursion does not apply: {exc}"}
    _, X, _, out = assemble_traced(states, readout, R, 0)
    finite = math.isfinite(out) and all(math.isfinite(x) for x in X)
    certificate = {"input_radius": R, "parameter_radius": 0.0, "states": states, "readout": readout, "state_bounds": X,
                   "num_tensors": 0, "K_L": 0.0, "output_bound": out if finite else math.inf}
    verified = finite and verify_traced_recursion(certificate)
    reason = "" if verified else ("the recursion overflowed float64" if not finite
                                  else "the exact re-check of the recursion failed")
    return {"value": certificate["output_bound"], "certified": verified, "reason": reason, "certificate": certificate}


def with_readout_state(spec: NetworkSpec) -> NetworkSpec:
    """The same map with the read-out ``Σ_k C_k z_k`` as one more identity state, read out by ``I``."""
    layers = [spec.layer(k) for k in range(1, spec.num_layers + 1)]
    layers.append(Layer(dict(spec.readout), Identity(), None, spec.output_dim))
    return NetworkSpec(spec.input_dim, layers, name=f"{spec.name} + read-out state")


def _propagation_route(spec: NetworkSpec, R: float, time_budget: float) -> dict[str, Any]:
    """``‖max(|lo|, |hi|)‖↑`` from CROWN bounds on the output over the ball (module docstring)."""
    extended = with_readout_state(spec)
    try:
        bounds = preactivation_bounds(extended, Ball(np.zeros(spec.input_dim), R), method="crown",
                                      deadline=time.perf_counter() + time_budget)
    except ValueError as exc:
        return {"value": math.inf, "certified": False, "reason": f"bound propagation does not apply: {exc}"}
    magnitude = np.maximum(np.abs(bounds.lower[-1]), np.abs(bounds.upper[-1]))
    value = _norm_up(magnitude) if np.all(np.isfinite(magnitude)) else math.inf
    route = {"value": value, "stopped": bounds.stopped, "unstable_neurons": int(sum(bounds.unstable_counts(extended)))}
    if not math.isfinite(value):
        return {**route, "certified": False, "reason": "the propagated output bounds are infinite (an overflow)"}
    return {**route, "certified": True, "reason": ""}


def output_radius(model: Any, input_radius: float, *, example_input: Any = None, time_budget: float = 10.0,
                  lipschitz_method: str = "best") -> Bound:
    """A certified upper bound on ``sup_{‖y‖ ≤ R} ‖h(y)‖``: the smallest certified value of the Lipschitz route
    ``‖h(0)‖ + L·R``, the state-norm recursion and CROWN bound propagation over the ball (module docstring; ``h`` is the
    model's spec in exact arithmetic).

    ``model`` is a package model, any torch module (traced on ``example_input``, one input of the module) or a
    :class:`~unfoldtheory.spec.NetworkSpec`; ``time_budget`` (seconds) and ``lipschitz_method`` (one of
    :data:`unfoldtheory.lipschitz.METHODS`) go to the Lipschitz upper bound; the propagation gets ``time_budget``
    too. ``details`` name the winning ``route`` and hold every route's value, certification and reason. Uncertified
    (``value`` the smallest, possibly ``inf``) with the reasons when no route is certified.
    """
    start = time.perf_counter()
    R = finite_float(input_radius, "input_radius", low=0.0, low_open=True)
    budget = time_budget_seconds(time_budget)
    if lipschitz_method not in METHODS:
        raise ValueError(f"lipschitz_method {lipschitz_method!r} is not known; choose one of {METHODS}")
    spec = model_spec(model, example_input)
    routes = {"lipschitz": _lipschitz_route(spec, R, lipschitz_method, budget), "recursion": _recursion_route(spec, R),
              "propagation": _propagation_route(spec, R, budget)}
    certified = [name for name in ROUTES if routes[name]["certified"]]
    pool = certified or list(ROUTES)
    best = min(pool, key=lambda name: routes[name]["value"])
    details: dict[str, Any] = {
        "input_radius": R, "route": best if certified else None, "spec": spec.name,
        **{f"{name}_value": routes[name]["value"] for name in ROUTES},
        **{f"{name}_certified": routes[name]["certified"] for name in ROUTES},
        **{f"{name}_reason": routes[name]["reason"] for name in ROUTES if routes[name]["reason"]},
        "lipschitz_constant": routes["lipschitz"]["lipschitz_constant"],
        "lipschitz_bound": routes["lipschitz"]["lipschitz_bound"],
        "h0_norm_upper": routes["lipschitz"].get("h0_norm_upper", math.inf),
        "propagation_unstable_neurons": routes["propagation"].get("unstable_neurons"),
        "propagation_stopped": routes["propagation"].get("stopped"),
    }
    if not certified:
        details["reason"] = "; ".join(f"{name} route: {routes[name]['reason']}" for name in ROUTES)
    certificate = {"route": details["route"], "recursion": routes["recursion"].get("certificate"),
                   "lipschitz": {k: routes["lipschitz"].get(k) for k in ("lipschitz_constant", "h0_norm_upper", "value")}}
    method = f"{best} route" + (" (smallest certified)" if certified else "")
    return Bound(routes[best]["value"], "upper", OUTPUT_QUANTITY, method, certified=bool(certified), certificate=certificate,
                 seconds=time.perf_counter() - start, details=details)


def domain_loss_bound(model: Any, input_radius: float, target_radius: float, *, example_input: Any = None,
                      time_budget: float = 10.0, lipschitz_method: str = "best") -> Bound:
    """A certified ``b_max ≥ sup {‖h(y) − x‖² : ‖y‖ ≤ R, ‖x‖ ≤ B}``: ``(X + B)²`` rounded up, ``X`` from
    :func:`output_radius`.

    What it is for: the loss is bounded by ``b_max`` on the domain ``D = {‖y‖ ≤ R, ‖x‖ ≤ B}``, so a bound on
    ``E[ℓ·1_D]`` needs no clipping (the split-kl levels can end at ``b_max``), and ``P(D^c)`` is bounded separately
    by a kl bound on the indicator ``1_{D^c}`` (its count: :func:`outside_fraction`); the module docstring says what
    the two give together. Certified when ``X`` is.
    """
    start = time.perf_counter()
    R = finite_float(input_radius, "input_radius", low=0.0, low_open=True)
    B = finite_float(target_radius, "target_radius", low=0.0, low_open=True)
    out = output_radius(model, R, example_input=example_input, time_budget=time_budget, lipschitz_method=lipschitz_method)
    X = out.value
    s = up_add(X, B) if math.isfinite(X) else math.inf
    value = up_mul(s, s) if math.isfinite(s) else math.inf
    value = value if math.isfinite(value) else math.inf
    checked = math.isfinite(value) and Fraction(value) >= (Fraction(X) + Fraction(B)) ** 2
    certified = bool(out.certified and checked)
    details: dict[str, Any] = {"input_radius": R, "target_radius": B, "output_radius": X, "output_radius_bound": out,
                               "route": out.details["route"],
                               "domain": "D = {(y, x): ‖y‖ <= input_radius, ‖x‖ <= target_radius}",
                               "use": "ℓ·1_D ∈ [0, b_max]: no clipping; bound P(D^c) by a kl bound on the indicator"}
    if not certified:
        details["reason"] = (f"the output radius is not certified: {out.reason}" if not out.certified
                             else "(X + B)² overflowed float64 or failed its exact re-check")
    return Bound(value, "upper", LOSS_QUANTITY, f"(output radius + target radius)², {out.method}", certified=certified,
                 certificate={"output_radius": X, "target_radius": B, "output_certificate": out.certificate},
                 seconds=time.perf_counter() - start, details=details)


def _norm_up(v: np.ndarray) -> float:
    """:func:`~unfoldtheory.rounding.norm_upper`, ``inf`` where the norm overflows float64."""
    try:
        return norm_upper(v)
    except OverflowError:
        return math.inf


def _outside(V: np.ndarray, radius: float) -> np.ndarray:
    """Per row, whether ``‖v‖ > radius`` exactly: directed-rounding norms decide, exact rationals settle the rest."""
    out = np.empty(V.shape[0], dtype=bool)
    r2 = Fraction(radius) ** 2
    for i, v in enumerate(V):
        if _norm_up(v) <= radius:
            out[i] = False
        elif norm_lower(v) > radius:
            out[i] = True
        else:  # within rounding of the sphere: compare ‖v‖² with R² in exact arithmetic
            out[i] = sum(Fraction(float(t)) ** 2 for t in v) > r2
    return out


def outside_fraction(data: Any, input_radius: float, target_radius: float) -> int:
    """The number of samples of ``data = (Y, X)`` outside ``D = {‖y‖ ≤ R, ‖x‖ ≤ B}`` (``D`` closed: a sample on the
    boundary is inside), decided exactly. It is the count for the kl bound on ``P(D^c)``."""
    Y, X = as_dataset(data)
    R = finite_float(input_radius, "input_radius", low=0.0, low_open=True)
    B = finite_float(target_radius, "target_radius", low=0.0, low_open=True)
    return int(np.count_nonzero(_outside(Y, R) | _outside(X, B)))


def domain_radii(data: Any, *, quantile: float = 1.0, factor: float = 1.0) -> tuple[float, float]:
    """``(R, B)``: ``factor`` times the ``quantile`` of the samples' norms ``‖y_i‖``, ``‖x_i‖`` (an attained norm, the
    order statistic at or above the quantile), each norm and the product rounded up. With ``quantile=1`` and
    ``factor ≥ 1`` every sample lies in ``D`` (:func:`outside_fraction` counts 0), unlike the float maxima of
    :func:`~unfoldtheory.generalization.data.data_radii`, which may fall one rounding short of a norm. Radii read off
    a sample are fixed for a bound only on a *different* sample."""
    Y, X = as_dataset(data)
    q = finite_float(quantile, "quantile", low=0.0, high=1.0, low_open=True)
    f = finite_float(factor, "factor", low=0.0, low_open=True)

    def radius(V: np.ndarray) -> float:
        norms = np.sort([_norm_up(v) for v in V])
        r = up_mul(float(norms[max(0, math.ceil(Fraction(q) * len(norms)) - 1)]), f)
        if not math.isfinite(r):
            raise ValueError(f"the radius from the data is {r!r}: the samples' norms overflow float64")
        return r

    return radius(Y), radius(X)


__all__ = ["LOSS_QUANTITY", "OUTPUT_QUANTITY", "ROUTES", "domain_loss_bound", "domain_radii", "model_spec", "output_radius",
           "outside_fraction", "with_readout_state"]
