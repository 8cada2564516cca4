"""Per-sample stability: the certified local Lipschitz interval of a network around test inputs, at a few radii.

For each test input ``y`` and radius ``r`` the region is ``Ball(y, r)`` (ℓ2), and the local ℓ2 Lipschitz constant
over it lies in ``[local_lower_bound, local_upper_bound]`` (:mod:`unfoldtheory.lipschitz.local_lower`,
:mod:`unfoldtheory.lipschitz.local`). Radii are relative to a level (:class:`Radius`): the signal,
``r = f·‖y‖``, or the noise, ``r = c·σ√m`` (``σ√m`` is the typical ℓ2 norm of the noise ``σe`` in ``ℝᵐ``; a radius
relative to a noise level of 0 would be a point, so such radii are dropped). The local constant over ``Ball(y, r)``
grows with ``r`` and is at most the global constant, which it reaches as ``r → ∞``; so the global interval is the
limit drawn beside the local ones (:func:`global_interval`: the "best" one, tightened by the exact search on small
piecewise-linear specs). The same order serves the lower end: a certified lower bound of a local constant is one of
the global constant, so :func:`local_stability` raises the given global lower end to the largest certified local one
(:func:`global_lower_from_local`: the same number and certificate, relabelled).

This module computes nothing that it certifies itself: every value is a :class:`~unfoldtheory.results.Bound` of the
functions above, and a summary counts a value only where its Bound is certified (a median over certified values,
a count of those that are not, with their reasons). Every pair of certified ends is checked
(:func:`~unfoldtheory.consistency.check_interval`): local lower ≤ local upper, and local lower ≤ global upper (the
local constant never exceeds the global one).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from unfoldtheory.consistency import check_interval
from unfoldtheory.diagnostics.bound_table import uncertified_reason
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.validation import as_finite_array, finite_float, positive_int, time_budget_seconds

LEVELS = ("signal", "noise")

#: A local interval counts as tight when upper / lower is at most this (the goal of issue 13).
TIGHT_RATIO = 1.2


@dataclass(frozen=True)
class Radius:
    """A ball radius relative to a level: ``factor·‖y‖`` (``relative_to="signal"``) or ``factor·σ√m`` (``"noise"``)."""

    relative_to: str
    factor: float

    def __post_init__(self) -> None:
        if self.relative_to not in LEVELS:
            raise ValueError(f"a radius is relative to one of {LEVELS}, got {self.relative_to!r}")
        object.__setattr__(self, "factor", finite_float(self.factor, f"{self.relative_to} radius factor", low=0.0, low_open=True))

    @property
    def label(self) -> str:
        """``"1 % of ‖y‖"`` or ``"0.5 σ√m"``."""
        if self.relative_to == "signal":
            return f"{100 * self.factor:.3g} % of ‖y‖"
        return f"{self.factor:.3g} σ√m"

    def of(self, y: np.ndarray, noise_std: float) -> float:
        """The radius for input ``y`` (float64; the ball is defined by this float, so no rounding is at stake)."""
        if self.relative_to == "signal":
            return float(self.factor * np.linalg.norm(y))
        return float(self.factor * noise_std * math.sqrt(y.shape[0]))

    def to_dict(self) -> dict[str, Any]:
        return {"relative_to": self.relative_to, "factor": self.factor, "label": self.label}


def stability_radii(signal: Sequence[float] = (0.01, 0.05), noise: Sequence[float] = (0.5,),
                    noise_std: float = 0.0) -> list[Radius]:
    """The radii of a stability profile: the noise-relative ones first (dropped when ``noise_std`` is 0), then
    the signal-relative ones, each group in increasing order. ValueError for a non-positive factor or no radius."""
    noise_std = finite_float(noise_std, "noise_std", low=0.0)
    noise_radii = sorted((Radius("noise", c) for c in noise), key=lambda r: r.factor)
    radii = (noise_radii if noise_std > 0 else []) + sorted((Radius("signal", f) for f in signal), key=lambda r: r.factor)
    if not radii:
        raise ValueError("no stability radius: give at least one signal-relative radius"
                         + ("" if noise_std > 0 else " (noise-relative radii need noise_std > 0)"))
    return radii


@dataclass(frozen=True)
class LocalInterval:
    """The certified local interval over ``Ball(y_index, radius)``."""

    index: int
    radius: float
    lower: Bound
    upper: Bound
    #: seconds spent on the region (None: those of the two ends); set when an exact search tightened an end
    spent: float | None = None

    @property
    def seconds(self) -> float:
        return self.lower.seconds + self.upper.seconds if self.spent is None else self.spent

    @property
    def ratio(self) -> float:
        """upper / lower when both ends are certified, else NaN (nothing to compare): ``inf`` for a lower end of 0 below
        a positive upper end (around an input where the map is constant, say), 1 when both are 0 (the interval closed)."""
        if not (self.lower.certified and self.upper.certified):
            return math.nan
        if self.lower.value > 0:
            return self.upper.value / self.lower.value
        return 1.0 if self.upper.value == 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        def end(b: Bound) -> dict[str, Any]:
            out = {"value": b.value, "certified": b.certified, "method": b.method, "seconds": b.seconds}
            return {**out, "reason": uncertified_reason(b)} if not b.certified else out
        return {"input": self.index, "radius": self.radius, "lower": end(self.lower), "upper": end(self.upper),
                "ratio": self.ratio, "seconds": self.seconds}


def _median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else math.nan


def _reasons(bounds: Sequence[Bound]) -> Counter:
    return Counter(uncertified_reason(b) for b in bounds if not b.certified)


@dataclass
class StabilityProfile:
    """The local intervals of one model: ``intervals[i][j]`` for radius ``i`` and input ``j``, and the global interval."""

    model: str
    radii: list[Radius]
    intervals: list[list[LocalInterval]]
    norms: np.ndarray
    global_lower: Bound | None = None
    global_upper: Bound | None = None
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def inputs(self) -> int:
        return int(self.norms.shape[0])

    def summary(self, i: int) -> dict[str, Any]:
        """Radius ``i`` over the inputs: medians of the certified ends and ratios, the share with ratio ≤ 1.2 (of all
        inputs: an uncertified one is not tight), the median seconds per region and the uncertified ends' reasons."""
        row = self.intervals[i]
        lowers = [iv.lower for iv in row]
        uppers = [iv.upper for iv in row]
        ratios = [iv.ratio for iv in row if not math.isnan(iv.ratio)]
        return {
            "radius": self.radii[i].to_dict(),
            "relative_radius": _median([iv.radius / n for iv, n in zip(row, self.norms, strict=True) if n > 0]),
            "inputs": len(row),
            "median_lower": _median([b.value for b in lowers if b.certified]),
            "median_upper": _median([b.value for b in uppers if b.certified]),
            "median_ratio": _median(ratios),
            "tight_share": sum(r <= TIGHT_RATIO for r in ratios) / len(row),
            "median_seconds": _median([iv.seconds for iv in row]),
            "uncertified_lower": dict(_reasons(lowers)),
            "uncertified_upper": dict(_reasons(uppers)),
        }

    def bounds(self) -> dict[str, Bound]:
        """Per radius, the interval of ``max_j L(Ball(y_j, r_j))``, the largest local constant over the balls:
        ``[max_j lower_j, max_j upper_j]``. The upper end is certified only when every ``upper_j`` is (it bounds each
        local constant); the lower end is the largest certified ``lower_j`` (any one bounds the maximum from below)."""
        out: dict[str, Bound] = {}
        what = f"largest local l2 Lipschitz constant over the {self.inputs} test balls"
        for radius, row in zip(self.radii, self.intervals, strict=True):
            ups = [iv.upper for iv in row]
            lows = [iv.lower for iv in row if iv.lower.certified] or [iv.lower for iv in row]
            top = max(ups, key=lambda b: b.value)
            missing = _reasons(ups)
            upper = Bound(top.value, "upper", f"{what}, radius {radius.label}", f"max of {len(ups)} × {top.method}",
                          certified=not missing, seconds=sum(b.seconds for b in ups),
                          details={"reason": _reason_text(missing, len(ups))} if missing else {})
            best = max(lows, key=lambda b: b.value)
            lower = Bound(best.value, "lower", f"{what}, radius {radius.label}", f"max of {len(row)} × {best.method}",
                          certified=best.certified, certificate=best.certificate, seconds=sum(iv.lower.seconds for iv in row),
                          details={} if best.certified else {"reason": _reason_text(_reasons(lows), len(row))})
            out[f"local upper, radius {radius.label}"] = upper
            out[f"local lower, radius {radius.label}"] = lower
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "inputs": self.inputs, "input_norms": self.norms.tolist(),
                "radii": [r.to_dict() for r in self.radii],
                "summary": [self.summary(i) for i in range(len(self.radii))],
                "intervals": [[iv.to_dict() for iv in row] for row in self.intervals],
                "global_lower": None if self.global_lower is None else self.global_lower.to_dict(),
                "global_upper": None if self.global_upper is None else self.global_upper.to_dict(),
                "checks": self.checks}


