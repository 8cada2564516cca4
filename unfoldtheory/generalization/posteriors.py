"""Gaussian posteriors over matrix weights: block scales, and the Gibbs losses of ``N(θ̂, diag σ²)``.

**Blocks.** A posterior family ties the standard deviations of a Gaussian ``N(θ̂, diag σ²)`` around the trained
weights within blocks of the flat parameter vector (:func:`~unfoldtheory.generalization.parameter_lipschitz.\
flat_parameters`: ``model.parameters()`` order, a tied parameter once). :func:`parameter_blocks` partitions the
vector: one block per scalar (``"coordinate"``), per parameter tensor (``"tensor"``) or per row of every
matrix (``"row"``: first-dimension slices of tensors with ≥ 2 dimensions; a scalar or vector is one block).
:func:`block_std` spreads one scale per block over its coordinates; :func:`block_rms` is the per-block RMS of a
model's parameters, the natural shape of a prior centred on a model trained without the bound's data.

**Gibbs losses.** :func:`gibbs_losses` evaluates ``‖h_θ(y_i) − x_i‖²`` for draws ``θ = θ̂ + σ ⊙ ε``,
``ε ∼ N(0, I)``, in float64 on the CPU. Each *unit* (one sample, or a chunk of consecutive samples) gets
``draws`` independent parameter vectors; a group is one (draw, unit) pair and shares one ``θ``. Models that
broadcast a per-sample parameter (package models whose parameters are all scalars) take one draw per sample in
one forward pass; other models are evaluated for many draws at once with ``torch.func.vmap`` over stacked
parameter vectors (``functional_call``), with a plain loop as the fallback for modules that vmap cannot
batch (data-dependent control flow, random ops). The numbers are the same either way, to rounding.

**Generator.** ``ε`` comes from ``numpy.random.default_rng(seed)`` (PCG64 seeded through ``SeedSequence``),
consumed in a fixed order: units in sample order, and within a unit its draws ``r = 0, …, draws − 1``, each
the next ``D`` standard normals (``D`` parameters). numpy fills normals one after another, so the draws do not
depend on how many are generated per call: the losses are a function of the seed, the data, ``std`` and the
grouping alone. Distinct groups use disjoint stretches of one stream, i.e. independent draws.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from unfoldtheory.generalization.data import as_dataset, squared_losses
from unfoldtheory.generalization.parameter_lipschitz import flat_parameters, has_initialisation, model_size
from unfoldtheory.validation import as_finite_array, finite_float, positive_int

__all__ = ["KINDS", "MAX_DRAW_BYTES", "PER_SAMPLE_NORMALS", "RMS_FLOOR", "block_rms", "block_std", "broadcast_losses",
           "broadcastable", "draws_per_call", "gibbs_losses", "parameter_blocks"]

KINDS: tuple[str, ...] = ("coordinate", "tensor", "row")
#: Bytes of stacked parameter draws per vectorised call: ``B·D·8`` for the draws themselves and as much again
#: for the copies that batched matrix products make, so ``B = MAX_DRAW_BYTES // (16·D)`` draws per call.
MAX_DRAW_BYTES = 2 ** 28
#: ``per_sample=None`` takes one draw per sample for a model that cannot broadcast when ``N·draws·D`` (the
#: standard normals it needs) is at most this: about a second of generation.
PER_SAMPLE_NORMALS = 2 ** 26
#: :func:`block_rms` raises a block's RMS to at least this fraction of the whole vector's RMS.
RMS_FLOOR = 1e-2


# ---------------------------------------------------------------------------- blocks
def _check_model(model: Any) -> int:
    if not isinstance(model, nn.Module) or model_size(model) == 0:
        raise ValueError("model must be a torch module with learned parameters")
    return model_size(model)


def parameter_blocks(model: nn.Module, kind: str) -> list[np.ndarray]:
    """Index arrays into ``flat_parameters(model)`` that partition it: one block per scalar (``"coordinate"``),
    per parameter tensor (``"tensor"``), or per first-dimension slice of every tensor with ≥ 2 dimensions
    (``"row"``; a 0-D or 1-D tensor is one block). Blocks are in vector order, each an increasing int64 range."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(repr(k) for k in KINDS)}; got {kind!r}")
    size = _check_model(model)
    if kind == "coordinate":
        return [np.array([i], dtype=np.int64) for i in range(size)]
    blocks, offset = [], 0
    for p in model.parameters():
        rows = p.shape[0] if kind == "row" and p.ndim >= 2 and p.numel() > 0 else 1
        width = p.numel() // rows
        for _ in range(rows):
            blocks.append(np.arange(offset, offset + width, dtype=np.int64))
            offset += width
    return [b for b in blocks if b.size]


