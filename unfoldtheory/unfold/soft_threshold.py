"""``soft_threshold(v, θ)``: the torch soft-threshold with a learnable threshold, as one exportable op.

``ST_θ(v) = sign(v)·max(|v| − max(θ, 0), 0)``, the prox of ``θ⁺‖·‖₁`` (Parikh & Boyd, *Proximal Algorithms*,
§6.5.2); a negative learned θ acts as 0. It is the custom op ``unfoldtheory::soft_threshold`` (``torch.library``,
with a fake kernel and an autograd formula), so ``torch.export`` keeps it as one node and
:func:`unfoldtheory.tracing.from_torch` maps that node onto a :class:`~unfoldtheory.activations.SoftThreshold`
layer; a saved program (``torch.export.save``) loads wherever this module is imported.

Outside ``torch.export`` (``torch.compiler.is_exporting()`` false) the function evaluates the plain formula, so
eager training, ``torch.func`` transforms (``jvp``, ``vmap``) and double backward behave exactly as for the
formula. The op itself (reached when running an exported program) supports reverse-mode autograd only.

Gradients equal those of the plain formula ``sign(v)·relu(|v| − clamp(θ, min=0))``: ``∂/∂v = 1[|v| > θ⁺]``,
``∂/∂θ = −sign(v)·1[|v| > θ⁺]·1[θ ≥ 0]`` (summed over the broadcast dimensions of θ).
"""

from __future__ import annotations

from typing import Any

import torch

OP_NAME = "unfoldtheory::soft_threshold"


@torch.library.custom_op(OP_NAME, mutates_args=())
def _soft_threshold_op(v: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    return torch.sign(v) * torch.relu(v.abs() - torch.clamp(theta, min=0.0))


@_soft_threshold_op.register_fake
def _(v: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(v)


def _setup_context(ctx: Any, inputs: tuple[torch.Tensor, torch.Tensor], output: torch.Tensor) -> None:
    v, theta = inputs
    ctx.save_for_backward(v, theta)


def _backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    v, theta = ctx.saved_tensors
    active = (v.abs() - torch.clamp(theta, min=0.0)) > 0
    grad_v = torch.where(active, grad, torch.zeros_like(grad))
    grad_theta = -(torch.sign(v) * grad_v).sum_to_size(theta.shape)
    grad_theta = torch.where(theta >= 0, grad_theta, torch.zeros_like(grad_theta))
    return grad_v, grad_theta


_soft_threshold_op.register_autograd(_backward, setup_context=_setup_context)


def soft_threshold(v: torch.Tensor, theta: torch.Tensor | float) -> torch.Tensor:
    """``ST_θ(v) = sign(v)·max(|v| − max(θ, 0), 0)``, differentiable in ``v`` and ``θ``.

    ``θ`` is a scalar (float or 0-d tensor) or a per-neuron tensor that broadcasts over the last dimension
    of ``v`` (shape ``(n,)``) or, more generally, to ``v``'s shape without enlarging it.
    """
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"soft_threshold: v must be a torch.Tensor, got {type(v).__name__}")
    theta = torch.as_tensor(theta, dtype=v.dtype, device=v.device)
    try:
        fits = torch.broadcast_shapes(v.shape, theta.shape) == v.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"soft_threshold: theta of shape {tuple(theta.shape)} does not broadcast to v's shape "
                         f"{tuple(v.shape)}; expected a scalar or shape ({v.shape[-1] if v.ndim else 1},)")
    if torch.compiler.is_exporting():
        return _soft_threshold_op(v, theta)
    return torch.sign(v) * torch.relu(v.abs() - torch.clamp(theta, min=0.0))
