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

from unfoldtheory.forward_error import pattern_gain_lower
from unfoldtheory.lipschitz.lower import _Net
from unfoldtheory.lipschitz.norms import gamma_bound
from unfoldtheory.lipschitz.quantity import QUANTITY
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.validation import positive_int, time_budget_seconds

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


def _rounding_margin(spec: NetworkSpec, layers: list[tuple[float, float, bool]]) -> tuple[float, float]:
    """``(relative, absolute)`` with ``‖J(D)‖₂ ≤ σ̂(D)(1 + relative) + absolute`` for every pattern ``D`` in the
    box, where ``σ̂(D)`` is the norm computed by :func:`_spectral_norms` (or ``np.linalg.norm(·, 2)``) from the
    float64 Jacobian ``Ĵ(D)``.

    **Jacobian** (Higham, *Accuracy and Stability*, §3.5). Layer ``k`` forms ``Ĵ_k = fl(s·fl(Σ_j W_kj Ĵ_j))``
    (``Ĵ_0 = I`` exact; a slope ``s = fl(α + (β − α)b)`` is within ``ε|s̄|`` of its vertex, ``s̄ = max(|α|, |β|)``).
    With ``A_k = s̄_k Σ_j |W_kj| A_j`` (``A_0 = I``) bounding ``|J_k|``, induction gives ``|Ĵ_k − J_k| ≤ θ_k A_k`` for
    ``θ_k = (θ_{k−1}(1 + γ_{n_k}) + γ_{n_k} + 2ε)/(1 − ε)``, ``θ_{k−1}`` the largest over the sources and
    ``n_k`` the inner dimension of the layer's products plus its number of summands; likewise for the read-out.
    So ``‖Ĵ − J‖₂ ≤ θ‖A_out‖_F``, with ``A_out`` evaluated from nonnegative terms (hence ``1 + 2γ``).

    **Norm.** ``_spectral_norms`` divides by the largest entry (relative ε), forms the Gram matrix
    (``|Ĝ − G| ≤ γ_q|Ĵ||Ĵ|ᵀ``) and takes its largest eigenvalue (backward stable, LAPACK Users' Guide §4.7,
    with the conservative constant ``10·size`` that :func:`~.norms.spectral_norm_upper` also uses). In the
    unit scaling ``‖Ĵ‖_F² ≤ pq`` and ``‖Ĵ‖₂² ≥ (1 − ε)²``, so ``λ_max ≤ λ̂ + c`` with ``c = (γ_q + 2γ_{10·size})pq``,
    and ``√(λ̂ + c) ≤ √λ̂ (1 + c/(2((1 − ε)² − c)))``; the square root and the scaling back add a few ε.
    """
    thetas = [0.0]
    for ws in spec.weights:
        g = gamma_bound(sum(spec.dims[j] for j in ws if j > 0) + len(ws))
        thetas.append((max((thetas[j] for j in ws), default=0.0) * (1 + g) + g + 2 * _EPS) / (1 - _EPS) * (1 + 4 * _EPS))
    n_out = sum(spec.dims[k] for k in spec.readout if k > 0) + len(spec.readout)
    g = gamma_bound(n_out)
    theta = (max(thetas[k] for k in spec.readout) * (1 + g) + g) * (1 + 4 * _EPS)
    slopes = [max(abs(lo), abs(hi)) for lo, hi, _ in layers]
    jac = [np.eye(spec.input_dim)]
    with np.errstate(over="ignore", invalid="ignore"):
        for k, ws in enumerate(spec.weights, start=1):
            pre = sum((np.abs(w) @ jac[j] for j, w in ws.items()), np.zeros((spec.dims[k], spec.input_dim)))
            jac.append(slopes[k - 1] * pre)
        A_out = sum(np.abs(c) @ jac[k] for k, c in spec.readout.items())
        total_ops = sum(spec.dims) * (spec.num_layers + 2) + n_out + 4
        absolute = theta * float(np.linalg.norm(A_out)) * (1 + 2 * gamma_bound(total_ops)) + float(np.finfo(np.float64).tiny)
    p, q = spec.output_dim, spec.input_dim
    c = (gamma_bound(min(p, q) * max(p, q) + 2) + 2 * gamma_bound(10 * min(p, q))) * p * q * (1 + 4 * _EPS)
    relative = c / (2 * ((1 - _EPS) ** 2 - c)) * (1 + 4 * _EPS) + 8 * _EPS if c < 0.25 else math.inf
    return relative, absolute


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
    computed maximum enlarged by a rigorous float64 rounding bound (:func:`_rounding_margin`, ~1e-14 relative
    on small nets); it is uncertified (and infinite) when the Jacobians overflow float64.

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
        with np.errstate(over="ignore", invalid="ignore"):
            norms = _spectral_norms(_batched_jacobians(spec, slopes))
        if not np.all(np.isfinite(norms)):
            best_val = math.inf  # a Jacobian overflows float64: nothing is certified
            break
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
    with np.errstate(over="ignore", invalid="ignore"):
        J = spec.linearized_jacobian(pattern) if math.isfinite(best_val) else None
    norm = float(np.linalg.norm(J, 2)) if J is not None and np.all(np.isfinite(J)) else math.inf
    relative, margin = _rounding_margin(spec, layers)
    value = float(np.nextafter(max(norm, best_val) * (1 + relative) + margin, np.inf))
    certified = math.isfinite(value)
    why = "" if certified else "the Jacobians or their rounding bound overflow float64"
    return Bound(
        value=value if certified else math.inf, kind="upper", quantity=QUANTITY, method=METHOD, certified=certified,
        certificate={"pattern": pattern, "norm": norm},
        seconds=time.perf_counter() - t0,
        details={"patterns": n_patterns, "free_neurons": n_free, "rounding_margin": margin, "relative_margin": relative,
                 **({"reason": why} if why else {}), "slope_intervals": [(lo, hi) for lo, hi, _ in layers]},
        reason=why,
    )


