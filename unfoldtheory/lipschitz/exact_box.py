"""Rigorous enclosures of a branch-and-bound node's polyhedron and of every pre-activation over it (exact.py).

A node of :mod:`.exact` fixes the phases of its first neurons; its inputs form ``P = {y : g_i·y + g0_i ≤ e_i}``
whose rows ``[g_i | g0_i]`` (times the side ±1) are float64 approximations of the exact affine pre-activation maps.

* **Float maps with error bounds** (:func:`affine_preactivation`, :func:`affine_state`). The node's maps are
  computed in float64, and alongside them an entrywise bound ``E`` on ``|computed − exact|`` (exact arithmetic on the
  spec's float64 data): ``|fl(Σ_j W_j M_j + b) − (Σ_j W_j M*_j + b)| ≤ Σ_j |W_j| E_j + γ_n (Σ_j |W_j||M_j| + |b|)``
  with ``n = Σ_j d_j + 1`` terms (Higham, §3.5, any summation order), slopes 0/1 exact, ``+ offset`` one rounding
  (``≤ 2u|result|``), every bound rounded up (:func:`~unfoldtheory.rounding.inflate`).
* **Enclosing box** (:func:`enclosing_box`). For each direction ``d = ±e_j`` a float LP ``max d·y`` over
  ``P`` proposes multipliers ``μ ≥ 0``; for every ``y ∈ P`` (``proofs/exact_lipschitz.py``, claim 6)
  ``d·y ≤ β_d + ρ_d‖y‖_∞`` with ``β_d ≥ Σ μ_i t_i`` (``t_i ≥ e_i − ĝ0_i + E0_i``) and
  ``ρ_d ≥ ‖d − Σ μ_i ĝ_i‖₁ + ‖Σ μ_i E_i‖₁``, all rounded outward. Over the ``2m`` directions
  ``‖y‖_∞ ≤ B + ρ‖y‖_∞`` (``B = max β_d``, ``ρ = max ρ_d``), so ``ρ < 1`` gives ``‖y‖_∞ ≤ B/(1 − ρ)`` for every
  ``y ∈ P`` — a pointwise inequality, no a-priori bound on ``y`` is assumed — and each coordinate
  ``±y_j ≤ β_d + ρ_d·B/(1 − ρ)``. The LP is only a proposal: a wrong dual gives a loose or no box, never a wrong one.
* **Intervals** (:func:`node_intervals`). On that box, the rigorous interval and CROWN propagation of
  :mod:`.bound_propagation`, with every layer's bounds intersected with the fixed neurons' phase intervals. Every
  interval and relaxation it uses holds at every ``y ∈ P`` (the phase intervals hold on ``P``, the box contains
  ``P``), so the resulting bounds ``lower_k ≤ v_k(y) ≤ upper_k`` hold on ``P`` (claim 7).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from unfoldtheory.lipschitz.bound_propagation import _propagate
from unfoldtheory.lipschitz.norms import gamma_bound
from unfoldtheory.lipschitz.regions import Box
from unfoldtheory.rounding import inflate, up
from unfoldtheory.spec import NetworkSpec

_U = 2.0 ** -53
_ETA = 2.0 ** -1074  # ≥ the absolute error of an underflowing product


def _finite_or_inf(x: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), np.inf, x)


def affine_preactivation(spec: NetworkSpec, maps: tuple[np.ndarray, ...], errs: tuple[np.ndarray, ...],
                         k: int) -> tuple[np.ndarray, np.ndarray]:
    """Layer ``k``'s float pre-activation map ``[G | g]`` (``v_k = G y + g``) from the states' maps, and a rigorous
    entrywise bound on its distance to the exact map (module docstring)."""
    m = spec.input_dim
    pre = np.zeros((spec.dims[k], m + 1))
    mag = np.zeros_like(pre)
    prop = np.zeros_like(pre)
    with np.errstate(over="ignore", invalid="ignore"):
        for j, w in spec.weights[k - 1].items():
            pre += w @ maps[j]
            aw = np.abs(w)
            mag += aw @ np.abs(maps[j])
            prop += aw @ errs[j]
        pre[:, -1] += spec.biases[k - 1]
        mag[:, -1] += np.abs(spec.biases[k - 1])
        n = sum(spec.dims[j] for j in spec.weights[k - 1]) + 1
        err = inflate(_finite_or_inf(prop + gamma_bound(n) * mag + n * _ETA), 4 * n + 8)
    return pre, _finite_or_inf(err)


def affine_state(pre: np.ndarray, err: np.ndarray, slopes: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A layer's float state map ``slope·[G | g] + [0 | offset]`` (slopes 0 or 1: exact) and its error bound."""
    h = slopes[:, None] * pre
    h[:, -1] += offsets
    e = slopes[:, None] * err
    with np.errstate(over="ignore", invalid="ignore"):
        e[:, -1] = inflate(_finite_or_inf(e[:, -1] + 2.0 * _U * np.abs(h[:, -1])), 3)
    return h, _finite_or_inf(e)


