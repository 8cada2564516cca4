"""Measured per-layer errors, fitted linear rates and the envelope figure.

Routes compared: the fitted rate of ISTA against its closed-form local rate on the support; a fitted
rate against the exact rate of synthetic geometric errors; errors to the truth against errors to the
reference through the triangle inequality; cvxpy against the certified reference; the torch model
against the numpy iteration.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory.classical import ista_support_rate
from unfoldtheory.convergence.coherence import alista_rate_bound, generalized_coherence
from unfoldtheory.convergence.empirical import error_trace, fit_linear_rate, layer_iterates
from unfoldtheory.convergence.envelope import envelope_figure
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.results import Bound
from unfoldtheory.unfold import UnfoldedISTA


@settings(max_examples=30)
@given(rate=st.floats(0.05, 0.99), K=st.integers(3, 30), scales=st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=5))
def test_exact_geometric_errors_give_their_rate(rate, K, scales):
    E = np.array(scales)[None, :] * rate ** np.arange(1, K + 1)[:, None]
    for method in ("t", "bootstrap") if len(scales) > 1 else ("t",):
        bound = fit_linear_rate(E, method=method)
        assert bound.kind == "estimate" and not bound.certified
        assert math.isclose(bound.value, rate, rel_tol=1e-9)
        lo, hi = bound.details["ci"]
        assert lo <= bound.value * (1 + 1e-12) and bound.value <= hi * (1 + 1e-12)
        assert hi - lo < 1e-6


def test_noisy_rates_are_covered_by_both_intervals():
    rng = np.random.default_rng(0)
    rate, K, batch = 0.8, 15, 40
    E = rate ** np.arange(1, K + 1)[:, None] * np.exp(0.3 * rng.standard_normal((K, batch)))
    t_fit = fit_linear_rate(E, method="t")
    boot = fit_linear_rate(E, method="bootstrap", resamples=500, seed=1)
    assert t_fit.value == boot.value  # the same point estimate, two intervals
    for fit in (t_fit, boot):
        lo, hi = fit.details["ci"]
        assert lo < rate < hi and lo < fit.value < hi
    narrow = fit_linear_rate(E, method="t", level=0.5).details["ci"]
    assert narrow[0] > t_fit.details["ci"][0] and narrow[1] < t_fit.details["ci"][1]


def test_ista_fitted_rate_matches_the_closed_form_support_rate():
    # Once ISTA has found the support S of the Lasso solution it is e⁺ = (I − A_SᵀA_S/L)e, whose rate
    # is ρ_S = 1 − λ_min(A_SᵀA_S)/L (classical.ista_support_rate): closed form against numerics.
    problem = SparseRecovery(30, 40, 0.1, seed=5)
    Y, X = problem.sample(1, seed=0)
    trace = error_trace("ista", Y, X, A=problem.A, lam=problem.lam, layers=300)
    assert trace.reference is not None and trace.reference.all_optimal
    rho = ista_support_rate(problem.A, trace.reference.x[0])
    e = trace.to_reference[:, 0]
    window = np.flatnonzero((e < 1e-4) & (e > 1e-11)) + 1
    fit = fit_linear_rate(e, start=int(window.min()), stop=int(window.max()))
    assert abs(fit.value - rho) < 1e-4
    assert fit.details["ci"][0] < fit.details["ci"][1] < 1


def test_traces_agree_across_routes():
    problem = SparseRecovery(12, 20, 0.2, seed=2)
    Y, X = problem.sample(5, seed=1)
    model = UnfoldedISTA(problem.A, 6, problem.lam)  # at initialisation it is ISTA
    certified = error_trace(model, Y, X)
    by_cvxpy = error_trace(model, Y, X, reference="cvxpy", progress=False)
    classical = error_trace("ista", Y, X, A=problem.A, lam=problem.lam, layers=6)
    assert certified.to_truth.shape == (6, 5) and certified.name == "UnfoldedISTA"
    np.testing.assert_allclose(certified.to_reference, by_cvxpy.to_reference, atol=1e-6)
    np.testing.assert_allclose(certified.to_truth, classical.to_truth, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer_iterates(model, Y), layer_iterates("ista", Y, A=problem.A, lam=problem.lam, layers=6),
                               atol=1e-12)
    gap = np.linalg.norm(certified.reference.x - X, axis=1)  # triangle inequality, per instance
    assert np.all(np.abs(certified.to_truth - certified.to_reference) <= gap + 1e-12)
    summary = certified.summary("reference")
    assert np.all(summary["median"] <= summary["max"]) and np.all(summary["q25"] <= summary["q75"])
    none = error_trace(model, Y, X, reference="none")
    assert np.all(np.isnan(none.to_reference)) and none.reference is None
    given_ref = error_trace(model, Y, X, reference=certified.reference.x)
    np.testing.assert_array_equal(given_ref.to_reference, certified.to_reference)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="layer 3 has a zero error"):
        fit_linear_rate([1.0, 0.5, 0.0, 0.1])
    with pytest.raises(ValueError, match="at least 3 layers"):
        fit_linear_rate([1.0, 0.5, 0.25], start=2)
    with pytest.raises(ValueError, match="start <= stop"):
        fit_linear_rate([1.0, 0.5, 0.25], stop=5)
    with pytest.raises(ValueError, match="method"):
        fit_linear_rate([1.0, 0.5, 0.25], method="mle")
    with pytest.raises(ValueError, match="2 instances"):
        fit_linear_rate([1.0, 0.5, 0.25], method="bootstrap")
    problem = SparseRecovery(4, 6, 0.5, seed=0)
    Y, X = problem.sample(2, seed=0)
    with pytest.raises(ValueError, match="not known"):
        layer_iterates("admm", Y, A=problem.A, lam=problem.lam, layers=3)
    with pytest.raises(ValueError, match="needs A, lam and layers"):
        layer_iterates("fista", Y)
    with pytest.raises(ValueError, match="X has shape"):
        error_trace("ista", Y, X[:1], A=problem.A, lam=problem.lam, layers=3)
    with pytest.raises(ValueError, match="no traces"):
        envelope_figure({}, {}, "unused", "t")
    with pytest.raises(ValueError, match="sequence of per-layer Bound"):
        envelope_figure({"a": [1.0, 0.5]}, {"a": [0.3, 0.2]}, "unused", "t")


def test_envelope_figure_with_certified_alista_bound(tmp_path):
    problem = SparseRecovery(16, 24, 0.1, seed=4)
    _, W = generalized_coherence(problem.A, progress=False)
    s, B, K = 1, 1.0, 6
    cert = alista_rate_bound(problem.A, np.ones(K), s, B, W=W)
    rng = np.random.default_rng(0)
    X = np.zeros((20, 24))
    X[np.arange(20), rng.integers(0, 24, 20)] = rng.uniform(-B, B, 20)
    Y = X @ problem.A.T
    traces = {"ISTA": error_trace("ista", Y, X, A=problem.A, lam=problem.lam, layers=K, reference="none"),
              "FISTA": error_trace("fista", Y, X, A=problem.A, lam=problem.lam, layers=K, reference="none").to_truth}
    refused = [Bound(math.inf, "upper", "q", "m")] * K
    paths = envelope_figure(traces, {"ALISTA Thm 1": cert, "ISTA": refused}, tmp_path / "envelope", "errors")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.exists() and p.stat().st_size > 1000 for p in paths)


def test_sampled_data_with_an_all_zero_signal_gets_a_rate():
    # noiseless Bernoulli–Gaussian samples with few nonzeros: some signals are x = 0, so y = 0 and ISTA's
    # error to the truth is exactly 0 at every layer; those instances carry no rate and are dropped
    problem = SparseRecovery(12, 16, 0.05, seed=1)
    Y, X = problem.sample(30, seed=3)
    zero = np.flatnonzero(~X.any(axis=1))
    assert zero.size > 0
    trace = error_trace("ista", Y, X, A=problem.A, lam=problem.lam, layers=25, reference="none")
    assert np.all(trace.to_truth[:, zero] == 0)
    fit = fit_linear_rate(trace.to_truth)
    assert fit.details["dropped_instances"] == zero.size and fit.details["instances"] == 30 - zero.size
    kept = np.delete(trace.to_truth, zero, axis=1)  # the same fit without those instances, by hand
    assert fit.value == fit_linear_rate(kept).value
    boot = fit_linear_rate(trace.to_truth, method="bootstrap", resamples=200)
    assert boot.value == fit.value and boot.details["dropped_instances"] == zero.size


def test_exact_convergence_fits_the_layers_before_it_and_names_a_valid_stop():
    E = np.array([[1.0, 2.0], [0.5, 1.0], [0.25, 0.5], [0.125, 0.25], [0.0, 0.125], [0.0, 0.0]])
    fit = fit_linear_rate(E)
    assert fit.details["layers"] == (1, 4) and fit.details["truncated_at"] == 5
    assert math.isclose(fit.value, 0.5, rel_tol=1e-12)
    with pytest.raises(ValueError, match=r"stop=4") as info:
        fit_linear_rate(E, stop=6)
    advised = int(str(info.value).split("stop=")[1].split(")")[0])
    assert math.isclose(fit_linear_rate(E, stop=advised).value, 0.5, rel_tol=1e-12)  # the advice is accepted
    with pytest.raises(ValueError, match="every instance has zero error"):
        fit_linear_rate(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=">= 0"):
        fit_linear_rate([1.0, -0.5, 0.25])


def test_error_trace_repr_is_compact():
    problem = SparseRecovery(10, 20, 0.2, seed=0)
    Y, X = problem.sample(8, seed=0)
    trace = error_trace("ista", Y, X, A=problem.A, lam=problem.lam, layers=5)
    text = repr(trace)
    assert len(text) < 250 and "LassoSolution" not in text and "array" not in text
    assert "layers=5" in text and "instances=8" in text and "8/8 optimal" in text
    median = float(np.median(trace.to_truth[-1]))
    assert f"{median:.4g}" in text
    assert "reference=None" in repr(error_trace("ista", Y, X, A=problem.A, lam=problem.lam, layers=5, reference="none"))
