"""An empirical *inner* check of bound propagation: pre-activation ranges realised at points of a region.

:func:`attack_preactivations` maximises and minimises every pre-activation ``v_k = Σ_j W_kj z_j + b_k`` of a
:class:`~unfoldtheory.spec.NetworkSpec` over a :class:`~unfoldtheory.lipschitz.regions.Region` by projected gradient
steps (plus the values at sampled points of the region). Every value it returns is a float64 evaluation of the spec at
a point that :meth:`Region.project` returned, so the ranges lie *inside* the true ranges (up to the rounding of that
evaluation): they are an empirical inner bound, **not a certificate**. Beside the rigorous outer intervals of
:func:`~unfoldtheory.lipschitz.bound_propagation.preactivation_bounds` they show how tight those are: a neuron whose
attacked range crosses a kink of its (separable) activation is truly unstable over the region (two points of the region
lie on either side of the kink), so :meth:`AttackedRanges.unstable_counts` is a lower bound on the truly unstable
neurons where CROWN's count is an upper bound. (For group soft-thresholding the count is taken on the box of the
coordinates' ranges, whose corners need not be realised: there it is no strict lower bound.)

The gradient of one pre-activation with respect to the input is computed in reverse mode through the slopes of the
earlier layers (at a kink the Clarke element of :meth:`Activation.slopes`, the flat side), or their Jacobians for a
non-separable activation. A layer after an activation without a usable derivative gets the sampled values only
(``AttackedRanges.sampled_only``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from unfoldtheory.activations import Activation, GroupSoftThreshold
from unfoldtheory.lipschitz.bound_propagation import unstable_masks
from unfoldtheory.lipschitz.regions import Ball, Box, Region
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.validation import time_budget_seconds

#: The step lengths decay geometrically from ``FIRST_STEP`` to ``LAST_STEP`` times the region's half-widths.
FIRST_STEP, LAST_STEP = 1.0, 1e-3
#: The start: the best sampled point plus a random offset of this fraction of the half-widths (breaks ties at kinks).
START_OFFSET = 1e-4


@dataclass(frozen=True)
class AttackedRanges:
    """``lower[k-1] ≤ v_k ≤ upper[k-1]`` realised: each value is the float64 pre-activation at a point of the region
    (an inner range, not a bound on the true one). ``stopped``: the layer at which the time budget ran out (it and the
    later layers keep what was found so far, at least the sampled values), None if every layer was attacked;
    ``sampled_only``: the layers that got no gradient steps because an earlier activation has no usable derivative."""

    lower: tuple[np.ndarray, ...]
    upper: tuple[np.ndarray, ...]
    method: str
    seconds: float
    stopped: int | None = None
    sampled_only: tuple[int, ...] = ()

    def unstable(self, spec: NetworkSpec) -> tuple[np.ndarray, ...]:
        """Per layer, the neurons whose attacked range crosses a kink of their activation (the same test as
        :meth:`~.bound_propagation.PreactivationBounds.unstable`): truly unstable, for separable activations."""
        return unstable_masks(spec, self.lower, self.upper)

    def unstable_counts(self, spec: NetworkSpec) -> tuple[int, ...]:
        """The number of attacked-unstable neurons per layer (:meth:`unstable`)."""
        return tuple(int(np.sum(m)) for m in self.unstable(spec))


def _check(spec: NetworkSpec, region: Region, steps: int, seed: int, time_budget: float, samples: int, starts: int) -> float:
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"attack_preactivations takes a NetworkSpec, got {type(spec).__name__}")
    if not isinstance(region, Region):
        raise TypeError(f"attack_preactivations takes a Region (Ball or Box), got {type(region).__name__}")
    region.check_dim(spec.input_dim)
    for name, value, least in (("steps", steps, 1), ("seed", seed, 0), ("samples", samples, 1), ("starts", starts, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    return time_budget_seconds(time_budget)


def _center_and_halfwidths(region: Region) -> tuple[np.ndarray, np.ndarray]:
    """The region's centre (a Ball's centre, a Box's midpoint) and per-coordinate half-widths (ℓ∞ steps); an ℓ2 ball's
    half-widths are its radius."""
    if isinstance(region, Ball):
        return np.asarray(region.center, dtype=float), np.full(region.input_dim, region.radius)
    if isinstance(region, Box):
        return 0.5 * region.lower + 0.5 * region.upper, 0.5 * (region.upper - region.lower)
    lo, hi = region.enclosing_box()  # another Region: its enclosing box
    return np.asarray(region.project(0.5 * lo + 0.5 * hi), dtype=float), 0.5 * (hi - lo)


def _vjp(act: Activation, v: np.ndarray, adj: np.ndarray) -> np.ndarray:
    """``adj`` times the activation's Jacobian at each row of ``v`` (a Clarke element at kinks)."""
    if isinstance(act, GroupSoftThreshold):  # symmetric blocks (1 − θ/r) I + (θ/r) u uᵀ where r > θ, else 0
        out = np.zeros_like(adj)
        for g in act.groups:
            block, a = v[:, g], adj[:, g]
            if act.theta == 0:
                out[:, g] = a
                continue
            r = np.linalg.norm(block, axis=1, keepdims=True)
            live = r > act.theta
            safe = np.where(live, r, 1.0)
            u = block / safe
            scale = act.theta / safe
            out[:, g] = np.where(live, (1 - scale) * a + scale * u * np.sum(u * a, axis=1, keepdims=True), 0.0)
        return out
    if act.separable:
        return adj * np.asarray(act.slopes(v), dtype=float)
    return np.stack([np.asarray(act.jacobian(row), dtype=float).T @ a for row, a in zip(v, adj, strict=True)])


