"""Rigorous forward error bounds for the evaluation of a :class:`NetworkSpec` in floating point.

``f`` below is the spec's map in **exact** arithmetic on its float64 data; ``f̂`` is what a floating-point
evaluation computes. Every bound here is componentwise, ``|ẑ_k − z_k| ≤ e_k``, and built by one
recursion over the graph (:func:`error_recursion`), the running-error analysis of Higham, *Accuracy and
Stability of Numerical Algorithms* (2nd ed.), §3.1 and §3.5:

* **pre-activations.** ``p̂_k = fl(Σ_j Ŵ_kj ẑ_j + b̂_k)`` (``Ŵ``, ``b̂`` the weights as stored in the
  arithmetic: ``W`` itself in float64) is a sum of ``n_k = Σ_j d_j + 1`` terms, so in any order, with or
  without fused multiply-adds, ``|p̂_k − (Σ Ŵ ẑ + b̂)| ≤ γ_n (Σ|Ŵ||ẑ| + |b̂|) + n·η`` (``γ_n = nu/(1 − nu)``,
  ``η`` half the smallest subnormal: underflow). The stored weights differ from the exact ones by
  ``|W − Ŵ|`` (zero in float64), and the error already in ``ẑ_j`` passes through ``|W|``:
  ``e_pre = Σ|W| e_j + γ_n(Σ|Ŵ| Z_j + |b̂|) + Σ|W − Ŵ| Z_j + |b − b̂| + n·η`` with ``Z_j ≥ |ẑ_j|``.
* **activations** (:func:`activation_error`), only for the built-in classes: soft-thresholding, ReLU,
  identity and box projection are 1-Lipschitz per coordinate, so ``e_pre`` passes; evaluating them
  rounds once (soft-thresholding's subtraction ``|v| − θ̂``: at most ``u|p̂|``) or not at all (ReLU,
  identity, box), plus the effect of the stored parameter (``|θ − θ̂|``, ``max |l − l̂|, |u − û|``).
  Group soft-thresholding is 1-Lipschitz in ℓ2 per group and its evaluation (norm, division,
  subtraction, product) is bounded in ``proofs/forward_error.py``. A user-defined activation has no
  known rounding bound: ``None``.
* **read-out.** As a pre-activation without bias and with the identity.

The bound itself is evaluated in float64 from nonnegative terms: each stored bound is inflated by
``1 + 2γ`` (``γ`` covering the number of operations that formed it) and rounded up with ``nextafter``,
the argument of :func:`unfoldtheory.lipschitz.agnostic.certified_gain`, which now runs on this recursion.

Three uses: :func:`evaluate_with_error` (a point, float64: the witness of ``lipschitz.lower``),
:func:`pattern_product_with_error` (``J(D) v`` for a slope pattern: ``certified_gain``), and
:func:`float32_deviation` (a box of inputs, the float32 forward pass: the deployed network).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unfoldtheory.activations import (
    Activation,
    BoxProjection,
    GroupSoftThreshold,
    Identity,
    ReLU,
    SoftThreshold,
    is_builtin,
)
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.validation import as_finite_array

_U64 = 2.0 ** -53
_ETA64 = 2.0 ** -1075  # half the smallest float64 subnormal: the absolute error of an underflowing product
_TINY64 = 2.0 ** -1022  # the smallest normal float64: covers 2^52 underflows of size _ETA64


# ---------------------------------------------------------------------------- upward-rounded float64
def _up(x: Any) -> Any:
    return np.nextafter(x, np.inf)


def _down(x: Any) -> Any:
    return np.nextafter(x, -np.inf)


def _gamma(n: int, unit: float) -> float:
    """An upper bound on ``γ_n = n·u/(1 − n·u)``: ``2nu`` when ``nu ≤ ½`` (Higham, Lemma 3.1)."""
    nu = n * unit
    if not nu <= 0.5:
        raise ValueError(f"{n} operations are too many for a rounding-error bound with unit roundoff {unit}")
    return float(_up(2.0 * nu))


@dataclass(frozen=True)
class Arithmetic:
    """A binary floating-point format: unit roundoff ``u``, ``η`` (the absolute error of an underflowing operation: half
    the smallest subnormal in float64; for float32 the smallest normal, which also covers flush-to-zero of results)
    and its largest finite value."""

    name: str
    dtype: type
    unit: float
    eta: float
    largest: float

    def stored(self, x: Any) -> np.ndarray:
        """``x`` rounded to this format (round to nearest), as float64 (exact: every value is a float64)."""
        with np.errstate(over="ignore"):
            return np.asarray(x, dtype=np.float64).astype(self.dtype).astype(np.float64)

    def gamma(self, n: int) -> float:
        return _gamma(n, self.unit)


FLOAT64 = Arithmetic("float64", np.float64, _U64, _ETA64, float(np.finfo(np.float64).max))
FLOAT32 = Arithmetic("float32", np.float32, 2.0 ** -24, 2.0 ** -126, float(np.finfo(np.float32).max))


class _Inflation:
    """Covers the float64 rounding of a bound formed from nonnegative terms in at most ``ops`` operations:
    its exact value is ≤ computed / (1 − γ_ops) ≤ computed·(1 + 2γ_ops), and the product is rounded up."""

    def __init__(self, ops: int) -> None:
        self.factor = float(_up(1.0 + 2.0 * _gamma(ops, _U64)))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return _up(np.asarray(x, dtype=np.float64) * self.factor + _TINY64)


def _difference(a: Any, b: Any) -> np.ndarray:
    """``|a − b|`` for arrays of which ``b`` is ``a`` rounded to a narrower format: exact in float64
    (Sterbenz: ``b`` is ``a`` within a factor 2, or 0), ``inf`` where ``b`` overflowed, 0 where both are ±inf."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        d = np.abs(a - b)
    return np.where(a == b, 0.0, np.where(np.isnan(d), np.inf, d))


