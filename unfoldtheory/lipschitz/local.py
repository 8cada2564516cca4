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
#: Up to this LipSDP matrix size "best" solves the restricted problem exactly by the structured interior-point method.
LOCAL_STRUCTURED_SDP = 600
#: Time model of the budget (seconds, one BLAS thread; measured on the report's 64×128, 12-layer nets: 139 rows in
#: 0.6 s, 436 rows in 9 s): the structured solve of an n-row LipSDP matrix converges in about
#: ``SDP_SECONDS_COEFF·n**SDP_SECONDS_POWER``, and it is started only when that is at most ``SDP_OPTIMISM`` times the
#: time left after its re-check (a solve stopped by the budget certifies nothing, and starves the chain methods);
#: the re-check takes ``CHECK_SECONDS + 3e-6·n²``.
SDP_SECONDS_COEFF = 4.2e-6
SDP_SECONDS_POWER = 2.4
SDP_OPTIMISM = 0.8
CHECK_SECONDS = 0.1
#: The chain methods (sequential, then first-order) need at least ``CHAIN_MINIMUM`` seconds to find a feasible scale,
#: and their certificate checks after the search take up to ``CHAIN_RESERVE`` (measured: 0.26–0.5 s at 1e-3 s budget).
CHAIN_MINIMUM = 0.3
CHAIN_RESERVE = 0.4
#: The share of the time budget after which the bound propagation stops tightening (``preactivation_bounds(deadline=)``).
PROPAGATION_SHARE = 0.5


def _region_bounds(spec: NetworkSpec, region: Region, bounds: PreactivationBounds | None,
                   propagation: str, deadline: float) -> tuple[PreactivationBounds | None, str | None]:
    if bounds is not None:
        if not isinstance(bounds, PreactivationBounds):
            raise TypeError(f"bounds must be PreactivationBounds (from preactivation_bounds), got {type(bounds).__name__}")
        return bounds, None
    try:
        return preactivation_bounds(spec, region, method=propagation, deadline=deadline), None
    except ValueError as exc:
        if "user-defined" not in str(exc):
            raise
        return None, f"no bound propagation ({exc}); the global certificate is used over the region"


def _is_chain(spec: NetworkSpec) -> bool:
    """Whether the chain methods apply (layer k reads state k − 1 and/or the input; the read-out the last state)."""
    from unfoldtheory.lipschitz.chain import chain_layers

    try:
        chain_layers(spec)
    except ValueError:
        return False
    return True


def _sdp_seconds(size: int) -> float:
    """Predicted seconds for the structured interior-point method to converge on a LipSDP matrix of ``size`` rows
    (the time model above ``SDP_SECONDS_COEFF``)."""
    return SDP_SECONDS_COEFF * float(size) ** SDP_SECONDS_POWER


def _sdp_check_seconds(size: int) -> float:
    """Seconds reserved for the SDP certificate's re-check after the solve (the quadratic form, its rounding bound and
    the shifted Cholesky factorisation: 0.6 s at 436 rows)."""
    return CHECK_SECONDS + 3e-6 * size * size


def _candidates(spec: NetworkSpec, pre: PreactivationBounds, restriction: Restriction, method: str,
                deadline: float) -> tuple[list[Bound], dict[str, str]]:
    """The certificates tried on the restricted spec (module docstring), and why others were skipped.

    Every step starts only if it fits before ``deadline``, with its final re-check included (``_sdp_check_seconds``,
    ``CHAIN_RESERVE``): a solve gets the time left less what its re-check needs, and a step whose minimum does not fit is
    skipped with the reason. The product bound always runs (tens of milliseconds): it is the certified fallback.
    """
    from unfoldtheory.lipschitz import STRUCTURED_SDP, product_bound, sdp_bound, upper_bound

    def remaining() -> float:
        return deadline - time.perf_counter()

    skipped: dict[str, str] = {}
    if method in ("sequential", "first-order"):  # the chain methods need the chain form
        chain = restrict(spec, pre.lower, pre.upper, keep_linear=True)
        if not _is_chain(chain.spec):
            raise ValueError(f"method {method!r} needs a chain with input injection; the restricted spec is not one")
        return [upper_bound(chain.spec, method, time_budget=max(remaining() - CHAIN_RESERVE, 1e-3))], skipped
    if method != "best":
        return [upper_bound(restriction.spec, method, time_budget=max(remaining(), 1e-3))], skipped
    candidates = [product_bound(restriction.spec)]
    size = spec.input_dim + restriction.unstable
    solve = remaining() - _sdp_check_seconds(size)
    if size > LOCAL_STRUCTURED_SDP:
        skipped["sdp"] = f"the restricted LipSDP matrix has {size} > {LOCAL_STRUCTURED_SDP} rows"
    elif _sdp_seconds(size) > SDP_OPTIMISM * solve:
        skipped["sdp"] = (f"the restricted LipSDP matrix has {size} rows: about {_sdp_seconds(size):.2g} s to converge, "
                          f"{max(solve, 0.0):.2g} s left in the time budget after its re-check")
    else:
        candidates.append(sdp_bound(restriction.spec, solver="structured", max_size=LOCAL_STRUCTURED_SDP,
                                    time_budget=max(solve, 1e-3)))
    exact_sdp = any(b.certified and b.details.get("status") == "optimal" for b in candidates[1:])
    if exact_sdp:
        skipped["first-order"] = "the restricted LipSDP-Neuron problem was solved exactly"
    elif remaining() < CHAIN_MINIMUM + CHAIN_RESERVE:
        skipped["first-order"] = f"time budget spent ({max(remaining(), 0.0):.2g} s left)"
    elif _is_chain(chain := restrict(spec, pre.lower, pre.upper, keep_linear=True).spec):
        candidates.append(upper_bound(chain, "best", time_budget=max(remaining() - CHAIN_RESERVE, 1e-3),
                                      max_sdp_size=min(STRUCTURED_SDP, LOCAL_STRUCTURED_SDP)))
    else:
        skipped["first-order"] = "the spec is not a chain with input injection"
    if restriction.unstable <= VERTEX_LIMIT:
        try:
            candidates.append(activation_agnostic(restriction.spec, max_neurons=VERTEX_LIMIT))
        except ValueError as exc:  # a non-separable block stays: no vertex enumeration
            skipped["vertices"] = str(exc)
    else:
        skipped["vertices"] = f"{restriction.unstable} > {VERTEX_LIMIT} unstable neurons"
    return candidates, skipped


