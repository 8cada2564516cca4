"""The LipSDP-Neuron certificate decided in exact arithmetic, on the spec as given.

:func:`lipsdp_certificate_holds` rebuilds the quadratic form of ``proofs/lipsdp_certificate.py`` from
the spec's float64 weights converted exactly to rationals, with its identity states substituted in
exact arithmetic (no rounding anywhere), and decides ``M(ρ, λ) ⪯ 0`` exactly. It shares no code with
:mod:`unfoldtheory.lipschitz.quadratic_form` or :mod:`unfoldtheory.lipschitz.certificate`, so it is an
independent route: a certificate that passes it proves ``L ≤ √ρ`` for the given network (S-procedure,
Fazlyab et al., NeurIPS 2019, Theorem 2).

Multipliers are ordered as the package's forms order them: the layers without identity activation in
order, one multiplier per neuron of a separable layer, one per non-separable (firmly nonexpansive) layer.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from unfoldtheory.activations import Identity
from unfoldtheory.oracle import rational as q
from unfoldtheory.spec import NetworkSpec


def _substituted(spec: NetworkSpec) -> tuple[list[int], dict[int, dict[int, q.RationalMatrix]], dict[int, q.RationalMatrix]]:
    """The kept states, each kept layer's pre-activation map onto (y, kept states), and the read-out map, exactly."""
    maps: dict[int, dict[int, q.RationalMatrix]] = {0: {0: q.identity(spec.input_dim)}}
    kept = [0]
    pre: dict[int, dict[int, q.RationalMatrix]] = {}

    def combine(terms: dict[int, np.ndarray], rows: int) -> dict[int, q.RationalMatrix]:
        out: dict[int, q.RationalMatrix] = {}
        for j, w in terms.items():
            W = q.matrix(w)
            for i, S in maps[j].items():
                product = q.matmul(W, S)
                out[i] = q.add(out[i], product) if i in out else product
        return out

    for k, (ws, act) in enumerate(zip(spec.weights, spec.activations, strict=True), start=1):
        combined = combine(ws, spec.dims[k])
        if isinstance(act, Identity):
            maps[k] = combined
            continue
        pre[k] = combined
        kept.append(k)
        maps[k] = {k: q.identity(spec.dims[k])}
    return kept, pre, combine(spec.readout, spec.output_dim)


def _row(parts: dict[int, q.RationalMatrix], r: int, kept: list[int], dims: tuple[int, ...]) -> list[Fraction]:
    row: list[Fraction] = []
    for i in kept:
        row += parts[i][r] if i in parts else [Fraction(0)] * dims[i]
    return row


def lipsdp_matrix(spec: NetworkSpec, multipliers: Any, rho: Any) -> q.RationalMatrix:
    """``M(ρ, λ)`` of the spec in exact arithmetic (rows and columns: ``y`` then the kept states)."""
    kept, pre, readout = _substituted(spec)
    dims = spec.dims
    size = sum(dims[i] for i in kept)
    offsets = {i: sum(dims[j] for j in kept[:n]) for n, i in enumerate(kept)}
    lam = [q.exact(x) for x in np.asarray(multipliers, dtype=np.float64).ravel().tolist()]
    if any(x < 0 for x in lam):
        raise ValueError("multipliers must be nonnegative")
    M = q.zeros(size, size)
    C = [_row(readout, r, kept, dims) for r in range(spec.output_dim)]
    for c in C:
        for a in range(size):
            if c[a]:
                for b in range(size):
                    M[a][b] += c[a] * c[b]
    rho_q = q.exact(rho)
    for a in range(dims[0]):
        M[a][a] -= rho_q
    used = 0
    for k in kept[1:]:
        act = spec.activations[k - 1]
        if act.separable:  # per neuron (RegionSlopes narrows them over a region)
            alphas, betas = ([q.exact(float(x)) for x in v] for v in act.neuron_slopes(dims[k]))
        for r in range(dims[k]):
            p = _row(pre[k], r, kept, dims)
            e = [Fraction(0)] * size
            e[offsets[k] + r] = Fraction(1)
            if act.separable:
                weight, alpha, beta = lam[used + r], alphas[r], betas[r]
                fa = [ei - alpha * pi for ei, pi in zip(e, p, strict=True)]
                fb = [beta * pi - ei for ei, pi in zip(e, p, strict=True)]
            else:  # ⟨Δz, Δv⟩ − ‖Δz‖² = Σ_r Δz_r (Δv_r − Δz_r), one multiplier for the block
                weight = lam[used]
                fa = e
                fb = [pi - ei for ei, pi in zip(e, p, strict=True)]
            if weight:
                half = weight / 2
                for a in range(size):
                    if fa[a] or fb[a]:
                        for b in range(size):
                            M[a][b] += half * (fa[a] * fb[b] + fb[a] * fa[b])
        used += dims[k] if act.separable else 1
    if used != len(lam):
        raise ValueError(f"got {len(lam)} multipliers; the spec's form has {used}")
    return M


def lipsdp_certificate_holds(spec: NetworkSpec, multipliers: Any, rho: Any) -> bool:
    """Whether ``M(ρ, λ) ⪯ 0`` holds exactly for the spec's float64 data (hence ``L ≤ √ρ``)."""
    M = lipsdp_matrix(spec, multipliers, rho)
    return q.is_positive_semidefinite([[-x for x in row] for row in M])


__all__ = ["lipsdp_certificate_holds", "lipsdp_matrix"]
