"""Input checks that name the offending argument, shared by every public function."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_finite_array(x: Any, what: str, *, ndim: int | tuple[int, ...] | None = None,
                    shape: tuple[int | None, ...] | None = None) -> np.ndarray:
    """``x`` as a float64 array, or a ValueError that names ``what`` and the problem.

    ``shape`` may contain ``None`` for a free axis. Torch tensors are accepted (detached, moved to
    the CPU).
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not a numeric array: {exc}") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ValueError(f"{what} has {arr.ndim} dimension(s) (shape {arr.shape}); expected {' or '.join(map(str, allowed))}")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape, strict=True)):
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
            raise ValueError(f"{what} has shape {arr.shape}; expected {want}")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{what} has a non-finite entry at index {tuple(int(i) for i in bad)} ({arr[tuple(bad)]})")
    return arr


def positive_int(x: Any, what: str) -> int:
    """``x`` as an int ≥ 1, or a ValueError naming ``what``."""
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 1:
        raise ValueError(f"{what} must be a positive integer, got {x!r}")
    return int(x)


def _number(x: Any, what: str, kind: str) -> float:
    """``float(x)``, refusing booleans and non-numbers with a message naming ``what``."""
    if isinstance(x, bool):
        raise ValueError(f"{what} must be {kind}, got {x!r}")
    try:
        return float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be {kind}, got {x!r}") from None


def finite_float(x: Any, what: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``x`` as a finite float inside the given (closed unless ``*_open``) range."""
    val = _number(x, what, "a number")
    if not np.isfinite(val):
        raise ValueError(f"{what} must be finite, got {val}")
    if low is not None and (val < low or (low_open and val == low)):
        raise ValueError(f"{what} must be {'>' if low_open else '>='} {low}, got {val}")
    if high is not None and (val > high or (high_open and val == high)):
        raise ValueError(f"{what} must be {'<' if high_open else '<='} {high}, got {val}")
    return val


def time_budget_seconds(x: Any, what: str = "time_budget") -> float:
    """A time budget in seconds: a number > 0, ``inf`` meaning none."""
    val = _number(x, what, "a number of seconds")
    if not val > 0:  # also rejects nan
        raise ValueError(f"{what} must be > 0 seconds (inf for none), got {val}")
    return val
