"""Spectrally-normalised bounds for unrolled networks: Bartlett–Foster–Telgarsky (2017) covering and
Neyshabur–Bhojanapalli–Srebro (2018) PAC-Bayes, adapted to the clipped squared loss.

Both work on the *unrolled chain* of ``model.spec()`` (:func:`unrolled_chain`):
``x_0 = 0``, ``x_k = ST_{θ_k}(W_k x_{k−1} + V_k y)`` (``W_1`` absent), output ``x_K``, with one scalar
threshold per layer (UnfoldedISTA, ALISTA, LISTA, LISTA-CP). The learned block of layer k is the one
matrix ``[W_k V_k]``; fixed parts (``A``, ALISTA's ``W̃``) enter through the reference and the norms.
The loss is ``ℓ_b = min(‖h(y) − x‖², b)`` (:mod:`.rademacher`). Norms are rigorous float64 upper bounds
(:func:`~unfoldtheory.lipschitz.norms.spectral_norm_upper`); products formed in float64 carry a
relative margin of 1e-10.

**Spectral (covering) bound** — :func:`spectral_bound`. The papers' statements could not be read in
full here (only abstracts; the constants of BFT's Lemma A.8,
``R ≤ 4/n + 9 log(n)/√n √log(2W) (Σ C̃_i^{2/3})^{3/2}``, were checked against the documented
implementation ``rkwitt/excess_capacity``, ``bounds/rademacher_bounds_docu.md``). The chain below is
re-derived, with its own constants:

1. *Matrix covering (Maurey sparsification, BFT Lemma 3.2 with p = 2, s = 1).* For a data matrix ``Z``
   (rows = samples) and ``Δ`` with ``‖Δᵀ‖_{2,1} = Σ_rows ‖Δ_{j,:}‖ ≤ β``, ``ZΔᵀ`` lies in the convex hull
   of the ``2 d_in d_out`` matrices ``±β‖Z‖_F (Ze_i)e_jᵀ/‖Ze_i‖``; Maurey's lemma gives an ε-cover (normalised
   Frobenius, ``‖·‖_F/√m``) with ``log N ≤ ⌈β²D²/ε²⌉ log(2 d_in d_out)``, ``D = ‖Z‖_F/√m``. An internal cover
   (elements in the class, so their norms obey the class bounds) at ε costs the external one at ε/2.
2. *Chain (BFT Lemma A.7 with input injection).* Class: ``‖W_k‖ ≤ s_k``, ``‖V_k‖ ≤ u_k``,
   ``‖([W_k V_k] − M_k)ᵀ‖_{2,1} ≤ β_k`` (``M_k`` the reference, default the data-free initialisation),
   ``θ_k ∈ [0, τ_k]``. With ``D_y = ‖Y‖_F/√m``, ``N_0 = 0``, ``N_k = s_k N_{k−1} + u_k D_y`` (``‖ST(v)‖ ≤ ‖v‖``)
   the input of layer k has ``D_k = √(N_{k−1}² + D_y²)``. Covering layer k at ``ε_k`` around the previous
   cover element and the thresholds on a grid of half-spacing ``η_k`` gives the output error
   ``Σ_k P_k(ε_k + √n η_k)``, ``P_k = Π_{j>k} s_j`` (ST is 1-Lipschitz in v and moves by ≤ |Δθ| per
   coordinate). Half of ε to the matrices (optimal split ``ε_k ∝ (β_k²D_k²L_k)^{1/3}P_k^{−1/3}``), half to
   the thresholds (equal per layer):
   ``log N_out(ε) ≤ 4(Σ_k (4β_k²D_k²P_k²L_k)^{1/3})³/ε² + Σ_k L_k + Σ_k log max(1, ⌈τ_k K√n P_k/ε⌉)``,
   ``L_k = log(2 d_in d_out)``.
3. *Loss.* ``ℓ_b`` is ``2√b``-Lipschitz, so ``N_loss(ε) ≤ N_out(ε/(2√b))``; chaining with ``c = b/2`` and
   the gap ``2R̂ + 3b√(log(2/δ')/(2m))`` (:mod:`.rademacher`). The radii ``s, u, β, τ`` are the model's own
   values rounded up on dyadic grids (bases from the data-free initialisation), so
   ``δ' = δ·Π_q 1/((j_q + 1)(j_q + 2))``; explicit ``radii`` are used as given (``δ' = δ``).

*Weight sharing.* Each layer's learned block is covered once as one matrix (in the step-size models the
shared scalar ``γ_k`` of ``W_k`` and ``V_k`` is one perturbation of one block). The Maurey cover depends on
the layer's input, so a matrix tied across layers (none of the supported models has one) would still
be covered once per layer; BFT counts no parameters, only ``log W``.

**Spectral PAC-Bayes bound** — :func:`spectral_pac_bayes_bound` (Neyshabur et al. 2018: a Gaussian
perturbation whose effect is controlled by the layers' spectral norms (their Lemma 2) turns a PAC-Bayes
bound for the perturbed network into one for the network itself (their Lemma 1); recalled, the paper
could not be read here, so the adaptation below is re-derived):

1. *Posterior and prior over the distinct parameters* (counted once): ``Q = N(θ̂, σ² diag r²)``,
   ``P = N(θ_init, σ² diag r²)`` (``r`` per tensor, :func:`~unfoldtheory.generalization.pac_bayes.reference_scale`),
   ``KL = Σ_i (θ̂_i − θ_init,i)²/(2σ²r_i²)``; σ from a grid (union bound).
2. *Good event G.* Each tensor's perturbation has ``‖Δ_p‖ ≤ ω_p`` (scalars: ``|Δ| ≤ σr z`` with
   ``2Φ̄(z) = q``; d₁×d₂ matrices: spectral norm ``≤ σr(√d₁ + √d₂ + √(2 log(1/q)))``, Gordon's
   ``E‖G‖ ≤ √d₁ + √d₂`` and Gaussian concentration), ``q = 1/(2·#tensors)``, so ``Q(G) ≥ 1/2``.
3. *Perturbation bound (Neyshabur Lemma 2, here with input injection and thresholds).* On G, for
   every y: ``‖h_θ(y) − h_θ̂(y)‖ ≤ κ‖y‖ + τ`` with
   ``κ = Σ_k P'_k ω^J_k √(X_{k−1}² + 1)``, ``τ = √n Σ_k P'_k ω^θ_k``, ``P'_k = Π_{j>k}(s_j + ω^W_j)``, where
   ``ω^W_k ≥ ‖ΔW_k‖``, ``ω^J_k ≥ ‖Δ[W_k V_k]‖`` come from the tensors' ``ω_p`` through each model's
   layer maps and ``X_k ≥ ‖x_k‖/‖y‖`` (``X_k = min(s_k X_{k−1} + u_k, j_k√(X_{k−1}² + 1))``).
4. *Derandomisation for the squared loss* (``proofs/clipped_square_loss.py``): if ``|a − a'| ≤ d`` then
   ``min(a², b) ≤ (1 + t)min(a'², b) + min((1 + 1/t)d², b)``. With ``g(y) = min((1 + 1/t)(κ‖y‖ + τ)², b)``
   and ``Q' = Q|G``: ``E ℓ_b(θ̂) ≤ (1 + t) E_{Q'} E ℓ_b + E g`` and ``E_{Q'} L̂_b ≤ (1 + t) L̂_b(θ̂) + ĝ``.
5. *PAC-Bayes-kl for Q'* with ``KL(Q'‖P) ≤ (KL(Q‖P) + 1/e)/Q(G) + log(1/Q(G))`` (from
   ``x log x ≥ −1/e``), and Hoeffding-kl for ``E g`` (``κ, τ`` rounded up on dyadic grids, ``g`` is
   increasing in them): with probability ≥ 1 − δ (δ/2 each),
   ``E ℓ_b(θ̂) ≤ (1 + t)·b·kl⁻¹(((1 + t)L̂_b(θ̂) + ĝ)/b, C') + b·kl⁻¹(ĝ/b, log(1/δ_g)/m)``.

This bounds the deterministic model (no Monte Carlo). σ and t are chosen from grids.

**Certification.** Neither bound is certified (``details["reason"]``): :data:`COVERING_UNPROVEN` and
:data:`PAC_BAYES_UNPROVEN` name the steps that still lack a directed-rounding argument.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import norm as normal
from torch import nn

from unfoldtheory.activations import Identity, SoftThreshold
from unfoldtheory.generalization.data import as_dataset, squared_losses
from unfoldtheory.generalization.kl import kl_inverse_upper, maurer_log_xi
from unfoldtheory.generalization.pac_bayes import reference_scale
from unfoldtheory.generalization.parameter_lipschitz import flat_parameters, has_initialisation, initial_model, spec_of
from unfoldtheory.generalization.rademacher import (
    chaining_bound,
    clip_value,
    clipped_loss_lipschitz,
    gap_from_rademacher,
    round_up_radii,
)
from unfoldtheory.lipschitz.norms import EPS, spectral_norm_upper
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.unfold import ALISTA, LISTA, LISTACP, UnfoldedISTA
from unfoldtheory.unfold.base import to_numpy
from unfoldtheory.validation import as_finite_array, finite_float

#: Why the two spectral bounds are not certified (issue 12 audit): steps without a rigorous rounding argument.
COVERING_UNPROVEN = ("not certified: the covering formula (logs, cube roots, ceilings, the chaining sum) and the data norm "
                     "‖Y‖_F/√m are evaluated in plain float64 with an a-priori margin of 1e-10, not with directed rounding; "
                     "_two_one's row norms underflow to 0 for entries below ~1e-154")
PAC_BAYES_UNPROVEN = ("not certified: the training loss L̂_b(θ̂) comes from the float forward pass (no forward-error bound "
                      "to the exact network of the perturbation lemma), the spec's weight norms are of float-formed "
                      "matrices, the Gaussian quantiles come from scipy's isf unverified, and KL, κ, τ and ĝ are float "
                      "sums with an a-priori margin")
QUANTITY = "generalization gap of the squared loss clipped at b (expected − training), with probability >= 1 − δ"
PRODUCT_MARGIN = 1e-10
RADIUS_KEYS = ("spectral", "injection", "distance", "threshold")
#: σ grid of the spectral PAC-Bayes bound (relative to the reference shape) and the t grid.
SIGMAS: tuple[float, ...] = tuple(2.0 ** (-k / 2.0) for k in range(0, 81))
SLACKS: tuple[float, ...] = tuple(2.0 ** k for k in range(-4, 3))


# ---------------------------------------------------------------------------- the unrolled chain
@dataclass(frozen=True)
class UnrolledChain:
    """``x_0 = 0``, ``x_k = ST_{θ_k}(W_k x_{k−1} + V_k y)``, output ``x_K`` (``W[0]`` is ``None``)."""

    W: tuple[np.ndarray | None, ...]
    V: tuple[np.ndarray, ...]
    thresholds: tuple[float, ...]

    @property
    def layers(self) -> int:
        return len(self.V)

    @property
    def n(self) -> int:
        return self.V[0].shape[0]

    @property
    def m(self) -> int:
        return self.V[0].shape[1]

    def block(self, k: int) -> np.ndarray:
        """The learned block ``[W_k V_k]`` (``V_1`` alone for the first layer)."""
        return self.V[k] if self.W[k] is None else np.hstack([self.W[k], self.V[k]])


def unrolled_chain(spec: NetworkSpec) -> UnrolledChain:
    """The chain form of ``spec``, or a ValueError saying why ``spec`` is not one."""
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"expected a NetworkSpec, got {type(spec).__name__}")
    K, n, m = spec.num_layers, spec.dims[1], spec.input_dim
    W: list[np.ndarray | None] = []
    V: list[np.ndarray] = []
    thresholds: list[float] = []
    for k in range(1, K + 1):
        weights, act, bias = spec.weights[k - 1], spec.activations[k - 1], spec.biases[k - 1]
        if spec.dims[k] != n:
            raise ValueError(f"layer {k} has dimension {spec.dims[k]}; an unrolled chain keeps dimension {n}")
        allowed = {0} | ({k - 1} if k >= 2 else set())
        if not set(weights) <= allowed:
            raise ValueError(f"layer {k} reads states {sorted(weights)}; an unrolled chain reads only y (0) and x_{k - 1}")
        if np.any(bias != 0):
            raise ValueError(f"layer {k} has a nonzero bias; the unrolled chain has none")
        if isinstance(act, SoftThreshold):
            if act.theta.ndim != 0:
                raise ValueError(f"layer {k} has a vector threshold; the chain bounds need one scalar threshold per layer")
            thresholds.append(float(act.theta))
        elif isinstance(act, Identity):
            thresholds.append(0.0)
        else:
            raise ValueError(f"layer {k} has activation {act.name}; the chain bounds need soft thresholding")
        V.append(weights.get(0, np.zeros((n, m))))
        W.append(weights.get(k - 1) if k >= 2 else None)
    readout = spec.readout
    if set(readout) != {K} or not np.array_equal(readout[K], np.eye(n)):
        raise ValueError("the readout must be the last state x_K itself")
    return UnrolledChain(tuple(W), tuple(V), tuple(thresholds))


def _chain_of(model: Any, reference: str, example_input: Any = None) -> tuple[UnrolledChain, UnrolledChain | None]:
    """The model's chain (its spec, or its trace for a module that is not a package model) and that of its
    data-free initialisation (None for such a module, which has none: only ``reference="zero"`` applies)."""
    if reference not in ("init", "zero"):
        raise ValueError(f"reference must be 'init' or 'zero', got {reference!r}")
    chain = unrolled_chain(spec_of(model, example_input))
    if not has_initialisation(model):
        if reference == "init":
            raise ValueError(f"module {type(model).__name__} has no data-free initialisation: use reference='zero'")
        return chain, None
    return chain, unrolled_chain(initial_model(model).spec())


def _two_one(M: np.ndarray) -> float:
    """An upper bound on ``‖Mᵀ‖_{2,1} = Σ_rows ‖M_{j,:}‖₂`` (float sum with a rounding margin)."""
    value = float(np.sum(np.linalg.norm(M, axis=1)))
    return float(np.nextafter(value * (1.0 + 4.0 * (M.shape[1] + M.shape[0] + 2) * EPS), math.inf))


def _up(x: float) -> float:
    return float(np.nextafter(x * (1.0 + PRODUCT_MARGIN), math.inf))


@dataclass(frozen=True)
class LayerNorms:
    """Per layer: ``‖W_k‖`` (0 for the first), ``‖V_k‖``, ``‖[W_k V_k]‖``, ``‖([W_k V_k] − M_k)ᵀ‖_{2,1}``, ``θ_k``."""

    spectral: np.ndarray
    injection: np.ndarray
    joint: np.ndarray
    distance: np.ndarray
    threshold: np.ndarray


def layer_norms(chain: UnrolledChain, reference: UnrolledChain | None) -> LayerNorms:
    """Rigorous upper bounds on the per-layer norms; ``reference=None`` measures distances from 0."""
    K = chain.layers
    out = {key: np.zeros(K) for key in ("spectral", "injection", "joint", "distance")}
    for k in range(K):
        W, V = chain.W[k], chain.V[k]
        out["spectral"][k] = 0.0 if W is None else spectral_norm_upper(W)
        out["injection"][k] = spectral_norm_upper(V)
        out["joint"][k] = spectral_norm_upper(chain.block(k))
        ref = np.zeros_like(chain.block(k)) if reference is None else reference.block(k)
        if ref.shape != chain.block(k).shape:
            raise ValueError(f"reference layer {k + 1} has shape {ref.shape}; expected {chain.block(k).shape}")
        out["distance"][k] = _two_one(chain.block(k) - ref)
    return LayerNorms(**out, threshold=np.array(chain.thresholds))


# ---------------------------------------------------------------------------- spectral (covering) bound
def _covering_terms(norms: LayerNorms, radii: dict[str, np.ndarray], D_y: float, n: int, m_in: int) -> dict[str, Any]:
    K = len(norms.spectral)
    s, u, beta, tau = (radii[key] for key in RADIUS_KEYS)
    s = np.where(norms.spectral > 0, s, 0.0)  # the first layer has no W
    N_prev, D, L = 0.0, np.empty(K), np.empty(K)
    for k in range(K):
        D[k] = math.sqrt(N_prev ** 2 + D_y ** 2) if k > 0 else D_y
        d_in = m_in + (n if k > 0 else 0)
        L[k] = math.log(2.0 * d_in * n)
        N_prev = s[k] * N_prev + u[k] * D_y
    P = np.array([float(np.prod(s[k + 1:])) for k in range(K)])
    c = 4.0 * beta ** 2 * D ** 2 * P ** 2 * L
    A_mat = 4.0 * float(np.sum(np.cbrt(c))) ** 3
    return {"data_norms": D, "log_atoms": L, "propagation": P, "matrix_coefficient": A_mat,
            "log_covering_constant": float(np.sum(L)), "threshold_coefficients": tau * K * math.sqrt(n) * P}


def _log_covering(terms: dict[str, Any]) -> Any:
    A, const, thr = terms["matrix_coefficient"], terms["log_covering_constant"], terms["threshold_coefficients"]

    def log_n(eps: float) -> float:
        grid = np.maximum(1.0, np.ceil(thr / eps))
        return A / eps ** 2 + const + float(np.sum(np.log(grid)))

    return log_n


def _radii(norms: LayerNorms, ref_norms: LayerNorms | None, radii: Any) -> tuple[dict[str, np.ndarray], float, str]:
    """The class radii: explicit, or the model's values on dyadic grids whose bases come from the data-free
    initialisation's norms (constants, 1 for the operator norms and 1e-3 otherwise, without one)."""
    K = len(norms.spectral)
    values = {"spectral": norms.spectral, "injection": norms.injection, "distance": norms.distance,
              "threshold": norms.threshold}
    if radii is None and ref_norms is None:
        ones = np.ones(K)
        ref_norms = LayerNorms(ones, ones, ones, ones, 1e-3 * ones)
    if radii is None:
        bases = {"spectral": np.where(ref_norms.spectral > 0, ref_norms.spectral, 1.0),
                 "injection": np.where(ref_norms.injection > 0, ref_norms.injection, 1.0),
                 "distance": 1e-3 * np.maximum(ref_norms.distance, 1e-3),
                 "threshold": np.where(ref_norms.threshold > 0, ref_norms.threshold, 1e-3)}
        out, weight = {}, 1.0
        for key in RADIUS_KEYS:
            out[key], w = round_up_radii(values[key], bases[key])
            weight *= w
        return out, weight, "dyadic grid (union bound)"
    if not isinstance(radii, dict) or set(radii) != set(RADIUS_KEYS):
        raise ValueError(f"radii must be a dict with keys {RADIUS_KEYS}")
    out = {}
    for key in RADIUS_KEYS:
        arr = as_finite_array(radii[key], f"radii[{key!r}]", shape=(K,))
        if np.any(arr < values[key] * (1.0 - 1e-12)):
            k = int(np.argmax(arr < values[key] * (1.0 - 1e-12)))
            raise ValueError(f"radii[{key!r}][{k}] = {arr[k]:.6g} is below the model's value {values[key][k]:.6g}: "
                             "the class would not contain the model")
        out[key] = np.maximum(arr, values[key])
    return out, 1.0, "explicit"


