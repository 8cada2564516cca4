"""The exact Lipschitz constant of piecewise-linear specs (issue 13, item 3) against an independent region enumeration."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory.activations import BoxProjection, GroupSoftThreshold, Identity, ReLU, SoftThreshold
from unfoldtheory.forward_error import certified_ratio
from unfoldtheory.lipschitz import exact
from unfoldtheory.lipschitz.agnostic import activation_agnostic
from unfoldtheory.lipschitz.exact import exact_bound
from unfoldtheory.lipschitz.polyhedra import phase_table, proves_no_interior
from unfoldtheory.oracle.linear_regions import linear_regions
from unfoldtheory.spec import Layer, NetworkSpec, unrolled

#: The oracle's LP decides interiors up to its tolerance (Chebyshev radius 1e-7, see its docstring), the bounds are
#: rigorous: the comparison allows this relative slack.
SLACK = 1e-7

ACTIVATIONS = {"relu": lambda d: ReLU(), "st": lambda d: SoftThreshold(0.3), "box": lambda d: BoxProjection(-0.5, 0.7),
               "identity": lambda d: Identity()}


@st.composite
def tiny_specs(draw, kinds=tuple(ACTIVATIONS)):
    """≤ 6 neurons, input dimension ≤ 3, up to 3 layers, sometimes with input injection and a read-out of two states."""
    m = draw(st.integers(1, 3))
    depth = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    dims, layers = [m], []
    budget = 6
    for k in range(1, depth + 1):
        d = draw(st.integers(1, max(1, min(3, budget))))
        budget -= d
        weights = {k - 1: rng.standard_normal((d, dims[-1]))}
        if k > 1 and draw(st.booleans()):
            weights[0] = rng.standard_normal((d, m))
        kind = draw(st.sampled_from(kinds))
        layers.append(Layer(weights, ACTIVATIONS[kind](d), 0.5 * rng.standard_normal(d)))
        dims.append(d)
        if budget <= 0:
            break
    readout = {len(dims) - 1: rng.standard_normal((2, dims[-1]))}
    if len(dims) > 2 and draw(st.booleans()):
        readout[1] = rng.standard_normal((2, dims[1]))
    return NetworkSpec(m, layers, readout)


def _check_interval(spec, bound, oracle):
    lower = bound.details["lower"]
    assert bound.kind == "upper" and lower.kind == "lower" and bound.certified and lower.certified
    assert lower.value <= bound.value
    assert lower.value <= oracle.lipschitz * (1 + SLACK) + 1e-300
    assert oracle.lipschitz <= bound.value * (1 + SLACK)
    y1, y2 = bound.details["witness"]
    assert certified_ratio(spec, y1, y2).value == lower.value


@settings(max_examples=15, deadline=None)
@given(tiny_specs())
def test_interval_contains_the_enumerated_maximum_and_closes(spec):
    bound = exact_bound(spec, rtol=1e-3, time_budget=20.0)
    oracle = linear_regions(spec)
    _check_interval(spec, bound, oracle)
    assert bound.details["closed"]
    assert bound.value <= (1 + 1e-3) * bound.details["lower"].value


@pytest.mark.parametrize("kind", ["relu", "st", "box"])
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_each_activation(kind, data):
    spec = data.draw(tiny_specs(kinds=(kind,)))
    bound = exact_bound(spec, rtol=1e-6, time_budget=20.0)
    _check_interval(spec, bound, linear_regions(spec))


@settings(max_examples=6, deadline=None)
@given(tiny_specs())
def test_node_sdp_route_contains_the_enumerated_maximum(spec):
    """With vertex enumeration off, every node with an unstable neuron is bounded by LipSDP-Neuron on its restricted
    spec (or the product bound): the interval must still contain the oracle's maximum."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(exact, "VERTEX_NEURONS", 0)
        bound = exact_bound(spec, rtol=1e-3, time_budget=20.0)
    _check_interval(spec, bound, linear_regions(spec))
    assert "vertex" not in bound.details["bound_methods"]


def test_node_sdp_closes_an_unrolled_net():
    """Two soft-threshold layers of 4 neurons with vertex enumeration limited to 2 unstable neurons: the nodes above
    that are bounded by LipSDP-Neuron on their restricted specs, and the search must still close on the oracle's value."""
    rng = np.random.default_rng(4)  # dyadic weights; the root's LipSDP bound is not tight on this net
    W1 = np.round(rng.standard_normal((4, 2)) * 8) / 8
    W = [None, np.round(rng.standard_normal((4, 4)) * 4) / 8]
    spec = unrolled(W, [W1, W1], [0.25, 0.25])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(exact, "VERTEX_NEURONS", 2)
        bound = exact_bound(spec, rtol=1e-4, time_budget=20.0)
    _check_interval(spec, bound, linear_regions(spec))
    assert bound.details["closed"]
    assert bound.details["bound_methods"].get("sdp", 0) >= 1


