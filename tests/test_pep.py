"""PEP worst cases: against PEPit (solver against solver), against closed forms and the literature's
tight rates, against sampled instances (no run ever beats a certified bound), and the multiplier
check against tampering."""

import functools
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory.convergence import gd_rate, pep_rate, pep_rate_of, schedule_rate
from unfoldtheory.convergence import pep as pep_module
from unfoldtheory.convergence.pep_certificate import balance_values, check_multipliers
from unfoldtheory.convergence.pep_problem import build_problem, row_matrix
from unfoldtheory.convergence.pep_reference import pepit_rate
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.unfold import ALISTA, UnfoldedFISTA, UnfoldedISTA
from unfoldtheory.unfold.learned_hyperparameters import fista_momentum

pytest.importorskip("PEPit")

REL = 1e-5
#: (method, metric, steps in units of 1/L, mu, L, momentum); at least ten, several K, μ/L and metrics
CONFIGS = [
    ("gradient", "distance", [1.0], 0.1, 1.0, None),
    ("gradient", "distance", [0.5, 1.9, 1.2], 0.05, 2.0, None),
    ("gradient", "function_value", [1.0, 1.0, 1.0, 1.0], 0.0, 1.0, None),
    ("gradient", "function_value", [1.5, 0.3, 1.1], 0.2, 3.0, None),
    ("gradient", "gradient_norm", [1.0, 1.6], 0.0, 1.0, None),
    ("proximal_gradient", "distance", [1.0, 1.0], 0.1, 1.0, None),
    ("proximal_gradient", "distance", [1.8, 0.4, 1.2], 0.3, 1.0, None),
    ("proximal_gradient", "function_value", [1.0, 1.0, 1.0], 0.0, 2.0, None),
    ("proximal_gradient", "function_value", [0.7, 1.7], 0.1, 1.0, None),
    ("accelerated", "function_value", [1.0, 1.0, 1.0, 1.0], 0.0, 1.0, "fista"),
    ("accelerated", "distance", [1.0, 1.0, 1.0], 0.1, 1.0, [0.5, 0.7]),
    ("accelerated", "gradient_norm", [0.8, 1.2, 1.0], 0.05, 1.0, [0.3, 0.9]),
]


def _momentum(spec, K):
    return fista_momentum(K) if spec == "fista" else spec


def _pepit_units(bound):
    """The value in PEPit's normalisation: the squared ratio for the distance (pep_rate reports its square root)."""
    return bound.details["squared"] if bound.details["metric"] == "distance" else bound.value


@pytest.mark.parametrize(("method", "metric", "units", "mu", "L", "momentum"), CONFIGS)
def test_agrees_with_pepit(method, metric, units, mu, L, momentum):
    steps = np.array(units) / L
    mom = _momentum(momentum, len(steps))
    ours = pep_rate(steps, mu, L, method, mom, metric)
    theirs, _, status = pepit_rate(steps, mu, L, method, mom, metric, tolerance=1e-8)
    assert ours.certified, ours.details
    assert status.startswith("optimal")
    assert _pepit_units(ours) == pytest.approx(theirs, rel=REL)
    if metric == "distance":  # the unsquared rate ‖x_K − x*‖/‖x_0 − x*‖, rounded up from the certified square
        assert ours.value == pytest.approx(np.sqrt(theirs), rel=REL) and ours.value**2 >= ours.details["squared"]
    assert ours.details["lower"] <= ours.value * (1 + 1e-6)  # the primal value is below the certified one


@pytest.mark.slow
@pytest.mark.parametrize(("method", "metric", "K"), [("gradient", "distance", 12), ("proximal_gradient", "function_value", 8),
                                                     ("accelerated", "function_value", 10), ("gradient", "gradient_norm", 15)])
def test_agrees_with_pepit_longer(method, metric, K):
    rng = np.random.default_rng(K)
    steps = rng.uniform(0.3, 1.8, K)
    mom = fista_momentum(K) if method == "accelerated" else None
    ours = pep_rate(steps, 0.05, 1.0, method, mom, metric)
    theirs, _, _ = pepit_rate(steps, 0.05, 1.0, method, mom, metric)
    assert ours.certified
    assert _pepit_units(ours) == pytest.approx(theirs, rel=REL)


