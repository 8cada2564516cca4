"""Local Lipschitz upper bounds: slope ranges, the restricted spec, and local ≤ global ≥ sampled.

Independent routes: sampled difference quotients against the declared slope ranges; the restricted spec's
evaluation against the original's on the region; the certified local bound against sampled Jacobian norms and
pair ratios inside the region, and against the global certificate of the same method.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory import testing as ut
from unfoldtheory.activations import (
    Activation,
    BoxProjection,
    GroupSoftThreshold,
    RegionSlopes,
    ReLU,
    SoftThreshold,
    from_config,
)
from unfoldtheory.lipschitz import sdp_bound, upper_bound
from unfoldtheory.lipschitz.bound_propagation import preactivation_bounds
from unfoldtheory.lipschitz.local import local_upper_bound
from unfoldtheory.lipschitz.regions import Ball, Box
from unfoldtheory.lipschitz.restriction import CONSTANT, LINEAR, UNSTABLE, restrict
from unfoldtheory.spec import Layer, NetworkSpec, unrolled

FAST = settings(max_examples=25, deadline=None)
ACTIVATIONS = [SoftThreshold(0.3), SoftThreshold([0.0, 0.2, 0.5]), ReLU(), BoxProjection(-0.4, 0.7),
               BoxProjection([-1.0, 0.0, 0.2], [1.0, 0.0, np.inf])]


@FAST
@given(st.sampled_from(ACTIVATIONS), st.lists(st.floats(-2, 2), min_size=6, max_size=6), st.integers(0, 2**31))
def test_slope_range_contains_every_sampled_difference_quotient(act, ends, seed):
    lo = np.minimum(ends[:3], ends[3:])
    hi = np.maximum(ends[:3], ends[3:])
    alpha, beta = act.slope_range(lo, hi)
    offset = act.fixed_piece(lo, hi)
    rng = np.random.default_rng(seed)
    a = rng.uniform(lo, hi, (200, 3))
    b = rng.uniform(lo, hi, (200, 3))
    a[:10], b[:10] = lo, hi  # the end points
    fa, fb = act(a), act(b)
    moved = np.abs(a - b) > 1e-9
    q = np.where(moved, (fa - fb) / np.where(moved, a - b, 1.0), 0.5 * (alpha + beta))
    assert np.all(q >= alpha - 1e-9) and np.all(q <= beta + 1e-9)
    fixed = np.isfinite(offset)
    assert np.all(alpha[fixed] == beta[fixed])
    assert np.allclose((alpha * a + offset)[:, fixed], fa[:, fixed], atol=1e-12)


def test_slope_ranges_of_the_pieces():
    st_ = SoftThreshold(0.5)
    alpha, beta = st_.slope_range([0.5, -0.4, -3.0, 0.2], [2.0, 0.4, -0.5, 0.6])
    assert alpha.tolist() == [1.0, 0.0, 1.0, 0.0] and beta.tolist() == [1.0, 0.0, 1.0, 1.0]
    assert st_.fixed_piece([0.5, -0.4, -3.0, 0.2], [2.0, 0.4, -0.5, 0.6])[:3].tolist() == [-0.5, 0.0, 0.5]
    assert SoftThreshold(0.0).slope_range([-1.0], [1.0]) == (np.ones(1), np.ones(1))  # the identity
    alpha, beta = ReLU().slope_range([-np.inf, 0.0, -1.0], [0.0, np.inf, 1.0])
    assert alpha.tolist() == [0.0, 1.0, 0.0] and beta.tolist() == [0.0, 1.0, 1.0]


def test_region_slopes_is_checked_and_round_trips():
    act = RegionSlopes(SoftThreshold(0.5), [0.6, -0.3], [1.0, 0.7])
    assert act.neuron_slopes(2)[0].tolist() == [1.0, 0.0] and act.proof == "proofs/local_slopes.py"
    again = from_config(act.config())
    assert isinstance(again, RegionSlopes) and again.alpha.tolist() == act.alpha.tolist()

    class Mine(Activation):
        name = "mine"

        def __call__(self, v):
            return np.tanh(v)

    with pytest.raises(ValueError, match="separable built-in"):
        RegionSlopes(Mine(), [0.0], [1.0])
    with pytest.raises(ValueError, match="lower > upper"):
        RegionSlopes(ReLU(), [1.0], [0.0])
    with pytest.raises(ValueError, match="NaN"):
        ReLU().slope_range([np.nan], [1.0])


def _bounds(spec, region):
    return preactivation_bounds(spec, region, method="interval")


@FAST
@given(ut.unrolled_specs(activation=st.sampled_from(["soft_threshold", "relu"]), max_layers=4),
       st.sampled_from([0.01, 0.1, 1.0]), st.integers(0, 2**31))
def test_restricted_spec_computes_the_original_on_the_region(spec, radius, seed):
    rng = np.random.default_rng(seed)
    region = Ball(rng.standard_normal(spec.input_dim), radius)
    bounds = _bounds(spec, region)
    Y = region.sample(64, rng)
    out = spec.evaluate(Y)
    for keep_linear in (False, True):
        restriction = restrict(spec, bounds.lower, bounds.upper, keep_linear=keep_linear)
        again = restriction.spec.evaluate(Y) + restriction.output_offset
        assert np.allclose(out, again, rtol=1e-9, atol=1e-9 * (1 + np.abs(out).max()))
        assert restriction.stable + restriction.unstable == sum(spec.dims[1:])


@FAST
@given(ut.unrolled_specs(max_layers=4, min_threshold=0.05), st.sampled_from([0.05, 0.5]), st.integers(0, 2**31))
def test_chain_form_of_the_restriction_is_never_worse_than_the_global_lmi(spec, radius, seed):
    rng = np.random.default_rng(seed)
    region = Ball(rng.standard_normal(spec.input_dim), radius)
    local = local_upper_bound(spec, region, method="sequential")
    assert local.certified
    Y = region.sample(64, rng)
    assert local.value >= max(np.linalg.norm(spec.jacobian(y), 2) for y in Y) * (1 - 1e-9)
    # the chain form drops the constant neurons' columns and keeps the others' global terms: a restriction of the
    # global LMI to a subspace, so its optimum is no larger
    bounds = preactivation_bounds(spec, region)
    chain = restrict(spec, bounds.lower, bounds.upper, keep_linear=True)
    if chain.linear:
        return
    assert sdp_bound(chain.spec).value <= sdp_bound(spec).value * (1 + 1e-4) + 1e-12


@FAST
@given(ut.unrolled_specs(activation=st.sampled_from(["soft_threshold", "relu"]), max_layers=3),
       st.sampled_from([0.02, 0.3, 3.0]), st.sampled_from([2, np.inf]), st.integers(0, 2**31))
def test_local_upper_bound_is_above_sampled_jacobians_and_pairs_and_below_global(spec, radius, norm, seed):
    rng = np.random.default_rng(seed)
    region = Ball(rng.standard_normal(spec.input_dim), radius, norm=norm)
    local = local_upper_bound(spec, region, method="sdp")
    best = local_upper_bound(spec, region)
    assert local.certified and best.certified
    Y = region.sample(128, rng)
    jac = max(np.linalg.norm(spec.jacobian(y), 2) for y in Y)
    A, B = Y[:64], Y[64:]
    moved = np.linalg.norm(A - B, axis=1) > 1e-12
    ratios = np.linalg.norm(spec.evaluate(A) - spec.evaluate(B), axis=1)[moved] / np.linalg.norm(A - B, axis=1)[moved]
    for bound in (local, best):
        assert bound.value >= jac * (1 - 1e-9)
        assert bound.value >= ratios.max(initial=0.0) * (1 - 1e-9)
    glob = upper_bound(spec, "sdp")
    # the restricted LMI is the global one on a subspace with narrower slope ranges: its optimum is no larger
    assert local.value <= glob.value * (1 + 1e-4) + 1e-12


def test_an_affine_region_gives_the_norm_of_its_jacobian():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((6, 4))
    spec = unrolled([None, 0.5 * np.eye(6)], [A, A], [0.01, 0.01])
    y = rng.standard_normal(4) * 10
    region = Ball(y, 1e-4)
    bound = local_upper_bound(spec, region)
    assert bound.certified and bound.details["unstable"] == 0 and bound.method == "local (affine on the region)"
    exact = np.linalg.norm(spec.jacobian(y), 2)
    assert exact <= bound.value <= exact * (1 + 1e-12)


def test_constant_region_and_group_blocks():
    # every soft-threshold neuron is dead on a small ball around 0: the map is constant there
    rng = np.random.default_rng(0)
    spec = unrolled([None, np.eye(3)], [rng.standard_normal((3, 2))] * 2, [5.0, 5.0])
    bound = local_upper_bound(spec, Ball(np.zeros(2), 0.1))
    assert bound.certified and bound.value <= 1e-300  # the map is constant: 0, rounded up
    group = NetworkSpec(2, [Layer({0: rng.standard_normal((4, 2))}, GroupSoftThreshold.contiguous(1.0, 4, 2))])
    far = Ball(np.array([30.0, -20.0]), 0.5)
    restriction = restrict(group, *(lambda b: (b.lower, b.upper))(_bounds(group, far)))
    assert all(k in (CONSTANT, LINEAR, UNSTABLE) for k in restriction.kinds[0])
    assert local_upper_bound(group, Box(np.zeros(2) - 0.01, np.zeros(2) + 0.01)).value <= 1e-300  # ‖v_g‖ ≤ θ near 0
    local = local_upper_bound(group, far, method="sdp")
    assert local.certified and local.value <= upper_bound(group, "sdp").value * (1 + 1e-4)


def test_bad_input_is_named():
    spec = unrolled([None], [np.eye(2)], [0.1])
    with pytest.raises(ValueError, match="input dimension 3"):
        local_upper_bound(spec, Ball(np.zeros(3), 1.0))
    with pytest.raises(TypeError, match="Region"):
        local_upper_bound(spec, np.zeros(2))
    with pytest.raises(ValueError, match="time_budget"):
        local_upper_bound(spec, Ball(np.zeros(2), 1.0), time_budget=-1)
    with pytest.raises(ValueError, match="expected one per layer"):
        restrict(spec, [], [])
    with pytest.raises(ValueError, match="exceeds upper"):
        restrict(spec, [np.ones(2)], [np.zeros(2)])


@settings(max_examples=15, deadline=None)
@given(ut.unrolled_specs(m=st.integers(1, 3), n=st.integers(1, 3), K=st.integers(1, 3), min_threshold=0.05),
       st.sampled_from([0.05, 0.5]), st.sampled_from(["sdp", "sequential"]), st.integers(0, 2**31))
def test_local_lmi_certificates_pass_the_exact_oracle_on_the_restricted_spec(spec, radius, method, seed):
    from fractions import Fraction

    from unfoldtheory.oracle.lmi import lipsdp_certificate_holds

    region = Ball(np.random.default_rng(seed).standard_normal(spec.input_dim), radius)
    bound = local_upper_bound(spec, region, method=method)
    assert bound.certified
    cert = bound.certificate
    if not isinstance(cert["inner"], dict) or "multipliers" not in cert["inner"]:
        return  # affine on the region: no LMI
    # rebuild the restricted spec from the certified pre-activation bounds, as a checker would
    restriction = restrict(spec, cert["lower"], cert["upper"], keep_linear=method == "sequential")
    assert lipsdp_certificate_holds(restriction.spec, cert["inner"]["multipliers"], cert["inner"]["rho"])
    assert Fraction(bound.value) ** 2 >= Fraction(cert["inner"]["rho"])


@settings(max_examples=10, deadline=None)
@given(ut.unrolled_specs(activation=st.sampled_from(["soft_threshold", "relu"]), max_layers=3),
       st.sampled_from([0.3, 3.0]), st.integers(0, 2**31))
def test_a_spent_time_budget_still_gives_a_certified_bound_above_the_samples(spec, radius, seed):
    """With almost no time the propagation stops at once and the solves are skipped, with their reasons: the product
    bound of the restricted spec is left, certified, and still above every sampled Jacobian norm in the region."""
    rng = np.random.default_rng(seed)
    region = Ball(rng.standard_normal(spec.input_dim), radius)
    bound = local_upper_bound(spec, region, time_budget=1e-9)
    assert bound.certified
    jac = max(np.linalg.norm(spec.jacobian(y), 2) for y in region.sample(64, rng))
    assert bound.value >= jac * (1 - 1e-9)
    assert bound.details["propagation_stopped_at_layer"] == 1
    if "skipped" in bound.details:  # not affine on the region: the solves were skipped
        assert "time budget" in bound.details["skipped"]["sdp"] and "time budget" in bound.details["skipped"]["first-order"]
