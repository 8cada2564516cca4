"""Paradigm 2, learned objective parameters: the matrices of the iteration become per-layer weights.

* :class:`LISTA` (Gregor & LeCun 2010): ``x_k = ST_{θ_k}(W₂ᵏ x_{k−1} + W₁ᵏ y)``, untied.
* :class:`LISTACP` (Chen, Liu, Wang & Yin, NeurIPS 2018): the coupled form
  ``x_k = ST_{θ_k}(x_{k−1} + Wᵏᵀ(y − A x_{k−1}))``, i.e. ``W₂ᵏ = I − WᵏᵀA``.

Both are initialised at ISTA: ``W₁ = Aᵀ/L``, ``W₂ = I − AᵀA/L`` (``Wᵏ = A/L``), ``θ = λ/L``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from unfoldtheory.spec import NetworkSpec, unrolled
from unfoldtheory.unfold.base import DTYPE, UnfoldedModel, nonneg, scalar_parameters, soft_threshold_t, to_numpy


def _matrices(value: np.ndarray, count: int) -> nn.ParameterList:
    return nn.ParameterList([nn.Parameter(torch.tensor(value, dtype=DTYPE)) for _ in range(count)])


class LISTA(UnfoldedModel):
    """LISTA with untied ``W₁ᵏ`` (n×m), ``W₂ᵏ`` (n×n, k ≥ 2; ``x_0 = 0``) and ``θ_k``."""

    paradigm = "learned objective parameters"

    def __init__(self, A: Any, layers: int, lam: float) -> None:
        super().__init__(A, layers, lam)
        A_np = self.A_numpy()
        self.W1 = _matrices(A_np.T / self.L, self.layers)
        self.W2 = _matrices(np.eye(self.n) - A_np.T @ A_np / self.L, self.layers - 1)
        self.threshold = scalar_parameters([self.lam / self.L] * self.layers)

    def _iterate(self, y: torch.Tensor) -> list[torch.Tensor]:
        its = []
        x = soft_threshold_t(y @ self.W1[0].T, self.threshold[0])
        its.append(x)
        for k in range(1, self.layers):
            x = soft_threshold_t(x @ self.W2[k - 1].T + y @ self.W1[k].T, self.threshold[k])
            its.append(x)
        return its

    def spec(self) -> NetworkSpec:
        W = [None] + [to_numpy(w) for w in self.W2]
        return unrolled(W, [to_numpy(w) for w in self.W1], [nonneg(t) for t in self.threshold], name="LISTA")

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        return [self.W1[k], self.threshold[k]] + ([self.W2[k - 1]] if k >= 1 else [])

    def flops_per_sample(self) -> int:
        return self.layers * (2 * self.n * self.m + 3 * self.n) + (self.layers - 1) * 2 * self.n * self.n


class LISTACP(UnfoldedModel):
    """LISTA-CP: ``x_k = ST_{θ_k}(x_{k−1} + Wᵏᵀ(y − A x_{k−1}))`` with ``Wᵏ`` of A's shape."""

    paradigm = "learned objective parameters"

    def __init__(self, A: Any, layers: int, lam: float) -> None:
        super().__init__(A, layers, lam)
        self.W = _matrices(self.A_numpy() / self.L, self.layers)
        self.threshold = scalar_parameters([self.lam / self.L] * self.layers)

    def _iterate(self, y: torch.Tensor) -> list[torch.Tensor]:
        x, its = self.zeros(y), []
        for W, theta in zip(self.W, self.threshold, strict=True):
            x = soft_threshold_t(x + (y - x @ self.A.T) @ W, theta)
            its.append(x)
        return its

    def spec(self) -> NetworkSpec:
        A = self.A_numpy()
        Ws = [to_numpy(w) for w in self.W]
        W2 = [None] + [np.eye(self.n) - w.T @ A for w in Ws[1:]]
        return unrolled(W2, [w.T for w in Ws], [nonneg(t) for t in self.threshold], name="LISTACP")

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        return [self.W[k], self.threshold[k]]

    def flops_per_sample(self) -> int:
        return self.layers * (4 * self.m * self.n + 4 * self.n)
