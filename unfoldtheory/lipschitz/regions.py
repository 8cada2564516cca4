"""Input regions for local Lipschitz constants: ``Ball(center, radius, norm)`` and ``Box(lower, upper)``.

The local constant of ``f`` over a region ``R`` is ``sup {‖f(y₁) − f(y₂)‖₂ / ‖y₁ − y₂‖₂ : y₁ ≠ y₂ ∈ R}``
(ℓ2 on both sides, whatever the region's own norm). Both regions are convex, so the segment between two
of their points stays inside, which the local certificates use (``proofs/local_slopes.py``).

:meth:`Region.enclosing_box` returns float64 bounds that contain every point of the region in exact
arithmetic (outward rounding), the starting point of rigorous bound propagation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from unfoldtheory.rounding import down, up
from unfoldtheory.validation import as_finite_array

NORMS = (2, np.inf)


class Region(ABC):
    """A convex, compact set of inputs."""

    @property
    @abstractmethod
    def input_dim(self) -> int:
        """The dimension ``m`` of the inputs."""

    @abstractmethod
    def enclosing_box(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)`` with ``lo ≤ y ≤ hi`` for every ``y`` in the region, exactly (outward rounded)."""

    @abstractmethod
    def contains(self, Y: Any) -> np.ndarray:
        """Whether each row of ``Y`` (or the single point ``Y``) lies in the region (computed in float64)."""

    @abstractmethod
    def project(self, Y: Any) -> np.ndarray:
        """The nearest point of the region (in the region's own norm for boxes and ℓ∞ balls; ℓ2 for ℓ2 balls),
        pulled inside by a few ulps so that :meth:`contains` holds."""

    @abstractmethod
    def sample(self, count: int, rng: np.random.Generator | int | None = 0) -> np.ndarray:
        """``count`` points of the region (interior and boundary), shape ``(count, m)``."""

    @property
    @abstractmethod
    def diameter(self) -> float:
        """The ℓ2 diameter of the region (float64)."""

    def check_dim(self, m: int, where: str = "region") -> None:
        """ValueError unless the region's inputs have dimension ``m``."""
        if self.input_dim != m:
            raise ValueError(f"{where} has input dimension {self.input_dim}; the spec's input_dim is {m}")


def _points(Y: Any, m: int, what: str) -> tuple[np.ndarray, bool]:
    arr = as_finite_array(Y, what, ndim=(1, 2))
    single = arr.ndim == 1
    arr = arr[None, :] if single else arr
    if arr.shape[1] != m:
        raise ValueError(f"{what} has {arr.shape[1]} columns; the region's input dimension is {m}")
    return arr, single


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _count(count: Any) -> int:
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count must be a positive integer, got {count!r}")
    return int(count)


