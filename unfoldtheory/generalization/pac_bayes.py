"""PAC-Bayes bounds with Gaussian and point-mass posteriors over the learned parameters, evaluated rigorously.

**Predictor.** The Gibbs predictor of ``Q = N(θ̂, diag σ²)``: each prediction uses a fresh ``θ ∼ Q`` over the flat
vector of *distinct* learned parameters (``model.parameters()``; a shared parameter is one coordinate, counted
once); ``θ̂`` is the model. The network is the module's float64 forward pass (torch, CPU) as evaluated by
:func:`gibbs_losses` / :func:`~unfoldtheory.generalization.data.squared_losses`: the certificate covers the loss
values computed from its outputs (their own rounding is bounded, :func:`~.certified_arithmetic.squared_loss_bounds`).
:func:`point_mass_bound` is the deterministic model (``Q = P = δ_θ̂``).

**Loss.** ``ℓ = ‖h(y) − x‖²`` clipped at ``b = t_J``: the statement bounds ``E_Q E min(ℓ_θ, b)``. With levels
``0 = t_0 < … < t_J = b`` (default ``t_j = b·2^{−(J−j)/2}``, :func:`split_levels`), ``min(ℓ, b) = Σ_j Δ_j Z_j`` exactly,
``Δ_j = t_j − t_{j−1}``, ``Z_j = min((ℓ − t_{j−1})₊, Δ_j)/Δ_j ∈ [0, 1]`` (``proofs/split_kl.py``; the split-kl
decomposition of Wu & Seldin 2022 with continuous pieces). ``E(ℓ − b)₊`` is not bounded here: a loss bounded by ``b``
on a data domain (:mod:`~unfoldtheory.generalization.loss_range`) needs no clipping there.

**Theorem** (PAC-Bayes-kl: Seeger 2002; Maurer 2004, Thm 1 with ``ξ(m) = Σ_k C(m,k)(k/m)^k(1 − k/m)^{m−k}``). Let the
prior ``P`` be chosen without the ``m`` i.i.d. samples the bound is evaluated on. With probability ≥ 1 − δ' over them,
for every ``Q`` at once, ``kl(Ẑ_j(Q)‖Z_j(Q)) ≤ (KL(Q‖P) + log(ξ(m)/δ'))/m``. A union bound over the ``J`` pieces, the
``G`` prior scales and ``union`` further choices made by the caller sets ``δ' = δ/(J·G·union)``; then
``E_Q E min(ℓ, b) ≤ Σ_j Δ_j kl⁻¹(Ẑ_j(Q), C)``, ``C = (KL + log(ξ(m)/δ'))/m``. Choosing ``Q`` after seeing the data is
free (the statement holds for every ``Q``); choosing ``P`` is not. For a fixed predictor (``Q = P = δ_θ̂``, θ̂ not
depending on the samples) no PAC-Bayes step is needed: Hoeffding's kl inequality (1963, Thm 1) gives
``kl(Ẑ_j‖Z_j) ≤ log(J·union/δ)/m`` for every piece at once with probability ≥ 1 − δ, without ``ξ(m)``: the test-set
bound of Langford (2005) with split-kl pieces.

**Prior** (:class:`Prior`): ``N(μ_P, diag (σ_P r)²)``, ``σ_P`` from the grid ``scales``. Data-free by default
(:func:`data_free_prior`): ``μ_P`` = the model's classical initialisation and ``r`` = the RMS of each initial
parameter tensor, or the origin with the unit shape for a module that is not a package model. A prior chosen from
other data (:mod:`~unfoldtheory.generalization.split_prior`) is marked ``data_free=True`` by the procedure that owns
the split; a prior passed by the caller to :func:`pac_bayes_bound` is not, and its Bound is not certified.

**Monte Carlo.** ``Ẑ_j(Q)`` is estimated: each group of samples (one sample where
:func:`~.posteriors.gibbs_losses` can afford a draw per sample, ``chunk`` consecutive samples otherwise; ``chunk`` is
lowered to divide ``m`` so that every group has the same size) gets an independent ``θ ∼ Q`` per round, ``draws``
rounds. The ``N`` group means are independent,
``[0, 1]``-valued, and their average expectation is exactly ``Ẑ_j(Q)``, so ``Ẑ_j(Q) ≤ kl⁻¹(mean, log(J/δ_mc)/N)`` with
probability ≥ 1 − δ_mc/J each (Hoeffding 1963, Thm 1, kl form; :func:`~.kl.kl_upper_confidence`). ``kl⁻¹`` increases
in its first argument, so the upper values may be substituted. Overall confidence ``1 − δ − δ_mc``.

**Posterior** (:func:`optimise_posterior`): ``σ = s·shape`` with ``shape`` either the prior's ``r`` or a curvature
shape over parameter blocks (``posterior`` = ``"coordinate"``, ``"tensor"`` or ``"row"``,
:func:`~.posteriors.parameter_blocks`): ``σ_g² ∝ n_g/tr(H_gg)``, the minimiser of ``Σ_g n_g log(1/σ_g)`` at a fixed
second-order loss increase ``½Σ_g σ_g² tr(H_gg)`` (exact Hessian diagonal for small all-scalar models, Hutchinson
traces otherwise). ``s`` and the shape are picked by an estimate of the bound with Monte-Carlo draws independent of
the final ones.

**Certification.** Every number of the bound is evaluated with directed rounding
(:mod:`~unfoldtheory.generalization.certified_arithmetic`): ``KL`` and ``log ξ(m)`` in interval arithmetic, the means
from correctly rounded sums, the pieces and the assembly rounded up, each ``kl⁻¹`` proved. The certificate holds those
numbers and the vectors they came from; :func:`check_certificate` re-derives each from its inputs and the Bound is
certified only when that check passes and the prior is data-free.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from unfoldtheory.generalization.certified_arithmetic import (
    check_levels,
    complexity_upper,
    confidence_cost_upper,
    gaussian_kl_upper,
    kl_inverses_upper,
    log_xi_upper,
    mean_lower,
    mean_upper,
    pieces_upper,
    squared_loss_bounds,
    weighted_sum_upper,
)
from unfoldtheory.generalization.data import as_dataset, squared_losses
from unfoldtheory.generalization.kl import kl_inverse_upper
from unfoldtheory.generalization.parameter_lipschitz import flat_parameters, has_initialisation, initial_model, model_size
from unfoldtheory.generalization.posteriors import gibbs_losses, parameter_blocks
from unfoldtheory.results import Bound
from unfoldtheory.rounding import inflate, up
from unfoldtheory.validation import as_finite_array, finite_float, positive_int

QUANTITY = ("gap of the Gibbs predictor θ ∼ Q = N(θ̂, diag σ²) for the loss clipped at b: "
            "E_Q E min(ℓ_θ, b) − training loss of θ̂, with probability >= 1 − δ − δ_mc")
POINT_QUANTITY = "gap of the model for the loss clipped at b: E min(ℓ, b) − loss on the given data, with probability >= 1 − δ"
METHOD = "PAC-Bayes-kl (Maurer) over split-kl pieces, Gaussian posterior, Monte Carlo (Hoeffding-kl)"
POINT_METHOD = "kl test-set bound (Langford 2005) over split-kl pieces: point-mass prior and posterior"
#: Prior scales σ_P (relative to the shape r): a union bound over this grid is part of every Gaussian bound.
PRIOR_SCALES: tuple[float, ...] = tuple(2.0 ** k for k in range(-8, 5))
#: Posterior scales s tried by :func:`optimise_posterior` (relative to the shape).
POSTERIOR_SCALES: tuple[float, ...] = tuple(2.0 ** (k / 2.0) for k in range(-24, -1))
MAX_CURVATURE_PARAMETERS = 256
POSTERIOR_FAMILIES = ("coordinate", "tensor", "row")
ZERO_SCALE = 0.1
#: Why a bound with a caller's prior is not certified.
CALLER_PRIOR = "the prior was supplied by the caller: the bound is valid only if it was chosen without `data`"


# ---------------------------------------------------------------------------- pieces of the clipped loss
def split_levels(clip: float, pieces: int) -> np.ndarray:
    """The levels ``0 = t_0 < t_1 < … < t_J = b`` with ``t_j = b·2^{−(J−j)/2}`` (j ≥ 1)."""
    b = finite_float(clip, "clip", low=0.0, low_open=True)
    J = positive_int(pieces, "pieces")
    return np.concatenate([[0.0], b * 2.0 ** (-(J - np.arange(1, J + 1)) / 2.0)])


def split_pieces(losses: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``Z_j = min((ℓ − t_{j−1})₊, Δ_j)/Δ_j`` for every loss (last axis j); ``Σ_j Δ_j Z_j = min(ℓ, b)``."""
    lo, width = levels[:-1], np.diff(levels)
    return np.clip((np.asarray(losses)[..., None] - lo) / width, 0.0, 1.0)