# ---------------------------------------------------------------------------- the recursion
LayerStep = Callable[[int, np.ndarray], "tuple[np.ndarray, np.ndarray] | None"]


def _ops(spec: NetworkSpec) -> int:
    """Operations that form one bound entry: three sums of at most ``n`` products, a few more around them."""
    n = max([sum(spec.dims[j] for j in ws) + 1 for ws in spec.weights]
            + [sum(spec.dims[k] for k in spec.readout) + 1])
    return 3 * n + 16


def linear_error(weights: dict[int, np.ndarray], bias: np.ndarray | None, mags: Sequence[np.ndarray],
                 errs: Sequence[np.ndarray], arith: Arithmetic, inflate: _Inflation, rows: int) -> np.ndarray:
    """A bound on ``|fl(Σ_j Ŵ_j ẑ_j + b̂) − (Σ_j W_j z_j + b)|`` (``rows`` entries) given ``|ẑ_j| ≤ mags[j]`` and
    ``|ẑ_j − z_j| ≤ errs[j]`` (Higham §3.5; the module docstring states the formula). ``bias=None``: no bias term."""
    n = sum(w.shape[1] for w in weights.values()) + 1
    g = arith.gamma(n)
    prop, mag, stored = np.zeros(rows), np.zeros(rows), np.zeros(rows)
    with np.errstate(over="ignore", invalid="ignore"):
        for j, w in weights.items():
            w_hat = arith.stored(w)
            prop += np.abs(w) @ errs[j]
            mag += np.abs(w_hat) @ mags[j]
            if arith is not FLOAT64:
                stored += _difference(w, w_hat) @ mags[j]
        if bias is not None:
            b_hat = arith.stored(bias)
            mag += np.abs(b_hat)
            stored += _difference(bias, b_hat)
        out = inflate(prop + g * mag + stored + n * arith.eta)
    return np.where(np.isnan(out), np.inf, out)


