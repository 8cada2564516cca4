"""The base class shared by every unfolded sparse-recovery model.

An unfolded model is ``K`` iterations of a solver for ``min ½‖Ax − y‖² + λ‖x‖₁`` with learned
per-layer quantities (Gregor & LeCun 2010; Monga, Li & Eldar 2021; Shlezinger et al. 2025). Every
model here

* is built as ``Model(A, layers, lam)`` from a numpy array or a tensor ``A`` of shape (m, n);
* is built in float64 (``model.float()`` for float32 training);
* runs ``forward(y, return_iterates=False)`` on ``y`` of shape (batch, m), returning ``x_K`` of
  shape (batch, n) or the list ``[x_1, …, x_K]``;
* exports ``spec()``, an exact float64 :class:`~unfoldtheory.spec.NetworkSpec` of the same map
  (or raises :class:`~unfoldtheory.spec.NotRepresentable` with the reason);
* declares ``layer_parameters(k)`` for layer-wise training, ``num_parameters()`` (distinct learned
  scalars, shared ones counted once) and ``flops_per_sample()``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from unfoldtheory.spec import NetworkSpec
from unfoldtheory.unfold.soft_threshold import soft_threshold
from unfoldtheory.validation import as_finite_array, finite_float, positive_int


def soft_threshold_t(v: torch.Tensor, theta: torch.Tensor | float) -> torch.Tensor:
    """Torch ``ST_θ(v) = sign(v)·max(|v| − θ, 0)``; a negative learned θ acts as 0 (``θ ↦ max(θ, 0)``).

    :func:`unfoldtheory.unfold.soft_threshold.soft_threshold`: the plain formula in eager mode, one
    ``unfoldtheory::soft_threshold`` node under ``torch.export``, so every built-in model traces through that op.
    """
    return soft_threshold(v, theta)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A float64 numpy copy of a tensor (detached, on the CPU)."""
    return t.detach().cpu().to(torch.float64).numpy().copy()


def nonneg(t: torch.Tensor) -> np.ndarray:
    """The float64 value of a learned threshold as the forward pass uses it: ``max(θ, 0)``."""
    return np.maximum(to_numpy(t), 0.0)


#: Models are built in float64, so that ``spec()`` and the classical algorithm agree with the forward
#: pass to rounding; ``model.float()`` trains faster where float32 is enough.
DTYPE = torch.float64


def scalar_parameters(values: np.ndarray | list[float]) -> nn.ParameterList:
    """One learned scalar per layer (float64)."""
    return nn.ParameterList([nn.Parameter(torch.tensor(float(v), dtype=DTYPE)) for v in values])


class UnfoldedModel(nn.Module, ABC):
    """Base of the unfolded sparse-recovery models; see the module docstring for the contract."""

    paradigm: ClassVar[str] = ""
    #: Names of ParameterLists that must stay >= 0; :meth:`project_parameters` clamps them after an
    #: optimiser step (a projected gradient step keeps thresholds meaningful and their gradient alive).
    nonnegative: ClassVar[tuple[str, ...]] = ("threshold", "step")

    def __init__(self, A: Any, layers: int, lam: float) -> None:
        super().__init__()
        A_np = as_finite_array(A, "A", ndim=2)
        if A_np.size == 0:
            raise ValueError(f"A has shape {A_np.shape}; expected a non-empty (m, n) matrix")
        self.layers = positive_int(layers, "layers")
        self.lam = finite_float(lam, "lam", low=0.0, low_open=True)
        self.m, self.n = A_np.shape
        self.L = float(np.linalg.norm(A_np, 2) ** 2)
        if self.L == 0:
            raise ValueError("A is zero: there is no signal to recover")
        self.register_buffer("A", torch.tensor(A_np, dtype=DTYPE))

    # ------------------------------------------------------------------ contract
    @abstractmethod
    def _iterate(self, y: torch.Tensor) -> list[torch.Tensor]:
        """The iterates ``[x_1, …, x_K]`` for a validated batch ``y``."""

    @abstractmethod
    def spec(self) -> NetworkSpec:
        """The exact float64 :class:`NetworkSpec` of this model's input–output map."""

    @abstractmethod
    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        """The learned parameters used by layer ``k`` (0-based)."""

    @abstractmethod
    def flops_per_sample(self) -> int:
        """Floating-point operations of one forward pass for one input (a multiply-add counts 2)."""

    def extra_config(self) -> dict[str, Any]:
        """Constructor arguments beyond ``A``, ``layers`` and ``lam`` (JSON-serialisable)."""
        return {}

    # ------------------------------------------------------------------ shared behaviour
    def forward(self, y: Any, return_iterates: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """``x_K`` for ``y`` of shape (batch, m) (a numpy array or a tensor), or all iterates."""
        its = self._iterate(self._input(y))
        return its if return_iterates else its[-1]

    def _input(self, y: Any) -> torch.Tensor:
        if not isinstance(y, torch.Tensor):
            y = torch.as_tensor(as_finite_array(y, "y", ndim=2))
        if y.ndim != 2 or y.shape[1] != self.m:
            raise ValueError(f"y has shape {tuple(y.shape)}; expected (batch, {self.m})")
        if not torch.compiler.is_exporting() and not torch.isfinite(y).all():  # a value test torch.export cannot trace
            raise ValueError("y has non-finite entries")
        return y.to(dtype=self.A.dtype, device=self.A.device)

    def gradient(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``Aᵀ(Ax − y)`` for batches of row vectors."""
        return (x @ self.A.T - y) @ self.A

    def zeros(self, y: torch.Tensor) -> torch.Tensor:
        return torch.zeros(y.shape[0], self.n, dtype=y.dtype, device=y.device)

    def A_numpy(self) -> np.ndarray:
        return to_numpy(self.A)

    @torch.no_grad()
    def project_parameters(self) -> None:
        """Clamp the parameters named in :attr:`nonnegative` to ``>= 0`` (called by ``fit`` after each step)."""
        for name in self.nonnegative:
            for p in getattr(self, name, []):
                p.clamp_(min=0.0)

    def num_parameters(self) -> int:
        """Distinct learned scalars (a parameter shared by several layers counts once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def config(self) -> dict[str, Any]:
        """What :func:`unfoldtheory.unfold.load` needs besides the state dict."""
        return {"class": type(self).__name__, "layers": self.layers, "lam": self.lam, "m": self.m, "n": self.n,
                **self.extra_config()}

    @classmethod
    def from_checkpoint(cls, config: dict[str, Any], state: dict[str, torch.Tensor]) -> UnfoldedModel:
        """Rebuild an (untrained) model of this class from a saved config and state dict; the caller
        then loads the state dict. Classes with constructor tensors besides ``A`` override this."""
        kwargs = {k: v for k, v in config.items() if k not in ("m", "n")}
        return cls(state["A"].to(torch.float64), **kwargs)

    def extra_repr(self) -> str:
        return f"m={self.m}, n={self.n}, layers={self.layers}, lam={self.lam:.4g}, parameters={self.num_parameters()}"
