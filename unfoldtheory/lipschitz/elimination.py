"""Substituting identity-activation states into the layers that read them, with a rigorous error bound.

An identity state ``z_k = Σ_j W_kj z_j + b_k`` is linear, so the states and the read-out that use it
can read its sources directly: the combined weight onto a kept state ``i`` is ``Σ_j W_kj S_ji``, where
``S_j`` is state ``j`` written as a linear map of the kept states. Those products and sums are formed
in float64 and round, and rounding is not harmless here: with ``z_1 = 3y`` and
``z_2 = relu(w z_1 − 10²⁰ y)``, ``w = fl(10²⁰/3)``, the exact combined weight is ``3w − 10²⁰ = −4096``
while float64 gives 0. A certificate computed from the rounded weights would certify the rounded
network, not the given one.

So every combined weight comes with an entrywise bound on its error, and the certificate
(:mod:`.certificate`) covers the difference (``proofs/lipsdp_certificate.py``, item 6).

**The bound** (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1 and §3.5). If
``Ŝ_j`` is the computed map of state ``j`` with ``|Ŝ_j − S_j| ≤ E_j`` entrywise, the computed
``T̂ = fl(Σ_j fl(W_kj Ŝ_j))`` satisfies ``|T̂ − Σ_j W_kj Ŝ_j| ≤ γ_p Σ_j |W_kj||Ŝ_j|`` with ``p`` the
largest inner dimension of a product formed plus the number of summands less one (a sum of ``p``
products per entry, in any order), and ``|Σ_j W_kj Ŝ_j − Σ_j W_kj S_j| ≤ Σ_j |W_kj| E_j``. A kept
source enters as ``W_kj`` itself, exactly (no product is formed), so a spec without identity states,
or one whose identity states are read only once and directly, has zero error. The bound is
evaluated in float64 from nonnegative terms, whose sums and products are within ``γ_q`` of their
exact values, so it is multiplied by ``1 + 2γ_q`` (and an absolute ``q·2⁻¹⁰⁷⁰``, for underflow).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unfoldtheory.activations import Identity
from unfoldtheory.lipschitz.norms import gamma_bound
from unfoldtheory.spec import Layer, NetworkSpec

_SUBNORMAL = 2.0 ** -1070  # more than the absolute error of one operation that underflows


@dataclass(frozen=True)
class Elimination:
    """``spec`` without identity states, and entrywise error bounds of its weights: ``|W_true − W| ≤ error``.

    ``weight_errors[k - 1][j]`` bounds the error of ``spec.weights[k - 1][j]``, ``readout_errors[k]`` that
    of ``spec.readout[k]``; a missing key means the entry is exact. ``exact`` is True when every one is.
    """

    spec: NetworkSpec
    weight_errors: list[dict[int, np.ndarray]]
    readout_errors: dict[int, np.ndarray]

    @property
    def exact(self) -> bool:
        return not any(self.weight_errors) and not self.readout_errors


@dataclass
class _Affine:
    """A state as a linear map of kept states: ``maps[i]`` (computed), ``errors[i]`` (bounds; absent: exact),
    ``kept`` is True for a kept state itself (the identity map, never formed)."""

    maps: dict[int, np.ndarray]
    errors: dict[int, np.ndarray]
    offset: np.ndarray
    kept: bool = False


def _compose(terms: dict[int, np.ndarray], bias: np.ndarray, expr: dict[int, _Affine]) -> _Affine:
    """``Σ_j W_j z_j + b`` as a map of kept states, with the error bound of the module docstring."""
    contributions: dict[int, list[tuple[np.ndarray, np.ndarray | None, int]]] = {}
    offset = bias.copy()
    for j, W in terms.items():
        source = expr[j]
        offset = offset + W @ source.offset
        for i, S in source.maps.items():
            if source.kept:
                contributions.setdefault(i, []).append((W, None, 0))
            else:
                contributions.setdefault(i, []).append((W, S, S.shape[0]))
    maps: dict[int, np.ndarray] = {}
    errors: dict[int, np.ndarray] = {}
    for i, parts in contributions.items():
        computed = [W if S is None else W @ S for W, S, _ in parts]
        maps[i] = computed[0]
        for extra in computed[1:]:
            maps[i] = maps[i] + extra
        p = max(inner for _, _, inner in parts) + len(parts) - 1
        propagated = [np.abs(W) @ expr[j].errors[i] for j, W in terms.items() if i in expr[j].errors]
        if p == 0 and not propagated:
            continue  # a single kept source, passed through exactly
        q = p + max(inner for _, _, inner in parts) + len(parts) + 2  # the bound's own products and sums
        magnitude = sum(np.abs(W) if S is None else np.abs(W) @ np.abs(S) for W, S, _ in parts)
        bound = gamma_bound(max(p, 1)) * magnitude + sum(propagated, np.zeros_like(maps[i]))
        errors[i] = bound * (1 + 2 * gamma_bound(q)) + q * _SUBNORMAL
    return _Affine(maps, errors, offset)


def eliminate_identity_states(spec: NetworkSpec) -> Elimination:
    """The spec with identity-activation states substituted into their consumers and the read-out, and the
    entrywise error bounds of the combined weights (module docstring). The output may differ by a constant
    (dropped biases), which no Lipschitz analysis sees."""
    if not any(isinstance(a, Identity) for a in spec.activations):
        return Elimination(spec, [{} for _ in spec.weights], {})
    expr, new_index, layers, weight_errors = _substitute(spec)
    if not layers:
        raise ValueError("the spec is linear (every activation is the identity): its Lipschitz constant is ‖J‖₂")
    # A constant offset of the output (from biases of eliminated states) does not change any difference
    # f(y1) − f(y2), so the read-out keeps only the linear part.
    out = _compose(spec.readout, np.zeros(spec.output_dim), expr)
    reduced = NetworkSpec(spec.input_dim, layers, {new_index[i]: C for i, C in out.maps.items()},
                          name=f"{spec.name} (linear states eliminated)")
    return Elimination(reduced, weight_errors, {new_index[i]: E for i, E in out.errors.items()})


def linear_map(spec: NetworkSpec) -> tuple[np.ndarray, np.ndarray]:
    """For a spec whose activations are all the identity (an affine map ``f(y) = Jy + c``): the computed ``Ĵ``
    and an entrywise bound ``E`` with ``|J − Ĵ| ≤ E`` in exact arithmetic (module docstring)."""
    if not all(isinstance(a, Identity) for a in spec.activations):
        raise ValueError("linear_map needs a spec whose every activation is the identity")
    expr, _, _, _ = _substitute(spec)
    out = _compose(spec.readout, np.zeros(spec.output_dim), expr)
    shape = (spec.output_dim, spec.input_dim)
    return out.maps.get(0, np.zeros(shape)), out.errors.get(0, np.zeros(shape))


def _substitute(spec: NetworkSpec) -> tuple[dict[int, _Affine], dict[int, int], list[Layer], list[dict[int, np.ndarray]]]:
    """Walk the states in order: identity states become maps of kept states, the others are kept (re-indexed)."""
    m = spec.input_dim
    expr: dict[int, _Affine] = {0: _Affine({0: np.eye(m)}, {}, np.zeros(m), kept=True)}
    new_index = {0: 0}
    layers: list[Layer] = []
    weight_errors: list[dict[int, np.ndarray]] = []
    for k, (ws, b, act) in enumerate(zip(spec.weights, spec.biases, spec.activations, strict=True), start=1):
        combined = _compose(ws, b, expr)
        if isinstance(act, Identity):
            expr[k] = combined
            continue
        layers.append(Layer({new_index[i]: W for i, W in combined.maps.items()}, act, combined.offset, spec.dims[k]))
        weight_errors.append({new_index[i]: E for i, E in combined.errors.items()})
        new_index[k] = len(layers)
        expr[k] = _Affine({k: np.eye(spec.dims[k])}, {}, np.zeros(spec.dims[k]), kept=True)
    return expr, new_index, layers, weight_errors


def eliminate_linear_states(spec: NetworkSpec) -> NetworkSpec:
    """The spec without identity-activation states (:func:`eliminate_identity_states`, weights only): the form
    the chain recursions search on. Their multipliers are then checked against the error bounds too."""
    return eliminate_identity_states(spec).spec


__all__ = ["Elimination", "eliminate_identity_states", "eliminate_linear_states", "linear_map"]