def local_upper_bound(spec: NetworkSpec, region: Region, *, method: str = "best", time_budget: float = 10.0,
                      bounds: PreactivationBounds | None = None, propagation: str = "crown",
                      global_bound: Bound | None = None) -> Bound:
    """A certified upper bound on the ℓ2 Lipschitz constant of ``spec`` restricted to ``region`` (module docstring).

    Parameters
    ----------
    spec, region:
        The network and a :class:`~.regions.Ball` or :class:`~.regions.Box` of inputs.
    method:
        ``"best"`` (default): the product bound of the restricted spec, its exact LipSDP-Neuron optimum by the
        structured interior-point method when the matrix has at most ``LOCAL_STRUCTURED_SDP`` rows, otherwise the
        sequential and first-order methods on the chain form (:func:`~.restriction.restrict` with
        ``keep_linear=True``), and the vertex enumeration when at most ``VERTEX_LIMIT`` neurons are unstable;
        the smallest certified one is returned. Any other method of :func:`~unfoldtheory.lipschitz.upper_bound`
        runs on the restricted spec alone.
    time_budget:
        Seconds for the whole bound. The bound propagation stops tightening after ``PROPAGATION_SHARE`` of it (the
        layers left keep their interval bounds, which are rigorous too); each certificate starts only if it fits in
        what is left with its final re-check (a time model, ``SDP_SECONDS_COEFF`` …), else it is skipped with the
        reason in ``details["skipped"]``. The product bound of the restricted spec and the vertex enumeration (at
        most ``2**VERTEX_LIMIT`` Jacobians) always run; the call may overrun by those and by the time model's error.
    bounds:
        Pre-activation bounds valid over the region, if already computed (e.g. ``method="interval"`` for the
        plain IBP baseline); by default :func:`~.bound_propagation.preactivation_bounds` with ``propagation``.
    global_bound:
        A certified upper bound on the global constant, if the caller has one: it bounds the local constant too,
        and is returned when it is smaller.

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
    if global_bound is not None and not (isinstance(global_bound, Bound) and global_bound.kind == "upper"):
        raise TypeError("global_bound must be an upper Bound on the global Lipschitz constant")
    region.check_dim(spec.input_dim)
    budget = time_budget_seconds(time_budget)
    pre, note = _region_bounds(spec, region, bounds, propagation, start + PROPAGATION_SHARE * budget)
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
    # the bound propagation and the restriction count against the budget too
    candidates, skipped = _candidates(spec, pre, restriction, method, start + budget)
    if global_bound is not None:
        candidates.append(global_bound.replace(method=f"global {global_bound.method}"))
    certified = [b for b in candidates if b.certified]
    inner = min(certified or candidates, key=lambda b: b.value)
    summary = {_label(b): {"value": b.value, "certified": b.certified, "seconds": b.seconds} for b in candidates}
    return _local(inner, spec, region, pre, restriction, start, {"candidates": summary, "skipped": skipped})


def _label(bound: Bound) -> str:
    return f"{bound.method} ({bound.details['solver']})" if "solver" in bound.details else bound.method


def _local(inner: Bound, spec: NetworkSpec, region: Region, pre: PreactivationBounds | None,
           restriction: Restriction | None, start: float, extra: dict) -> Bound:
    details = {**inner.details, **extra, "region": repr(region)}
    if pre is not None and restriction is not None:
        details.update({"propagation": pre.method, "propagation_seconds": pre.seconds,
                        "propagation_stopped_at_layer": pre.stopped,
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


__all__ = ["CHAIN_MINIMUM", "CHAIN_RESERVE", "CHECK_SECONDS", "LOCAL_STRUCTURED_SDP", "PROPAGATION_SHARE", "SDP_OPTIMISM",
           "SDP_SECONDS_COEFF", "SDP_SECONDS_POWER", "VERTEX_LIMIT", "local_upper_bound"]
