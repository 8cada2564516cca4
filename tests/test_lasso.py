"""Lasso arithmetic: objective, dual point, duality gap, relative gap.

Weak duality is checked on the unclipped quantities: the dual point must be feasible, its dual value
must not exceed any primal value, and the gap must bound the suboptimality against an accurate
reference. (The exact-arithmetic checks of the certificate are in tests/test_oracle_lasso.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from unfoldtheory.lasso import certified_gap, dual_point, duality_gap, lasso_objective, relative_gap
from unfoldtheory.reference import lasso

# Entries are 0 or of magnitude ≥ 1e-8 (the tiny and huge ones are in tests/test_oracle_lasso.py).
_MAG = st.floats(1e-8, 10.0)
ENTRY = st.one_of(st.just(0.0), _MAG, _MAG.map(lambda v: -v), st.integers(-3, 3).map(float))


def _objective_by_hand(A, x, y, lam):
    r = A @ x - y
    return 0.5 * float(r @ r) + lam * float(np.abs(x).sum())


def _dual_value_by_hand(y, u):
    """D(u) = ½‖y‖² − ½‖y − u‖², written as ⟨y, u⟩ − ½‖u‖² (an equivalent, independent form)."""
    return float(y @ u) - 0.5 * float(u @ u)


def _soft(v, t):
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)


@st.composite
def problems(draw, max_m=8, max_n=10, batch=3):
    m = draw(st.integers(1, max_m))
    n = draw(st.integers(1, max_n))
    b = draw(st.integers(1, batch))
    A = draw(hnp.arrays(np.float64, (m, n), elements=ENTRY))
    Y = draw(hnp.arrays(np.float64, (b, m), elements=ENTRY))
    X = draw(hnp.arrays(np.float64, (b, n), elements=ENTRY))
    lam = draw(st.floats(1e-3, 50.0))
    return A, X, Y, lam


@settings(max_examples=60, deadline=None)
@given(problems())
def test_objective_matches_independent_formula(prob):
    A, X, Y, lam = prob
    P = lasso_objective(A, X, Y, lam)
    assert P.shape == (X.shape[0],)
    for i in range(X.shape[0]):
        assert P[i] == pytest.approx(_objective_by_hand(A, X[i], Y[i], lam), rel=1e-10, abs=1e-10)


@settings(max_examples=60, deadline=None)
@given(problems())
def test_weak_duality_for_arbitrary_x(prob):
    A, X, Y, lam = prob
    U = dual_point(A, X, Y, lam)
    gap, primal = duality_gap(A, X, Y, lam)
    assert U.shape == Y.shape
    assert np.all(gap >= 0)
    for i in range(X.shape[0]):
        # dual feasibility ‖Aᵀu‖∞ ≤ λ, recomputed here (rounding allowance far below the 1e-13 shrink
        # when the correlations are not the result of massive cancellation)
        scale = np.abs(A).T @ np.abs(U[i])
        assert np.all(np.abs(A.T @ U[i]) <= lam + 1e-14 * scale.max(initial=0.0))
        # the unclipped gap P(x) − D(u) is nonnegative: D(u) is below every primal value
        P = _objective_by_hand(A, X[i], Y[i], lam)
        D = _dual_value_by_hand(Y[i], U[i])
        size = 1.0 + float(Y[i] @ Y[i]) + P
        assert D <= P + 1e-12 * size
        assert D <= _objective_by_hand(A, np.zeros(A.shape[1]), Y[i], lam) + 1e-12 * size
        # and the reported gap is that difference up to rounding: never below it (the bound is rigorous), and
        # above it by no more than the float64 evaluation error of P − D itself
        assert gap[i] >= P - D - 1e-12 * size
        assert gap[i] == pytest.approx(max(P - D, 0.0), rel=1e-9, abs=1e-11 * size)
        assert primal[i] == pytest.approx(P, rel=1e-10, abs=1e-10)


@settings(max_examples=20, deadline=None)
@given(data=st.data(), m=st.integers(1, 8), n=st.integers(1, 12), seed=st.integers(0, 2**20),
       lam_frac=st.floats(0.05, 1.5), spread=st.sampled_from([0.0, 1e-6, 1e-3, 1e-1, 1.0, 10.0]))
def test_gap_bounds_suboptimality_against_accurate_reference(data, m, n, seed, lam_frac, spread):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n))
    y = rng.standard_normal(m)
    lam = lam_frac * max(np.abs(A.T @ y).max(), 1e-3)
    # two independent references; P* ≤ the better of the two, and at least one of them is accurate
    ref = lasso(A, y, lam, method="certified", progress=False)
    cv = lasso(A, y, lam, method="cvxpy", progress=False)
    best = ref if ref.objective[0] <= cv.objective[0] else cv
    assert best.relative_gap[0] <= 1e-7
    x_star = best.x[0]
    P_star = best.objective[0]
    # arbitrary points at various distances from the optimum, including exactly sparse ones
    noise = data.draw(hnp.arrays(np.float64, (4, n), elements=st.floats(-1, 1)), label="noise")
    X = x_star + spread * noise
    X[0] = 0.0
    X[1] = _soft(X[1], 0.5 * spread)
    gap, primal = duality_gap(A, X, np.tile(y, (4, 1)), lam)
    slack = 1e-12 * (1.0 + primal)
    assert np.all(gap + slack >= primal - P_star)
    assert np.all(primal >= P_star - best.duality_gap[0] - slack)


@pytest.mark.parametrize("shape", [(6, 6), (9, 4), (30, 12), (3, 1)])
@pytest.mark.parametrize("lam", [1e-3, 0.3, 2.0])
def test_gap_vanishes_at_closed_form_solution(shape, lam):
    """Orthonormal columns: ½‖Ax − y‖² = ½‖x − Aᵀy‖² + const, so x* = ST_λ(Aᵀy) exactly."""
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    m, n = shape
    A = np.eye(m) if m == n else np.linalg.qr(rng.standard_normal((m, n)))[0]
    Y = 2 * rng.standard_normal((5, m))
    X = _soft(Y @ A, lam)
    gap, primal = duality_gap(A, X, Y, lam)
    np.testing.assert_array_less(gap, 1e-12 * (1 + primal))
    rel = relative_gap(gap, primal)
    assert np.all(rel <= 1e-12)
    # moving off the solution makes the gap grow by at least the suboptimality, which for
    # orthonormal columns is at least ½‖δ‖² (strong convexity)
    delta = 1e-2 * rng.standard_normal(X.shape)
    gap2, primal2 = duality_gap(A, X + delta, Y, lam)
    assert np.all(primal2 - primal >= 0.5 * (delta * delta).sum(axis=1) - 1e-12 * (1 + primal))
    assert np.all(gap2 >= primal2 - primal - 1e-12 * (1 + primal))


def test_zero_is_optimal_when_lambda_dominates_correlations():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((7, 12))
    Y = rng.standard_normal((4, 7))
    lam = 1.01 * np.abs(Y @ A).max()
    X = np.zeros((4, 12))
    gap, primal = duality_gap(A, X, Y, lam)
    np.testing.assert_allclose(primal, 0.5 * (Y * Y).sum(axis=1), rtol=1e-14)
    assert np.all(relative_gap(gap, primal) <= 1e-12)
    # a tiny bit of λ below the largest correlation: x = 0 is no longer optimal and the gap says so
    lam2 = 0.5 * np.abs(Y @ A).max(axis=1).min()
    gap2, primal2 = duality_gap(A, X, Y, lam2)
    assert np.all(relative_gap(gap2, primal2) > 1e-6)


def test_zero_matrix_and_zero_data():
    A = np.zeros((4, 5))
    Y = np.array([[1.0, -2.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.0]])
    X = np.zeros((2, 5))
    gap, primal = duality_gap(A, X, Y, 0.7)
    np.testing.assert_allclose(primal, [0.5 * 14.25, 0.0], rtol=1e-15)
    assert gap[1] == 0.0 and gap[0] <= 1e-12 * primal[0]
    np.testing.assert_array_equal(relative_gap(gap, primal)[1], 0.0)
    U = dual_point(A, X, Y, 0.7)
    assert np.all(np.isfinite(U))


def test_relative_gap_formula():
    """gap / P̲ rounded up (an upper bound on the exact ratio, at most one float above it); 0 for a zero gap."""
    from fractions import Fraction

    gap = np.array([0.0, 1e-3, 2.0, 0.0, 1e-300, 3.0])
    lower = np.array([0.0, 10.0, 4.0, 3.0, 1e300, 0.0])
    rel = relative_gap(gap, lower)
    np.testing.assert_array_equal(rel[[0, 3]], 0.0)
    for i in (1, 2, 4):
        assert Fraction(float(rel[i])) >= Fraction(float(gap[i])) / Fraction(float(lower[i]))
        assert rel[i] <= np.nextafter(np.nextafter(gap[i] / lower[i], np.inf), np.inf)
    assert rel[4] > 0  # the quotient underflows; the upward rounding keeps it a bound
    assert rel[5] == np.inf  # a positive gap over P̲ = 0 bounds nothing
    assert np.all(np.isinf(relative_gap(np.array([np.inf, 1.0, np.nan]), np.array([1.0, np.nan, 1.0]))))


def test_tiny_correlations_do_not_warn():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        gap, primal = duality_gap(np.array([[1e-150]]), np.zeros((1, 1)), np.array([[1e-150]]), 1e10)
    assert gap[0] <= 1e-12 * primal[0]


def test_gap_is_not_clipped_when_the_objective_is_of_the_order_of_eps_y2():
    """Regression (issue 12, defect 3): with y = A x₀ and λ = 1.5e-16, P(x) ~ ε‖y‖², and the old dual value
    ½‖y‖² − ½‖y − u‖² cancelled to noise, so that max(P − D, 0) could give 0 for a point far from optimal. The
    cancellation-free gap bounds the exact P(x) − D(u), and so the exact excess over x₀, from above."""
    from fractions import Fraction

    from unfoldtheory.oracle.lasso import check_lasso_certificate

    rng = np.random.default_rng(4)
    A = rng.standard_normal((5, 12))
    A /= np.linalg.norm(A, axis=0)
    x0 = np.zeros(12)
    x0[[1, 5, 9]] = [1.0, -0.7, 0.4]
    y = A @ x0
    lam = 1.5e-16
    from scipy.optimize import linprog

    bp = linprog(np.ones(24), A_eq=np.hstack([A, -A]), b_eq=y, bounds=(0, None), method="highs").x
    x_bp = bp[:12] - bp[12:]  # basis pursuit: min ‖z‖₁ s.t. Az = y, nearly optimal for the Lasso at this λ
    null = np.linalg.svd(A)[2][-1]
    x = x_bp + 0.3 * null  # Ax = y still (to rounding), ‖x‖₁ larger: far from optimal
    cert = certified_gap(A, x[None], y[None], lam)
    verdict = check_lasso_certificate(A, y, lam, x, cert.dual[0], float(cert.gap[0]))
    assert verdict.holds
    exact_gap = verdict.primal - verdict.dual
    assert exact_gap > 0 and Fraction(float(cert.gap[0])) >= exact_gap
    # and x is far from optimal: its exact objective exceeds that of x_bp (an upper bound on min P) by > 10 %
    from unfoldtheory.oracle.rational import matrix, matvec, squared_norm, vector

    def exact_P(z):
        r = [a - b for a, b in zip(matvec(matrix(A), vector(z)), vector(y), strict=True)]
        return squared_norm(r) / 2 + Fraction(lam) * sum((abs(v) for v in vector(z)), Fraction(0))

    excess = exact_P(x) - exact_P(x_bp)
    assert excess > exact_P(x_bp) / 10
    assert Fraction(float(cert.gap[0])) >= excess
    assert cert.relative[0] > 0.05  # so no solver can call it optimal


def test_certified_gap_fields_and_input_checks():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((3, 4))
    X, Y = rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
    cert = certified_gap(A, X, Y, 0.4)
    assert cert.gap.shape == cert.primal.shape == cert.primal_lower.shape == cert.relative.shape == (2,)
    assert cert.dual.shape == (2, 3) and cert.resolution.shape == cert.relative_resolution.shape == (2,)
    assert np.all(cert.primal_lower <= cert.primal) and np.all(cert.gap >= 0)
    np.testing.assert_array_equal(dual_point(A, X, Y, 0.4), cert.dual)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lam"):
            certified_gap(A, X, Y, bad)
    # a non-finite point cannot be certified: infinite gap, u = 0 (still feasible)
    X[1, 2] = np.inf
    cert = certified_gap(A, X, Y, 0.4)
    assert np.isinf(cert.gap[1]) and np.all(cert.dual[1] == 0) and np.isfinite(cert.gap[0])
