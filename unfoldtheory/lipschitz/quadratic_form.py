"""The quadratic form behind LipSDP-Neuron, built from a :class:`NetworkSpec`'s graph.

Identity-activation states are linear and are first substituted into the states and read-out that
use them (:mod:`.elimination`), so that every remaining state has a genuine slope restriction. The
combined weights are rounded; their entrywise error bounds travel with the form (``Ra``, ``Rb``, ``RC``)
and :meth:`QuadraticForm.sparse_perturbation` turns them into a bound on the error of ``M`` that the
certificate covers. With ``ξ = (Δy, Δz_1, …, Δz_N)`` the differences of two evaluations,

* ``Δz_k = E_k ξ``  (selection),  ``Δv_k = P_k ξ = Σ_j W_kj Δz_j``  (pre-activation),
* ``Δout = C ξ``  (read-out).

Every neuron i of a separable layer with slopes ``[α_i, β_i]`` (the layer's declared interval, or per
neuron when :class:`~unfoldtheory.activations.RegionSlopes` narrows them over a region) satisfies
``(Δz_i − α_iΔv_i)(β_iΔv_i − Δz_i) ≥ 0``; a non-separable firmly nonexpansive block satisfies
``⟨Δz, Δv⟩ − ‖Δz‖² ≥ 0`` (Fazlyab et al., NeurIPS 2019, LipSDP-Neuron; one scalar per
non-separable block, never the coupled "LipSDP-Network" multipliers, which are invalid in
general — Pauli et al. 2021). Stacking the neuron rows gives ``F_a = E − diag(α)P`` and
``F_b = diag(β)P − E``, and for multipliers ``λ ≥ 0``

    M(ρ, λ) = CᵀC − ρ E_0ᵀE_0 + ½(F_aᵀ diag(λ) F_b + F_bᵀ diag(λ) F_a).

If ``M(ρ, λ) ⪯ 0`` then ``‖Δout‖² ≤ ρ‖Δy‖²`` for every pair of inputs (S-procedure), so
``L ≤ √ρ`` (``proofs/lipsdp_certificate.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse

from unfoldtheory.lipschitz.elimination import eliminate_identity_states
from unfoldtheory.lipschitz.norms import gamma_bound as _gamma
from unfoldtheory.spec import NetworkSpec


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
    C: sparse.csr_matrix | None = None  # the read-out rows (CtC = CᵀC)
    Ra: sparse.csr_matrix | None = None  # entrywise bounds |F_a,true − F_a| (None: exact)
    Rb: sparse.csr_matrix | None = None  # entrywise bounds |F_b,true − F_b|
    RC: sparse.csr_matrix | None = None  # entrywise bounds |C_true − C|

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

    def sparse_perturbation(self, lam: np.ndarray) -> sparse.csr_matrix | None:
        """Entrywise bound on ``|M_true(ρ, λ) − M(ρ, λ)|`` in exact arithmetic, where ``M_true`` is built from the
        exact combined weights of the eliminated identity states (None when there are none to round).

        With ``|ΔF_a| ≤ R_a``, ``|ΔF_b| ≤ R_b``, ``|ΔC| ≤ R_C``: ``F_a,trueᵀΛF_b,true − F_aᵀΛF_b =
        F_aᵀΛΔF_b + ΔF_aᵀΛF_b + ΔF_aᵀΛΔF_b`` and ``C_trueᵀC_true − CᵀC = CᵀΔC + ΔCᵀC + ΔCᵀΔC``; the triangle
        inequality bounds each entry (ρ enters exactly). Evaluated from nonnegative terms, so multiplied by
        ``1 + 2γ`` for its own rounding."""
        if self.Ra is None and self.RC is None:
            return None
        P = sparse.csr_matrix((self.size, self.size))
        if self.Ra is not None:
            weights = sparse.diags(np.abs(self.row_weights(lam)))
            S = abs(self.Fa).T @ weights @ self.Rb + self.Ra.T @ weights @ abs(self.Fb) + self.Ra.T @ weights @ self.Rb
            P = 0.5 * (S + S.T)
        if self.RC is not None:
            aC = abs(self.C)
            P = P + aC.T @ self.RC + self.RC.T @ aC + self.RC.T @ self.RC
        inner = max(self.Fa.shape[0], self.C.shape[0]) + 8
        return (P * (1 + 2 * _gamma(inner))).tocsr()

    def matrix(self, rho: float, lam: np.ndarray) -> np.ndarray:
        """``M(ρ, λ)`` as a dense float64 array (small forms only)."""
        return self.sparse_matrix(rho, lam).toarray()

    def _input_identity(self) -> sparse.csr_matrix:
        diag = np.zeros(self.size)
        diag[: self.m] = 1.0
        return sparse.diags(diag).tocsr()


def _blocks(spec: NetworkSpec, parts: dict[int, np.ndarray], rows: int) -> sparse.csr_matrix:
    """The row block ``[parts[0], parts[1], …]`` over ``ξ = (y, z_1, …, z_N)`` (zeros where a state is absent),
    with the nonzero entries of each dense part, gathered at once (one sparse matrix per part and a stack
    of them cost ten times as much in scipy's bookkeeping)."""
    offsets = np.concatenate([[0], np.cumsum(spec.dims)]).astype(int)
    r, c, v = [np.zeros(0, dtype=int)], [np.zeros(0, dtype=int)], [np.zeros(0)]
    for j, part in parts.items():
        i, k = np.nonzero(part)
        r.append(i)
        c.append(k + offsets[j])
        v.append(np.asarray(part)[i, k])
    return sparse.csr_matrix((np.concatenate(v), (np.concatenate(r), np.concatenate(c))), shape=(rows, int(offsets[-1])))


def quadratic_form(spec: NetworkSpec) -> QuadraticForm:
    """Build the LipSDP-Neuron quadratic form of ``spec`` (identity states eliminated first, with the
    error bounds of the elimination)."""
    elimination = eliminate_identity_states(spec)
    spec = elimination.spec
    offsets = np.concatenate([[0], np.cumsum(spec.dims)]).astype(int)
    D = int(offsets[-1])
    C = _blocks(spec, spec.readout, spec.output_dim)
    Fa_rows, Fb_rows, Ra_rows, Rb_rows, groups, labels = [], [], [], [], [], []
    row = 0
    for k, (ws, act) in enumerate(zip(spec.weights, spec.activations, strict=True), start=1):
        d = spec.dims[k]
        E = sparse.csr_matrix((np.ones(d), (np.arange(d), offsets[k] + np.arange(d))), shape=(d, D))
        P = _blocks(spec, ws, d)
        R = _blocks(spec, elimination.weight_errors[k - 1], d)
        if act.separable:
            alpha, beta = act.neuron_slopes(d)  # per neuron: narrowed over a region by RegionSlopes
            A, B = sparse.diags(alpha), sparse.diags(beta)
            Fa_rows.append(E - A @ P)
            Fb_rows.append(B @ P - E)
            Ra_rows.append(abs(A) @ R)
            Rb_rows.append(abs(B) @ R)
            groups += [np.array([row + i]) for i in range(d)]
            labels += [f"layer {k} neuron {i}" for i in range(d)]
        elif act.firmly_nonexpansive:
            # ⟨Δz, Δv⟩ − ‖Δz‖² = Σ_i Δz_i (Δv_i − Δz_i): rows of E and P − E with one shared multiplier
            Fa_rows.append(E)
            Fb_rows.append(P - E)
            Ra_rows.append(sparse.csr_matrix((d, D)))
            Rb_rows.append(R)
            groups.append(np.arange(row, row + d))
            labels.append(f"layer {k} (block)")
        else:
            raise ValueError(f"layer {k}: activation {act.name} is neither separable nor firmly nonexpansive; "
                             "LipSDP has no valid constraint for it")
        row += d
    Fa, Fb = sparse.vstack(Fa_rows).tocsr(), sparse.vstack(Fb_rows).tocsr()
    Fa.eliminate_zeros()
    Fb.eliminate_zeros()
    errors = {}
    if not elimination.exact:
        # |α|·R and |β|·R round: one more relative ε (the perturbation bound's own 1 + 2γ covers it)
        errors = {"Ra": sparse.vstack(Ra_rows).tocsr(), "Rb": sparse.vstack(Rb_rows).tocsr(),
                  "RC": _blocks(spec, elimination.readout_errors, spec.output_dim) if elimination.readout_errors else None}
    return QuadraticForm((C.T @ C).tocsr(), spec.input_dim, Fa, Fb, groups, labels, offsets, spec.output_dim, C=C, **errors)
