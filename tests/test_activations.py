"""Activations against independent formulas, their declared properties checked empirically,
Jacobians against finite differences, serialisation and argument checks."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from unfoldtheory.activations import (
    Activation,
    BoxProjection,
    GroupSoftThreshold,
    Identity,
    ReLU,
    SoftThreshold,
    from_config,
    soft_threshold,
)

FLOATS = st.floats(-5.0, 5.0, allow_nan=False)


def vectors(d: int) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, d, elements=FLOATS)


@st.composite
def partitions(draw, d: int) -> list[list[int]]:
    """A random partition of range(d) into non-empty groups (not necessarily contiguous)."""
    perm = draw(st.permutations(range(d)))
    cuts = sorted(draw(st.sets(st.integers(1, d - 1), max_size=d - 1))) if d > 1 else []
    bounds = [0, *cuts, d]
    return [list(perm[a:b]) for a, b in itertools.pairwise(bounds)]


@st.composite
def activations(draw, d: int, kinds=("soft_threshold", "relu", "identity", "box_projection", "group_soft_threshold")):
    kind = draw(st.sampled_from(kinds))
    theta = st.floats(0.0, 2.0)
    if kind == "soft_threshold":
        return SoftThreshold(draw(st.one_of(theta, hnp.arrays(np.float64, d, elements=theta))))
    if kind == "relu":
        return ReLU()
    if kind == "identity":
        return Identity()
    if kind == "box_projection":
        lo = draw(hnp.arrays(np.float64, d, elements=st.one_of(st.just(-np.inf), st.floats(-3.0, 3.0))))
        width = draw(hnp.arrays(np.float64, d, elements=st.one_of(st.just(np.inf), st.floats(0.0, 3.0))))
        hi = np.where(np.isinf(lo), draw(st.floats(-3.0, 3.0)), np.where(np.isinf(lo), 0.0, lo) + width)
        return BoxProjection(lo, hi)
    return GroupSoftThreshold(draw(theta), draw(partitions(d)))


def activation_and_points(n_points: int = 2, **kw):
    return st.integers(1, 6).flatmap(
        lambda d: st.tuples(activations(d, **kw), *[vectors(d) for _ in range(n_points)]))


# ----------------------------------------------------------------------------- formulas


@settings(max_examples=60)
@given(st.integers(1, 6).flatmap(lambda d: st.tuples(vectors(d), st.one_of(
    st.floats(0.0, 3.0), hnp.arrays(np.float64, d, elements=st.floats(0.0, 3.0))))))
def test_soft_threshold_formula_and_prox_optimality(case):
    v, theta = case
    out = SoftThreshold(theta)(v)
    th = np.broadcast_to(theta, v.shape)
    want = np.where(v > th, v - th, np.where(v < -th, v + th, 0.0))
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(soft_threshold(v, theta), out)
    # optimality of the prox of θ|·|: v − x ∈ θ ∂|x|
    nz = out != 0
    np.testing.assert_allclose((v - out)[nz], (th * np.sign(out))[nz], atol=1e-14)
    assert np.all(np.abs(v[~nz]) <= th[~nz])


@settings(max_examples=40)
@given(st.integers(1, 6).flatmap(vectors))
def test_relu_identity_formulas(v):
    np.testing.assert_array_equal(ReLU()(v), [max(x, 0.0) for x in v])
    out = Identity()(v)
    np.testing.assert_array_equal(out, v)
    assert out is not v


@settings(max_examples=60)
@given(activation_and_points(1, kinds=("box_projection",)))
def test_box_projection_formula(case):
    box, v = case
    want = np.array([min(max(x, lo), hi) for x, lo, hi in zip(v, box.lower, box.upper, strict=True)])
    np.testing.assert_array_equal(box(v), want)


@settings(max_examples=60)
@given(activation_and_points(1, kinds=("group_soft_threshold",)))
def test_group_soft_threshold_is_identity_minus_ball_projection(case):
    # Moreau: prox_{θ‖·‖₂}(v) = v − Π_{‖u‖ ≤ θ}(v), group by group
    act, v = case
    want = np.empty_like(v)
    for g in act.groups:
        r = np.linalg.norm(v[g])
        proj = v[g] if r <= act.theta else v[g] * (act.theta / r)
        want[g] = v[g] - proj
    np.testing.assert_allclose(act(v), want, rtol=1e-12, atol=1e-14)


def test_group_soft_threshold_batch():
    act = GroupSoftThreshold(0.5, [[0, 2], [1]])
    V = np.array([[3.0, 0.2, 4.0], [0.1, -2.0, 0.1]])
    want = np.array([[3.0 * 0.9, 0.0, 4.0 * 0.9], [0.0, -1.5, 0.0]])
    np.testing.assert_allclose(act(V), want, rtol=1e-14)


# ----------------------------------------------------------------------------- declared properties


def test_declared_properties():
    for act in (SoftThreshold(0.1), ReLU(), BoxProjection(-1, 1)):
        assert (act.slope_interval, act.separable, act.firmly_nonexpansive) == ((0.0, 1.0), True, True)
    assert Identity().slope_interval == (1.0, 1.0) and Identity().separable
    g = GroupSoftThreshold(0.1, [[0, 1]])
    assert (g.slope_interval, g.separable, g.firmly_nonexpansive) == ((0.0, 1.0), False, True)


@settings(max_examples=150)
@given(activation_and_points(2, kinds=("soft_threshold", "relu", "identity", "box_projection")))
def test_separable_difference_quotients_in_slope_interval(case):
    act, a, b = case
    alpha, beta = act.slope_interval
    q, d = act(a) - act(b), a - b
    tol = 1e-12 * (1 + np.abs(a) + np.abs(b))
    s = np.sign(d)
    # α ≤ q/d ≤ β, multiplied out so that d = 0 forces q = 0 up to rounding
    assert np.all((q - alpha * d) * s >= -tol)
    assert np.all((beta * d - q) * s >= -tol)
    assert np.all(np.abs(q[d == 0]) <= tol[d == 0])
    sl = act.slopes(a)
    assert np.all((sl >= alpha) & (sl <= beta))


@settings(max_examples=150)
@given(activation_and_points(2))
def test_firmly_nonexpansive(case):
    act, a, b = case
    assert act.firmly_nonexpansive
    pa, pb = act(a), act(b)
    diff = pa - pb
    assert np.dot(diff, a - b) >= np.dot(diff, diff) - 1e-12 * (1 + np.dot(a - b, a - b))


@settings(max_examples=80)
@given(activation_and_points(1, kinds=("group_soft_threshold",)))
def test_group_jacobian_symmetric_with_eigenvalues_in_slope_interval(case):
    act, v = case
    J = act.jacobian(v)
    np.testing.assert_allclose(J, J.T, atol=1e-14)
    eig = np.linalg.eigvalsh(J)
    alpha, beta = act.slope_interval
    assert np.all(eig >= alpha - 1e-12) and np.all(eig <= beta + 1e-12)


# ----------------------------------------------------------------------------- Jacobians


def _kink_distance(act: Activation, v: np.ndarray) -> float:
    if isinstance(act, SoftThreshold):
        return float(np.min(np.abs(np.abs(v) - act.theta)))
    if isinstance(act, ReLU):
        return float(np.min(np.abs(v)))
    if isinstance(act, BoxProjection):
        with np.errstate(invalid="ignore"):
            return float(np.nanmin(np.concatenate([np.abs(v - act.lower), np.abs(v - act.upper)]), initial=np.inf))
    if isinstance(act, GroupSoftThreshold):
        return float(min(min(abs(np.linalg.norm(v[g]) - act.theta), np.linalg.norm(v[g]) - 0.05) for g in act.groups))
    return np.inf


@settings(max_examples=150)
@given(activation_and_points(1))
def test_jacobian_matches_finite_differences(case):
    act, v = case
    h = 1e-6
    assume(_kink_distance(act, v) > 1e-4)
    J = act.jacobian(v)
    assert J.shape == (v.size, v.size)
    fd = np.stack([(act(v + h * e) - act(v - h * e)) / (2 * h) for e in np.eye(v.size)], axis=1)
    np.testing.assert_allclose(J, fd, rtol=1e-6, atol=1e-6)
    if act.separable:
        np.testing.assert_array_equal(J, np.diag(act.slopes(v)))


def test_group_jacobian_is_a_full_block():
    act = GroupSoftThreshold(1.0, [[0, 2], [1]])
    v = np.array([3.0, 0.5, 4.0])  # group {0, 2} has norm 5 > 1; group {1} is below the threshold
    J = act.jacobian(v)
    r = 5.0
    block = (1 - 1 / r) * np.eye(2) + np.outer([3.0, 4.0], [3.0, 4.0]) / r**3
    np.testing.assert_allclose(J[np.ix_([0, 2], [0, 2])], block, rtol=1e-14)
    assert J[0, 2] != 0 and J[1, 1] == 0 and J[0, 1] == 0


def test_clarke_element_at_a_kink_is_the_flat_slope():
    np.testing.assert_array_equal(SoftThreshold(1.0).slopes(np.array([1.0, -1.0, 1.5])), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(ReLU().slopes(np.array([0.0, 1e-300])), [0.0, 1.0])
    np.testing.assert_array_equal(BoxProjection(0, 1).slopes(np.array([0.0, 0.5, 1.0])), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(GroupSoftThreshold(5.0, [[0, 1]]).jacobian(np.array([3.0, 4.0])), np.zeros((2, 2)))


def test_zero_threshold_jacobian_at_zero_is_the_identity():
    np.testing.assert_array_equal(SoftThreshold(0.0).jacobian(np.zeros(2)), np.eye(2))


def test_zero_group_threshold_jacobian_at_zero_is_the_identity():
    np.testing.assert_array_equal(GroupSoftThreshold(0.0, [[0, 1]]).jacobian(np.zeros(2)), np.eye(2))


def test_group_jacobian_tiny_group_norm():
    np.testing.assert_array_equal(GroupSoftThreshold(0.0, [[0]]).jacobian(np.array([1e-150])), [[1.0]])


def test_non_separable_has_no_slopes():
    with pytest.raises(TypeError, match="group_soft_threshold is not separable; use jacobian"):
        GroupSoftThreshold(0.1, [[0, 1]]).slopes(np.zeros(2))


# ----------------------------------------------------------------------------- groups


@pytest.mark.parametrize(("groups", "match"), [
    ([[0, 1], [1, 2]], r"groups must partition range\(4\)"),
    ([[0], [2]], r"groups must partition range\(2\)"),
    ([[1, 2]], r"groups must partition range\(2\)"),
    ([[-1, 0]], r"groups must partition"),
    ([[0], []], r"non-empty list of non-empty index lists"),
    ([], r"non-empty list of non-empty index lists"),
    ([[[0, 1]]], r"non-empty list of non-empty index lists"),
])
def test_group_partition_validation(groups, match):
    with pytest.raises(ValueError, match=match):
        GroupSoftThreshold(0.1, groups)


def test_group_indices_must_be_integers():
    with pytest.raises(ValueError):
        GroupSoftThreshold(0.1, [[0.5, 1.7]])


def test_group_contiguous():
    act = GroupSoftThreshold.contiguous(0.3, 6, 2)
    assert [g.tolist() for g in act.groups] == [[0, 1], [2, 3], [4, 5]] and act.dim == 6
    for dim, size in ((6, 4), (6, 0), (6, -2)):
        with pytest.raises(ValueError, match=rf"dim {dim} is not a positive multiple of group_size {size}"):
            GroupSoftThreshold.contiguous(0.3, dim, size)


# ----------------------------------------------------------------------------- config


@settings(max_examples=80)
@given(activation_and_points(1))
def test_config_round_trip(case):
    act, v = case
    for config in (act.config(), json.loads(json.dumps(act.config()))):
        back = from_config(config)
        assert type(back) is type(act) and back.dim == act.dim
        assert back.config() == act.config()
        np.testing.assert_array_equal(back(v), act(v))
    assert repr(act).startswith(type(act).__name__ + "(")


def test_from_config_errors():
    with pytest.raises(ValueError, match=r"unknown activation 'tanh'; known: \["):
        from_config({"name": "tanh"})
    with pytest.raises(ValueError, match=r"activation config must be a dict with a 'name'"):
        from_config({"theta": 1.0})
    with pytest.raises(ValueError, match=r"activation config must be a dict"):
        from_config("relu")
    with pytest.raises(ValueError, match=r"soft-threshold theta must be >= 0"):
        from_config({"name": "soft_threshold", "theta": -1.0})


# ----------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(("theta", "match"), [
    (-1.0, r"^soft-threshold theta must be >= 0, got minimum -1$"),
    ([0.1, -0.2], r"^soft-threshold theta must be >= 0, got minimum -0.2$"),
    (np.nan, r"^soft-threshold theta has a non-finite entry"),
    (np.inf, r"^soft-threshold theta has a non-finite entry"),
    (np.ones((2, 2)), r"^soft-threshold theta must be a scalar or a vector, got shape \(2, 2\)$"),
    ("big", r"^soft-threshold theta is not a numeric array"),
])
def test_bad_soft_thresholds(theta, match):
    with pytest.raises(ValueError, match=match):
        SoftThreshold(theta)


def test_bad_group_thresholds():
    with pytest.raises(ValueError, match=r"^group soft-threshold theta must be >= 0"):
        GroupSoftThreshold(-0.1, [[0]])
    with pytest.raises(ValueError, match=r"^group soft-threshold theta must be a scalar$"):
        GroupSoftThreshold([0.1, 0.2], [[0], [1]])
    with pytest.raises(ValueError, match=r"^group soft-threshold theta has a non-finite entry"):
        GroupSoftThreshold(np.inf, [[0]])


@pytest.mark.parametrize(("lower", "upper", "match"), [
    (1.0, 0.0, r"box lower bound exceeds upper bound"),
    ([0.0, 2.0], [1.0, 1.0], r"box lower bound exceeds upper bound"),
    (np.inf, -np.inf, r"box lower bound exceeds upper bound"),
    ([0.0, 0.0], [1.0, 1.0, 1.0], r"box bounds have shapes \(2,\) and \(3,\); expected equal"),
    (np.nan, 1.0, r"box lower bound contains NaN"),
    (0.0, [1.0, np.nan], r"box upper bound contains NaN"),
    (np.zeros((2, 2)), 1.0, r"box lower bound must be a scalar or a vector, got shape \(2, 2\)"),
])
def test_bad_box_bounds(lower, upper, match):
    with pytest.raises(ValueError, match=match):
        BoxProjection(lower, upper)


def test_dims_and_check_dim():
    assert SoftThreshold(0.1).dim is None and SoftThreshold([0.1, 0.2]).dim == 2
    assert BoxProjection(0.0, [1.0, 2.0, 3.0]).dim == 3 and BoxProjection().dim is None
    assert ReLU().dim is None and GroupSoftThreshold(0.1, [[1], [0, 2]]).dim == 3
    SoftThreshold([0.1, 0.2]).check_dim(2, "here")
    with pytest.raises(ValueError, match=r"^layer 7: activation soft_threshold has dimension 2; expected 3$"):
        SoftThreshold([0.1, 0.2]).check_dim(3, "layer 7")
    with pytest.raises(ValueError, match=r"activation box_projection has dimension 3; expected 2"):
        BoxProjection(0.0, [1.0, 2.0, 3.0]).check_dim(2, "x")
