"""Activation patterns of a piecewise-linear spec as polyhedra in input space, and proofs that one is empty.

**Phases.** Each neuron of a built-in piecewise-linear activation has a few *phases*, closed intervals of its
pre-activation ``v`` on which ``φ(v) = s·v + o`` (:func:`phase_table`):

* ReLU: ``(−∞, 0]`` (s = 0), ``[0, ∞)`` (s = 1);
* soft-thresholding with ``θ > 0``: ``(−∞, −θ]`` (s = 1, o = θ), ``[−θ, θ]`` (s = 0), ``[θ, ∞)`` (s = 1, o = −θ);
  with ``θ = 0`` it is the identity;
* box projection onto ``[l, u]``: ``(−∞, l]`` (s = 0, o = l) when ``l > −∞``, ``[l, u]`` (s = 1) when ``l < u``,
  ``[u, ∞)`` (s = 0, o = u) when ``u < ∞``;
* the identity: one phase, ``ℝ``.

**Polyhedra.** Fix the phases of every neuron of layers ``1..k−1`` (states are in topological order) and of some
neurons of layer ``k``. On the inputs consistent with them each earlier state is affine in ``y``
(``z_j = S_j v_j + o_j``) and so is every pre-activation of layer ``k``; the inputs form the polyhedron
``{y : G y ≤ h}`` with two rows per fixed neuron (its phase's finite ends). The phases of a neuron cover ℝ, so
the children of a node (the phases of its next neuron) cover the node: the patterns cover ℝᵐ.

**Emptiness, proved exactly** (:func:`proves_no_interior`). The float data are dyadic rationals, the slopes
0 or 1 and the offsets floats, so ``G`` and ``h`` are exact rationals computed by :class:`ExactPreactivations`
(:class:`fractions.Fraction`, no rounding). A float LP (:func:`chebyshev_centre`) only *proposes* a support
``S`` of a Gordan–Farkas vector; the check is exact: ``λ ≥ 0``, ``λ ≠ 0``, ``Σ_{i∈S} λ_i g_i = 0`` and either

* ``Σ λ_i h_i < 0``: then ``{G y ≤ h}`` is empty (``0 = λᵀG y ≤ λᵀh < 0``); or
* ``Σ λ_i h_i = 0`` and every ``g_i`` with ``λ_i > 0`` is nonzero: an interior point ``y₀`` of
  ``{G y ≤ h}`` has ``g_i y₀ < h_i`` on every nonzero row (a ball around it satisfies the row), so
  ``0 = λᵀG y₀ < λᵀh = 0``, a contradiction: the polyhedron has no interior (``proofs/exact_lipschitz.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy.optimize import linprog

from unfoldtheory.activations import BoxProjection, Identity, ReLU, SoftThreshold
from unfoldtheory.spec import NetworkSpec

_PWL = (Identity, ReLU, SoftThreshold, BoxProjection)


@dataclass(frozen=True)
class Phase:
    """A closed interval ``[lo, hi]`` of a neuron's pre-activation on which ``φ(v) = slope·v + offset``."""

    lo: float
    hi: float
    slope: float
    offset: float


def _neuron_phases(act: object, i: int) -> tuple[Phase, ...]:
    inf = math.inf
    if isinstance(act, Identity):
        return (Phase(-inf, inf, 1.0, 0.0),)
    if isinstance(act, ReLU):
        return Phase(-inf, 0.0, 0.0, 0.0), Phase(0.0, inf, 1.0, 0.0)
    if isinstance(act, SoftThreshold):
        th = float(act.theta if act.theta.ndim == 0 else act.theta[i])
        if th == 0.0:
            return (Phase(-inf, inf, 1.0, 0.0),)
        return Phase(-inf, -th, 1.0, th), Phase(-th, th, 0.0, 0.0), Phase(th, inf, 1.0, -th)
    assert isinstance(act, BoxProjection)
    lo = float(act.lower if act.lower.ndim == 0 else act.lower[i])
    hi = float(act.upper if act.upper.ndim == 0 else act.upper[i])
    out = []
    if lo > -inf:
        out.append(Phase(-inf, lo, 0.0, lo))
    if lo < hi:
        out.append(Phase(lo, hi, 1.0, 0.0))
    if hi < inf:
        out.append(Phase(hi, inf, 0.0, hi))
    return tuple(out)


