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

**Leaves and scaling.** The Gram matrix is that of ``K + 1`` leaf vectors (``2K + 1`` for the
proximal method, plus ``∇f(x_K)`` when the metric needs it); every other vector is a combination.
Which vectors are leaves decides how much cancellation the SDP data carry, and a cancellation by a
factor C costs Clarabel about log10 C digits:

* with gradient leaves, ``x_{k+1} = y_k − γ_k g_k`` is a difference of large vectors when the
  steps contract strongly (``‖x_K − x*‖² = 1e-5`` from O(1) coefficients: the solver loses all
  relative accuracy past K ≈ 30);
* with iterate leaves, ``g_k = (y_k − x_{k+1})/γ_k`` is one when the step barely moves (γL ≪ 1).

So each step picks its leaf (:func:`plan`): the next iterate ``x_{k+1}``, or, for a step that barely
moves, the new (sub)gradient (``g_k``, or ``s_{k+1}`` for the proximal method, whose ``g_k`` is
always a leaf), with the contraction measured on the method run on the 1-D quadratics ``λx²/2``,
``λ ∈ [μ, L]``.
Each leaf, each value variable and the objective is also measured in a power-of-two unit (exact
in float64) read off the same runs. A change of basis or of units changes the conditioning only,
never the problem.
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
#: The leaves, values and objective must have sizes within 2^±DATA_RANGE on the quadratic runs (see
#: :func:`check_representable`): then every unit ratio of the data is a normal float64, exact.
DATA_RANGE = 500
SMALL_STEP = 0.05  # γL below this: the step's gradient is the leaf (see plan)
MAX_CONTRACTION = 16.0  # ... unless the iterates shrank by more than this since the last iterate leaf


@dataclass(frozen=True)
class PEPProblem:
    """``max ⟨C, G⟩ + c·F`` s.t. every row ``⟨Q_p, G⟩ + a_p·F ≤ 0``, ``G_00 ≤ 1``, ``G ⪰ 0``.

    ``C = (obj_vec obj_vecᵀ)/objective_scale`` (or 0), ``c = value_objective/objective_scale``,
    ``Q_p = Σ_blocks w·sym(a_p b_pᵀ)``, ``a_p = value_rows[p]``, every row divided by the power of two
    ``row_scale[p]``. Leaf 0 is ``x_0 − x*`` in unit 1, so ``G_00 = ‖x_0 − x*‖²``. The true worst case
    is ``objective_scale`` times the SDP value.
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
    row_scale: np.ndarray
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
    """The leaf plan: ``iterate_leaf[k]`` says whether step k's leaf is ``x_{k+1}`` (else the new
    gradient or subgradient); power-of-two units of the leaves (``leaf``, in the order the builder
    creates them), of the value variables (``value``) and of the objective. Leaf 0 (``x_0 − x*``)
    has unit 1."""

    iterate_leaf: np.ndarray
    leaf: np.ndarray
    value: np.ndarray
    objective: float


def check_representable(sizes: np.ndarray, what: str) -> None:
    """ValueError unless every nonzero size is finite and within ``2^±DATA_RANGE``.

    The sizes are those of the method run on the quadratics of :func:`curvature_grid` (a lower
    bound on the worst case), so a size outside the range means that the PEP's data (or its value)
    would overflow or underflow float64's exponent range, or lose all precision to the units."""
    sizes = np.asarray(sizes, dtype=float)
    low, high = 2.0 ** -DATA_RANGE, 2.0 ** DATA_RANGE
    bad = np.flatnonzero(~np.isfinite(sizes) | (sizes > high) | ((sizes > 0) & (sizes < low)))
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"{what} reaches size {sizes[k]:.3g} at index {k} when the method runs on the quadratics "
                         f"λx²/2, λ ∈ [μ, L]; the PEP's data would leave the range 2^±{DATA_RANGE} that float64 "
                         "can carry exactly (steps·L, momentum or K too large, or the contraction too strong)")


def _powers_of_two(x: np.ndarray) -> np.ndarray:
    return np.array([power_of_two(float(v)) for v in np.ravel(x)])