def _levels(clip: Any, levels: Any, pieces: Any) -> np.ndarray:
    if levels is not None:
        lv = check_levels(levels)
        if clip is not None and finite_float(clip, "clip", low=0.0, low_open=True) != lv[-1]:
            raise ValueError(f"clip = {clip} differs from the last level {lv[-1]}; give one of them")
        return lv
    if clip is None:
        raise ValueError("give the clip level b (clip=) or the split-kl levels (levels=)")
    return split_levels(clip, pieces)


# ---------------------------------------------------------------------------- priors
def reference_scale(model: nn.Module) -> np.ndarray:
    """The data-free shape ``r``: per parameter tensor, the RMS of its value at the classical
    initialisation (``ZERO_SCALE`` for a tensor that starts at zero), repeated over its entries; all ones for
    a module without a data-free initialisation (not a package model)."""
    if not has_initialisation(model):
        return np.ones(model_size(model))
    return tensor_rms(initial_model(model))


def tensor_rms(model: nn.Module) -> np.ndarray:
    """Per parameter tensor of ``model``, the RMS of its entries (``ZERO_SCALE`` for a zero tensor), repeated over them."""
    parts = []
    for p in model.parameters():
        rms = float(p.detach().double().pow(2).mean().sqrt())
        parts.append(np.full(p.numel(), rms if rms > 1e-12 else ZERO_SCALE))
    return np.concatenate(parts) if parts else np.zeros(0)


