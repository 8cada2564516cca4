"""Activations of a :class:`~unfoldtheory.spec.NetworkSpec`, each with its declared properties.

Every analysis relies on three declared properties, each proved in ``proofs/``:

* ``slope_interval`` ``[α, β]``: for a separable activation, every coordinate satisfies
  ``α ≤ (φ(a) − φ(b)) / (a − b) ≤ β`` for all ``a ≠ b``;
  for a non-separable one the same holds for the symmetric Jacobian wherever it exists;
* ``separable``: φ acts coordinate by coordinate;
* ``firmly_nonexpansive``: ``⟨φ(a) − φ(b), a − b⟩ ≥ ‖φ(a) − φ(b)‖²``.

Soft-thresholding, ReLU and box projections are slope-restricted in ``[0, 1]``
(``proofs/soft_threshold.py``, ``proofs/relu_and_box.py``); group soft-thresholding is firmly
nonexpansive but not separable (``proofs/group_soft_threshold.py``); the identity is ``[1, 1]``.

``jacobian(v)`` returns one element of Clarke's generalised Jacobian: at a kink
(``|v| = θ`` for soft-thresholding) the slope on the flat side, 0, is used.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from unfoldtheory.results import to_jsonable
from unfoldtheory.validation import as_finite_array


def soft_threshold(v: np.ndarray, theta: np.ndarray | float) -> np.ndarray:
    """``ST_θ(v) = sign(v)·max(|v| − θ, 0)``, the prox of ``θ‖·‖₁`` (θ broadcasts over v)."""
    return np.sign(v) * np.maximum(np.abs(v) - theta, 0.0)


class Activation(ABC):
    """A fixed nonlinearity with declared, proved properties. Inputs have shape ``(..., dim)``."""

    name: str = "activation"
    slope_interval: tuple[float, float] = (0.0, 1.0)
    separable: bool = True
    firmly_nonexpansive: bool = True

    @property
    def dim(self) -> int | None:
        """The dimension this activation is tied to (per-coordinate parameters), or None."""
        return None

    @abstractmethod
    def __call__(self, v: np.ndarray) -> np.ndarray:
        """Apply the activation to the last axis of ``v``."""

    def slopes(self, v: np.ndarray) -> np.ndarray:
        """Per-coordinate derivative (separable activations only), same shape as ``v``."""
        raise TypeError(f"{self.name} is not separable; use jacobian()")

    def jacobian(self, v: np.ndarray) -> np.ndarray:
        """A Clarke-Jacobian element at a single point ``v`` of shape (dim,): a (dim, dim) array."""
        return np.diag(self.slopes(np.asarray(v, dtype=float)))

    def check_dim(self, dim: int, where: str) -> None:
        """Raise ValueError if this activation cannot act on vectors of length ``dim``."""
        if self.dim is not None and self.dim != dim:
            raise ValueError(f"{where}: activation {self.name} has dimension {self.dim}; expected {dim}")

    def config(self) -> dict[str, Any]:
        """A JSON-serialisable description from which :func:`from_config` rebuilds it."""
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items() if k != 'name')})"


def _threshold(theta: float | Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    arr = as_finite_array(theta, what)
    if arr.ndim > 1:
        raise ValueError(f"{what} must be a scalar or a vector, got shape {arr.shape}")
    if np.any(arr < 0):
        raise ValueError(f"{what} must be >= 0, got minimum {arr.min():.6g}")
    arr = arr.copy()
    arr.flags.writeable = False
    return arr


class SoftThreshold(Activation):
    """``ST_θ(v) = sign(v)·max(|v| − θ, 0)`` with a scalar or per-coordinate θ ≥ 0.

    Prox of ``θ‖·‖₁`` (Parikh & Boyd, *Proximal Algorithms*, §6.5.2); slope-restricted in
    [0, 1] and firmly nonexpansive (``proofs/soft_threshold.py``).
    """

    name = "soft_threshold"

    def __init__(self, theta: float | Sequence[float] | np.ndarray = 0.0) -> None:
        self.theta = _threshold(theta, "soft-threshold theta")

    @property
    def dim(self) -> int | None:
        return None if self.theta.ndim == 0 else int(self.theta.shape[0])

    def __call__(self, v: np.ndarray) -> np.ndarray:
        return soft_threshold(v, self.theta)

    def slopes(self, v: np.ndarray) -> np.ndarray:
        # θ = 0 makes ST the identity, so its slope is 1 everywhere, including at v = 0
        return ((np.abs(v) > self.theta) | (self.theta == 0)).astype(float)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "theta": self.theta.tolist()}


class ReLU(Activation):
    """``max(v, 0)``: slope-restricted in [0, 1] (``proofs/relu_and_box.py``)."""

    name = "relu"

    def __call__(self, v: np.ndarray) -> np.ndarray:
        return np.maximum(v, 0.0)

    def slopes(self, v: np.ndarray) -> np.ndarray:
        return (np.asarray(v) > 0).astype(float)


class Identity(Activation):
    """The identity: slope interval [1, 1]."""

    name = "identity"
    slope_interval = (1.0, 1.0)

    def __call__(self, v: np.ndarray) -> np.ndarray:
        return np.array(v, dtype=float, copy=True)

    def slopes(self, v: np.ndarray) -> np.ndarray:
        return np.ones_like(np.asarray(v, dtype=float))


class BoxProjection(Activation):
    """Projection onto the box ``[lower, upper]`` (bounds scalar or per coordinate, may be ±inf).

    Slope-restricted in [0, 1] (``proofs/relu_and_box.py``).
    """

    name = "box_projection"

    def __init__(self, lower: float | Sequence[float] | np.ndarray = 0.0,
                 upper: float | Sequence[float] | np.ndarray = 1.0) -> None:
        lo = np.asarray(lower, dtype=float)
        hi = np.asarray(upper, dtype=float)
        for arr, what in ((lo, "box lower bound"), (hi, "box upper bound")):
            if arr.ndim > 1:
                raise ValueError(f"{what} must be a scalar or a vector, got shape {arr.shape}")
            if np.any(np.isnan(arr)):
                raise ValueError(f"{what} contains NaN")
        if lo.ndim == 1 and hi.ndim == 1 and lo.shape != hi.shape:
            raise ValueError(f"box bounds have shapes {lo.shape} and {hi.shape}; expected equal")
        if np.any(lo > hi):
            raise ValueError("box lower bound exceeds upper bound")
        self.lower, self.upper = lo, hi

    @property
    def dim(self) -> int | None:
        for arr in (self.lower, self.upper):
            if arr.ndim == 1:
                return int(arr.shape[0])
        return None

    def __call__(self, v: np.ndarray) -> np.ndarray:
        return np.clip(v, self.lower, self.upper)

    def slopes(self, v: np.ndarray) -> np.ndarray:
        return ((v > self.lower) & (v < self.upper)).astype(float)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "lower": to_jsonable(self.lower), "upper": to_jsonable(self.upper)}


class GroupSoftThreshold(Activation):
    """Group soft-thresholding ``v_g ↦ v_g·max(1 − θ/‖v_g‖₂, 0)`` on a partition into groups.

    The prox of ``θ Σ_g ‖v_g‖₂``: firmly nonexpansive, not separable; where differentiable
    its Jacobian is symmetric with eigenvalues in [0, 1]
    (``proofs/group_soft_threshold.py``).

    ``groups`` is a list of index lists that partition ``range(dim)``.
    """

    name = "group_soft_threshold"
    separable = False

    def __init__(self, theta: float, groups: Sequence[Sequence[int]]) -> None:
        th = _threshold(theta, "group soft-threshold theta")
        if th.ndim != 0:
            raise ValueError("group soft-threshold theta must be a scalar")
        self.theta = float(th)
        raw = [np.asarray(g) for g in groups]
        if not raw or any(g.ndim != 1 or g.size == 0 for g in raw):
            raise ValueError("groups must be a non-empty list of non-empty index lists")
        if any(g.dtype.kind not in "iu" for g in raw):
            raise ValueError("group indices must be integers")
        self.groups = [g.astype(int) for g in raw]
        flat = np.sort(np.concatenate(self.groups))
        if not np.array_equal(flat, np.arange(flat.size)):
            raise ValueError(f"groups must partition range({flat.size}) (each index exactly once)")
        self._dim = int(flat.size)

    @classmethod
    def contiguous(cls, theta: float, dim: int, group_size: int) -> GroupSoftThreshold:
        """Groups of ``group_size`` consecutive coordinates (``dim`` divisible by it)."""
        if group_size <= 0 or dim % group_size:
            raise ValueError(f"dim {dim} is not a positive multiple of group_size {group_size}")
        return cls(theta, [list(range(i, i + group_size)) for i in range(0, dim, group_size)])

    @property
    def dim(self) -> int:
        return self._dim

    def __call__(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        out = np.zeros_like(v)
        for g in self.groups:
            block = v[..., g]
            norm = np.linalg.norm(block, axis=-1, keepdims=True)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where(norm > self.theta, 1.0 - self.theta / norm, 0.0)
            out[..., g] = scale * block
        return out

    def jacobian(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        jac = np.zeros((self._dim, self._dim))
        for g in self.groups:
            block = v[g]
            r = float(np.linalg.norm(block))
            if self.theta == 0:  # the identity, also at v_g = 0
                jac[np.ix_(g, g)] = np.eye(g.size)
            elif r > self.theta:
                u = block / r  # (1 − θ/r) I + (θ/r) u uᵀ, written without r³ (no underflow)
                jac[np.ix_(g, g)] = (1 - self.theta / r) * np.eye(g.size) + (self.theta / r) * np.outer(u, u)
        return jac

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "theta": self.theta, "groups": [g.tolist() for g in self.groups]}


_REGISTRY: dict[str, type[Activation]] = {
    cls.name: cls for cls in (SoftThreshold, ReLU, Identity, BoxProjection, GroupSoftThreshold)
}


def from_config(config: dict[str, Any]) -> Activation:
    """Rebuild an activation from :meth:`Activation.config`."""
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError(f"activation config must be a dict with a 'name', got {config!r}")
    name = config["name"]
    if name not in _REGISTRY:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(_REGISTRY)}")
    kwargs = {k: v for k, v in config.items() if k != "name"}
    try:
        return _REGISTRY[name](**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad arguments for activation {name!r}: {exc}") from None
