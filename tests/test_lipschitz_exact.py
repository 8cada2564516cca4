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
from unfoldtheory.lipschitz.exact_box import enclosing_box
from unfoldtheory.lipschitz.local import local_upper_bound
from unfoldtheory.lipschitz.local_lower import inside_exactly
from unfoldtheory.lipschitz.polyhedra import phase_table, proves_no_interior
from unfoldtheory.lipschitz.regions import Ball, Box
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


def _node_of(search, y0, depth, tighten_each=True):
    """The search node that fixes the phases of ``y0``'s first ``depth`` neurons (the phase holding its pre-activation
    in its interior), tightened on the way, and ``y0``'s pre-activations; None if ``y0`` lies within 1e-6 of a kink."""
    spec = search.spec
    pres = [v[0] for v in spec.preactivations(y0[None])]
    m = spec.input_dim
    node = exact._Node((), (np.eye(m, m + 1),), None, np.zeros((0, m)), np.zeros(0), (), y0.copy(), np.inf,
                       (np.zeros((m, m + 1)),), None, np.zeros((0, m + 1)), np.zeros((0, m + 1)), np.zeros(0))
    node = search._settle(node)
    while len(node.phases) < min(depth, len(search.where)):
        k, i = search.where[len(node.phases)]
        v = pres[k - 1][i]
        inside = [p for p, ph in enumerate(search.table[k - 1][i]) if ph.lo + 1e-6 < v < ph.hi - 1e-6]
        if not inside:
            return None, pres
        node = search.child(node, inside[0])
        assert node is not None  # y0 is an interior point: never proved empty
        if tighten_each:
            search.tighten(node)
    return node, pres


@settings(max_examples=25, deadline=None)
@given(tiny_specs(kinds=("st", "box", "relu")), st.integers(0, 2 ** 32 - 1), st.integers(1, 6))
def test_node_intervals_contain_sampled_preactivations(spec, seed, depth):
    """The enclosing box and the propagated bounds of a node hold at points sampled in its polyhedron, and a phase
    that the bounds force is the phase of every such point."""
    rng = np.random.default_rng(seed)
    search = exact._Search(spec, 1e-3)
    y0 = rng.standard_normal(spec.input_dim) * 0.5
    node, pres = _node_of(search, y0, depth)
    if node is None:
        return
    for t, p in enumerate(node.phases):  # forced phases (no row) included: y0's value lies in each closed phase
        k, i = search.where[t]
        ph = search.table[k - 1][i][p]
        assert ph.lo - 1e-9 <= pres[k - 1][i] <= ph.hi + 1e-9
    search.tighten(node)
    if node.lower is None:
        return
    box = enclosing_box(node.A, node.c, node.G, node.E, node.rhs)
    assert box is not None
    lo, hi = box
    Y = np.vstack([y0, rng.uniform(lo, hi, (400, spec.input_dim))])
    Y = Y[np.all(Y @ node.A.T <= node.c - 1e-9, axis=1)]  # strictly inside the node's polyhedron
    assert Y.shape[0] >= 1
    assert np.all((Y >= lo) & (Y <= hi))
    for v, a, b in zip(spec.preactivations(Y), node.lower, node.upper, strict=True):
        tol = 1e-9 * (1 + np.abs(v))
        assert np.all((v >= a - tol) & (v <= b + tol))


def test_enclosing_box_of_a_triangle_and_none_for_a_cone():
    """{y₁ ≥ 0, y₂ ≥ 0, y₁ + y₂ ≤ 1} (exact rows): the box is [0, 1]² up to rounding; a cone has none."""
    G = np.array([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [1.0, 1.0, 0.0]])
    E = np.zeros_like(G)
    rhs = np.array([0.0, 0.0, 1.0])
    A = G[:, :2] / np.linalg.norm(G[:, :2], axis=1, keepdims=True)
    c = rhs / np.linalg.norm(G[:, :2], axis=1)
    lo, hi = enclosing_box(A, c, G, E, rhs)
    assert np.all(lo <= 0.0) and np.all(hi >= 1.0)
    assert np.all(lo > -1e-12) and np.all(hi < 1 + 1e-12)
    # an error bound on the rows widens the box (the exact rows are only known within E)
    lo2, hi2 = enclosing_box(A, c, G, np.full_like(G, 1e-3), rhs)
    assert np.all(lo2 < lo) and np.all(hi2 > hi)
    assert enclosing_box(A[:2], c[:2], G[:2], E[:2], rhs[:2]) is None
    assert enclosing_box(A[[0, 1, 1]], c[[0, 1, 1]], G[[0, 1, 1]], E[[0, 1, 1]], rhs[[0, 1, 1]]) is None