FLOOR_QUANTITY = "activation-agnostic Lipschitz bound (the least a slope-restriction certificate can prove; l2)"
FLOOR_METHOD = "slope-pattern ascent"
SINGLE_FLIPS = 64  # single-neuron flips tried (best first-order gains first) before a climb stops


def _pattern_gains(net: _Net, pattern: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    """``‖J(D)‖₂`` and, per neuron, ``∂(uᵀJ(D)v)/∂D_i`` with ``u, v`` the top singular pair of ``J(D)``: the
    adjoint of the neuron's output times its pre-activation tangent along ``v`` (the sweeps of the witness
    search, with the pattern as slopes)."""
    U, sv, Vt = np.linalg.svd(net.spec.linearized_jacobian(pattern), full_matrices=False)
    slopes = [d[None, :] for d in pattern]
    pre, _ = net.tangent(slopes, Vt[:1])
    adjoint, _, _ = net.adjoint(slopes, U[:, :1].T)
    return float(sv[0]), [adjoint[k][0] * pre[k - 1][0] for k in range(1, len(pattern) + 1)]


def certified_gain(spec: NetworkSpec, pattern: list[np.ndarray], v: np.ndarray) -> float:
    """A rigorous lower bound on ``‖J(D) v‖₂ / ‖v‖₂`` (``J(D)`` in exact arithmetic on the float64 data).

    ``J(D) v`` is computed by a forward pass, ``t_k = D_k Σ_j W_kj t_j``, with a running bound on the
    error of each computed ``t̂_k`` (Higham, *Accuracy and Stability*, §3.5: ``|fl(Σ W t̂) − Σ W t̂| ≤
    γ_n Σ|W||t̂|``, and the error already in ``t̂_j`` passes through ``|W|``):
    ``e_k = |D_k|(Σ_j |W_kj| e_j + γ Σ_j |W_kj||t̂_j|) + ε|t̂_k|``; likewise for the read-out. The bound
    itself is evaluated in round-to-nearest from nonnegative terms, so it is inflated by ``1 + 2γ``
    to cover its own rounding. Then ``‖J v‖ ≥ ‖ŷ‖(1 − γ) − ‖e‖(1 + γ)``, divided by ``‖v‖`` rounded up.
    The recursion is the spec's one running-error recursion (:mod:`unfoldtheory.forward_error`).
    """
    return pattern_gain_lower(spec, pattern, v)


def agnostic_floor(spec: NetworkSpec, restarts: int = 8, seed: int = 0, time_budget: float = 20.0) -> Bound:
    """A lower bound on the activation-agnostic value ``max_D ‖J(D)‖₂`` for networks too large to enumerate.

    Every slope pattern ``D`` in the box gives a network of linear neurons that satisfies the same slope
    restrictions, with Lipschitz constant ``‖J(D)‖₂`` (see :func:`activation_agnostic`); so *no* method that
    uses only the slope restrictions (product, averaged, sequential, LipSDP-Neuron, …) can certify less than
    ``‖J(D)‖₂`` for any ``D``. Set beside an upper bound and a witness, this splits their gap: ``upper /
    floor`` is at most what a tighter slope-only relaxation could gain, ``floor / witness`` at least what it
    cannot (that part needs the activations themselves, or a better witness).

    The search climbs ``‖J(D)‖`` over the vertices: ``J`` is affine in each ``D_i``, and
    ``∂(uᵀJv)/∂D_i = ā_i p_i`` (adjoint of the neuron's output along the top left singular vector ``u``
    times its pre-activation tangent along the top right one ``v``), so each step sets every neuron to the
    end of its slope interval that this gain prefers and keeps the pattern if ``‖J‖`` grew, else flips
    single neurons in the order of their gains; it stops at a pattern no single flip improves (a local
    maximum: on 3×5×3 ISTA nets, where :func:`activation_agnostic` enumerates, it ended at 97.8–99.99 % of
    the maximum with 8 restarts). Restarts: all slopes at ``β``, then random vertices, while
    ``time_budget`` seconds last. The value is ``‖J(D)‖₂`` of the best pattern recomputed
    through the spec and bounded from below along its top right singular vector with a rigorous forward
    error bound (:func:`certified_gain`): certified.
    """
    t0 = time.perf_counter()
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"agnostic_floor takes a NetworkSpec, got {type(spec).__name__}")
    restarts = positive_int(restarts, "restarts")
    time_budget = time_budget_seconds(time_budget)
    layers = _free_layers(spec)
    lo = [np.full(d, a) for (a, _, _), d in zip(layers, spec.dims[1:], strict=True)]
    hi = [np.full(d, b) for (_, b, _), d in zip(layers, spec.dims[1:], strict=True)]
    rng = np.random.default_rng(seed)
    net = _Net(spec)
    best_val, best_pattern, climbs = -1.0, [h.copy() for h in hi], []
    for r in range(restarts):
        if r and time.perf_counter() - t0 > time_budget:
            break
        pattern = ([h.copy() for h in hi] if r == 0 else
                   [np.where(rng.random(len(a)) < 0.5, a, b) for a, b in zip(lo, hi, strict=True)])
        value, gains = _pattern_gains(net, pattern)
        steps = 0
        while time.perf_counter() - t0 <= time_budget:
            steps += 1
            target = [np.where(g > 0, b, np.where(g < 0, a, d)) for g, a, b, d in zip(gains, lo, hi, pattern, strict=True)]
            new_value, new_gains = _pattern_gains(net, target)
            if new_value > value * (1 + 1e-12):
                pattern, value, gains = target, new_value, new_gains
                continue
            # single flips, most promising first (first-order gain of moving to the other end)
            flat = np.concatenate([g * (np.where(d == a, b, a) - d) for g, a, b, d in zip(gains, lo, hi, pattern, strict=True)])
            offsets = np.cumsum([0] + [len(d) for d in pattern])
            improved = False
            for i in np.argsort(-flat)[:SINGLE_FLIPS]:
                if flat[i] <= 0:
                    break
                k = int(np.searchsorted(offsets, i, side="right") - 1)
                trial = [d.copy() for d in pattern]
                j = i - offsets[k]
                trial[k][j] = lo[k][j] if trial[k][j] == hi[k][j] else hi[k][j]
                trial_value, trial_gains = _pattern_gains(net, trial)
                if trial_value > value * (1 + 1e-12):
                    pattern, value, gains, improved = trial, trial_value, trial_gains, True
                    break
            if not improved:
                break
        climbs.append({"value": value, "steps": steps})
        if value > best_val:
            best_val, best_pattern = value, pattern
    _, sv, Vt = np.linalg.svd(spec.linearized_jacobian(best_pattern), full_matrices=False)
    value = certified_gain(spec, best_pattern, Vt[0])
    return Bound(
        value=value, kind="lower", quantity=FLOOR_QUANTITY, method=FLOOR_METHOD, certified=True,
        certificate={"pattern": best_pattern, "direction": Vt[0], "norm": float(sv[0])}, seconds=time.perf_counter() - t0,
        details={"restarts": climbs, "time_budget": time_budget,
                 "slope_intervals": [(a, b) for a, b, _ in layers]},
    )


__all__ = ["activation_agnostic", "agnostic_floor"]