def _reason_text(reasons: Counter, total: int) -> str:
    """``"3 of 8: time budget exhausted (2), solver failed (1)"``; ``""`` when nothing is uncertified."""
    count = sum(reasons.values())
    if not count:
        return ""
    return f"{count} of {total}: " + ", ".join(f"{why} ({k})" for why, k in reasons.most_common())


def check_inputs(spec: NetworkSpec, Y: Any) -> np.ndarray:
    """``Y`` as a float64 array of test inputs for ``spec``, one per row; ValueError for a bad shape or entry."""
    Y = as_finite_array(Y, "test inputs", ndim=2)
    if Y.shape[0] == 0 or Y.shape[1] != spec.input_dim:
        raise ValueError(f"test inputs have shape {Y.shape}; expected (count >= 1, {spec.input_dim})")
    return Y


def local_stability(spec: NetworkSpec, Y: Any, radii: Sequence[Radius], *, noise_std: float = 0.0,
                    time_budget: float = 2.0, restarts: int = 4, seed: int = 0, model: str = "model",
                    global_interval: tuple[Bound | None, Bound | None] = (None, None), exact_neurons: int = 0,
                    progress: bool | None = None) -> StabilityProfile:
    """The local intervals of ``spec`` over ``Ball(y, r.of(y, noise_std))`` for every row ``y`` of ``Y`` and radius ``r``.

    ``time_budget`` seconds go to each local upper bound (method ``"best"``), half of it to each witness search
    (``restarts`` starts, ``seed``). When ``spec`` has at most ``exact_neurons`` neurons and only piecewise-linear
    activations, each region's ends are then tightened by the exact local search
    (:func:`~unfoldtheory.lipschitz.exact.exact_bound` with ``region=``, ``time_budget`` seconds), each end keeping its
    own certificate. ``global_interval`` = ``(lower, upper)`` Bounds of the global constant (either may
    be None; a certified global upper end also caps each local upper bound, and the lower end rises to the largest
    certified local lower end, :func:`global_lower_from_local`, unless both are None); a certified local lower bound above a
    certified upper end (local or global) raises
    :class:`~unfoldtheory.consistency.InconsistentBounds`. ValueError for bad shapes, radii or budgets.
    """
    from unfoldtheory.lipschitz.local import local_upper_bound
    from unfoldtheory.lipschitz.local_lower import local_lower_bound
    from unfoldtheory.lipschitz.regions import Ball

    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"local_stability takes a NetworkSpec, got {type(spec).__name__}")
    Y = check_inputs(spec, Y)
    radii = list(radii)
    if not radii or not all(isinstance(r, Radius) for r in radii):
        raise ValueError("radii must be a non-empty sequence of Radius (see stability_radii)")
    noise_std = finite_float(noise_std, "noise_std", low=0.0)
    if any(r.relative_to == "noise" for r in radii) and noise_std == 0:
        raise ValueError("a noise-relative radius needs noise_std > 0")
    time_budget = time_budget_seconds(time_budget)
    restarts = positive_int(restarts, "restarts")
    exact = _exact_applies(spec, exact_neurons)
    g_lower, g_upper = global_interval
    # the global constant bounds every local one: a certified global upper end caps the local upper bounds
    cap = g_upper if g_upper is not None and g_upper.certified and g_upper.kind == "upper" else None
    norms = np.linalg.norm(Y, axis=1)
    tasks = [(i, j) for i in range(len(radii)) for j in range(Y.shape[0])]
    intervals: list[list[LocalInterval]] = [[] for _ in radii]
    checks: dict[str, bool] = {}
    for i, j in tqdm(tasks, desc=f"local stability of {model}", unit="region", leave=False,
                     disable=None if progress is None else not progress):
        r = radii[i].of(Y[j], noise_std)
        region = Ball(Y[j], r)
        upper = local_upper_bound(spec, region, time_budget=time_budget, global_bound=cap)
        lower = local_lower_bound(spec, region, seed=seed + j, restarts=restarts, time_budget=time_budget / 2)
        what = f"local Lipschitz constant of {model} over Ball(test input {j}, {radii[i].label} = {r:.4g})"
        check_interval(lower, upper, what)
        spent = None
        if exact and r > 0:  # a ball of radius 0 (y = 0 at a signal-relative radius) has no interior to search
            from unfoldtheory.lipschitz.exact import exact_bound

            search = exact_bound(spec, region=region, time_budget=time_budget, progress=False)
            check_interval(search.details["lower"], upper, f"{what} (exact search's lower end against the local upper end)")
            check_interval(lower, search, f"{what} (local lower end against the exact search's upper end)")
            spent = lower.seconds + upper.seconds + search.seconds
            lower, upper = _tighter(lower, search.details["lower"], "lower"), _tighter(upper, search, "upper")
        if g_upper is not None:
            check_interval(lower, g_upper, f"{what}, against the global upper bound (local ≤ global)")
        intervals[i].append(LocalInterval(j, r, lower, upper, spent))
    if g_lower is not None or g_upper is not None:  # a global interval was given: its lower end rises to the local ones
        g_lower = global_lower_from_local(g_lower, intervals, model)
    for i, radius in enumerate(radii):
        row = intervals[i]
        checks[f"local_lower_below_upper_{radius.relative_to}_{radius.factor:g}"] = all(
            iv.lower.value <= iv.upper.value for iv in row if iv.lower.certified and iv.upper.certified)
        if g_upper is not None and g_upper.certified:
            checks[f"local_lower_below_global_upper_{radius.relative_to}_{radius.factor:g}"] = all(
                iv.lower.value <= g_upper.value for iv in row if iv.lower.certified)
    return StabilityProfile(model, radii, intervals, norms, g_lower, g_upper, checks)


