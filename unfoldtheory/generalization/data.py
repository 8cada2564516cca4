"""Data sets and the loss that every generalization bound is stated for.

Convention (issue 6): a data set is a pair ``(Y, X)`` of arrays with one sample per row, and the loss
of a model ``h`` on a sample is the squared error ``‖h(y) − x‖²`` summed over coordinates; the
empirical loss averages it over samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from unfoldtheory.validation import as_finite_array


def as_dataset(data: Any, what: str = "data", *, m: int | None = None, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``data = (Y, X)`` as float64 arrays of shapes (N, m) and (N, n), or a ValueError naming the problem."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"{what} must be a pair (Y, X) of arrays, got {type(data).__name__}")
    Y = as_finite_array(data[0], f"{what} Y", shape=(None, m))
    X = as_finite_array(data[1], f"{what} X", shape=(None, n))
    if Y.shape[0] == 0:
        raise ValueError(f"{what} is empty: it needs at least one sample")
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"{what} has {Y.shape[0]} measurements Y but {X.shape[0]} signals X")
    return Y, X


def squared_losses(model: torch.nn.Module, data: Any, what: str = "data", batch_size: int = 4096) -> np.ndarray:
    """Per-sample losses ``‖h(y_i) − x_i‖²`` of ``model`` on ``data = (Y, X)``, in float64, without gradients."""
    Y, X = as_dataset(data, what, m=getattr(model, "m", None), n=getattr(model, "n", None))
    param = next(model.parameters(), None)
    buffer = next(model.buffers(), None)
    ref = param if param is not None else buffer
    dtype = ref.dtype if ref is not None else torch.float64
    device = ref.device if ref is not None else torch.device("cpu")
    losses = np.empty(Y.shape[0])
    with torch.no_grad():
        for start in range(0, Y.shape[0], batch_size):
            stop = start + batch_size
            out = model(torch.as_tensor(Y[start:stop], dtype=dtype, device=device))
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != X[start:stop].shape:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(f"the model's output on {what} has shape {got}; expected {X[start:stop].shape} (the signals X)")
            diff = out.detach().cpu().to(torch.float64).numpy() - X[start:stop]
            losses[start:stop] = np.sum(diff * diff, axis=1)
    return losses


def data_radii(data: Any, what: str = "data") -> tuple[float, float]:
    """``(max_i ‖y_i‖, max_i ‖x_i‖)`` of ``data = (Y, X)``: the smallest input and target radii that contain it.

    Bounds that assume ``‖y‖ ≤ R`` and ``‖x‖ ≤ B`` almost surely hold, for unbounded signal models, for the
    distribution conditioned on that event; these radii show whether a data set lies inside.
    """
    Y, X = as_dataset(data, what)
    return float(np.max(np.linalg.norm(Y, axis=1))), float(np.max(np.linalg.norm(X, axis=1)))