def _stable_after_dead_zone() -> NetworkSpec:
    """Layer 1: soft-thresholding (θ = 1) of ``y``; layer 2: ReLU of ``z₁ + z₂ + 3 − 0.5·y₁`` (input injection). On the
    dead-zone square ``|y| ≤ 1`` that pre-activation lies in [2.5, 3.5]: the bounds of that node force it active,
    no emptiness LP needed."""
    W1 = np.eye(2)
    l2 = Layer({1: np.array([[1.0, 1.0], [1.0, -1.0]]), 0: np.array([[-0.5, 0.0], [0.0, 0.25]])}, ReLU(),
               np.array([3.0, 0.0]))
    return NetworkSpec(2, [Layer({0: W1}, SoftThreshold(1.0)), l2], {2: np.array([[1.0, 2.0]]), 1: np.array([[0.5, -1.0]])})


def test_intervals_force_a_later_phase_and_the_search_still_matches_the_oracle():
    spec = _stable_after_dead_zone()
    search = exact._Search(spec, 1e-3)
    node, _ = _node_of(search, np.array([0.1, -0.2]), 2, tighten_each=False)
    search.tighten(node)
    assert node.lower is not None and node.lower[1][0] >= 2.5 - 1e-9 and node.upper[1][0] <= 3.5 + 1e-9
    assert search._forced(node, 2, 0) == 1 and search._forced(node, 2, 1) is None  # [2.5, 3.5]: active; [−¼, ¼]: no
    settled = search._settle(node)  # fixes layer 2's first neuron (active) wherever it comes, stops at the second
    assert search.where[len(settled.phases)] == (2, 1)
    fixed = dict(zip(search.where[:len(settled.phases)], settled.phases, strict=True))
    assert fixed.get((2, 0), 1) == 1 and search.stats["forced_by_intervals"] == ((2, 0) in fixed)
    bound = exact_bound(spec, rtol=1e-6, time_budget=20.0)
    _check_interval(spec, bound, linear_regions(spec))
    assert bound.details["closed"]


def test_node_intervals_prune_and_the_search_matches_the_oracle():
    """Soft-thresholding (θ = 1) then ReLU with input injection, dyadic weights, vertex enumeration limited to 2
    unstable neurons: bounded nodes get boxes whose propagated bounds make later neurons stable (``box_gains``), the
    search needs fewer nodes than with the node intervals switched off, and both intervals contain the oracle's value."""
    l1 = Layer({0: np.array([[1.75, -3.0], [1.0, 0.0], [1.25, 0.5]])}, SoftThreshold(1.0))
    l2 = Layer({1: np.array([[1.75, 0.0, -0.5], [0.5, 0.5, -0.25], [-0.25, 0.75, 0.75]]),
                0: np.array([[-0.25, -0.125], [-0.875, 0.875], [-0.125, 0.625]])}, ReLU(), np.array([0.75, 4.0, 3.0]))
    spec = NetworkSpec(2, [l1, l2], {2: np.array([[0.25, 1.5, -1.0], [1.25, -1.5, 0.25]])})
    oracle = linear_regions(spec)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(exact, "VERTEX_NEURONS", 2)
        bound = exact_bound(spec, rtol=1e-6, time_budget=20.0)
        mp.setattr(exact._Search, "tighten", lambda self, node: None)
        plain = exact_bound(spec, rtol=1e-6, time_budget=20.0)
    for b in (bound, plain):
        _check_interval(spec, b, oracle)
        assert b.details["closed"]
    assert bound.details["box_gains"] >= 1 and plain.details["boxes"] == 0
    assert bound.details["nodes"] < plain.details["nodes"]


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


# ---------------------------------------------------------------- the local constant over a region


def _clipped(spec: NetworkSpec, lo: np.ndarray, hi: np.ndarray) -> NetworkSpec:
    """``f ∘ clip_[lo, hi]``: its global constant is ``f``'s constant on the box (the projection is 1-Lipschitz and the
    identity on the box), an independent route for the oracle."""
    m = spec.input_dim
    layers = [Layer({0: np.eye(m)}, BoxProjection(lo, hi), np.zeros(m))]
    for k in range(spec.num_layers):
        layers.append(Layer({j + 1: w for j, w in spec.weights[k].items()}, spec.activations[k], spec.biases[k]))
    return NetworkSpec(m, layers, {j + 1: c for j, c in spec.readout.items()})