def gaussian_kl(mean_q: np.ndarray, std_q: np.ndarray, mean_p: np.ndarray, std_p: np.ndarray) -> float:
    """``KL(N(μ_q, diag σ_q²) ‖ N(μ_p, diag σ_p²)) = ½Σ[σ_q²/σ_p² + (μ_q − μ_p)²/σ_p² − 1 + log(σ_p²/σ_q²)]`` in plain
    float64 (an estimate; :func:`~.certified_arithmetic.gaussian_kl_upper` is the rigorous value)."""
    ratio = (std_q / std_p) ** 2
    return float(0.5 * np.sum(ratio + ((mean_q - mean_p) / std_p) ** 2 - 1.0 - np.log(ratio)))


@dataclass(frozen=True)
class Prior:
    """The prior family ``{N(mean, diag (σ_P·shape)²) : σ_P ∈ scales}`` over the flat parameter vector.

    ``data_free`` says that the prior was chosen without the data the bound is evaluated on; a Bound is certified only
    when it is True. ``origin`` says in words where the prior came from."""

    mean: np.ndarray
    shape: np.ndarray
    scales: tuple[float, ...]
    origin: str
    data_free: bool

    def __post_init__(self) -> None:
        mean = as_finite_array(self.mean, "prior mean", shape=(None,))
        shape = as_finite_array(self.shape, "prior shape", shape=(mean.size,))
        if np.any(shape <= 0):
            raise ValueError("the prior shape must be positive in every coordinate")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "scales", _scales(self.scales, "prior_scales"))


def data_free_prior(model: nn.Module, prior_mean: Any = "init", prior_shape: Any = "init",
                    prior_scales: Any = PRIOR_SCALES) -> Prior:
    """The prior of :func:`pac_bayes_bound`: ``"init"`` (the classical initialisation; a package model) or ``"zero"``
    (the origin) with the ``"init"`` shape (:func:`reference_scale`) is data-free; a vector or a model of the same class
    as ``prior_mean``, or a vector as ``prior_shape``, is the caller's (``data_free=False``)."""
    D = model_size(model)
    data_free = True
    if isinstance(prior_mean, str):
        if prior_mean not in ("init", "zero"):
            raise ValueError(f"prior_mean must be 'init', 'zero', a parameter vector or a model, got {prior_mean!r}")
        mean = flat_parameters(initial_model(model)) if prior_mean == "init" else np.zeros(D)
    else:
        data_free = False
        if isinstance(prior_mean, nn.Module):
            if type(prior_mean) is not type(model):
                raise ValueError(f"prior_mean is a {type(prior_mean).__name__}; expected a {type(model).__name__}")
            prior_mean = flat_parameters(prior_mean)
        mean = as_finite_array(prior_mean, "prior_mean", shape=(D,))
    if isinstance(prior_shape, str):
        if prior_shape != "init":
            raise ValueError(f"prior_shape must be 'init' or a positive vector, got {prior_shape!r}")
        shape = reference_scale(model)
    else:
        data_free = False
        shape = as_finite_array(prior_shape, "prior_shape", shape=(D,))
        if np.any(shape <= 0):
            raise ValueError("prior_shape must be positive in every coordinate")
    if not data_free:
        origin = "supplied by the caller"
    elif prior_mean == "zero":
        origin = f"the origin with the {'initialisation' if has_initialisation(model) else 'unit'} shape (data-free)"
    else:
        origin = "classical initialisation (data-free)"
    return Prior(mean, shape, prior_scales, origin, data_free)


def _scales(values: Any, what: str) -> tuple[float, ...]:
    out = tuple(finite_float(v, f"{what}[{i}]", low=0.0, low_open=True) for i, v in enumerate(values))
    if not out:
        raise ValueError(f"{what} is empty")
    return out


