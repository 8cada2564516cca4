"""Certified contraction factor of a weight-tied iteration ``x ↦ φ(Wx + By + b)``, by LipSDP on one layer.

**The factor.** For a fixed input y the iteration map is ``T_y(x) = φ(Wx + By + b)``. Its ℓ2 Lipschitz
constant in x is that of the one-layer network ``x ↦ φ(Wx)``, certified by
:func:`unfoldtheory.lipschitz.upper_bound`: every certificate there (norm products, averaged
operators, LipSDP's multipliers) uses only the slope restrictions of φ, which hold for *every* pair
of pre-activations, and ``By + b`` shifts both pre-activations ``Wx + c``, ``Wx' + c`` of a pair by the
same ``c`` without changing their difference ``W(x − x')``. So one certified ρ bounds
``‖T_y(x) − T_y(x')‖ ≤ ρ‖x − x'‖`` for every y, x, x' (``proofs/spec_contraction.py``, claim 1).

**Iterates** (claims 2–3). If ρ < 1, ``T_y`` has a unique fixed point ``x*(y)`` (Banach) and
``‖x_K − x*‖ ≤ ρ^K‖x_0 − x*‖`` after K applications; when the layers share W but not
``B, b, φ`` (e.g. learned per-layer thresholds), each layer map is ρ-Lipschitz and two runs on the
same y satisfy ``‖x_K − x'_K‖ ≤ ρ^K‖x_0 − x'_0‖``.

**Lower bound.** :func:`unfoldtheory.lipschitz.lower_bound` on ``x ↦ φ(Wx + b)`` (the map at y = 0)
gives a witness pair whose ratio no contraction factor can be below.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from unfoldtheory.activations import Activation
from unfoldtheory.convergence.iteration import IterationLayer, iteration_layers
from unfoldtheory.lipschitz import lower_bound, upper_bound
from unfoldtheory.lipschitz.norms import up_mul
from unfoldtheory.results import Bound, to_jsonable
from unfoldtheory.spec import Layer, NetworkSpec
from unfoldtheory.validation import as_finite_array

QUANTITY = "contraction factor of the iteration map x ↦ φ(Wx + By + b) (l2)"
PROOF = "proofs/spec_contraction.py"


@dataclass(frozen=True, eq=False)
class TiedIteration:
    """A weight-tied iteration read off a spec.

    Attributes
    ----------
    W: the shared weight on the previous state.
    layers: the layers that apply a map ``x ↦ φ_k(Wx + B_k y + b_k)`` (2..N, or 1..N when layer 1 is the
        same map applied to ``x_0 = 0``).
    activations: ``φ_k`` of those layers, in order.
    same_map: every applied layer has the same ``B``, ``b`` and ``φ`` (then ``x*`` is a common fixed point).
    from_zero: layer 1 is that same map applied to ``x_0 = 0``.
    """

    W: np.ndarray
    layers: tuple[int, ...]
    activations: tuple[Activation, ...]
    biases: tuple[np.ndarray, ...]
    same_map: bool
    from_zero: bool


def same_activation(a: Activation, b: Activation) -> bool:
    """Whether two activations are the same function (same class and the same configuration)."""
    return type(a) is type(b) and to_jsonable(a.config()) == to_jsonable(b.config())


def _same_affine(a: IterationLayer, b: IterationLayer) -> bool:
    same_b = (a.B is None and b.B is None) or (a.B is not None and b.B is not None and np.array_equal(a.B, b.B))
    return same_b and np.array_equal(a.bias, b.bias) and same_activation(a.activation, b.activation)


def tied_iteration(spec: NetworkSpec) -> TiedIteration:
    """The shared weight and the layer maps of a weight-tied unrolled iteration, or a ValueError that
    names the layer breaking the pattern (a weight that differs, a momentum edge, a missing edge)."""
    layers = iteration_layers(spec, output=False)
    if len(layers) < 2:
        raise ValueError("the spec has one layer, which reads only y: there is no iteration map x ↦ φ(Wx + By + b) to "
                         "certify (pass W and the activation directly)")
    for layer in layers[1:]:
        if layer.V is not None:
            raise ValueError(f"layer {layer.k} reads x_{layer.k - 2} (a momentum edge): the iteration is not x ↦ "
                             "φ(Wx + By + b) on x alone")
        if layer.W is None:
            raise ValueError(f"layer {layer.k} does not read the previous state x_{layer.k - 1}: not an iteration")
    W = layers[1].W
    for layer in layers[2:]:
        if not np.array_equal(layer.W, W):
            diff = float(np.max(np.abs(layer.W - W)))
            raise ValueError(f"layer {layer.k}'s weight on x_{layer.k - 1} differs from layer 2's (max |difference| "
                             f"{diff:.3g}): not a weight-tied iteration, so no single map x ↦ φ(Wx + By + b)")
    first = layers[0]
    from_zero = _same_affine(first, layers[1])
    applied = layers if from_zero else layers[1:]
    same = all(_same_affine(layer, applied[0]) for layer in applied)
    return TiedIteration(W, tuple(layer.k for layer in applied), tuple(layer.activation for layer in applied),
                         tuple(layer.bias for layer in applied), same, from_zero)


def _power_up(rho: float, K: int) -> float:
    """An upper bound on ``ρ^K`` (ρ ≥ 0): K products, each rounded one step up."""
    value = 1.0
    for _ in range(K):
        value = up_mul(value, rho)
    return value


def contraction_bound(spec_or_W: NetworkSpec | Any, activation: Activation | None = None, *, method: str = "best",
                      time_budget: float = 45.0, restarts: int = 8, seed: int = 0) -> Bound:
    """A certified upper bound on the contraction factor ρ of the weight-tied iteration ``x ↦ φ(Wx + By + b)``.

    Parameters
    ----------
    spec_or_W:
        A :class:`~unfoldtheory.spec.NetworkSpec` of an unrolled weight-tied iteration (layers k ≥ 2 read
        ``x_{k−1}`` through exactly equal weights W, and y; see :func:`tied_iteration`), or the matrix W.
    activation:
        φ when W is given (then required); must be None with a spec (its layers' activations are used).
    method, time_budget:
        Passed to :func:`unfoldtheory.lipschitz.upper_bound` (one call per distinct activation).
    restarts, seed:
        Passed to :func:`unfoldtheory.lipschitz.lower_bound` for the witness (``details["lower"]``).

    Returns
    -------
    Bound
        ``kind="upper"``, quantity :data:`QUANTITY`; the largest factor over the layer maps (they differ
        only when the activations differ). ``certified`` when every upper bound is. ``details``:
        ``lower`` (the witness's certified ratio), ``lipschitz_upper`` / ``lipschitz_lower`` (the Bounds),
        ``layers``, ``contracts`` (certified and < 1), ``iterates`` (when it contracts: the bound on
        ``‖x_K − x*‖`` or, for different layer maps, on two runs' distance), ``reason`` when uncertified.
    """
    start = time.perf_counter()
    if isinstance(spec_or_W, NetworkSpec):
        if activation is not None:
            raise ValueError("activation is read from the spec's layers; pass it only with a matrix W")
        tied = tied_iteration(spec_or_W)
        name = spec_or_W.name
    else:
        if not isinstance(activation, Activation):
            raise ValueError(f"with a matrix W, activation must be an Activation, got {type(activation).__name__}")
        W = as_finite_array(spec_or_W, "W", ndim=2)
        if W.shape[0] != W.shape[1]:
            raise ValueError(f"W has shape {W.shape}; an iteration map x ↦ φ(Wx + By + b) needs a square W")
        tied = TiedIteration(W, (), (activation,), (np.zeros(W.shape[0]),), True, False)
        name = "iteration map"
    n = tied.W.shape[0]
    groups: list[tuple[Activation, np.ndarray]] = []
    for act, bias in zip(tied.activations, tied.biases, strict=True):
        if not any(same_activation(act, g) for g, _ in groups):
            groups.append((act, bias))
    uppers, lowers = [], []
    for act, bias in groups:
        one = NetworkSpec(n, [Layer({0: tied.W}, act, None, n)], name=f"{name}: x ↦ φ(Wx), one layer")
        uppers.append(upper_bound(one, method, time_budget=time_budget))
        at_zero = NetworkSpec(n, [Layer({0: tied.W}, act, bias, n)], name=f"{name}: x ↦ φ(Wx + b), y = 0")
        lowers.append(lower_bound(at_zero, restarts=restarts, seed=seed, time_budget=time_budget))
    worst = max(uppers, key=lambda b: b.value)
    rho = worst.value
    certified = all(b.certified for b in uppers)
    lower = max((b.value for b in lowers if b.certified), default=0.0)
    details: dict[str, Any] = {
        "lower": lower, "lipschitz_upper": uppers, "lipschitz_lower": lowers, "layers": tied.layers, "n": n,
        "same_map": tied.same_map, "from_zero": tied.from_zero,
        "bias": "By + b shifts both pre-activations of a pair equally, so the bound holds for every y "
                f"(the one-layer spec has no bias; {PROOF}, claim 1)",
        "contracts": bool(certified and rho < 1),
    }
    if not certified:
        failed = [b for b in uppers if not b.certified]
        details["reason"] = "; ".join(str(b.details.get("reason", f"{b.method} not certified")) for b in failed)
    elif rho >= 1:
        details["note"] = (f"the certified factor {rho:.6g} is not below 1: no contraction is shown"
                           + (f"; the witness proves a factor ≥ {lower:.6g} ≥ 1" if lower >= 1 else ""))
    else:
        K = len(tied.layers)
        if K:
            factor = _power_up(rho, K)
            origin, last = f"x_{tied.layers[0] - 1}", f"x_{tied.layers[-1]}"
            if tied.same_map:
                statement = (f"‖{last} − x*‖ ≤ ρ^{K}·‖{origin} − x*‖ ≤ {factor:.6g}·‖{origin} − x*‖, x* = T_y(x*) the "
                             "unique fixed point")
            else:
                statement = (f"the layer maps differ (B, b or φ), so there is no common fixed point; two runs on the same y "
                             f"satisfy ‖{last} − {last}'‖ ≤ {factor:.6g}·‖{origin} − {origin}'‖")
            details["iterates"] = {"K": K, "factor": factor, "from": origin, "statement": statement,
                                   "proof": f"{PROOF}, claims 2–3"}
    certificate = worst.certificate if len(uppers) == 1 else [b.certificate for b in uppers]
    return Bound(rho, "upper", QUANTITY, f"lipschitz upper bound of one layer ({worst.method})", certified=certified,
                 certificate=certificate, seconds=time.perf_counter() - start, details=details)
