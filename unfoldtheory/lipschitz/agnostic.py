"""The exact activation-agnostic Lipschitz bound of a tiny network, by vertex enumeration.

``activation_agnostic(spec)`` returns ``max ‖J(D)‖₂`` over the slope patterns
``D ∈ {α_i, β_i}ⁿ`` of the spec's separable activations: the best (smallest) ℓ2 Lipschitz
bound that any method can certify from the slope restriction alone. Every LipSDP-type value
must be ≥ it; every witness lower bound must be ≤ it.
"""

from __future__ import annotations

import math
import time

import numpy as np

from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec

QUANTITY = "Lipschitz constant of the input-output map (l2)"
METHOD = "activation-agnostic (vertex enumeration)"
_CHUNK_FLOATS = 2_000_000  # floats per batched Jacobian block, bounds memory per chunk
_EPS = np.finfo(np.float64).eps


def _free_layers(spec: NetworkSpec) -> list[tuple[float, float, bool]]:
    """Per layer: (α, β, free); ``free`` when α < β (every coordinate is then a free neuron)."""
    out = []
    for k, act in enumerate(spec.activations, start=1):
        if not act.separable:
            raise ValueError(
                f"layer {k}: activation {act.name} is not separable; the activation-agnostic vertex enumeration "
                "needs separable slope-restricted activations (one slope per neuron)")
        lo, hi = (float(x) for x in act.slope_interval)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"layer {k}: activation {act.name} has a non-finite slope interval [{lo}, {hi}]")
        out.append((lo, hi, lo < hi))
    return out


def _spectral_norms(J: np.ndarray) -> np.ndarray:
    """‖J_b‖₂ for a batch of matrices J of shape (B, p, q), via the smaller Gram matrix."""
    p, q = J.shape[1:]
    scale = np.max(np.abs(J), axis=(1, 2))  # rescaled, so that the Gram matrix neither under- nor overflows
    J = J / np.where(scale > 0, scale, 1.0)[:, None, None]
    return scale * _unit_norms(J, p, q)


def _unit_norms(J: np.ndarray, p: int, q: int) -> np.ndarray:
    if p == 1 or q == 1:
        return np.sqrt(np.einsum("bij,bij->b", J, J))
    G = J @ np.swapaxes(J, 1, 2) if p <= q else np.swapaxes(J, 1, 2) @ J
    lam = np.linalg.eigvalsh(G)[:, -1]
    return np.sqrt(np.maximum(lam, 0.0))


def _batched_jacobians(spec: NetworkSpec, slopes: list[np.ndarray | float]) -> np.ndarray:
    """J(D) for a batch of patterns: ``slopes[k]`` is (B, d_k) or a scalar (fixed slope)."""
    B = next((s.shape[0] for s in slopes if isinstance(s, np.ndarray)), 1)
    m = spec.input_dim
    jac: list[np.ndarray | None] = [None]  # None stands for the identity J_0 = I
    for k, (ws, s) in enumerate(zip(spec.weights, slopes, strict=True), start=1):
        pre = np.zeros((B, spec.dims[k], m))
        for j, w in ws.items():
            pre += w if j == 0 else w @ jac[j]
        jac.append(pre * (s[:, :, None] if isinstance(s, np.ndarray) else s))
    out = np.zeros((B, spec.output_dim, m))
    for k, c in spec.readout.items():
        out += c if k == 0 else c @ jac[k]
    return out


def _rounding_margin(spec: NetworkSpec, layers: list[tuple[float, float, bool]]) -> float:
    """A bound on the float64 rounding error of any computed J(D) and of its norm.

    J(D) is a sum over paths of products of entries; each entry of the computed J(D) is off by at
    most γ·(|C| |D| |W| …)_ij with γ = c·depth·width·eps (Higham, *Accuracy and Stability*,
    §3.5), and |D| ≤ max(|α|, |β|). The spectral norm of the error is at most its Frobenius norm.
    """
    slopes = [max(abs(lo), abs(hi)) for lo, hi, _ in layers]
    jac = [np.eye(spec.input_dim)]
    for k, ws in enumerate(spec.weights, start=1):
        pre = sum((np.abs(w) @ jac[j] for j, w in ws.items()), np.zeros((spec.dims[k], spec.input_dim)))
        jac.append(slopes[k - 1] * pre)
    J_abs = sum(np.abs(c) @ jac[k] for k, c in spec.readout.items())
    gamma = 4.0 * (spec.num_layers + 2) * (max(spec.dims) + spec.output_dim + 2) * _EPS
    return gamma * float(np.linalg.norm(J_abs)) + np.finfo(np.float64).tiny


