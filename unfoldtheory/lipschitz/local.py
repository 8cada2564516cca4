"""Certified local Lipschitz constants: ``sup ‖f(y₁) − f(y₂)‖₂/‖y₁ − y₂‖₂`` over ``y₁ ≠ y₂`` in a region.

:func:`local_upper_bound` composes three layers, each certified on its own:

1. :func:`~.bound_propagation.preactivation_bounds` — rigorous (outward-rounded) intervals for every
   pre-activation over the region (interval arithmetic, then CROWN back-substitution);
2. :func:`~.restriction.restrict` — neurons with a fixed slope over their interval leave the network
   (constant ones drop out, linear ones are substituted), the unstable ones keep their slope range;
3. the global certificates of :func:`~unfoldtheory.lipschitz.upper_bound` (LipSDP-Neuron, the chain
   methods, …) and, when few neurons are unstable, the vertex enumeration of
   :func:`~.agnostic.activation_agnostic`, run on the restricted spec. Their multipliers are checked as
   for any spec.

The region is convex, so every pair ``y₁, y₂`` in it has every pre-activation in its interval, which is what
the slope ranges need (``proofs/local_slopes.py``). When no neuron is unstable the map is affine on the region
and the bound is ``‖J‖₂`` with a rigorous rounding margin — the local constant itself.
"""

from __future__ import annotations

import time

from unfoldtheory.activations import declaration_caveats
from unfoldtheory.lipschitz.agnostic import activation_agnostic
from unfoldtheory.lipschitz.bound_propagation import PreactivationBounds, preactivation_bounds
from unfoldtheory.lipschitz.quantity import LOCAL_QUANTITY
from unfoldtheory.lipschitz.regions import Region
from unfoldtheory.lipschitz.restriction import Restriction, restrict
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.validation import time_budget_seconds

#: Up to this many unstable neurons the restricted spec's slope patterns are also enumerated (2**n Jacobians):
#: the tightest bound any slope-based certificate can give there.
VERTEX_LIMIT = 12


def _region_bounds(spec: NetworkSpec, region: Region, bounds: PreactivationBounds | None,
                   propagation: str) -> tuple[PreactivationBounds | None, str | None]:
    if bounds is not None:
        if not isinstance(bounds, PreactivationBounds):
            raise TypeError(f"bounds must be PreactivationBounds (from preactivation_bounds), got {type(bounds).__name__}")
        return bounds, None
    try:
        return preactivation_bounds(spec, region, method=propagation), None
    except ValueError as exc:
        if "user-defined" not in str(exc):
            raise
        return None, f"no bound propagation ({exc}); the global certificate is used over the region"


def local_upper_bound(spec: NetworkSpec, region: Region, *, method: str = "best", time_budget: float = 10.0,
                      bounds: PreactivationBounds | None = None, propagation: str = "crown") -> Bound:
    """A certified upper bound on the ℓ2 Lipschitz constant of ``spec`` restricted to ``region`` (module docstring).

    Parameters
    ----------
    spec, region:
        The network and a :class:`~.regions.Ball` or :class:`~.regions.Box` of inputs.
    method:
        The certificate run on the restricted spec (a method of :func:`~unfoldtheory.lipschitz.upper_bound`).
    time_budget:
        Seconds for that certificate.
    bounds:
        Pre-activation bounds valid over the region, if already computed (e.g. ``method="interval"`` for the
        plain IBP baseline); by default :func:`~.bound_propagation.preactivation_bounds` with ``propagation``.

    ``details`` holds the numbers of unstable and stable neurons, the bound-propagation method and time, and the
    candidates tried; ``certificate`` the pre-activation bounds and the inner certificate, from which the
    restricted spec (:func:`~.restriction.restrict`) and its check can be rebuilt.
    """
    from unfoldtheory.lipschitz import upper_bound  # the package's dispatcher (imports this module)

    start = time.perf_counter()
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"local_upper_bound takes a NetworkSpec, got {type(spec).__name__}")
    if not isinstance(region, Region):
        raise TypeError(f"local_upper_bound takes a Region (Ball or Box), got {type(region).__name__}")
    region.check_dim(spec.input_dim)
    budget = time_budget_seconds(time_budget)
    pre, note = _region_bounds(spec, region, bounds, propagation)
    if pre is None:
        inner = upper_bound(spec, method, time_budget=budget)
        return _local(inner, spec, region, None, None, start, {"bounds": note})
    restriction = restrict(spec, pre.lower, pre.upper)
    if restriction.linear:
        value = restriction.jacobian_upper
        inner = Bound(value, "upper", LOCAL_QUANTITY, "affine on the region", value < float("inf"),
                      {"jacobian": restriction.jacobian()}, 0.0,
                      {} if value < float("inf") else {"reason": "the Jacobian or its rounding bound overflows float64"})
        return _local(inner, spec, region, pre, restriction, start, {})
    candidates = [upper_bound(restriction.spec, method, time_budget=budget)]
    if restriction.unstable <= VERTEX_LIMIT:
        try:
            candidates.append(activation_agnostic(restriction.spec, max_neurons=VERTEX_LIMIT))
        except ValueError as exc:  # a non-separable block stays: no vertex enumeration
            candidates[0] = candidates[0].replace(details={**candidates[0].details, "vertices": str(exc)})
    certified = [b for b in candidates if b.certified]
    inner = min(certified or candidates, key=lambda b: b.value)
    summary = {b.method: {"value": b.value, "certified": b.certified} for b in candidates}
    return _local(inner, spec, region, pre, restriction, start, {"candidates": summary})


def _local(inner: Bound, spec: NetworkSpec, region: Region, pre: PreactivationBounds | None,
           restriction: Restriction | None, start: float, extra: dict) -> Bound:
    details = {**inner.details, **extra, "region": repr(region)}
    if pre is not None and restriction is not None:
        details.update({"propagation": pre.method, "propagation_seconds": pre.seconds,
                        "unstable": restriction.unstable, "stable": restriction.stable,
                        "neurons": restriction.unstable + restriction.stable})
    caveats = declaration_caveats(spec)
    if caveats:
        details["rests_on"] = caveats
    certificate = {"inner": inner.certificate, "inner_method": inner.method}
    if pre is not None:
        certificate.update({"lower": pre.lower, "upper": pre.upper})
    return Bound(inner.value, "upper", LOCAL_QUANTITY, f"local ({inner.method})", inner.certified, certificate,
                 time.perf_counter() - start, details)


__all__ = ["VERTEX_LIMIT", "local_upper_bound"]
