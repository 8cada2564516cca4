"""Rigorous pre-activation bounds over an input region: interval propagation and CROWN back-substitution.

For every layer ``k`` of a :class:`~unfoldtheory.spec.NetworkSpec` and every input ``y`` of a region,
:func:`preactivation_bounds` returns float64 vectors ``lower_k ≤ v_k(y) ≤ upper_k``, where
``v_k = Σ_j W_kj z_j + b_k`` is evaluated in **exact** arithmetic on the spec's float64 data.

* ``method="interval"`` (IBP): midpoint–radius interval arithmetic over the graph, outward rounded
  (``unfoldtheory.forward_error._interval_layer``: the midpoint product is within ``γ_n(Σ|W||mid| + |b|)``,
  Higham §3.5), activations by monotonicity.
* ``method="crown"``: for each layer, a linear lower bound of ``±v_k`` in terms of the input, obtained by
  back-substitution through the graph with one sound linear relaxation per neuron
  (:mod:`unfoldtheory.lipschitz.linear_relaxation`; Zhang et al., *Efficient Neural Network Robustness
  Certification with General Activation Functions*, NeurIPS 2018; Singh et al., *An Abstract Domain for
  Certifying Neural Networks* (DeepPoly), POPL 2019), concretised over the region
  (``a·c − r‖a‖₂`` on an ℓ2 ball, ``a·c − r‖a‖₁`` on an ℓ∞ ball, midpoint–radius on a box: Cauchy–Schwarz and
  Hölder, ``proofs/bound_propagation.py``). Every layer's interval is the intersection with its interval
  bound, and the next layers' relaxations use these intersected intervals. Only the neurons on which the activation is
  not constant over their interval bound get back-substituted rows: a constant neuron's state, and so every later
  bound, is the same on any sub-interval (:func:`~.linear_relaxation.constant`).
* ``method="alpha-crown"``: the ``"crown"`` bounds, then a second pass in which every neuron still unstable (and
  near stable: within ``alpha_crown.NEAR`` of its width) gets the CROWN bound with its own optimised slopes per row
  (:mod:`unfoldtheory.lipschitz.alpha_crown`: a float guide chooses them; the bound is recomputed rigorously for the
  chosen float slopes), intersected with the ``"crown"`` bounds — so never looser than ``"crown"``, neuron by neuron.
  It pays at small radii (a few unstable neurons per layer); where most neurons are unstable it gains little for
  several times the time (the single-neuron relaxation is the limit there).

**Rounding.** The back-substitution is carried in float64; the exact statement maintained for every row
``r`` is ``target_r(y) ≥ Σ_i (Â_i z_i(y))_r + ĉ_r − e_r`` with the *computed* coefficient matrices ``Â_i``
and constant ``ĉ``, and an error bound ``e`` that collects, for every rounded operation, ``|exact − computed|``
times a bound on the magnitude of what it multiplies (``|z_i| ≤ Z_i`` and ``|v_j| ≤ V_j`` from the intervals
already known): ``γ_n(|Â_i| + |Ŝ||W_ji|)Z_i`` for an update ``Â_i ← fl(Â_i + Ŝ W_ji)`` (Higham, Lemma 3.1
and §3.5, any summation order, FMA allowed), ``(2u|Ŝ| + 2η)V_j`` for the relaxation slopes that are not 0 or
1, ``γ_{4d_j+1}(|ĉ| + |Â_j| C_j + |Ŝ||b_j|)`` for the constants (one sum of at most ``4d_j + 1`` rounded
products, whichever line each row uses, also with one line per row and neuron), and the absolute underflow terms
``nη`` everywhere. Each error term is a nonnegative expression of float data, rounded up with
:func:`unfoldtheory.rounding.inflate`. A row in which any float became non-finite gives ``∓inf``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from unfoldtheory.activations import is_builtin
from unfoldtheory.forward_error import _activation_interval, _Inflation, _interval_layer, _ops
from unfoldtheory.lipschitz.regions import Region
from unfoldtheory.spec import NetworkSpec

METHODS = ("interval", "crown", "alpha-crown")


@dataclass(frozen=True)
class PreactivationBounds:
    """``lower[k-1] ≤ v_k(y) ≤ upper[k-1]`` for every layer ``k = 1..N`` and every ``y`` in the region (exact
    arithmetic on the spec's float64 data); entries may be ``±inf`` (no bound). ``method`` names how they were
    computed, ``seconds`` how long it took; ``stopped`` is the first layer from which the deadline left the bounds of
    the pass before (interval, or CROWN under ``"alpha-crown"``), None when every layer was tightened."""

    lower: tuple[np.ndarray, ...]
    upper: tuple[np.ndarray, ...]
    method: str
    seconds: float
    stopped: int | None = None

    def width(self) -> dict[str, Any]:
        """Summary of ``upper − lower``: the mean over finite-width neurons per layer and overall, the largest width,
        and how many neurons have an infinite width."""
        widths = [np.asarray(hi - lo, dtype=float) for lo, hi in zip(self.lower, self.upper, strict=True)]
        with np.errstate(invalid="ignore", over="ignore"):
            per_layer = [float(np.mean(w[np.isfinite(w)])) if np.any(np.isfinite(w)) else float("inf") for w in widths]
            flat = np.concatenate(widths)
        finite = flat[np.isfinite(flat)]
        return {"mean": float(np.mean(finite)) if finite.size else float("inf"),
                "max": float(np.max(flat)) if flat.size else 0.0,
                "per_layer_mean": per_layer, "infinite": int(np.sum(~np.isfinite(flat)))}

    def unstable(self, spec: NetworkSpec) -> tuple[np.ndarray, ...]:
        """Per layer, a boolean mask of the neurons whose activation is not affine on their interval (a kink of
        soft-thresholding, ReLU or a box projection strictly inside it; for group soft-thresholding, a group whose
        norm may exceed θ). Identity layers have none."""
        return unstable_masks(spec, self.lower, self.upper)

    def unstable_counts(self, spec: NetworkSpec) -> tuple[int, ...]:
        """The number of unstable neurons per layer (:meth:`unstable`)."""
        return tuple(int(np.sum(m)) for m in self.unstable(spec))

    def contains(self, preactivations: list[np.ndarray]) -> bool:
        """Whether float pre-activations (one ``(batch, d_k)`` array per layer, as ``spec.preactivations``) lie
        within the bounds (a float comparison, for checks)."""
        return all(bool(np.all((P >= lo) & (P <= hi)))
                   for P, lo, hi in zip(preactivations, self.lower, self.upper, strict=True))


def unstable_masks(spec: NetworkSpec, lower: tuple[np.ndarray, ...], upper: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Per layer, the neurons whose activation is not affine on ``[lower[k-1], upper[k-1]]``
    (:func:`~.linear_relaxation.nonaffine`): the count of :meth:`PreactivationBounds.unstable` and of the attacked ranges
    of :mod:`.preactivation_attack`."""
    from unfoldtheory.lipschitz.linear_relaxation import nonaffine

    return tuple(nonaffine(act, lo, hi) for act, lo, hi in zip(spec.activations, lower, upper, strict=True))


def _check(spec: NetworkSpec, region: Region, method: str) -> None:
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"preactivation_bounds takes a NetworkSpec, got {type(spec).__name__}")
    if not isinstance(region, Region):
        raise TypeError(f"preactivation_bounds takes a Region (Ball or Box), got {type(region).__name__}")
    if method not in METHODS:
        raise ValueError(f"unknown bound propagation method {method!r}; known: {list(METHODS)}")
    region.check_dim(spec.input_dim)
    for k, act in enumerate(spec.activations, start=1):
        if not is_builtin(act):
            raise ValueError(f"bound propagation needs a built-in activation: layer {k} has the user-defined "
                             f"activation {act.name} ({type(act).__name__}), whose relaxation is not proved")