def _usable(act: Activation, v: np.ndarray) -> bool:
    """Whether :func:`_vjp` works for ``act`` (tried at the pre-activations ``v``)."""
    try:
        out = _vjp(act, v, np.ones_like(v))
    except (TypeError, NotImplementedError, ValueError):
        return False
    return out.shape == v.shape and bool(np.all(np.isfinite(out)))


def _forward(spec: NetworkSpec, Y: np.ndarray, k: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """States ``z_0..z_{k-1}`` and pre-activations ``v_1..v_k`` (the spec's own evaluation, stopped at layer k)."""
    states, pres = [Y], []
    for j in range(1, k + 1):
        b = spec.biases[j - 1]
        v = np.broadcast_to(b, (Y.shape[0], b.shape[0])).copy()
        for i, w in spec.weights[j - 1].items():
            v += states[i] @ w.T
        pres.append(v)
        if j < k:
            states.append(spec.activations[j - 1](v))
    return states, pres


def _gradient(spec: NetworkSpec, k: int, pres: list[np.ndarray], seeds: np.ndarray) -> np.ndarray:
    """Row ``b``: the gradient with respect to ``y`` of ``seeds[b] · v_k`` at the points whose pre-activations are
    ``pres`` (reverse mode over the graph)."""
    adj: dict[int, np.ndarray] = {}
    for j, w in spec.weights[k - 1].items():
        adj[j] = adj.get(j, 0.0) + seeds @ w
    for j in range(k - 1, 0, -1):
        if j not in adj:
            continue
        av = _vjp(spec.activations[j - 1], pres[j - 1], adj.pop(j))
        for i, w in spec.weights[j - 1].items():
            adj[i] = adj.get(i, 0.0) + av @ w
    return np.broadcast_to(adj.get(0, 0.0), (seeds.shape[0], spec.input_dim))


def _step(region: Region, half: np.ndarray, g: np.ndarray, length: float, rng: np.random.Generator) -> np.ndarray:
    """A normalised ascent step of ``length`` times the half-widths: ``r g/‖g‖₂`` on an ℓ2 ball, ``half·sign(g)``
    otherwise (steepest in the region's norm); a random direction where the gradient vanishes."""
    stuck = ~np.any(g != 0, axis=1)
    if np.any(stuck):
        g = g.copy()
        g[stuck] = rng.standard_normal((int(np.sum(stuck)), g.shape[1]))
    if isinstance(region, Ball) and region.norm == 2:
        g = g / np.max(np.abs(g), axis=1, keepdims=True)  # first to max |g_i| = 1: a tiny g's squares would underflow
        return length * region.radius * g / np.linalg.norm(g, axis=1, keepdims=True)
    return length * half * np.sign(g)


def attack_preactivations(spec: NetworkSpec, region: Region, *, steps: int = 60, seed: int = 0,
                          time_budget: float = 30.0, samples: int = 256, starts: int = 4) -> AttackedRanges:
    """Inner ranges of every pre-activation of ``spec`` over ``region`` (module docstring): an empirical bound.

    Layer by layer, a batch of ``2 · starts · d_k`` points (``starts`` maximising and ``starts`` minimising each neuron of
    layer ``k``) starts at the best ``starts`` of the centre and the sampled points for that neuron and side (the attack
    is local: several starts reach more of the basins), plus a tiny random offset, and takes ``steps`` normalised
    gradient steps of lengths decaying from ``FIRST_STEP`` to ``LAST_STEP`` of the region's half-widths, each mapped
    back by ``region.project``; the best value seen per neuron and side is kept. The values at the starting points and
    at ``region.sample(samples, seed)`` are included, so the ranges always contain that sampled hull. Once
    ``time_budget`` seconds have passed the attack stops (``stopped``: that layer; it and the later layers keep the
    values found so far).

    Raises TypeError for a non-NetworkSpec or non-Region, ValueError for a region of the wrong dimension, ``steps``,
    ``samples`` or ``starts`` < 1, a negative ``seed`` or a time budget that is not > 0.
    """
    t0 = time.perf_counter()
    deadline = t0 + _check(spec, region, steps, seed, time_budget, samples, starts)
    rng = np.random.default_rng(seed)
    center, half = _center_and_halfwidths(region)
    base = region.project(np.vstack([center, region.sample(samples, seed)]))
    pres = spec.preactivations(base)
    lower = [v.min(axis=0) for v in pres]
    upper = [v.max(axis=0) for v in pres]
    usable = [_usable(act, v) for act, v in zip(spec.activations, pres, strict=True)]
    lengths = FIRST_STEP * (LAST_STEP / FIRST_STEP) ** (np.arange(steps) / max(steps - 1, 1))
    stopped, sampled_only = None, []
    for k in range(1, spec.num_layers + 1):
        if not all(usable[: k - 1]):
            sampled_only.append(k)
            continue
        if time.perf_counter() > deadline:
            stopped = k
            break
        d, s = spec.dims[k], min(starts, base.shape[0])
        rows = np.arange(2 * s * d)  # ordered (side, start, neuron)
        targets, signs = np.tile(np.arange(d), 2 * s), np.repeat([1.0, -1.0], s * d)
        seeds = np.zeros((rows.size, d))
        seeds[rows, targets] = signs
        order = np.argsort(pres[k - 1], axis=0)  # per neuron, the sampled points from the lowest value up
        best = np.concatenate([order[::-1][:s].ravel(), order[:s].ravel()])
        Y = region.project(base[best] + START_OFFSET * half * rng.uniform(-1.0, 1.0, (rows.size, spec.input_dim)))
        for t in range(steps + 1):
            _, pk = _forward(spec, Y, k)
            values = pk[-1][rows, targets].reshape(2, s, d)
            upper[k - 1] = np.maximum(upper[k - 1], values[0].max(axis=0))
            lower[k - 1] = np.minimum(lower[k - 1], values[1].min(axis=0))
            if t == steps:
                break
            if time.perf_counter() > deadline:
                stopped = k
                break
            Y = region.project(Y + _step(region, half, _gradient(spec, k, pk, seeds), lengths[t], rng))
        if stopped is not None:
            break
    for arr in (*lower, *upper):
        arr.flags.writeable = False
    method = f"projected gradient ({starts} starts x {steps} steps) and {samples} samples (inner ranges, not rigorous)"
    return AttackedRanges(tuple(lower), tuple(upper), method, time.perf_counter() - t0, stopped, tuple(sampled_only))


__all__ = ["AttackedRanges", "attack_preactivations"]
