"""Measured per-layer errors and fitted linear rates, the empirical side of every rate certificate.

* :func:`layer_iterates`: the iterates ``x_1, …, x_K`` of a model (``forward(y, return_iterates=True)``)
  or of classical ISTA/FISTA, as one (K, batch, n) float64 array.
* :func:`error_trace`: ``‖x_k − x_true‖₂`` (ground truth) and ``‖x_k − x_ref‖₂`` (the Lasso solution
  from :func:`unfoldtheory.reference.lasso`, certified by its duality gap) per layer and instance.
* :func:`fit_linear_rate`: the rate ρ of ``err_k ≈ C·ρᵏ``: least squares of the mean log error on the
  layer index, with a Student-t interval for the slope, or a percentile bootstrap over instances
  (instances are independent; the layers of one instance are not, so the bootstrap is the honest
  interval for many instances). Returns a :class:`Bound` of kind ``"estimate"``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from unfoldtheory.reference import LassoSolution, lasso
from unfoldtheory.results import Bound
from unfoldtheory.validation import as_finite_array, finite_float, positive_int


def layer_iterates(solver: Any, Y: Any, *, A: Any = None, lam: float | None = None, layers: int | None = None) -> np.ndarray:
    """``x_1, …, x_K`` for every row of ``Y``: shape (K, batch, n).

    ``solver`` is a model with ``forward(y, return_iterates=True)`` (any unfolded model), or ``"ista"`` /
    ``"fista"`` (then ``A``, ``lam`` and ``layers`` are required; step ``1/‖A‖₂²``).
    """
    Y = as_finite_array(Y, "Y", ndim=2)
    if isinstance(solver, str):
        from unfoldtheory.classical import fista, ista

        algorithms = {"ista": ista, "fista": fista}
        if solver not in algorithms:
            raise ValueError(f"solver {solver!r} is not known; pass a model or one of {sorted(algorithms)}")
        if A is None or lam is None or layers is None:
            raise ValueError(f"solver {solver!r} needs A, lam and layers")
        return algorithms[solver](A, Y, lam, positive_int(layers, "layers"))[1:]
    if not callable(getattr(solver, "forward", None)):
        raise ValueError("solver must be a model with forward(y, return_iterates=True) or 'ista'/'fista'; "
                         f"got {type(solver).__name__}")
    import torch

    with torch.no_grad():
        its = solver(Y, return_iterates=True)
    return np.stack([x.detach().cpu().to(torch.float64).numpy() for x in its])


@dataclass(frozen=True, eq=False)
class ErrorTrace:
    """Per-layer errors of one solver on sampled problems.

    Attributes
    ----------
    name: the solver's label.
    to_truth: (K, batch) ``‖x_k − x_true‖₂``, layer k = 1..K in row k − 1.
    to_reference: (K, batch) ``‖x_k − x_ref‖₂`` to the Lasso solutions (NaN without a reference).
    reference: the Lasso solutions used (None when given as an array or not computed).
    """

    name: str
    to_truth: np.ndarray
    to_reference: np.ndarray
    reference: LassoSolution | None = None

    @property
    def layers(self) -> np.ndarray:
        return np.arange(1, self.to_truth.shape[0] + 1)

    def summary(self, target: Literal["truth", "reference"] = "truth") -> dict[str, np.ndarray]:
        """Median, maximum and quartiles over instances, per layer."""
        E = self.errors(target)
        return {"median": np.median(E, axis=1), "max": E.max(axis=1), "q25": np.quantile(E, 0.25, axis=1),
                "q75": np.quantile(E, 0.75, axis=1)}

    def __repr__(self) -> str:
        K, batch = self.to_truth.shape
        parts = [f"ErrorTrace({self.name!r}, layers={K}, instances={batch}",
                 f"final median to truth={_median(self.to_truth[-1]):.4g}"]
        if not np.all(np.isnan(self.to_reference)):
            parts.append(f"final median to reference={_median(self.to_reference[-1]):.4g}")
        if self.reference is not None:
            optimal = sum(1 for s in self.reference.status if s == "optimal")
            parts.append(f"reference={self.reference.method!r} ({optimal}/{len(self.reference.status)} optimal)")
        else:
            parts.append("reference=None")
        return ", ".join(parts) + ")"

    def errors(self, target: Literal["truth", "reference"] = "truth") -> np.ndarray:
        """The (K, batch) errors to the ground truth or to the reference solutions."""
        if target not in ("truth", "reference"):
            raise ValueError(f"target {target!r} is not known; choose 'truth' or 'reference'")
        return self.to_truth if target == "truth" else self.to_reference


def _median(values: np.ndarray) -> float:
    """The median of the finite entries (NaN when there are none)."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def error_trace(solver: Any, Y: Any, X: Any, *, A: Any = None, lam: float | None = None, layers: int | None = None,
                reference: Literal["certified", "cvxpy", "none"] | LassoSolution | np.ndarray = "certified",
                name: str | None = None, progress: bool | None = None) -> ErrorTrace:
    """Errors of ``solver`` (see :func:`layer_iterates`) against the truth ``X`` and the Lasso solutions.

    ``reference`` is a method of :func:`unfoldtheory.reference.lasso` (``"certified"`` or ``"cvxpy"``;
    these need ``A`` and ``lam``, taken from the model when it has them), precomputed solutions (a
    :class:`LassoSolution` or a (batch, n) array), or ``"none"``.
    """
    Y = as_finite_array(Y, "Y", ndim=2)
    X = as_finite_array(X, "X", shape=(Y.shape[0], None))
    if A is None and hasattr(solver, "A_numpy"):
        A = solver.A_numpy()
    if lam is None and hasattr(solver, "lam"):
        lam = solver.lam
    its = layer_iterates(solver, Y, A=A, lam=lam, layers=layers)
    if its.shape[2] != X.shape[1]:
        raise ValueError(f"X has {X.shape[1]} columns; the solver's iterates have n = {its.shape[2]}")
    solution = None
    if isinstance(reference, LassoSolution):
        solution, X_ref = reference, reference.x
    elif isinstance(reference, str):
        if reference == "none":
            X_ref = np.full_like(X, np.nan)
        elif A is None or lam is None:
            raise ValueError(f"reference {reference!r} needs A and lam")
        else:
            solution = lasso(A, Y, lam, method=reference, progress=progress)
            X_ref = solution.x
    else:
        X_ref = as_finite_array(reference, "reference", shape=X.shape)
    if X_ref.shape != X.shape:
        raise ValueError(f"reference solutions have shape {X_ref.shape}; expected {X.shape}")
    label = name or (solver if isinstance(solver, str) else type(solver).__name__)
    return ErrorTrace(label, np.linalg.norm(its - X, axis=2), np.linalg.norm(its - X_ref, axis=2), solution)