def _sampled_max(spec: NetworkSpec, region, count: int = 400) -> float:
    return max(float(np.linalg.norm(spec.jacobian(y), 2)) for y in region.sample(count, rng=1))


def _check_local(spec, region, bound):
    lower = bound.details["lower"]
    assert bound.certified and lower.certified and lower.value <= bound.value
    y1, y2 = bound.details["witness"]
    if lower.value > 0:
        assert np.all(inside_exactly(region, np.vstack([y1, y2])))
        ratio = certified_ratio(spec, y1, y2)  # the local search may certify its pair by the linear piece instead
        assert ratio.certified and abs(ratio.float_ratio - lower.value) <= 1e-9 * lower.value
    assert _sampled_max(spec, region) <= bound.value * (1 + SLACK)


@settings(max_examples=12, deadline=None)
@given(tiny_specs(), st.integers(0, 2 ** 32 - 1))
def test_box_region_matches_the_oracle_on_the_clipped_net(spec, seed):
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal(spec.input_dim)
    half = rng.uniform(0.05, 1.0, spec.input_dim)
    region = Box(centre - half, centre + half)
    bound = exact_bound(spec, region=region, rtol=1e-6, time_budget=20.0)
    _check_local(spec, region, bound)
    oracle = linear_regions(_clipped(spec, region.lower, region.upper)).lipschitz
    assert bound.details["lower"].value <= oracle * (1 + SLACK) + 1e-300
    assert oracle <= bound.value * (1 + SLACK)
    assert bound.details["closed"] and bound.quantity != exact_bound(spec, rtol=1e-6, time_budget=20.0).quantity
    whole = exact_bound(spec, rtol=1e-6, time_budget=20.0)
    assert bound.details["lower"].value <= whole.value
    assert bound.value <= whole.value * (1 + 1e-6) ** 2
    local = local_upper_bound(spec, region)
    assert bound.value <= local.value * (1 + 1e-9)


def test_box_region_below_the_global_constant_and_exactly_its_regions():
    """Two ReLU pieces with slopes 1 and 3 meeting at y = 0: on [0.5, 2] only the slope-1 piece, on [-1, 1] both."""
    spec = NetworkSpec(1, [Layer({0: np.array([[1.0], [-1.0]])}, ReLU(), np.zeros(2))], {1: np.array([[1.0, 3.0]])})
    right = exact_bound(spec, region=Box([0.5], [2.0]), rtol=1e-9)
    assert right.details["closed"] and abs(right.value - 1.0) < 1e-9
    both = exact_bound(spec, region=Box([-1.0], [1.0]), rtol=1e-9)
    assert both.details["closed"] and abs(both.value - 3.0) < 1e-9
    assert abs(exact_bound(spec, rtol=1e-9).value - 3.0) < 1e-9


@settings(max_examples=8, deadline=None)
@given(tiny_specs(), st.integers(0, 2 ** 32 - 1))
def test_ball_region_witnesses_inside_the_ball(spec, seed):
    rng = np.random.default_rng(seed)
    region = Ball(rng.standard_normal(spec.input_dim), float(rng.uniform(0.05, 1.0)))
    bound = exact_bound(spec, region=region, rtol=1e-6, time_budget=20.0)
    _check_local(spec, region, bound)
    lo, hi = region.enclosing_box()
    boxed = exact_bound(spec, region=Box(lo, hi), rtol=1e-6, time_budget=20.0)
    assert bound.details["lower"].value <= boxed.value * (1 + 1e-9)  # the ball lies in its box
    assert "enclosing box" in bound.details["domain"]


def test_box_region_branches_below_the_agnostic_value():
    """``_exclusive_pair`` on boxes: the root's vertex bound over the box is 2 (both first neurons unstable), so the
    search must branch; the exact local constants are √1.25 where the box reaches y₂ > 1, and 1 where it does not."""
    spec = _exclusive_pair()
    for lower, upper, expected in (([-1.0, 0.0], [1.0, 2.0], np.sqrt(1.25)), ([-1.0, -1.0], [1.0, 0.5], 1.0)):
        region = Box(lower, upper)
        bound = exact_bound(spec, region=region, rtol=1e-9, time_budget=20.0)
        _check_local(spec, region, bound)
        assert bound.details["closed"] and bound.details["nodes"] >= 1
        assert abs(bound.value - expected) < 1e-9
        assert abs(linear_regions(_clipped(spec, region.lower, region.upper)).lipschitz - expected) < 1e-9