def global_lower_from_local(lower: Bound | None, intervals: Sequence[Sequence[LocalInterval]],
                            model: str = "model") -> Bound | None:
    """The tighter of the global lower end ``lower`` and the largest certified local lower end in ``intervals``.

    The local constant over a region ``B``, ``sup_{a ≠ b ∈ B} ‖f(a) − f(b)‖ / ‖a − b‖``, is a supremum over fewer pairs
    than the global one, so ``L_B ≤ L`` and a certified lower bound of ``L_B`` (a witness pair or an affine piece inside
    ``B``) is a certified lower bound of ``L``. The returned Bound keeps that number, its certificate and its seconds;
    only ``quantity`` (the global one), ``method`` and ``details`` (which ball it came from) change. No uncertified
    local end is used.
    """
    from unfoldtheory.lipschitz.lower import QUANTITY

    best = max((iv for row in intervals for iv in row if iv.lower.certified and iv.lower.kind == "lower"),
               key=lambda iv: iv.lower.value, default=None)
    if best is None or (lower is not None and lower.certified and lower.value >= best.lower.value):
        return lower
    b = best.lower
    found = {"from_local": b.details.get("region", ""), "input": best.index, "radius": best.radius,
             "local_method": b.method}
    relabelled = Bound(value=b.value, kind="lower", quantity=QUANTITY, method=f"local witness of {model} ({b.method})",
                       certified=True, certificate=b.certificate, seconds=b.seconds, details=found)
    return _tighter(lower, relabelled, "lower")


