"""Input checks shared by the convergence entry points: real numbers only, finite, named per entry.

A boolean is not a step size (``True`` would silently read as 1), so booleans are refused here
before the float64 conversion (:func:`~unfoldtheory.validation.as_finite_array`, which names a non-finite entry by its index),
and a model's parameters by the model and the parameter (``ALISTA step[2] is nan``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unfoldtheory.validation import as_finite_array, finite_float


def _has_boolean(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    if dtype is not None and str(dtype) in ("bool", "torch.bool"):
        return True
    if isinstance(x, (bool, np.bool_)):
        return True
    if isinstance(x, (list, tuple)):
        return any(_has_boolean(e) for e in x)
    return False


def real_vector(x: Any, what: str) -> np.ndarray:
    """``x`` as a 1-D float64 array of finite reals; a ValueError names ``what`` and the bad entry.

    Booleans (``True``, boolean arrays or tensors) are refused: they are not step sizes.
    """
    if _has_boolean(x):
        raise ValueError(f"{what} must hold real numbers, got a boolean ({x!r})")
    return as_finite_array(x, what, ndim=1)


def real_scalar(x: Any, what: str, **limits: Any) -> float:
    """``x`` as a finite float (booleans refused) within ``limits`` (those of :func:`~unfoldtheory.validation.finite_float`)."""
    if _has_boolean(x):
        raise ValueError(f"{what} must be a real number, got a boolean ({x!r})")
    return finite_float(x, what, **limits)


def parameter_values(model: Any, name: str) -> np.ndarray:
    """The float64 values of a model's per-layer scalar parameters ``model.<name>`` (a list of tensors),
    or a ValueError naming the model, the parameter and the layer (``ALISTA step[0] is nan``)."""
    from unfoldtheory.unfold.base import to_numpy

    values = np.array([float(to_numpy(p)) for p in getattr(model, name)])
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"{type(model).__name__} {name}[{int(bad[0])}] is {values[bad[0]]} (non-finite); a "
                         "certificate needs finite parameters")
    return values


def parameter_matrix(model: Any, name: str, value: Any, layer: int | None = None) -> np.ndarray:
    """A model's matrix parameter as float64, or a ValueError naming the model, the parameter, its layer and entry."""
    from unfoldtheory.unfold.base import to_numpy

    arr = to_numpy(value) if hasattr(value, "detach") else np.asarray(value, dtype=np.float64)
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        where = f"{name}[{layer}]" if layer is not None else name
        index = tuple(int(i) for i in bad[0])
        raise ValueError(f"{type(model).__name__} {where} has the non-finite entry {arr[index]} at {index}; a certificate "
                         "needs finite parameters")
    return arr