def fit_linear_rate(errors: Any, *, start: int = 1, stop: int | None = None, level: float = 0.95,
                    method: Literal["t", "bootstrap"] = "t", resamples: int = 2000, seed: int = 0) -> Bound:
    """The per-layer linear rate ρ with ``err_k ≈ C·ρᵏ`` over layers ``start..stop`` (1-based, inclusive).

    ``errors`` is (K,) for one instance or (K, batch). The fit is ordinary least squares of
    ``ȳ_k = mean_i log err_{k,i}`` on k; ``value = exp(slope)``. The interval (``details["ci"]``) is
    ``exp(slope ± t_{level, K'−2}·se)`` for ``method="t"``, or the percentile interval of the slope
    refitted on instances drawn with replacement for ``"bootstrap"``.

    **Zero errors** (a zero has no logarithm): instances that are zero on every fitted layer are dropped
    (``details["dropped_instances"]``; sampled data contain them, e.g. a signal ``x = 0``); if a remaining
    instance reaches zero at layer j, the default ``stop`` ends the fit at j − 1 (``details["truncation"]``)
    and an explicit ``stop ≥ j`` is refused, naming ``stop = j − 1``.
    """
    from scipy import stats

    t0 = time.perf_counter()
    E = as_finite_array(errors, "errors", ndim=(1, 2))
    E = E[:, None] if E.ndim == 1 else E
    K = E.shape[0]
    start = positive_int(start, "start")
    explicit_stop = stop is not None
    stop = K if stop is None else positive_int(stop, "stop")
    if not start <= stop <= K:
        raise ValueError(f"need 1 <= start <= stop <= K = {K}; got start={start}, stop={stop}")
    level = finite_float(level, "level", low=0.0, high=1.0, low_open=True, high_open=True)
    if stop - start + 1 < 3:
        raise ValueError(f"a rate with an interval needs at least 3 layers; got {stop - start + 1} (start={start}, stop={stop})")
    window, details = _positive_window(E, start, stop, explicit_stop)
    stop = details["layers"][1]
    k = np.arange(start, stop + 1, dtype=float)
    logs = np.log(window)
    slope, intercept, resid = _ols(k, logs.mean(axis=1))
    details.update(slope=slope, intercept=intercept, level=level, method=method)
    if method == "t":
        dof = k.size - 2
        se = math.sqrt(resid / dof / float(((k - k.mean()) ** 2).sum()))
        half = float(stats.t.ppf(0.5 + level / 2, dof)) * se
        details.update(stderr=se, dof=dof, ci=(math.exp(slope - half), math.exp(slope + half)))
        label = "least squares of log error on layer, t-interval"
    elif method == "bootstrap":
        count = window.shape[1]
        if count < 2:
            raise ValueError(f"a bootstrap over instances needs at least 2 instances; {count} remain on the window")
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, count, (positive_int(resamples, "resamples"), count))
        means = logs[:, idx].mean(axis=2)  # (layers, resamples)
        kc = k - k.mean()
        slopes = kc @ (means - means.mean(axis=0)) / (kc @ kc)
        lo, hi = np.quantile(slopes, [0.5 - level / 2, 0.5 + level / 2])
        details.update(resamples=int(resamples), seed=seed, ci=(math.exp(lo), math.exp(hi)))
        label = "least squares of log error on layer, bootstrap over instances"
    else:
        raise ValueError(f"method {method!r} is not known; choose 't' or 'bootstrap'")
    return Bound(math.exp(slope), "estimate", "per-layer linear rate ρ of the error (err_k ≈ C·ρ^k)", label,
                 seconds=time.perf_counter() - t0, details=details)