def test_ball_drops_regions_of_its_box_outside_it():
    """``y₁ + ½ReLU(y₁ + y₂ − 1.5)`` (first neurons as ``_exclusive_pair``): the unit ball centred at 0 never reaches
    ``y₁ + y₂ > √2``, its enclosing box does (constant √2.5 there); the exact constant on the ball is 1, on the box √2.5."""
    W = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 1.0]])
    spec = NetworkSpec(2, [Layer({0: W}, ReLU(), np.array([0.0, 0.0, -1.5]))], {1: np.array([[1.0, -1.0, 0.5]])})
    ball = Ball(np.zeros(2), 1.0)
    bound = exact_bound(spec, region=ball, rtol=1e-9, time_budget=20.0)
    _check_local(spec, ball, bound)
    assert bound.details["closed"] and abs(bound.value - 1.0) < 1e-9
    boxed = exact_bound(spec, region=Box(*ball.enclosing_box()), rtol=1e-9, time_budget=20.0)
    assert boxed.details["closed"] and abs(boxed.value - np.sqrt(2.5)) < 1e-9


def _box_root(search, lo, hi):
    m = len(lo)
    eye, zero = np.eye(m), np.zeros((m, 1))
    G = np.vstack([np.hstack([eye, zero]), np.hstack([-eye, zero])])
    rows = tuple((0, j, side) for side in (1, -1) for j in range(m))
    c = np.concatenate([hi, -np.asarray(lo)])
    node = exact._Node((), (np.eye(m, m + 1),), None, np.vstack([eye, -eye]), c, rows, None, np.inf,
                       (np.zeros((m, m + 1)),), None, G, np.zeros_like(G), c)
    return search._settle(node)


def test_children_outside_the_ball_are_proved_to_miss_it():
    """ReLU(y₁ + y₂ − 1.5) on the unit ball (box [−1, 1]²): the active child meets the box, not the ball (y₁ + y₂ ≤ √2
    there); the exact aggregate-row proof drops it, and keeps it for a ball of radius 1.1 (√2.42 > 1.5)."""
    spec = NetworkSpec(2, [Layer({0: np.array([[1.0, 1.0]])}, ReLU(), np.array([-1.5]))], {1: np.array([[0.5]])})
    for radius, dropped in ((1.0, True), (1.1, False)):
        ball = Ball(np.zeros(2), radius)
        search = exact._Search(spec, 1e-3, ball)
        node = _box_root(search, *search.box)
        assert (search.child(node, 1) is None) == dropped and search.stats["outside_region"] == int(dropped)
        assert search.child(node, 0) is not None


def test_input_rows_prove_a_region_outside_the_box_empty():
    """ReLU(y − 2) on the box [−1, 1]: the active phase (y ≥ 2) is proved interior-free by the box's rows."""
    spec = NetworkSpec(1, [Layer({0: np.array([[1.0]])}, ReLU(), np.array([-2.0]))], {1: np.array([[5.0]])})
    search = exact._Search(spec, 1e-3, Box([-1.0], [1.0]))
    node = _box_root(search, *search.box)
    assert search.child(node, 1) is None and search.stats["empty_proved"] == 1
    assert search.child(node, 0) is not None
    bound = exact_bound(spec, region=Box([-1.0], [1.0]))
    assert bound.value == 0.0 and bound.details["closed"]  # f is constant on the box


def test_bad_region():
    spec = _exclusive_pair()
    with pytest.raises(ValueError, match="input dimension"):
        exact_bound(spec, region=Box(np.zeros(spec.input_dim + 1), np.ones(spec.input_dim + 1)))
    with pytest.raises(ValueError, match="empty interior"):
        exact_bound(spec, region=Box(np.zeros(spec.input_dim), np.zeros(spec.input_dim)))
    with pytest.raises(ValueError, match="empty interior"):
        exact_bound(spec, region=Ball(np.zeros(spec.input_dim), 0.0))
    with pytest.raises(TypeError, match="region"):
        exact_bound(spec, region=(np.zeros(spec.input_dim), np.ones(spec.input_dim)))