def phase_table(spec: NetworkSpec) -> list[list[tuple[Phase, ...]]]:
    """The phases of every neuron, per layer (module docstring); ValueError naming a layer whose activation is not
    one of the piecewise-linear built-ins (exactly those classes: a subclass may behave differently)."""
    table = []
    for k, act in enumerate(spec.activations, start=1):
        if type(act) not in _PWL:
            raise ValueError(f"layer {k}: activation {act.name} ({type(act).__name__}) is not piecewise linear; the exact "
                             "Lipschitz constant needs the built-in ReLU, SoftThreshold, BoxProjection or Identity")
        table.append([_neuron_phases(act, i) for i in range(spec.dims[k])])
    return table


# ---------------------------------------------------------------------------- exact (rational) pre-activations
def _fractions(a: np.ndarray) -> np.ndarray:
    """A float array as an object array of exact :class:`Fraction` s."""
    flat = np.asarray(a, dtype=np.float64)
    return np.array([Fraction(float(x)) for x in flat.ravel()], dtype=object).reshape(flat.shape)


class ExactPreactivations:
    """Exact pre-activation maps ``P_k = [G_k | g_k]`` (``v_k = G_k y + g_k``) of a phase prefix, in rationals.

    ``maps(pattern, K)`` takes the phase indices of every neuron of layers ``1..K−1`` and returns the exact
    ``P_1 … P_K`` (each ``(d_k, m + 1)``), memoised on the prefix (a node's children share it).
    """

    def __init__(self, spec: NetworkSpec, table: list[list[tuple[Phase, ...]]], cache: int = 512) -> None:
        self.spec, self.table, self.cache = spec, table, cache
        self.weights = [{j: _fractions(w) for j, w in ws.items()} for ws in spec.weights]
        self.biases = [_fractions(b) for b in spec.biases]
        m = spec.input_dim
        self.identity = np.array([[Fraction(int(i == j)) for j in range(m + 1)] for i in range(m)], dtype=object)
        self._memo: dict[tuple[int, ...], tuple[list[np.ndarray], list[np.ndarray]]] = {}

    def _state(self, k: int, pre: np.ndarray, phases: Sequence[int]) -> np.ndarray:
        out = np.empty_like(pre)
        for i, p in enumerate(phases):
            ph = self.table[k - 1][i][p]
            row = pre[i] if ph.slope == 1.0 else np.array([Fraction(0)] * pre.shape[1], dtype=object)
            out[i] = row
            out[i, -1] = row[-1] + Fraction(ph.offset)
        return out

    def maps(self, pattern: Sequence[int], K: int) -> list[np.ndarray]:
        """Exact ``P_1 … P_K`` for the phases ``pattern`` of layers ``1..K−1`` (flat, in layer order)."""
        key = tuple(int(p) for p in pattern)
        hit = self._memo.get(key)
        if hit is not None:
            return hit[1]
        if K == 1:
            states, pres = [self.identity], []
        else:
            start = len(key) - self.spec.dims[K - 1]
            pres = list(self.maps(key[:start], K - 1))
            states = list(self._memo[key[:start]][0])
            states.append(self._state(K - 1, pres[-1], key[start:]))
        m = self.spec.input_dim
        pre = np.array([[Fraction(0)] * (m + 1) for _ in range(self.spec.dims[K])], dtype=object)
        for j, w in self.weights[K - 1].items():
            pre = pre + w @ states[j]
        pre[:, -1] = pre[:, -1] + self.biases[K - 1]
        pres.append(pre)
        if len(self._memo) >= self.cache:
            self._memo.pop(next(iter(self._memo)))
        self._memo[key] = (states, pres)
        return pres