def spectral_radii(model: nn.Module, scale: float = 1.0, reference: str = "init") -> dict[str, np.ndarray]:
    """The model's own class radii (``spectral``, ``injection``, ``distance``, ``threshold``) times ``scale ≥ 1``."""
    scale = finite_float(scale, "scale", low=1.0)
    chain, init_chain = _chain_of(model, reference)
    norms = layer_norms(chain, init_chain if reference == "init" else None)
    return {key: scale * getattr(norms, key) for key in RADIUS_KEYS}


def spectral_bound(model: nn.Module, data: Any, *, clip: float, delta: float = 0.05, radii: Any = None,
                   reference: str = "init", example_input: Any = None) -> Bound:
    """The adapted Bartlett–Foster–Telgarsky bound on the gap of ``ℓ_b`` (module docstring).

    ``data = (Y, X)`` is the training sample. ``reference`` is ``"init"`` (the data-free initialisation)
    or ``"zero"``. ``radii`` (dict of per-layer arrays ``spectral``, ``injection``, ``distance``,
    ``threshold``) fixes the class explicitly; by default the model's own values on dyadic grids. A module that
    is not a package model is traced on ``example_input`` and takes ``reference="zero"`` (it has no data-free
    initialisation); its grid bases are then constants.
    """
    start = time.perf_counter()
    b = clip_value(clip)
    delta = finite_float(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
    chain, init_chain = _chain_of(model, reference, example_input)
    Y, X = as_dataset(data, "data", m=chain.m, n=chain.n)
    m = Y.shape[0]
    norms = layer_norms(chain, init_chain if reference == "init" else None)
    ref_norms = None if init_chain is None else layer_norms(init_chain, init_chain if reference == "init" else None)
    r, weight, how = _radii(norms, ref_norms, radii)
    D_y = float(np.linalg.norm(Y)) / math.sqrt(m)
    terms = _covering_terms(norms, r, D_y, chain.n, chain.m)
    log_out = _log_covering(terms)
    lip = clipped_loss_lipschitz(b)
    rademacher, depth = chaining_bound(lambda eps: log_out(eps / lip), b / 2.0, m)
    gap = _up(gap_from_rademacher(rademacher, b, m, delta * weight))
    losses = squared_losses(model, (Y, X))
    details = {**terms, "rademacher": rademacher, "chain_depth": depth, "radii": r, "radii_choice": how,
               "delta": delta, "delta_used": delta * weight, "clip": b, "num_samples": m, "layer_norms": norms,
               "reference": reference, "train_loss": float(losses.mean()),
               "clipped_fraction_train": float(np.mean(losses > b)), "trivial_bound": b, "vacuous": gap >= b,
               "expected_loss_bound": float(losses.mean()) + gap,
               "statement": "uniform over the class; loss clipped at b"}
    details["reason"] = COVERING_UNPROVEN
    return Bound(gap, "upper", QUANTITY, "spectral covering (Bartlett–Foster–Telgarsky 2017, adapted)", certified=False,
                 seconds=time.perf_counter() - start, details=details)


# ---------------------------------------------------------------------------- spectral PAC-Bayes bound
def _layer_maps(model: nn.Module) -> list[dict[str, Any]]:
    """Per layer: ``W`` and ``J`` lists of ``(tensor index, c)`` with ``‖ΔW_k‖ ≤ Σ c‖Δ_p‖`` and
    ``‖Δ[W_k V_k]‖ ≤ Σ c‖Δ_p‖`` (spectral norm of a matrix tensor, |·| of a scalar), and the threshold index."""
    index = {id(p): i for i, p in enumerate(model.parameters())}
    A = model.A_numpy()
    maps: list[dict[str, Any]] = []
    if isinstance(model, (ALISTA, UnfoldedISTA)):
        P = to_numpy(model.W) if isinstance(model, ALISTA) else A
        B = P.T @ A
        cW, cJ, c0 = _up(spectral_norm_upper(B)), _up(spectral_norm_upper(np.hstack([-B, P.T]))), spectral_norm_upper(P)
        for k in range(model.layers):
            g = index[id(model.step[k])]
            maps.append({"W": [(g, cW)] if k else [], "J": [(g, cJ if k else c0)], "theta": index[id(model.threshold[k])]})
    elif isinstance(model, LISTACP):
        normA = spectral_norm_upper(A)
        wide = _up(math.sqrt(normA ** 2 + 1.0))
        for k in range(model.layers):
            w = index[id(model.W[k])]
            maps.append({"W": [(w, normA)] if k else [], "J": [(w, wide if k else 1.0)], "theta": index[id(model.threshold[k])]})
    elif isinstance(model, LISTA):
        for k in range(model.layers):
            w1 = index[id(model.W1[k])]
            if k == 0:
                maps.append({"W": [], "J": [(w1, 1.0)], "theta": index[id(model.threshold[0])]})
                continue
            w2 = index[id(model.W2[k - 1])]
            maps.append({"W": [(w2, 1.0)], "J": [(w2, 1.0), (w1, 1.0)], "theta": index[id(model.threshold[k])]})
    else:
        raise ValueError(f"model {type(model).__name__} is not supported: the spectral PAC-Bayes bound covers "
                         "UnfoldedISTA, ALISTA, LISTA and LISTACP")
    return maps


def _tensor_quantiles(model: nn.Module) -> np.ndarray:
    """``z_p`` with ``P(‖Δ_p‖ > σ r_p z_p) ≤ q = 1/(2·#tensors)`` for ``Δ_p`` with i.i.d. N(0, σ²r_p²) entries."""
    shapes = [tuple(p.shape) for p in model.parameters()]
    q = 1.0 / (2.0 * len(shapes))
    out = []
    for shape in shapes:
        if int(np.prod(shape)) == 1:
            out.append(float(normal.isf(q / 2.0)))
        elif len(shape) == 2:
            out.append(math.sqrt(shape[0]) + math.sqrt(shape[1]) + math.sqrt(2.0 * math.log(1.0 / q)))
        else:
            raise ValueError(f"parameter tensor of shape {shape} is neither a scalar nor a matrix")
    return np.array(out)


def _tensor_scales(model: nn.Module) -> np.ndarray:
    """The reference scale ``r_p`` of each tensor (one value per tensor)."""
    r = reference_scale(model)
    out, offset = [], 0
    for p in model.parameters():
        out.append(float(r[offset]))
        offset += p.numel()
    return np.array(out)


def _perturbation_setup(model: nn.Module) -> dict[str, Any]:
    """Everything of step 3 that does not depend on σ."""
    chain = unrolled_chain(model.spec())
    norms = layer_norms(chain, None)
    X = [0.0]
    for k in range(chain.layers):
        X.append(min(norms.spectral[k] * X[-1] + norms.injection[k], norms.joint[k] * math.sqrt(X[-1] ** 2 + 1.0)))
    return {"norms": norms, "maps": _layer_maps(model), "unit": _tensor_scales(model) * _tensor_quantiles(model),
            "iterates": np.array(X), "n": chain.n}


def _kappa_tau(setup: dict[str, Any], sigma: float) -> tuple[float, float]:
    omega, maps, norms = sigma * setup["unit"], setup["maps"], setup["norms"]
    oW = np.array([sum(c * omega[p] for p, c in L["W"]) for L in maps])
    oJ = np.array([sum(c * omega[p] for p, c in L["J"]) for L in maps])
    oT = np.array([omega[L["theta"]] for L in maps])
    grown = norms.spectral + oW
    P = np.array([float(np.prod(grown[k + 1:])) for k in range(len(maps))])
    kappa = float(np.sum(P * oJ * np.sqrt(setup["iterates"][:-1] ** 2 + 1.0)))
    tau = math.sqrt(setup["n"]) * float(np.sum(P * oT))
    return _up(kappa), _up(tau)


def perturbation_coefficients(model: nn.Module, sigma: float) -> tuple[float, float]:
    """``(κ, τ)`` of step 3: on the good event, ``‖h_θ(y) − h_θ̂(y)‖ ≤ κ‖y‖ + τ`` for every y."""
    return _kappa_tau(_perturbation_setup(model), finite_float(sigma, "sigma", low=0.0))


def spectral_pac_bayes_bound(model: nn.Module, data: Any, *, clip: float, delta: float = 0.05,
                             sigmas: Any = SIGMAS, slacks: Any = SLACKS) -> Bound:
    """The adapted Neyshabur et al. (2018) PAC-Bayes bound on the gap of ``ℓ_b`` for the deterministic model
    (module docstring), minimised over the grids ``sigmas`` (σ relative to the reference shape) and
    ``slacks`` (t), with the union bound over both."""
    start = time.perf_counter()
    b = clip_value(clip)
    delta = finite_float(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
    sig = tuple(finite_float(s, "sigmas[i]", low=0.0, low_open=True) for s in sigmas)
    ts = tuple(finite_float(t, "slacks[i]", low=0.0, low_open=True) for t in slacks)
    if not sig or not ts:
        raise ValueError("sigmas and slacks must be non-empty")
    if not has_initialisation(model):
        raise ValueError(f"module {type(model).__name__} is not a package model: the spectral PAC-Bayes prior is centred "
                         "at the data-free initialisation with its per-tensor reference scale, and the perturbation lemma "
                         "uses the per-layer parameter maps of UnfoldedISTA, ALISTA, LISTA and LISTA-CP")
    chain = unrolled_chain(model.spec())
    Y, X = as_dataset(data, "data", m=chain.m, n=chain.n)
    m = Y.shape[0]
    setup = _perturbation_setup(model)
    theta, theta0 = flat_parameters(model), flat_parameters(initial_model(model))
    r = reference_scale(model)
    losses = squared_losses(model, (Y, X))
    train = float(losses.mean())
    train_b = float(np.minimum(losses, b).mean())
    y_norms = np.linalg.norm(Y, axis=1)
    log_pb = maurer_log_xi(m) + math.log(len(sig) * len(ts) / (delta / 2.0))
    base = 1e-6 * math.sqrt(b)
    best: dict[str, Any] | None = None
    for s in sig:
        kappa, tau = _kappa_tau(setup, s)
        (kappa_r, tau_r), w = round_up_radii(np.array([kappa, tau]), np.array([base, base]))
        kl_q = float(np.sum(((theta - theta0) / (s * r)) ** 2) / 2.0)
        kl_cond = (kl_q + 1.0 / math.e) / 0.5 + math.log(2.0)
        C = (kl_cond + log_pb) / m
        for t in ts:
            g = np.minimum((1.0 + 1.0 / t) * (kappa_r * y_norms + tau_r) ** 2, b)
            g_hat = float(g.mean())
            g_up = b * kl_inverse_upper(g_hat / b, math.log(len(sig) * len(ts) / (delta / 2.0 * w)) / m)
            pb = b * kl_inverse_upper(min(1.0, ((1.0 + t) * train_b + g_hat) / b), C)
            value = _up((1.0 + t) * pb + g_up)
            if best is None or value < best["expected_loss_bound"]:
                best = {"expected_loss_bound": value, "sigma": s, "slack": t, "kappa": kappa_r, "tau": tau_r,
                        "kl": kl_q, "kl_conditioned": kl_cond, "complexity": C, "g_mean": g_hat, "g_upper": g_up}
    assert best is not None
    gap = best["expected_loss_bound"] - train
    details = {**best, "train_loss": train, "train_loss_clipped": train_b, "clip": b, "num_samples": m,
               "delta": delta, "clipped_fraction_train": float(np.mean(losses > b)), "trivial_bound": b,
               "vacuous": best["expected_loss_bound"] >= b, "prior": "N(θ_init, σ² diag r²), data-free",
               "statement": "deterministic model, loss clipped at b"}
    details["reason"] = PAC_BAYES_UNPROVEN
    return Bound(gap, "upper", QUANTITY, "spectral PAC-Bayes (Neyshabur et al. 2018, adapted)", certified=False,
                 seconds=time.perf_counter() - start, details=details)