def _check_blocks(blocks: Any, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, lengths)`` of ``blocks`` after checking that they partition ``range(size)`` exactly."""
    if not isinstance(blocks, (list, tuple)) or not blocks:
        raise ValueError("blocks must be a non-empty list of index arrays")
    parts = []
    for k, b in enumerate(blocks):
        arr = np.asarray(b)
        if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"blocks[{k}] must be a non-empty 1-D integer array; got dtype {arr.dtype}, shape {arr.shape}")
        parts.append(arr.astype(np.int64))
    idx = np.concatenate(parts)
    if idx.min() < 0 or idx.max() >= size:
        raise ValueError(f"blocks index {int(idx.min() if idx.min() < 0 else idx.max())}, outside the {size} coordinates")
    counts = np.bincount(idx, minlength=size)
    if np.any(counts != 1):
        bad = int(np.flatnonzero(counts != 1)[0])
        raise ValueError(f"blocks do not partition the {size} coordinates: coordinate {bad} is covered {int(counts[bad])} times")
    return idx, np.array([p.size for p in parts])


def block_std(blocks: list[np.ndarray], scales: Any, size: int) -> np.ndarray:
    """The per-coordinate standard deviation ``σ_i = s_k`` for ``i`` in block ``k`` (``scales`` ≥ 0, one per
    block; ``blocks`` must partition ``range(size)``)."""
    size = positive_int(size, "size")
    idx, lengths = _check_blocks(blocks, size)
    s = as_finite_array(scales, "scales", shape=(len(blocks),))
    if np.any(s < 0):
        raise ValueError(f"scales must be >= 0; scales[{int(np.argmax(s < 0))}] = {s[s < 0][0]}")
    out = np.empty(size)
    out[idx] = np.repeat(s, lengths)
    return out


def block_rms(model: nn.Module, blocks: list[np.ndarray], *, floor: float | None = None) -> np.ndarray:
    """Per-block RMS ``√(mean_{i∈k} θ_i²)`` of the model's parameters, raised to at least ``floor`` (default:
    ``RMS_FLOOR`` times the RMS of the whole vector, or 1 if that is zero), so that a zero block keeps a
    positive scale. Computed from the model alone: a prior shape free of any data the model did not see."""
    _check_model(model)
    theta = flat_parameters(model)
    idx, lengths = _check_blocks(blocks, theta.size)
    if floor is None:
        total = float(np.sqrt(np.mean(theta ** 2)))
        low = RMS_FLOOR * total if total > 0 else 1.0
    else:
        low = finite_float(floor, "floor", low=0.0, low_open=True)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rms = np.sqrt(np.add.reduceat(theta[idx] ** 2, starts) / lengths)
    return np.maximum(rms, low)


# ---------------------------------------------------------------------------- evaluation
def broadcastable(model: nn.Module) -> bool:
    """Whether one forward pass may take a different parameter draw per sample: a package model whose
    parameters are all scalars (its forward broadcasts a (batch, 1) parameter; a user's module need not)."""
    return has_initialisation(model) and all(p.numel() == 1 for p in model.parameters())


def broadcast_losses(model: nn.Module, thetas: torch.Tensor, Y: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Losses of sample ``i`` under parameters ``thetas[i]`` (a :func:`broadcastable` model)."""
    params = {name: thetas[:, k:k + 1] for k, (name, _) in enumerate(model.named_parameters())}
    out = torch.func.functional_call(model, params, (Y,))
    return ((out - X) ** 2).sum(dim=1)


def draws_per_call(size: int, draws: int) -> int:
    """How many parameter vectors of ``size`` scalars one vectorised call stacks: ``MAX_DRAW_BYTES // (16·size)``,
    at least 1 and at most ``draws``."""
    return max(1, min(int(draws), MAX_DRAW_BYTES // (16 * int(size))))


class _Stacked:
    """Losses of a float64 model copy under stacked parameter vectors on one unit of samples."""

    def __init__(self, work: nn.Module) -> None:
        self.work = work
        self.layout = [(name, p.shape, p.numel()) for name, p in work.named_parameters()]
        self.vmap = True

    def _loss(self, y: torch.Tensor, x: torch.Tensor) -> Any:
        def loss(theta: torch.Tensor) -> torch.Tensor:
            params, offset = {}, 0
            for name, shape, count in self.layout:
                params[name] = theta[offset:offset + count].reshape(shape)
                offset += count
            out = torch.func.functional_call(self.work, params, (y,))
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(x.shape):
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(f"the model's output has shape {got}; expected {tuple(x.shape)} (the signals X)")
            return ((out - x) ** 2).sum(dim=1)
        return loss

    def __call__(self, thetas: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``(B, c)`` losses of the ``c`` samples ``(y, x)`` under each of the ``B`` rows of ``thetas``."""
        loss = self._loss(y, x)
        if self.vmap:
            try:
                return torch.func.vmap(loss)(thetas)
            except RuntimeError:  # vmap cannot batch this module: evaluate the same draws one by one
                self.vmap = False
        return torch.stack([loss(t) for t in thetas])


def _mode(model: nn.Module, per_sample: Any, N: int, draws: int, D: int) -> str:
    if per_sample is not None and not isinstance(per_sample, bool):
        raise ValueError(f"per_sample must be True, False or None; got {per_sample!r}")
    if per_sample is False:
        return "chunk"
    if broadcastable(model):
        return "broadcast"
    if per_sample or N * draws * D <= PER_SAMPLE_NORMALS:
        return "sample"
    return "chunk"


def _seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def gibbs_losses(model: nn.Module, std: Any, data: Any, *, draws: int = 1, seed: int = 0, chunk: int = 50,
                 batch_size: int = 8192, progress: bool | None = None,
                 per_sample: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Losses of the Gibbs predictor ``N(θ̂, diag std²)`` on ``data = (Y, X)`` (module docstring).

    Returns ``(losses, groups)``, both of shape ``(draws, N)``: entries with the same value in ``groups`` share
    one parameter draw, different groups have independent draws. ``per_sample=True``: one draw per sample
    (group ``r·N + i``), by broadcasting for :func:`broadcastable` models and by vmap over the draws of each
    sample otherwise; ``False``: one draw per ``chunk`` consecutive samples (group ``r·N + g`` for chunk ``g``);
    ``None``: per sample for broadcastable models and wherever ``N·draws·D ≤ PER_SAMPLE_NORMALS``, chunks
    otherwise. Memory: at most ``draws_per_call(D, draws)`` parameter vectors are stacked at once
    (``MAX_DRAW_BYTES``, 256 MiB, with their copies), plus the activations of that many forward passes on one unit;
    the broadcast path holds at most ``batch_size`` samples' draws, within the same byte budget. ``std = 0``
    everywhere gives the deterministic losses (:func:`~unfoldtheory.generalization.data.squared_losses` of the
    float64 model) in every row.
    """
    D = _check_model(model)
    Y, X = as_dataset(data, "data", m=getattr(model, "m", None), n=getattr(model, "n", None))
    mean = flat_parameters(model)
    std = as_finite_array(std, "posterior std", shape=(D,))
    if np.any(std < 0):
        raise ValueError(f"posterior std must be >= 0; entry {int(np.argmax(std < 0))} is {std[std < 0][0]}")
    draws, chunk = positive_int(draws, "draws"), positive_int(chunk, "chunk")
    batch_size, seed = positive_int(batch_size, "batch_size"), _seed(seed)
    N = Y.shape[0]
    work = copy.deepcopy(model).double().cpu()
    mode = _mode(work, per_sample, N, draws, D)
    unit = chunk if mode == "chunk" else 1
    starts = np.arange(0, N, unit)
    groups = np.arange(draws)[:, None] * N + np.repeat(np.arange(starts.size), unit)[None, :N]
    if not np.any(std):
        return np.tile(squared_losses(work, (Y, X), batch_size=batch_size), (draws, 1)), groups
    rng = np.random.default_rng(seed)
    mu, sd = torch.as_tensor(mean), torch.as_tensor(std)
    Yt, Xt = torch.as_tensor(Y), torch.as_tensor(X)
    losses = np.empty((draws, N))
    disable = None if progress is None else not progress
    with torch.no_grad():
        if mode == "broadcast":
            rows = max(1, min(batch_size, MAX_DRAW_BYTES // (16 * draws * D)))  # the draws and their transpose
            for start in tqdm(range(0, N, rows), desc="Gibbs losses", disable=disable, leave=False):
                stop = min(N, start + rows)
                eps = torch.from_numpy(rng.standard_normal((stop - start, draws, D)))
                eps = eps.transpose(0, 1).contiguous()  # (draws, rows, D)
                thetas = torch.addcmul(mu, eps, sd, out=eps)
                for r in range(draws):
                    losses[r, start:stop] = broadcast_losses(work, thetas[r], Yt[start:stop], Xt[start:stop]).numpy()
            return losses, groups
        stacked = _Stacked(work)
        B = draws_per_call(D, draws)
        buffer = np.empty((B, D))
        calls = starts.size * math.ceil(draws / B)
        with tqdm(total=calls, desc="Gibbs losses", disable=disable, leave=False) as bar:
            for start in starts:
                stop = min(N, start + unit)
                for r0 in range(0, draws, B):
                    r1 = min(draws, r0 + B)
                    eps = torch.from_numpy(rng.standard_normal(out=buffer[:r1 - r0]))
                    thetas = torch.addcmul(mu, eps, sd, out=eps)  # θ = θ̂ + σ ⊙ ε, in place
                    losses[r0:r1, start:stop] = stacked(thetas, Yt[start:stop], Xt[start:stop]).numpy()
                    bar.update(1)
    return losses, groups
