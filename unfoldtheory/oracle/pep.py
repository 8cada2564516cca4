"""Exact oracle for the PEP dual certificate of :func:`unfoldtheory.convergence.pep_rate`.

:func:`pep_certificate_holds` decides, in exact rationals on the float64 data, that a certified
``Bound`` of ``pep_rate`` is proved by its own multipliers. It rebuilds the performance-estimation
problem independently of :mod:`unfoldtheory.convergence.pep_problem`: the iterates are written
in the leaf basis by running the method on symbolic leaves (unit 1), and every row is the
interpolation inequality of its pair of points written out afresh (Taylor, Hendrickx & Glineur 2017,
Thm. 4 for ``F_{μ,L}``; Thm. 1 for the convex h). With ``ν_p = λ_p·unit/row_scale_p`` (the rows of
``pep_rate`` are the true rows divided by ``row_scale_p``, its objective is divided by ``unit``) the
weak-duality theorem (``proofs/pep_certificate.py``) needs exactly:

* ``ν ≥ 0``;
* the value balance ``Σ_p ν_p a_p = c`` (``a_p``: the row's coefficients of the function values,
  ``c``: the objective's);
* ``S = τ' e₀e₀ᵀ − C + Σ_p ν_p Q_p ⪰ 0`` with ``τ' = τ·unit`` (decided by exact elimination);
* the certified value ``≥ τ'``.

Then every run of the method on every function of the class has metric ``≤ τ'·‖x_0 − x*‖²``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from unfoldtheory.oracle.rational import exact, is_positive_semidefinite

Vector = list[Fraction]


def _leaf(d: int, index: int) -> Vector:
    v = [Fraction(0)] * d
    v[index] = Fraction(1)
    return v


def _lin(*terms: tuple[Any, Vector]) -> Vector:
    """``Σ c·v`` exactly."""
    d = len(terms[0][1])
    return [sum((Fraction(c) * v[i] for c, v in terms), Fraction(0)) for i in range(d)]


Points = list[tuple[Vector, Vector]]


def _points(method: str, metric: str, steps: list[Fraction], momentum: list[Fraction],
            iterate_leaf: list[bool]) -> tuple[int, Points, Points, Vector, Vector | None]:
    """The points (x, g) of f and of h (optimum first, at the origin) and the final iterate and gradient."""
    K = len(steps)
    proximal = method == "proximal_gradient"
    d = 1 + K * (2 if proximal else 1) + int(metric != "distance")
    counter = iter(range(d))
    xs = [_leaf(d, next(counter))]
    zero = [Fraction(0)] * d
    f_pts: list[tuple[Vector, Vector]] = [(zero, zero)]
    h_pts: list[tuple[Vector, Vector]] = [(zero, zero)]
    for k in range(K):
        if method == "accelerated" and k >= 1:
            y = _lin((1 + momentum[k - 1], xs[k]), (-momentum[k - 1], xs[k - 1]))
        else:
            y = xs[k]
        if proximal:
            g = _leaf(d, next(counter))
            if iterate_leaf[k]:
                x_next = _leaf(d, next(counter))
                s = _lin((1 / steps[k], xs[k]), (-1 / steps[k], x_next), (-1, g))
            else:
                s = _leaf(d, next(counter))
                x_next = _lin((1, xs[k]), (-steps[k], g), (-steps[k], s))
            h_pts.append((x_next, s))
        elif iterate_leaf[k]:
            x_next = _leaf(d, next(counter))
            g = _lin((1 / steps[k], y), (-1 / steps[k], x_next))
        else:
            g = _leaf(d, next(counter))
            x_next = _lin((1, y), (-steps[k], g))
        f_pts.append((y, g))
        xs.append(x_next)
    g_final = None
    if metric != "distance":
        g_final = _leaf(d, next(counter))
        f_pts.append((xs[K], g_final))
    return d, f_pts, h_pts if proximal else [], xs[K], g_final


def _outer(a: Vector, b: Vector, c: Fraction, S: list[list[Fraction]]) -> None:
    """``S += c·sym(a bᵀ)``."""
    for i, ai in enumerate(a):
        if ai:
            for j, bj in enumerate(b):
                if bj:
                    v = c * ai * bj / 2
                    S[i][j] += v
                    S[j][i] += v


def _pair_rows(points: list[tuple[Vector, Vector]], smooth: bool, mu: Fraction, L: Fraction):
    """Per ordered pair (i, j), i ≠ j, row-major: the quadratic terms and the value indices (i, j).

    ``f_j − f_i + ⟨g_j, x_i − x_j⟩ [+ μ/2‖x_i − x_j‖² + ‖g_i − g_j − μ(x_i − x_j)‖²/(2(L − μ))] ≤ 0``."""
    n = len(points)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            (xi, gi), (xj, gj) = points[i], points[j]
            dx = _lin((1, xi), (-1, xj))
            terms = [(Fraction(1), gj, dx)]
            if smooth:
                shifted = _lin((1, gi), (-1, gj), (-mu, dx))
                terms += [(mu / 2, dx, dx), (1 / (2 * (L - mu)), shifted, shifted)]
            yield terms, i, j


def pep_certificate_holds(bound: Any) -> bool:
    """Whether a certified ``pep_rate`` Bound's multipliers and τ prove its value, decided exactly.

    Reads the method, metric, steps, μ, L and momentum from ``bound.details`` and the multipliers,
    τ, objective unit, row scales and leaf plan from ``bound.certificate``; returns True only if the
    four conditions of the module docstring hold in exact rational arithmetic.
    """
    det, cert = bound.details, bound.certificate
    method, metric = det["method"], det["metric"]
    steps = [exact(g) for g in det["steps"]]
    momentum = [exact(b) for b in det["momentum"]] if det.get("momentum") is not None else []
    mu, L = exact(det["mu"]), exact(det["L"])
    unit = exact(cert["objective_unit"])
    lam = [Fraction(q) for q in cert["multipliers"]]
    scales = [exact(r) for r in cert["row_scale"]]
    tau = exact(cert["tau"]) * unit
    d, f_pts, h_pts, x_K, g_K = _points(method, metric, steps, momentum, list(cert["iterate_leaf"]))
    S = [[Fraction(0)] * d for _ in range(d)]
    S[0][0] += tau
    if metric == "distance":
        _outer(x_K, x_K, Fraction(-1), S)
    elif metric == "gradient_norm":
        _outer(g_K, g_K, Fraction(-1), S)
    # value balance: f-values are indexed by point (point 0, the optimum, has value 0), h-values likewise
    balance: dict[tuple[str, int], Fraction] = {}
    p = 0
    for name, pts, smooth in (("f", f_pts, True), ("h", h_pts, False)):
        for terms, i, j in _pair_rows(pts, smooth, mu, L):
            if p >= len(lam):
                return False
            nu = lam[p] * unit / scales[p]
            if nu < 0:
                return False
            for c, a, b in terms:
                _outer(a, b, nu * c, S)
            if j:
                balance[(name, j)] = balance.get((name, j), Fraction(0)) + nu
            if i:
                balance[(name, i)] = balance.get((name, i), Fraction(0)) - nu
            p += 1
    if p != len(lam):
        return False
    target = {key: Fraction(0) for key in balance}
    if metric == "function_value":
        target[("f", len(f_pts) - 1)] = Fraction(1)
        if h_pts:
            target[("h", len(h_pts) - 1)] = Fraction(1)
    if any(balance.get(key, Fraction(0)) != value for key, value in target.items()):
        return False
    claim = exact(bound.value) ** 2 if metric == "distance" else exact(bound.value)  # distances are unsquared
    return is_positive_semidefinite(S) and claim >= tau


__all__ = ["pep_certificate_holds"]
