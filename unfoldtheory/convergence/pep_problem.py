"""The performance-estimation SDP of a K-step method with per-step parameters, as numpy data.

Methods (``γ_k`` are the actual step sizes, ``k = 0..K−1``; ``x*`` a minimiser):

* ``"gradient"``: ``x_{k+1} = x_k − γ_k ∇f(x_k)``, ``f ∈ F_{μ,L}``;
* ``"proximal_gradient"``: ``x_{k+1} = prox_{γ_k h}(x_k − γ_k ∇f(x_k))``, ``f ∈ F_{μ,L}``, ``h``
  closed convex; written as ``x_{k+1} = x_k − γ_k(∇f(x_k) + s_{k+1})`` with ``s_{k+1} ∈ ∂h(x_{k+1})``.
  Without loss of generality ``∇f(x*) = 0 = s*``: replacing ``f`` by ``f − ⟨∇f(x*), ·⟩`` and ``h``
  by ``h + ⟨∇f(x*), ·⟩`` keeps both classes, ``F = f + h`` and every iterate
  (``prox_{γ(h + ⟨c,·⟩)}(v) = prox_{γh}(v − γc)``; ``proofs/pep_certificate.py``);
* ``"accelerated"``: ``y_0 = x_0``, ``x_{k+1} = y_k − γ_k ∇f(y_k)``,
  ``y_{k+1} = x_{k+1} + β_{k+1}(x_{k+1} − x_k)`` with ``momentum = (β_1, …, β_{K−1})`` (the layout of
  :class:`~unfoldtheory.unfold.UnfoldedFISTA`).

Metrics, all divided by ``‖x_0 − x*‖²`` (PEPit's normalisation, initial condition ``‖x_0 − x*‖² ≤ 1``):
``"distance"`` ``‖x_K − x*‖²``; ``"function_value"`` ``f(x_K) − f(x*)`` (``F = f + h`` for the proximal
method); ``"gradient_norm"`` ``‖∇f(x_K)‖²`` (gradient and accelerated methods only).

**Leaves and scaling.** The leaves are the iterates ``x_0, …, x_K`` themselves (plus the gradients
the method needs as separate vectors); gradients of the gradient and accelerated methods are the
differences ``(y_k − x_{k+1})/γ_k``. Written in the usual basis ``x_0, g_0, g_1, …`` a small
``‖x_K − x*‖²`` is a cancellation between O(1) numbers and Clarabel loses all relative accuracy
past K ≈ 30; with iterate leaves it does not. Each leaf, each value variable and the objective are
measured in a power-of-two unit (exact in float64), estimated from the method run on the 1-D
quadratics ``λx²/2``, ``λ ∈ [μ, L]``. A change of units changes the conditioning only, never the
problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from unfoldtheory.convergence.interpolation import Basis, FunctionRows, Point, TermBlock, Vec, interpolation_rows

METHODS: tuple[str, ...] = ("gradient", "proximal_gradient", "accelerated")
METRICS: tuple[str, ...] = ("distance", "function_value", "gradient_norm")
_SCALE_RANGE = 600  # power-of-two units are kept within 2^±600


@dataclass(frozen=True)
class PEPProblem:
    """``max ⟨C, G⟩ + c·F`` s.t. every row ``⟨Q_p, G⟩ + a_p·F ≤ 0``, ``G_00 ≤ 1``, ``G ⪰ 0``.

    ``C = (obj_vec obj_vecᵀ)/objective_scale`` (or 0), ``c = value_objective/objective_scale``,
    ``Q_p = Σ_blocks w·sym(a_p b_pᵀ)``, ``a_p = value_rows[p]``. Leaf 0 is ``x_0 − x*`` in unit 1, so
    ``G_00 = ‖x_0 − x*‖²``. The true worst case is ``objective_scale`` times the SDP value.
    """

    dim: int
    n_values: int
    n_rows: int
    blocks: list[TermBlock]
    value_rows: np.ndarray  # (n_rows, n_values): ±(unit of the value variable), exact powers of two
    star_rows: np.ndarray  # (n_values, 2): rows (x*, m) and (m, x*) of value variable m
    obj_vec: Vec | None
    value_objective: np.ndarray  # (n_values,)
    objective_scale: float
    exact: bool
    units: Units
    labels: dict[str, Any] = field(default_factory=dict)

    @property
    def n_terms(self) -> int:
        """Total number of (row, term) pairs: bounds the summands of an entry of the dual matrix."""
        return sum(b.stop - b.start for b in self.blocks)


def power_of_two(x: float) -> float:
    """The power of two nearest to ``x > 0`` in log scale, kept within ``2^±600`` (1 for x ≤ 0)."""
    if not x > 0:
        return 1.0
    return float(2.0 ** int(np.clip(np.round(np.log2(x)), -_SCALE_RANGE, _SCALE_RANGE)))


def curvature_grid(mu: float, L: float) -> np.ndarray:
    """Curvatures ``λ ∈ [μ, L]``, evenly spaced and geometrically spaced (34 points at most)."""
    return np.unique(np.concatenate([np.linspace(mu, L, 17), np.geomspace(max(mu, 1e-6 * L), L, 17)]))


def quadratic_runs(method: str, steps: np.ndarray, momentum: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The method on ``f(x) = λx²/2`` (``h = 0``) for each curvature in ``lam``, ``x_0 = 1``: iterates
    ``x_k`` (K+1, n_λ) and gradient points ``y_k`` (K, n_λ; ``y_k = x_k`` except when accelerated)."""
    K = len(steps)
    xs, ys = np.empty((K + 1, lam.size)), np.empty((K, lam.size))
    xs[0] = 1.0
    y = xs[0]
    for k in range(K):
        ys[k] = y
        xs[k + 1] = (1.0 - steps[k] * lam) * y
        if method == "accelerated" and k + 1 < K:
            y = xs[k + 1] + momentum[k] * (xs[k + 1] - xs[k])
        else:
            y = xs[k + 1]
    return xs, ys