class Ball(Region):
    """``{y : ‖y − center‖ ≤ radius}`` in the ℓ2 (``norm=2``) or ℓ∞ (``norm=np.inf``) norm."""

    def __init__(self, center: Any, radius: float, norm: float = 2) -> None:
        c = as_finite_array(center, "Ball center", ndim=1)
        if c.size == 0:
            raise ValueError("Ball center is empty")
        r = as_finite_array(radius, "Ball radius", ndim=0)
        if not r >= 0:
            raise ValueError(f"Ball radius must be >= 0, got {float(r)!r}")
        if norm not in NORMS:
            raise ValueError(f"Ball norm must be 2 or np.inf, got {norm!r}")
        c = c.copy()
        c.flags.writeable = False
        self.center, self.radius, self.norm = c, float(r), (2 if norm == 2 else np.inf)

    @property
    def input_dim(self) -> int:
        return int(self.center.shape[0])

    def enclosing_box(self) -> tuple[np.ndarray, np.ndarray]:
        # both norms: |y_i − c_i| ≤ r; c ± r rounded outward
        return down(self.center - self.radius), up(self.center + self.radius)

    def contains(self, Y: Any) -> np.ndarray:
        P, single = _points(Y, self.input_dim, "points")
        dist = np.linalg.norm(P - self.center, ord=self.norm, axis=1)
        inside = dist <= self.radius
        return inside[0] if single else inside

    def project(self, Y: Any) -> np.ndarray:
        P, single = _points(Y, self.input_dim, "points")
        D = P - self.center
        target = self.radius * (1 - 8 * np.finfo(float).eps)
        if self.norm == 2:
            dist = np.linalg.norm(D, axis=1, keepdims=True)
            D = np.where(dist > target, D * (target / np.where(dist > 0, dist, 1.0)), D)
        else:
            D = np.clip(D, -target, target)
        out = self.center + D
        return out[0] if single else out

    def sample(self, count: int, rng: np.random.Generator | int | None = 0) -> np.ndarray:
        count, gen = _count(count), _rng(rng)
        m = self.input_dim
        if self.norm == 2:
            U = gen.standard_normal((count, m))
            U /= np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1e-300)
            radii = self.radius * gen.random((count, 1)) ** (1.0 / m)
            radii[: max(1, count // 4)] = self.radius  # a quarter on the sphere, where the extreme pairs are
            P = self.center + radii * U
        else:
            P = self.center + self.radius * gen.uniform(-1.0, 1.0, (count, m))
            P[: max(1, count // 4)] = self.center + self.radius * gen.choice([-1.0, 1.0], (max(1, count // 4), m))
        return self.project(P)

    @property
    def diameter(self) -> float:
        return 2 * self.radius * (1.0 if self.norm == 2 else float(np.sqrt(self.input_dim)))

    def __repr__(self) -> str:
        norm = "2" if self.norm == 2 else "inf"
        return f"Ball(center=<{self.input_dim}>, radius={self.radius:.6g}, norm={norm})"


class Box(Region):
    """``{y : lower ≤ y ≤ upper}`` (entrywise; bounds finite, ``lower ≤ upper``)."""

    def __init__(self, lower: Any, upper: Any) -> None:
        lo = as_finite_array(lower, "Box lower", ndim=1)
        hi = as_finite_array(upper, "Box upper", shape=lo.shape)
        if lo.size == 0:
            raise ValueError("Box bounds are empty")
        if np.any(lo > hi):
            i = int(np.argmax(lo > hi))
            raise ValueError(f"Box lower exceeds upper at coordinate {i}: {lo[i]:.6g} > {hi[i]:.6g}")
        lo, hi = lo.copy(), hi.copy()
        lo.flags.writeable = hi.flags.writeable = False
        self.lower, self.upper = lo, hi

    @property
    def input_dim(self) -> int:
        return int(self.lower.shape[0])

    def enclosing_box(self) -> tuple[np.ndarray, np.ndarray]:
        return self.lower.copy(), self.upper.copy()

    def contains(self, Y: Any) -> np.ndarray:
        P, single = _points(Y, self.input_dim, "points")
        inside = np.all((P >= self.lower) & (P <= self.upper), axis=1)
        return inside[0] if single else inside

    def project(self, Y: Any) -> np.ndarray:
        P, single = _points(Y, self.input_dim, "points")
        out = np.clip(P, self.lower, self.upper)
        return out[0] if single else out

    def sample(self, count: int, rng: np.random.Generator | int | None = 0) -> np.ndarray:
        count, gen = _count(count), _rng(rng)
        P = gen.uniform(self.lower, self.upper, (count, self.input_dim))
        corners = max(1, count // 4)
        P[:corners] = np.where(gen.random((corners, self.input_dim)) < 0.5, self.lower, self.upper)
        return self.project(P)

    @property
    def diameter(self) -> float:
        return float(np.linalg.norm(self.upper - self.lower))

    def __repr__(self) -> str:
        widths = self.upper - self.lower
        return f"Box(<{self.input_dim}>, widths in [{np.min(widths):.3g}, {np.max(widths):.3g}])"


__all__ = ["NORMS", "Ball", "Box", "Region"]
