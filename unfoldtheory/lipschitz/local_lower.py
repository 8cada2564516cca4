"""Certified lower bounds on the local ℓ2 Lipschitz constant over an input region, with a witness pair inside it.

The local constant over a region ``R`` is ``sup {‖f(y₁) − f(y₂)‖₂ / ‖y₁ − y₂‖₂ : y₁ ≠ y₂ ∈ R}``; the ratio of any
pair of distinct points of ``R`` is a lower bound on it. The search is the global one of
:mod:`unfoldtheory.lipschitz.lower` confined to ``R``:

1. **Screening.** The region's centre and ``8·restarts − 1`` points of :meth:`Region.sample` (a quarter of them
   on the boundary), scored by the exact ``‖J(y)‖₂``; the best ``restarts`` are the starts.
2. **Projected smoothed ascent.** The annealed ascent of ``‖J_τ(y)‖`` with every step mapped back by
   :meth:`Region.project`, steps relative to the region's half-diameter and τ relative to how much the
   pre-activations vary over the sampled points (not to their size: at a radius of 1 % of ‖y‖ that would smooth
   the whole region into one piece); ``_STEPS`` steps within ``ASCENT_SHARE`` of the search time.
3. **Pattern polish** of the best three, its kink-crossing moves projected onto the region.
4. **Region ascent** over the linear pieces that meet the region (the global stage 4 with a domain: points are
   taken only if they lie in the region exactly; the Chebyshev-centre LPs search the region's enclosing box, and
   for an ℓ2 ball a centre outside the ball is pulled along the chord from the current point into the overlap of
   the piece and the ball, or else cut off by the tangent half-space at its radial projection).

**Certification.** The best point is pulled towards the centre by a relative ``2⁻²⁰`` of its offset (so that it is
strictly inside), then the pair ``y₀ − a·v, y₀ + b·v`` along the top right singular vector ``v`` of ``J(y₀)`` (of its
columns along which the region has width) is built by :func:`unfoldtheory.lipschitz.lower._certify` with ``a``, ``b``
capped by how far the line stays in the region (closed forms for ℓ2 balls, ℓ∞ balls and boxes, less a relative
``10⁻⁶``): as long as the linear piece allows, so that the ratio is ``‖J(y₀)‖`` up to its rounding bound. The ratio
is :func:`unfoldtheory.forward_error.certified_ratio` (a rigorous lower bound in exact arithmetic on the float64 spec),
and both points are checked to lie in the region **exactly** (:func:`inside_exactly`: float comparisons for boxes,
outward-rounded ``|y − c|`` and ``‖y − c‖₂`` for balls); if a check fails the caps are halved (up to 20 times).

A region of zero diameter (a ball of radius 0, a box with ``lower == upper``) holds no pair of distinct points: the
bound is the trivial ``0`` (every Lipschitz constant is ≥ 0), certified, with ``details["reason"]`` saying so.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from unfoldtheory.forward_error import CertifiedRatio, certified_ratio, pattern_gain_lower
from unfoldtheory.lipschitz.lower import _ascent, _certify, _Domain, _Net, _polish, _region_stage
from unfoldtheory.lipschitz.quantity import LOCAL_QUANTITY
from unfoldtheory.lipschitz.regions import Ball, Box, Region
from unfoldtheory.results import Bound
from unfoldtheory.rounding import diff_norm_upper, diff_upper, norm_upper
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.validation import positive_int, time_budget_seconds

QUANTITY = LOCAL_QUANTITY
METHOD = "local-witness-search"
_STEPS = 40  # projected ascent steps per restart (its share of the time budget may stop it earlier)
_PULL = 2.0 ** -20  # relative pull of the witness's centre point towards the region's centre
_MARGIN = 1e-6  # relative margin kept from the boundary along the witness direction
_SHRINK = 20  # halvings of the segment tried when a point fails the exact membership test
#: The share of ``time_budget`` kept for the certification after the search (the witness pair, its re-check and the
#: linear-piece certificate: 0.3 s of CROWN and exact ratios at the report's size, 64×128 with 12 layers).
CERTIFY_SHARE = 0.25
#: The share of the search time for the projected ascent (stage 2); the pattern polish and the region ascent have the
#: rest (measured on the report's trained nets at a 0.6 s budget: the polish finds 1.0–1.9× larger ratios than more
#: ascent steps do).
ASCENT_SHARE = 0.5


def inside_exactly(region: Region, Y: Any) -> np.ndarray:
    """Whether each row of ``Y`` lies in ``region`` in exact arithmetic on the float64 data (False when unsure).

    Box: ``lower ≤ y ≤ upper`` (float comparisons are exact). ℓ∞ ball: an upward-rounded ``|y_i − c_i|`` ≤ radius.
    ℓ2 ball: an upward-rounded ``‖y − c‖₂`` (:func:`unfoldtheory.rounding.diff_norm_upper`) ≤ radius. Any other
    region type: False (no exact test is known).
    """
    P = np.atleast_2d(np.asarray(Y, dtype=np.float64))
    if isinstance(region, Box):
        return np.all((P >= region.lower) & (P <= region.upper), axis=1)
    if isinstance(region, Ball) and region.norm == 2:
        return np.array([diff_norm_upper(p, region.center) <= region.radius for p in P])
    if isinstance(region, Ball):
        return np.all(diff_upper(P, region.center) <= region.radius, axis=1)
    return np.zeros(P.shape[0], dtype=bool)


def _centre(region: Region) -> np.ndarray:
    if isinstance(region, Ball):
        return np.array(region.center)
    if isinstance(region, Box):
        return 0.5 * region.lower + 0.5 * region.upper
    lo, hi = region.enclosing_box()
    return region.project(0.5 * lo + 0.5 * hi)


def _free(region: Region) -> np.ndarray:
    """The coordinates along which the region has width (all of them for a ball of positive radius)."""
    if isinstance(region, Box):
        return region.upper > region.lower
    return np.ones(region.input_dim, dtype=bool)


def _reach(region: Region, y: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """How far the line ``y + t v`` (``v`` unit) stays in the region: ``(backward, forward)`` (float64, not rigorous:
    the caller keeps a margin and checks the end points exactly)."""
    if isinstance(region, Ball) and region.norm == 2:
        d = y - region.center
        dv = float(d @ v)
        disc = math.sqrt(max(dv * dv - float(d @ d) + region.radius ** 2, 0.0))
        return max(dv + disc, 0.0), max(-dv + disc, 0.0)
    if isinstance(region, Ball):
        lo, hi = region.center - region.radius, region.center + region.radius
    elif isinstance(region, Box):
        lo, hi = region.lower, region.upper
    else:
        lo, hi = region.enclosing_box()
    with np.errstate(divide="ignore", invalid="ignore"):
        up_t = np.where(v > 0, (hi - y) / v, np.where(v < 0, (lo - y) / v, np.inf))
        down_t = np.where(v < 0, (hi - y) / -v, np.where(v > 0, (lo - y) / -v, np.inf))
    return max(float(np.min(down_t)), 0.0), max(float(np.min(up_t)), 0.0)


def _domain(region: Region) -> _Domain:
    """The region as the region ascent's domain: its enclosing box, the exact membership test, and for ℓ2 balls the
    tangent half-space at the radial projection of a point outside."""
    lo, hi = region.enclosing_box()
    cut = None
    if isinstance(region, Ball) and region.norm == 2:
        def cut(p: np.ndarray) -> tuple[np.ndarray, float] | None:
            d = p - region.center
            dist = float(np.linalg.norm(d))
            if dist <= region.radius * (1.0 - 1e-9):
                return None
            a = d / dist
            return a, float(a @ region.center) + region.radius * (1.0 - 1e-6)

        def reach(y: np.ndarray, p: np.ndarray) -> float:
            _, fwd = _reach(region, y, (p - y) / max(float(np.linalg.norm(p - y)), 1e-300))
            return min(1.0, (1.0 - 1e-6) * fwd / max(float(np.linalg.norm(p - y)), 1e-300))

        return _Domain(lo, hi, lambda p: bool(inside_exactly(region, p)[0]), cut, reach)
    return _Domain(lo, hi, lambda p: bool(inside_exactly(region, p)[0]))


def _direction(spec: NetworkSpec, y: np.ndarray, free: np.ndarray) -> np.ndarray:
    """The top right singular vector of ``J(y)`` restricted to the free coordinates (zero elsewhere)."""
    J = spec.jacobian(y)
    v = np.zeros(spec.input_dim)
    if np.all(np.isfinite(J)) and np.any(J[:, free]):
        v[free] = np.linalg.svd(J[:, free])[2][0]
    else:
        v[np.flatnonzero(free)[0]] = 1.0
    return v


def _witness(net: _Net, region: Region, y: np.ndarray) -> tuple[dict[str, Any], bool]:
    """The certified pair around ``y`` (pulled inside), with both points checked to lie in the region exactly."""
    c = _centre(region)
    y0 = region.project(c + (1.0 - _PULL) * (y - c))
    v = _direction(net.spec, y0, _free(region))
    back, fwd = _reach(region, y0, v)
    shrink = 1.0 - _MARGIN
    cert: dict[str, Any] = {}
    for _ in range(_SHRINK):
        cap = (shrink * back, shrink * fwd)
        cert = _certify(net, y0, lambda _y, _v, cap=cap: cap, direction=v)
        if bool(np.all(inside_exactly(region, np.stack([cert["y1"], cert["y2"]])))):
            return cert, True
        shrink *= 0.5
    return cert, False


def box_inside(region: Region, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Whether the box ``[lo, hi]`` lies in ``region`` in exact arithmetic (False when unsure). For a ball, the box's
    farthest point from the centre is the corner with ``max(|lo_i − c_i|, |hi_i − c_i|)`` in every coordinate."""
    if isinstance(region, Box):
        return bool(np.all(lo >= region.lower) and np.all(hi <= region.upper))
    if isinstance(region, Ball):
        far = np.maximum(diff_upper(lo, region.center), diff_upper(hi, region.center))
        reach = norm_upper(far) if region.norm == 2 else float(np.max(far))
        return bool(reach <= region.radius)
    return False


