"""``"sequential"``: closed-form, layer-by-layer LipSDP multipliers for chains with input injection.

In the spirit of ECLipsE-Fast (Xu & Sivaranjani, NeurIPS 2024), but on the spec's own graph: the
input y stays one block of the LipSDP matrix instead of being carried through identity neurons.
For a chain with input injection (layer k reads state k − 1 and/or the input), the matrix
``M(ρ, λ)`` of :mod:`.quadratic_form` is block-tridiagonal plus an arrow on y, so eliminating
``x_1, x_2, …, x_K`` in turn by Schur complements (:func:`schur_rho`) gives the smallest feasible
``ρ`` for given multipliers in ``O(K (m + n)³)`` — the cliques are ``{y, x_{k−1}, x_k}``.

Multipliers are one scalar per layer, ``λ_k = c_k · 2/(β_k² λ_max(W_k (−T_{k−1})⁻¹ W_kᵀ))``, where
``T_{k−1}`` is the eliminated state block so far (ECLipsE-Fast's choice keeps every Schur
complement negative definite: any factor below 2 would), and the factors ``c_k`` are tuned by a
coordinate search on ``log c_k`` that minimises ``ρ`` (starting from a global scale large enough
for the read-out term ``CᵀC``). The search only proposes; the bound is
certified by :func:`~.certificate.certify_multipliers` on the full matrix (dense, so up to
``max_check_size``), exactly as for the SDP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from unfoldtheory.lipschitz.certificate import certify_multipliers
from unfoldtheory.lipschitz.quadratic_form import eliminate_linear_states, quadratic_form
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec

QUANTITY = "Lipschitz constant of the input-output map (l2)"


@dataclass(frozen=True)
class ChainLayer:
    V: np.ndarray  # (n_k, m), zeros when the layer does not read the input
    W: np.ndarray | None  # (n_k, n_{k−1}); None for the first layer
    alpha: float
    beta: float


def chain_layers(spec: NetworkSpec) -> tuple[list[ChainLayer], np.ndarray]:
    """The layers and read-out of a chain with input injection (identity states eliminated first)."""
    spec = eliminate_linear_states(spec)
    layers = []
    for k, (ws, act) in enumerate(zip(spec.weights, spec.activations, strict=True), start=1):
        if not act.separable:
            raise ValueError(f"layer {k}: the sequential method needs separable activations ({act.name} is not)")
        for j in ws:
            if j not in (0, k - 1):
                raise ValueError(f"the sequential method needs a chain with input injection; layer {k} reads state {j}")
        n = spec.dims[k]
        V = ws.get(0, np.zeros((n, spec.input_dim))) if k > 1 else ws[0]
        W = ws.get(k - 1, np.zeros((n, spec.dims[k - 1]))) if k > 1 else None
        alpha, beta = act.slope_interval
        layers.append(ChainLayer(np.asarray(V), None if W is None else np.asarray(W), alpha, beta))
    if set(spec.readout) != {spec.num_layers}:
        raise ValueError(f"the sequential method needs the read-out to read the last state only; it reads {sorted(spec.readout)}")
    return layers, spec.readout[spec.num_layers]


State = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]  # (Tyy, Tyx, Txx) on (y, x_k)


def _step(state: State, layer: ChainLayer, lam: np.ndarray, C: np.ndarray | None) -> State | None:
    """Add layer k's terms (and ``CᵀC`` on x_k when given) and eliminate x_{k−1}; None if its block is
    not negative definite."""
    Tyy, Tyx, Txx = state
    a, b = layer.alpha, layer.beta
    V, W = layer.V, layer.W
    Kyy = Tyy - a * b * V.T @ (lam[:, None] * V)
    Kky = 0.5 * (a + b) * lam[:, None] * V
    Kkk = -np.diag(lam) + (C.T @ C if C is not None else 0.0)
    if Txx is None or W is None:
        return Kyy, Kky.T, Kkk
    Kyx = Tyx - a * b * V.T @ (lam[:, None] * W)
    Kxx = Txx - a * b * W.T @ (lam[:, None] * W)
    Kkx = 0.5 * (a + b) * lam[:, None] * W
    try:
        chol = np.linalg.cholesky(-Kxx)
    except np.linalg.LinAlgError:
        return None
    Py, Pk = np.linalg.solve(chol, Kyx.T), np.linalg.solve(chol, Kkx.T)  # K_·x (−Kxx)⁻¹ K_x· = Pᵀ P
    return Kyy + Py.T @ Py, Kky.T + Py.T @ Pk, Kkk + Pk.T @ Pk


def _final_rho(state: State | None) -> float:
    if state is None:
        return np.inf
    Tyy, Tyx, Txx = state
    try:
        chol = np.linalg.cholesky(-Txx)
    except np.linalg.LinAlgError:
        return np.inf
    P = np.linalg.solve(chol, Tyx.T)
    S = Tyy + P.T @ P
    return float(np.linalg.eigvalsh(0.5 * (S + S.T))[-1])


def _initial(layers: list[ChainLayer]) -> State:
    m = layers[0].V.shape[1]
    return np.zeros((m, m)), None, None


def schur_rho(layers: list[ChainLayer], C: np.ndarray, lams: list[np.ndarray]) -> float:
    """Smallest ρ with ``M(ρ, λ) ⪯ 0`` by eliminating x_1 … x_K in turn; ``inf`` if a state block is not
    negative definite. Floating point, not a certificate: :func:`certify_multipliers` certifies."""
    state: State | None = _initial(layers)
    for k, (layer, lam) in enumerate(zip(layers, lams, strict=True)):
        state = _step(state, layer, lam, C if k == len(layers) - 1 else None)
        if state is None:
            return np.inf
    return _final_rho(state)


def sequential_multipliers(layers: list[ChainLayer], C: np.ndarray, factors: np.ndarray) -> list[np.ndarray] | None:
    """ECLipsE-style scalar multipliers ``λ_k = c_k · 2/(β² λ_max(W_k (−T_{k−1})⁻¹ W_kᵀ))`` along the
    recursion (``λ_1 = c_1``); None if a state block stops being negative definite."""
    state: State | None = _initial(layers)
    lams: list[np.ndarray] = []
    for k, layer in enumerate(layers):
        Txx = state[2]
        base = 1.0
        if Txx is not None and layer.W is not None:
            try:
                chol = np.linalg.cholesky(-Txx)
            except np.linalg.LinAlgError:
                return None
            Q = np.linalg.solve(chol, layer.W.T)  # W (−Txx)⁻¹ Wᵀ = QᵀQ
            top = float(np.linalg.eigvalsh(Q.T @ Q)[-1]) * layer.beta**2
            # a (numerically) zero W puts no constraint on λ_k; 1 then, and the search scales it
            base = 2.0 / top if top > 1e-12 else 1.0
        lams.append(np.full(layer.V.shape[0], factors[k] * base))
        state = _step(state, layer, lams[-1], C if k == len(layers) - 1 else None)
        if state is None:
            return None
    return lams


def _rho_of(layers: list[ChainLayer], C: np.ndarray, log_factors: np.ndarray) -> tuple[float, list[np.ndarray] | None]:
    lams = sequential_multipliers(layers, C, np.exp(log_factors))
    return (np.inf, None) if lams is None else (schur_rho(layers, C, lams), lams)


def sequential_bound(spec: NetworkSpec, sweeps: int = 3, max_check_size: int = 3000) -> Bound:
    """Certified upper bound from layer-by-layer multipliers (module docstring).

    ``sweeps`` rounds of a coordinate search over ``log c_k`` on the grid ±{2, 1, ½, ¼}; the
    multipliers found are certified on the full matrix when it has at most ``max_check_size`` rows
    (otherwise the value is returned uncertified, with the reason).
    """
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"sequential_bound takes a NetworkSpec, got {type(spec).__name__}")
    start = time.perf_counter()
    layers, C = chain_layers(spec)
    K = len(layers)
    logs = np.zeros(K)
    best, lams = _rho_of(layers, C, logs)
    evaluations = 1
    # Raise the factors until the read-out term CᵀC is dominated: first c_1 alone, which scales every
    # later multiplier when the layers are coupled, then (uncoupled layers, W ≈ 0) all of them.
    for raise_all in (False, True):
        if raise_all and not np.isfinite(best):
            logs = np.zeros(K)  # c_1 alone did not help: start again from 1 and raise every factor
        for _ in range(60):
            if np.isfinite(best):
                break
            if raise_all:
                logs += np.log(4.0)
            else:
                logs[0] += np.log(4.0)
            best, lams = _rho_of(layers, C, logs)
            evaluations += 1
    for _ in range(sweeps):
        for step in (2.0, 1.0, 0.5, 0.25):
            for k in range(K):
                for sign in (1.0, -1.0):
                    trial = logs.copy()
                    trial[k] += sign * step
                    value, trial_lams = _rho_of(layers, C, trial)
                    evaluations += 1
                    if value < best:
                        best, lams, logs = value, trial_lams, trial
    details = {"search_rho": best, "evaluations": evaluations, "factors": np.exp(logs)}
    if lams is None or not np.isfinite(best):
        return Bound(np.inf, "upper", QUANTITY, "sequential", False, None, time.perf_counter() - start,
                     {**details, "check": "no multipliers kept every Schur complement negative definite"})
    form = quadratic_form(spec)
    multipliers = np.concatenate(lams)
    if form.size > max_check_size:
        return Bound(float(np.sqrt(max(best, 0.0))), "upper", QUANTITY, "sequential", False,
                     {"multipliers": multipliers}, time.perf_counter() - start,
                     {**details, "check": f"not certified: the dense check is limited to {max_check_size} rows "
                                          f"and the matrix has {form.size}"})
    check = certify_multipliers(form, multipliers)
    value = check.bound if check.ok else np.inf
    return Bound(value, "upper", QUANTITY, "sequential", check.ok, {"multipliers": multipliers, "rho": check.rho},
                 time.perf_counter() - start, {**details, "check": check.reason, "rounding_margin": check.margin})