def _exclusive_pair() -> NetworkSpec:
    """``f(y) = ReLU(y₁) − ReLU(−y₁) + ReLU(y₂ − 1)·0.5 = y₁ + ½ReLU(y₂ − 1)``: the first two neurons are never active
    together, so the exact constant is √(1 + ¼) while both slopes at 1 give the agnostic value |1 + 1| = 2 along y₁."""
    W = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    return NetworkSpec(2, [Layer({0: W}, ReLU(), np.array([0.0, 0.0, -1.0]))], {1: np.array([[1.0, -1.0, 0.5]])})


def test_exact_lies_strictly_below_activation_agnostic():
    spec = _exclusive_pair()
    bound = exact_bound(spec, rtol=1e-6, time_budget=20.0)
    oracle = linear_regions(spec)
    agnostic = activation_agnostic(spec).value
    _check_interval(spec, bound, oracle)
    assert abs(oracle.lipschitz - np.sqrt(1.25)) < 1e-12
    assert bound.value < agnostic - 0.5
    assert bound.details["empty_proved"] >= 1


def test_deeper_exclusive_net_below_agnostic():
    """Two layers in which the second layer's neurons read disjointly active first-layer neurons. The weights are
    dyadic, so that the float LP's parallel rows are parallel in exact arithmetic too: with decimal weights (0.3 + 0.2 −
    0.1 ≠ 0.4 in float64) two such rows meet ~10¹⁶ away, a real region of the exact map on the float64 data that
    neither the float oracle nor a float64 witness can see (the search then keeps it, see ``empty_unproved``)."""
    W1 = np.array([[1.0, 0.375], [-1.0, 0.25], [0.5, 1.0]])
    W2 = np.array([[1.0, 1.0, 0.0], [1.0, -1.0, 1.0]])
    spec = NetworkSpec(2, [Layer({0: W1}, ReLU(), np.array([0.0, 0.0, -0.5])),
                           Layer({1: W2, 0: np.array([[0.25, -0.125], [0.0, 0.375]])}, SoftThreshold(0.25))],
                       {2: np.array([[1.0, -2.0]])})
    bound = exact_bound(spec, rtol=1e-6, time_budget=20.0)
    oracle = linear_regions(spec)
    _check_interval(spec, bound, oracle)
    assert bound.details["closed"]
    assert bound.value < activation_agnostic(spec).value * (1 - 1e-3)


def test_input_injection_unrolled():
    rng = np.random.default_rng(3)
    W = [None, 0.4 * rng.standard_normal((3, 3))]
    V = [rng.standard_normal((3, 2)), rng.standard_normal((3, 2))]
    spec = unrolled(W, V, [0.2, 0.1])
    bound = exact_bound(spec, rtol=1e-4, time_budget=20.0)
    _check_interval(spec, bound, linear_regions(spec))
    assert bound.details["closed"]


def test_constant_preactivation_on_a_kink_is_not_pruned():
    """A neuron whose pre-activation is identically 0 sits on ReLU's kink: both phases have full-dimensional closures,
    neither may be dropped as empty (the exact check needs nonzero rows for that)."""
    spec = NetworkSpec(2, [Layer({0: np.array([[0.0, 0.0], [1.0, 2.0]])}, ReLU(), np.zeros(2)),
                           Layer({1: np.array([[3.0, 1.0]])}, Identity())])
    bound = exact_bound(spec, rtol=1e-6, time_budget=20.0)
    _check_interval(spec, bound, linear_regions(spec))
    assert abs(bound.value - np.sqrt(5.0)) < 1e-9


def test_exact_emptiness_check():
    one, zero = Fraction(1), Fraction(0)
    assert proves_no_interior([[one], [-one]], [zero, -one], np.array([1.0, 1.0]))  # y ≤ 0 and y ≥ 1: empty
    assert proves_no_interior([[one], [-one]], [zero, zero], np.array([1.0, 1.0]))  # y = 0: no interior
    assert not proves_no_interior([[zero]], [zero], np.array([1.0]))  # 0 ≤ 0: all of ℝ
    assert not proves_no_interior([[one], [-one]], [one, zero], np.array([1.0, 1.0]))  # 0 ≤ y ≤ 1
    # y₂ ≥ 1 and y₂ ≤ 10⁻¹²·y₁ meet far out (y₁ > 10¹²): a float LP may call it empty, the exact check must not
    tiny = Fraction(1, 10 ** 12)
    assert not proves_no_interior([[zero, -one], [-tiny, one]], [-one, zero], np.array([1.0, 1.0]))


def test_bad_input():
    spec = _exclusive_pair()
    for rtol in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="rtol"):
            exact_bound(spec, rtol=rtol)
    with pytest.raises(ValueError, match="time_budget"):
        exact_bound(spec, time_budget=0.0)
    group = NetworkSpec(2, [Layer({0: np.eye(2)}, ReLU()), Layer({1: np.eye(2)}, GroupSoftThreshold(0.1, [[0, 1]]))])
    with pytest.raises(ValueError, match=r"layer 2.*group_soft_threshold"):
        exact_bound(group)
    with pytest.raises(ValueError, match="layer 2"):
        phase_table(group)
    with pytest.raises(TypeError):
        exact_bound("not a spec")