# ---------------------------------------------------------------------------- Monte-Carlo groups
def _group_means(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per-group means of ``values`` (last axis j), one row per distinct group."""
    flat_v, flat_g = values.reshape(-1, values.shape[-1]), groups.reshape(-1)
    _, inverse, counts = np.unique(flat_g, return_inverse=True, return_counts=True)
    sums = np.zeros((counts.size, flat_v.shape[1]))
    np.add.at(sums, inverse, flat_v)
    return sums / counts[:, None]


def _group_means_upper(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, int]:
    """Upper bounds on the exact per-group means of the nonnegative ``values`` and the common group size; a ValueError
    when the groups differ in size (their average expectation would then not be the Gibbs loss)."""
    flat_v, flat_g = values.reshape(-1, values.shape[-1]), groups.reshape(-1)
    _, inverse, counts = np.unique(flat_g, return_inverse=True, return_counts=True)
    if counts.min() != counts.max():
        raise ValueError(f"the Monte-Carlo groups have sizes {counts.min()}..{counts.max()}; they must be equal")
    sums = np.zeros((counts.size, flat_v.shape[1]))
    np.add.at(sums, inverse, flat_v)
    size = int(counts[0])
    return up(inflate(sums, size) / size), size


def even_chunk(samples: int, chunk: int) -> int:
    """The largest divisor of ``samples`` that is at most ``chunk`` (equal Monte-Carlo groups)."""
    samples, chunk = positive_int(samples, "samples"), positive_int(chunk, "chunk")
    return max(d for d in range(1, min(samples, chunk) + 1) if samples % d == 0)


# ---------------------------------------------------------------------------- the posterior shape
def _flat_loss(model: nn.Module, Y: np.ndarray, X: np.ndarray):
    """``θ ↦`` mean squared loss of ``model`` at the flat parameter vector ``θ`` (float64, differentiable)."""
    work = copy.deepcopy(model).double()
    named = [(name, p.shape, p.numel()) for name, p in work.named_parameters()]
    Yt, Xt = torch.as_tensor(Y), torch.as_tensor(X)

    def loss(theta: torch.Tensor) -> torch.Tensor:
        params, offset = {}, 0
        for name, shape, size in named:
            params[name] = theta[offset:offset + size].reshape(shape)
            offset += size
        out = torch.func.functional_call(work, params, (Yt,))
        return ((out - Xt) ** 2).sum(dim=1).mean()

    return loss


def block_curvature(model: nn.Module, data: Any, blocks: list[np.ndarray], *, max_samples: int = 2000, probes: int = 8,
                    seed: int = 0) -> np.ndarray:
    """``tr(H_gg)`` of the mean training loss's Hessian at the model, per block: exact (the Hessian's diagonal) for
    models with at most ``MAX_CURVATURE_PARAMETERS`` parameters, else Hutchinson's estimate
    ``E[(v ⊙ Hv)_g]`` with ``probes`` Rademacher vectors ``v`` (Hutchinson 1989), one Hessian-vector product each."""
    Y, X = as_dataset(data, "data", m=getattr(model, "m", None), n=getattr(model, "n", None))
    k = positive_int(max_samples, "max_samples")
    loss = _flat_loss(model, Y[:k], X[:k])
    theta = torch.as_tensor(flat_parameters(model)).requires_grad_(True)
    if theta.numel() <= MAX_CURVATURE_PARAMETERS:
        diag = np.diag(torch.autograd.functional.hessian(loss, theta.detach()).numpy())
    else:
        gen = torch.Generator().manual_seed(int(seed))
        grad = torch.autograd.grad(loss(theta), theta, create_graph=True)[0]
        diag = np.zeros(theta.numel())
        for i in range(positive_int(probes, "probes")):
            v = torch.randint(0, 2, (theta.numel(),), generator=gen, dtype=torch.float64) * 2 - 1
            hv = torch.autograd.grad(grad @ v, theta, retain_graph=i + 1 < probes)[0]
            diag += (v * hv).detach().numpy() / probes
    return np.array([float(np.sum(diag[b])) for b in blocks])


def curvature_shape(model: nn.Module, data: Any, *, posterior: str = "coordinate", reference: np.ndarray | None = None,
                    max_samples: int = 2000) -> np.ndarray:
    """A posterior shape ``σ_g ∝ √(n_g/tr H_gg)`` over the blocks of ``posterior`` (module docstring, **Posterior**),
    normalised to the geometric mean of ``reference`` (default :func:`reference_scale`); the reference itself where no
    block has positive curvature. Blocks with curvature below ``1e-6`` of the largest per-coordinate value get that floor."""
    r = reference_scale(model) if reference is None else np.asarray(reference, dtype=np.float64)
    blocks = parameter_blocks(model, posterior)
    per_coord = block_curvature(model, data, blocks, max_samples=max_samples) / np.array([b.size for b in blocks])
    scale = np.array([float(np.exp(np.mean(np.log(r[b])))) for b in blocks])  # the reference's level in each block
    per_coord = per_coord * scale ** 2  # curvature in units of the reference
    positive = per_coord[np.isfinite(per_coord) & (per_coord > 0)]
    if positive.size == 0:
        return r
    per_coord = np.where(np.isfinite(per_coord) & (per_coord > 1e-6 * positive.max()), per_coord, 1e-6 * positive.max())
    shape = np.empty(r.size)
    for b, c, s in zip(blocks, per_coord, scale, strict=True):
        shape[b] = s / math.sqrt(c)
    return shape * math.exp(float(np.mean(np.log(r)) - np.mean(np.log(shape))))


# ---------------------------------------------------------------------------- estimates (to choose σ and σ_P only)
def kl_inverse_estimate(p: np.ndarray, c: float) -> np.ndarray:
    """``sup{q : kl(p‖q) ≤ c}`` by a vectorised float bisection: an estimate, used only to choose posteriors."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    lo, hi = p.copy(), np.ones_like(p)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(p > 0, p * np.log(p / mid), 0.0) + np.where(p < 1, (1 - p) * np.log((1 - p) / (1 - mid)), 0.0)
        inside = kl <= c
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    return hi


