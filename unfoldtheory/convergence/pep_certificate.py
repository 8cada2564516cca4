"""Checking PEP dual multipliers after the solve: the worst-case bound that given ``λ`` prove.

The solver proposes multipliers; only what this module verifies becomes a certified number.

**Weak duality** (``proofs/pep_certificate.py``). For the problem of
:class:`~unfoldtheory.convergence.pep_problem.PEPProblem` let
``S(τ, λ) = τ e₀e₀ᵀ − C + Σ_p λ_p Q_p``. If ``λ ≥ 0``, ``Σ_p λ_p a_p = c`` exactly and
``S(τ, λ) ⪰ 0``, then every run of the method on every function of the class satisfies
``objective = τ‖x_0 − x*‖² + Σ_p λ_p·row_p − ⟨S, G⟩ ≤ τ‖x_0 − x*‖²``, since each row is ``≤ 0``
(interpolation inequalities hold for every function of the class) and ``G ⪰ 0``.

**The check.**

1. *Rationalise.* ``λ`` from the solver is clipped to ``λ ≥ 0`` and read exactly as rationals.
2. *Equalities, exactly.* The value coefficients ``Σ_p λ_p a_p = c`` are one equation per value
   variable ``m``, and the rows ``(x*, m)`` and ``(m, x*)`` touch only that equation (the optimum's
   value is fixed). Its exact residual is moved onto those two rows, keeping ``λ ≥ 0``.
3. *Smallest τ.* ``S(τ) = B + τe₀e₀ᵀ``; if the block ``B_rr`` without row/column 0 is positive
   definite the smallest feasible ``τ`` is ``τ* = bᵀB_rr⁻¹b − B₀₀`` (Schur complement), computed
   in float64 as a candidate only.
4. *Verify* ``S(τ_c, λ) ≻ 0`` at ``τ_c = τ* + δ`` (``δ ≈ 1e-10·|τ*|``, grown if needed) either
   - **exactly**: ``S`` assembled in rationals from the exact problem data and an ``LDLᵀ``
     factorisation in :class:`~fractions.Fraction` with every pivot ``> 0`` (Sylvester), used when
     the dimension allows (``exact_max_dim``); or
   - **in float64 with a rigorous residual bound** (larger dimensions): ``S`` is still assembled
     exactly in rationals (linear in the number of rows), rounded entrywise to the nearest float64
     ``Ŝ`` (``|S_ij − Ŝ_ij| ≤ 2u|Ŝ_ij| + 2⁻¹⁰⁷⁴``), and
     :func:`~unfoldtheory.convergence.psd_bound.lambda_min_lower` proves ``λ_min(S) > 0`` from a
     float64 Cholesky factor of a shifted ``Ŝ`` and a rigorously bounded residual
     (``proofs/cholesky_residual.py``). No operation count and no eigensolver accuracy is assumed.

The certified value is ``τ_c`` (times the problem's power-of-two objective unit). A wrong or
inaccurate solver answer can therefore never be certified: at worst its multipliers prove a larger
value, or none.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import scipy.sparse as sp

from unfoldtheory.convergence.pep_problem import PEPProblem, objective_matrix
from unfoldtheory.convergence.psd_bound import TINY, U, lambda_min_lower, norm_up, up


@dataclass(frozen=True)
class MultiplierCheck:
    """Outcome of :func:`check_multipliers`.

    ``tau`` is the certified bound on the *scaled* SDP value (``inf`` when ``ok`` is False);
    ``multipliers`` are the exact rationals that were checked; ``min_pivot`` is the smallest
    ``LDLᵀ`` pivot (exact route) or the smallest computed eigenvalue (float route), ``margin`` the
    rounding margin it had to beat (0 on the exact route).
    """

    ok: bool
    tau: float
    multipliers: list[Fraction] | None
    route: str
    reason: str
    tau_star: float = float("nan")
    tau_increase: float = float("nan")
    min_pivot: float = float("nan")
    margin: float = 0.0
    balance_shift: float = 0.0


def balance_values(problem: PEPProblem, lam: np.ndarray) -> tuple[list[Fraction], float]:
    """Multipliers (exact, ``≥ 0``) meeting ``Σ_p λ_p a_p = c`` exactly, by moving each equation's
    residual onto the rows ``(x*, m)`` / ``(m, x*)``; also the largest change made."""
    q = [Fraction(float(v)) for v in lam]
    scale = Fraction(problem.objective_scale)
    shift = Fraction(0)
    for m in range(problem.n_values):
        column = problem.value_rows[:, m]
        rows = np.nonzero(column)[0]
        residual = Fraction(float(problem.value_objective[m])) / scale - sum(q[p] * Fraction(float(column[p])) for p in rows)
        p_in, p_out = (int(r) for r in problem.star_rows[m])
        c_in, c_out = Fraction(float(column[p_in])), Fraction(float(column[p_out]))  # c_in > 0 > c_out
        before = (q[p_in], q[p_out])
        if residual > 0:  # raise the sum: lower λ_out first, then raise λ_in
            drop = min(q[p_out], residual / -c_out)
            q[p_out] -= drop
            q[p_in] += (residual - drop * -c_out) / c_in
        elif residual < 0:
            drop = min(q[p_in], -residual / c_in)
            q[p_in] -= drop
            q[p_out] += (-residual - drop * c_in) / -c_out
        shift = max(shift, abs(q[p_in] - before[0]), abs(q[p_out] - before[1]))
    return q, float(shift)


def smallest_tau(B: np.ndarray) -> float | None:
    """Float candidate for the smallest ``τ`` with ``B + τe₀e₀ᵀ ⪰ 0`` (None if ``B_rr`` is not PD)."""
    try:
        chol = np.linalg.cholesky(B[1:, 1:])
    except np.linalg.LinAlgError:
        return None
    y = np.linalg.solve(chol, B[1:, 0])
    return float(y @ y - B[0, 0])


def float_dual_matrix(problem: PEPProblem, rows: sp.csr_matrix, lam: np.ndarray, tau: float) -> np.ndarray:
    """``Ŝ(τ, λ)`` in float64 from the row matrix of :func:`~.pep_problem.row_matrix`."""
    d = problem.dim
    S = np.asarray(rows.T @ lam).reshape(d, d)
    S = 0.5 * (S + S.T) - objective_matrix(problem)
    S[0, 0] += tau
    return S


def exact_dual_matrix(problem: PEPProblem, lam: list[Fraction], tau: Fraction) -> list[list[Fraction]]:
    """``S(τ, λ)`` in exact rationals from the exact problem data (sparse accumulation: each row's
    vectors have a handful of nonzero leaves)."""
    if not problem.exact:
        raise ValueError("exact_dual_matrix needs the problem built with exact=True")
    d = problem.dim
    S = [[Fraction(0)] * d for _ in range(d)]
    for b in problem.blocks:
        half = Fraction(b.weight) / 2
        for p in range(b.stop - b.start):
            weight = lam[b.start + p]
            if not weight:
                continue
            a_row, b_row = b.A.val[p], b.B.val[p]
            a_nz = [(i, a_row[i]) for i in range(d) if a_row[i]]
            b_nz = [(j, b_row[j]) for j in range(d) if b_row[j]]
            c = half * weight
            for i, ai in a_nz:
                ci = c * ai
                for j, bj in b_nz:
                    v = ci * bj
                    S[i][j] += v
                    S[j][i] += v
    if problem.obj_vec is not None:
        v = problem.obj_vec.val
        unit = Fraction(problem.objective_scale)
        for i in range(d):
            for j in range(d):
                if v[i] and v[j]:
                    S[i][j] -= v[i] * v[j] / unit
    S[0][0] += tau
    return S


def ldl_min_pivot(S: np.ndarray) -> Fraction:
    """Smallest pivot of the exact ``LDLᵀ`` of a symmetric rational matrix; ``S ≻ 0`` iff all pivots
    are ``> 0`` (Sylvester's criterion). Uses the upper triangle; stops at the first pivot ``≤ 0``."""
    A = [list(row) for row in S]
    n = len(A)
    smallest = A[0][0] if n else Fraction(0)
    for k in range(n):
        pivot = A[k][k]
        smallest = min(smallest, pivot)
        if pivot <= 0:
            return pivot
        row_k = A[k]
        for i in range(k + 1, n):  # Schur complement on the upper triangle: A_ij -= A_ki A_kj / A_kk
            factor = row_k[i] / pivot
            if factor:
                row_i = A[i]
                for j in range(i, n):
                    row_i[j] -= factor * row_k[j]
    return smallest


def rounded_check(S: list[list[Fraction]]) -> tuple[bool, float, float]:
    """``(S ≻ 0 proved, lower bound of λ_min(S), margin)`` for an exact rational ``S``, in float64:
    ``Ŝ`` is ``S`` rounded to nearest, ``‖S − Ŝ‖_F ≤ ‖2u|Ŝ| + 2⁻¹⁰⁷⁴‖_F`` (round-to-nearest, subnormals
    included), and :func:`~unfoldtheory.convergence.psd_bound.lambda_min_lower` bounds ``λ_min``."""
    big = Fraction(np.finfo(float).max)
    if any(abs(v) > big for row in S for v in row):
        return False, -np.inf, np.inf
    S_hat = np.array([[float(v) for v in row] for row in S])
    error = norm_up(2 * U * np.abs(S_hat) + TINY) if S_hat.size else 0.0
    low, margin = lambda_min_lower(S_hat, up(error))
    return bool(low > 0), low, margin


def check_multipliers(problem: PEPProblem, lam: np.ndarray, rows: sp.csr_matrix, exact_problem: PEPProblem,
                      exact_ldl: bool = True, attempts: int = 8) -> MultiplierCheck:
    """The bound that the solver's multipliers ``lam`` prove (see the module docstring).

    ``problem`` is the float64 problem with its row matrix (for the float candidate ``τ*``),
    ``exact_problem`` the same problem built in rationals (the dual matrix is always assembled from
    it); the final check is the exact ``LDLᵀ`` (``exact_ldl``) or the float64 Cholesky residual bound.
    """
    if not exact_problem.exact:
        raise ValueError("exact_problem must be built with exact=True")
    route = "exact LDLᵀ in rationals" if exact_ldl else "float64 Cholesky with a rigorous residual bound (S assembled exactly)"
    lam = np.asarray(lam, dtype=float)
    if lam.shape != (problem.n_rows,):
        raise ValueError(f"got {lam.shape} multipliers; expected ({problem.n_rows},)")
    if not np.all(np.isfinite(lam)):
        return MultiplierCheck(False, np.inf, None, route, "multipliers contain non-finite values")
    q, shift = balance_values(exact_problem, np.maximum(lam, 0.0))
    lam_f = np.array([float(v) for v in q])
    tau_star = smallest_tau(float_dual_matrix(problem, rows, lam_f, 0.0))
    if tau_star is None or not np.isfinite(tau_star):
        return MultiplierCheck(False, np.inf, q, route, "the dual matrix without the initial-condition row is not "
                               "positive definite for these multipliers, so no τ is certified", balance_shift=shift)
    delta = 1e-10 * max(abs(tau_star), 1e-6 * float(np.abs(float_dual_matrix(problem, rows, lam_f, 0.0)).max()))
    base = exact_dual_matrix(exact_problem, q, Fraction(0))
    low, margin = float("nan"), 0.0
    for _ in range(attempts):
        tau_c = float(np.nextafter(tau_star + delta, np.inf))
        S = [row.copy() for row in base]
        S[0][0] += Fraction(tau_c)
        if exact_ldl:
            pivot = ldl_min_pivot(S)
            ok, low = pivot > 0, float(pivot)
        else:
            ok, low, margin = rounded_check(S)
        if ok:
            return MultiplierCheck(True, tau_c, q, route, "S(τ, λ) ≻ 0 verified", tau_star, tau_c - tau_star, low, margin, shift)
        delta *= 8
    return MultiplierCheck(False, np.inf, q, route, f"could not verify S(τ, λ) ≻ 0 up to τ = τ* + {delta / 8:.3g} "
                           f"(smallest pivot/eigenvalue bound {low:.3g}, margin {margin:.3g})", tau_star, np.nan, low, margin,
                           shift)