# ------------------------------------------------------------------ closed forms and the literature


@pytest.mark.parametrize("method", ["gradient", "proximal_gradient"])
@pytest.mark.parametrize("units", [0.3, 1.0, 1.6, 1.95])
def test_one_step_is_the_closed_form_rate(method, units):
    mu, L = 0.2, 1.5  # one convention: both are the unsquared rate ‖x_1 − x*‖/‖x_0 − x*‖
    bound = pep_rate([units / L], mu, L, method)
    assert bound.certified
    assert bound.value == pytest.approx(gd_rate(mu, L, units / L).value, rel=1e-7)
    assert bound.details["squared"] == pytest.approx(gd_rate(mu, L, units / L).value ** 2, rel=1e-7)


def test_schedule_product_is_exact_on_one_side_and_an_upper_bound_otherwise():
    mu, L = 0.1, 1.0
    short = np.array([0.4, 1.0, 1.7]) / L  # all below 2/(L + μ) ≈ 1.82
    assert pep_rate(short, mu, L).value == pytest.approx(schedule_rate(mu, L, short).value, rel=1e-7)
    mixed = np.array([0.4, 1.95, 1.0, 1.98]) / L
    exact, product = pep_rate(mixed, mu, L).value, schedule_rate(mu, L, mixed).value
    assert exact <= product * (1 + 1e-7)
    assert exact < product * 0.999  # different curvatures at different iterates do not all line up


@pytest.mark.parametrize(("mu", "units", "K"), [(0.95, 1.0, 6), (0.5, 1e-3, 5), (0.1, 1.0, 8), (0.3, 0.05, 4)])
def test_extreme_contraction_and_tiny_steps_keep_full_accuracy(mu, units, K):
    # strong contraction (‖x_K − x*‖² = 0.05^12) and barely moving steps (γL = 1e-3) are the two
    # cancellation regimes the leaf plan and the row scaling are there for; all steps are short
    steps = np.full(K, units)
    bound = pep_rate(steps, mu, 1.0)
    assert bound.certified
    assert bound.value == pytest.approx(schedule_rate(mu, 1.0, steps).value, rel=1e-6)


@pytest.mark.parametrize("K", [1, 3, 6])
def test_gradient_descent_function_value_is_drori_teboulle(K):
    L = 2.0  # Drori & Teboulle 2014: f(x_K) − f* ≤ L‖x_0 − x*‖²/(4K + 2) for γ = 1/L, tight
    bound = pep_rate(np.full(K, 1 / L), 0.0, L, metric="function_value")
    assert bound.value == pytest.approx(L / (4 * K + 2), rel=1e-6)


@pytest.mark.parametrize("K", [1, 3, 5])
def test_proximal_gradient_function_value_is_taylor_hendrickx_glineur(K):
    L = 3.0  # Taylor, Hendrickx & Glineur 2018: F(x_K) − F* ≤ L‖x_0 − x*‖²/(4K) for γ = 1/L, tight
    bound = pep_rate(np.full(K, 1 / L), 0.0, L, "proximal_gradient", metric="function_value")
    assert bound.value == pytest.approx(L / (4 * K), rel=1e-6)


# ------------------------------------------------------------------ sampled instances never beat the bound


@functools.cache
def _certified(method, metric, units, mu, L):
    steps = np.array(units) / L
    mom = fista_momentum(len(units)) if method == "accelerated" else None
    bound = pep_rate(steps, mu, L, method, mom, metric)
    assert bound.certified
    return bound.value, steps, mom


SCHEDULES = [(1.0, 1.0, 1.0), (0.5, 1.9, 1.3), (1.8, 1.8), (0.2, 1.0, 1.5, 1.99)]
CLASSES = [(0.0, 1.0), (0.1, 1.0), (0.5, 2.0)]


