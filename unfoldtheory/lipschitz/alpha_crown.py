"""Optimised relaxation slopes (α-CROWN) for the back-substitution of :mod:`.linear_relaxation`: a float guide.

For target rows ``±v_k`` the CROWN bound is a function of the slopes of the free lines of the layers before
(:class:`~.linear_relaxation.SlopeFamily`), with one slope per row, neuron and side (Xu et al., *Fast and Complete:
Enabling Complete Neural Network Verification with Rapid and Massively Parallel Incomplete Verifiers*, ICLR 2021).
:class:`SlopeGuide` evaluates that bound in plain float arithmetic together with an ascent direction (a reverse pass
through the same graph: with ``g_S`` the gradient on the coefficients ``S = Λ·a`` of the next states, the bound moves
by ``Λ(g_S − t)`` per unit of slope, ``t`` the breakpoint that fixes the intercept ``c(a) = min_t φ(t) − a t``, taken
on the side of the move where breakpoints tie) and climbs it by projected Adam steps, keeping per row the best slopes
met. It only *chooses* slopes: the bound that is used is recomputed rigorously by
:meth:`~.linear_relaxation.Backsubstitution.layer_bounds` with these slopes and intercepts made sound by directed
rounding, so nothing here needs to be exact.
"""

from __future__ import annotations

import numpy as np

from unfoldtheory.lipschitz.linear_relaxation import Relaxation, SlopeFamily
from unfoldtheory.lipschitz.regions import Ball, Box, Region
from unfoldtheory.spec import NetworkSpec

#: Projected Adam steps per target layer, and their step size on slopes in [0, 1].
ITERATIONS = 3
STEP = 0.5
#: Only neurons whose interval must shrink by at most this fraction of its width to lie in one piece are optimised
#: (:func:`~.linear_relaxation.shrink_to_stable`): on the report's nets they give almost all of the gain in stable
#: neurons at a fraction of the time (measured for 3 iterations: 0.5 keeps it within 1 %, 0.25 loses a quarter).
NEAR = 0.5
_B1, _B2 = 0.9, 0.999


