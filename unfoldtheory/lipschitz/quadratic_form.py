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
from functools import cached_property

import numpy as np
from scipy import sparse

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
    """The pieces of ``M(ρ, λ)``, stored sparse: ``CᵀC``, the input block size ``m``, the rows ``F_a``,
    ``F_b`` grouped by multiplier (``groups[g]`` lists the rows that share multiplier g), and the block
    boundaries ``offsets`` of ``ξ = (Δy, Δz_1, …, Δz_N)`` (block k is ``offsets[k]:offsets[k+1]``)."""

    CtC: sparse.csr_matrix
    m: int
    Fa: sparse.csr_matrix
    Fb: sparse.csr_matrix
    groups: list[np.ndarray]
    labels: list[str]
    offsets: np.ndarray
    outputs: int

    @property
    def size(self) -> int:
        return self.CtC.shape[0]

    @property
    def num_multipliers(self) -> int:
        return len(self.groups)

    @property
    def terms(self) -> int:
        """The most products summed into one entry of ``M`` (for rounding margins)."""
        # an entry of Fᵀ_a diag(λ) F_b sums one product per row of F_a touching its column; an entry of CᵀC
        # one per output; the rest (halving, the two sums, the shift by ρ, α·W in F) is covered by + 6
        return int(np.diff(self.Fa.tocsc().indptr).max(initial=0)) + self.outputs + 6

    @cached_property
    def group_matrix(self) -> sparse.csr_matrix:
        """``G`` (rows × multipliers) with ``G[r, g] = 1`` when row r of ``F_a``/``F_b`` has multiplier g."""
        rows = np.concatenate(self.groups)
        cols = np.concatenate([np.full(len(g), i) for i, g in enumerate(self.groups)])
        return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(self.Fa.shape[0], self.num_multipliers))

    def row_weights(self, lam: np.ndarray) -> np.ndarray:
        """The multiplier of each row of ``F_a``/``F_b``: ``Gλ``."""
        return self.group_matrix @ np.asarray(lam, dtype=float)

    def sparse_matrix(self, rho: float, lam: np.ndarray) -> sparse.csr_matrix:
        """``M(ρ, λ)`` in float64, sparse."""
        S = self.Fa.T @ sparse.diags(self.row_weights(lam)) @ self.Fb
        M = self.CtC + 0.5 * (S + S.T)
        return (M - rho * self._input_identity()).tocsr()

    def sparse_magnitude(self, rho: float, lam: np.ndarray) -> sparse.csr_matrix:
        """Entrywise bound on the absolute values summed while assembling ``M`` (for rounding margins)."""
        S = abs(self.Fa).T @ sparse.diags(np.abs(self.row_weights(lam))) @ abs(self.Fb)
        return (abs(self.CtC) + 0.5 * (S + S.T) + abs(rho) * self._input_identity()).tocsr()

    def matrix(self, rho: float, lam: np.ndarray) -> np.ndarray:
        """``M(ρ, λ)`` as a dense float64 array (small forms only)."""
        return self.sparse_matrix(rho, lam).toarray()

    def _input_identity(self) -> sparse.csr_matrix:
        diag = np.zeros(self.size)
        diag[: self.m] = 1.0
        return sparse.diags(diag).tocsr()


def quadratic_form(spec: NetworkSpec) -> QuadraticForm:
    """Build the LipSDP-Neuron quadratic form of ``spec`` (identity states eliminated first)."""
    spec = eliminate_linear_states(spec)
    offsets = np.concatenate([[0], np.cumsum(spec.dims)]).astype(int)
    D = int(offsets[-1])
    C = sparse.hstack([sparse.csr_matrix(spec.readout[k]) if k in spec.readout else sparse.csr_matrix((spec.output_dim, d))
                       for k, d in enumerate(spec.dims)]).tocsr()
    Fa_rows, Fb_rows, groups, labels = [], [], [], []
    row = 0
    for k, (ws, act) in enumerate(zip(spec.weights, spec.activations, strict=True), start=1):
        d = spec.dims[k]
        E = sparse.csr_matrix((np.ones(d), (np.arange(d), offsets[k] + np.arange(d))), shape=(d, D))
        P = sparse.hstack([sparse.csr_matrix(ws[j]) if j in ws else sparse.csr_matrix((d, dj))
                           for j, dj in enumerate(spec.dims)]).tocsr()
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
    Fa, Fb = sparse.vstack(Fa_rows).tocsr(), sparse.vstack(Fb_rows).tocsr()
    Fa.eliminate_zeros()
    Fb.eliminate_zeros()
    return QuadraticForm((C.T @ C).tocsr(), spec.input_dim, Fa, Fb, groups, labels, offsets, spec.output_dim)