def plan(method: str, metric: str, steps: np.ndarray, momentum: np.ndarray, mu: float, L: float) -> Units:
    """Leaf choice and units from the method run on the quadratics of :func:`curvature_grid`.

    Step k's leaf is the iterate ``x_{k+1}`` unless the step barely moves (``γ_k L < SMALL_STEP``:
    then ``g_k = (y_k − x_{k+1})/γ_k`` would cancel by about ``1/(γ_kL)``) and the iterates have not
    contracted by more than ``MAX_CONTRACTION`` since the last iterate leaf (else ``x_{k+1}`` written
    from gradients would cancel by that much).
    """
    K = len(steps)
    lam = curvature_grid(mu, L)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        xs, ys = quadratic_runs(method, steps, momentum, lam)
        r_x = np.abs(xs).max(axis=1)
        grad = np.abs(lam * np.vstack([ys, xs[-1:]])).max(axis=1)  # ‖∇f‖ at y_0..y_{K−1}, x_K
        value = (lam * np.vstack([ys, xs[-1:]]) ** 2 / 2).max(axis=1)
        objective = {"distance": xs[-1] ** 2, "function_value": lam * xs[-1] ** 2 / 2,
                     "gradient_norm": (lam * xs[-1]) ** 2}[metric]
    check_representable(r_x, "the iterate size ‖x_k − x*‖/‖x_0 − x*‖")
    check_representable(grad, "the gradient size")
    check_representable(value, "the function value")
    check_representable(objective.max(initial=0.0)[None], f"the {metric} worst case on quadratics")
    iterate_leaf = np.zeros(K, dtype=bool)
    anchor = r_x[0]
    for k in range(K):
        iterate_leaf[k] = steps[k] * L >= SMALL_STEP or anchor > MAX_CONTRACTION * r_x[k + 1]
        if iterate_leaf[k]:
            anchor = r_x[k + 1]
    leaf = [1.0]
    for k in range(K):
        if method == "proximal_gradient":
            leaf.append(grad[k])  # g_k
        leaf.append(r_x[k + 1] if iterate_leaf[k] else grad[k])  # x_{k+1}, or g_k / s_{k+1} (same size)
    final = metric != "distance"
    if final:
        leaf.append(grad[K])
    values = list(value[: K + int(final)])
    if method == "proximal_gradient":
        values += list(value[1: K + 1])  # h(x_1..x_K), in the unit of f there
    leaf_units = _powers_of_two(np.array(leaf))
    leaf_units[0] = 1.0
    return Units(iterate_leaf, leaf_units, _powers_of_two(np.array(values)), power_of_two(float(objective.max())))


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


def _row_scales(blocks: list[TermBlock], value_rows: np.ndarray) -> np.ndarray:
    """A power of two per row near its largest coefficient (from the magnitudes)."""
    size = np.abs(value_rows).max(axis=1)
    for b in blocks:
        term = abs(float(b.weight)) * b.A.mag.astype(float).max(axis=1) * b.B.mag.astype(float).max(axis=1)
        size[b.start:b.stop] = np.maximum(size[b.start:b.stop], term)
    return _powers_of_two(size)


def _scale_rows(blocks: list[TermBlock], inverse: np.ndarray) -> list[TermBlock]:
    """Each row multiplied by its ``inverse`` scale (through the first vector of every term)."""
    out = []
    for b in blocks:
        factor = inverse[b.start:b.stop, None]
        out.append(TermBlock(b.start, b.stop, b.weight, Vec(b.A.val * factor, b.A.mag * factor), b.B))
    return out