def _positive_window(E: np.ndarray, start: int, stop: int, explicit_stop: bool) -> tuple[np.ndarray, dict[str, Any]]:
    """The errors of layers ``start..stop`` that have a logarithm, and what was left out.

    Instances whose error is zero on every fitted layer (e.g. a sampled signal ``x = 0`` that the
    network recovers exactly) carry no rate and are dropped (``details["dropped_instances"]``). If a
    remaining instance reaches zero error at layer j, the rate there is not linear (the error is exactly
    0): with the default ``stop`` the fit ends at layer j − 1; an explicit ``stop`` ≥ j is refused with
    a valid one named."""
    window = E[start - 1:stop]
    if np.any(window < 0):
        layer, inst = (int(i) for i in np.argwhere(window < 0)[0])
        raise ValueError(f"errors must be >= 0 (they are norms); layer {start + layer}, instance {inst} has "
                         f"{window[layer, inst]:.3g}")
    zero = np.all(window == 0, axis=0)
    dropped = int(zero.sum())
    if dropped == window.shape[1]:
        raise ValueError(f"every instance has zero error on layers {start}..{stop}: exact recovery has no linear rate")
    window = window[:, ~zero]
    details: dict[str, Any] = {"layers": (start, stop), "instances": int(window.shape[1]), "dropped_instances": dropped}
    hits = np.flatnonzero(np.any(window == 0, axis=1))
    if hits.size:
        first = start + int(hits[0])  # the first layer where a remaining instance has error exactly 0
        valid = first - 1
        if valid - start + 1 < 3:
            raise ValueError(f"layer {first} has a zero error (exact convergence) in an instance that is not zero on every "
                             f"layer, and fewer than 3 layers {start}..{first - 1} precede it: no rate can be fitted from "
                             f"start={start} (choose an earlier start or leave that instance out)")
        if explicit_stop:
            raise ValueError(f"layer {first} has a zero error (exact convergence) in an instance that is not zero on every "
                             f"layer; fit layers before it (stop={valid}), or leave stop unset to do so automatically")
        window = window[: valid - start + 1]
        details.update(layers=(start, valid), truncated_at=first,
                       truncation=f"layer {first} has a zero error (exact convergence); fitted layers {start}..{valid}")
    return window, details


def _ols(k: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Slope, intercept and residual sum of squares of the least-squares line through (k, y)."""
    kc = k - k.mean()
    slope = float(kc @ (y - y.mean()) / (kc @ kc))
    intercept = float(y.mean() - slope * k.mean())
    resid = float(((y - intercept - slope * k) ** 2).sum())
    return slope, intercept, resid