def enclosing_box(A: np.ndarray, c: np.ndarray, G: np.ndarray, E: np.ndarray,
                  rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """A rigorous box containing ``P = {y : G*_i·[y; 1] ≤ rhs_i}`` for every exact ``G*`` with ``|G* − G| ≤ E``
    (module docstring), or None when the float LPs find ``P`` unbounded or the verification fails. ``A``, ``c``:
    the float rows of ``P`` for the LPs (any scaling: they only propose multipliers)."""
    r, m = A.shape
    if r <= m or not (np.all(np.isfinite(A)) and np.all(np.isfinite(c)) and np.all(np.isfinite(G))
                      and np.all(np.isfinite(E))):
        return None
    M, g0, Em, e0 = G[:, :m], G[:, m], E[:, :m], E[:, m]
    t = up(up(rhs - g0) + e0)  # ≥ rhs_i − g0*_i for every exact g0*
    norms = np.linalg.norm(M, axis=1)
    norms = np.where(norms > 0, norms, 1.0)
    absM, abst = np.abs(M), np.abs(t)
    beta, rho = np.empty(2 * m), np.empty(2 * m)
    for q in range(2 * m):
        d = np.zeros(m)
        d[q % m] = 1.0 if q < m else -1.0
        res = linprog(-d, A_ub=A, b_ub=c, bounds=[(None, None)] * m, method="highs")
        marg = getattr(getattr(res, "ineqlin", None), "marginals", None)
        if res.status != 0 or marg is None:
            return None
        mu = np.maximum(-np.asarray(marg, dtype=float), 0.0) / norms
        with np.errstate(over="ignore", invalid="ignore"):
            s = float(mu @ t)
            beta[q] = up(s + float(inflate(gamma_bound(r + 1) * float(mu @ abst) + (r + 1) * _ETA, 2 * r + 8)))
            residual = np.abs(d - M.T @ mu) + gamma_bound(r + 2) * (np.abs(d) + absM.T @ mu) + (r + 2) * _ETA
            rho[q] = float(inflate(float(np.sum(residual + Em.T @ mu)), 2 * (r + m) + 16))
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(rho))):
        return None
    R = float(np.max(rho))
    if not R < 0.5:
        return None
    B = max(float(np.max(beta)), 0.0)
    Y = float(up(B / float(np.nextafter(1.0 - R, 0.0))))  # 1 − R rounded down, the quotient up
    reach = up(beta + up(rho * Y))
    hi, lo = reach[:m], -reach[m:]
    if not (np.all(np.isfinite(hi)) and np.all(np.isfinite(lo))) or np.any(lo > hi):
        return None
    return lo, hi


def node_intervals(spec: NetworkSpec, box: tuple[np.ndarray, np.ndarray], lower: list[np.ndarray],
                   upper: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Bounds on every pre-activation over a polyhedron ``P`` inside ``box`` on which ``lower ≤ v ≤ upper`` already
    holds (the fixed neurons' phase intervals, ±inf elsewhere): interval then CROWN propagation over the box with
    every layer intersected with those bounds (module docstring). The result is at least as tight as ``lower,
    upper``; it may cross (``lo > hi``) only if ``P`` is empty."""
    region = Box(*box)
    plain = _propagate(spec, region, (lower, upper), None)[:2]
    lo, hi, _ = _propagate(spec, region, plain, "crown")
    return [np.maximum(a, b) for a, b in zip(lo, lower, strict=True)], [np.minimum(a, b) for a, b in zip(hi, upper, strict=True)]


__all__ = ["affine_preactivation", "affine_state", "enclosing_box", "node_intervals"]
