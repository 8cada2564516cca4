"""The public strategies of ``unfoldtheory.testing`` produce what they promise."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from unfoldtheory import testing as ut
from unfoldtheory.activations import ReLU, SoftThreshold
from unfoldtheory.spec import NetworkSpec

# ----------------------------------------------------------------------------- sensing matrices


@settings(max_examples=40)
@given(st.data(), st.integers(1, 7), st.integers(1, 9))
def test_sensing_matrices_fixed_shape_unit_columns(data, m, n):
    A = data.draw(ut.sensing_matrices(m=m, n=n))
    assert A.shape == (m, n) and A.dtype == np.float64
    assert np.all(np.isfinite(A))
    np.testing.assert_allclose(np.linalg.norm(A, axis=0), 1.0, rtol=1e-12)


@settings(max_examples=40)
@given(ut.sensing_matrices(m=st.integers(2, 5), n=st.integers(3, 6), normalize_columns=False))
def test_sensing_matrices_shape_from_strategies_unnormalised(A):
    m, n = A.shape
    assert 2 <= m <= 5 and 3 <= n <= 6
    assert np.all(np.isfinite(A))
    # Entries are N(0, 1/m): nothing is astronomically large, and not all columns are unit norm.
    assert np.abs(A).max() < 10.0


@settings(max_examples=5)
@given(ut.sensing_matrices(m=50, n=400, normalize_columns=False))
def test_sensing_matrices_unnormalised_scale(A):
    # Independent route: the average squared column norm of N(0, 1/m) entries is 1.
    assert abs(np.mean(np.sum(A**2, axis=0)) - 1.0) < 0.1
    assert not np.allclose(np.linalg.norm(A, axis=0), 1.0)


def test_sensing_matrices_are_deterministic_under_replay():
    seen = []

    @settings(max_examples=5, database=None, derandomize=True)
    @given(ut.sensing_matrices(m=3, n=4))
    def collect(A):
        seen.append(A.copy())

    collect()
    first = list(seen)
    seen.clear()
    collect()
    assert len(first) == len(seen) > 0
    for a, b in zip(first, seen, strict=True):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- sparse signals


@settings(max_examples=60)
@given(st.data(), st.integers(1, 12), st.floats(0.01, 100.0))
def test_sparse_signals_at_most(data, n, B):
    s = data.draw(st.integers(0, n))
    x = data.draw(ut.sparse_signals(n, sparsity=s, amplitude=B))
    assert x.shape == (n,) and x.dtype == np.float64
    assert np.count_nonzero(x) <= s
    assert np.abs(x).max(initial=0.0) <= B


@settings(max_examples=60)
@given(st.data(), st.integers(1, 12), st.floats(0.01, 100.0))
def test_sparse_signals_exact(data, n, B):
    s = data.draw(st.integers(0, n))
    b = data.draw(st.floats(0.0, B))
    x = data.draw(ut.sparse_signals(n, sparsity=s, amplitude=B, exact=True, min_amplitude=b))
    assert np.count_nonzero(x) == s
    nz = np.abs(x[x != 0])
    assert np.all(nz <= B) and np.all(nz >= b)


@settings(max_examples=40)
@given(ut.sparse_signals(st.integers(1, 5), sparsity=st.just(20), exact=True, nonnegative=True))
def test_sparse_signals_strategy_sizes_and_clipping(x):
    assert 1 <= x.size <= 5
    assert np.all(x >= 0)
    # a drawn sparsity above the drawn n is clipped to n: exactly n nonzeros
    assert np.count_nonzero(x) == x.size


@settings(max_examples=20)
@given(st.data(), st.integers(33, 300), st.booleans(), st.booleans())
def test_sparse_signals_large_supports(data, s, exact, nonnegative):
    # supports above 32 take their values from a drawn seed; the promises are the same
    x = data.draw(ut.sparse_signals(400, sparsity=s, exact=exact, amplitude=3.0, min_amplitude=0.5,
                                    nonnegative=nonnegative))
    assert x.shape == (400,)
    k = np.count_nonzero(x)
    assert k == s if exact else k <= s
    nz = np.abs(x[x != 0])
    assert np.all((nz >= 0.5) & (nz <= 3.0))
    assert not nonnegative or np.all(x >= 0)


@settings(max_examples=30)
@given(ut.sparse_signals(6))
def test_sparse_signals_default_bound(x):
    assert x.shape == (6,)
    assert np.abs(x).max() <= 1.0


def test_sparse_signals_reach_both_signs():
    x = find(ut.sparse_signals(8, sparsity=8, exact=True), lambda x: np.any(x > 0) and np.any(x < 0),
             settings=settings(database=None))
    assert np.count_nonzero(x) == 8


def test_sparse_signals_reach_the_amplitude():
    x = find(ut.sparse_signals(3, amplitude=2.5), lambda x: np.abs(x).max() == 2.5, settings=settings(database=None))
    assert np.count_nonzero(x) >= 1


# ----------------------------------------------------------------------------- unrolled specs


def _unrolled_layers_ok(spec: NetworkSpec, K: int) -> None:
    assert isinstance(spec, NetworkSpec)
    assert spec.num_layers == K
    assert set(spec.weights[0]) == {0}
    for k in range(1, K):
        assert set(spec.weights[k]) == {0, k}


@settings(max_examples=40)
@given(ut.unrolled_parameters(m=st.integers(1, 4), n=st.integers(1, 5), K=st.integers(1, 4),
                              max_norm=0.7, min_threshold=0.1, max_threshold=0.3, activation="relu"))
def test_unrolled_parameters_norms_thresholds(p):
    K = p.K
    n, m = p.V[0].shape
    assert 1 <= m <= 4 and 1 <= n <= 5 and 1 <= K <= 4
    assert len(p.W) == len(p.thresholds) == K and p.A is None
    for W, V in zip(p.W, p.V, strict=True):
        assert W.shape == (n, n) and V.shape == (n, m)
        assert np.linalg.norm(W, 2) <= 0.7 and np.linalg.norm(V, 2) <= 0.7
    for theta in p.thresholds:
        assert np.ndim(theta) == 0 and 0.1 <= theta <= 0.3
    spec = p.spec()
    _unrolled_layers_ok(spec, K)
    assert all(isinstance(a, ReLU) for a in spec.activations)
    for k in range(K):
        np.testing.assert_array_equal(spec.biases[k], -np.full(n, p.thresholds[k]))
        np.testing.assert_array_equal(spec.weights[k][0], p.V[k])
        if k:
            np.testing.assert_array_equal(spec.weights[k][k], p.W[k])


@settings(max_examples=30)
@given(ut.unrolled_parameters(n=4, per_coordinate_thresholds=True, min_threshold=0.2, max_threshold=0.2))
def test_unrolled_parameters_vector_thresholds(p):
    for theta in p.thresholds:
        assert theta.shape == (4,)
        np.testing.assert_array_equal(theta, 0.2)
    spec = p.spec()
    for act in spec.activations:
        assert isinstance(act, SoftThreshold) and act.dim == 4


@settings(max_examples=40)
@given(ut.unrolled_parameters(m=st.integers(1, 5), n=st.integers(1, 6), K=3, near_ista=True, perturbation=0.1))
def test_unrolled_parameters_near_ista(p):
    A, L = p.A, p.L
    n = A.shape[1]
    np.testing.assert_allclose(np.linalg.norm(A, axis=0), 1.0, rtol=1e-12)
    assert L == pytest.approx(np.linalg.norm(A, 2) ** 2, rel=1e-12)
    assert 0.0 <= p.eps <= 0.1
    W_ista, V_ista = np.eye(n) - A.T @ A / L, A.T / L
    for W, V in zip(p.W, p.V, strict=True):
        assert np.linalg.norm(W - W_ista, 2) <= p.eps * (1 + 1e-9) + 1e-15
        assert np.linalg.norm(V - V_ista, 2) <= p.eps * (1 + 1e-9) + 1e-15


@settings(max_examples=10)
@given(ut.unrolled_parameters(m=3, n=5, K=2, near_ista=True, perturbation=0.0))
def test_near_ista_with_zero_perturbation_is_ista(p):
    W_ista = np.eye(5) - p.A.T @ p.A / p.L
    for W, V in zip(p.W, p.V, strict=True):
        np.testing.assert_array_equal(W, W_ista)
        np.testing.assert_array_equal(V, p.A.T / p.L)


@settings(max_examples=30)
@given(ut.unrolled_parameters(m=2, n=6, K=2, near_ista=True, perturbation=0.5, max_norm=0.8))
def test_near_ista_max_norm_caps(p):
    for M in (*p.W, *p.V):
        assert np.linalg.norm(M, 2) <= 0.8


@settings(max_examples=40)
@given(ut.unrolled_specs(m=3, n=st.integers(2, 4), K=st.integers(1, 3),
                         activation=st.sampled_from(["soft_threshold", "relu"]), name="lista"))
def test_unrolled_specs_valid(spec):
    assert spec.name == "lista" and spec.input_dim == 3
    assert 2 <= spec.dims[1] <= 4 and spec.output_dim == spec.dims[1]
    _unrolled_layers_ok(spec, spec.num_layers)
    y = np.linspace(-1.0, 1.0, 3)
    out = spec.evaluate(y)
    assert out.shape == (spec.dims[1],) and np.all(np.isfinite(out))
    # round trip through the validated constructor: a spec built by the strategy is accepted again
    assert np.array_equal(NetworkSpec.from_dict(spec.to_dict()).evaluate(y), out)


@settings(max_examples=30)
@given(ut.unrolled_specs(max_layers=2, m=2, n=2))
def test_unrolled_specs_max_layers(spec):
    assert 1 <= spec.num_layers <= 2


# ----------------------------------------------------------------------------- step sizes


@settings(max_examples=60)
@given(st.data(), st.integers(1, 12), st.floats(0.1, 10.0))
def test_step_sizes_default_range(data, K, L):
    mu = data.draw(st.floats(0.0, L))
    g = data.draw(ut.step_size_schedules(K=K, L=L, mu=mu))
    assert g.shape == (K,) and g.dtype == np.float64
    assert np.all(g > 0) and np.all(g < 2.0 / L)


@settings(max_examples=40)
@given(ut.step_size_schedules(K=st.integers(2, 6), L=4.0, low=0.1, high=0.3, exclude_low=False,
                              exclude_high=False, constant=True))
def test_step_sizes_closed_range_constant(g):
    assert 2 <= g.size <= 6
    assert np.all((g >= 0.1) & (g <= 0.3))
    assert np.all(g == g[0])


@settings(max_examples=5)
@given(ut.step_size_schedules(K=3, low=0.5, high=0.5, exclude_low=False, exclude_high=False))
def test_step_sizes_single_point_range(g):
    np.testing.assert_array_equal(g, [0.5, 0.5, 0.5])


@pytest.mark.parametrize("special", [1.0 / 2.0, 2.0 / (2.0 + 0.5)])
def test_step_sizes_hit_classical_steps(special):
    g = find(ut.step_size_schedules(K=5, L=2.0, mu=0.5), lambda g: np.any(g == special), settings=settings(database=None))
    assert np.all((g > 0) & (g < 1.0))


# ----------------------------------------------------------------------------- argument checks


def test_strategies_are_search_strategies():
    for s in (ut.sensing_matrices(), ut.sparse_signals(4), ut.unrolled_specs(), ut.unrolled_parameters(),
              ut.step_size_schedules()):
        assert isinstance(s, SearchStrategy)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: ut.sensing_matrices(m=0), r"^m must be an int >= 1"),
    (lambda: ut.sensing_matrices(n=2.5), r"^n must be an int >= 1"),
    (lambda: ut.sensing_matrices(m=True), r"^m must be"),
    (lambda: ut.sensing_matrices(normalize_columns="yes"), r"normalize_columns must be a bool"),
    (lambda: ut.sparse_signals(0), r"^n must be an int >= 1"),
    (lambda: ut.sparse_signals(5, sparsity=-1), r"^sparsity must be an int >= 0"),
    (lambda: ut.sparse_signals(5, sparsity=6), r"sparsity \(6\) exceeds n \(5\)"),
    (lambda: ut.sparse_signals(5, amplitude=0.0), r"^amplitude must be > 0"),
    (lambda: ut.sparse_signals(5, amplitude=np.inf), r"^amplitude must be finite"),
    (lambda: ut.sparse_signals(5, amplitude=1.0, min_amplitude=2.0), r"min_amplitude \(2.0\) exceeds amplitude \(1.0\)"),
    (lambda: ut.sparse_signals(5, min_amplitude=-0.1), r"^min_amplitude must be >= 0"),
    (lambda: ut.unrolled_specs(K=0), r"^K must be an int >= 1"),
    (lambda: ut.unrolled_specs(activation="tanh"), r"activation must be one of"),
    (lambda: ut.unrolled_specs(min_threshold=0.5, max_threshold=0.1), r"min_threshold \(0.5\) exceeds max_threshold"),
    (lambda: ut.unrolled_specs(min_threshold=-1.0), r"^min_threshold must be >= 0"),
    (lambda: ut.unrolled_specs(max_norm=-1.0), r"^max_norm must be >= 0"),
    (lambda: ut.unrolled_specs(max_norm=float("nan")), r"^max_norm must be finite"),
    (lambda: ut.unrolled_specs(perturbation=-0.1), r"^perturbation must be >= 0"),
    (lambda: ut.unrolled_specs(near_ista=1), r"near_ista must be a bool"),
    (lambda: ut.unrolled_parameters(n="4"), r"^n must be an int >= 1"),
    (lambda: ut.unrolled_specs(max_layers=0), r"^max_layers must be an int >= 1, got 0$"),
    (lambda: ut.unrolled_specs(K=2, max_layers=3), r"^give K or max_layers, not both$"),
    (lambda: ut.step_size_schedules(K=0), r"^K must be an int >= 1"),
    (lambda: ut.step_size_schedules(L=0.0), r"^L must be > 0"),
    (lambda: ut.step_size_schedules(L=1.0, mu=2.0), r"mu \(2.0\) exceeds L \(1.0\)"),
    (lambda: ut.step_size_schedules(mu=-0.5), r"^mu must be >= 0"),
    (lambda: ut.step_size_schedules(low=0.5, high=0.1), r"low \(0.5\) exceeds high \(0.1\)"),
    (lambda: ut.step_size_schedules(low=-0.1), r"^low must be >= 0"),
    (lambda: ut.step_size_schedules(low=0.0, exclude_low=False), r"zero step"),
    (lambda: ut.step_size_schedules(low=0.3, high=0.3), r"step range is empty"),
])
def test_bad_arguments_raise_at_call_time(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_drawn_sizes_raise_at_draw_time():
    # A strategy argument is accepted at call time and its draws are checked when drawn.
    for strategy, match in [(ut.sensing_matrices(m=st.just(0), n=3), r"m strategy drew 0; expected an int >= 1"),
                            (ut.unrolled_specs(activation=st.just("tanh")), r"activation strategy drew 'tanh'")]:
        @settings(max_examples=1, database=None)
        @given(strategy)
        def draw_one(_):
            """Drawing is the test: the error is raised before this body runs."""

        with pytest.raises(ValueError, match=match):
            draw_one()