def activation_agnostic(spec: NetworkSpec, max_neurons: int = 20) -> Bound:
    """The exact maximum of ``‖J(D)‖₂`` over all slope patterns: the activation-agnostic bound.

    **Why it is an upper bound.** Let every activation be separable with slopes in ``[α, β]``.
    For two inputs ``y₁, y₂``, each neuron's difference quotient
    ``δ_i = (φ(a_i) − φ(b_i))/(a_i − b_i)`` (any value in ``[α, β]`` when ``a_i = b_i``) lies in
    ``[α_i, β_i]``, so layer by layer ``z_k(y₁) − z_k(y₂) = Δ_k (v_k(y₁) − v_k(y₂))`` with
    ``Δ_k = diag(δ)``, and the pre-activation differences are linear in earlier state
    differences. Hence ``f(y₁) − f(y₂) = J(Δ)(y₁ − y₂)`` exactly (the chain rule of
    :meth:`NetworkSpec.linearized_jacobian` with ``Δ`` in place of the derivatives), and
    ``‖f(y₁) − f(y₂)‖ ≤ max_{D ∈ box} ‖J(D)‖ · ‖y₁ − y₂‖``.

    **Why vertices suffice.** ``J(D)`` is a sum over the paths of the feed-forward graph of
    products of weights and slopes; a path visits each neuron at most once (states are visited in
    increasing order), so ``J`` is affine in each ``D_ii`` with the others fixed. A norm of an affine
    function is convex, so ``D_ii ↦ ‖J(D)‖`` attains its maximum over ``[α_i, β_i]`` at an end;
    moving the coordinates to ends one at a time never decreases the value, so the maximum over the
    box is attained at a vertex ``D ∈ {α_i, β_i}ⁿ``, which this function enumerates. It is also the
    best any method can certify from the slope restriction alone: the network whose neurons are
    the linear maps with the maximising slopes satisfies the same restriction and has exactly
    this Lipschitz constant.

    Layers with ``α = β`` (the identity) contribute one pattern. The returned value is the
    maximum plus a float64 rounding margin (:func:`_rounding_margin`, ~1e-13 relative).

    Parameters
    ----------
    spec:
        A :class:`NetworkSpec` whose activations are all separable.
    max_neurons:
        The largest number of free neurons (in layers with ``α < β``) to enumerate: ``2**n``
        patterns.

    Returns
    -------
    Bound
        ``kind="upper"``, ``certified=True``; ``certificate`` holds the maximising pattern (one
        slope vector per layer) and its norm; ``details`` the number of patterns and neurons.
    """
    t0 = time.perf_counter()
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"activation_agnostic takes a NetworkSpec, got {type(spec).__name__}")
    if isinstance(max_neurons, bool) or not isinstance(max_neurons, (int, np.integer)) or max_neurons < 0:
        raise ValueError(f"max_neurons must be an int >= 0, got {max_neurons!r}")
    layers = _free_layers(spec)
    free = [(k, spec.dims[k + 1]) for k, (_, _, f) in enumerate(layers) if f]
    n_free = sum(d for _, d in free)
    if n_free > max_neurons:
        raise ValueError(
            f"the network has {n_free} neurons with a slope range (alpha < beta); vertex enumeration of 2**{n_free} "
            f"patterns exceeds max_neurons={max_neurons}. Raise max_neurons or use an upper_bound method")
    n_patterns = 1 << n_free
    width = max(max(spec.dims), spec.output_dim) * spec.input_dim
    chunk = max(1, min(n_patterns, _CHUNK_FLOATS // max(1, width)))
    shifts = np.arange(n_free, dtype=np.int64)
    best_val, best_idx = -1.0, 0
    for start in range(0, n_patterns, chunk):
        idx = np.arange(start, min(start + chunk, n_patterns), dtype=np.int64)
        bits = ((idx[:, None] >> shifts) & 1).astype(np.float64)
        slopes: list[np.ndarray | float] = []
        offset = 0
        for lo, hi, f in layers:
            if f:
                d = spec.dims[len(slopes) + 1]
                slopes.append(lo + (hi - lo) * bits[:, offset:offset + d])
                offset += d
            else:
                slopes.append(lo)
        norms = _spectral_norms(_batched_jacobians(spec, slopes))
        i = int(np.argmax(norms))
        if norms[i] > best_val:
            best_val, best_idx = float(norms[i]), int(idx[i])
    # the maximising pattern, recomputed through the spec itself
    pattern: list[np.ndarray] = []
    offset = 0
    for k, (lo, hi, f) in enumerate(layers, start=1):
        d = spec.dims[k]
        if f:
            b = (best_idx >> np.arange(offset, offset + d)) & 1
            pattern.append(lo + (hi - lo) * b.astype(np.float64))
            offset += d
        else:
            pattern.append(np.full(d, lo))
    norm = float(np.linalg.norm(spec.linearized_jacobian(pattern), 2))
    margin = _rounding_margin(spec, layers)
    value = max(norm, best_val) + margin
    return Bound(
        value=value, kind="upper", quantity=QUANTITY, method=METHOD, certified=True,
        certificate={"pattern": pattern, "norm": norm},
        seconds=time.perf_counter() - t0,
        details={"patterns": n_patterns, "free_neurons": n_free, "rounding_margin": margin,
                 "slope_intervals": [(lo, hi) for lo, hi, _ in layers]},
    )


__all__ = ["activation_agnostic"]
