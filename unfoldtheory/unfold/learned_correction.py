"""Paradigm 3, learned correction terms: a classical step plus a small learned network.

:class:`HybridISTA` computes, at layer k,

    x_k = ST_{θ_k}(x_{k−1} − γ_k Aᵀ(A x_{k−1} − y)) + s_k · c_k(x_{k−1}),
    c_k(x) = Q_k ReLU(P_k x + p_k) + q_k,      s_k = bound · tanh(a_k).

The scale ``s_k`` is bounded by ``correction_bound``: if the ISTA step is a contraction with
factor ρ and ``c_k`` is ℓ-Lipschitz, the corrected step is a contraction whenever
``ρ + |s_k| ℓ < 1``, so a small bound keeps the classical guarantee. ``a_k = 0`` at
initialisation, so the model *is* ISTA (γ = 1/L, θ = λ/L) until training moves it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from unfoldtheory.activations import Identity, ReLU, SoftThreshold
from unfoldtheory.spec import Layer, NetworkSpec
from unfoldtheory.unfold.base import DTYPE, UnfoldedModel, nonneg, scalar_parameters, soft_threshold_t, to_numpy
from unfoldtheory.validation import finite_float, positive_int


class HybridISTA(UnfoldedModel):
    """ISTA with learned γ_k, θ_k and a learned, scale-bounded correction MLP per layer."""

    paradigm = "learned correction terms"

    def __init__(self, A: Any, layers: int, lam: float, hidden: int = 32, correction_bound: float = 0.5,
                 seed: int = 0) -> None:
        super().__init__(A, layers, lam)
        self.hidden = positive_int(hidden, "hidden")
        self.correction_bound = finite_float(correction_bound, "correction_bound", low=0.0, low_open=True)
        self.step = scalar_parameters([1.0 / self.L] * self.layers)
        self.threshold = scalar_parameters([self.lam / self.L] * self.layers)
        self.scale_logit = scalar_parameters([0.0] * self.layers)
        self.seed = int(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.correction = nn.ModuleList(
                nn.Sequential(nn.Linear(self.n, self.hidden, dtype=DTYPE), nn.ReLU(),
                              nn.Linear(self.hidden, self.n, dtype=DTYPE))
                for _ in range(self.layers))

    def scales(self) -> torch.Tensor:
        """``s_k = bound · tanh(a_k)`` for every layer."""
        return self.correction_bound * torch.tanh(torch.stack(list(self.scale_logit)))

    def _iterate(self, y: torch.Tensor) -> list[torch.Tensor]:
        x, its = self.zeros(y), []
        scales = self.scales()
        for k in range(self.layers):
            step = soft_threshold_t(x - self.step[k] * self.gradient(x, y), self.threshold[k])
            x = step + scales[k] * self.correction[k](x)
            its.append(x)
        return its

    def spec(self) -> NetworkSpec:
        A = self.A_numpy()
        G = A.T @ A
        scales = to_numpy(self.scales())
        layers = []
        for k in range(self.layers):
            g = float(to_numpy(self.step[k]))
            first, last = self.correction[k][0], self.correction[k][2]
            prev = 3 * k  # state of x_{k−1} (0 = y stands for x_0 = 0, which contributes nothing)
            ista_in: dict[int, np.ndarray] = {0: g * A.T}
            hid_in: dict[int, np.ndarray] = {}
            if k > 0:
                ista_in[prev] = np.eye(self.n) - g * G
                hid_in[prev] = to_numpy(first.weight)
            s = float(scales[k])
            layers += [
                Layer(ista_in, SoftThreshold(nonneg(self.threshold[k])), None, self.n),
                Layer(hid_in, ReLU(), to_numpy(first.bias), self.hidden),
                Layer({prev + 1: np.eye(self.n), prev + 2: s * to_numpy(last.weight)}, Identity(),
                      s * to_numpy(last.bias), self.n),
            ]
        return NetworkSpec(self.m, layers, name="HybridISTA")

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        return [self.step[k], self.threshold[k], self.scale_logit[k], *self.correction[k].parameters()]

    def extra_config(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "correction_bound": self.correction_bound, "seed": self.seed}

    def flops_per_sample(self) -> int:
        return self.layers * (4 * self.m * self.n + 4 * self.n * self.hidden + 6 * self.n + 2 * self.hidden)
