"""Lower bounds with witnesses and the exact activation-agnostic bound (issue 4)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory import testing as ut
from unfoldtheory.activations import GroupSoftThreshold, Identity, ReLU
from unfoldtheory.classical import ista_spec
from unfoldtheory.lipschitz.agnostic import activation_agnostic
from unfoldtheory.lipschitz.lower import check_witness, lower_bound
from unfoldtheory.spec import Layer, NetworkSpec, unrolled

SMALL = ut.unrolled_specs(m=st.integers(1, 4), n=st.integers(1, 4), K=st.integers(1, 3),
                          activation=st.sampled_from(["soft_threshold", "relu"]))


@settings(max_examples=25)
@given(SMALL)
def test_lower_is_below_agnostic_and_its_witness_re_evaluates(spec):
    lb = lower_bound(spec, restarts=4, steps=40)
    ag = activation_agnostic(spec)
    assert lb.kind == "lower" and ag.kind == "upper" and lb.certified and ag.certified
    assert 0.0 <= lb.value <= ag.value * (1 + 1e-9) + 1e-12
    cert = lb.certificate
    assert check_witness(spec, cert) == lb.value == cert["ratio"]
    if lb.details["same_region"]:  # affine on the segment: the ratio is ‖J(y1)‖
        assert lb.value == pytest.approx(cert["jacobian_norm_at_y1"], rel=1e-6, abs=1e-12)


@settings(max_examples=10)
@given(ut.unrolled_specs(m=st.integers(1, 3), n=st.integers(1, 3), K=st.integers(1, 2),
                         activation=st.sampled_from(["soft_threshold", "relu"])))
def test_agnostic_matches_brute_force_enumeration(spec):
    n = spec.dims[1:]
    brute = max(np.linalg.norm(spec.linearized_jacobian(
        [np.array(bits[sum(n[:k]):sum(n[:k + 1])], dtype=float) for k in range(len(n))]), 2)
        for bits in itertools.product([0.0, 1.0], repeat=sum(n)))
    ag = activation_agnostic(spec)
    assert ag.value == pytest.approx(brute, rel=1e-9, abs=1e-12)
    assert ag.value >= brute
    assert ag.details["patterns"] == 2 ** sum(n)
    assert np.linalg.norm(spec.linearized_jacobian(ag.certificate["pattern"]), 2) == pytest.approx(brute, rel=1e-12)


def test_single_linear_layer_gives_the_norm_of_V():
    rng = np.random.default_rng(0)
    V = rng.standard_normal((5, 3))
    spec = NetworkSpec(3, [Layer({0: V}, Identity())])
    exact = np.linalg.norm(V, 2)
    ag = activation_agnostic(spec)
    lb = lower_bound(spec, restarts=2, steps=10)
    assert ag.details["patterns"] == 1
    assert ag.value == pytest.approx(exact, rel=1e-12)
    assert lb.value == pytest.approx(exact, rel=1e-9)
    assert lb.value <= ag.value


def test_nonnegative_chain_is_exact():
    """Positive weights, ReLU, positive inputs: every neuron is active, the all-ones pattern wins."""
    rng = np.random.default_rng(1)
    V1, W2, W3 = rng.uniform(0.1, 1, (3, 2)), rng.uniform(0.1, 1, (3, 3)), rng.uniform(0.1, 1, (2, 3))
    spec = NetworkSpec(2, [Layer({0: V1}, ReLU(), -0.2 * np.ones(3)), Layer({1: W2}, ReLU(), -0.1 * np.ones(3)),
                           Layer({2: W3, 0: rng.uniform(0.1, 1, (2, 2))}, ReLU())])
    all_ones = np.linalg.norm(spec.linearized_jacobian([np.ones(d) for d in spec.dims[1:]]), 2)
    ag = activation_agnostic(spec)
    lb = lower_bound(spec, restarts=4, steps=50)
    assert ag.value == pytest.approx(all_ones, rel=1e-12)
    assert lb.value == pytest.approx(all_ones, rel=1e-6)
    assert lb.value <= ag.value


def test_ista_lower_bound_is_positive_and_below_agnostic():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((3, 4)) / np.sqrt(3)
    spec = ista_spec(A, lam=0.1, layers=3)
    lb, ag = lower_bound(spec, restarts=8), activation_agnostic(spec)
    assert 0.0 < lb.value <= ag.value
    assert check_witness(spec, lb.certificate) == lb.value


def test_search_beats_random_finite_differences():
    """On a soft-threshold LISTA-like net the search climbs above the naive median estimate."""
    rng = np.random.default_rng(3)
    m, n, K = 8, 16, 3
    A = rng.standard_normal((m, n)) / np.sqrt(m)
    A /= np.linalg.norm(A, axis=0)
    L = np.linalg.norm(A, 2) ** 2
    W = [np.eye(n) - A.T @ A / L + 0.05 * rng.standard_normal((n, n)) / np.sqrt(n) for _ in range(K)]
    V = [A.T / L + 0.05 * rng.standard_normal((n, m)) / np.sqrt(n) for _ in range(K)]
    spec = unrolled(W, V, [0.1 / L] * K)
    Y = rng.standard_normal((400, m))
    D = 1e-4 * rng.standard_normal((400, m))
    naive = np.linalg.norm(spec(Y + D) - spec(Y), axis=1) / np.linalg.norm(D, axis=1)
    lb = lower_bound(spec, restarts=8, steps=100)
    assert lb.certified and lb.details["same_region"]
    assert lb.value > 1.05 * np.median(naive)
    assert lb.value >= naive.max() * (1 - 1e-9)
    assert lb.value == pytest.approx(lb.certificate["jacobian_norm_at_y1"], rel=1e-6)


def test_group_soft_threshold_is_rejected_by_agnostic_but_has_a_lower_bound():
    rng = np.random.default_rng(4)
    V = rng.standard_normal((4, 3))
    spec = NetworkSpec(3, [Layer({0: V}, GroupSoftThreshold.contiguous(0.1, 4, 2))])
    with pytest.raises(ValueError, match="not separable"):
        activation_agnostic(spec)
    lb = lower_bound(spec, restarts=2, steps=10)
    assert lb.certified and 0.0 < lb.value <= np.linalg.norm(V, 2) * (1 + 1e-9)  # firmly nonexpansive layer


def test_too_many_neurons_and_bad_arguments():
    rng = np.random.default_rng(5)
    spec = unrolled([None, rng.standard_normal((6, 6)) / 6], [rng.standard_normal((6, 2)) / 6] * 2, [0.1, 0.1])
    with pytest.raises(ValueError, match="12 neurons"):
        activation_agnostic(spec, max_neurons=10)
    with pytest.raises(TypeError, match="NetworkSpec"):
        lower_bound(np.eye(2))
    with pytest.raises(TypeError, match="NetworkSpec"):
        activation_agnostic("spec")
    with pytest.raises(ValueError, match="restarts"):
        lower_bound(spec, restarts=0)
    with pytest.raises(ValueError, match="time_budget"):
        lower_bound(spec, time_budget=-1)
    with pytest.raises(ValueError, match="coincide"):
        check_witness(spec, {"y1": np.zeros(2), "y2": np.zeros(2)})


def test_a_constant_state_does_not_break_the_search():
    """A state with no incoming edge (its bias only, as HybridISTA's correction scale) has a zero tangent:
    the witness is that of the network without it, and the activation-agnostic value bounds it."""
    rng = np.random.default_rng(3)
    m, n = 3, 4
    V, W = rng.standard_normal((n, m)), rng.standard_normal((n, n))
    layers = [Layer({}, Identity(), bias=np.ones(2)),
              Layer({0: V}, ReLU()),
              Layer({0: V, 2: W, 1: rng.standard_normal((n, 2))}, ReLU())]
    spec = NetworkSpec(m, layers)
    plain = NetworkSpec(m, [Layer({0: V}, ReLU()), Layer({0: V, 1: W}, ReLU())])
    lb = lower_bound(spec, restarts=4, steps=40, seed=0)
    assert lb.certified and check_witness(spec, lb.certificate) == lb.value
    assert lb.value <= activation_agnostic(plain).value * (1 + 1e-9)
    assert lb.value >= 0.5 * lower_bound(plain, restarts=4, steps=40, seed=0).value
