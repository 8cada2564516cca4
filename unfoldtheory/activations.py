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

**Built-in or declared.** Only the five classes below (exactly these classes, not subclasses) carry
proved properties (:attr:`Activation.proof` names the script). Any other :class:`Activation` is
*declared by the user*: :func:`check_declaration` (run by :class:`~unfoldtheory.spec.NetworkSpec` on
construction) tests its declared slope interval and firm nonexpansiveness on a dense sample and raises
``ValueError`` on a violation; results that rest on a declaration say so (:func:`declaration_caveats`).
A sampled check is evidence, not a proof.
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

    def neuron_slopes(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-neuron slope bounds ``(α_i, β_i)`` of a separable activation on ``dim`` coordinates: the declared
        ``slope_interval`` for every neuron (:class:`RegionSlopes` narrows them neuron by neuron)."""
        lo, hi = (float(x) for x in self.slope_interval)
        return np.full(dim, lo), np.full(dim, hi)

    def slope_range(self, lower: Any, upper: Any) -> tuple[np.ndarray, np.ndarray]:
        """Per-neuron slope bounds over pre-activations in ``[lower_i, upper_i]`` (arrays, entries may be ±inf).

        Every difference quotient ``(φ(a) − φ(b))/(a − b)`` with ``a ≠ b`` in ``[lower_i, upper_i]`` lies in
        ``[α_i, β_i]``. The default is the declared interval everywhere; the piecewise-linear built-ins narrow
        it to the slope of the one piece that contains the interval (``proofs/local_slopes.py``)."""
        lo, _ = _interval_arrays(lower, upper)
        return self.neuron_slopes(lo.shape[0])

    def fixed_piece(self, lower: Any, upper: Any) -> np.ndarray:
        """Per neuron, the offset ``c_i`` with ``φ(v)_i = α_i v_i + c_i`` for all ``v_i`` in ``[lower_i, upper_i]``
        when :meth:`slope_range` gives ``α_i = β_i`` and the piece is known; NaN where it is not (default: all)."""
        lo, _ = _interval_arrays(lower, upper)
        return np.full(lo.shape[0], np.nan)

    def check_dim(self, dim: int, where: str) -> None:
        """Raise ValueError if this activation cannot act on vectors of length ``dim``."""
        if self.dim is not None and self.dim != dim:
            raise ValueError(f"{where}: activation {self.name} has dimension {self.dim}; expected {dim}")

    def config(self) -> dict[str, Any]:
        """A JSON-serialisable description from which :func:`from_config` rebuilds it."""
        return {"name": self.name}

    @property
    def declared_by_user(self) -> bool:
        """True unless this is one of the package's built-in classes (exactly, not a subclass)."""
        return not is_builtin(self)

    @property
    def proof(self) -> str | None:
        """The ``proofs/`` script that proves the declared properties (built-ins), or None (declared by the user)."""
        return _PROOFS.get(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items() if k != 'name')})"


def _interval_arrays(lower: Any, upper: Any) -> tuple[np.ndarray, np.ndarray]:
    """Pre-activation bounds as two float64 vectors of one shape (NaN and lower > upper are refused)."""
    lo, hi = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    if lo.ndim != 1 or lo.shape != hi.shape:
        raise ValueError(f"pre-activation bounds have shapes {lo.shape} and {hi.shape}; expected two equal vectors")
    if np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
        raise ValueError("pre-activation bounds contain NaN")
    if np.any(lo > hi):
        i = int(np.argmax(lo > hi))
        raise ValueError(f"pre-activation bounds have lower > upper at neuron {i}: {lo[i]:.6g} > {hi[i]:.6g}")
    return lo, hi


