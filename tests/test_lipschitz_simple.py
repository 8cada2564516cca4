"""Closed-form Lipschitz bounds: rigorous spectral norms, the product bound, the averaged bound.

Closed forms against numerics, bound against witness (Jacobian norms and output ratios), and
clear errors for the graphs and activations the bounds do not cover.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from unfoldtheory import testing as ut
from unfoldtheory.activations import Activation, GroupSoftThreshold, Identity, ReLU, SoftThreshold
from unfoldtheory.classical import ista_spec
from unfoldtheory.lipschitz.averaged import averaged_bound
from unfoldtheory.lipschitz.norms import spectral_norm_upper
from unfoldtheory.lipschitz.product import product_bound
from unfoldtheory.spec import Layer, NetworkSpec

REL = 1e-9
FAST = settings(max_examples=50, deadline=None)

matrices = hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)),
                      elements=st.integers(-1000, 1000).map(lambda i: i / 100))


@FAST
@given(matrices, st.sampled_from([1e-200, 1e-5, 1.0, 1e5, 1e200]))
def test_spectral_norm_upper_is_between_the_norm_and_frobenius(W, scale):
    up = spectral_norm_upper(W * scale)
    # references from the unscaled matrix (numpy's own Frobenius norm underflows at 1e-200)
    assert up >= np.linalg.norm(W, 2) * scale * (1 - 1e-15)
    assert up <= np.linalg.norm(W, "fro") * scale * (1 + 1e-12)
    assert up <= np.linalg.norm(W, 2) * scale * (1 + 1e-10)  # the SVD branch is tight
    if scale == 1.0:
        assert up >= np.linalg.norm(W, 2)  # strictly, against numpy on the same matrix


def test_spectral_norm_upper_special_cases():
    assert spectral_norm_upper(np.zeros((3, 2))) == 0.0
    assert spectral_norm_upper([[3.0]]) >= 3.0
    assert spectral_norm_upper([[5e-324, 0.0]]) >= 5e-324  # subnormal entries are not lost
    assert spectral_norm_upper([[1e300, 1e300]]) >= np.sqrt(2) * 1e300  # no overflow in the squares
    with pytest.raises(ValueError, match="non-finite"):
        spectral_norm_upper([[np.inf, 1.0]])


def _single_linear(V):
    return NetworkSpec(V.shape[1], [Layer({0: V}, Identity())])


@FAST
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 5)),
                  elements=st.floats(-3, 3, allow_nan=False, allow_subnormal=False)))
def test_single_linear_layer_gives_the_norm_of_V(V):
    exact = np.linalg.norm(V, 2)
    for bound in (product_bound(_single_linear(V)), averaged_bound(_single_linear(V))):
        assert bound.certified and bound.kind == "upper"
        assert exact <= bound.value <= exact * (1 + 1e-10) + 1e-300


def _scalar_chain(ws, act):
    return NetworkSpec(1, [Layer({k: np.array([[w]])}, act) for k, w in enumerate(ws)])


@FAST
@given(st.lists(st.floats(0.05, 3.0), min_size=1, max_size=6))
def test_scalar_relu_chain_is_exact(ws):
    """m = n = 1, positive weights, ReLU, no biases: y ↦ (Π w) max(y, 0), Lipschitz exactly Π w."""
    spec = _scalar_chain(ws, ReLU())
    exact = float(np.prod(ws))
    witness = abs(spec(np.array([2.0]))[0] - spec(np.array([1.0]))[0])  # a pair with ratio Π w
    assert witness == pytest.approx(exact, rel=1e-12)
    p, a = product_bound(spec), averaged_bound(spec)
    assert exact <= p.value <= exact * (1 + 1e-12)
    # scalars: every partial product norm is the product of the norms, so θ_m = 2^{m-1} Π|w|
    assert a.certificate["m"] == len(ws) + 1
    assert a.certificate["theta"] == pytest.approx(2 ** len(ws) * exact, rel=1e-12)
    assert exact <= a.value <= exact * (1 + 1e-12)
    assert p.certificate[-1] == pytest.approx(exact, rel=1e-12)


def test_input_injection_recursion_closed_form():
    """Product bound for unrolled nets is L_k = ‖W_k‖ L_{k−1} + ‖V_k‖."""
    rng = np.random.default_rng(1)
    W = [None] + [rng.standard_normal((4, 4)) for _ in range(2)]
    V = [rng.standard_normal((4, 3)) for _ in range(3)]
    from unfoldtheory.spec import unrolled
    spec = unrolled(W, V, [0.1] * 3)
    L = np.linalg.norm(V[0], 2)
    for k in (1, 2):
        L = np.linalg.norm(W[k], 2) * L + np.linalg.norm(V[k], 2)
    b = product_bound(spec)
    assert L <= b.value <= L * (1 + 1e-10)
    assert len(b.certificate) == 4


def _jacobian_norms(spec, seed, count=8):
    rng = np.random.default_rng(seed)
    return [np.linalg.norm(spec.jacobian(y), 2) for y in rng.standard_normal((count, spec.input_dim))]


@FAST
@given(ut.unrolled_specs(m=st.integers(1, 4), n=st.integers(1, 5), K=st.integers(1, 4),
                         activation=st.sampled_from(["soft_threshold", "relu"]), max_threshold=0.5),
       st.integers(0, 2**16))
def test_bounds_dominate_jacobian_norms_on_unrolled_specs(spec, seed):
    p, a = product_bound(spec), averaged_bound(spec)
    assert p.certified and a.certified
    assert a.details["input_injection_embedded"] == (spec.num_layers > 1)
    for jn in _jacobian_norms(spec, seed):
        assert jn <= p.value * (1 + REL)
        assert jn <= a.value * (1 + REL)


@FAST
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**16), st.sampled_from(["relu", "soft", "group"]))
def test_chain_ordering_jacobian_le_averaged_le_product(depth, width, seed, kind):
    """On a chain with firmly nonexpansive activations of slope bound 1, θ_m ≤ 2^{m−1} Π‖W_i‖,
    so averaged ≤ product is a theorem; both dominate the local Jacobian norms."""
    rng = np.random.default_rng(seed)
    dims = [int(rng.integers(1, 5))] + [2 * width] * depth
    acts = {"relu": ReLU, "soft": lambda: SoftThreshold(0.3),
            "group": lambda: GroupSoftThreshold.contiguous(0.3, 2 * width, 2)}[kind]
    layers = [Layer({k: rng.standard_normal((dims[k + 1], dims[k]))}, acts(), rng.standard_normal(dims[k + 1]))
              for k in range(depth)]
    spec = NetworkSpec(dims[0], layers, {depth: rng.standard_normal((2, dims[-1]))})
    p, a = product_bound(spec), averaged_bound(spec)
    assert not a.details["input_injection_embedded"]
    assert a.value <= p.value * (1 + REL)
    for jn in _jacobian_norms(spec, seed):
        assert jn <= a.value * (1 + REL)


def test_averaged_is_tighter_than_product_on_ista():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 10)) / np.sqrt(6)
    spec = ista_spec(A, 0.1, 3)
    a, p = averaged_bound(spec), product_bound(spec)
    lower = max(_jacobian_norms(spec, 0, 32))
    assert lower <= a.value * (1 + REL) and a.value < p.value


class _Expansive(Activation):
    """Non-separable and not firmly nonexpansive (a test double)."""

    name = "expansive"
    separable = False
    firmly_nonexpansive = False
    slope_interval = (0.0, 2.0)

    def __call__(self, v):
        return 2.0 * np.asarray(v, dtype=float)


def test_unsupported_activation_errors():
    spec = NetworkSpec(2, [Layer({0: np.eye(2)}, _Expansive())])
    with pytest.raises(ValueError, match="layer 1: activation expansive is neither separable nor firmly nonexpansive"):
        product_bound(spec)
    with pytest.raises(ValueError, match="layer 1: activation expansive is not firmly nonexpansive"):
        averaged_bound(spec)


def test_unsupported_graph_errors():
    eye = np.eye(2)
    skip = NetworkSpec(2, [Layer({0: eye}), Layer({1: eye}), Layer({2: eye, 1: eye})])
    with pytest.raises(ValueError, match="averaged bound needs a chain or input injection; layer 3 reads state 1"):
        averaged_bound(skip)
    assert product_bound(skip).certified  # the product bound covers every graph
    mid = NetworkSpec(2, [Layer({0: eye}), Layer({1: eye})], readout={1: eye, 2: eye})
    with pytest.raises(ValueError, match="the readout reads state 1"):
        averaged_bound(mid)
    with pytest.raises(TypeError, match="NetworkSpec"):
        averaged_bound("not a spec")
    with pytest.raises(TypeError, match="NetworkSpec"):
        product_bound(None)


def test_readout_of_the_input_is_embedded():
    """out = C_1 z_1 + C_0 y with z_1 = y: linear map C_1 + C_0, both bounds are ≥ its norm."""
    rng = np.random.default_rng(3)
    C0, C1 = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    spec = NetworkSpec(3, [Layer({0: np.eye(3)}, Identity())], readout={0: C0, 1: C1})
    exact = np.linalg.norm(C0 + C1, 2)
    a, p = averaged_bound(spec), product_bound(spec)
    assert a.details["input_injection_embedded"]
    assert exact <= a.value * (1 + REL) and exact <= p.value * (1 + REL)


def test_averaged_time_budget_stops_with_an_uncertified_bound_that_says_why():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((10, 20))
    spec = ista_spec(A / np.linalg.norm(A, axis=0), 0.1, 12)
    full = averaged_bound(spec)
    assert full.certified and np.isfinite(full.value)
    stopped = averaged_bound(spec, time_budget=1e-9)
    assert not stopped.certified and stopped.value == np.inf
    assert "time budget" in stopped.details["reason"]
    assert averaged_bound(spec, time_budget=60.0).value == full.value


@pytest.mark.parametrize("budget", [0.0, -1.0, float("nan"), "fast", True])
def test_averaged_rejects_a_bad_time_budget(budget):
    spec = ista_spec(np.eye(3), 0.1, 2)
    with pytest.raises(ValueError, match="time_budget"):
        averaged_bound(spec, time_budget=budget)
