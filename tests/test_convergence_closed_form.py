"""Closed-form rates against numerics: spectra on a grid, steps on sampled quadratics (plus ℓ1 for the
proximal step), 2×2 iteration matrices for the momentum methods, and the proof scripts they cite."""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory.convergence import (
    gd_optimal_step,
    gd_rate,
    heavy_ball_polyak,
    heavy_ball_rate,
    nesterov_optimal,
    nesterov_rate,
    nesterov_standard,
    proximal_gradient_rate,
    schedule_rate,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = 1e-12


@st.composite
def classes(draw):
    L = draw(st.floats(0.1, 10.0))
    mu = draw(st.floats(0.0, 0.99)) * L
    return mu, L


def quadratic(rng, n, mu, L):
    """A random symmetric H with spectrum in [mu, L] including both ends (n >= 2)."""
    eig = np.concatenate([[mu, L], rng.uniform(mu, L, n - 2)])
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * eig) @ Q.T


def soft_threshold(v, t):
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)


@settings(max_examples=40)
@given(classes(), st.floats(0.01, 3.0))
def test_gd_rate_is_the_maximum_over_the_spectrum(cls, scale):
    mu, L = cls
    step = scale / L
    grid = np.linspace(mu, L, 2001)
    bound = gd_rate(mu, L, step)
    assert bound.certified and bound.kind == "upper"
    assert np.abs(1 - step * grid).max() <= bound.value * (1 + 1e-12) + TINY  # float grid vs exact rational
    assert bound.value == pytest.approx(np.abs(1 - step * grid).max(), rel=1e-12, abs=TINY)
    assert Fraction(bound.value) >= Fraction(bound.certificate["exact"])  # rounded up, never down


@settings(max_examples=30)
@given(classes(), st.floats(0.01, 3.0))
def test_optimal_step_minimises_the_rate(cls, scale):
    mu, L = cls
    best = gd_rate(mu, L, gd_optimal_step(mu, L)).value
    assert best == pytest.approx((L - mu) / (L + mu), rel=1e-12)  # (κ − 1)/(κ + 1), also for μ = 0
    assert gd_rate(mu, L, scale / L).value >= best * (1 - 1e-12)
    grid = np.linspace(1e-3, 3.0, 300) / L  # a scan of steps finds nothing better
    assert min(gd_rate(mu, L, s).value for s in grid) >= best * (1 - 1e-12)


@settings(max_examples=40)
@given(classes(), st.lists(st.floats(0.05, 2.5), min_size=1, max_size=6), st.integers(2, 6), st.integers(0, 2**32 - 1))
def test_schedule_rate_bounds_gradient_descent_on_quadratics(cls, scales, n, seed):
    mu, L = cls
    steps = np.array(scales) / L
    rng = np.random.default_rng(seed)
    H, x = quadratic(rng, n, mu, L), rng.standard_normal(n)
    x0 = x.copy()
    for g in steps:
        x = x - g * (H @ x)
    bound = schedule_rate(mu, L, steps)
    assert np.linalg.norm(x) <= bound.value * np.linalg.norm(x0) * (1 + 1e-9) + TINY
    if bound.details["tight"]:  # the quadratic at the worst end attains it
        end = mu if np.all(steps <= 2 / (L + mu)) else L
        assert np.prod(np.abs(1 - steps * end)) == pytest.approx(bound.value, rel=1e-9, abs=TINY)


@settings(max_examples=40)
@given(classes(), st.floats(0.05, 2.5), st.floats(0.0, 2.0), st.integers(2, 6), st.integers(0, 2**32 - 1))
def test_proximal_gradient_rate_bounds_lasso_steps(cls, scale, lam, n, seed):
    mu, L = cls
    step = scale / L
    rng = np.random.default_rng(seed)
    H = quadratic(rng, n, mu, L)
    b = rng.standard_normal(n)
    grad = lambda x: H @ x - b  # noqa: E731
    prox_step = lambda x: soft_threshold(x - step * grad(x), step * lam)  # noqa: E731
    x, z = rng.standard_normal(n), rng.standard_normal(n)  # two starting points: the map contracts
    rate = proximal_gradient_rate(mu, L, [step])
    assert rate.value == gd_rate(mu, L, step).value  # the same tight rate
    assert np.linalg.norm(prox_step(x) - prox_step(z)) <= rate.value * np.linalg.norm(x - z) * (1 + 1e-9) + TINY