class _Free:
    """The free columns ``F`` of one layer's :class:`SlopeFamily` and, on them, the breakpoints of both sides."""

    def __init__(self, family: SlopeFamily) -> None:
        self.family = family
        self.cols = np.flatnonzero(family.free_l | family.free_u)
        self.free = (family.free_l[self.cols], family.free_u[self.cols])
        self.T = (family.lower.T[:, self.cols], family.upper.T[:, self.cols])
        self.phi = (family.lower.phi[:, self.cols], family.upper.phi[:, self.cols])
        base = family.base
        self.base_a = (base.a_l, base.a_u)
        self.base_c = (np.where(np.isfinite(base.c_l), base.c_l, 0.0), np.where(np.isfinite(base.c_u), base.c_u, 0.0))
        self.has = (np.isfinite(base.c_l), np.isfinite(base.c_u))

    def intercepts(self, side: int, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(c, t₋, t₊)`` on the free columns for slopes ``a`` (rows, |F|): ``c = min_t φ(t) − a t`` (``side`` 0, the
        lower line; ``max`` for 1), and the smallest and largest breakpoints attaining it to a relative 1e-12."""
        T, phi = self.T[side], self.phi[side]
        gaps = [phi[i] - a * T[i] for i in range(T.shape[0])]
        extreme = np.minimum if side == 0 else np.maximum
        c = gaps[0].copy()
        for g in gaps[1:]:
            extreme(c, g, out=c)
        tol = 1e-12 * (np.abs(c) + 1.0)
        t_lo, t_hi = np.full(c.shape, np.inf), np.full(c.shape, -np.inf)
        for i, g in enumerate(gaps):
            tie = np.abs(g - c) <= tol + 1e-12 * np.abs(T[i])
            t_lo = np.where(tie, np.minimum(t_lo, T[i]), t_lo)
            t_hi = np.where(tie, np.maximum(t_hi, T[i]), t_hi)
        return c, t_lo, t_hi

    def full(self, side: int, rows: int, values: np.ndarray, base: np.ndarray) -> np.ndarray:
        """(rows, d): ``base`` per neuron, with ``values`` on the free columns of ``side``."""
        out = np.broadcast_to(base, (rows, base.size)).copy()
        out[:, self.cols] = np.where(self.free[side], values, out[:, self.cols])
        return out


def _ascent(L: np.ndarray, gS: np.ndarray, t_right: np.ndarray, t_left: np.ndarray) -> np.ndarray:
    """An ascent direction of ``L(gS·a + c(a))`` in ``a`` (concave: ``c`` is a min where ``L > 0``, a max where
    ``L < 0``): the right derivative ``L(gS − t_right)`` where it is positive, the left one ``L(gS − t_left)`` where it is
    negative, else 0 (a maximum along ``a``)."""
    right, left = L * (gS - t_right), L * (gS - t_left)
    return np.where(right > 0, right, np.where(left < 0, left, 0.0))


class SlopeGuide:
    """Float evaluation and ascent of the CROWN bound of rows ``±v_k`` as a function of per-row slopes."""

    def __init__(self, spec: NetworkSpec, region: Region) -> None:
        self.spec = spec
        self.layers: dict[int, _Free] = {}
        if isinstance(region, Ball):
            self.center, self.radius, self.norm = np.asarray(region.center, dtype=float), region.radius, region.norm
        else:
            lo, hi = (region.lower, region.upper) if isinstance(region, Box) else region.enclosing_box()
            with np.errstate(over="ignore", invalid="ignore"):
                self.center, self.radius, self.norm = 0.5 * lo + 0.5 * hi, 0.5 * hi - 0.5 * lo, "box"

    def add_layer(self, k: int, family: SlopeFamily) -> None:
        self.layers[k] = _Free(family)

    def _concretise(self, A0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``min_y A0 y`` over the region per row, and its gradient in ``A0``."""
        if self.norm == 2:
            nrm = np.linalg.norm(A0, axis=1)
            safe = np.where(nrm > 0, nrm, 1.0)
            return A0 @ self.center - self.radius * nrm, self.center - self.radius * A0 / safe[:, None]
        rho = self.radius if self.norm == "box" else np.full(A0.shape[1], self.radius)
        return A0 @ self.center - np.abs(A0) @ rho, self.center - rho * np.sign(A0)

    def _bound(self, k: int, idx: np.ndarray, params: dict[int, list[np.ndarray]],
               grad: bool) -> tuple[np.ndarray, dict[int, list[np.ndarray]]]:
        """The float bound of the rows ``[v_k[idx]; −v_k[idx]]`` and, with ``grad``, ascent directions on the free
        slopes ``params[j] = [lower, upper]`` (rows, |F_j|)."""
        spec = self.spec
        A = {j: np.vstack([w[idx], -w[idx]]) for j, w in spec.weights[k - 1].items()}
        b = spec.biases[k - 1][idx]
        const = np.concatenate([b, -b])
        rows = const.size
        valid = np.ones(rows, dtype=bool)
        tape = []
        for j in range(k - 1, 0, -1):
            if j not in A:
                continue
            L = A.pop(j)
            lay = self.layers[j]
            pos, neg = L > 0, L < 0
            valid &= ~np.any((pos & ~lay.has[0]) | (neg & ~lay.has[1]), axis=1)
            a, c, ts = [], [], []
            for side in (0, 1):
                if j in params:
                    ci, t_lo, t_hi = lay.intercepts(side, params[j][side])
                    a.append(lay.full(side, rows, params[j][side], lay.base_a[side]))
                    c.append(lay.full(side, rows, ci, lay.base_c[side]))
                    ts.append((t_hi, t_lo) if side == 0 else (t_lo, t_hi))  # (right, left) derivative breakpoints
                else:
                    a.append(lay.base_a[side])
                    c.append(lay.base_c[side])
            S = np.where(pos, L * a[0], L * a[1])
            const = const + np.sum(np.where(pos, L * c[0], L * c[1]), axis=1) + S @ spec.biases[j - 1]
            for i, w in spec.weights[j - 1].items():
                A[i] = A[i] + S @ w if i in A else S @ w
            tape.append((j, L, pos, a, c, ts))
        A0 = A.pop(0, np.zeros((rows, spec.input_dim)))
        value, g0 = self._concretise(A0)
        value = np.where(valid & np.isfinite(value), value + const, -np.inf)
        grads: dict[int, list[np.ndarray]] = {}
        if grad:
            G = {0: g0}
            for j, L, pos, a, c, ts in reversed(tape):
                gS = np.broadcast_to(spec.biases[j - 1], L.shape).copy()
                for i, w in spec.weights[j - 1].items():
                    gS += G[i] @ w.T
                G[j] = np.where(pos, gS * a[0] + c[0], gS * a[1] + c[1])
                if j in params:
                    lay = self.layers[j]
                    LF, gF, pF = L[:, lay.cols], gS[:, lay.cols], pos[:, lay.cols]
                    grads[j] = [np.where(pF & lay.free[0], _ascent(LF, gF, *ts[0]), 0.0),
                                np.where(~pF & lay.free[1], _ascent(LF, gF, *ts[1]), 0.0)]
        return value, grads

    def optimise(self, k: int, idx: np.ndarray, iterations: int | None = None,
                 step: float | None = None) -> dict[int, Relaxation] | None:
        """Per-row lines for the rows ``[v_k[idx]; −v_k[idx]]``: from CROWN's slopes, ``iterations`` (default
        :data:`ITERATIONS`) projected Adam steps of size ``step`` (default :data:`STEP`) on the float bound, the best slopes
        per row; returned as the rigorous :meth:`SlopeFamily.lines`. None when no layer before ``k`` has a free slope."""
        iterations = ITERATIONS if iterations is None else iterations
        step = STEP if step is None else step
        rows = 2 * idx.size
        params = {j: [np.broadcast_to(lay.base_a[s][lay.cols], (rows, lay.cols.size)).copy() for s in (0, 1)]
                  for j, lay in self.layers.items() if j < k and lay.cols.size}
        if not params:
            return None
        best = {j: [p.copy() for p in ps] for j, ps in params.items()}
        moments = {j: [[np.zeros_like(p), np.zeros_like(p)] for p in ps] for j, ps in params.items()}
        top = np.full(rows, -np.inf)
        with np.errstate(all="ignore"):
            for it in range(iterations + 1):
                value, grads = self._bound(k, idx, params, grad=it < iterations)
                better = value > top
                top = np.where(better, value, top)
                for j, ps in params.items():
                    for s, p in enumerate(ps):
                        best[j][s][better] = p[better]
                        if it == iterations:
                            continue
                        g = np.where(np.isfinite(grads[j][s]), grads[j][s], 0.0)
                        m, v = moments[j][s]
                        m *= _B1
                        m += (1 - _B1) * g
                        v *= _B2
                        v += (1 - _B2) * g * g
                        move = step * (m / (1 - _B1 ** (it + 1))) / (np.sqrt(v / (1 - _B2 ** (it + 1))) + 1e-12)
                        np.clip(p + move, 0.0, 1.0, out=p)
        lines = {}
        for j, ps in best.items():
            lay = self.layers[j]
            fam = lay.family
            lines[j] = fam.lines(lay.full(0, rows, ps[0], fam.base.a_l), lay.full(1, rows, ps[1], fam.base.a_u))
        return lines


__all__ = ["ITERATIONS", "NEAR", "STEP", "SlopeGuide"]