def build_problem(method: str, steps: np.ndarray, mu: float, L: float, momentum: np.ndarray, metric: str,
                  exact: bool, units: Units | None = None, row_scale: np.ndarray | None = None) -> PEPProblem:
    """The PEP of ``method`` with validated inputs (see :func:`unfoldtheory.convergence.pep_rate`),
    with the given leaf plan and units (default :func:`plan`) and rows divided by ``row_scale``
    (powers of two; default: each row's largest coefficient, so that rows whose vectors are all
    small are enforced as tightly as the others — Clarabel's own equilibration stops at 1e4)."""
    K = len(steps)
    if units is None:
        units = plan(method, metric, steps, momentum, mu, L)
    final_gradient = metric != "distance"
    proximal = method == "proximal_gradient"
    dim = 1 + K * (2 if proximal else 1) + int(final_gradient)
    if units.leaf.shape != (dim,):
        raise ValueError(f"units.leaf has shape {units.leaf.shape}; expected ({dim},)")
    basis = Basis(dim, exact)
    num = basis.num
    gam = [num(g) for g in steps]
    beta = [num(b) for b in momentum] if method == "accelerated" else []
    zero = basis.zero()
    asm = _Assembly(basis)
    value_unit: list[float] = []
    leaves = iter(range(dim))

    def new_leaf() -> Vec:
        index = next(leaves)
        return basis.leaf(index, units.leaf[index])

    def new_value() -> int:
        value_unit.append(float(units.value[len(value_unit)]))
        return asm.value()

    xs, ys, grads, subgrads = [new_leaf()], [], [], []
    for k in range(K):
        ys.append(xs[k] * (1 + beta[k - 1]) - xs[k - 1] * beta[k - 1] if beta and k >= 1 else xs[k])
        if proximal:  # x_{k+1} = x_k − γ_k(g_k + s_{k+1})
            grads.append(new_leaf())
            if units.iterate_leaf[k]:
                xs.append(new_leaf())
                subgrads.append((xs[k] - xs[k + 1]) / gam[k] - grads[k])
            else:
                subgrads.append(new_leaf())
                xs.append(xs[k] - (grads[k] + subgrads[k]) * gam[k])
        elif units.iterate_leaf[k]:  # x_{k+1} = y_k − γ_k g_k
            xs.append(new_leaf())
            grads.append((ys[k] - xs[k + 1]) / gam[k])
        else:
            grads.append(new_leaf())
            xs.append(ys[k] - grads[k] * gam[k])
    f_points = [Point(zero, zero, None)] + [Point(ys[k], grads[k], new_value()) for k in range(K)]
    g_final = None
    if final_gradient:
        g_final = new_leaf()
        f_points.append(Point(xs[K], g_final, new_value()))
    f_final = len(f_points) - 1
    asm.add(f_points, "smooth_strongly_convex", num(mu), num(L))
    value_objective = [0.0] * asm.n_values
    if proximal:
        h_points = [Point(zero, zero, None)] + [Point(xs[k + 1], subgrads[k], new_value()) for k in range(K)]
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
        if proximal:
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
    blocks = [b for rows in asm.functions for b in rows.blocks]
    if row_scale is None:
        row_scale = _row_scales(blocks, value_rows)
    if row_scale.shape != (asm.n_rows,):
        raise ValueError(f"row_scale has shape {row_scale.shape}; expected ({asm.n_rows},)")
    inverse = np.array([num(1.0 / r) for r in row_scale], dtype=object if exact else float)
    scaled_values = _exact_quotient(value_rows, row_scale[:, None], "value_rows / row_scale")
    problem = PEPProblem(
        dim=dim,
        n_values=asm.n_values,
        n_rows=asm.n_rows,
        blocks=_scale_rows(blocks, inverse),
        value_rows=scaled_values,
        star_rows=star_rows,
        obj_vec=obj_vec,
        value_objective=np.array(value_objective),
        objective_scale=units.objective,
        exact=exact,
        units=units,
        row_scale=row_scale,
        labels={"method": method, "metric": metric, "K": K},
    )
    if not exact:
        _check_finite(problem)
    return problem


def _exact_quotient(a: np.ndarray, b: np.ndarray, what: str) -> np.ndarray:
    """``a / b`` for powers of two ``b``, verified exact (no overflow, no subnormal result): the
    exact certificate reads these coefficients as the true ones."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        q = a / b
        exact = np.isfinite(q) & ((q == 0) == (a == 0)) & ((q == 0) | (np.abs(q) >= np.finfo(float).tiny)) & (q * b == a)
    if not np.all(exact):
        raise ValueError(f"{what} is not exact in float64 (the units span beyond float64's exponent range); the PEP's "
                         f"data cannot be represented")
    return q


def _check_finite(problem: PEPProblem) -> None:
    """ValueError if any float64 datum of the PEP overflowed (the solver would see inf or NaN)."""
    parts = [problem.value_rows, problem.value_objective]
    parts += [x for b in problem.blocks for x in (b.A.val, b.B.val, b.A.mag, b.B.mag)]
    parts += [np.array([float(b.weight) for b in problem.blocks])]
    if problem.obj_vec is not None:
        parts += [problem.obj_vec.val, problem.obj_vec.mag]
    if not all(np.all(np.isfinite(np.asarray(x, dtype=float))) for x in parts):
        raise ValueError("the PEP's float64 data overflow (an entry is inf or NaN); steps·L, momentum or 1/(L − μ) are "
                         "beyond what float64 can carry")


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
