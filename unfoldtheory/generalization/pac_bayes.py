"""A PAC-Bayes bound with an optimised Gaussian posterior over the learned parameters (the tight route).

**Predictor.** The Gibbs predictor of ``Q = N(θ̂, diag σ²)``: each prediction uses a fresh
``θ ∼ Q`` over the flat vector of *distinct* learned parameters (``model.parameters()``; a shared
parameter is one coordinate, counted once). ``θ̂`` is the trained model. The statement is about this
stochastic predictor, not the deterministic ``h_θ̂`` (no derandomisation is claimed).

**Loss.** ``ℓ = ‖h(y) − x‖²`` clipped at ``b`` (``clip``): the statement bounds ``E_Q E min(ℓ_θ, b)``.
The clipped loss equals ``ℓ`` wherever ``ℓ ≤ b``; ``details`` reports the fraction of training losses
above ``b``. ``E(ℓ − b)₊``, the part of the expected loss the statement leaves out, is not bounded
(the squared loss of Gaussian signals is unbounded); :func:`gibbs_losses` on held-out data estimates it.

**Prior.** ``P = N(μ_P, diag s²)`` with ``s = σ_P·r``: ``r`` a per-coordinate shape and ``σ_P`` from
the grid ``prior_scales`` (a union bound over the grid). Default (``prior_mean="init"``,
``prior_shape="init"``): ``μ_P`` = the model's data-free classical initialisation and ``r`` = the RMS
of each initial parameter tensor (``|θ_init|`` for scalars), both fixed before the data. A module that is not a
package model has no such initialisation: ``prior_mean="zero"`` (the origin) with the unit shape ``r = 1`` is
data-free for every module. A prior
supplied by the caller (e.g. trained on a disjoint part of the sample, Ambroladze et al. 2007;
Pérez-Ortiz et al. 2021) is valid only if it was chosen without ``data``; the Bound is then not
marked certified.

**Bound.** With ``0 = t_0 < t_1 < … < t_J = b`` (``t_j = b·2^{−(J−j)/2}``, fixed by ``b`` and ``J``),
``min(ℓ, b) = Σ_j Δ_j Z_j`` exactly, ``Δ_j = t_j − t_{j−1}``, ``Z_j = min((ℓ − t_{j−1})₊, Δ_j)/Δ_j ∈ [0, 1]``
(``proofs/split_kl.py``; the "split-kl" decomposition of Wu & Seldin 2022 with continuous pieces). For
each piece, PAC-Bayes-kl (Seeger 2002; Maurer 2004, with the exact ``ξ(m) ≤ 2√m``, see
:mod:`~unfoldtheory.generalization.kl`): with probability ≥ 1 − δ', for every posterior ``Q``,
``kl(Ẑ_j(Q)‖Z_j(Q)) ≤ (KL(Q‖P) + log(ξ(m)/δ'))/m``. A union bound over the ``J`` pieces, the ``G``
prior scales and ``union`` further choices made by the caller (e.g. ``b`` from a grid) sets
``δ' = δ/(J·G·union)``. Then ``E_Q E min(ℓ, b) ≤ Σ_j Δ_j kl⁻¹(Ẑ_j(Q), C)``, ``C = (KL + log(ξ(m)/δ'))/m``.

**Monte Carlo.** ``Ẑ_j(Q) = E_Q (1/m)Σ_i Z_j(θ, z_i)`` is not computed exactly: each training sample
``i`` gets ``draws`` independent ``θ ∼ Q`` (for models whose parameters are all scalars; other models
share one draw among a chunk of ``chunk`` samples and average within the chunk). The resulting
``N`` group values are independent, ``[0, 1]``-valued, and their average expectation is ``Ẑ_j(Q)``,
so ``Ẑ_j(Q) ≤ kl⁻¹(mean, log(J/δ_mc)/N)`` with probability ≥ 1 − δ_mc/J each (Hoeffding's kl
inequality, :func:`~unfoldtheory.generalization.kl.kl_upper_confidence`; the one-sided form of
Langford & Caruana 2001's sample-convergence bound). ``kl⁻¹(·, C)`` is increasing in its first
argument, so the upper confidence values can be substituted. Overall confidence ``1 − δ − δ_mc``.

**Posterior.** :func:`optimise_posterior` picks ``σ = s·shape``: ``shape`` from the diagonal of the
Hessian of the training loss at ``θ̂`` (``σ_i² ∝ 1/H_ii``, the minimiser of ``Σ log(1/σ_i)`` at a fixed
second-order loss increase ``½Σ H_ii σ_i²``; the reference shape ``r`` for models with more than
``MAX_CURVATURE_PARAMETERS`` parameters) and ``s`` from a grid by the bound itself, evaluated with
Monte Carlo draws independent of the final ones. A PAC-Bayes bound holds for every ``Q`` at once,
so choosing ``Q`` with the data costs nothing.

**Certification.** Every ``kl⁻¹`` is proved after its bisection (interval arithmetic), but the Bound is not
certified (:data:`UNPROVEN`): ``KL(Q‖P)`` (a float sum with logarithms), ``log ξ(m)`` (``gammaln`` with an
a-priori margin of 1e-10, smaller than its rounding for large m), the Monte-Carlo piece means and the
complexity ``C`` are evaluated in plain float64 without directed rounding. A caller-supplied prior is in
any case valid only if it was chosen without ``data``.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from unfoldtheory.generalization.data import as_dataset, squared_losses
from unfoldtheory.generalization.kl import kl_inverse_upper, maurer_log_xi
from unfoldtheory.generalization.parameter_lipschitz import flat_parameters, has_initialisation, initial_model, model_size
from unfoldtheory.results import Bound
from unfoldtheory.validation import as_finite_array, finite_float, positive_int

QUANTITY = ("gap of the Gibbs predictor θ ∼ Q = N(θ̂, diag σ²) for the loss clipped at b: "
            "E_Q E min(ℓ_θ, b) − training loss of θ̂, with probability >= 1 − δ − δ_mc")
METHOD = "PAC-Bayes-kl (Maurer) over split-kl pieces, Gaussian posterior, Monte Carlo (Hoeffding-kl)"
#: Prior scales σ_P (relative to the shape r): a union bound over this grid is part of every bound.
PRIOR_SCALES: tuple[float, ...] = tuple(2.0 ** k for k in range(-8, 5))
#: Posterior scales s tried by :func:`optimise_posterior` (relative to the shape).
POSTERIOR_SCALES: tuple[float, ...] = tuple(2.0 ** (k / 2.0) for k in range(-24, -1))
MAX_CURVATURE_PARAMETERS = 256
#: Why the bound is not certified (issue 12 audit).
UNPROVEN = ("not certified: KL(Q‖P), log ξ(m) (gammaln, a-priori margin 1e-10), the Monte-Carlo piece means and the "
            "complexity C are float64 evaluations without directed rounding (each kl⁻¹ itself is proved)")
ZERO_SCALE = 0.1


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


# ---------------------------------------------------------------------------- priors and posteriors
def reference_scale(model: nn.Module) -> np.ndarray:
    """The data-free shape ``r``: per parameter tensor, the RMS of its value at the classical
    initialisation (``ZERO_SCALE`` for a tensor that starts at zero), repeated over its entries; all ones for
    a module without a data-free initialisation (not a package model)."""
    if not has_initialisation(model):
        return np.ones(model_size(model))
    parts = []
    for p in initial_model(model).parameters():
        rms = float(p.detach().double().pow(2).mean().sqrt())
        parts.append(np.full(p.numel(), rms if rms > 1e-12 else ZERO_SCALE))
    return np.concatenate(parts)


def gaussian_kl(mean_q: np.ndarray, std_q: np.ndarray, mean_p: np.ndarray, std_p: np.ndarray) -> float:
    """``KL(N(μ_q, diag σ_q²) ‖ N(μ_p, diag σ_p²)) = ½Σ[σ_q²/σ_p² + (μ_q − μ_p)²/σ_p² − 1 + log(σ_p²/σ_q²)]``."""
    ratio = (std_q / std_p) ** 2
    return float(0.5 * np.sum(ratio + ((mean_q - mean_p) / std_p) ** 2 - 1.0 - np.log(ratio)))


def _resolve_prior(model: nn.Module, prior_mean: Any, prior_shape: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    D = model_size(model)
    builtin = True
    if isinstance(prior_mean, str):
        if prior_mean not in ("init", "zero"):
            raise ValueError(f"prior_mean must be 'init', 'zero', a parameter vector or a model, got {prior_mean!r}")
        mean = flat_parameters(initial_model(model)) if prior_mean == "init" else np.zeros(D)
    else:
        builtin = False
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
        builtin = False
        shape = as_finite_array(prior_shape, "prior_shape", shape=(D,))
        if np.any(shape <= 0):
            raise ValueError("prior_shape must be positive in every coordinate")
    return mean, shape, builtin


def _prior_name(model: nn.Module, prior_mean: Any) -> str:
    if isinstance(prior_mean, str) and prior_mean == "zero":
        shape = "initialisation's shape" if has_initialisation(model) else "unit shape"
        return f"the origin with the {shape} (data-free)"
    return "classical initialisation (data-free)"


def _scales(values: Any, what: str) -> tuple[float, ...]:
    out = tuple(finite_float(v, f"{what}[{i}]", low=0.0, low_open=True) for i, v in enumerate(values))
    if not out:
        raise ValueError(f"{what} is empty")
    return out


# ---------------------------------------------------------------------------- Gibbs losses
def _all_scalar(model: nn.Module) -> bool:
    """Whether one forward pass may take a different parameter draw per sample: a package model whose
    parameters are all scalars (its forward broadcasts a (batch, 1) parameter; a user's module need not)."""
    return has_initialisation(model) and all(p.numel() == 1 for p in model.parameters())


def _evaluate(model: nn.Module, thetas: torch.Tensor, Y: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Losses of sample ``i`` under parameters ``thetas[i]`` (all parameters scalar: broadcast)."""
    params, offset = {}, 0
    for name, _ in model.named_parameters():
        params[name] = thetas[:, offset:offset + 1]
        offset += 1
    out = torch.func.functional_call(model, params, (Y,))
    return ((out - X) ** 2).sum(dim=1)


def gibbs_losses(model: nn.Module, std: Any, data: Any, *, draws: int = 1, seed: int = 0, chunk: int = 50,
                 batch_size: int = 8192, progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Losses of the Gibbs predictor ``N(θ̂, diag std²)`` on ``data = (Y, X)``.

    Returns ``(losses, groups)``: ``losses`` has shape ``(draws, N)``; entries with the same value in
    ``groups`` (same shape) share one parameter draw, and different groups have independent draws.
    Models whose parameters are all scalars get a fresh draw for every entry; others one draw per
    ``chunk`` consecutive samples.
    """
    Y, X = as_dataset(data, "data", m=getattr(model, "m", None), n=getattr(model, "n", None))
    mean = flat_parameters(model)
    std = as_finite_array(std, "posterior std", shape=(mean.size,))
    if np.any(std < 0):
        raise ValueError("posterior std must be >= 0")
    draws = positive_int(draws, "draws")
    chunk = positive_int(chunk, "chunk")
    N = Y.shape[0]
    gen = torch.Generator().manual_seed(int(seed))
    mu, sd = torch.as_tensor(mean), torch.as_tensor(std)
    work = copy.deepcopy(model).double()
    losses = np.empty((draws, N))
    groups = np.empty((draws, N), dtype=np.int64)
    scalar = _all_scalar(work)
    total = draws * (math.ceil(N / batch_size) if scalar else math.ceil(N / chunk))
    bar = tqdm(total=total, desc="Gibbs losses", disable=None if progress is None else not progress, leave=False)
    Yt, Xt = torch.as_tensor(Y), torch.as_tensor(X)
    with torch.no_grad():
        for r in range(draws):
            if scalar:
                for start in range(0, N, batch_size):
                    stop = min(N, start + batch_size)
                    thetas = mu + sd * torch.randn(stop - start, mean.size, generator=gen, dtype=torch.float64)
                    losses[r, start:stop] = _evaluate(work, thetas, Yt[start:stop], Xt[start:stop]).numpy()
                    bar.update(1)
                groups[r] = r * N + np.arange(N)
                continue
            for g, start in enumerate(range(0, N, chunk)):
                stop = min(N, start + chunk)
                theta = mu + sd * torch.randn(mean.size, generator=gen, dtype=torch.float64)
                params, offset = {}, 0
                for name, p in work.named_parameters():
                    params[name] = theta[offset:offset + p.numel()].reshape(p.shape)
                    offset += p.numel()
                out = torch.func.functional_call(work, params, (Yt[start:stop],))
                losses[r, start:stop] = ((out - Xt[start:stop]) ** 2).sum(dim=1).numpy()
                groups[r, start:stop] = r * N + g
                bar.update(1)
    bar.close()
    return losses, groups


def _group_means(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per-group means of ``values`` (last axis j), one row per distinct group."""
    flat_v, flat_g = values.reshape(-1, values.shape[-1]), groups.reshape(-1)
    _, inverse, counts = np.unique(flat_g, return_inverse=True, return_counts=True)
    sums = np.zeros((counts.size, flat_v.shape[1]))
    np.add.at(sums, inverse, flat_v)
    return sums / counts[:, None]


# ---------------------------------------------------------------------------- the curvature shape
def curvature_shape(model: nn.Module, data: Any, *, max_samples: int = 2000) -> np.ndarray:
    """A posterior shape ``σ_i ∝ 1/√H_ii`` from the Hessian diagonal of the mean training loss at the
    model, normalised to the geometric mean of :func:`reference_scale` (the reference shape itself for
    models with more than ``MAX_CURVATURE_PARAMETERS`` parameters or without positive curvature)."""
    r = reference_scale(model)
    if model_size(model) > MAX_CURVATURE_PARAMETERS or not _all_scalar(model):
        return r
    Y, X = as_dataset(data, "data", m=getattr(model, "m", None), n=getattr(model, "n", None))
    Y, X = Y[:positive_int(max_samples, "max_samples")], X[:max_samples]
    work = copy.deepcopy(model).double()
    Yt, Xt = torch.as_tensor(Y), torch.as_tensor(X)
    centre = torch.as_tensor(flat_parameters(model))

    def loss(theta: torch.Tensor) -> torch.Tensor:
        return _evaluate(work, theta[None, :].expand(Yt.shape[0], -1), Yt, Xt).mean()

    hess = torch.autograd.functional.hessian(loss, centre).numpy()
    diag = np.diag(hess) * r ** 2  # curvature in units of the reference shape
    positive = diag[np.isfinite(diag) & (diag > 0)]
    if positive.size == 0:
        return r
    floor = 1e-6 * float(positive.max())
    diag = np.where(np.isfinite(diag) & (diag > floor), diag, floor)
    rel = 1.0 / np.sqrt(diag)
    return r * rel / math.exp(float(np.mean(np.log(rel))))


# ---------------------------------------------------------------------------- the bound
def _assemble(pieces_upper: np.ndarray, levels: np.ndarray, C: float) -> float:
    widths = np.diff(levels)
    total = 0.0
    for w, z in zip(widths, pieces_upper, strict=True):
        total += float(w) * kl_inverse_upper(float(min(1.0, z)), C)
    return float(np.nextafter(total * (1.0 + 1e-12), math.inf))


def _mc_upper(piece_means: np.ndarray, N: int, delta_each: float) -> np.ndarray:
    c = math.log(1.0 / delta_each) / N
    return np.array([kl_inverse_upper(float(min(1.0, max(0.0, z))), c) for z in piece_means])


def _best_over_prior(mean: np.ndarray, std: np.ndarray, prior_mean: np.ndarray, shape: np.ndarray,
                     scales: tuple[float, ...], upper: np.ndarray, levels: np.ndarray, log_conf: float,
                     m: int) -> tuple[float, float, float, float]:
    """``(bound, σ_P, KL, C)`` minimising the bound over the prior scales."""
    best: tuple[float, float, float, float] | None = None
    for sp in scales:
        kl = gaussian_kl(mean, std, prior_mean, sp * shape)
        C = (kl + log_conf) / m
        value = _assemble(upper, levels, C)
        if best is None or value < best[0]:
            best = (value, sp, kl, C)
    assert best is not None
    return best


def _check_common(model: nn.Module, data: Any, clip: Any, delta: Any, delta_mc: Any, pieces: Any,
                  union: Any) -> tuple[np.ndarray, np.ndarray, float, float, float, int, int]:
    if not isinstance(model, nn.Module) or model_size(model) == 0:
        raise ValueError("model must be a torch module with learned parameters")
    Y, X = as_dataset(data, "data", m=getattr(model, "m", None), n=getattr(model, "n", None))
    b = finite_float(clip, "clip", low=0.0, low_open=True)
    delta = finite_float(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
    delta_mc = finite_float(delta_mc, "delta_mc", low=0.0, high=1.0, low_open=True, high_open=True)
    if delta + delta_mc >= 1.0:
        raise ValueError(f"delta + delta_mc = {delta + delta_mc} must be < 1")
    return Y, X, b, delta, delta_mc, positive_int(pieces, "pieces"), positive_int(union, "union")


def pac_bayes_bound(model: nn.Module, data: Any, *, clip: float, posterior_std: Any = None, prior_mean: Any = "init",
                    prior_shape: Any = "init", prior_scales: Any = PRIOR_SCALES, delta: float = 0.05,
                    delta_mc: float = 0.01, pieces: int = 16, draws: int = 32, chunk: int = 50, union: int = 1,
                    seed: int = 0, progress: bool | None = None) -> Bound:
    """Upper bound on the gap ``E_Q E min(ℓ_θ, b) − L̂_S(θ̂)`` of the Gibbs predictor (module docstring).

    ``data = (Y, X)`` is the training sample (for a caller-supplied prior: the part not used to choose
    it). ``posterior_std`` (per coordinate of the flat parameter vector) defaults to
    :func:`optimise_posterior`. ``details["expected_loss_bound"]`` is the bound on ``E_Q E min(ℓ, b)``;
    ``details["vacuous"]`` says whether it reaches ``b``, which any clipped loss respects.
    """
    start = time.perf_counter()
    Y, X, b, delta, delta_mc, J, union = _check_common(model, data, clip, delta, delta_mc, pieces, union)
    scales = _scales(prior_scales, "prior_scales")
    mean = flat_parameters(model)
    prior_mu, shape, builtin = _resolve_prior(model, prior_mean, prior_shape)
    if posterior_std is None:
        std = optimise_posterior(model, (Y, X), clip=b, prior_mean=prior_mu, prior_shape=shape, prior_scales=scales,
                                 delta=delta, delta_mc=delta_mc, pieces=J, union=union, seed=seed + 7919,
                                 chunk=chunk, progress=progress)
    else:
        std = as_finite_array(posterior_std, "posterior_std", shape=(mean.size,))
        if np.any(std <= 0):
            raise ValueError("posterior_std must be positive in every coordinate")
    m = Y.shape[0]
    levels = split_levels(b, J)
    losses, groups = gibbs_losses(model, std, (Y, X), draws=draws, seed=seed, chunk=chunk, progress=progress)
    per_group = _group_means(split_pieces(losses, levels), groups)
    N = per_group.shape[0]
    piece_mc = per_group.mean(axis=0)
    upper = _mc_upper(piece_mc, N, delta_mc / J)
    log_conf = maurer_log_xi(m) + math.log(J * len(scales) * union / delta)
    value, sp, kl, C = _best_over_prior(mean, std, prior_mu, shape, scales, upper, levels, log_conf, m)
    det_losses = squared_losses(model, (Y, X))
    train = float(det_losses.mean())
    widths = np.diff(levels)
    details: dict[str, Any] = {
        "expected_loss_bound": value, "train_loss": train, "clip": b, "num_samples": m,
        "clipped_fraction_train": float(np.mean(det_losses > b)),
        "gibbs_train_loss_mc": float(np.sum(widths * piece_mc)), "gibbs_train_loss_upper": float(np.sum(widths * upper)),
        "gibbs_train_loss_unclipped_mc": float(losses.mean()), "kl": kl, "prior_scale": sp, "complexity": C,
        "log_maurer_xi": maurer_log_xi(m), "pieces": J, "levels": levels, "prior_scales": scales, "union": union,
        "delta": delta, "delta_mc": delta_mc, "confidence": 1.0 - delta - delta_mc, "mc_groups": N, "draws": draws,
        "posterior_std": std, "num_parameters": int(mean.size), "prior": _prior_name(model, prior_mean)
        if builtin else "supplied by the caller", "trivial_bound": b, "vacuous": value >= b,
        "statement": "Gibbs predictor (a fresh θ ∼ Q per prediction), loss clipped at b",
    }
    details["reason"] = UNPROVEN
    if not builtin:
        details["reason"] += "; the prior was supplied by the caller: valid only if it was chosen without `data`"
    return Bound(value - train, "upper", QUANTITY, METHOD, certified=False, seconds=time.perf_counter() - start,
                 details=details)


def optimise_posterior(model: nn.Module, data: Any, *, clip: float, prior_mean: Any = "init", prior_shape: Any = "init",
                       prior_scales: Any = PRIOR_SCALES, posterior_scales: Any = POSTERIOR_SCALES, delta: float = 0.05,
                       delta_mc: float = 0.01, pieces: int = 16, union: int = 1, max_samples: int = 2000, chunk: int = 50,
                       seed: int = 1, progress: bool | None = None) -> np.ndarray:
    """The posterior standard deviations ``σ = s·shape`` (module docstring, **Posterior**) that minimise the
    bound of :func:`pac_bayes_bound`, estimated with one draw per sample on at most ``max_samples`` samples."""
    Y, X, b, delta, delta_mc, J, union = _check_common(model, data, clip, delta, delta_mc, pieces, union)
    scales = _scales(prior_scales, "prior_scales")
    candidates = _scales(posterior_scales, "posterior_scales")
    prior_mu, prior_r, _ = _resolve_prior(model, prior_mean, prior_shape)
    shape = curvature_shape(model, (Y, X), max_samples=max_samples)
    sub = (Y[:max_samples], X[:max_samples])
    mean, m = flat_parameters(model), Y.shape[0]
    levels = split_levels(b, J)
    log_conf = maurer_log_xi(m) + math.log(J * len(scales) * union / delta)
    best: tuple[float, float] | None = None
    for k, s in enumerate(tqdm(candidates, desc="posterior scale", disable=None if progress is None else not progress,
                               leave=False)):
        losses, groups = gibbs_losses(model, s * shape, sub, seed=seed + k, chunk=chunk, progress=False)
        per_group = _group_means(split_pieces(losses, levels), groups)
        upper = _mc_upper(per_group.mean(axis=0), m, delta_mc / J)  # the final run uses ≥ m draws
        value = _best_over_prior(mean, s * shape, prior_mu, prior_r, scales, upper, levels, log_conf, m)[0]
        if best is None or value < best[0]:
            best = (value, s)
    assert best is not None
    return best[1] * shape