def activation_error(act: Activation, e_pre: np.ndarray, pre_mag: np.ndarray, pre_low: np.ndarray,
                     arith: Arithmetic, inflate: _Inflation) -> np.ndarray | None:
    """A bound on ``|φ̂(p̂) − φ(p)|`` (``φ̂`` evaluated in ``arith`` with its parameters stored there) given
    ``|p̂ − p| ≤ e_pre`` and ``pre_low ≤ |p̂| ≤ pre_mag``; None for an activation without a proved bound."""
    if not is_builtin(act):
        return None
    u = arith.unit
    with np.errstate(over="ignore", invalid="ignore"):
        if isinstance(act, (Identity, ReLU)):  # 1-Lipschitz, evaluated exactly
            return e_pre
        if isinstance(act, SoftThreshold):  # 1-Lipschitz; one rounded subtraction |v| − θ̂, ≤ u|p̂|
            theta = np.broadcast_to(act.theta, e_pre.shape)
            return inflate(e_pre + u * pre_mag + _difference(theta, arith.stored(theta)))
        if isinstance(act, BoxProjection):  # 1-Lipschitz, clip is exact; the stored bounds move it by ≤ max |Δ|
            lo, hi = (np.broadcast_to(x, e_pre.shape) for x in (act.lower, act.upper))
            return inflate(e_pre + np.maximum(_difference(lo, arith.stored(lo)), _difference(hi, arith.stored(hi))))
        if isinstance(act, GroupSoftThreshold):
            return _group_error(act, e_pre, pre_mag, pre_low, arith, inflate)
    raise TypeError(f"no rounding bound for the built-in activation {act.name}")  # unreachable: is_builtin lists these


def _group_error(act: GroupSoftThreshold, e_pre: np.ndarray, pre_mag: np.ndarray, pre_low: np.ndarray,
                 arith: Arithmetic, inflate: _Inflation) -> np.ndarray:
    """Group soft-thresholding ``v ↦ c(r)·v``, ``c(r) = max(1 − θ/r, 0)``, ``r = ‖v‖`` (``proofs/forward_error.py``):

    * 1-Lipschitz in ℓ2 per group (firmly nonexpansive), so ``|φ(p̂)_i − φ(p)_i| ≤ ‖e_pre,g‖₂``;
    * the computed norm satisfies ``|r̂ − r| ≤ ρ = γ_{n+2} r + √(2nη)`` (``n`` squares summed, a square root;
      underflow of the squares is the absolute part), so ``r ≤ R = ‖pre_mag_g‖`` and
      ``min(r, r̂) ≥ m = max(θ, ‖pre_low_g‖ − ρ)``;
    * ``|c(a) − c(b)| ≤ min(1, |a − b| / max(θ, min(a, b)))`` and the computed ``ĉ = fl(1 − fl(θ/r̂))`` is within
      ``2u + η`` of ``c(r̂)``; the product ``fl(ĉ v_i)`` adds ``u|v_i| + η``.

    Total: ``‖e_pre,g‖ + |θ − θ̂| + (3u + min(1, ρ/m))·pre_mag_i + 2η`` (``θ̂`` the stored threshold, ``m`` formed with
    ``min(θ, θ̂)``). The squares must not overflow (else ``inf``).
    """
    u, out = arith.unit, np.empty_like(e_pre)
    theta_hat = float(arith.stored(act.theta))
    shift = float(_difference(act.theta, theta_hat))  # ‖GST_θ(v) − GST_θ̂(v)‖ ≤ |θ − θ̂| (v minus its projection on a ball)
    for g in act.groups:
        n = int(g.size)
        gam = arith.gamma(n + 2)
        R = float(inflate(np.linalg.norm(pre_mag[g])))
        low = float(_down(_down(np.linalg.norm(pre_low[g])) * (1.0 - 2.0 * _gamma(n + 2, _U64))))
        if not R * R * (1.0 + gam) * (n + 1) < arith.largest:  # fl(Σ v²) may overflow
            out[g] = np.inf
            continue
        rho = float(inflate(gam * R + math.sqrt(2.0 * n * arith.eta)))
        m = max(min(act.theta, theta_hat), float(_down(low - rho)))
        with np.errstate(divide="ignore", over="ignore"):
            move = 1.0 if m <= 0 else min(1.0, float(_up(rho / m)))
        lip = float(inflate(np.linalg.norm(e_pre[g])))
        out[g] = inflate(lip + shift + (3.0 * u + move) * pre_mag[g] + 2.0 * arith.eta)
    return out


