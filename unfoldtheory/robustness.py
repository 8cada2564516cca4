"""Robustness and interpretability checks of trained unfolded models (the criteria of the comparison in
Shlezinger et al., *Deep Unfolding*, 2025).

* **Mismatch at test time.** :func:`sparse_test_set` draws sparse-recovery test data with another noise
  level or a perturbed sensing matrix ``A' = A + ε‖A‖_F G/‖G‖_F`` (:func:`perturbed_matrix`) while the
  model keeps its trained ``A``; :func:`rpca_test_set` adds noise to robust-PCA data or changes the outlier
  fraction. :func:`nmse_curve` evaluates any predictor on such sets.
* **Certified contraction.** :func:`iteration_maps` cuts, out of a model's
  :class:`~unfoldtheory.spec.NetworkSpec`, the map ``s_{k−1} ↦ s_k`` from the state one iteration reads to
  the state the next one reads (y fixed: it enters as a constant, which no slope-restricted bound depends
  on); :func:`iteration_bounds` bounds its ℓ2 Lipschitz constant with
  :func:`unfoldtheory.lipschitz.upper_bound`. A *certified* bound below 1 makes that iteration a certified
  contraction; a bound ≥ 1 means only "not certified a contraction". With ``n > m`` no ISTA-type layer can
  pass: ``I − γAᵀA`` is the identity on the null space of A, so ``‖I − γAᵀA‖₂ ≥ 1``.
  :func:`support_factor` gives the classical substitute (Chen, Liu, Wang & Yin 2018): for a one-layer
  iteration ``x ↦ φ(Wx + b)``, ``max_S ‖W_{S,S}‖₂`` over given supports S, the factor by which the layer
  contracts errors supported on S *if* its output stays supported on S (no false positives). It is an
  estimate over the supports given, not a certificate.
* **Classical ranges.** :func:`classical_range` tests whether learned step sizes stay where the classical
  iteration is stable: ISTA ``γL ∈ (0, 2)`` (forward–backward splitting, Combettes & Wajs 2005), FISTA
  ``γL ∈ (0, 1]`` and momentum ``β ∈ [0, 1]`` (Beck & Teboulle 2009), ALISTA ``γ‖W̃ᵀA‖₂ ∈ (0, 2)`` (the
  ISTA test transplanted: W̃ᵀA is not symmetric, so this is an analogy, not a theorem), ADMM dual step
  ``α ∈ (0, (1+√5)/2)`` (Glowinski's range, Fortin & Glowinski 1983 [recalled]), and learned RPCA
  ``η ∈ (0, 1)``: near the solution, with the outliers removed exactly, ScaledGD changes ``L = UVᵀ`` by
  ``η(E P_V + P_U E) + O(‖E‖²)`` with ``E = L⋆ − L`` (``U(UᵀU)⁻¹Uᵀ = P_U``), so the new error is
  ``(1 − 2η)P_U E P_V + (1 − η)(P_U E P_V^⊥ + P_U^⊥ E P_V) + O(‖E‖²)``: orthogonal pieces that shrink iff
  ``|1 − 2η| < 1`` and ``|1 − η| < 1``.
* **Witnesses for any torch map.** :func:`pair_witness` finds, by power iteration on ``JᵀJ`` (``J v`` by
  a finite difference, ``Jᵀu`` by autograd), a pair of nearby inputs whose output ratio
  ``‖f(y₂) − f(y₁)‖/‖y₂ − y₁‖`` is large. Any pair's ratio is a lower bound on the Lipschitz constant, so
  this works for maps without a NetworkSpec (learned RPCA); :func:`witness_perturbation` summarises the
  pair of any lower bound (its ratio and the size of the perturbation).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from unfoldtheory.lipschitz import upper_bound
from unfoldtheory.metrics import nmse_db
from unfoldtheory.problems import RobustPCA, SparseRecovery
from unfoldtheory.results import Bound
from unfoldtheory.spec import Layer, NetworkSpec
from unfoldtheory.validation import as_finite_array, finite_float, positive_int

Predictor = Callable[[np.ndarray], np.ndarray]
GOLDEN = (1.0 + math.sqrt(5.0)) / 2.0


def _seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


# ---------------------------------------------------------------------------- mismatch at test time
def perturbed_matrix(A: Any, relative: float, seed: int = 0) -> np.ndarray:
    """``A + ε‖A‖_F G/‖G‖_F`` with G i.i.d. Gaussian: a perturbation of relative Frobenius size ``ε = relative``."""
    A = as_finite_array(A, "A", ndim=2)
    relative = finite_float(relative, "relative", low=0.0)
    if relative == 0:
        return A.copy()
    G = np.random.default_rng([_seed(seed), 3]).standard_normal(A.shape)
    return A + relative * np.linalg.norm(A) * G / np.linalg.norm(G)


def sparse_test_set(problem: SparseRecovery, num: int, seed: int, noise_std: float = 0.0,
                    matrix_perturbation: float = 0.0, matrix_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(Y, X)``: the signals of ``problem.sample(num, seed)`` measured as ``Y = X A'ᵀ + σE``.

    ``A'`` is :func:`perturbed_matrix` of the problem's A (``matrix_perturbation = 0``: A itself) and
    ``σ = noise_std`` replaces the problem's own noise level. With both zero, Y is exactly the noiseless
    ``X Aᵀ`` that ``problem.sample`` returns for a noiseless problem.
    """
    noise_std = finite_float(noise_std, "noise_std", low=0.0)
    _, X = problem.sample(positive_int(num, "num"), seed=_seed(seed))
    Y = X @ perturbed_matrix(problem.A, matrix_perturbation, matrix_seed).T
    if noise_std > 0:
        Y = Y + noise_std * np.random.default_rng([problem.seed, 4, seed]).standard_normal(Y.shape)
    return Y, X