def _smooth_function(rng, n, mu, L, kind):
    """``f`` with minimiser ``x_star``: a quadratic with spectrum in [μ, L] (ends included) or
    ``μ/2‖d‖² + (L − μ)Σ_i huber(u_iᵀd)`` with orthonormal u_i (Hessian between μI and LI)."""
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    if kind == "quadratic":
        eig = np.concatenate([[mu, L], rng.uniform(mu, L, n)])[:n]
        H = (Q * eig) @ Q.T
        return (lambda d: 0.5 * d @ H @ d), (lambda d: H @ d)
    delta = rng.uniform(0.05, 1.0)
    huber = lambda t: np.where(np.abs(t) <= delta, 0.5 * t**2, delta * (np.abs(t) - 0.5 * delta))  # noqa: E731
    clip = lambda t: np.clip(t, -delta, delta)  # noqa: E731
    return ((lambda d: 0.5 * mu * d @ d + (L - mu) * huber(Q.T @ d).sum()),
            (lambda d: mu * d + (L - mu) * (Q @ clip(Q.T @ d))))


def _run(method, steps, mom, f, grad, x0, prox=None):
    x = y = x0
    for k, g in enumerate(steps):
        x_new = y - g * grad(y)
        if prox is not None:
            x_new = prox(x_new, g)
        if method == "accelerated" and k + 1 < len(steps):
            y = x_new + mom[k] * (x_new - x)
        else:
            y = x_new
        x = x_new
    return x


@settings(max_examples=60)
@given(st.sampled_from(["gradient", "accelerated"]), st.sampled_from(["distance", "function_value", "gradient_norm"]),
       st.sampled_from(SCHEDULES), st.sampled_from(CLASSES), st.sampled_from(["quadratic", "huber"]),
       st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_no_smooth_instance_exceeds_the_certified_bound(method, metric, units, cls, kind, n, seed):
    mu, L = cls
    value, steps, mom = _certified(method, metric, units, mu, L)
    rng = np.random.default_rng(seed)
    f, grad = _smooth_function(rng, n, mu, L, kind)
    x_star = rng.standard_normal(n)
    x0 = x_star + rng.standard_normal(n)
    xK = _run(method, steps, mom, lambda x: f(x - x_star), lambda x: grad(x - x_star), x0)
    start = np.sum((x0 - x_star) ** 2)
    measured = {"distance": np.sqrt(np.sum((xK - x_star) ** 2) / start), "function_value": f(xK - x_star) / start,
                "gradient_norm": np.sum(grad(xK - x_star) ** 2) / start}[metric]
    assert measured <= value * (1 + 1e-9) + 1e-15


def soft_threshold(v, t):
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)


