"""Chains with input injection, and ``ρ(λ)`` by Schur-complement recursion along them.

For a chain with input injection (layer k reads state k − 1 and/or the input) the LipSDP matrix
``M(ρ, λ)`` of :mod:`.quadratic_form` is block-tridiagonal plus an arrow on ``y``; its cliques are
``{y, x_{k−1}, x_k}``. Eliminating ``x_1, x_2, …, x_K`` in turn by Schur complements gives the
smallest feasible ``ρ`` for given multipliers,

    ρ(λ) = λ_max(S(λ)),   S(λ) = A − B Z⁻¹ Bᵀ,

in ``O(K (m + n)³)`` instead of ``O((m + Kn)³)``. ``ρ(λ)`` is convex (a partial minimisation of the
jointly convex LMI). Its gradient follows from Danskin's theorem: with ``u`` the top eigenvector of
``S`` and ``ξ = (u, x_1, …, x_K)`` the maximiser of ``ξᵀM(0, λ)ξ`` over the states (obtained by back
substitution through the recursion), ``∂ρ/∂λ_i = (F_a ξ)_i (F_b ξ)_i`` — for neuron i of layer k,
``(z_i − αv_i)(βv_i − z_i)`` with ``z = x_k``, ``v = V_k u + W_k x_{k−1}``. Where the top eigenvalue is
(nearly) multiple the gradient of the smooth surrogate ``t·log Σ_j exp(μ_j/t)`` (μ_j the eigenvalues
of ``S``, ``t`` a temperature) is used instead: the same formula, averaged over eigenvectors with
softmax weights. Floating point throughout: these functions only propose multipliers, and
:func:`~.certificate.certify_multipliers` certifies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

from unfoldtheory.lipschitz.elimination import eliminate_linear_states
from unfoldtheory.spec import NetworkSpec


@dataclass(frozen=True)
class ChainLayer:
    V: np.ndarray  # (n_k, m), zeros when the layer does not read the input
    W: np.ndarray | None  # (n_k, n_{k−1}); None for the first layer
    alpha: np.ndarray  # (n_k,): per-neuron slope bounds
    beta: np.ndarray


def chain_layers(spec: NetworkSpec) -> tuple[list[ChainLayer], np.ndarray]:
    """The layers and read-out of a chain with input injection (identity states eliminated first)."""
    spec = eliminate_linear_states(spec)
    layers = []
    for k, (ws, act) in enumerate(zip(spec.weights, spec.activations, strict=True), start=1):
        if not act.separable:
            raise ValueError(f"layer {k}: this method needs separable activations ({act.name} is not)")
        for j in ws:
            if j not in (0, k - 1):
                raise ValueError(f"this method needs a chain with input injection; layer {k} reads state {j}")
        n = spec.dims[k]
        V = ws.get(0, np.zeros((n, spec.input_dim))) if k > 1 else ws[0]
        W = ws.get(k - 1, np.zeros((n, spec.dims[k - 1]))) if k > 1 else None
        alpha, beta = act.neuron_slopes(n)
        layers.append(ChainLayer(np.asarray(V), None if W is None else np.asarray(W), alpha, beta))
    if set(spec.readout) != {spec.num_layers}:
        raise ValueError(f"this method needs the read-out to read the last state only; it reads {sorted(spec.readout)}")
    return layers, spec.readout[spec.num_layers]


State = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]  # (Tyy, Tyx, Txx) on (y, x_k)
Eliminated = tuple[np.ndarray, np.ndarray, np.ndarray]  # (cholesky of −Kxx, Kyx, Kkx) of one elimination


def initial_state(layers: list[ChainLayer]) -> State:
    m = layers[0].V.shape[1]
    return np.zeros((m, m)), None, None


#: A pivot with ``L_ii² ≤ MIN_PIVOT_RATIO · A_ii`` counts as singular: such a block is negative definite only
#: within rounding, which the certificate's margin (:mod:`.certificate`) would refuse anyway. The ratio is
#: invariant under diagonal scaling, so multipliers of very different sizes are not penalised.
MIN_PIVOT_RATIO = 1e-9


def cholesky_lower(matrix: np.ndarray) -> np.ndarray | None:
    """Lower Cholesky factor of a symmetric positive definite matrix (LAPACK ``potrf`` called directly:
    these small factorisations run thousands of times per search); None if it is not positive definite,
    or only within rounding (a pivot below ``MIN_PIVOT_RATIO`` relative to its diagonal entry)."""
    factor, info = lapack.dpotrf(matrix, lower=1, clean=1)
    if info != 0:
        return None
    pivots = np.diagonal(factor)
    return factor if np.all(pivots * pivots > MIN_PIVOT_RATIO * np.diagonal(matrix)) else None


def forward_solve(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``L⁻¹ rhs`` for a lower-triangular ``L`` (LAPACK ``trtrs``)."""
    solution, info = lapack.dtrtrs(chol, rhs, lower=1)
    if info != 0:  # only a singular L (a zero pivot) or bad arguments; potrf never returns one
        raise ValueError(f"triangular solve failed (LAPACK info {info})")
    return solution