def error_recursion(spec: NetworkSpec, arith: Arithmetic, mag0: np.ndarray, e0: np.ndarray, step: LayerStep,
                    bias: bool = True) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray] | None:
    """The running error bound over the graph: state magnitudes ``Z_k`` and errors ``e_k``, and the read-out error.

    ``step(k, e_pre)`` receives layer ``k``'s pre-activation error bound and returns ``(Z_k, e_k)`` (the bound on
    ``|ẑ_k|`` and on ``|ẑ_k − z_k|``; it also computes ``ẑ_k`` where the caller evaluates), or None when no
    bound is known. ``bias=False`` drops the biases (a tangent, ``J(D) v``). Returns ``(mags, errs, e_out)``.
    """
    inflate = _Inflation(_ops(spec))
    mags, errs = [np.asarray(mag0, dtype=float)], [np.asarray(e0, dtype=float)]
    for k, (ws, b) in enumerate(zip(spec.weights, spec.biases, strict=True), start=1):
        e_pre = linear_error(ws, b if bias else None, mags, errs, arith, inflate, spec.dims[k])
        res = step(k, e_pre)
        if res is None:
            return None
        mags.append(res[0])
        errs.append(res[1])
    e_out = linear_error(spec.readout, None, mags, errs, arith, inflate, spec.output_dim)
    return mags, errs, e_out


# ---------------------------------------------------------------------------- a point in float64
@dataclass(frozen=True)
class PointEvaluation:
    """``f̂(y)`` computed in float64 and a componentwise bound ``|f̂(y) − f(y)| ≤ error`` (None: no bound known, see ``reason``)."""

    output: np.ndarray
    error: np.ndarray | None
    reason: str | None


def _linear_value(weights: dict[int, np.ndarray], bias: np.ndarray | None, states: Sequence[np.ndarray], rows: int) -> np.ndarray:
    v = np.zeros(rows) if bias is None else np.array(bias, dtype=np.float64, copy=True)
    for j, w in weights.items():
        v += w @ states[j]
    return v


