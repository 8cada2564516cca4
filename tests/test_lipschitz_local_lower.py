"""Local lower bounds: a witness pair inside the region, certified, below every certified upper bound (issue 13)."""


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory import testing as ut
from unfoldtheory.activations import Identity
from unfoldtheory.forward_error import certified_ratio
from unfoldtheory.lipschitz import upper_bound
from unfoldtheory.lipschitz.agnostic import activation_agnostic
from unfoldtheory.lipschitz.local_lower import inside_exactly, local_lower_bound
from unfoldtheory.lipschitz.regions import Ball, Box
from unfoldtheory.spec import Layer, NetworkSpec

SMALL = ut.unrolled_specs(m=st.integers(1, 4), n=st.integers(1, 4), K=st.integers(1, 3),
                          activation=st.sampled_from(["soft_threshold", "relu"]))
KINDS = ("ball2", "ballinf", "box")


@st.composite
def specs_and_regions(draw, specs=SMALL, kinds=KINDS):
    """A spec and a region of its inputs: a centre of norm up to 3, a radius from 1e-4 to 3 (per-coordinate half-widths
    for boxes)."""
    spec = draw(specs)
    m = spec.input_dim
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    centre = rng.standard_normal(m) * draw(st.sampled_from([0.1, 1.0, 3.0]))
    radius = 10.0 ** draw(st.floats(-4, 0.5))
    kind = draw(st.sampled_from(kinds))
    if kind == "box":
        half = radius * rng.random(m)
        return spec, Box(centre - half, centre + half)
    return spec, Ball(centre, radius, 2 if kind == "ball2" else np.inf)


def _assert_witness_inside(bound, region):
    y1, y2 = (np.asarray(bound.certificate[k]) for k in ("y1", "y2"))
    assert not np.array_equal(y1, y2)
    assert region.contains(np.stack([y1, y2])).all()
    assert inside_exactly(region, np.stack([y1, y2])).all()


@settings(max_examples=30)
@given(specs_and_regions())
def test_witnesses_lie_inside_their_regions_and_re_evaluate(case):
    spec, region = case
    lb = local_lower_bound(spec, region, restarts=3, time_budget=2.0)
    assert lb.kind == "lower" and lb.certified, lb.details.get("reason")
    _assert_witness_inside(lb, region)
    cert = lb.certificate
    assert certified_ratio(spec, cert["y1"], cert["y2"]).value == cert["ratio"]
    if "piece_gain" in cert:  # the linear-piece route: re-derived from the box around y0, and below ‖J(y0)‖
        assert lb.value == cert["piece_gain"] >= cert["ratio"]
        assert bool(inside_exactly(region, cert["y0"][None, :])[0])
        assert lb.value <= np.linalg.norm(spec.jacobian(cert["y0"]), 2) * (1 + 1e-12)
    else:
        assert lb.value == cert["ratio"]
    assert lb.details["region"] == repr(region)
    # the search starts from the centre: it never ends below the centre's Jacobian norm
    assert lb.details["search_best_jacobian_norm"] >= lb.details["centre_jacobian_norm"]


@settings(max_examples=25)
@given(specs_and_regions())
def test_local_lower_is_below_the_global_certified_upper_bounds(case):
    spec, region = case
    lb = local_lower_bound(spec, region, restarts=3, time_budget=2.0)
    product, agnostic = upper_bound(spec, "product"), activation_agnostic(spec)
    assert product.certified and agnostic.certified
    assert lb.value <= agnostic.value * (1 + 1e-9) + 1e-12 <= product.value * (1 + 1e-6) + 1e-9


@settings(max_examples=15)
@given(specs_and_regions(), st.floats(1.0, 4.0))
def test_local_lower_is_below_the_local_upper_bound_of_the_region_and_of_a_larger_one(case, grow):
    from unfoldtheory.lipschitz.local import local_upper_bound

    spec, region = case
    lb = local_lower_bound(spec, region, restarts=3, time_budget=2.0)
    if isinstance(region, Ball):
        larger = Ball(region.center, region.radius * grow, region.norm)
    else:
        mid, half = 0.5 * (region.lower + region.upper), 0.5 * (region.upper - region.lower)
        larger = Box(np.minimum(region.lower, mid - grow * half), np.maximum(region.upper, mid + grow * half))
    for reg in (region, larger):
        ub = local_upper_bound(spec, reg, time_budget=10.0)
        assert ub.certified
        assert lb.value <= ub.value * (1 + 1e-9) + 1e-12


def test_a_linear_network_gives_the_norm_of_its_jacobian():
    rng = np.random.default_rng(3)
    V, W = rng.standard_normal((6, 4)), rng.standard_normal((5, 6))
    spec = NetworkSpec(4, [Layer({0: V}, Identity()), Layer({1: W, 0: rng.standard_normal((5, 4))}, Identity())])
    exact = np.linalg.norm(spec.jacobian(np.zeros(4)), 2)
    for region in (Ball(rng.standard_normal(4), 0.01), Ball(np.ones(4), 1e-3, np.inf), Box(-np.ones(4), np.ones(4))):
        lb = local_lower_bound(spec, region, restarts=2, time_budget=1.0)
        assert lb.certified and lb.details["same_region"]
        assert lb.value <= exact * (1 + 1e-12)
        assert lb.value == pytest.approx(exact, rel=1e-9)
        _assert_witness_inside(lb, region)