def _solve_chol(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``(L Lᵀ)⁻¹ rhs`` (LAPACK ``potrs``)."""
    solution, info = lapack.dpotrs(chol, rhs, lower=1)
    if info != 0:
        raise ValueError(f"Cholesky solve failed (LAPACK info {info})")
    return solution


def step(state: State, layer: ChainLayer, lam: np.ndarray, C: np.ndarray | None,
         state_factor: np.ndarray | None = None) -> tuple[State, Eliminated | None] | None:
    """Add layer k's terms (and ``CᵀC`` on x_k when given) and eliminate x_{k−1}; None if its block is
    not negative definite. The ``αβ`` terms vanish for the slope intervals ``[0, β]`` of soft-thresholding
    and ReLU, and are then skipped; the block to eliminate is then ``Txx`` itself, and a caller that has
    already factored ``−Txx`` passes the factor as ``state_factor``."""
    Tyy, Tyx, Txx = state
    V, W = layer.V, layer.W
    ab_lam = layer.alpha * layer.beta * lam
    ab = bool(np.any(ab_lam))
    mid_lam = (0.5 * (layer.alpha + layer.beta) * lam)[:, None]
    Kyy = Tyy - V.T @ (ab_lam[:, None] * V) if ab else Tyy
    Kky = mid_lam * V
    Kkk = C.T @ C if C is not None else np.zeros((lam.size, lam.size))
    Kkk.flat[:: lam.size + 1] -= lam  # the diagonal
    if Txx is None or W is None:
        return (Kyy, Kky.T, Kkk), None
    Kyx = Tyx - V.T @ (ab_lam[:, None] * W) if ab else Tyx
    Kxx = Txx - W.T @ (ab_lam[:, None] * W) if ab else Txx
    Kkx = mid_lam * W
    chol = state_factor if (state_factor is not None and not ab) else cholesky_lower(-Kxx)
    if chol is None:
        return None
    m = Kyx.shape[0]
    P = forward_solve(chol, np.hstack([Kyx.T, Kkx.T]))  # K_·x (−Kxx)⁻¹ K_x· = Pᵀ P
    Py, Pk = P[:, :m], P[:, m:]
    return (Kyy + Py.T @ Py, Kky.T + Py.T @ Pk, Kkk + Pk.T @ Pk), (chol, Kyx, Kkx)


def _eliminate_all(layers: list[ChainLayer], C: np.ndarray, lams: list[np.ndarray]):
    """Run the recursion; returns (S, chol of −Txx, Tyx, eliminations) or None if infeasible."""
    state: State = initial_state(layers)
    eliminated: list[Eliminated | None] = []
    for k, (layer, lam) in enumerate(zip(layers, lams, strict=True)):
        result = step(state, layer, lam, C if k == len(layers) - 1 else None)
        if result is None:
            return None
        state, elim = result
        eliminated.append(elim)
    Tyy, Tyx, Txx = state
    chol = cholesky_lower(-Txx)
    if chol is None:
        return None
    P = forward_solve(chol, Tyx.T)
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float64: no finite ρ from this recursion
        S = Tyy + P.T @ P
    if not np.all(np.isfinite(S)):
        return None
    return 0.5 * (S + S.T), chol, Tyx, eliminated


def schur_rho(layers: list[ChainLayer], C: np.ndarray, lams: list[np.ndarray]) -> float:
    """Smallest ρ with ``M(ρ, λ) ⪯ 0`` by eliminating x_1 … x_K in turn; ``inf`` if a state block is not
    negative definite. Floating point, not a certificate: :func:`certify_multipliers` certifies."""
    result = _eliminate_all(layers, C, lams)
    return np.inf if result is None else float(np.linalg.eigvalsh(result[0])[-1])


def schur_rho_gradient(layers: list[ChainLayer], C: np.ndarray, lams: list[np.ndarray],
                       temperature: float = 0.0) -> tuple[float, float, list[np.ndarray] | None]:
    """``(surrogate, ρ(λ), gradient per layer)``: the softmax surrogate at ``temperature`` (``ρ`` itself
    at 0) and its gradient (module docstring); ``(inf, inf, None)`` outside the domain."""
    result = _eliminate_all(layers, C, lams)
    if result is None:
        return np.inf, np.inf, None
    S, chol, Tyx, eliminated = result
    mu, U = np.linalg.eigh(S)
    if temperature > 0:
        weights = np.exp((mu - mu[-1]) / temperature)
        value = float(mu[-1] + temperature * np.log(weights.sum()))
        keep = weights > 1e-12 * weights.sum()
        U = U[:, keep] * np.sqrt(weights[keep] / weights.sum())
    else:
        value, U = float(mu[-1]), U[:, -1:]
    # back substitution: x_K = (−Txx)⁻¹ Tyxᵀ u, then x_{k−1} = (−Kxx)⁻¹ (Kyxᵀ u + Kkxᵀ x_k)
    states: list[np.ndarray] = [np.empty(0)] * len(layers)
    states[-1] = _solve_chol(chol, Tyx.T @ U)
    for k in range(len(layers) - 1, 0, -1):
        elim = eliminated[k]
        if elim is None:  # layer k does not read x_{k−1}: that state has no coupling forward
            states[k - 1] = np.zeros((layers[k - 1].V.shape[0], U.shape[1]))
            continue
        chol_k, Kyx, Kkx = elim
        states[k - 1] = _solve_chol(chol_k, Kyx.T @ U + Kkx.T @ states[k])
    grads = []
    for k, layer in enumerate(layers):
        v = layer.V @ U + (layer.W @ states[k - 1] if k > 0 and layer.W is not None else 0.0)
        z = states[k]
        grads.append(np.sum((z - layer.alpha[:, None] * v) * (layer.beta[:, None] * v - z), axis=1))
    return value, float(mu[-1]), grads
