"""The quadratic form behind LipSDP-Neuron, built from a :class:`NetworkSpec`'s graph.

Identity-activation states are linear and are first substituted into the states and read-out that
use them (:func:`eliminate_linear_states`), so that every remaining state has a genuine slope
restriction. With ``ξ = (Δy, Δz_1, …, Δz_N)`` the differences of two evaluations,

* ``Δz_k = E_k ξ``  (selection),  ``Δv_k = P_k ξ = Σ_j W_kj Δz_j``  (pre-activation),
* ``Δout = C ξ``  (read-out).

Every neuron i of a separable layer with slopes ``[α, β]`` satisfies
``(Δz_i − αΔv_i)(βΔv_i − Δz_i) ≥ 0``; a non-separable firmly nonexpansive block satisfies
``⟨Δz, Δv⟩ − ‖Δz‖² ≥ 0`` (Fazlyab et al., NeurIPS 2019, LipSDP-Neuron; one scalar per
non-separable block, never the coupled "LipSDP-Network" multipliers, which are invalid in
general — Pauli et al. 2021). Stacking the neuron rows gives ``F_a = E − αP`` and
``F_b = βP − E``, and for multipliers ``λ ≥ 0``

    M(ρ, λ) = CᵀC − ρ E_0ᵀE_0 + ½(F_aᵀ diag(λ) F_b + F_bᵀ diag(λ) F_a).

If ``M(ρ, λ) ⪯ 0`` then ``‖Δout‖² ≤ ρ‖Δy‖²`` for every pair of inputs (S-procedure), so
``L ≤ √ρ`` (``proofs/lipsdp_certificate.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unfoldtheory.activations import Identity
from unfoldtheory.spec import Layer, NetworkSpec


def eliminate_linear_states(spec: NetworkSpec) -> NetworkSpec:
    """A spec without identity-activation states with the same Jacobians and output differences.

    Each identity state ``z_k = Σ_j W_kj z_j + b_k`` is substituted into its consumers and into the
    read-out; the output may differ by a constant (dropped biases), which no Lipschitz analysis sees.
    Returns ``spec`` itself when there is nothing to eliminate.
    """
    if not any(isinstance(a, Identity) for a in spec.activations):
        return spec
    # expr[k] = (dict kept_state -> matrix, offset): state k as an affine map of kept states
    expr: dict[int, tuple[dict[int, np.ndarray], np.ndarray]] = {0: ({0: np.eye(spec.input_dim)}, np.zeros(spec.input_dim))}
    new_index = {0: 0}
    layers: list[Layer] = []

    def compose(terms: dict[int, np.ndarray], bias: np.ndarray) -> tuple[dict[int, np.ndarray], np.ndarray]:
        out: dict[int, np.ndarray] = {}
        offset = bias.copy()
        for j, W in terms.items():
            sub, off = expr[j]
            offset = offset + W @ off
            for i, S in sub.items():
                out[i] = out[i] + W @ S if i in out else W @ S
        return out, offset

    for k, (ws, b, act) in enumerate(zip(spec.weights, spec.biases, spec.activations, strict=True), start=1):
        terms, offset = compose(ws, b)
        if isinstance(act, Identity):
            expr[k] = (terms, offset)
            continue
        idx = len(layers) + 1
        layers.append(Layer({new_index[i]: W for i, W in terms.items()}, act, offset, spec.dims[k]))
        new_index[k] = idx
        expr[k] = ({k: np.eye(spec.dims[k])}, np.zeros(spec.dims[k]))
    # A constant offset of the output (from biases of eliminated states) does not change any
    # difference f(y1) − f(y2), so the read-out keeps only the linear part.
    readout_terms, _ = compose(spec.readout, np.zeros(spec.output_dim))
    if not layers:
        raise ValueError("the spec is linear (every activation is the identity): its Lipschitz constant is ‖J‖₂")
    readout = {new_index[i]: C for i, C in readout_terms.items()}
    return NetworkSpec(spec.input_dim, layers, readout, name=f"{spec.name} (linear states eliminated)")


@dataclass(frozen=True)
class QuadraticForm:
    """The pieces of ``M(ρ, λ)``: ``CᵀC``, the input block size ``m``, and the rows ``F_a``, ``F_b``
    grouped by multiplier (``groups[g]`` lists the rows that share multiplier g)."""

    CtC: np.ndarray
    m: int
    Fa: np.ndarray
    Fb: np.ndarray
    groups: list[np.ndarray]
    labels: list[str]

    @property
    def size(self) -> int:
        return self.CtC.shape[0]

    @property
    def num_multipliers(self) -> int:
        return len(self.groups)

    def row_weights(self, lam: np.ndarray) -> np.ndarray:
        """The multiplier of each row of ``F_a``/``F_b``."""
        w = np.empty(self.Fa.shape[0])
        for g, rows in enumerate(self.groups):
            w[rows] = lam[g]
        return w

    def matrix(self, rho: float, lam: np.ndarray) -> np.ndarray:
        """``M(ρ, λ)`` in float64."""
        w = self.row_weights(lam)
        S = self.Fa.T @ (w[:, None] * self.Fb)
        M = self.CtC + 0.5 * (S + S.T)
        M[: self.m, : self.m] -= rho * np.eye(self.m)
        return M

    def magnitude(self, rho: float, lam: np.ndarray) -> np.ndarray:
        """Entrywise bound on the absolute values summed while assembling ``M`` (for rounding margins)."""
        w = np.abs(self.row_weights(lam))
        S = np.abs(self.Fa).T @ (w[:, None] * np.abs(self.Fb))
        Mabs = np.abs(self.CtC) + 0.5 * (S + S.T)
        Mabs[: self.m, : self.m] += abs(rho) * np.eye(self.m)
        return Mabs


def quadratic_form(spec: NetworkSpec) -> QuadraticForm:
    """Build the LipSDP-Neuron quadratic form of ``spec`` (identity states eliminated first)."""
    spec = eliminate_linear_states(spec)
    offsets = np.concatenate([[0], np.cumsum(spec.dims)])
    D = int(offsets[-1])
    C = np.zeros((spec.output_dim, D))
    for k, Ck in spec.readout.items():
        C[:, offsets[k]: offsets[k + 1]] += Ck
    Fa_rows, Fb_rows, groups, labels = [], [], [], []
    row = 0
    for k, (ws, act) in enumerate(zip(spec.weights, spec.activations, strict=True), start=1):
        d = spec.dims[k]
        E = np.zeros((d, D))
        E[:, offsets[k]: offsets[k + 1]] = np.eye(d)
        P = np.zeros((d, D))
        for j, W in ws.items():
            P[:, offsets[j]: offsets[j + 1]] += W
        if act.separable:
            alpha, beta = act.slope_interval
            Fa_rows.append(E - alpha * P)
            Fb_rows.append(beta * P - E)
            groups += [np.array([row + i]) for i in range(d)]
            labels += [f"layer {k} neuron {i}" for i in range(d)]
        elif act.firmly_nonexpansive:
            # ⟨Δz, Δv⟩ − ‖Δz‖² = Σ_i Δz_i (Δv_i − Δz_i): rows of E and P − E with one shared multiplier
            Fa_rows.append(E)
            Fb_rows.append(P - E)
            groups.append(np.arange(row, row + d))
            labels.append(f"layer {k} (block)")
        else:
            raise ValueError(f"layer {k}: activation {act.name} is neither separable nor firmly nonexpansive; "
                             "LipSDP has no valid constraint for it")
        row += d
    return QuadraticForm(C.T @ C, spec.input_dim, np.vstack(Fa_rows), np.vstack(Fb_rows), groups, labels)
