"""A spec restricted to a set of inputs on which every neuron's pre-activation has known bounds.

Given bounds ``lower_i ≤ v_i(y) ≤ upper_i`` on every pre-activation, valid for all inputs ``y`` of a
convex set ``S`` (an input region, propagated by :mod:`.bound_propagation`; or the polyhedron of a partial
activation pattern), each separable built-in neuron falls in one of three kinds
(:meth:`~unfoldtheory.activations.Activation.slope_range`, ``proofs/local_slopes.py``):

* **constant** (slope 0 on the whole interval, e.g. a soft-threshold neuron with ``[l, u] ⊂ [−θ, θ]``):
  ``z_i`` is the same for every ``y ∈ S``. It leaves the network, its value moves into the biases;
* **linear** (slope 1: ``z_i = v_i + c_i``): it becomes a row of an identity state, which
  :mod:`.elimination` substitutes into its consumers with rigorous error bounds;
* **unstable**: it keeps its activation, wrapped in :class:`~unfoldtheory.activations.RegionSlopes`, which
  declares the slope range over its interval (``[0, 1]`` for the built-ins).

Group soft-thresholding blocks whose norm is provably at most θ are constant; the others stay.

**Claim** (``proofs/local_slopes.py``). For ``y₁, y₂ ∈ S`` the states of the restricted spec differ exactly
as those of the original (constant neurons by 0, linear ones by ``Δv_i``), and every unstable neuron's pair of
pre-activations lies in its interval, so its difference quotient lies in its declared range. Hence every
slope-based certificate (LipSDP-Neuron, the chain methods, vertex enumeration, the product bound) run on the
restricted spec bounds ``‖f(y₁) − f(y₂)‖/‖y₁ − y₂‖`` over ``S``: the Lipschitz constant of ``f`` restricted to
``S``. Over ``S`` the restricted spec also computes ``f`` itself up to the constant ``output_offset`` (and
rounding of its biases, which no difference sees).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from unfoldtheory.activations import (
    Activation,
    BoxProjection,
    GroupSoftThreshold,
    Identity,
    RegionSlopes,
    SoftThreshold,
    is_builtin,
)
from unfoldtheory.lipschitz.elimination import linear_map
from unfoldtheory.lipschitz.norms import spectral_norm_upper, up_add
from unfoldtheory.rounding import norm_upper
from unfoldtheory.spec import Layer, NetworkSpec

#: Neuron kinds in :attr:`Restriction.kinds`.
CONSTANT, LINEAR, UNSTABLE = 0, 1, 2


@dataclass(frozen=True)
class Restriction:
    """The restricted spec and what was removed (module docstring).

    ``kinds[k - 1]`` gives, for each neuron of layer k of the original spec, ``CONSTANT``, ``LINEAR`` or
    ``UNSTABLE``.
    """

    spec: NetworkSpec
    source: NetworkSpec
    kinds: tuple[np.ndarray, ...]
    output_offset: np.ndarray
    constant_output: bool = False  # the read-out reads only constant neurons

    @property
    def unstable(self) -> int:
        """The number of unstable neurons (those that stay nonlinear)."""
        return int(sum(np.sum(k == UNSTABLE) for k in self.kinds))

    @property
    def stable(self) -> int:
        """The number of neurons with a fixed slope over the set (constant or linear)."""
        return int(sum(np.sum(k != UNSTABLE) for k in self.kinds))

    @property
    def linear(self) -> bool:
        """True when ``f`` is affine on the set: no neuron is unstable, or the output reads only constant ones."""
        return self.unstable == 0 or self.constant_output

    @cached_property
    def jacobian_upper(self) -> float:
        """A rigorous upper bound on ``‖J‖₂`` of the affine map (``linear`` only): ``‖Ĵ‖₂↑ + ‖E‖_F↑`` with
        ``|J − Ĵ| ≤ E`` from :func:`~.elimination.linear_map` (``‖J‖ ≤ ‖Ĵ‖ + ‖J − Ĵ‖₂ ≤ ‖Ĵ‖ + ‖E‖_F``)."""
        if not self.linear:
            raise ValueError(f"the restriction has {self.unstable} unstable neurons: the map is not affine on the set")
        if self.constant_output:
            return 0.0
        J, E = linear_map(self.spec)
        if not (np.all(np.isfinite(J)) and np.all(np.isfinite(E))):
            return float("inf")
        return up_add(spectral_norm_upper(J), norm_upper(E))

    def jacobian(self) -> np.ndarray:
        """The (computed) Jacobian of the affine map (``linear`` only)."""
        if not self.linear:
            raise ValueError(f"the restriction has {self.unstable} unstable neurons: the map is not affine on the set")
        if self.constant_output:
            return np.zeros((self.spec.output_dim, self.spec.input_dim))
        return linear_map(self.spec)[0]


def _bounds(spec: NetworkSpec, bounds: Sequence[Any], what: str) -> list[np.ndarray]:
    if len(bounds) != spec.num_layers:
        raise ValueError(f"{what} has {len(bounds)} entries; expected one per layer ({spec.num_layers})")
    out = []
    for k, b in enumerate(bounds, start=1):
        arr = np.asarray(b, dtype=np.float64)
        if arr.shape != (spec.dims[k],):
            raise ValueError(f"{what}[{k - 1}] has shape {arr.shape}; expected ({spec.dims[k]},)")
        if np.any(np.isnan(arr)):
            raise ValueError(f"{what}[{k - 1}] contains NaN")
        out.append(arr)
    return out


def _subset(act: Activation, rows: np.ndarray) -> Activation:
    """The built-in separable activation acting on the coordinates ``rows`` only."""
    if isinstance(act, SoftThreshold):
        return SoftThreshold(act.theta if act.theta.ndim == 0 else act.theta[rows])
    if isinstance(act, BoxProjection):
        return BoxProjection(act.lower if act.lower.ndim == 0 else act.lower[rows],
                             act.upper if act.upper.ndim == 0 else act.upper[rows])
    if isinstance(act, RegionSlopes):
        return _subset(act.base, rows)
    return act  # ReLU, Identity: no per-coordinate parameters


def _classify(act: Activation, lo: np.ndarray, hi: np.ndarray,
              keep_linear: bool = False) -> tuple[np.ndarray, np.ndarray, Activation | None, np.ndarray]:
    """Per neuron: kind, offset (``z = v + c`` for linear, ``z = c`` for constant neurons), the activation of the
    neurons that keep a state of their own (None when there are none) and their rows: the unstable ones, and with
    ``keep_linear`` the linear ones too (slope range [1, 1])."""
    kinds, offset, act_free = _kinds(act, lo, hi)
    if keep_linear and not isinstance(act, Identity) and np.any(kinds == LINEAR) and is_builtin(act) and act.separable:
        rows = np.flatnonzero(kinds != CONSTANT)
        # a linear neuron keeps the activation's global range: its multiplier term is then the global one, so the
        # restricted LMI only loses the constant neurons' columns and can never be worse than the global LMI
        linear = kinds[rows] == LINEAR
        lo_kept, hi_kept = np.where(linear, -np.inf, lo[rows]), np.where(linear, np.inf, hi[rows])
        return kinds, offset, RegionSlopes(_subset(act, rows), lo_kept, hi_kept), rows
    return kinds, offset, act_free, np.flatnonzero(kinds == UNSTABLE)


def _kinds(act: Activation, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, Activation | None]:
    d = lo.shape[0]
    if isinstance(act, GroupSoftThreshold):
        kinds, offset = np.full(d, UNSTABLE), np.zeros(d)
        kept = []
        for g in act.groups:
            reach = norm_upper(np.maximum(np.abs(lo[g]), np.abs(hi[g])))  # ≥ ‖v_g‖ on the box
            if act.theta == 0:
                kinds[g] = LINEAR  # θ = 0: the identity
            elif reach <= act.theta:
                kinds[g] = CONSTANT  # ‖v_g‖ ≤ θ: the block's output is 0
            else:
                kept.append(g)
        if not kept:
            return kinds, offset, None
        position = np.cumsum(kinds == UNSTABLE) - 1
        return kinds, offset, GroupSoftThreshold(act.theta, [position[g] for g in kept])
    if not act.separable or not is_builtin(act):
        return np.full(d, UNSTABLE), np.full(d, np.nan), act  # its declaration, unchanged
    alpha, beta = act.slope_range(lo, hi)
    offset = act.fixed_piece(lo, hi)
    fixed = (alpha == beta) & np.isfinite(offset)
    kinds = np.where(fixed & (alpha == 0), CONSTANT, np.where(fixed & (alpha == 1), LINEAR, UNSTABLE))
    rows = np.flatnonzero(kinds == UNSTABLE)
    if rows.size == 0:
        return kinds, offset, None
    return kinds, offset, RegionSlopes(_subset(act, rows), lo[rows], hi[rows])


def restrict(spec: NetworkSpec, lower: Sequence[Any], upper: Sequence[Any], *, keep_linear: bool = False) -> Restriction:
    """Restrict ``spec`` to the inputs whose pre-activations lie in ``[lower[k-1], upper[k-1]]`` (module docstring).

    ``lower``/``upper`` hold one array of shape ``(d_k,)`` per layer; entries may be ±inf (no bound).
    ``keep_linear=True`` keeps the linear neurons in their layer's state, with the activation's global slope range,
    instead of substituting them: the restricted spec is then a chain whenever ``spec`` is one, which the chain
    methods (sequential, first-order) need, and its LipSDP-Neuron matrix is the global one without the constant
    neurons (a restriction to a subspace, so its optimum is no larger than the global optimum).
    """
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"restrict takes a NetworkSpec, got {type(spec).__name__}")
    lows, highs = _bounds(spec, lower, "lower"), _bounds(spec, upper, "upper")
    for k, (lo, hi) in enumerate(zip(lows, highs, strict=True), start=1):
        if np.any(lo > hi):
            i = int(np.argmax(lo > hi))
            raise ValueError(f"layer {k} neuron {i}: lower bound {lo[i]:.6g} exceeds upper bound {hi[i]:.6g}")
    m = spec.input_dim
    # parts[k]: the new states that carry original state k, as (new index, original rows); consts[k]: (rows, values)
    parts: dict[int, list[tuple[int, np.ndarray]]] = {0: [(0, np.arange(m))]}
    consts: dict[int, tuple[np.ndarray, np.ndarray]] = {0: (np.arange(0), np.zeros(0))}
    layers: list[Layer] = []
    kinds_all = []

    def gather(ws: dict[int, np.ndarray], rows: np.ndarray | None, base: np.ndarray) -> tuple[dict[int, np.ndarray], np.ndarray]:
        """Weights onto the new states and the bias with the constant states folded in (rows: None for all)."""
        weights: dict[int, np.ndarray] = {}
        bias = base.copy()
        for j, W in ws.items():
            W = W if rows is None else W[rows]
            for new, cols in parts[j]:
                weights[new] = W[:, cols]
            crow, cval = consts[j]
            if crow.size:
                bias = bias + W[:, crow] @ cval
        return weights, bias

    for k, (ws, b, act, lo, hi) in enumerate(zip(spec.weights, spec.biases, spec.activations, lows, highs, strict=True),
                                             start=1):
        kinds, offset, free_act, free_rows = _classify(act, lo, hi, keep_linear)
        kinds_all.append(kinds)
        parts[k] = []
        linear_rows = np.setdiff1d(np.flatnonzero(kinds == LINEAR), free_rows)
        for kind, activation, rows in ((LINEAR, Identity(), linear_rows), (UNSTABLE, free_act, free_rows)):
            if rows.size == 0:
                continue
            base = b[rows] + (offset[rows] if kind == LINEAR else 0.0)
            weights, bias = gather(ws, rows, base)
            layers.append(Layer(weights, activation, bias, int(rows.size)))
            parts[k].append((len(layers), rows))
        crow = np.flatnonzero(kinds == CONSTANT)
        consts[k] = (crow, offset[crow])
    readout, out_offset = gather(spec.readout, None, np.zeros(spec.output_dim))
    if not layers:  # every neuron is constant: a zero state keeps the spec well formed
        layers.append(Layer({0: np.zeros((1, m))}, Identity(), None, 1))
    constant_output = not readout
    if constant_output:  # the output reads only constant states
        readout = {0: np.zeros((spec.output_dim, m))}
    restricted = NetworkSpec(m, layers, readout, name=f"{spec.name} (restricted)")
    return Restriction(restricted, spec, tuple(kinds_all), out_offset, constant_output)


__all__ = ["CONSTANT", "LINEAR", "UNSTABLE", "Restriction", "restrict"]