@dataclass(frozen=True)
class Units:
    """Power-of-two units of the leaves (``leaf``, in the order the builder creates them), of the
    value variables (``value``) and of the objective. Leaf 0 (``x_0 − x*``) always has unit 1."""

    leaf: np.ndarray
    value: np.ndarray
    objective: float


def _powers_of_two(x: np.ndarray) -> np.ndarray:
    return np.array([power_of_two(float(v)) for v in np.ravel(x)])


def default_units(method: str, metric: str, steps: np.ndarray, momentum: np.ndarray, mu: float, L: float) -> Units:
    """Units from the method run on the quadratics ``λx²/2``, ``λ`` on :func:`curvature_grid`.

    Leaves: iterates ``x_0..x_K``, then (proximal) gradients ``∇f(x_0..x_{K−1})``, then
    ``∇f(x_K)`` when the metric needs it. Values: ``f`` at the gradient points (and at ``x_K``),
    then (proximal) ``h(x_1..x_K)``.
    """
    K = len(steps)
    lam = curvature_grid(mu, L)
    xs, ys = quadratic_runs(method, steps, momentum, lam)
    pts = np.vstack([ys, xs[-1:]])  # gradient points, then x_K
    x_unit = _powers_of_two(np.abs(xs).max(axis=1))
    x_unit[0] = 1.0
    grad_unit = _powers_of_two(np.abs(lam * pts).max(axis=1))
    value_unit = _powers_of_two((lam * pts**2 / 2).max(axis=1))
    final = metric != "distance"
    leaf = [x_unit]
    value = [value_unit[: K + int(final)]]
    if method == "proximal_gradient":
        leaf.append(grad_unit[:K])
        value.append(value_unit[1: K + 1])
    if final:
        leaf.append(grad_unit[K:])
    objective = {"distance": xs[-1] ** 2, "function_value": lam * xs[-1] ** 2 / 2, "gradient_norm": (lam * xs[-1]) ** 2}[metric]
    return Units(np.concatenate(leaf), np.concatenate(value), power_of_two(float(objective.max())))


@dataclass
class _Assembly:
    """Collects functions' rows into one problem."""

    basis: Basis
    n_values: int = 0
    functions: list[FunctionRows] = field(default_factory=list)
    n_rows: int = 0

    def value(self) -> int:
        self.n_values += 1
        return self.n_values - 1

    def add(self, points: list[Point], kind: str, mu: Any = None, L: Any = None) -> None:
        rows = interpolation_rows(points, self.n_rows, kind, mu, L)
        self.functions.append(rows)
        self.n_rows += len(rows.pairs)


