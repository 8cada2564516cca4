"""A model whose parameters or buffers hold NaN or ±inf describes no network: refuse it by name.

Every analysis reads the model through ``spec()`` or its learned schedules, whose own checks can only
name their internal arrays (``V[0]``, ``steps``). :func:`check_finite_parameters` runs first (in
:func:`unfoldtheory.unfold.load` and :func:`unfoldtheory.analysis.analyze_model`) and names the model's
own tensor instead.
"""

from __future__ import annotations

import torch
from torch import nn


def _where(key: str, tensor: torch.Tensor, index: tuple[int, ...]) -> tuple[str, str]:
    """The name to show and the position inside it: a scalar of a ParameterList ``step.3`` is entry 3 of ``step``."""
    head, _, tail = key.rpartition(".")
    if tensor.ndim == 0 and head and tail.isdigit():
        return head, tail
    return key, str(index[0]) if len(index) == 1 else str(index)


def check_finite_parameters(model: nn.Module) -> None:
    """Raise ValueError naming the first parameter or buffer of ``model`` that has a NaN or infinite entry.

    The message reads e.g. ``parameter 'step' of UnfoldedISTA has a non-finite entry (nan at index 0)``;
    for a scalar in a ``ParameterList`` the index is the list index (the layer).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"expected a torch model, got {type(model).__name__}")
    tensors = [("parameter", k, t) for k, t in model.named_parameters()] + [("buffer", k, t) for k, t in model.named_buffers()]
    for role, key, tensor in tensors:
        if not (tensor.is_floating_point() or tensor.is_complex()):
            continue
        bad = ~torch.isfinite(tensor.detach())
        if bool(bad.any()):
            index = tuple(int(i) for i in torch.nonzero(bad)[0]) if tensor.ndim else ()
            value = tensor.detach()[index].item() if index else tensor.detach().item()
            name, position = _where(key, tensor, index)
            at = f" at index {position}" if position not in ("", "()") else ""
            count = int(bad.sum())
            more = f"; {count} of {tensor.numel()} entries are non-finite" if count > 1 else ""
            raise ValueError(f"{role} {name!r} of {type(model).__name__} has a non-finite entry ({value}{at}{more})")


__all__ = ["check_finite_parameters"]