# ---------------------------------------------------------------------------- float LP, exact Farkas check
@dataclass(frozen=True)
class Centre:
    """The float Chebyshev LP of ``{A y ≤ c}`` (unit rows): ``radius`` (capped), the centre ``y`` and the dual
    ``multipliers`` (a proposed Gordan–Farkas vector when ``radius ≤ 0``)."""

    radius: float
    y: np.ndarray | None
    multipliers: np.ndarray | None


def chebyshev_centre(A: np.ndarray, c: np.ndarray, cap: float) -> Centre:
    """``max t`` s.t. ``A y + t·1 ≤ c``, ``t ≤ cap`` (rows of ``A`` of unit norm or zero), by HiGHS. A float answer:
    it only guides the search (an interior point is re-checked by the witness, an empty one by the exact check)."""
    r, m = A.shape
    if r == 0:
        return Centre(cap, np.zeros(m), np.zeros(0))
    obj = np.zeros(m + 1)
    obj[-1] = -1.0
    res = linprog(obj, A_ub=np.hstack([A, np.ones((r, 1))]), b_ub=c, bounds=[(None, None)] * m + [(None, cap)],
                  method="highs")
    if res.status != 0 or res.x is None:
        return Centre(-math.inf, None, None)
    marg = getattr(res.ineqlin, "marginals", None)
    return Centre(float(res.x[-1]), np.asarray(res.x[:m]), None if marg is None else -np.asarray(marg))


def _kernel(M: list[list[Fraction]], cols: int) -> list[list[Fraction]]:
    """A basis of ``{x : M x = 0}`` (exact Gauss–Jordan elimination)."""
    rows = [list(r) for r in M]
    pivots: list[int] = []
    r = 0
    for col in range(cols):
        p = next((i for i in range(r, len(rows)) if rows[i][col] != 0), None)
        if p is None:
            continue
        rows[r], rows[p] = rows[p], rows[r]
        piv = rows[r][col]
        rows[r] = [x / piv for x in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][col] != 0:
                f = rows[i][col]
                rows[i] = [a - f * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots.append(col)
        r += 1
        if r == len(rows):
            break
    free = [c for c in range(cols) if c not in pivots]
    basis = []
    for fcol in free:
        x = [Fraction(0)] * cols
        x[fcol] = Fraction(1)
        for i, pcol in enumerate(pivots):
            x[pcol] = -rows[i][fcol]
        basis.append(x)
    return basis


def proves_no_interior(G: list[list[Fraction]], h: list[Fraction], guess: np.ndarray) -> bool:
    """Whether an exact Gordan–Farkas vector on these rows (``g_i y ≤ h_i``, exact) shows that ``{G y ≤ h}`` has no
    interior (module docstring). ``guess`` (float, ≥ 0) proposes it: the exact vector is taken from the kernel of
    ``Gᵀ`` (the one basis vector, or the kernel element nearest to ``guess``)."""
    s = len(G)
    if s == 0:
        return False
    m = len(G[0])
    basis = _kernel([[G[i][j] for i in range(s)] for j in range(m)], s)
    if not basis:
        return False
    if len(basis) == 1:
        lam = basis[0]
        if sum(lam) < 0:
            lam = [-x for x in lam]
    else:
        K = np.array([[float(x) for x in b] for b in basis]).T
        coef, *_ = np.linalg.lstsq(K, np.asarray(guess, dtype=np.float64), rcond=None)
        if not np.all(np.isfinite(coef)):
            return False
        lam = [sum((Fraction(float(a)) * b[i] for a, b in zip(coef, basis, strict=True)), Fraction(0)) for i in range(s)]
    if any(x < 0 for x in lam) or not any(x > 0 for x in lam):
        return False
    total = sum((x * hi for x, hi in zip(lam, h, strict=True)), Fraction(0))
    if total < 0:
        return True
    return total == 0 and all(any(v != 0 for v in G[i]) for i in range(s) if lam[i] > 0)


__all__ = ["Centre", "ExactPreactivations", "Phase", "chebyshev_centre", "phase_table", "proves_no_interior"]