def piece_gain(spec: NetworkSpec, region: Region, y0: np.ndarray, v: np.ndarray) -> tuple[float, dict[str, Any]]:
    """A certified lower bound on the local constant from one linear piece: ``‖J(D)v‖/‖v‖`` rounded down.

    If a box ``B = [y₀ − δ, y₀ + δ]`` (δ > 0) lies in the region exactly and the rigorous pre-activation bounds over
    ``B`` fix every neuron's slope (:func:`~.restriction.restrict` finds no unstable neuron), then ``f`` is affine on
    ``B`` with Jacobian ``J(D)``, ``D`` the fixed slopes (``proofs/local_slopes.py``, item 3), so the pair
    ``y₀, y₀ + tv`` in ``B`` has ratio ``‖J(D)v‖/‖v‖``, which :func:`~unfoldtheory.forward_error.pattern_gain_lower`
    bounds from below with an error that scales with ``J(D)v``, not with the size of the states (the pair
    certificate's rounding bound can swamp a small region of a deep net). Returns ``(0.0, reason)`` when no such box
    is found among ``δ = 2⁻²⁰…2⁻⁵⁰`` times the region's half-diameter.
    """
    from unfoldtheory.lipschitz.bound_propagation import preactivation_bounds
    from unfoldtheory.lipschitz.restriction import restrict

    half = 0.5 * region.diameter
    try:
        for e in (20, 30, 40, 50):
            delta = math.ldexp(half, -e)
            lo, hi = y0 - delta, y0 + delta
            if not (np.all(lo < hi) and box_inside(region, lo, hi)):
                continue
            bounds = preactivation_bounds(spec, Box(lo, hi))
            restriction = restrict(spec, bounds.lower, bounds.upper)
            if restriction.unstable or restriction.constant_output:
                continue
            pattern = [act.slope_range(a, b)[0] if act.separable else None
                       for act, a, b in zip(spec.activations, bounds.lower, bounds.upper, strict=True)]
            if any(p is None for p in pattern):
                return 0.0, {"piece": "a non-separable layer: no slope pattern"}
            return pattern_gain_lower(spec, pattern, v), {"piece_box_halfwidth": delta}
    except ValueError as exc:  # no bound propagation for this spec (a user-defined activation)
        return 0.0, {"piece": str(exc)}
    return 0.0, {"piece": "no box around the witness point with every neuron's slope fixed"}