def _pieces(lo: np.ndarray, hi: np.ndarray, breaks: list[tuple[np.ndarray, np.ndarray, float, np.ndarray]]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slope ranges and offsets of a separable piecewise-linear map given by its closed pieces.

    ``breaks`` lists ``(start, end, slope, offset)`` (arrays broadcast over neurons): ``φ(v) = slope·v + offset``
    on ``[start, end]``. A neuron whose interval lies inside one piece gets that piece's slope and offset; the
    others get ``[0, 1]`` (every built-in piece has slope 0 or 1) and offset NaN. Comparisons of floats are exact.
    """
    alpha, beta = np.zeros(lo.shape), np.ones(lo.shape)
    offset = np.full(lo.shape, np.nan)
    for start, end, slope, off in breaks:
        inside = (lo >= start) & (hi <= end)
        alpha = np.where(inside, slope, alpha)
        beta = np.where(inside, slope, beta)
        offset = np.where(inside, off, offset)
    return alpha, beta, offset


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

    def _local(self, lower: Any, upper: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo, hi = _interval_arrays(lower, upper)
        th = np.broadcast_to(self.theta, lo.shape)
        if np.all(th == 0):  # the identity
            return np.ones(lo.shape), np.ones(lo.shape), np.zeros(lo.shape)
        inf = np.full(lo.shape, np.inf)
        alpha, beta, offset = _pieces(lo, hi, [(-inf, -th, 1.0, th), (-th, th, 0.0, np.zeros(lo.shape)),
                                               (th, inf, 1.0, -th)])
        ident = th == 0  # per-neuron θ = 0: the identity there
        return np.where(ident, 1.0, alpha), np.where(ident, 1.0, beta), np.where(ident, 0.0, offset)

    def slope_range(self, lower: Any, upper: Any) -> tuple[np.ndarray, np.ndarray]:
        return self._local(lower, upper)[:2]

    def fixed_piece(self, lower: Any, upper: Any) -> np.ndarray:
        return self._local(lower, upper)[2]

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "theta": self.theta.tolist()}


class ReLU(Activation):
    """``max(v, 0)``: slope-restricted in [0, 1] (``proofs/relu_and_box.py``)."""

    name = "relu"

    def __call__(self, v: np.ndarray) -> np.ndarray:
        return np.maximum(v, 0.0)

    def slopes(self, v: np.ndarray) -> np.ndarray:
        return (np.asarray(v) > 0).astype(float)

    def _local(self, lower: Any, upper: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo, hi = _interval_arrays(lower, upper)
        zero, inf = np.zeros(lo.shape), np.full(lo.shape, np.inf)
        return _pieces(lo, hi, [(-inf, zero, 0.0, zero), (zero, inf, 1.0, zero)])

    def slope_range(self, lower: Any, upper: Any) -> tuple[np.ndarray, np.ndarray]:
        return self._local(lower, upper)[:2]

    def fixed_piece(self, lower: Any, upper: Any) -> np.ndarray:
        return self._local(lower, upper)[2]


class Identity(Activation):
    """The identity: slope interval [1, 1]."""

    name = "identity"
    slope_interval = (1.0, 1.0)

    def __call__(self, v: np.ndarray) -> np.ndarray:
        return np.array(v, dtype=float, copy=True)

    def slopes(self, v: np.ndarray) -> np.ndarray:
        return np.ones_like(np.asarray(v, dtype=float))

    def fixed_piece(self, lower: Any, upper: Any) -> np.ndarray:
        lo, _ = _interval_arrays(lower, upper)
        return np.zeros(lo.shape)


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

    def _local(self, lower: Any, upper: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo, hi = _interval_arrays(lower, upper)
        a, b = np.broadcast_to(self.lower, lo.shape), np.broadcast_to(self.upper, lo.shape)
        inf = np.full(lo.shape, np.inf)
        alpha, beta, offset = _pieces(lo, hi, [(-inf, a, 0.0, a), (a, b, 1.0, np.zeros(lo.shape)), (b, inf, 0.0, b)])
        flat = a == b  # a one-point box: constant
        return np.where(flat, 0.0, alpha), np.where(flat, 0.0, beta), np.where(flat, a, offset)

    def slope_range(self, lower: Any, upper: Any) -> tuple[np.ndarray, np.ndarray]:
        return self._local(lower, upper)[:2]

    def fixed_piece(self, lower: Any, upper: Any) -> np.ndarray:
        return self._local(lower, upper)[2]

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


class RegionSlopes(Activation):
    """A separable built-in activation whose slopes are narrowed to pre-activations in ``[lower_i, upper_i]``.

    It evaluates as ``base`` does. Its declared per-neuron slope bounds ``(α_i, β_i) = base.slope_range(lower,
    upper)`` hold for every pair of pre-activations inside the bounds (``proofs/local_slopes.py``), not globally:
    a spec using it describes the network only for inputs whose pre-activations stay inside them, which is how
    :mod:`unfoldtheory.lipschitz.restriction` uses it (local Lipschitz constants over an input region).
    """

    name = "region_slopes"

    def __init__(self, base: Activation, lower: Any, upper: Any) -> None:
        if not is_builtin(base) or not base.separable:
            raise ValueError(f"RegionSlopes needs a separable built-in activation; got {base!r}")
        lo, hi = _interval_arrays(lower, upper)
        base.check_dim(lo.shape[0], "RegionSlopes")
        self.base, self.lower, self.upper = base, lo.copy(), hi.copy()
        self.lower.flags.writeable = self.upper.flags.writeable = False
        self.alpha, self.beta = (np.array(x, dtype=np.float64) for x in base.slope_range(lo, hi))
        self.alpha.flags.writeable = self.beta.flags.writeable = False
        self.slope_interval = (float(self.alpha.min()), float(self.beta.max()))
        self.firmly_nonexpansive = base.firmly_nonexpansive

    @property
    def dim(self) -> int:
        return int(self.lower.shape[0])

    def __call__(self, v: np.ndarray) -> np.ndarray:
        return self.base(v)

    def slopes(self, v: np.ndarray) -> np.ndarray:
        return self.base.slopes(v)

    def neuron_slopes(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        self.check_dim(dim, "RegionSlopes")
        return self.alpha.copy(), self.beta.copy()

    def slope_range(self, lower: Any, upper: Any) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = _interval_arrays(lower, upper)  # narrower of the two: both hold inside both bounds
        a, b = self.base.slope_range(np.maximum(lo, self.lower), np.minimum(hi, self.upper))
        return np.maximum(a, self.alpha), np.minimum(b, self.beta)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "base": self.base.config(), "lower": to_jsonable(self.lower),
                "upper": to_jsonable(self.upper)}


_PROOFS: dict[type, str] = {}  # filled below, once the classes exist


def is_builtin(act: Activation) -> bool:
    """Whether ``act`` is an instance of exactly one of the built-in classes (whose properties are proved)."""
    return type(act) in _PROOFS


_REGISTRY: dict[str, type[Activation]] = {
    cls.name: cls for cls in (SoftThreshold, ReLU, Identity, BoxProjection, GroupSoftThreshold, RegionSlopes)
}


def from_config(config: dict[str, Any]) -> Activation:
    """Rebuild an activation from :meth:`Activation.config`."""
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError(f"activation config must be a dict with a 'name', got {config!r}")
    name = config["name"]
    if name not in _REGISTRY:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(_REGISTRY)}")
    kwargs = {k: v for k, v in config.items() if k != "name"}
    if name == RegionSlopes.name and isinstance(kwargs.get("base"), dict):
        kwargs["base"] = from_config(kwargs["base"])
    try:
        return _REGISTRY[name](**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad arguments for activation {name!r}: {exc}") from None


_PROOFS.update({SoftThreshold: "proofs/soft_threshold.py", ReLU: "proofs/relu_and_box.py",
                Identity: "proofs/relu_and_box.py", BoxProjection: "proofs/relu_and_box.py",
                GroupSoftThreshold: "proofs/group_soft_threshold.py", RegionSlopes: "proofs/local_slopes.py"})


# ---------------------------------------------------------------------------- user-declared activations
#: Sample values per coordinate of the dense check: 0, ±(10⁻⁶ … 10⁶) log-spaced and [-10, 10] evenly.
_SAMPLE = np.unique(np.concatenate([[0.0], np.geomspace(1e-6, 1e6, 241), -np.geomspace(1e-6, 1e6, 241),
                                    np.linspace(-10.0, 10.0, 801)]))
_PAIRS = 512  # random pairs for the vector checks (non-separable maps, firm nonexpansiveness)
_RTOL = 1e-6


def _tolerance(bound: float, fa: np.ndarray, fb: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Rounding slack of a sampled difference quotient: relative 1e-6 of the bound, plus ~8 ulps of the values over the gap."""
    eps = float(np.finfo(np.float64).eps)
    return _RTOL * max(abs(bound), 1.0) + 8 * eps * (np.abs(fa) + np.abs(fb)) / gap


def _violation(act: Activation, dim: int) -> str | None:
    """The first observed violation of ``act``'s declared properties on the dense sample, described, or None."""
    lo, hi = (float(x) for x in act.slope_interval)
    rng = np.random.default_rng(0)
    with np.errstate(all="ignore"):
        if act.separable:
            V = np.repeat(_SAMPLE[:, None], dim, axis=1)
            F = np.asarray(act(V), dtype=float)
            if F.shape != V.shape or not np.all(np.isfinite(F)):
                return f"it returns shape {F.shape} or non-finite values on inputs of shape {V.shape}"
            gap = np.diff(V, axis=0)
            q = np.diff(F, axis=0) / gap  # a chord's slope is an average of the adjacent ones: these suffice
            tol = _tolerance(max(abs(lo), abs(hi)), F[:-1], F[1:], gap)
            bad = (q > hi + tol) | (q < lo - tol)
            if np.any(bad):
                i, j = np.unravel_index(int(np.argmax(bad)), bad.shape)
                return (f"difference quotient {q[i, j]:.6g} at coordinate {j} between v = {V[i, j]:.6g} and "
                        f"{V[i + 1, j]:.6g}, outside [{lo:.6g}, {hi:.6g}]")
            # separable: moving one coordinate moves no other
            base = rng.standard_normal(dim)
            for j in range(min(dim, 8)):
                moved = base.copy()
                moved[j] += 1.0
                diff = np.asarray(act(moved), dtype=float) - np.asarray(act(base), dtype=float)
                diff[j] = 0.0
                if np.any(np.abs(diff) > 1e-9 * (1 + np.abs(np.asarray(act(base), dtype=float)))):
                    return f"it is declared separable, but moving coordinate {j} changes another coordinate"
        scales = np.geomspace(1e-3, 1e3, 7)
        A = rng.standard_normal((_PAIRS, dim)) * scales[rng.integers(0, 7, (_PAIRS, 1))]
        B = A + rng.standard_normal((_PAIRS, dim)) * scales[rng.integers(0, 7, (_PAIRS, 1))]
        FA, FB = np.asarray(act(A), dtype=float), np.asarray(act(B), dtype=float)
        if FA.shape != A.shape or not (np.all(np.isfinite(FA)) and np.all(np.isfinite(FB))):
            return f"it returns shape {FA.shape} or non-finite values on inputs of shape {A.shape}"
        d, df = B - A, FB - FA
        dd = np.sum(d * d, axis=1)
        inner = np.sum(df * d, axis=1)
        slack = _tolerance(max(abs(lo), abs(hi)), np.linalg.norm(FA, axis=1) * np.linalg.norm(d, axis=1),
                           np.linalg.norm(FB, axis=1) * np.linalg.norm(d, axis=1), dd) * dd
        checks = [(inner > hi * dd + slack, "<f(a) - f(b), a - b> / ||a - b||^2", inner / dd, f"above beta = {hi:.6g}"),
                  (inner < lo * dd - slack, "<f(a) - f(b), a - b> / ||a - b||^2", inner / dd, f"below alpha = {lo:.6g}"),
                  (np.sum(df * df, axis=1) > max(lo * lo, hi * hi) * dd + 2 * slack * max(abs(lo), abs(hi), 1.0),
                   "||f(a) - f(b)|| / ||a - b||", np.sqrt(np.sum(df * df, axis=1) / dd),
                   f"above max(|alpha|, |beta|) = {max(abs(lo), abs(hi)):.6g}")]
        if act.firmly_nonexpansive:
            checks.append((np.sum(df * df, axis=1) > inner + slack, "||f(a) - f(b)||^2 / <f(a) - f(b), a - b>",
                           np.sum(df * df, axis=1) / inner, "above 1 (declared firmly nonexpansive)"))
        for bad, what, val, where in checks:
            if np.any(bad):
                i = int(np.argmax(bad))
                return f"{what} = {val[i]:.6g} {where} at a = {A[i, :3].round(6).tolist()}{'...' if dim > 3 else ''}"
    return None


def check_declaration(act: Activation, dim: int, where: str) -> None:
    """Check a user-declared activation's slope interval (and firm nonexpansiveness when declared) on a dense sample.

    Separable: every adjacent difference quotient of ``φ`` on 0, ±10⁻⁶…10⁶ (log-spaced) and [-10, 10] lies in
    ``[α, β]`` (chords between farther samples are averages of these), and moving one coordinate moves no other.
    Every activation: on random pairs at scales 10⁻³…10³, ``α‖a − b‖² ≤ ⟨φ(a) − φ(b), a − b⟩ ≤ β‖a − b‖²`` and
    ``‖φ(a) − φ(b)‖ ≤ max(|α|, |β|)‖a − b‖``, and ``⟨φ(a) − φ(b), a − b⟩ ≥ ‖φ(a) − φ(b)‖²`` when declared firmly
    nonexpansive. Tolerance: 1e-6 relative, plus rounding of the values. Built-ins are not checked (proved).
    Raises ValueError naming the activation, the declared interval and the observed value.
    """
    if is_builtin(act):
        return
    problem = _violation(act, int(dim))
    if problem is not None:
        lo, hi = act.slope_interval
        firm = ", firmly nonexpansive" if act.firmly_nonexpansive else ""
        raise ValueError(f"{where}: user-defined activation {act.name} ({type(act).__name__}) violates its declared "
                         f"properties (slope interval [{lo}, {hi}]{firm}): {problem}")


def declaration_caveats(spec: Any) -> list[str]:
    """One statement per layer of ``spec`` whose activation is user-defined: a certified bound that uses its
    declared properties rests on that declaration (checked on a sample at construction, not proved)."""
    return [f"layer {k}: activation {act.name} ({type(act).__name__}) is user-defined; its declared slope interval "
            f"{tuple(float(x) for x in act.slope_interval)}"
            f"{', firm nonexpansiveness' if act.firmly_nonexpansive else ''}"
            f"{' and separability' if act.separable else ''} passed a dense sampled check at construction but are "
            "not proved: this bound rests on the declaration"
            for k, act in enumerate(spec.activations, start=1) if act.declared_by_user]
