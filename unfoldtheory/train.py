"""Training schemes for unfolded models (Shlezinger et al., *Deep Unfolding*, 2025, §training).

``fit(model, problem, scheme=..., steps=..., seed=...)`` with

* ``"end_to_end"``: squared error of the last layer's output;
* ``"per_iteration"``: a weighted sum of the squared errors of every layer's output
  (weights ``layer_weights``, uniform by default);
* ``"unsupervised"``: the problem's own objective at the output (the Lasso objective for
  sparse recovery), no ground truth used;
* ``"layerwise"``: greedy stages k = 1..K, each training layer k (at the full learning rate) and
  the layers before it (at 0.2×) on the error of x_k, then joint fine-tuning of all layers
  end to end (half of the steps); Chen et al. 2018 and Cai, Liu & Yin 2021 train this way.

The squared error is ``‖x̂ − x‖²`` summed over coordinates and averaged over the batch. Batches
are drawn fresh from ``problem.sample`` at every step (unlimited data) unless a fixed training
set ``data=(Y, X)`` is given, in which case minibatches are drawn from it. Adam with gradient-norm
clipping and a cosine learning-rate decay; deterministic for a seed on a given device.

Learning rates are *relative*: each parameter tensor moves at ``lr × rms(p₀)``, where ``p₀`` is
its value at the start (``lr × 0.1`` for a tensor that starts at zero). A step size of 0.17 and a
threshold of 0.017 then both change by about ``lr`` of themselves per step; Adam's steps are
otherwise absolute, which wrecks the small scalars of learned-hyperparameter models. After every
step ``model.project_parameters()`` (where defined) projects back onto the feasible set, for
example thresholds ``>= 0``.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from unfoldtheory.metrics import nmse_db
from unfoldtheory.validation import as_finite_array, finite_float, positive_int

Scheme = Literal["end_to_end", "per_iteration", "unsupervised", "layerwise"]
SCHEMES: tuple[str, ...] = ("end_to_end", "per_iteration", "unsupervised", "layerwise")
ZERO_INIT_SCALE = 0.1
#: The relative learning rate of each package model class used by the studies and the report: the scalar-parameter
#: models move at 2 % of their values per step, the matrix models faster since their entries start small.
RELATIVE_LEARNING_RATES: dict[str, float] = {"UnfoldedISTA": 0.02, "UnfoldedFISTA": 0.02, "ALISTA": 0.02,
                                             "UnfoldedADMM": 0.02, "LISTA": 0.05, "LISTACP": 0.05, "HybridISTA": 0.05,
                                             "LearnedUpdate": 0.05}


class TrainableProblem(Protocol):
    """What ``fit`` needs from a problem."""

    def sample(self, num: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    def torch_objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...


@dataclass
class History:
    """What happened during training."""

    scheme: str
    seed: int
    device: str
    steps: int
    loss: list[float] = field(default_factory=list)
    stage: list[int] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)
    best_step: int | None = None
    seconds: float = 0.0

    @property
    def final_validation_nmse_db(self) -> float | None:
        return self.validation[-1][1] if self.validation else None


def _squared_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return ((x_hat - x) ** 2).sum(dim=tuple(range(1, x.ndim))).mean()


class _Batches:
    """Seeded minibatches: fresh samples from the problem, or draws from a fixed training set."""

    def __init__(self, problem: TrainableProblem, data: tuple[Any, Any] | None, batch_size: int, seed: int,
                 dtype: torch.dtype, device: torch.device) -> None:
        self.problem, self.batch_size, self.dtype, self.device = problem, batch_size, dtype, device
        self.rng = np.random.default_rng([seed, 7])
        if data is not None:
            Y = as_finite_array(data[0], "training inputs Y")
            X = as_finite_array(data[1], "training targets X")
            if Y.shape[0] == 0:
                raise ValueError("the training set is empty")
            if Y.shape[0] != X.shape[0]:
                raise ValueError(f"training set has {Y.shape[0]} inputs but {X.shape[0]} targets")
            self.Y, self.X = self._tensor(Y), self._tensor(X)
        else:
            self.Y = self.X = None

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=self.dtype, device=self.device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.Y is None:
            Y, X = self.problem.sample(self.batch_size, seed=int(self.rng.integers(2**62)))
            return self._tensor(Y), self._tensor(X)
        idx = torch.as_tensor(self.rng.integers(0, self.Y.shape[0], self.batch_size), device=self.device)
        return self.Y[idx], self.X[idx]


def fit(model: nn.Module, problem: TrainableProblem, scheme: Scheme = "end_to_end", steps: int = 1000, seed: int = 0, *,
        batch_size: int = 64, lr: float = 1e-2, data: tuple[Any, Any] | None = None,
        layer_weights: Any = None, validation: tuple[Any, Any] | None = None, eval_every: int | None = None,
        keep_best: bool = True, device: str | torch.device = "cpu", progress: bool | None = None) -> History:
    """Train ``model`` on ``problem`` in place and return its :class:`History`.

    ``lr`` is relative (see the module docstring); ``steps`` counts optimiser steps of
    ``batch_size`` samples. With a validation set and ``keep_best`` (the default), the model ends
    with the parameters of its best validation NMSE (early stopping), recorded in
    ``History.best_step``.

    ``model`` must provide ``forward(y, return_iterates=True)`` returning every layer's output, and,
    for ``"layerwise"``, ``layers`` and ``layer_parameters(k)``. ``validation=(Y, X)`` is evaluated
    (NMSE in dB) every ``eval_every`` steps and at the end.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme {scheme!r} is not known; choose one of {SCHEMES}")
    steps = positive_int(steps, "steps")
    batch_size = positive_int(batch_size, "batch_size")
    lr = finite_float(lr, "lr", low=0.0, low_open=True)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but torch sees no CUDA device")
    model.to(device)
    dtype = next(model.buffers(), next(model.parameters())).dtype
    torch.manual_seed(seed)
    batches = _Batches(problem, data, batch_size, seed, dtype, device)
    K = int(model.layers)
    weights = _layer_weights(layer_weights, K)
    val = None
    if validation is not None:
        val = (torch.as_tensor(as_finite_array(validation[0], "validation Y"), dtype=dtype, device=device),
               torch.as_tensor(as_finite_array(validation[1], "validation X"), dtype=dtype, device=device))
    eval_every = eval_every or max(1, steps // 10)
    best: dict[str, Any] = {"score": None, "step": None, "state": None}
    scale = {id(p): _relative_scale(p) for p in model.parameters()}
    history = History(scheme, seed, str(device), steps)
    start = time.perf_counter()
    bar = tqdm(total=steps, desc=f"fit {type(model).__name__} ({scheme})", disable=None if progress is None else not progress)

    def loss_at(y: torch.Tensor, x: torch.Tensor, layer: int | None) -> torch.Tensor:
        its = model(y, return_iterates=True)
        if scheme == "unsupervised":
            return problem.torch_objective(its[-1], y)
        if scheme == "per_iteration":
            return sum(w * _squared_error(xk, x) for w, xk in zip(weights, its, strict=True))
        return _squared_error(its[-1 if layer is None else layer], x)

    def run(groups: list[dict[str, Any]], count: int, layer: int | None, stage: int) -> None:
        groups = [{"params": [p], "lr": g["lr"] * scale[id(p)]} for g in groups for p in g["params"]]
        opt = torch.optim.Adam(groups)
        base = [g["lr"] for g in opt.param_groups]
        params = [p for g in groups for p in g["params"]]
        for i in range(count):
            for g, b in zip(opt.param_groups, base, strict=True):
                g["lr"] = b * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * i / max(count, 1))))
            y, x = batches.next()
            opt.zero_grad(set_to_none=True)
            loss = loss_at(y, x, layer)
            if not torch.isfinite(loss):
                raise RuntimeError(f"training diverged at step {len(history.loss)} (loss {loss.item()}); lower lr (now {lr})")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            if hasattr(model, "project_parameters"):
                model.project_parameters()
            history.loss.append(float(loss.item()))
            history.stage.append(stage)
            bar.update(1)
            done = len(history.loss)
            if done % 10 == 0:
                bar.set_postfix(loss=f"{history.loss[-1]:.4g}")
            if val is not None and (done % eval_every == 0 or done == steps):
                score = evaluate_nmse(model, *val)
                history.validation.append((done, score))
                if keep_best and (best["score"] is None or score < best["score"]):
                    best.update(score=score, step=done, state=copy.deepcopy(model.state_dict()))

    if scheme == "layerwise":
        per_stage = max(1, steps // (2 * K))
        for k in range(K):
            own = _unique(model.layer_parameters(k))
            own_ids = {id(p) for p in own}
            earlier = [p for p in _unique([q for j in range(k) for q in model.layer_parameters(j)]) if id(p) not in own_ids]
            groups = [{"params": own, "lr": lr}] + ([{"params": earlier, "lr": 0.2 * lr}] if earlier else [])
            run(groups, min(per_stage, steps - len(history.loss)), k, k + 1)
        if steps > len(history.loss):
            run([{"params": list(model.parameters()), "lr": lr}], steps - len(history.loss), None, K + 1)
    else:
        run([{"params": list(model.parameters()), "lr": lr}], steps, None, 0)
    bar.close()
    if best["state"] is not None:
        model.load_state_dict(best["state"])
        history.best_step = best["step"]
    history.seconds = time.perf_counter() - start
    return history


def _relative_scale(p: torch.Tensor) -> float:
    rms = float(p.detach().pow(2).mean().sqrt())
    return rms if rms > 1e-12 else ZERO_INIT_SCALE


def _unique(params: list[nn.Parameter]) -> list[nn.Parameter]:
    seen: dict[int, nn.Parameter] = {}
    for p in params:
        seen.setdefault(id(p), p)
    return list(seen.values())


def _layer_weights(layer_weights: Any, K: int) -> list[float]:
    if layer_weights is None:
        return [1.0 / K] * K
    w = as_finite_array(layer_weights, "layer_weights", shape=(K,))
    if np.any(w < 0) or w.sum() <= 0:
        raise ValueError("layer_weights must be >= 0 with a positive sum")
    return [float(v) for v in w]


@torch.no_grad()
def evaluate_nmse(model: nn.Module, Y: Any, X: Any, per_layer: bool = False) -> float | list[float]:
    """NMSE in dB of the model's output (or of every layer's output) on ``(Y, X)``."""
    dtype = next(model.buffers(), next(model.parameters())).dtype
    device = next(model.buffers(), next(model.parameters())).device
    Yt = torch.as_tensor(as_finite_array(Y, "Y"), dtype=dtype, device=device)
    X = as_finite_array(X, "X")
    its = model(Yt, return_iterates=True)
    values = [nmse_db(x.detach().cpu().double().numpy(), X) for x in its]
    return values if per_layer else values[-1]
