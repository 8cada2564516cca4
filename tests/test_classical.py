"""ISTA/FISTA: against their NetworkSpec, against the closed-form O(1/k) and O(1/k²) guarantees,
and against the closed-form local rate on the support."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory.classical import fista, ista, ista_spec, ista_support_rate
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.reference import lasso
from unfoldtheory.report.baselines import identification_iteration


def _problem(seed, m=12, n=24):
    p = SparseRecovery(m, n, 0.15, lam=0.05, seed=seed)
    Y, _ = p.sample(4, seed=seed)
    return p, Y


def test_ista_equals_its_network_spec():
    p, Y = _problem(0)
    loop = ista(p.A, Y, p.lam, 25)
    spec = ista_spec(p.A, p.lam, layers=25)
    np.testing.assert_allclose(spec.evaluate(Y), loop[-1], atol=1e-12)
    _, states = spec.evaluate(Y, return_states=True)
    for k in range(1, 26):
        np.testing.assert_allclose(states[k], loop[k], atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), K=st.integers(1, 60))
def test_beck_teboulle_rates_hold(seed, K):
    """ISTA: F(x_K) − F* ≤ L‖x_0 − x*‖²/(2K); FISTA: ≤ 2L‖x_0 − x*‖²/(K + 1)² (Beck & Teboulle 2009)."""
    p, Y = _problem(seed)
    ref = lasso(p.A, Y, p.lam, method="certified")
    F_star = ref.objective_lower - ref.duality_gap  # a certified lower bound on F* (up to one rounding)
    R2 = np.sum(ref.x**2, axis=1)
    L = p.L
    F_ista = p.objective(ista(p.A, Y, p.lam, K)[-1], Y)
    F_fista = p.objective(fista(p.A, Y, p.lam, K)[-1], Y)
    assert np.all(F_ista - F_star <= L * R2 / (2 * K) * (1 + 1e-6) + 1e-9)
    assert np.all(F_fista - F_star <= 2 * L * R2 / (K + 1) ** 2 * (1 + 1e-6) + 1e-9)


def test_ista_objective_is_monotone():
    p, Y = _problem(3)
    its = ista(p.A, Y, p.lam, 80)
    F = np.stack([p.objective(x, Y) for x in its])
    assert np.all(np.diff(F, axis=0) <= 1e-12)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_ista_error_obeys_support_rate_after_identification(seed):
    p, Y = _problem(seed, m=16, n=24)
    ref = lasso(p.A, Y, p.lam, method="certified")
    its = ista(p.A, Y, p.lam, 400)
    for i in range(Y.shape[0]):
        k0 = identification_iteration(its[:, i], ref.x[i])
        if k0 is None:
            continue
        rho = ista_support_rate(p.A, ref.x[i])
        err = np.linalg.norm(its[k0:, i] - ref.x[i], axis=1)
        envelope = err[0] * rho ** np.arange(err.size)
        assert np.all(err <= envelope * (1 + 1e-9) + 1e-11)


def test_support_rate_closed_form_cases():
    A = np.eye(5)  # A_SᵀA_S = I and L = 1: ISTA is exact once the support is found
    assert ista_support_rate(A, np.array([1.0, 0, 0, -2.0, 0])) == pytest.approx(0.0, abs=1e-15)
    assert ista_support_rate(A, np.zeros(5)) == 0.0
    B = np.diag([2.0, 1.0])  # L = 4; support {1}: 1 − 1/4
    assert ista_support_rate(B, np.array([0.0, 1.0])) == pytest.approx(0.75)
    assert ista_support_rate(B, np.array([1.0, 1.0]), step=0.5) == pytest.approx(max(abs(1 - 0.5 * 4), abs(1 - 0.5 * 1)))


def test_fista_beats_ista_on_average():
    p, Y = _problem(5, m=20, n=40)
    ref = lasso(p.A, Y, p.lam, method="certified")
    e_ista = np.linalg.norm(ista(p.A, Y, p.lam, 40)[-1] - ref.x)
    e_fista = np.linalg.norm(fista(p.A, Y, p.lam, 40)[-1] - ref.x)
    assert e_fista < e_ista


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda A, Y: ista(A, Y, 0.1, 5, step=3.0 / np.linalg.norm(A, 2) ** 2), "exceeds 2/L"),
        (lambda A, Y: fista(A, Y, 0.1, 5, step=1.5 / np.linalg.norm(A, 2) ** 2), "exceeds 1/L"),
        (lambda A, Y: ista(A, Y[:, :-1], 0.1, 5), "columns; expected m"),
        (lambda A, Y: ista(A, Y, 0.1, 0), "iterations must be a positive integer"),
        (lambda A, Y: ista(A, Y, -0.1, 5), "lam must be >= 0"),
        (lambda A, Y: ista(np.zeros_like(A), Y, 0.1, 5), "A is zero"),
        (lambda A, Y: ista(A, np.full_like(Y, np.nan), 0.1, 5), "non-finite"),
        (lambda A, Y: ista_support_rate(A, np.zeros(3)), "x_star has shape"),
    ],
)
def test_bad_input_is_named(call, match):
    p, Y = _problem(1)
    with pytest.raises(ValueError, match=match):
        call(p.A, Y)