def _estimate(mean: np.ndarray, std: np.ndarray, prior: Prior, piece_means: np.ndarray, levels: np.ndarray,
              log_conf: float, m: int) -> list[tuple[float, float]]:
    """``(bound estimate, σ_P)`` for every prior scale, best first (float arithmetic)."""
    widths = np.diff(levels)
    out = []
    for sp in prior.scales:
        C = (gaussian_kl(mean, std, prior.mean, sp * prior.shape) + log_conf) / m
        out.append((float(np.sum(widths * kl_inverse_estimate(piece_means, C))), sp))
    return sorted(out)


def _log_conf(m: int, count: float, delta: float) -> float:
    return log_xi_upper(m) + math.log(count / delta)


# ---------------------------------------------------------------------------- the certificate
def certificate_failure(cert: dict[str, Any]) -> str | None:
    """None when every number of a PAC-Bayes certificate follows from its inputs (module docstring,
    **Certification**); otherwise the first one that does not, in words. The Monte-Carlo piece means are taken as
    recorded (re-drawing them means re-running the forward passes with the recorded seed)."""
    levels = check_levels(cert["levels"])
    J, m = levels.size - 1, int(cert["num_samples"])
    if cert["form"] == "gaussian":
        if cert["log_xi"] < log_xi_upper(m):
            return f"log ξ(m) = {cert['log_xi']!r} is below its rigorous value for m = {m}"
        kl = gaussian_kl_upper(cert["posterior_mean"], cert["posterior_std"], cert["prior_mean"], cert["prior_std"])
        if cert["kl"] < kl:
            return f"KL(Q‖P) = {cert['kl']!r} is below its rigorous value {kl!r}"
        cost = confidence_cost_upper(J, cert["delta_mc"], int(cert["mc_groups"]))
        if cert["mc_cost"] < cost:
            return f"the Monte-Carlo confidence cost {cert['mc_cost']!r} is below log(J/δ_mc)/N = {cost!r}"
        for j, (mu, q) in enumerate(zip(cert["mc_mean_upper"], cert["piece_upper"], strict=True)):
            if q < kl_inverse_upper(float(min(1.0, mu)), cert["mc_cost"]):
                return f"piece {j}: the Monte-Carlo upper value {q!r} is below kl⁻¹ of its mean {mu!r}"
        count = J * len(cert["prior_scales"]) * int(cert["union"])
        C = complexity_upper(cert["kl"], cert["log_xi"], count, cert["delta"], m)
    elif cert["form"] == "point mass":
        count = J * int(cert["union"])
        C = confidence_cost_upper(count, cert["delta"], m)
    else:
        return f"unknown certificate form {cert['form']!r}"
    if cert["complexity"] < C:
        return f"the complexity {cert['complexity']!r} is below its formula's value {C!r} (count {count})"
    for j, (z, q) in enumerate(zip(cert["piece_upper"], cert["kl_inverse"], strict=True)):
        if q < kl_inverse_upper(float(min(1.0, z)), cert["complexity"]):
            return f"piece {j}: kl⁻¹ = {q!r} is below its proved value"
    value = weighted_sum_upper(cert["kl_inverse"], levels)
    if cert["value"] < value:
        return f"the bound {cert['value']!r} is below Σ Δ_j kl⁻¹(z_j, C) = {value!r}"
    return None


def check_certificate(bound: Bound) -> bool:
    """Whether ``bound``'s certificate passes :func:`certificate_failure`."""
    return bound.certificate is not None and certificate_failure(bound.certificate) is None