@settings(max_examples=50)
@given(st.sampled_from(["distance", "function_value"]), st.sampled_from(SCHEDULES), st.sampled_from(CLASSES),
       st.floats(0.0, 2.0), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_no_lasso_instance_exceeds_the_certified_proximal_bound(metric, units, cls, lam, n, seed):
    mu, L = cls
    value, steps, _ = _certified("proximal_gradient", metric, units, mu, L)
    rng = np.random.default_rng(seed)
    # f = ½(x − c)ᵀH(x − c) with H(x* − c) = −s*, s* ∈ λ∂‖x*‖₁, so x* minimises f + λ‖·‖₁
    eig = np.concatenate([[max(mu, 1e-3 * L), L], rng.uniform(max(mu, 1e-3 * L), L, n)])[:n]
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    H = (Q * eig) @ Q.T
    x_star = rng.standard_normal(n) * (rng.random(n) < 0.5)
    s_star = np.where(x_star != 0, lam * np.sign(x_star), rng.uniform(-lam, lam, n))
    c = x_star + np.linalg.solve(H, s_star)
    F = lambda x: 0.5 * (x - c) @ H @ (x - c) + lam * np.abs(x).sum()  # noqa: E731
    x0 = x_star + rng.standard_normal(n)
    xK = _run("proximal_gradient", steps, None, F, lambda x: H @ (x - c), x0, lambda v, g: soft_threshold(v, g * lam))
    start = np.sum((x0 - x_star) ** 2)
    measured = np.sqrt(np.sum((xK - x_star) ** 2) / start) if metric == "distance" else (F(xK) - F(x_star)) / start
    assert measured <= value * (1 + 1e-9) + 1e-12


def test_the_worst_quadratic_attains_the_bound():
    mu, L = 0.1, 1.0
    steps = np.array([0.5, 1.0, 1.5])  # all short: the worst case is λ = μ
    x = 1.0
    for g in steps:
        x *= 1 - g * mu
    assert pep_rate(steps, mu, L).value == pytest.approx(abs(x), rel=1e-7)


# ------------------------------------------------------------------ the certificate


def _solved(method="gradient", metric="distance", steps=(1.0, 1.5), mu=0.1, L=1.0):
    problem = build_problem(method, np.array(steps), mu, L, np.zeros(0), metric, exact=False)
    rows = row_matrix(problem)
    solution = pep_module._solve(problem, rows, 1e-8)
    return problem, rows, solution


def _exact(problem, steps=(1.0, 1.5), mu=0.1, L=1.0):
    return build_problem(problem.labels["method"], np.array(steps), mu, L, np.zeros(0), problem.labels["metric"], exact=True,
                         units=problem.units, row_scale=problem.row_scale)


def test_exact_and_float_routes_agree():
    steps = np.array([0.7, 1.4, 1.1]) / 1.5
    exact = pep_rate(steps, 0.2, 1.5, "proximal_gradient", metric="function_value")
    floating = pep_rate(steps, 0.2, 1.5, "proximal_gradient", metric="function_value", exact_max_dim=0)
    assert exact.certified and floating.certified
    assert exact.details["check_route"].startswith("exact") and floating.details["check_route"].startswith("float64")
    assert exact.value == pytest.approx(floating.value, rel=1e-9)
    assert floating.details["margin"] > 0


def test_equalities_are_repaired_exactly_and_keep_multipliers_nonnegative():
    problem, _, solution = _solved("proximal_gradient", "function_value")
    rng = np.random.default_rng(0)
    noisy = np.maximum(solution.multipliers * (1 + 1e-3 * rng.standard_normal(problem.n_rows)), 0)
    q, shift = balance_values(problem, noisy)
    assert shift > 0 and all(v >= 0 for v in q)
    scale = Fraction(problem.objective_scale)
    for m in range(problem.n_values):
        total = sum(q[p] * Fraction(float(problem.value_rows[p, m])) for p in range(problem.n_rows))
        assert total == Fraction(float(problem.value_objective[m])) / scale


def test_tampered_multipliers_never_certify_a_smaller_value():
    problem, rows, solution = _solved()
    truth = gd_rate(0.1, 1.0, 1.0).value ** 2 * gd_rate(0.1, 1.0, 1.5).value ** 2
    exact = _exact(problem)
    honest = check_multipliers(problem, solution.multipliers, rows, exact)
    assert honest.ok and honest.tau * problem.objective_scale == pytest.approx(truth, rel=1e-7)
    rng = np.random.default_rng(1)
    for factor in (0.5, 2.0, None):
        lam = solution.multipliers * factor if factor else solution.multipliers * rng.uniform(0, 2, problem.n_rows)
        check = check_multipliers(problem, lam, rows, exact, exact_ldl=factor is None)
        assert not check.ok or check.tau * problem.objective_scale >= truth * (1 - 1e-9)
    zero = check_multipliers(problem, np.zeros(problem.n_rows), rows, exact)
    assert not zero.ok and "not positive definite" in zero.reason
    bad = check_multipliers(problem, np.full(problem.n_rows, np.nan), rows, exact)
    assert not bad.ok


def test_a_non_optimal_status_is_never_certified(monkeypatch):
    real = pep_module._solve

    def inaccurate(problem, rows, tolerance):
        solution = real(problem, rows, tolerance)
        return pep_module._Solution("optimal_inaccurate", solution.primal, solution.dual, solution.multipliers, tolerance)

    monkeypatch.setattr(pep_module, "_solve", inaccurate)
    bound = pep_rate([1.0, 1.0], 0.1, 1.0)
    assert not bound.certified and bound.certificate is None
    assert "optimal_inaccurate" in bound.details["reason"]
    assert bound.details["tolerance"] == pep_module.TOLERANCES[-1]  # every tolerance was tried


# ------------------------------------------------------------------ unfolded models


def _problem(m=12, n=24, seed=0):
    return SparseRecovery(m, n, 0.2, seed=seed)


def test_pep_rate_of_unfolded_ista_matches_pep_rate():
    p = _problem()
    model = UnfoldedISTA(p.A, 4, p.lam)
    with torch.no_grad():
        for k, g in enumerate(model.step):
            g.mul_(1.0 + 0.2 * k)
    rates = pep_rate_of(model)
    assert rates.metric == "function_value" and rates.mu == 0.0  # n > m: AᵀA is singular
    assert rates.L >= model.L
    direct = pep_rate(rates.steps, rates.mu, rates.L, "proximal_gradient", metric="function_value")
    assert rates.learned.certified and rates.classical.certified
    assert rates.learned.value == pytest.approx(direct.value, rel=1e-9)
    assert rates.classical_step == pytest.approx(1 / model.L)
    assert rates.ratio == pytest.approx(rates.learned.value / rates.classical.value)
    assert "proximal gradient" in rates.learned.details["certifies"]


def test_untrained_unfolded_ista_is_ista():
    p = _problem()
    rates = pep_rate_of(UnfoldedISTA(p.A, 3, p.lam))
    assert rates.learned.value == pytest.approx(rates.classical.value, rel=1e-9)
    assert rates.classical.value == pytest.approx(rates.L / (4 * 3), rel=1e-6)  # ISTA's tight rate L/(4K)


def test_tall_matrix_defaults_to_distance():
    p = _problem(m=24, n=10)
    rates = pep_rate_of(UnfoldedISTA(p.A, 3, p.lam))
    assert rates.mu > 0 and rates.metric == "distance"
    assert rates.mu <= np.linalg.eigvalsh(p.A.T @ p.A)[0]
    assert rates.learned.value < 1


def test_alista_schedule_is_certified_as_proximal_gradient_steps():
    p = _problem()
    model = ALISTA(p.A, 3, p.lam)
    rates = pep_rate_of(model)
    assert "not covered" in rates.certifies and "ALISTA" in rates.certifies
    assert np.allclose(rates.steps, [float(g.detach()) for g in model.step])
    assert rates.learned.certified


def test_pep_rate_of_rejects_unsupported_models_and_bad_steps():
    p = _problem()
    with pytest.raises(ValueError, match=r"FISTA.*no PEP"):  # detected, but pep_rate has no accelerated prox
        pep_rate_of(UnfoldedFISTA(p.A, 3, p.lam))
    model = UnfoldedISTA(p.A, 3, p.lam)
    with torch.no_grad():
        model.step[1].fill_(-0.1)
    with pytest.raises(ValueError, match=r"layer 2.*step -0\.1"):  # spec layers are 1-based: step[1] is layer 2
        pep_rate_of(model)
    with pytest.raises(ValueError, match="gradient_norm"):
        pep_rate_of(UnfoldedISTA(p.A, 3, p.lam), metric="gradient_norm")


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"steps": [1.0], "mu": 1.0, "L": 1.0}, "mu must be < L"),
    ({"steps": [1.0], "mu": -0.1, "L": 1.0}, "mu"),
    ({"steps": [], "mu": 0.1, "L": 1.0}, "empty"),
    ({"steps": [1.0, -1.0], "mu": 0.1, "L": 1.0}, r"steps\[1\]"),
    ({"steps": [1.0, np.inf], "mu": 0.1, "L": 1.0}, r"steps has a non-finite entry at index \(1,\) \(inf\)"),
    ({"steps": [1.0], "mu": 0.1, "L": 1.0, "method": "newton"}, "method"),
    ({"steps": [1.0], "mu": 0.1, "L": 1.0, "metric": "iterate"}, "metric"),
    ({"steps": [1.0], "mu": 0.1, "L": 1.0, "method": "proximal_gradient", "metric": "gradient_norm"}, "not applicable"),
    ({"steps": [1.0], "mu": 0.1, "L": 1.0, "momentum": [0.5]}, "only used"),
    ({"steps": [1.0, 1.0, 1.0], "mu": 0.1, "L": 1.0, "method": "accelerated", "momentum": [0.5]}, "K − 1"),
])
def test_bad_input_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pep_rate(**kwargs)