def build_problem(method: str, steps: np.ndarray, mu: float, L: float, momentum: np.ndarray, metric: str,
                  exact: bool, units: Units | None = None) -> PEPProblem:
    """The PEP of ``method`` with validated inputs (see :func:`unfoldtheory.convergence.pep_rate`),
    in the given units (default :func:`default_units`)."""
    K = len(steps)
    if units is None:
        units = default_units(method, metric, steps, momentum, mu, L)
    final_gradient = metric != "distance"
    if method == "proximal_gradient":
        dim = (K + 1) + K + int(final_gradient)
    else:
        dim = (K + 1) + int(final_gradient)
    basis = Basis(dim, exact)
    num = basis.num
    gam = [num(g) for g in steps]
    if units.leaf.shape != (dim,):
        raise ValueError(f"units.leaf has shape {units.leaf.shape}; expected ({dim},)")
    xs = [basis.leaf(k, units.leaf[k]) for k in range(K + 1)]
    zero = basis.zero()
    asm = _Assembly(basis)
    value_unit: list[float] = []

    def new_value() -> int:
        value_unit.append(float(units.value[len(value_unit)]))
        return asm.value()

    f_points = [Point(zero, zero, None)]
    if method == "accelerated":
        beta = [num(b) for b in momentum]
        ys = [xs[0]] + [xs[k] * (1 + beta[k - 1]) - xs[k - 1] * beta[k - 1] for k in range(1, K)]
    else:
        ys = xs[:K]
    if method == "proximal_gradient":
        grads = [basis.leaf(K + 1 + k, units.leaf[K + 1 + k]) for k in range(K)]
    else:
        grads = [(ys[k] - xs[k + 1]) / gam[k] for k in range(K)]
    f_points += [Point(ys[k], grads[k], new_value()) for k in range(K)]
    g_final = None
    if final_gradient:
        g_final = basis.leaf(dim - 1, units.leaf[dim - 1])
        f_points.append(Point(xs[K], g_final, new_value()))
    f_final = len(f_points) - 1
    asm.add(f_points, "smooth_strongly_convex", num(mu), num(L))
    value_objective = [0.0] * asm.n_values
    if method == "proximal_gradient":
        h_points = [Point(zero, zero, None)]
        for k in range(1, K + 1):
            s_k = (xs[k - 1] - xs[k]) / gam[k - 1] - grads[k - 1]
            h_points.append(Point(xs[k], s_k, new_value()))
        h_final = h_points[-1].f
        asm.add(h_points, "convex")
        value_objective += [0.0] * (asm.n_values - len(value_objective))
    obj_vec: Vec | None = None
    if metric == "distance":
        obj_vec = xs[K]
    elif metric == "gradient_norm":
        obj_vec = g_final
    else:
        value_objective[f_points[f_final].f] = value_unit[f_points[f_final].f]
        if method == "proximal_gradient":
            value_objective[h_final] = value_unit[h_final]
    value_rows = np.zeros((asm.n_rows, asm.n_values))
    star_rows = np.full((asm.n_values, 2), -1)
    for rows in asm.functions:
        first = rows.blocks[0].start
        for p, (i, j) in enumerate(rows.pairs):
            vi, vj = rows.value_index[i], rows.value_index[j]
            if vj >= 0:
                value_rows[first + p, vj] += value_unit[vj]
            if vi >= 0:
                value_rows[first + p, vi] -= value_unit[vi]
            if i == 0:
                star_rows[vj, 0] = first + p
            if j == 0:
                star_rows[vi, 1] = first + p
    return PEPProblem(
        dim=dim,
        n_values=asm.n_values,
        n_rows=asm.n_rows,
        blocks=[b for rows in asm.functions for b in rows.blocks],
        value_rows=value_rows,
        star_rows=star_rows,
        obj_vec=obj_vec,
        value_objective=np.array(value_objective),
        objective_scale=units.objective,
        exact=exact,
        units=units,
        labels={"method": method, "metric": metric, "K": K},
    )


def _nonzeros(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column indices and values of the nonzeros of ``A`` (padded with zeros)."""
    mask = A != 0
    width = max(int(mask.sum(axis=1).max(initial=0)), 1)
    idx = np.argsort(~mask, axis=1, kind="stable")[:, :width]
    return idx, np.take_along_axis(A, idx, axis=1)


def row_matrix(problem: PEPProblem, magnitude: bool = False) -> sp.csr_matrix:
    """The rows ``vec(Q_p)`` (row-major ``d²`` columns) as a sparse matrix; with ``magnitude`` the
    same assembly from the magnitudes ``|w|·mag(a)·mag(b)`` (for rounding bounds). Float problems only."""
    if problem.exact:
        raise ValueError("row_matrix needs the float64 problem")
    d = problem.dim
    rows, cols, vals = [], [], []
    for b in problem.blocks:
        A, B = (b.A.mag, b.B.mag) if magnitude else (b.A.val, b.B.val)
        w = abs(float(b.weight)) if magnitude else float(b.weight)
        ia, va = _nonzeros(A)
        ib, vb = _nonzeros(B)
        v = (0.5 * w) * va[:, :, None] * vb[:, None, :]
        r = np.broadcast_to(np.arange(b.start, b.stop)[:, None, None], v.shape)
        keep = v != 0
        for c in (ia[:, :, None] * d + ib[:, None, :], ib[:, None, :] * d + ia[:, :, None]):
            rows.append(r[keep])
            cols.append(c[keep])
            vals.append(v[keep])
    return sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(problem.n_rows, d * d)).tocsr()


def objective_matrix(problem: PEPProblem, magnitude: bool = False) -> np.ndarray:
    """``C`` (d × d) of the scaled objective (zero for a pure function-value objective)."""
    d = problem.dim
    if problem.obj_vec is None:
        return np.zeros((d, d))
    v = problem.obj_vec.mag if magnitude else problem.obj_vec.val
    return np.outer(v, v) / problem.objective_scale