def test_rate_bounds_name_existing_proofs():
    for bound in (gd_rate(0.1, 1, 1), schedule_rate(0.1, 1, [1, 1.5]), proximal_gradient_rate(0.1, 1, [1])):
        assert (ROOT / bound.certificate["proof"]).is_file()
    for bound in (heavy_ball_rate(0.1, 1, 1, 0.5), nesterov_rate(0.1, 1, 1, 0.5)):
        assert "proofs/momentum_quadratic.py" in bound.method
        assert (ROOT / "proofs/momentum_quadratic.py").is_file()


def test_schedule_on_both_sides_is_flagged_not_tight():
    mu, L = 0.1, 1.0
    assert not schedule_rate(mu, L, [0.5, 1.9]).details["tight"]
    assert schedule_rate(mu, L, [0.5, 1.0]).details["tight"]
    assert schedule_rate(mu, L, [1.9, 1.95]).details["tight"]


def _spectral_radius_grid(mu, L, matrix, num=801):
    return max(np.abs(np.linalg.eigvals(matrix(lam))).max() for lam in np.linspace(mu, L, num))


def _heavy_ball(step, beta):
    return lambda lam: np.array([[1 + beta - step * lam, -beta], [1.0, 0.0]])


def _nesterov(step, beta):
    return lambda lam: np.array([[(1 + beta) * (1 - step * lam), -beta * (1 - step * lam)], [1.0, 0.0]])


@settings(max_examples=30)
@given(classes(), st.floats(0.05, 2.0), st.floats(0.0, 0.99))
def test_momentum_rates_match_the_iteration_matrices(cls, scale, beta):
    mu, L = cls
    step = scale / L
    for rate, matrix in ((heavy_ball_rate, _heavy_ball), (nesterov_rate, _nesterov)):
        bound = rate(mu, L, step, beta)
        grid = _spectral_radius_grid(mu, L, matrix(step, beta))
        # the grid never beats the endpoint formula; near a double root eigvals has sqrt(eps) error
        assert grid <= bound.value + 1e-6
        ends = max(np.abs(np.linalg.eigvals(matrix(step, beta)(lam))).max() for lam in (mu, L))
        assert bound.value == pytest.approx(ends, abs=1e-6)


def test_momentum_tunings_give_the_textbook_rates():
    mu, L = 0.05, 2.0
    kappa = L / mu
    root = np.sqrt(kappa)
    assert heavy_ball_rate(mu, L, *heavy_ball_polyak(mu, L)).value == pytest.approx((root - 1) / (root + 1), abs=1e-7)
    assert nesterov_rate(mu, L, *nesterov_standard(mu, L)).value == pytest.approx(1 - 1 / root, abs=1e-7)
    q = np.sqrt(3 * kappa + 1)
    assert nesterov_rate(mu, L, *nesterov_optimal(mu, L)).value == pytest.approx(1 - 2 / q, abs=1e-7)
    # Polyak's tuning beats Nesterov's, which beats plain gradient descent, on quadratics
    assert (heavy_ball_rate(mu, L, *heavy_ball_polyak(mu, L)).value < nesterov_rate(mu, L, *nesterov_optimal(mu, L)).value
            < gd_rate(mu, L, gd_optimal_step(mu, L)).value)


def test_heavy_ball_rate_is_the_observed_asymptotic_rate():
    mu, L = 0.1, 1.0
    step, beta = heavy_ball_polyak(mu, L)
    rate = heavy_ball_rate(mu, L, step, beta).value
    rng = np.random.default_rng(0)
    H = quadratic(rng, 5, mu, L)
    prev = x = rng.standard_normal(5)
    norms = []
    for _ in range(400):
        prev, x = x, x - step * (H @ x) + beta * (x - prev)
        norms.append(np.linalg.norm(x))
    observed = (norms[-1] / norms[199]) ** (1 / 200)
    assert observed <= rate * 1.02  # a double root adds a polynomial factor k·ρ^k
    assert observed >= rate * 0.95


@pytest.mark.parametrize("call", [
    lambda: gd_rate(1.0, 0.5, 1.0),
    lambda: gd_rate(-0.1, 1.0, 1.0),
    lambda: gd_rate(0.1, 0.0, 1.0),
    lambda: gd_rate(0.1, 1.0, float("nan")),
    lambda: schedule_rate(0.1, 1.0, []),
    lambda: schedule_rate(0.1, 1.0, [[1.0]]),
    lambda: heavy_ball_rate(0.1, 1.0, 1.0, -0.5),
    lambda: nesterov_rate(0.1, 1.0, 0.0, 0.5),
])
def test_bad_input_is_rejected(call):
    with pytest.raises(ValueError):
        call()
