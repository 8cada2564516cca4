"""Paradigm 1, learned hyperparameters: the iteration is unchanged, its scalars are learned.

* :class:`UnfoldedISTA`: ``x⁺ = ST_{θ_k}(x − γ_k Aᵀ(Ax − y))`` with learned γ_k, θ_k
  (step-size learning: Ablin, Moreau, Massias & Gramfort, NeurIPS 2019).
* :class:`UnfoldedFISTA`: FISTA with learned γ_k, θ_k and momentum β_k.
* :class:`ALISTA`: ``x⁺ = ST_{θ_k}(x − γ_k W̃ᵀ(Ax − y))`` with the analytic weight W̃ and 2K learned
  scalars (Liu, Chen, Wang & Yin, ICLR 2019).
* :class:`UnfoldedADMM`: ADMM for the Lasso with learned penalty ρ_k and dual step α_k.

At initialisation UnfoldedISTA *is* ISTA (γ = 1/L, θ = λ/L) and UnfoldedFISTA *is* FISTA.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from unfoldtheory.activations import Identity, SoftThreshold
from unfoldtheory.spec import Layer, NetworkSpec, unrolled
from unfoldtheory.unfold.analytic_weight import analytic_weight
from unfoldtheory.unfold.base import UnfoldedModel, nonneg, scalar_parameters, soft_threshold_t, to_numpy
from unfoldtheory.validation import as_finite_array, finite_float


def fista_momentum(layers: int) -> np.ndarray:
    """FISTA's momentum ``β_k = (t_{k−2} − 1)/t_{k−1}`` applied before layer k = 2..K (t_0 = 1,
    ``t_j = (1 + √(1 + 4t_{j−1}²))/2``; Beck & Teboulle 2009)."""
    t = [1.0]
    for _ in range(layers):
        t.append(0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t[-1] ** 2)))
    return np.array([(t[k - 2] - 1.0) / t[k - 1] for k in range(2, layers + 1)])


class UnfoldedISTA(UnfoldedModel):
    """ISTA with a learned step ``γ_k`` and threshold ``θ_k`` per layer (2K parameters).

    Initialised at ISTA: ``γ_k = 1/L``, ``θ_k = λ/L`` with ``L = ‖A‖₂²``.
    """

    paradigm = "learned hyperparameters"

    def __init__(self, A: Any, layers: int, lam: float) -> None:
        super().__init__(A, layers, lam)
        self.step = scalar_parameters([1.0 / self.L] * self.layers)
        self.threshold = scalar_parameters([self.lam / self.L] * self.layers)

    def _iterate(self, y: torch.Tensor) -> list[torch.Tensor]:
        x, its = self.zeros(y), []
        for gamma, theta in zip(self.step, self.threshold, strict=True):
            x = soft_threshold_t(x - gamma * self.gradient(x, y), theta)
            its.append(x)
        return its

    def spec(self) -> NetworkSpec:
        A = self.A_numpy()
        G = A.T @ A
        gammas = [float(to_numpy(g)) for g in self.step]
        W = [None] + [np.eye(self.n) - g * G for g in gammas[1:]]
        return unrolled(W, [g * A.T for g in gammas], [nonneg(t) for t in self.threshold], name=type(self).__name__)

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        return [self.step[k], self.threshold[k]]

    def flops_per_sample(self) -> int:
        return self.layers * (4 * self.m * self.n + 3 * self.n)


class UnfoldedFISTA(UnfoldedModel):
    """FISTA with learned ``γ_k``, ``θ_k`` and momentum ``β_k`` (k ≥ 2; 3K − 1 parameters).

    Layer k computes ``z = x_{k−1} + β_k(x_{k−1} − x_{k−2})``, ``x_k = ST_{θ_k}(z − γ_k Aᵀ(Az − y))``.
    Initialised at FISTA: ``γ = 1/L``, ``θ = λ/L``, ``β_k`` from :func:`fista_momentum`.
    Training keeps ``β_k ∈ [0, 1]``, FISTA's range: unbounded learned momentum (values near 1.8
    were seen) makes the iteration blow up on rare inputs while the average loss looks fine.
    """

    paradigm = "learned hyperparameters"

    def __init__(self, A: Any, layers: int, lam: float) -> None:
        super().__init__(A, layers, lam)
        self.step = scalar_parameters([1.0 / self.L] * self.layers)
        self.threshold = scalar_parameters([self.lam / self.L] * self.layers)
        self.momentum = scalar_parameters(fista_momentum(self.layers))

    def _iterate(self, y: torch.Tensor) -> list[torch.Tensor]:
        prev = x = self.zeros(y)
        its = []
        for k in range(self.layers):
            z = x if k == 0 else x + self.momentum[k - 1] * (x - prev)
            prev, x = x, soft_threshold_t(z - self.step[k] * self.gradient(z, y), self.threshold[k])
            its.append(x)
        return its

    def spec(self) -> NetworkSpec:
        A = self.A_numpy()
        G = A.T @ A
        layers = []
        for k in range(self.layers):
            g = float(to_numpy(self.step[k]))
            W = np.eye(self.n) - g * G
            weights: dict[int, np.ndarray] = {0: g * A.T}
            if k >= 1:
                beta = float(to_numpy(self.momentum[k - 1]))
                weights[k] = (1.0 + beta) * W  # state k is x_k; this layer produces x_{k+1}
                if k >= 2:
                    weights[k - 1] = -beta * W
            layers.append(Layer(weights, SoftThreshold(nonneg(self.threshold[k])), None, self.n))
        return NetworkSpec(self.m, layers, name=type(self).__name__)

    @torch.no_grad()
    def project_parameters(self) -> None:
        super().project_parameters()
        for beta in self.momentum:
            beta.clamp_(0.0, 1.0)

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        return [self.step[k], self.threshold[k]] + ([self.momentum[k - 1]] if k >= 1 else [])

    def flops_per_sample(self) -> int:
        return self.layers * (4 * self.m * self.n + 6 * self.n)


class ALISTA(UnfoldedModel):
    """ALISTA: ``x⁺ = ST_{θ_k}(x − γ_k W̃ᵀ(Ax − y))`` with the analytic weight ``W̃`` (``model.W``,
    shape of A, from :func:`~unfoldtheory.unfold.analytic_weight.analytic_weight`) and 2K learned
    scalars.

    ``W̃ᵀA`` has unit diagonal, so the classical scaling of ISTA carries over as
    ``γ_k = 1/‖W̃ᵀA‖₂``, ``θ_k = λγ_k`` at initialisation. ``W`` may be passed to skip the solve
    (it is checked the same way).
    """

    paradigm = "learned hyperparameters"

    def __init__(self, A: Any, layers: int, lam: float, W: Any = None) -> None:
        super().__init__(A, layers, lam)
        A_np = self.A_numpy()
        if W is None:
            W_np = analytic_weight(A_np)
        else:
            W_np = as_finite_array(W, "W", shape=A_np.shape)
            residual = np.abs(np.einsum("ij,ij->j", W_np, A_np) - 1.0)
            # relative to ‖w_i‖‖a_i‖, the size of the rounding in w_iᵀa_i (a float32 checkpoint passes)
            allowed = 1e-6 * np.maximum(1.0, np.linalg.norm(W_np, axis=0) * np.linalg.norm(A_np, axis=0))
            if np.any(residual > allowed):
                raise ValueError(f"W violates diag(WᵀA) = 1 by {residual.max():.3g}")
        self.register_buffer("W", torch.as_tensor(W_np, dtype=self.A.dtype))
        gamma = 1.0 / float(np.linalg.norm(W_np.T @ A_np, 2))
        self.step = scalar_parameters([gamma] * self.layers)
        self.threshold = scalar_parameters([self.lam * gamma] * self.layers)

    @classmethod
    def from_checkpoint(cls, config: dict[str, Any], state: dict[str, torch.Tensor]) -> ALISTA:
        kwargs = {k: v for k, v in config.items() if k not in ("m", "n")}
        return cls(state["A"].to(torch.float64), W=state["W"].to(torch.float64), **kwargs)

    def _iterate(self, y: torch.Tensor) -> list[torch.Tensor]:
        x, its = self.zeros(y), []
        for gamma, theta in zip(self.step, self.threshold, strict=True):
            x = soft_threshold_t(x - gamma * ((x @ self.A.T - y) @ self.W), theta)
            its.append(x)
        return its

    def spec(self) -> NetworkSpec:
        A, W = self.A_numpy(), to_numpy(self.W)
        B = W.T @ A
        gammas = [float(to_numpy(g)) for g in self.step]
        Ws = [None] + [np.eye(self.n) - g * B for g in gammas[1:]]
        return unrolled(Ws, [g * W.T for g in gammas], [nonneg(t) for t in self.threshold], name="ALISTA")

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        return [self.step[k], self.threshold[k]]

    def flops_per_sample(self) -> int:
        return self.layers * (4 * self.m * self.n + 3 * self.n)


class UnfoldedADMM(UnfoldedModel):
    """ADMM for the Lasso (split ``x = z``) with a learned penalty ``ρ_k`` and dual step ``α_k``:

        x_k = (AᵀA + ρ_k I)⁻¹(Aᵀy + ρ_k(z_{k−1} − u_{k−1}))
        z_k = ST_{λ/ρ_k}(x_k + u_{k−1})
        u_k = u_{k−1} + α_k(x_k − z_k)

    (Boyd et al. 2011, §6.4; learned penalties as in ADMM-Net, Yang et al. 2016). Output ``z_K``.
    ``ρ_k = exp(log ρ_k)`` stays positive. Initialised at classical ADMM: ``α_k = 1`` and
    ``ρ_k = rho`` (default ``√(λ_max λ_min⁺)`` of AᵀA, the geometric mean of its extreme nonzero
    eigenvalues; Ghadimi et al. 2015 for the quadratic case).
    """

    paradigm = "learned hyperparameters"

    def __init__(self, A: Any, layers: int, lam: float, rho: float | None = None) -> None:
        super().__init__(A, layers, lam)
        A_np = self.A_numpy()
        evals, evecs = np.linalg.eigh(A_np.T @ A_np)
        evals = np.clip(evals, 0.0, None)
        if rho is None:
            nonzero = evals[evals > 1e-10 * evals[-1]]
            rho = float(np.sqrt(nonzero[0] * nonzero[-1]))
        self.rho0 = finite_float(rho, "rho", low=0.0, low_open=True)
        self.register_buffer("eigvals", torch.as_tensor(evals, dtype=self.A.dtype))
        self.register_buffer("eigvecs", torch.as_tensor(evecs, dtype=self.A.dtype))
        self.log_penalty = scalar_parameters([np.log(self.rho0)] * self.layers)
        self.dual_step = scalar_parameters([1.0] * self.layers)

    def _iterate(self, y: torch.Tensor) -> list[torch.Tensor]:
        aty = y @ self.A
        z = u = self.zeros(y)
        its = []
        for log_rho, alpha in zip(self.log_penalty, self.dual_step, strict=True):
            rho = torch.exp(log_rho)
            rhs = aty + rho * (z - u)
            x = ((rhs @ self.eigvecs) / (self.eigvals + rho)) @ self.eigvecs.T
            z_new = soft_threshold_t(x + u, self.lam / rho)
            u = u + alpha * (x - z_new)
            z = z_new
            its.append(z)
        return its

    def spec(self) -> NetworkSpec:
        A = self.A_numpy()
        Q, s = to_numpy(self.eigvecs), to_numpy(self.eigvals)
        eye = np.eye(self.n)
        layers = []
        for k in range(self.layers):
            rho = float(np.exp(to_numpy(self.log_penalty[k])))
            alpha = float(to_numpy(self.dual_step[k]))
            M = (Q / (s + rho)) @ Q.T
            x_idx, z_prev, u_prev = 3 * k + 1, 3 * k - 1, 3 * k
            wx: dict[int, np.ndarray] = {0: M @ A.T}
            wz: dict[int, np.ndarray] = {x_idx: eye}
            wu: dict[int, np.ndarray] = {x_idx: alpha * eye, x_idx + 1: -alpha * eye}
            if k > 0:
                wx.update({z_prev: rho * M, u_prev: -rho * M})
                wz[u_prev] = eye
                wu[u_prev] = eye
            layers += [Layer(wx, Identity(), None, self.n),
                       Layer(wz, SoftThreshold(self.lam / rho), None, self.n),
                       Layer(wu, Identity(), None, self.n)]
        return NetworkSpec(self.m, layers, readout={3 * self.layers - 1: eye}, name="UnfoldedADMM")

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        return [self.log_penalty[k], self.dual_step[k]]

    def extra_config(self) -> dict[str, Any]:
        return {"rho": self.rho0}

    def flops_per_sample(self) -> int:
        return 2 * self.m * self.n + self.layers * (4 * self.n * self.n + 8 * self.n)