def rpca_test_set(problem: RobustPCA, num: int, seed: int, noise_rms: float = 0.0,
                  outlier_fraction: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(Y, L)`` for robust PCA with ``outlier_fraction`` outliers (None: the problem's) and added Gaussian
    noise of standard deviation ``noise_rms · σ_L``, where ``σ_L = √(r/(d1 d2))`` is the RMS entry of L."""
    noise_rms = finite_float(noise_rms, "noise_rms", low=0.0)
    if outlier_fraction is not None and outlier_fraction != problem.outlier_fraction:
        problem = RobustPCA(problem.d1, problem.d2, problem.rank, outlier_fraction, seed=problem.seed, lam=problem.lam)
    Y, L = problem.sample(positive_int(num, "num"), seed=_seed(seed))
    if noise_rms > 0:
        sigma = noise_rms * math.sqrt(problem.rank / (problem.d1 * problem.d2))
        Y = Y + sigma * np.random.default_rng([problem.seed, 4, seed]).standard_normal(Y.shape)
    return Y, L


def nmse_curve(predict: Predictor, test_sets: Mapping[float, tuple[np.ndarray, np.ndarray]]) -> dict[float, float]:
    """NMSE (dB) of ``predict(Y)`` against the target, for each ``level: (Y, target)`` of ``test_sets``."""
    return {float(level): float(nmse_db(predict(Y), T)) for level, (Y, T) in test_sets.items()}


def model_predictor(model: torch.nn.Module, batch: int = 1000) -> Predictor:
    """``Y ↦ model(Y)`` in the model's dtype and device, without gradients, as a float64 array (batched)."""
    ref = next(model.parameters())

    @torch.no_grad()
    def predict(Y: np.ndarray) -> np.ndarray:
        out = [model(torch.as_tensor(Y[i:i + batch], dtype=ref.dtype, device=ref.device)).double().cpu().numpy()
               for i in range(0, len(Y), batch)]
        return np.concatenate(out)

    return predict


# ---------------------------------------------------------------------------- iteration maps and contraction
def iteration_states(spec: NetworkSpec, iterations: int) -> tuple[int, list[list[int]]]:
    """``(p, reads)``: the spec's layers per iteration and, at ``reads[k − 1]`` for k = 1..K + 1, the earlier
    states (≥ 1) that iteration k reads (for K + 1: those of iteration K shifted by one iteration)."""
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"iteration_states takes a NetworkSpec, got {type(spec).__name__}")
    iterations = positive_int(iterations, "iterations")
    N = spec.num_layers
    if N % iterations:
        raise ValueError(f"the spec has {N} layers, not a multiple of iterations = {iterations}")
    p = N // iterations
    reads = []
    for k in range(1, iterations + 1):
        block = range((k - 1) * p + 1, k * p + 1)
        reads.append(sorted({j for s in block for j in spec.weights[s - 1] if 1 <= j <= (k - 1) * p}))
    reads.append([j + p for j in reads[-1]])  # what an iteration K + 1 of the same form would read
    return p, reads


def iteration_maps(spec: NetworkSpec, iterations: int, y: Any = None) -> dict[int, NetworkSpec]:
    """The state maps ``s_{k−1} ↦ s_k`` of iterations k = 2..K of an unfolded ``spec`` (k: 1-based).

    The spec's layers are split into ``iterations`` equal blocks. The input of map k is the concatenation
    of the earlier states that block k reads (e.g. ``x_{k−1}`` for ISTA, ``(x_{k−1}, x_{k−2})`` for FISTA,
    ``(z_{k−1}, u_{k−1})`` for ADMM); its output is the concatenation of the states block k + 1 reads (an
    input state read again, like FISTA's ``x_{k−1}``, is passed through). With y fixed, its edges are
    constants: they become biases for a given ``y``, and are dropped for ``y=None`` (no Lipschitz bound
    from slope restrictions depends on biases). Iterations that read no earlier state are left out.
    """
    K = positive_int(iterations, "iterations")
    p, reads = iteration_states(spec, K)
    y = None if y is None else as_finite_array(y, "y", shape=(spec.input_dim,))
    maps = {}
    for k in range(2, K + 1):
        inputs, outputs = reads[k - 1], reads[k]
        if not inputs:
            continue
        base = (k - 1) * p
        offset = dict(zip(inputs, np.cumsum([0] + [spec.dims[j] for j in inputs[:-1]]), strict=True))
        width = sum(spec.dims[j] for j in inputs)
        layers = []
        for s in range(base + 1, base + p + 1):
            dim = spec.dims[s]
            weights: dict[int, np.ndarray] = {}
            bias = spec.biases[s - 1].copy()
            for j, w in spec.weights[s - 1].items():
                if j == 0:
                    bias += 0.0 if y is None else w @ y
                elif j in offset:
                    block = weights.setdefault(0, np.zeros((dim, width)))
                    block[:, offset[j]:offset[j] + spec.dims[j]] += w
                elif j > base:
                    weights[j - base] = w
            layers.append(Layer(weights, spec.activations[s - 1], bias, dim))
        rows = sum(spec.dims[o] for o in outputs)
        readout: dict[int, np.ndarray] = {}
        row = 0
        for o in outputs:
            d = spec.dims[o]
            if o > base:
                C = readout.setdefault(o - base, np.zeros((rows, d)))
                C[row:row + d] += np.eye(d)
            elif o in offset:
                C = readout.setdefault(0, np.zeros((rows, width)))
                C[row:row + d, offset[o]:offset[o] + d] += np.eye(d)
            else:
                raise ValueError(f"iteration {k + 1} reads state {o}, which neither iteration {k} computes nor reads")
            row += d
        maps[k] = NetworkSpec(width, layers, readout, name=f"{spec.name}: iteration {k} state map")
    return maps


def iteration_bounds(spec: NetworkSpec, iterations: int, time_budget: float = 5.0, max_sdp_size: int = 1500,
                     progress: bool | None = False) -> dict[int, Bound]:
    """Certified ℓ2 Lipschitz upper bounds of the state maps of :func:`iteration_maps`, by
    ``upper_bound(map, "best", time_budget=time_budget, max_sdp_size=max_sdp_size)``; iteration k is a
    certified contraction iff its Bound is certified and below 1."""
    maps = iteration_maps(spec, iterations)
    out = {}
    for k, m in tqdm(maps.items(), desc=f"iteration maps of {spec.name}", disable=None if progress is None else not progress):
        b = upper_bound(m, "best", time_budget=time_budget, max_sdp_size=max_sdp_size)
        out[k] = b.replace(quantity=f"Lipschitz constant of iteration {k}'s state map (l2)",
                           details={**b.details, "iteration": k, "contraction": bool(b.certified and b.value < 1)})
    return out


def one_layer_weight(state_map: NetworkSpec) -> np.ndarray | None:
    """``W`` when ``state_map`` is ``x ↦ φ(Wx + b)`` (one layer, square W, slopes in [0, 1], read out as is); else None."""
    if state_map.num_layers != 1 or set(state_map.weights[0]) != {0} or set(state_map.readout) != {1}:
        return None
    W = state_map.weights[0][0]
    lo, hi = state_map.activations[0].slope_interval
    n = state_map.input_dim
    if W.shape != (n, n) or not np.array_equal(state_map.readout[1], np.eye(n)) or not (lo >= 0 and hi <= 1):
        return None
    return W


def support_factor(state_map: NetworkSpec, supports: Sequence[Any]) -> Bound:
    """``max_S ‖W_{S,S}‖₂`` over ``supports`` (index arrays or boolean masks) for a one-layer state map
    ``x ↦ φ(Wx + b)`` with slopes in [0, 1] (:func:`one_layer_weight`): the factor by which it contracts
    errors supported on S when its output stays on S. An estimate over the given supports (kind
    ``"estimate"``), not a certificate."""
    start = time.perf_counter()
    W = one_layer_weight(state_map)
    if W is None:
        raise ValueError("support_factor needs a one-layer state map x -> phi(W x + b) with square W, slopes in [0, 1], "
                         "read out directly")
    values = []
    for S in supports:
        idx = np.flatnonzero(S) if np.asarray(S).dtype == bool else np.asarray(S, dtype=int)
        values.append(float(np.linalg.norm(W[np.ix_(idx, idx)], 2)) if idx.size else 0.0)
    if not values:
        raise ValueError("supports is empty")
    return Bound(max(values), "estimate", "contraction factor on the given supports (l2)", "support-restricted norm",
                 seconds=time.perf_counter() - start,
                 details={"supports": len(values), "mean": float(np.mean(values)), "median": float(np.median(values))},
                 reason=f"an estimate over the {len(values)} given supports only: errors on another support, or leaving "
                        "the support, may contract less")


# ---------------------------------------------------------------------------- classical ranges
@dataclass(frozen=True)
class RangeCheck:
    """Learned values of one hyperparameter against the range where the classical iteration is stable."""

    test: str
    values: list[float]
    low: float
    high: float
    low_open: bool
    high_open: bool
    reference: str

    @property
    def within(self) -> list[bool]:
        """Per layer: is the value inside the range?"""
        return [(v > self.low if self.low_open else v >= self.low) and (v < self.high if self.high_open else v <= self.high)
                for v in self.values]

    @property
    def passed(self) -> int:
        return sum(self.within)

    @property
    def interval(self) -> str:
        return f"{'(' if self.low_open else '['}{self.low:.4g}, {self.high:.4g}{')' if self.high_open else ']'}"


def _values(params: Any, scale: float = 1.0, transform: Callable[[float], float] = float) -> list[float]:
    return [scale * transform(float(p.detach().cpu())) for p in params]


def classical_range(model: torch.nn.Module) -> list[RangeCheck]:
    """The classical stable-range tests that apply to ``model`` (module docstring); ``[]`` for models with
    no classical step parameter (LISTA, LISTA-CP, LearnedUpdate: their matrices are learned)."""
    name = type(model).__name__
    if name in ("UnfoldedISTA", "HybridISTA"):
        return [RangeCheck("gamma_k L", _values(model.step, model.L), 0.0, 2.0, True, True,
                           "forward-backward splitting (Combettes & Wajs 2005)")]
    if name == "UnfoldedFISTA":
        return [RangeCheck("gamma_k L", _values(model.step, model.L), 0.0, 1.0, True, False, "FISTA (Beck & Teboulle 2009)"),
                RangeCheck("beta_k", _values(model.momentum), 0.0, 1.0, False, False, "FISTA (Beck & Teboulle 2009)")]
    if name == "ALISTA":
        B = model.W.detach().double().cpu().numpy().T @ model.A.detach().double().cpu().numpy()
        return [RangeCheck("gamma_k ||W^T A||", _values(model.step, float(np.linalg.norm(B, 2))), 0.0, 2.0, True, True,
                           "the ISTA range transplanted (an analogy: W^T A is not symmetric)")]
    if name == "UnfoldedADMM":
        return [RangeCheck("alpha_k", _values(model.dual_step), 0.0, GOLDEN, True, True,
                           "Glowinski's dual step range (0, (1+sqrt 5)/2) [recalled]"),
                RangeCheck("rho_k", _values(model.log_penalty, transform=math.exp), 0.0, math.inf, True, True,
                           "ADMM penalty > 0")]
    if name == "LearnedRPCA":
        return [RangeCheck("eta_k", _values(model.step), 0.0, 1.0, True, True,
                           "local linearisation of ScaledGD (robustness module docstring)")]
    return []


# ---------------------------------------------------------------------------- witnesses
def pair_witness(fn: Callable[[torch.Tensor], torch.Tensor], inputs: Any, iterations: int = 20,
                 relative_step: float = 1e-4, seed: int = 0) -> Bound:
    """A lower bound on the ℓ2 Lipschitz constant of ``fn`` (batched, float64 torch map) from a pair of inputs.

    At every input ``y`` (rows of ``inputs``), power iteration on ``JᵀJ``: ``u = (f(y + hv) − f(y))/h ≈ Jv``
    and ``v ← Jᵀu/‖Jᵀu‖`` by autograd, with ``h = relative_step·‖y‖``. The best pair ``(y, y + hv)`` is then
    re-evaluated alone; its ratio ``‖f(y₂) − f(y₁)‖/‖y₂ − y₁‖`` is the value (a lower bound for any pair in exact
    arithmetic). It is **never certified**: ``fn`` is a black box, so no rigorous bound on the rounding of its
    evaluation exists (issue 12: an a-priori allowance is no proof, and cancellation inside ``fn`` can make the
    float ratio pure rounding noise). ``details["rounding_estimate"]`` is the old heuristic estimate of that
    rounding; for a :class:`~unfoldtheory.spec.NetworkSpec` use :func:`unfoldtheory.lipschitz.lower_bound`, whose
    witness carries a running-error bound.
    """
    start = time.perf_counter()
    iterations = positive_int(iterations, "iterations")
    relative_step = finite_float(relative_step, "relative_step", low=0.0, high=1.0, low_open=True)
    Y = torch.as_tensor(as_finite_array(inputs, "inputs"), dtype=torch.float64)
    if Y.ndim < 2 or Y.shape[0] == 0:
        raise ValueError(f"inputs has shape {tuple(Y.shape)}; expected (batch, ...) with batch >= 1")
    B = Y.shape[0]
    extra = (1,) * (Y.ndim - 1)

    def norms(T: torch.Tensor) -> torch.Tensor:
        return T.reshape(T.shape[0], -1).norm(dim=1)

    size = norms(Y)
    h = relative_step * torch.where(size > 0, size, torch.ones_like(size))
    gen = torch.Generator().manual_seed(_seed(seed))
    V = torch.randn(Y.shape, generator=gen, dtype=torch.float64)
    V = V / norms(V).reshape(B, *extra)
    with torch.no_grad():
        F0 = fn(Y)
    for _ in range(iterations):
        with torch.no_grad():
            U = (fn(Y + h.reshape(B, *extra) * V) - F0) / h.reshape(B, *((1,) * (F0.ndim - 1)))
        Yg = Y.clone().requires_grad_(True)
        (G,) = torch.autograd.grad(fn(Yg), Yg, grad_outputs=U)
        g = norms(G).reshape(B, *extra)
        V = torch.where(g > 0, G / torch.clamp(g, min=1e-300), V)
    with torch.no_grad():
        ratios = norms(fn(Y + h.reshape(B, *extra) * V) - F0) / h
    i = int(torch.argmax(torch.nan_to_num(ratios, nan=-1.0)))
    y1, y2 = Y[i:i + 1], Y[i:i + 1] + h[i] * V[i:i + 1]
    with torch.no_grad():
        f1, f2 = fn(y1), fn(y2)
    gap = float(norms(y2 - y1)[0])
    value = float(norms(f2 - f1)[0]) / gap
    rounding = 64 * np.finfo(np.float64).eps * max(float(norms(f1)[0]), float(norms(f2)[0])) / gap
    why = ("a black-box map: no rigorous bound on the rounding of its evaluation, so the float ratio is an estimate (use "
           "lipschitz.lower_bound on a NetworkSpec for a certified one)")
    return Bound(value if math.isfinite(value) else 0.0, "lower", "Lipschitz constant of the input-output map (l2)",
                 "pair witness (power iteration on J^T J)", certified=False,
                 certificate={"y1": y1[0].numpy(), "y2": y2[0].numpy(), "ratio": value},
                 seconds=time.perf_counter() - start,
                 details={"inputs": B, "iterations": iterations, "relative_step": relative_step, "input_index": i,
                          "ratio_per_input": ratios.tolist(), "rounding_estimate": rounding, "reason": why},
                 reason=why)


def witness_perturbation(bound: Bound) -> dict[str, float]:
    """The worst-case perturbation of a lower bound's witness pair ``(y₁, y₂)``: the gain (the ratio),
    ``‖δ‖ = ‖y₂ − y₁‖``, ``‖δ‖/‖y₁‖`` and the output change ``gain·‖δ‖``."""
    if bound.kind != "lower" or not isinstance(bound.certificate, Mapping) or not {"y1", "y2"} <= set(bound.certificate):
        raise ValueError("witness_perturbation needs a lower Bound whose certificate holds the pair y1, y2")
    y1 = as_finite_array(bound.certificate["y1"], "y1")
    y2 = as_finite_array(bound.certificate["y2"], "y2", shape=y1.shape)
    size = float(np.linalg.norm(y2 - y1))
    base = float(np.linalg.norm(y1))
    return {"gain": bound.value, "perturbation": size, "relative_perturbation": size / base if base > 0 else math.inf,
            "output_change": bound.value * size, "input_norm": base}