# ---------------------------------------------------------------------------- the bounds
def _check_common(model: nn.Module, data: Any, delta: Any, delta_mc: Any,
                  union: Any) -> tuple[np.ndarray, np.ndarray, float, float, int]:
    """Validated ``(Y, X, δ, δ_mc, union)``; ``delta_mc=None`` (no Monte Carlo) is returned as 0."""
    if not isinstance(model, nn.Module) or model_size(model) == 0:
        raise ValueError("model must be a torch module with learned parameters")
    Y, X = as_dataset(data, "data", m=getattr(model, "m", None), n=getattr(model, "n", None))
    delta = finite_float(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
    delta_mc = 0.0 if delta_mc is None else finite_float(delta_mc, "delta_mc", low=0.0, high=1.0, low_open=True,
                                                         high_open=True)
    if delta + delta_mc >= 1.0:
        raise ValueError(f"delta + delta_mc = {delta + delta_mc} must be < 1")
    return Y, X, delta, delta_mc, positive_int(union, "union")


def _loss_upper(losses: np.ndarray, outputs: int) -> np.ndarray:
    """Upper bounds on the exact losses of the computed outputs; a non-finite loss (an overflowing draw) counts as ∞,
    which puts it in every piece (``Z_j = 1``), the worst case of the clipped loss."""
    finite = np.isfinite(losses)
    upper = np.full(losses.shape, np.inf)
    upper[finite] = squared_loss_bounds(losses[finite], outputs)[1]
    return upper


def _deterministic(model: nn.Module, Y: np.ndarray, X: np.ndarray, levels: np.ndarray) -> dict[str, Any]:
    losses = squared_losses(model, (Y, X))
    if not np.all(np.isfinite(losses)):
        raise ValueError("the model's loss is not finite on some sample of data")
    low, high = squared_loss_bounds(losses, X.shape[1])
    return {"losses": losses, "train_low": mean_lower(low), "train": float(losses.mean()),
            "pieces": pieces_upper(high, levels)}


def _finish(value: float, det: dict[str, Any], cert: dict[str, Any], data_free: bool, origin: str, quantity: str,
            method: str, details: dict[str, Any], start: float) -> Bound:
    b = float(cert["levels"][-1])
    failure = certificate_failure(cert)
    certified = bool(data_free and failure is None and math.isfinite(value))
    details.update({"expected_loss_bound": value, "train_loss": det["train"], "clip": b, "levels": cert["levels"],
                    "pieces": len(cert["levels"]) - 1, "num_samples": cert["num_samples"], "delta": cert["delta"],
                    "union": cert["union"], "kl": cert["kl"], "complexity": cert["complexity"], "log_maurer_xi": cert["log_xi"],
                    "clipped_fraction_train": float(np.mean(det["losses"] > b)), "prior": origin, "trivial_bound": b,
                    "vacuous": value >= b})
    if not certified:
        details["reason"] = failure or (CALLER_PRIOR if not data_free else "the bound is not finite")
    gap = float(up(value - det["train_low"]))
    return Bound(gap, "upper", quantity, method, certified=certified, certificate=cert, seconds=time.perf_counter() - start,
                 details=details)


def point_mass_bound(model: nn.Module, data: Any, *, clip: float | None = None, levels: Any = None, pieces: int = 16,
                     delta: float = 0.05, union: int = 1, data_free: bool, origin: str) -> Bound:
    """The kl bound on ``E min(ℓ, b)`` of the deterministic ``model`` from its losses on ``data`` (module docstring:
    ``Q = P = δ_θ̂``; ``C = log(J·union/δ)/m``, no Monte Carlo). Valid only when the model does not depend on
    ``data``; certified when ``data_free`` (the caller's statement that it does not) and the certificate checks."""
    start = time.perf_counter()
    Y, X, delta, _, union = _check_common(model, data, delta, None, union)
    lv = _levels(clip, levels, pieces)
    m, J = Y.shape[0], lv.size - 1
    det = _deterministic(model, Y, X, lv)
    means = np.array([mean_upper(det["pieces"][:, j]) for j in range(J)])
    C = confidence_cost_upper(J * union, delta, m)
    inverses = kl_inverses_upper(means, C)
    value = weighted_sum_upper(inverses, lv)
    cert = {"form": "point mass", "num_samples": m, "levels": lv, "delta": delta, "union": union, "log_xi": 0.0,
            "kl": 0.0, "complexity": C, "piece_upper": means, "kl_inverse": inverses, "value": value}
    details = {"covers": f"the deterministic model, loss min(‖h(y) − x‖², {lv[-1]:g})", "confidence": 1.0 - delta,
               "statement": "deterministic model (point-mass posterior), loss clipped at b",
               "num_parameters": model_size(model)}
    return _finish(value, det, cert, data_free, origin, POINT_QUANTITY, POINT_METHOD, details, start)


def gaussian_bound(model: nn.Module, data: Any, prior: Prior, *, clip: float | None = None, levels: Any = None,
                   posterior_std: Any = None, posterior: str = "auto", delta: float = 0.05, delta_mc: float = 0.01,
                   pieces: int = 16, draws: int = 32, chunk: int = 50, union: int = 1, seed: int = 0,
                   per_sample: bool | None = None, progress: bool | None = None) -> Bound:
    """Upper bound on the gap ``E_Q E min(ℓ_θ, b) − L̂(θ̂)`` of the Gibbs predictor ``Q = N(θ̂, diag σ²)`` around the
    model, with the prior family ``prior`` (module docstring). ``data`` is the sample the bound is evaluated on (for a
    prior that is not data-free: the part not used to choose it). ``posterior_std`` (per coordinate of the flat parameter
    vector) defaults to :func:`optimise_posterior` over the family ``posterior``. ``per_sample`` is passed to
    :func:`~.posteriors.gibbs_losses` (None: a draw per sample where affordable). ``details["expected_loss_bound"]`` is
    the bound on ``E_Q E min(ℓ, b)``; ``details["vacuous"]`` says whether it reaches ``b``."""
    start = time.perf_counter()
    Y, X, delta, delta_mc, union = _check_common(model, data, delta, delta_mc, union)
    if not isinstance(prior, Prior):
        raise ValueError(f"prior must be a Prior, got {type(prior).__name__}")
    lv = _levels(clip, levels, pieces)
    m, J, mean = Y.shape[0], lv.size - 1, flat_parameters(model)
    if prior.mean.size != mean.size:
        raise ValueError(f"the prior has {prior.mean.size} coordinates; the model has {mean.size} parameters")
    count = J * len(prior.scales) * union
    if posterior_std is None:
        std = optimise_posterior(model, (Y, X), prior, levels=lv, posterior=posterior, delta=delta, union=union,
                                 chunk=chunk, seed=seed + 7919, progress=progress)
    else:
        std = as_finite_array(posterior_std, "posterior_std", shape=(mean.size,))
        if np.any(std <= 0):
            raise ValueError("posterior_std must be positive in every coordinate (the point mass is point_mass_bound)")
    chunk = even_chunk(m, chunk)
    losses, groups = gibbs_losses(model, std, (Y, X), draws=positive_int(draws, "draws"), seed=seed, chunk=chunk,
                                  per_sample=per_sample, progress=progress)
    z = pieces_upper(_loss_upper(losses, X.shape[1]), lv)
    group_upper, _ = _group_means_upper(z, groups)
    N = group_upper.shape[0]
    mc_mean = np.array([mean_upper(group_upper[:, j]) for j in range(J)])
    mc_cost = confidence_cost_upper(J, delta_mc, N)
    piece_upper = np.array([kl_inverse_upper(float(min(1.0, v)), mc_cost) for v in mc_mean])
    log_xi = log_xi_upper(m)
    best = None
    for _, sp in _estimate(mean, std, prior, piece_upper, lv, _log_conf(m, count, delta), m)[:2]:
        kl = gaussian_kl_upper(mean, std, prior.mean, sp * prior.shape)
        C = complexity_upper(kl, log_xi, count, delta, m)
        inverses = kl_inverses_upper(piece_upper, C)
        value = weighted_sum_upper(inverses, lv)
        if best is None or value < best[0]:
            best = (value, sp, kl, C, inverses)
    assert best is not None
    value, sp, kl, C, inverses = best
    cert = {"form": "gaussian", "num_samples": m, "levels": lv, "delta": delta, "delta_mc": delta_mc, "union": union,
            "prior_scales": prior.scales, "log_xi": log_xi, "kl": kl, "complexity": C, "mc_groups": N, "mc_cost": mc_cost,
            "mc_mean_upper": mc_mean, "piece_upper": piece_upper, "kl_inverse": inverses, "value": value, "posterior_mean": mean,
            "posterior_std": std, "prior_mean": prior.mean, "prior_std": sp * prior.shape, "prior_scale": sp,
            "draws": int(draws), "chunk": chunk, "seed": int(seed)}
    det = _deterministic(model, Y, X, lv)
    widths = np.diff(lv)
    details = {"covers": f"the Gibbs predictor θ ∼ N(θ̂, diag σ²), loss min(‖h_θ(y) − x‖², {lv[-1]:g})",
               "statement": "Gibbs predictor (a fresh θ ∼ Q per prediction), loss clipped at b",
               "gibbs_train_loss_mc": float(np.sum(widths * _group_means(split_pieces(losses, lv), groups).mean(axis=0))),
               "gibbs_train_loss_upper": float(np.sum(widths * piece_upper)),
               "gibbs_train_loss_unclipped_mc": float(np.mean(losses)), "prior_scale": sp, "prior_scales": prior.scales,
               "delta_mc": delta_mc, "confidence": 1.0 - delta - delta_mc, "mc_groups": N, "draws": int(draws),
               "posterior_std": std, "num_parameters": int(mean.size), "posterior": posterior}
    return _finish(value, det, cert, prior.data_free, prior.origin, QUANTITY, METHOD, details, start)


def pac_bayes_bound(model: nn.Module, data: Any, *, clip: float | None = None, posterior_std: Any = None,
                    prior_mean: Any = "init", prior_shape: Any = "init", prior_scales: Any = PRIOR_SCALES,
                    delta: float = 0.05, delta_mc: float = 0.01, pieces: int = 16, levels: Any = None, draws: int = 32,
                    chunk: int = 50, union: int = 1, posterior: str = "auto", seed: int = 0,
                    per_sample: bool | None = None, progress: bool | None = None) -> Bound:
    """:func:`gaussian_bound` with the prior of :func:`data_free_prior` (certified for ``"init"``/``"zero"``; a prior
    given as a vector or a model is the caller's, and the Bound is then not certified). ``data = (Y, X)`` is the
    training sample."""
    prior = data_free_prior(model, prior_mean, prior_shape, prior_scales)
    return gaussian_bound(model, data, prior, clip=clip, levels=levels, posterior_std=posterior_std, posterior=posterior,
                          delta=delta, delta_mc=delta_mc, pieces=pieces, draws=draws, chunk=chunk, union=union, seed=seed,
                          per_sample=per_sample, progress=progress)


def optimise_posterior(model: nn.Module, data: Any, prior: Prior, *, levels: Any, posterior: str = "auto",
                       posterior_scales: Any = POSTERIOR_SCALES, delta: float = 0.05, union: int = 1, max_samples: int = 2000,
                       chunk: int = 50, seed: int = 1, progress: bool | None = None) -> np.ndarray:
    """The posterior standard deviations ``σ = s·shape`` (module docstring, **Posterior**) that minimise an estimate of
    the bound, over ``shape`` ∈ {the prior's shape, the curvature shape of ``posterior``} and ``s`` ∈
    ``posterior_scales`` (a coarse pass over every other scale, then the neighbours of the best), with one draw per
    group on at most ``max_samples`` samples."""
    Y, X = as_dataset(data, "data", m=getattr(model, "m", None), n=getattr(model, "n", None))
    lv = check_levels(levels)
    candidates = _scales(posterior_scales, "posterior_scales")
    family = _family(model, posterior)
    k = min(Y.shape[0], positive_int(max_samples, "max_samples"))
    sub = (Y[:k], X[:k])
    shapes = [prior.shape, curvature_shape(model, sub, posterior=family, reference=prior.shape)]
    mean, m = flat_parameters(model), Y.shape[0]
    log_conf = _log_conf(m, (lv.size - 1) * len(prior.scales) * positive_int(union, "union"), delta)
    sub_chunk = even_chunk(k, chunk)
    cache: dict[tuple[int, int], float] = {}

    def score(a: int, i: int) -> float:
        if (a, i) not in cache:
            std = candidates[i] * shapes[a]
            losses, groups = gibbs_losses(model, std, sub, seed=seed + 97 * a + i, chunk=sub_chunk, progress=False)
            z = _group_means(split_pieces(np.where(np.isfinite(losses), losses, np.inf), lv), groups).mean(axis=0)
            cache[(a, i)] = _estimate(mean, std, prior, z, lv, log_conf, m)[0][0]
        return cache[(a, i)]

    bar = tqdm(total=2, desc="posterior", disable=None if progress is None else not progress, leave=False)
    best: tuple[float, int, int] | None = None
    for a in range(len(shapes)):
        coarse = min(range(0, len(candidates), 2), key=lambda i: score(a, i))
        for i in (coarse - 1, coarse, coarse + 1):
            if 0 <= i < len(candidates) and (best is None or score(a, i) < best[0]):
                best = (score(a, i), a, i)
        bar.update(1)
    bar.close()
    assert best is not None
    return candidates[best[2]] * shapes[best[1]]


def _family(model: nn.Module, posterior: str) -> str:
    if posterior == "auto":
        return "coordinate" if model_size(model) <= MAX_CURVATURE_PARAMETERS else "tensor"
    if posterior not in POSTERIOR_FAMILIES:
        raise ValueError(f"posterior must be 'auto' or one of {POSTERIOR_FAMILIES}, got {posterior!r}")
    return posterior