def _zero_bound(region: Region, t0: float) -> Bound:
    seconds = time.perf_counter() - t0
    return Bound(value=0.0, kind="lower", quantity=QUANTITY, method=METHOD, certified=True,
                 certificate={"y1": None, "y2": None, "ratio": 0.0}, seconds=seconds,
                 details={"region": repr(region), "seconds": seconds,
                          "reason": "the region has zero diameter: it holds no pair of distinct points, and 0 is the "
                                    "trivial lower bound on a Lipschitz constant"})


def local_lower_bound(spec: NetworkSpec, region: Region, *, seed: int = 0, restarts: int = 8,
                      time_budget: float = 5.0) -> Bound:
    """A certified lower bound on the local ℓ2 Lipschitz constant of ``spec`` over ``region``, with a witness pair.

    See the module docstring for the search and the certification. ``value`` is a rigorous lower bound on the exact
    ratio ``‖f(y₂) − f(y₁)‖ / ‖y₂ − y₁‖`` of two points ``y₁ ≠ y₂`` of the region (both checked to lie in it in exact
    arithmetic); it equals ``‖J(y₁)‖₂`` up to its rounding bound when ``details["same_region"]`` is True.

    Returns ``Bound(kind="lower")``, certified unless ``details["reason"]`` says why not; ``certificate`` =
    ``{"y1", "y2", "ratio", "jacobian_norm_at_y1"}``; ``details``: ``region`` (its repr), ``restarts``, ``seed``,
    ``best_per_restart`` (exact ‖J‖ of each restart's best point), ``centre_jacobian_norm``,
    ``search_best_jacobian_norm``, ``same_region``, ``segment``, ``inside`` (the exact membership test of both
    points), ``witness_check``, ``rounding_bound``, ``seconds``. A zero-diameter region gives the certified ``0``
    with the reason. ValueError for a region of the wrong dimension, a bad seed, restarts or time budget.

    ``time_budget`` covers the whole call: the search stops after ``1 − CERTIFY_SHARE`` of it, and the certification of
    the best point (the witness pair, its exact re-check, the linear-piece certificate) has the rest.
    """
    t0 = time.perf_counter()
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"local_lower_bound takes a NetworkSpec, got {type(spec).__name__}")
    if not isinstance(region, Region):
        raise TypeError(f"local_lower_bound takes a Region (Ball or Box), got {type(region).__name__}")
    region.check_dim(spec.input_dim)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {seed!r}")
    restarts = positive_int(restarts, "restarts")
    budget = time_budget_seconds(time_budget)
    deadline = t0 + (1.0 - CERTIFY_SHARE) * budget  # the search stops here; the certification has the rest
    half = 0.5 * region.diameter
    if not half > 0:
        return _zero_bound(region, t0)
    net = _Net(spec)
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        pool = np.vstack([_centre(region)[None, :], region.sample(8 * restarts - 1, rng)])
        vals, _ = net.exact_norms(pool)
        centre_norm = float(vals[0])
        order = np.argsort(-np.nan_to_num(vals, nan=-1.0))[:restarts]
        best_vals, best_Y = vals[order].copy(), pool[order].copy()

        def record(Ynew: np.ndarray) -> None:
            nv, _ = net.exact_norms(Ynew)
            better = nv > best_vals
            best_vals[better] = nv[better]
            best_Y[better] = Ynew[better]

        if net.smoothable and net.separable:  # 2. the ascent has ASCENT_SHARE of the search time, the polish the rest
            pres, _, _ = net.forward(pool)
            spread = float(np.sqrt(np.mean(np.concatenate([p.std(axis=0) ** 2 for p in pres])))) if pres else 0.0
            _ascent(net, best_Y.copy(), np.full(len(order), half), _STEPS, record, t0 + ASCENT_SHARE * (deadline - t0),
                    math.inf, project=region.project, pre_scale=spread if math.isfinite(spread) and spread > 0 else None)
        if net.separable and net.piecewise_linear and spec.input_dim * max(spec.dims) ** 2 <= 2_000_000:
            for i in np.argsort(-best_vals)[:3]:
                y, val = _polish(net, best_Y[i].copy(), float(best_vals[i]), deadline, region.diameter,
                                 project=region.project)
                if val > best_vals[i]:
                    best_vals[i], best_Y[i] = val, y
        # 4. region ascent over the linear pieces that meet the region (the global stage 4, kept inside it)
        stage = _region_stage(net, best_Y, best_vals, deadline, math.inf, half, rng, _domain(region), half)
    i_best = int(np.argmax(np.nan_to_num(best_vals, nan=-1.0)))
    try:
        cert, inside = _witness(net, region, best_Y[i_best])
    except ValueError as exc:  # the region is below the float64 resolution of its points
        seconds = time.perf_counter() - t0
        return Bound(value=0.0, kind="lower", quantity=QUANTITY, method=METHOD, certified=False,
                     certificate={"y1": None, "y2": None, "ratio": 0.0}, seconds=seconds,
                     details={"region": repr(region), "reason": str(exc), "seconds": seconds})
    witness: CertifiedRatio = cert["witness"]
    recheck = certified_ratio(spec, cert["y1"], cert["y2"]).value
    certified = witness.certified and inside and recheck == cert["ratio"]
    value = witness.value if math.isfinite(witness.error) or not math.isfinite(witness.float_ratio) else witness.float_ratio
    y0 = region.project(_centre(region) + (1.0 - _PULL) * (best_Y[i_best] - _centre(region)))
    gain, piece = piece_gain(spec, region, y0, _direction(spec, y0, _free(region)))
    if gain > 0 and (gain > value or not certified):
        value, certified, method = gain, True, f"{METHOD} (linear piece)"
        cert = {**cert, "y0": y0, "piece_gain": gain}
    else:
        method = METHOD
    reason = {} if certified else {"reason": witness.reason if not witness.certified else (
        "a witness point is not inside the region in exact arithmetic" if not inside else "the re-check disagreed")}
    seconds = time.perf_counter() - t0
    return Bound(
        value=value, kind="lower", quantity=QUANTITY, method=method, certified=bool(certified),
        certificate={k: cert[k] for k in ("y1", "y2", "ratio", "jacobian_norm_at_y1", "y0", "piece_gain") if k in cert},
        seconds=seconds,
        details={"region": repr(region), "restarts": restarts, "seed": int(seed), "best_per_restart": best_vals.tolist(),
                 "centre_jacobian_norm": centre_norm, "search_best_jacobian_norm": float(best_vals[i_best]),
                 "region_ascent": stage,
                 "same_region": cert["same_region"], "segment": cert["segment"], "inside": bool(inside),
                 "witness_check": witness.summary(), **(reason if method == METHOD else {}), **piece,
                 "rounding_bound": witness.error / witness.gap if witness.gap > 0 else math.inf, "seconds": seconds},
    )


__all__ = ["ASCENT_SHARE", "CERTIFY_SHARE", "METHOD", "QUANTITY", "box_inside", "inside_exactly", "local_lower_bound",
           "piece_gain"]
