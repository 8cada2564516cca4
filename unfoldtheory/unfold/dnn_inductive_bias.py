"""Paradigm 4, DNN inductive bias: the iteration's data flow is the architecture, the update is a DNN.

:class:`LearnedUpdate` feeds the current estimate and the data-fidelity gradient into an MLP:

    g_k = Aᵀ(A x_{k−1} − y),      x_k = Q ReLU(P x_{k−1} + R g_k + p) + q,

with one MLP shared by all layers (``tied=True``, a recurrent update) or one per layer. With
``hidden ≥ 2n`` the MLP can express the ISTA step exactly, since
``ST_θ(v) = ReLU(v − θ) − ReLU(−v − θ)``; it is initialised there (P = [I; −I],
R = [−γI; γI], p = −θ, Q = [I, −I], γ = 1/L, θ = λ/L), extra hidden units start with zero output
weights. Everything is then free to move away from ISTA.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from unfoldtheory.activations import Identity, ReLU
from unfoldtheory.spec import Layer, NetworkSpec
from unfoldtheory.unfold.base import DTYPE, UnfoldedModel, to_numpy
from unfoldtheory.validation import positive_int


class _UpdateMLP(nn.Module):
    def __init__(self, n: int, hidden: int, gamma: float, theta: float, generator: torch.Generator) -> None:
        super().__init__()
        dtype = DTYPE
        eye = torch.eye(n, dtype=dtype)
        P = 0.01 * torch.randn(hidden, n, generator=generator, dtype=dtype)
        R = 0.01 * torch.randn(hidden, n, generator=generator, dtype=dtype)
        p = torch.zeros(hidden, dtype=dtype)
        Q = torch.zeros(n, hidden, dtype=dtype)
        P[:n], P[n:2 * n] = eye, -eye
        R[:n], R[n:2 * n] = -gamma * eye, gamma * eye
        p[: 2 * n] = -theta
        Q[:, :n], Q[:, n:2 * n] = eye, -eye
        self.P, self.R, self.p, self.Q = (nn.Parameter(t) for t in (P, R, p, Q))
        self.q = nn.Parameter(torch.zeros(n, dtype=dtype))

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.P.T + g @ self.R.T + self.p) @ self.Q.T + self.q


class LearnedUpdate(UnfoldedModel):
    """Estimate and gradient in, a learned MLP update out; ``hidden`` defaults to ``2n``."""

    paradigm = "DNN inductive bias"

    def __init__(self, A: Any, layers: int, lam: float, hidden: int | None = None, tied: bool = True,
                 seed: int = 0) -> None:
        super().__init__(A, layers, lam)
        self.hidden = 2 * self.n if hidden is None else positive_int(hidden, "hidden")
        if self.hidden < 2 * self.n:
            raise ValueError(f"hidden = {self.hidden} is below 2n = {2 * self.n}, the width that expresses an ISTA step")
        self.tied = bool(tied)
        self.seed = int(seed)
        gen = torch.Generator().manual_seed(self.seed)
        count = 1 if self.tied else self.layers
        self.update = nn.ModuleList(_UpdateMLP(self.n, self.hidden, 1.0 / self.L, self.lam / self.L, gen) for _ in range(count))

    def _mlp(self, k: int) -> _UpdateMLP:
        return self.update[0 if self.tied else k]

    def _iterate(self, y: torch.Tensor) -> list[torch.Tensor]:
        x, its = self.zeros(y), []
        for k in range(self.layers):
            x = self._mlp(k)(x, self.gradient(x, y))
            its.append(x)
        return its

    def spec(self) -> NetworkSpec:
        A = self.A_numpy()
        G = A.T @ A
        layers = []
        for k in range(self.layers):
            mlp = self._mlp(k)
            P, R, p, Q, q = (to_numpy(t) for t in (mlp.P, mlp.R, mlp.p, mlp.Q, mlp.q))
            prev = 2 * k  # state of x_{k−1}; x_0 = 0 contributes nothing
            hid_in: dict[int, np.ndarray] = {0: -R @ A.T}
            if k > 0:
                hid_in[prev] = P + R @ G
            layers += [Layer(hid_in, ReLU(), p, self.hidden), Layer({prev + 1: Q}, Identity(), q, self.n)]
        return NetworkSpec(self.m, layers, name="LearnedUpdate")

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        return list(self._mlp(k).parameters())

    def extra_config(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "tied": self.tied, "seed": self.seed}

    def flops_per_sample(self) -> int:
        return self.layers * (4 * self.m * self.n + 6 * self.hidden * self.n + 2 * self.hidden + self.n)