def _sanitize(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN (from ``inf − inf`` after an overflow) carries no information: widen it to ``∓inf``."""
    return np.where(np.isnan(lo), -np.inf, lo), np.where(np.isnan(hi), np.inf, hi)


def interval_layer(spec: NetworkSpec, k: int, zlo: list[np.ndarray], zhi: list[np.ndarray],
                   inflate: _Inflation) -> tuple[np.ndarray, np.ndarray]:
    """An outward-rounded enclosure of ``v_k`` given enclosures ``[zlo_j, zhi_j]`` of the states ``j < k``."""
    with np.errstate(over="ignore", invalid="ignore"):
        lo, hi = _interval_layer(spec.weights[k - 1], spec.biases[k - 1], zlo, zhi, spec.dims[k], inflate)
    return _sanitize(lo, hi)


def state_interval(spec: NetworkSpec, k: int, lo: np.ndarray, hi: np.ndarray,
                   inflate: _Inflation) -> tuple[np.ndarray, np.ndarray]:
    """An outward-rounded enclosure of ``z_k = φ_k(v_k)`` for ``v_k ∈ [lo, hi]`` (built-in activations)."""
    with np.errstate(over="ignore", invalid="ignore"):
        zlo, zhi = _activation_interval(spec.activations[k - 1], lo, hi, inflate)
    return _sanitize(np.asarray(zlo, dtype=float), np.asarray(zhi, dtype=float))


def preactivation_bounds(spec: NetworkSpec, region: Region, *, method: str = "crown",
                         deadline: float | None = None) -> PreactivationBounds:
    """Rigorous bounds on every pre-activation of ``spec`` over ``region`` (module docstring).

    ``method``:

    * ``"interval"``: interval arithmetic;
    * ``"crown"``: per neuron the intersection of the CROWN bound, the interval bound from the intersected intervals of
      the layers before, and the plain interval bound. Neurons on which the activation is constant over that interval
      bound keep it: their state is the same constant on any sub-interval, so no later bound changes (the rows are
      skipped, :func:`~.linear_relaxation.constant`);
    * ``"alpha-crown"``: the ``"crown"`` bounds, then, for every neuron still unstable whose interval is within
      :data:`.alpha_crown.NEAR` of its width of lying in one piece, the CROWN bound with slopes optimised per row
      (:mod:`.alpha_crown`) on the tightened intervals of the layers before, intersected with the ``"crown"`` bounds:
      never looser than ``"crown"``, neuron by neuron.

    ``deadline`` (a ``time.perf_counter()`` value): once it has passed, the layers left get no back-substitution (no
    slope optimisation under ``"alpha-crown"``) and keep the bounds of the pass before, which hold as well; the first
    such layer is ``stopped``.

    Raises ValueError for an unknown method, a region of the wrong dimension, or a user-defined activation (no proved
    relaxation).
    """
    t0 = time.perf_counter()
    _check(spec, region, method)
    stopped = None
    if method == "interval":
        lower, upper, _ = _propagate(spec, region, None, None)
    else:
        plain = _propagate(spec, region, None, None)[:2]  # so that crown ⊆ interval exactly, as floats
        lower, upper, stopped = _propagate(spec, region, plain, "crown", deadline)
        if method == "alpha-crown" and stopped is None:
            lower, upper, stopped = _propagate(spec, region, (lower, upper), "alpha-crown", deadline)
    for arr in (*lower, *upper):
        arr.flags.writeable = False
    return PreactivationBounds(tuple(lower), tuple(upper), method, time.perf_counter() - t0, stopped)


def _propagate(spec: NetworkSpec, region: Region, outer: tuple[list[np.ndarray], list[np.ndarray]] | None,
               method: str | None, deadline: float | None = None) -> tuple[list[np.ndarray], list[np.ndarray], int | None]:
    """Layer by layer: the interval bound from the states' intervals, intersected with ``outer`` (bounds known to
    hold) and, for ``method``, with back-substituted bounds of the neurons that need them, until ``deadline``; also the
    first layer reached after the deadline (None if none)."""
    from unfoldtheory.lipschitz import alpha_crown
    from unfoldtheory.lipschitz.linear_relaxation import Backsubstitution, constant, nonaffine, shrink_to_stable, slope_family

    inflate = _Inflation(_ops(spec))
    lo0, hi0 = region.enclosing_box()
    zlo, zhi = [np.asarray(lo0, dtype=float)], [np.asarray(hi0, dtype=float)]
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    crown = Backsubstitution(spec, region) if method else None
    guide = alpha_crown.SlopeGuide(spec, region) if method == "alpha-crown" else None
    stopped = None
    for k in range(1, spec.num_layers + 1):
        act = spec.activations[k - 1]
        if crown is not None and deadline is not None and time.perf_counter() > deadline:
            crown, guide, stopped = None, None, k  # the layers left keep the bounds of the pass before (``outer``)
        lo, hi = interval_layer(spec, k, zlo, zhi, inflate)
        if outer is not None:
            lo, hi = np.maximum(lo, outer[0][k - 1]), np.minimum(hi, outer[1][k - 1])
        if crown is not None:
            if method == "crown":
                need = np.flatnonzero(~constant(act, lo, hi))
            else:  # unstable, and within a fraction NEAR of their width of being stable
                with np.errstate(over="ignore", invalid="ignore"):
                    near = shrink_to_stable(act, lo, hi) <= alpha_crown.NEAR * (hi - lo)
                need = np.flatnonzero(nonaffine(act, lo, hi) & near)
            lines = guide.optimise(k, need) if guide is not None and need.size else None
            if need.size and (guide is None or lines is not None):
                clo, chi = crown.layer_bounds(k, need, lines)
                lo, hi = lo.copy(), hi.copy()
                lo[need], hi[need] = np.maximum(lo[need], clo), np.minimum(hi[need], chi)
        zl, zh = state_interval(spec, k, lo, hi, inflate)
        family = slope_family(act, lo, hi) if guide is not None else None
        if crown is not None:
            crown.add_layer(k, lo, hi, zl, zh, family.base if family is not None else None)
        if guide is not None and family is not None:
            guide.add_layer(k, family)
        lower.append(lo)
        upper.append(hi)
        zlo.append(zl)
        zhi.append(zh)
    return lower, upper, stopped


__all__ = ["METHODS", "PreactivationBounds", "interval_layer", "preactivation_bounds", "state_interval", "unstable_masks"]
