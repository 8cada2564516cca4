"""Input checks shared by the convergence entry points: real numbers only, finite, named per entry.

A boolean is not a step size (``True`` would silently read as 1), so booleans are refused here
before the float64 conversion (:func:`~unfoldtheory.validation.as_finite_array`, which names a non-finite entry by its index),
and a model's parameters by the model and the parameter (``ALISTA step[2] has the non-finite entry nan``).
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


def check_finite_parameters(model: Any) -> None:
    """ValueError naming the model, the parameter and its layer (``ALISTA step[0]``) if a torch module's
    parameter or buffer has a non-finite entry; nothing for objects without them."""
    named = []
    for attr in ("named_parameters", "named_buffers"):
        if callable(getattr(model, attr, None)):
            named.extend(getattr(model, attr)())
    for name, tensor in named:
        values = tensor.detach().cpu().double().numpy() if hasattr(tensor, "detach") else np.asarray(tensor, dtype=float)
        if not np.all(np.isfinite(values)):
            parts = name.split(".")
            label = f"{'.'.join(parts[:-1])}[{parts[-1]}]" if len(parts) > 1 and parts[-1].isdigit() else name
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(values))[0]) if values.ndim else ()
            raise ValueError(f"{type(model).__name__} {label} has the non-finite entry {values[index]} at {index}; a "
                             "certificate needs finite parameters")
