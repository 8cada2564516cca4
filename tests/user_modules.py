"""Modules and activations that a researcher might write, shared by the tests that take a user's own model."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from unfoldtheory.activations import Activation
from unfoldtheory.unfold import soft_threshold


def unit_columns(rows: int, cols: int, seed: int) -> np.ndarray:
    """A Gaussian matrix with unit-norm columns."""
    A = np.random.default_rng(seed).standard_normal((rows, cols))
    return A / np.linalg.norm(A, axis=0)


class TiedLISTA(nn.Module):
    """LISTA with one ``nn.Linear`` pair reused by every layer and one shared threshold (weight tying):
    ``x ← ST_θ(mix·x + inject·y)`` with ``inject = a·Aᵀ/L`` and ``mix = I − c·AᵀA/L``."""

    def __init__(self, A: np.ndarray, layers: int, theta: float, inject_scale: float = 1.0, mix_scale: float = 1.0) -> None:
        super().__init__()
        L = float(np.linalg.norm(A, 2) ** 2)
        self.inject = nn.Linear(A.shape[0], A.shape[1], bias=False).double()
        self.mix = nn.Linear(A.shape[1], A.shape[1], bias=False).double()
        with torch.no_grad():
            self.inject.weight.copy_(torch.as_tensor(inject_scale * A.T / L))
            self.mix.weight.copy_(torch.as_tensor(np.eye(A.shape[1]) - mix_scale * A.T @ A / L))
        self.theta = nn.Parameter(torch.tensor(theta, dtype=torch.float64))
        self.layers = layers

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = soft_threshold(self.inject(y), self.theta)
        for _ in range(self.layers - 1):
            x = soft_threshold(self.mix(x) + self.inject(y), self.theta)
        return x


class Sine(nn.Module):
    """A user's module that no ``NetworkSpec`` can represent: ``sin(W y + b)``."""

    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__()
        self.lin = nn.Linear(inputs, outputs).double()

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.lin(y))


class Tanh(Activation):
    """A user-declared smooth activation (slopes in [0, 1]): no rounding bound is known for it."""

    name = "tanh"
    slope_interval = (0.0, 1.0)

    def __call__(self, v):
        return np.tanh(v)

    def slopes(self, v):
        return 1.0 - np.tanh(v) ** 2