@settings(max_examples=15)
@given(SMALL, st.integers(0, 2 ** 32 - 1))
def test_a_region_inside_one_linear_piece_gives_the_jacobian_there(spec, seed):
    """Independent route: around a point whose pre-activations all keep their piece over the ball, the local constant
    is ‖J(centre)‖ (the map is affine on the ball), which spec.jacobian computes directly."""
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal(spec.input_dim)
    J = spec.jacobian(centre)
    radius = 1e-6 * max(np.linalg.norm(centre), 1.0)
    region = Ball(centre, radius)
    patterns = [np.concatenate([a.slopes(p) for a, p in zip(spec.activations, spec.preactivations(y), strict=True)])
                for y in np.vstack([centre, region.sample(64, rng)])]
    if any(not np.array_equal(p, patterns[0]) for p in patterns):
        return  # a kink is within the ball: the local constant may exceed ‖J(centre)‖
    lb = local_lower_bound(spec, region, restarts=2, time_budget=1.0)
    assert lb.certified
    assert lb.value == pytest.approx(np.linalg.norm(J, 2), rel=1e-6, abs=1e-12)


def test_a_flat_box_keeps_the_witness_in_its_free_coordinates():
    spec = _ista()
    lo, hi = np.array([-0.5, 0.2, -1.0]), np.array([0.5, 0.2, 1.0])  # coordinate 1 is fixed
    lb = local_lower_bound(spec, Box(lo, hi), restarts=2, time_budget=1.0)
    assert lb.certified
    _assert_witness_inside(lb, Box(lo, hi))
    assert lb.certificate["y1"][1] == lb.certificate["y2"][1] == 0.2


def _ista():
    from unfoldtheory.classical import ista_spec

    A = np.random.default_rng(5).standard_normal((3, 6)) / np.sqrt(3)
    return ista_spec(A, lam=0.1, layers=3)


def test_a_zero_diameter_region_gives_the_trivial_certified_zero():
    spec = _ista()
    for region in (Ball(np.ones(3), 0.0), Ball(np.ones(3), 0.0, np.inf), Box(np.ones(3), np.ones(3))):
        lb = local_lower_bound(spec, region)
        assert lb.value == 0.0 and lb.certified and "zero diameter" in lb.details["reason"]


def test_bad_arguments_are_refused():
    spec, region = _ista(), Ball(np.zeros(3), 0.1)
    for kwargs, match in (({"time_budget": 0}, "time_budget"), ({"time_budget": -1.0}, "time_budget"),
                          ({"time_budget": float("nan")}, "time_budget"), ({"seed": 1.5}, "seed"),
                          ({"seed": True}, "seed"), ({"restarts": 0}, "restarts")):
        with pytest.raises(ValueError, match=match):
            local_lower_bound(spec, region, **kwargs)
    with pytest.raises(ValueError, match="input dimension"):
        local_lower_bound(spec, Ball(np.zeros(4), 0.1))
    with pytest.raises(TypeError, match="Region"):
        local_lower_bound(spec, (np.zeros(3), 0.1))


def test_exact_membership_refuses_points_just_outside():
    c = np.array([0.1, -0.3])
    for region, edge in ((Ball(c, 0.5), c + np.array([0.5, 0.0])), (Ball(c, 0.5, np.inf), c + 0.5),
                         (Box(c - 0.5, c + 0.5), c + 0.5)):
        outside = np.nextafter(edge, edge + 1.0)
        assert not inside_exactly(region, outside).any()
        assert inside_exactly(region, c).all()


@settings(max_examples=15)
@given(ut.scaled_specs(max_exponent=300), st.integers(0, 2 ** 32 - 1), st.sampled_from(KINDS))
def test_never_above_the_truth_at_extreme_weight_scales(triple, seed, kind):
    """The scaled spec is σ_out times the base map exactly: its certified local lower bound can never exceed σ_out
    times the base's certified activation-agnostic (global) upper bound."""
    base, scaled, sigma = triple
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal(base.input_dim)
    region = Box(centre - 0.5, centre + 0.5) if kind == "box" else Ball(centre, 0.5, 2 if kind == "ball2" else np.inf)
    lb = local_lower_bound(scaled, region, restarts=2, time_budget=1.0)
    ag = activation_agnostic(base)
    if lb.certified:
        assert lb.value <= sigma * ag.value * (1 + 1e-9) + 1e-300
        _assert_witness_inside(lb, region)
    else:
        assert lb.details["reason"]


def test_region_ascent_lps_return_points_of_the_piece_and_the_ball_or_nothing():
    """The Chebyshev-centre LP of stage 4 with an ℓ2-ball domain (chord pull-in, tangent cuts): every point it returns
    lies strictly inside the piece {A y < b} and inside the ball exactly."""
    from unfoldtheory.lipschitz import lower
    from unfoldtheory.lipschitz.local_lower import _domain

    rng = np.random.default_rng(11)
    found = 0
    for _ in range(30):
        m = int(rng.integers(2, 6))
        centre = rng.standard_normal(m)
        region = Ball(centre, 0.3)
        A = rng.standard_normal((12, m))
        A /= np.linalg.norm(A, axis=1, keepdims=True)
        b = A @ centre + rng.uniform(-0.2, 0.5, 12)  # some facets cut through the ball
        F = lower._Bounds(A, b, *(np.zeros(12, dtype=int) for _ in range(4)), np.ones(12, dtype=bool))
        point = lower._interior(F, centre, 0.15, float("inf"), _domain(region))
        if point is not None:
            found += 1
            assert np.all(A @ point < b)
            assert inside_exactly(region, point).all()
    assert found >= 8  # 11 of these 30 pieces meet the ball at a point the LPs reach