def evaluate_with_error(spec: NetworkSpec, y: Any) -> PointEvaluation:
    """The float64 output ``f̂(y)`` of ``spec`` at one input and a rigorous bound on its distance from the exact ``f(y)``.

    The evaluation is this function's own (``v = b + Σ W_kj z_j``, then the activation), so that the bound
    covers exactly the operations performed. ``error`` is None, with the reason, when an activation has no
    proved rounding bound (a user-defined one) or when the evaluation overflowed.
    """
    y = as_finite_array(y, "input y", shape=(spec.input_dim,))
    states: list[np.ndarray] = [y]
    inflate = _Inflation(_ops(spec))
    why: list[str] = []

    def step(k: int, e_pre: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        act = spec.activations[k - 1]
        with np.errstate(over="ignore", invalid="ignore"):
            p = _linear_value(spec.weights[k - 1], spec.biases[k - 1], states, spec.dims[k])
            z = np.asarray(act(p), dtype=np.float64)
        states.append(z)
        e = activation_error(act, e_pre, np.abs(p), np.abs(p), FLOAT64, inflate)
        if e is None:
            why.append(f"layer {k}: activation {act.name} is user-defined: no rounding bound for its evaluation is known")
            return None
        return np.abs(z), e

    res = error_recursion(spec, FLOAT64, np.abs(y), np.zeros_like(y), step)
    if res is None:
        with np.errstate(all="ignore"):
            return PointEvaluation(np.asarray(spec.evaluate(y), dtype=np.float64), None, why[0])
    with np.errstate(over="ignore", invalid="ignore"):
        out = _linear_value(spec.readout, None, states, spec.output_dim)
    if not (np.all(np.isfinite(out)) and all(np.all(np.isfinite(z)) for z in states) and np.all(np.isfinite(res[2]))):
        return PointEvaluation(out, None, "the float64 evaluation (or its error bound) overflowed at this input")
    return PointEvaluation(out, res[2], None)


def pattern_product_with_error(spec: NetworkSpec, pattern: Sequence[np.ndarray], v: Any) -> tuple[np.ndarray, np.ndarray]:
    """``J(D) v`` computed in float64 by the forward pass ``t_k = D_k Σ_j W_kj t_j`` and a bound on its error.

    The product ``fl(D_k p̂)`` adds ``u|D_k p̂| + η ≤ 2u|t̂_k| + η`` to ``|D_k| e_pre``. Returns ``(J(D) v computed, error)``.
    """
    t: list[np.ndarray] = [np.asarray(v, dtype=np.float64)]
    inflate = _Inflation(_ops(spec))

    def step(k: int, e_pre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = np.asarray(pattern[k - 1], dtype=np.float64)
        t.append(d * _linear_value(spec.weights[k - 1], None, t, spec.dims[k]))
        return np.abs(t[-1]), inflate(np.abs(d) * (e_pre + _TINY64) + 2.0 * _U64 * np.abs(t[-1]))

    res = error_recursion(spec, FLOAT64, np.abs(t[0]), np.zeros_like(t[0]), step, bias=False)
    assert res is not None  # the step always returns a bound
    return _linear_value(spec.readout, None, t, spec.output_dim), res[2]


def pattern_gain_lower(spec: NetworkSpec, pattern: Sequence[np.ndarray], v: Any) -> float:
    """A rigorous lower bound on ``‖J(D) v‖₂ / ‖v‖₂`` (exact arithmetic on the float64 data): the computed
    ``J(D) v`` less its error bound (:func:`pattern_product_with_error`), over ``‖v‖`` rounded up; 0 if swamped.
    The body that :func:`unfoldtheory.lipschitz.agnostic.certified_gain` needs."""
    out, err = pattern_product_with_error(spec, pattern, v)
    lo, _ = norm_bounds(out)
    _, e = norm_bounds(err)
    _, vn = norm_bounds(v)
    num = float(_down(lo - e))
    if not (num > 0.0 and vn > 0.0 and math.isfinite(e)):
        return 0.0
    return float(_down(num / vn))


# ---------------------------------------------------------------------------- vector norms, rounded
def _scaled(x: np.ndarray) -> tuple[np.ndarray, int]:
    amax = float(np.max(np.abs(x))) if x.size else 0.0
    if amax == 0.0 or not math.isfinite(amax):
        return x, 0
    _, e = math.frexp(amax)
    return np.ldexp(x, -e), e


def norm_bounds(x: Any) -> tuple[float, float]:
    """Rigorous ``(lower, upper)`` bounds on ``‖x‖₂`` of a float64 vector: scaled by a power of two (exact) so that
    no square under- or overflows harmfully, the sum of ``n`` squares within ``γ_{n}``, the root within ``u``, the
    ``n`` possibly underflowing squares within ``nη`` absolute (below ``2^-1000`` of the scaled sum ``≥ ¼``)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if not np.all(np.isfinite(x)):
        return 0.0, math.inf
    if not np.any(x):
        return 0.0, 0.0
    s, e = _scaled(x)
    n = x.size
    total = float(np.dot(s, s))
    rel = _gamma(n + 4, _U64) + 2.0 ** -1000
    lo = float(_down(math.sqrt(total) * (1.0 - rel)))
    hi = float(_up(math.sqrt(total) * (1.0 + rel)))
    return float(_down(math.ldexp(lo, e))), float(_up(math.ldexp(hi, e)))


# ---------------------------------------------------------------------------- the witness ratio
@dataclass(frozen=True)
class CertifiedRatio:
    """A rigorous lower bound on ``‖f(y₂) − f(y₁)‖ / ‖y₂ − y₁‖`` (exact arithmetic on the float64 data).

    ``value`` is that bound (0 when nothing could be certified), ``float_ratio`` the plain float64 ratio,
    ``difference`` a lower bound on ``‖f̂(y₂) − f̂(y₁)‖``, ``error`` an upper bound on what rounding may move it,
    ``gap`` an upper bound on ``‖y₂ − y₁‖``, ``reason`` why the value is not certified (None when it is).
    """

    value: float
    float_ratio: float
    difference: float
    error: float
    gap: float
    reason: str | None

    @property
    def certified(self) -> bool:
        return self.reason is None

    def summary(self) -> dict[str, Any]:
        return {"float_ratio": self.float_ratio, "difference_lower": self.difference, "rounding_upper": self.error,
                "gap_upper": self.gap, "reason": self.reason}


def certified_ratio(spec: NetworkSpec, y1: Any, y2: Any) -> CertifiedRatio:
    """``(‖fl(f̂(y₂) − f̂(y₁))‖↓ − ‖e₁ + e₂ + 2u|d̂|‖↑) / ‖y₂ − y₁‖↑``, clipped at 0 and rounded down.

    ``e₁, e₂`` bound ``|f̂(y_i) − f(y_i)|`` (:func:`evaluate_with_error`); ``fl(a − b) = (a − b)(1 + δ)`` adds at
    most ``u|a − b| ≤ 2u|d̂|``; ``‖y₂ − y₁‖ ≤ ‖fl(y₂ − y₁)‖/(1 − u)``. The value is certified unless an
    evaluation has no bound (user activation, overflow), or the rounding bound swamps a nonzero difference
    (float64 cannot resolve the ratio at this pair: the value is then 0, valid but not informative).
    """
    y1 = as_finite_array(y1, "y1", shape=(spec.input_dim,))
    y2 = as_finite_array(y2, "y2", shape=(spec.input_dim,))
    with np.errstate(over="ignore", invalid="ignore"):
        delta = y2 - y1
    _, gap_hi = norm_bounds(delta)
    if gap_hi == 0.0:
        raise ValueError("the witness inputs y1 and y2 coincide")
    gap = float(_up(gap_hi / (1.0 - _U64)))
    a, b = evaluate_with_error(spec, y1), evaluate_with_error(spec, y2)
    with np.errstate(over="ignore", invalid="ignore"):
        d = b.output - a.output
        plain = float(np.linalg.norm(d) / np.linalg.norm(delta))
    if a.error is None or b.error is None:
        return CertifiedRatio(0.0, plain, 0.0, math.inf, gap, a.reason or b.reason)
    inflate = _Inflation(8)
    _, err_hi = norm_bounds(inflate(a.error + b.error + 2.0 * _U64 * np.abs(d)))
    diff_lo, _ = norm_bounds(d)
    num = float(_down(diff_lo - err_hi))
    if not math.isfinite(err_hi) or not math.isfinite(gap):
        return CertifiedRatio(0.0, plain, diff_lo, err_hi, gap, "the rounding bound or the gap overflowed")
    if num <= 0.0:
        reason = None if diff_lo == 0.0 and err_hi == 0.0 else (
            f"float64 cannot resolve the ratio at this pair: the output difference {diff_lo:.3g} is within its "
            f"rounding bound {err_hi:.3g}")
        return CertifiedRatio(0.0, plain, diff_lo, err_hi, gap, reason if diff_lo > 0.0 else None)
    return CertifiedRatio(float(max(_down(num / gap), 0.0)), plain, diff_lo, err_hi, gap, None)


# ---------------------------------------------------------------------------- float32 over a box
QUANTITY_FLOAT32 = "max over the input box of ||f32(y) - f(y)||_2 (float32 forward pass vs the float64 spec, exact)"
METHOD_FLOAT32 = "running-error analysis (outward-rounded interval states, float32 unit roundoff 2^-24)"


def _interval_layer(ws: dict[int, np.ndarray], b: np.ndarray | None, lo: Sequence[np.ndarray], hi: Sequence[np.ndarray],
                    rows: int, inflate: _Inflation) -> tuple[np.ndarray, np.ndarray]:
    """An outward-rounded enclosure of ``Σ W z_j + b`` over the boxes ``z_j ∈ [lo_j, hi_j]`` (midpoint–radius form:
    the midpoint product is within ``γ_n(Σ|W||mid| + |b|)`` of its exact value)."""
    n = sum(w.shape[1] for w in ws.values()) + 1
    g = _gamma(n, _U64)
    with np.errstate(over="ignore", invalid="ignore"):
        centre = np.zeros(rows) if b is None else np.array(b, dtype=np.float64, copy=True)
        spread = np.zeros(rows) if b is None else np.abs(b)
        radius = np.zeros(rows)
        for j, w in ws.items():
            mid = 0.5 * lo[j] + 0.5 * hi[j]
            rad = _up(np.maximum(hi[j] - mid, mid - lo[j]))
            centre += w @ mid
            spread += np.abs(w) @ np.abs(mid)
            radius += np.abs(w) @ rad
        r = inflate(radius + g * spread + n * _ETA64)
        return _down(_down(centre) - r), _up(_up(centre) + r)


def _partial_sum_limit(weights: dict[int, np.ndarray], arith: Arithmetic) -> float:
    """Every partial sum of ``Σ Ŵ ẑ + b̂`` is at most ``Σ|Ŵ||ẑ| + |b̂| ≤ e_pre/γ_n``; below ``γ_n·max/4`` none overflows."""
    return arith.gamma(sum(w.shape[1] for w in weights.values()) + 1) * arith.largest / 4


def _activation_interval(act: Activation, lo: np.ndarray, hi: np.ndarray, inflate: _Inflation) -> tuple[np.ndarray, np.ndarray]:
    """An enclosure of ``φ(p)`` for ``p ∈ [lo, hi]`` (exact φ): the built-in separable ones are nondecreasing per
    coordinate, their float64 evaluation at the ends off by at most ``u|p|``; group soft-thresholding keeps signs
    and shrinks magnitudes."""
    if isinstance(act, GroupSoftThreshold):
        return np.minimum(lo, 0.0), np.maximum(hi, 0.0)
    slack = inflate(_U64 * np.maximum(np.abs(lo), np.abs(hi)))
    return _down(np.asarray(act(lo)) - slack), _up(np.asarray(act(hi)) + slack)


def float32_deviation(spec: NetworkSpec, lower: Any, upper: Any) -> Bound:
    """A certified upper bound on ``max_{lower ≤ y ≤ upper} ‖f₃₂(y) − f(y)‖₂``.

    ``f`` is the spec in exact arithmetic on its float64 data; ``f₃₂`` is the spec's graph evaluated in IEEE
    float32 (:func:`evaluate_float32`): the input, weights, biases and activation parameters rounded to float32,
    every dot product in float32 in any order (with or without FMA, as BLAS and torch on the CPU do; not TF32 or
    bfloat16), then the activation in float32. The bound is the running error of :func:`error_recursion` with
    ``u = 2⁻²⁴``, the stored-weight terms ``|W − fl₃₂(W)|`` (zero for a spec exported from a float32 model) and
    the input rounding ``|fl₃₂(y) − y| ≤ u|y| + η``, taken over the box: the exact states are enclosed by
    outward-rounded interval propagation in float64, and ``|ẑ_k| ≤ max(|lo_k|, |hi_k|) + e_k``.

    Uncertified (value ``inf``, with the reason) when an activation is user-defined or a float32 value can
    overflow on the box.
    """
    t0 = time.perf_counter()
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"float32_deviation takes a NetworkSpec, got {type(spec).__name__}")
    lo0 = as_finite_array(lower, "lower", shape=(spec.input_dim,))
    hi0 = as_finite_array(upper, "upper", shape=(spec.input_dim,))
    if np.any(lo0 > hi0):
        i = int(np.argmax(lo0 > hi0))
        raise ValueError(f"lower[{i}] = {lo0[i]!r} exceeds upper[{i}] = {hi0[i]!r}")
    arith, inflate = FLOAT32, _Inflation(_ops(spec))
    lo, hi = [lo0], [hi0]
    top = np.maximum(np.abs(lo0), np.abs(hi0))
    e0 = inflate(arith.unit * top + arith.eta)
    why: list[str] = []
    layer_errors: list[float] = []

    def step(k: int, e_pre: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        act = spec.activations[k - 1]
        if not np.all(e_pre < _partial_sum_limit(spec.weights[k - 1], arith)):
            why.append(f"layer {k}: a float32 partial sum of the pre-activation can overflow on this box")
        plo, phi = _interval_layer(spec.weights[k - 1], spec.biases[k - 1], lo, hi, spec.dims[k], inflate)
        pre_mag = inflate(np.maximum(np.abs(plo), np.abs(phi)) + e_pre)
        pre_low = np.maximum(_down(np.where(plo > 0, plo, np.where(phi < 0, -phi, 0.0)) - e_pre), 0.0)
        e = activation_error(act, e_pre, pre_mag, pre_low, arith, inflate)
        if e is None:
            why.append(f"layer {k}: activation {act.name} is user-defined: no rounding bound for its evaluation is known")
            return None
        zlo, zhi = _activation_interval(act, plo, phi, inflate)
        lo.append(zlo)
        hi.append(zhi)
        mag = inflate(np.maximum(np.abs(zlo), np.abs(zhi)) + e)
        if not (np.all(pre_mag < arith.largest / 2) and np.all(mag < arith.largest / 2)):
            why.append(f"layer {k}: a float32 value can overflow on this box (magnitude bound {float(np.max(pre_mag)):.3g})")
        layer_errors.append(float(np.max(e, initial=0.0)))
        return mag, e

    res = error_recursion(spec, arith, inflate(top + e0), e0, step)
    if res is not None and not np.all(res[2] < _partial_sum_limit(spec.readout, arith)):
        why.append("the read-out can overflow in float32 on this box, or its error bound overflowed")
    if not np.all(top < arith.largest / 2):
        why.insert(0, "the input box exceeds the float32 range")
    details: dict[str, Any] = {"arithmetic": "IEEE float32, round to nearest; dot products in any order (FMA allowed)",
                               "unit_roundoff": arith.unit, "max_state_error_per_layer": layer_errors,
                               "statement": "covers the float32 forward pass of the spec's graph; a model whose own "
                                            "forward pass groups operations differently is covered where each of its "
                                            "dot products sums the same terms"}
    if why or res is None:
        return Bound(math.inf, "upper", QUANTITY_FLOAT32, METHOD_FLOAT32, certified=False,
                     seconds=time.perf_counter() - t0, details={**details, "reason": why[0]}, reason=why[0])
    _, value = norm_bounds(res[2])
    return Bound(value, "upper", QUANTITY_FLOAT32, METHOD_FLOAT32, certified=True,
                 certificate={"output_error": res[2]}, seconds=time.perf_counter() - t0, details=details)


def evaluate_float32(spec: NetworkSpec, Y: Any) -> np.ndarray:
    """The spec's graph evaluated in float32 (what :func:`float32_deviation` bounds), inputs (batch, m) or (m,).

    Built-in activations only (soft-thresholding as ``sign(v)·max(|v| − θ, 0)``, as the torch models do).
    """
    Y = np.asarray(as_finite_array(Y, "input Y", ndim=(1, 2)), dtype=np.float32)
    single = Y.ndim == 1
    states = [Y[None, :] if single else Y]
    f32 = np.float32
    for ws, b, act in zip(spec.weights, spec.biases, spec.activations, strict=True):
        v = np.broadcast_to(b.astype(f32), (states[0].shape[0], b.shape[0])).copy()
        for j, w in ws.items():
            v += states[j] @ w.astype(f32).T
        states.append(_float32_activation(act, v))
    out = sum(states[k] @ c.astype(f32).T for k, c in spec.readout.items())
    return out[0] if single else out


def _float32_activation(act: Activation, v: np.ndarray) -> np.ndarray:
    f32 = np.float32
    if isinstance(act, Identity):
        return v.copy()
    if isinstance(act, ReLU):
        return np.maximum(v, f32(0))
    if isinstance(act, SoftThreshold):
        return np.sign(v) * np.maximum(np.abs(v) - act.theta.astype(f32), f32(0))
    if isinstance(act, BoxProjection):
        return np.clip(v, act.lower.astype(f32), act.upper.astype(f32))
    if isinstance(act, GroupSoftThreshold):
        out = np.zeros_like(v)
        theta = f32(act.theta)
        for g in act.groups:
            r = np.sqrt(np.sum(v[:, g] * v[:, g], axis=-1, keepdims=True))
            with np.errstate(divide="ignore", invalid="ignore"):
                out[:, g] = np.where(r > theta, f32(1) - theta / r, f32(0)) * v[:, g]
        return out
    raise TypeError(f"no float32 evaluation for activation {act.name}")


__all__ = ["FLOAT32", "FLOAT64", "Arithmetic", "CertifiedRatio", "PointEvaluation", "activation_error",
           "certified_ratio", "error_recursion", "evaluate_float32", "evaluate_with_error", "float32_deviation",
           "linear_error", "norm_bounds", "pattern_gain_lower", "pattern_product_with_error"]