def _tighter(a: Bound | None, b: Bound | None, kind: str) -> Bound | None:
    """The tighter certified one of two Bounds of one quantity (smaller upper, larger lower); a certified one over an
    uncertified one; ``a`` on a tie. No new number is made, so each end keeps its own certificate."""
    if a is None or b is None:
        return a if b is None else b
    if a.certified != b.certified:
        return a if a.certified else b
    better = b.value < a.value if kind == "upper" else b.value > a.value
    return b if better else a


def _exact_applies(spec: NetworkSpec, exact_neurons: int) -> bool:
    """Whether the exact search runs on ``spec``: at most ``exact_neurons`` neurons (a non-negative integer, else
    ValueError) and only piecewise-linear activations (otherwise the other intervals stand)."""
    if isinstance(exact_neurons, bool) or not isinstance(exact_neurons, (int, np.integer)) or exact_neurons < 0:
        raise ValueError(f"exact_neurons must be a non-negative integer, got {exact_neurons!r}")
    if sum(spec.dims[1:]) > exact_neurons:
        return False
    from unfoldtheory.lipschitz.polyhedra import phase_table

    try:
        phase_table(spec)
    except ValueError:
        return False
    return True


def global_interval(spec: NetworkSpec, lower: Bound | None, upper: Bound | None, *, exact_neurons: int = 100,
                    time_budget: float = 10.0, what: str = "global Lipschitz constant",
                    progress: bool | None = None) -> tuple[Bound | None, Bound | None, Bound | None]:
    """``(lower, upper, exact)``: the given global interval, tightened by :func:`~unfoldtheory.lipschitz.exact.exact_bound`
    (``time_budget`` seconds) when ``spec`` has at most ``exact_neurons`` neurons and only piecewise-linear activations.

    Each end is the tighter certified one of the given end and the exact search's (its ``value`` and
    ``details["lower"]``); ``exact`` is the exact search's Bound (None when it did not run). A certified end of one
    above a certified opposite end of the other raises :class:`~unfoldtheory.consistency.InconsistentBounds`.
    """
    if not _exact_applies(spec, exact_neurons):
        return lower, upper, None
    from unfoldtheory.lipschitz.exact import exact_bound

    exact = exact_bound(spec, time_budget=time_budget, progress=progress)
    exact_lower = exact.details["lower"]
    if upper is not None:
        check_interval(exact_lower, upper, f"{what} (exact search's lower end against the given upper end)")
    if lower is not None:
        check_interval(lower, exact, f"{what} (given lower end against the exact search's upper end)")
    return _tighter(lower, exact_lower, "lower"), _tighter(upper, exact, "upper"), exact


#: The columns of :func:`summary_rows`.
SUMMARY_HEADER = ["model", "radius", "r / ‖y‖ (median)", "inputs", "median lower (certified)", "median upper (certified)",
                  "median upper / lower", f"share upper / lower ≤ {TIGHT_RATIO:g}", "seconds per region (median)",
                  "not certified"]


def _cell(value: float, certified: bool = True) -> Any:
    if math.isnan(value):
        return "—"
    return value if certified else f"{value:.4g}†"


def summary_rows(profile: StabilityProfile) -> list[list[Any]]:
    """One row per radius, then the global interval (radius "global (r → ∞)") when known.

    Medians are over certified ends only; the last column counts the uncertified ends per radius with their reasons.
    An uncertified global end is printed with ``†`` and its reason.
    """
    rows = []
    for i in range(len(profile.radii)):
        s = profile.summary(i)
        why = "; ".join(part for part in (
            f"upper {_reason_text(Counter(s['uncertified_upper']), s['inputs'])}" if s["uncertified_upper"] else "",
            f"lower {_reason_text(Counter(s['uncertified_lower']), s['inputs'])}" if s["uncertified_lower"] else "")
            if part) or "none"
        rows.append([profile.model, s["radius"]["label"], _cell(s["relative_radius"]), s["inputs"], _cell(s["median_lower"]),
                     _cell(s["median_upper"]), _cell(s["median_ratio"]), s["tight_share"], s["median_seconds"], why])
    lo, up = profile.global_lower, profile.global_upper
    if lo is not None or up is not None:
        ratio = up.value / lo.value if lo is not None and up is not None and lo.certified and up.certified and lo.value > 0 \
            else math.nan
        why = "; ".join(f"{role} {uncertified_reason(b)}" for role, b in (("upper", up), ("lower", lo))
                        if b is not None and not b.certified) or "none"
        rows.append([profile.model, "global (r → ∞)", "—", "—",
                     "—" if lo is None else _cell(lo.value, lo.certified), "—" if up is None else _cell(up.value, up.certified),
                     _cell(ratio), "—", sum(b.seconds for b in (lo, up) if b is not None), why])
    return rows


__all__ = ["LEVELS", "SUMMARY_HEADER", "TIGHT_RATIO", "LocalInterval", "Radius", "StabilityProfile", "check_inputs",
           "global_interval", "global_lower_from_local", "local_stability", "stability_radii", "summary_rows"]
