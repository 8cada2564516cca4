"""Rigorous pre-activation bounds (``unfoldtheory.lipschitz.bound_propagation``): interval and CROWN.

Independent routes: sampled float pre-activations, exact rational evaluation (``unfoldtheory.oracle.preactivations``),
the exact range of an affine map, and exact checks of every relaxation line.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from unfoldtheory import testing as ut
from unfoldtheory.activations import Activation, BoxProjection, GroupSoftThreshold, Identity, ReLU, SoftThreshold
from unfoldtheory.forward_error import _Inflation, _ops
from unfoldtheory.lipschitz.alpha_crown import SlopeGuide
from unfoldtheory.lipschitz.bound_propagation import PreactivationBounds, interval_layer, preactivation_bounds, state_interval
from unfoldtheory.lipschitz.linear_relaxation import (
    Backsubstitution,
    constant,
    nonaffine,
    pieces,
    relaxation,
    shrink_to_stable,
    slope_family,
)
from unfoldtheory.lipschitz.regions import Ball, Box, Region
from unfoldtheory.oracle.preactivations import bounds_contain, relaxation_holds
from unfoldtheory.spec import Layer, NetworkSpec

METHODS = ("interval", "crown", "alpha-crown")


@st.composite
def regions(draw: st.DrawFn, m: int, scale: float = 2.0) -> Region:
    center = draw(hnp.arrays(np.float64, m, elements=st.floats(-scale, scale)))
    radius = draw(st.floats(0.0, 1.0))
    kind = draw(st.sampled_from(["l2", "linf", "box"]))
    if kind == "box":
        widths = draw(hnp.arrays(np.float64, m, elements=st.floats(0.0, 1.0)))
        return Box(center - radius * widths, center + radius * widths)
    return Ball(center, radius, 2 if kind == "l2" else np.inf)


@st.composite
def graph_specs(draw: st.DrawFn) -> NetworkSpec:
    """Small specs with every built-in activation, input injection, skip (momentum) edges and biases."""
    m, n, K = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layers = []
    for k in range(1, K + 1):
        d = 2 * n if draw(st.booleans()) else n
        kind = draw(st.sampled_from(["st", "relu", "box", "identity", "gst"]))
        act: Activation
        if kind == "st":
            act = SoftThreshold(np.abs(rng.standard_normal(d)) * 0.3)
        elif kind == "relu":
            act = ReLU()
        elif kind == "box":
            act = BoxProjection(draw(st.sampled_from([-0.5, -np.inf])), draw(st.sampled_from([0.7, np.inf])))
        elif kind == "identity":
            act = Identity()
        else:
            d = 2 * n
            act = GroupSoftThreshold.contiguous(0.3, d, 2)
        dims = [m] + [lay.resolved_dim("x") for lay in layers]
        sources = {0, k - 1} | ({k - 2} if k >= 2 and draw(st.booleans()) else set())
        weights = {j: rng.standard_normal((d, dims[j])) * 0.7 for j in sorted(sources)}
        layers.append(Layer(weights, act, 0.3 * rng.standard_normal(d)))
    return NetworkSpec(m, layers, name="graph spec")


def _float_contains(b: PreactivationBounds, spec: NetworkSpec, Y: np.ndarray) -> None:
    """Float pre-activations lie inside up to their own rounding (a relative 1e-12: the exact check is elsewhere)."""
    for k, (P, lo, hi) in enumerate(zip(spec.preactivations(Y), b.lower, b.upper, strict=True), start=1):
        tol = 1e-12 * (1.0 + np.abs(P))
        assert np.all(P >= lo - tol) and np.all(P <= hi + tol), f"layer {k} ({b.method}): a sample lies outside"


# ---------------------------------------------------------------------------- containment
@settings(max_examples=40, deadline=None)
@given(st.one_of(ut.unrolled_specs(m=st.integers(1, 4), n=st.integers(1, 5), K=st.integers(1, 3),
                                   activation=st.sampled_from(["soft_threshold", "relu"]),
                                   per_coordinate_thresholds=True, max_norm=1.5),
                 graph_specs()), st.data())
def test_bounds_contain_sampled_preactivations(spec, data):
    region = data.draw(regions(spec.input_dim))
    Y = np.vstack([region.sample(200, rng=1), region.project(region.enclosing_box()[0])])
    for method in METHODS:
        b = preactivation_bounds(spec, region, method=method)
        assert b.method == method and b.seconds >= 0
        _float_contains(b, spec, Y)


@settings(max_examples=30, deadline=None)
@given(ut.unrolled_specs(m=st.integers(1, 3), n=st.integers(1, 3), K=st.integers(1, 3),
                         activation=st.sampled_from(["soft_threshold", "relu"]), per_coordinate_thresholds=True,
                         max_norm=1.5), st.data())
def test_bounds_contain_exact_rational_preactivations(spec, data):
    region = data.draw(regions(spec.input_dim))
    Y = region.sample(6, rng=2)
    for method in METHODS:
        b = preactivation_bounds(spec, region, method=method)
        assert all(bounds_contain(b, spec, y) for y in Y)


@settings(max_examples=40, deadline=None)
@given(st.one_of(ut.adversarial_specs(), ut.cancelling_identity_specs(), ut.near_singular_specs(),
                 ut.scaled_specs().map(lambda t: t[1])), st.data())
def test_adversarial_scales_contain_exact_preactivations(spec, data):
    region = data.draw(regions(spec.input_dim, scale=1.0))
    Y = region.sample(4, rng=3)
    bounds = [preactivation_bounds(spec, region, method=m) for m in METHODS]  # RuntimeWarnings fail (pytest config)
    for b in bounds:
        assert all(not np.any(np.isnan(x)) for x in (*b.lower, *b.upper))
        assert all(bounds_contain(b, spec, y) for y in Y)


# ---------------------------------------------------------------------------- tightness and exactness
@settings(max_examples=30, deadline=None)
@given(st.one_of(ut.unrolled_specs(m=st.integers(1, 4), n=st.integers(1, 6), K=st.integers(1, 4),
                                   activation=st.sampled_from(["soft_threshold", "relu"])), graph_specs()), st.data())
def test_crown_is_inside_interval_neuron_by_neuron(spec, data):
    region = data.draw(regions(spec.input_dim))
    _assert_nested(spec, region, tight="crown", loose="interval")


def _assert_nested(spec, region, *, tight: str, loose: str) -> None:
    """The ``tight`` method's bounds lie inside the ``loose`` one's, neuron by neuron, with no more unstable neurons."""
    a = preactivation_bounds(spec, region, method=loose)
    b = preactivation_bounds(spec, region, method=tight)
    for lo_a, hi_a, lo_b, hi_b in zip(a.lower, a.upper, b.lower, b.upper, strict=True):
        assert np.all(lo_b >= lo_a) and np.all(hi_b <= hi_a) and np.all(lo_b <= hi_b)
    assert all(x <= y for x, y in zip(b.unstable_counts(spec), a.unstable_counts(spec), strict=True))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**32 - 1), st.data())
def test_linear_layers_are_exact_up_to_rounding(m, n, K, seed, data):
    """With identity activations every ``v_k`` is affine, ``M_k y + v_k(0)``; CROWN gives its exact range over the region
    (``M_k`` from unit vectors, an independent route), interval arithmetic does not when layers mix."""
    rng = np.random.default_rng(seed)
    layers, dims = [], [m]
    for k in range(1, K + 1):
        srcs = sorted({0, k - 1} | ({k - 2} if k >= 2 else set()))
        layers.append(Layer({j: rng.standard_normal((n, dims[j])) for j in srcs}, Identity(), rng.standard_normal(n)))
        dims.append(n)
    spec = NetworkSpec(m, layers)
    region = data.draw(regions(m))
    b = preactivation_bounds(spec, region, method="crown")
    if isinstance(region, Ball):
        c, r = region.center, region.radius
    else:
        c, r = 0.5 * (region.lower + region.upper), 0.5 * (region.upper - region.lower)
    base = spec.preactivations(c)
    unit = spec.preactivations(c + np.eye(m))
    for k in range(K):
        M = (unit[k] - base[k]).T  # exact up to rounding: the map is affine
        if isinstance(region, Ball):
            spread = r * np.linalg.norm(M, ord=2 if region.norm == 2 else 1, axis=1)
        else:
            spread = np.abs(M) @ r
        scale = 1.0 + np.abs(base[k][0]) + spread + np.abs(M).sum(axis=1) * (1 + np.abs(c).max())
        assert np.all(np.abs(b.lower[k] - (base[k][0] - spread)) <= 1e-10 * scale)
        assert np.all(np.abs(b.upper[k] - (base[k][0] + spread)) <= 1e-10 * scale)


def test_unstable_counts_match_the_kinks():
    spec = NetworkSpec(2, [Layer({0: np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])}, ReLU(), np.array([0.0, 5.0, -5.0]))])
    b = preactivation_bounds(spec, Ball(np.zeros(2), 1.0))
    assert b.unstable_counts(spec) == (1,)  # v = y1 straddles 0; y2 + 5 > 0; y1 + y2 − 5 < 0
    assert b.lower[0][0] <= -1.0 <= 1.0 <= b.upper[0][0]
    assert b.width()["infinite"] == 0 and b.width()["per_layer_mean"][0] > 0
    assert nonaffine(SoftThreshold(0.0), np.array([-1.0]), np.array([1.0])).tolist() == [False]  # θ = 0: identity
    st1 = SoftThreshold(1.0)
    lo, hi = np.array([-3.0, -0.5, -3.0, 2.0]), np.array([0.5, 0.5, 3.0, 5.0])
    assert constant(st1, lo, hi).tolist() == [False, True, False, False]
    assert shrink_to_stable(st1, lo, hi).tolist() == [1.5, 0.0, 4.0, 0.0]  # to v ≤ −1; stable; to [−1, 1]; stable
    assert shrink_to_stable(ReLU(), np.array([-1.0]), np.array([3.0])).tolist() == [1.0]


def _full_crown(spec: NetworkSpec, region: Region) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """CROWN with a back-substituted bound for every neuron (no rows skipped): the reference for the skipping."""
    plain = preactivation_bounds(spec, region, method="interval")
    inflate = _Inflation(_ops(spec))
    lo0, hi0 = region.enclosing_box()
    zlo, zhi, lower, upper = [lo0], [hi0], [], []
    crown = Backsubstitution(spec, region)
    for k in range(1, spec.num_layers + 1):
        lo, hi = interval_layer(spec, k, zlo, zhi, inflate)
        clo, chi = crown.layer_bounds(k)
        lo = np.maximum(np.maximum(lo, clo), plain.lower[k - 1])
        hi = np.minimum(np.minimum(hi, chi), plain.upper[k - 1])
        zl, zh = state_interval(spec, k, lo, hi, inflate)
        crown.add_layer(k, lo, hi, zl, zh)
        lower.append(lo), upper.append(hi), zlo.append(zl), zhi.append(zh)
    return lower, upper


@settings(max_examples=30, deadline=None)
@given(st.one_of(ut.unrolled_specs(m=st.integers(1, 4), n=st.integers(1, 6), K=st.integers(1, 4),
                                   activation=st.sampled_from(["soft_threshold", "relu"])), graph_specs()), st.data())
def test_skipped_rows_are_the_constant_neurons_and_change_nothing_else(spec, data):
    """``"crown"`` skips the rows of neurons whose activation is constant on their interval bound; every other neuron
    gets the bound of the full back-substitution (up to the order of float sums), and the unstable neurons are the same."""
    region = data.draw(regions(spec.input_dim))
    fast = preactivation_bounds(spec, region, method="crown")
    lower, upper = _full_crown(spec, region)
    for act, lo_f, hi_f, lo, hi in zip(spec.activations, fast.lower, fast.upper, lower, upper, strict=True):
        skipped = constant(act, lo_f, hi_f)
        scale = 1e-12 * (1.0 + np.abs(lo) + np.abs(hi))
        # the full bound is never looser, up to the order of its float sums
        assert np.all(lo_f <= lo + scale) and np.all(hi_f >= hi - scale)
        assert np.all(np.abs(lo_f - lo)[~skipped] <= scale[~skipped]) and np.all(np.abs(hi_f - hi)[~skipped] <= scale[~skipped])
        assert np.array_equal(nonaffine(act, lo_f, hi_f), nonaffine(act, lo, hi))


@settings(max_examples=30, deadline=None)
@given(st.one_of(ut.unrolled_specs(m=st.integers(1, 4), n=st.integers(1, 6), K=st.integers(2, 5),
                                   activation=st.sampled_from(["soft_threshold", "relu"]), per_coordinate_thresholds=True),
                 graph_specs()), st.data())
def test_alpha_crown_is_never_looser_than_crown(spec, data):
    region = data.draw(regions(spec.input_dim))
    _assert_nested(spec, region, tight="alpha-crown", loose="crown")


def _lista(m: int, n: int, layers: int, seed: int) -> NetworkSpec:
    from unfoldtheory.problems import SparseRecovery
    from unfoldtheory.unfold import LISTA

    problem = SparseRecovery(m, n, 0.2, 0.01, seed=seed)
    return LISTA(problem.A, layers, problem.lam).spec(), problem.sample(1, seed=seed + 1)[0][0]


def test_alpha_crown_tightens_a_deep_lista():
    """On an 8-layer LISTA over a ball of 5 % of ‖y‖ the optimised slopes narrow the deep layers' intervals (CROWN's
    slopes are not optimal there) — and the bounds still hold exactly at sampled inputs."""
    spec, y = _lista(8, 16, 8, seed=3)
    region = Ball(y, 0.05 * float(np.linalg.norm(y)))
    crown = preactivation_bounds(spec, region, method="crown")
    alpha = preactivation_bounds(spec, region, method="alpha-crown")
    w_crown = sum(float(np.sum(hi - lo)) for lo, hi in zip(crown.lower, crown.upper, strict=True))
    w_alpha = sum(float(np.sum(hi - lo)) for lo, hi in zip(alpha.lower, alpha.upper, strict=True))
    assert w_alpha < 0.99 * w_crown
    assert all(bounds_contain(alpha, spec, x) for x in region.sample(3, rng=4))


def test_slope_guide_is_the_crown_bound_at_crown_slopes():
    """The float guide, evaluated at CROWN's own slopes, is the rigorous CROWN bound up to rounding (two routes), and
    its ascent direction is a one-sided derivative (finite differences, at slopes away from ties)."""
    spec, y = _lista(8, 16, 5, seed=5)
    region = Ball(y, 0.05 * float(np.linalg.norm(y)))
    b = preactivation_bounds(spec, region, method="crown")
    inflate = _Inflation(_ops(spec))
    crown, guide = Backsubstitution(spec, region), SlopeGuide(spec, region)
    K = spec.num_layers
    for k in range(1, K):
        lo, hi = b.lower[k - 1], b.upper[k - 1]
        crown.add_layer(k, lo, hi, *state_interval(spec, k, lo, hi, inflate))
        guide.add_layer(k, slope_family(spec.activations[k - 1], lo, hi))
    idx = np.arange(spec.dims[K])
    rows = 2 * idx.size
    params = {j: [np.broadcast_to(lay.base_a[s][lay.cols], (rows, lay.cols.size)).copy() for s in (0, 1)]
              for j, lay in guide.layers.items() if lay.cols.size}
    assert params, "the example must have unstable neurons"
    value, _ = guide._bound(K, idx, params, grad=False)
    lo, hi = crown.layer_bounds(K, idx)
    assert np.allclose(value[:idx.size], lo, rtol=1e-9, atol=1e-12) and np.allclose(-value[idx.size:], hi, rtol=1e-9, atol=1e-12)
    rng = np.random.default_rng(0)
    params = {j: [rng.uniform(0.2, 0.8, p.shape) for p in ps] for j, ps in params.items()}
    value, grads = guide._bound(K, idx, params, grad=True)
    j = max(params)
    h = 1e-7
    for s in (0, 1):
        shifted = {i: [p.copy() for p in ps] for i, ps in params.items()}
        shifted[j][s] += h * np.sign(grads[j][s])
        moved, _ = guide._bound(K, idx, shifted, grad=False)
        gain = np.sum(np.abs(grads[j][s]), axis=1) * h
        assert np.all(moved - value >= 0.5 * gain - 1e-12)  # a step along the direction gains about |g|·h


# ---------------------------------------------------------------------------- relaxations, exactly
_ENDS = st.one_of(st.floats(-5, 5), st.sampled_from([-np.inf, np.inf, 0.0, 1e-300, -1e300, 1e300]))


@st.composite
def activations(draw: st.DrawFn, d: int) -> Activation:
    kind = draw(st.sampled_from(["st", "relu", "box", "identity"]))
    if kind == "st":
        return SoftThreshold(draw(hnp.arrays(np.float64, d, elements=st.floats(0, 3))))
    if kind == "relu":
        return ReLU()
    if kind == "box":
        lo = draw(st.sampled_from([-np.inf, -1.0, 0.3]))
        return BoxProjection(lo, draw(st.sampled_from([np.inf, max(lo, 0.0) + 0.5])))
    return Identity()


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, 6, elements=_ENDS), hnp.arrays(np.float64, 6, elements=_ENDS), st.data())
def test_relaxation_lines_hold_exactly(a, b, data):
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    lo, hi = np.where(lo == np.inf, 1e300, lo), np.where(hi == -np.inf, -1e300, hi)
    act = data.draw(activations(6))
    rel = relaxation(act, lo, hi)
    p = pieces(act, 6)
    finite_lo = np.where(np.isfinite(lo), lo, -1e300)
    finite_hi = np.where(np.isfinite(hi), hi, 1e300)
    rng = np.random.default_rng(0)
    pts = [finite_lo, finite_hi, *np.clip(p.kinks, finite_lo, finite_hi),
           *(finite_lo + (finite_hi - finite_lo) * rng.random((4, 6)) for _ in range(1))]
    with np.errstate(over="ignore", invalid="ignore"):
        pts.append(np.clip(0.5 * finite_lo + 0.5 * finite_hi, finite_lo, finite_hi))
    T = np.vstack([np.clip(np.where(np.isfinite(t), t, 0.0), finite_lo, finite_hi) for t in pts])
    assert relaxation_holds(act, rel.a_l, rel.c_l, rel.a_u, rel.c_u, T).all()
    stable = ~nonaffine(act, lo, hi)
    assert np.all(rel.a_l[stable] == rel.a_u[stable]) and np.all(rel.c_l[stable] == rel.c_u[stable])


def test_relaxation_is_the_chord_and_the_tangent_for_relu():
    rel = relaxation(ReLU(), np.array([-1.0, -3.0]), np.array([3.0, 1.0]))
    assert rel.a_u[0] == pytest.approx(0.75) and rel.c_u[0] == pytest.approx(0.75)
    assert (rel.a_l[0], rel.a_l[1]) == (1.0, 0.0)  # CROWN: slope 1 when u ≥ −l, else 0


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, 6, elements=_ENDS), hnp.arrays(np.float64, 6, elements=_ENDS),
       hnp.arrays(np.float64, (3, 6), elements=st.floats(-1.0, 2.0)),
       hnp.arrays(np.float64, (3, 6), elements=st.floats(-1.0, 2.0)), st.data())
def test_free_slope_lines_hold_exactly(a, b, a_l, a_u, data):
    """Per-row lines with arbitrary float slopes (clipped to [0, 1] on the free neurons) and their rigorous intercepts lie
    below / above the activation exactly, at the breakpoints and at random points; other neurons keep CROWN's lines."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    lo, hi = np.where(lo == np.inf, 1e300, lo), np.where(hi == -np.inf, -1e300, hi)
    act = data.draw(activations(6))
    fam = slope_family(act, lo, hi)
    rel = fam.lines(a_l, a_u)
    assert not np.any((fam.free_l | fam.free_u) & ~(np.isfinite(lo) & np.isfinite(hi)))
    base = relaxation(act, lo, hi)
    assert np.all(rel.a_l[:, ~fam.free_l] == base.a_l[~fam.free_l]) and np.all(rel.c_u[:, ~fam.free_u] == base.c_u[~fam.free_u])
    finite_lo, finite_hi = np.where(np.isfinite(lo), lo, -1e300), np.where(np.isfinite(hi), hi, 1e300)
    p = pieces(act, 6)
    rng = np.random.default_rng(1)
    pts = [finite_lo, finite_hi, *np.clip(p.kinks, finite_lo, finite_hi)]
    with np.errstate(over="ignore", invalid="ignore"):
        pts += list(finite_lo + (finite_hi - finite_lo) * rng.random((3, 6)))
    T = np.vstack([np.clip(np.where(np.isfinite(t), t, 0.0), finite_lo, finite_hi) for t in pts])
    for r in range(3):
        assert relaxation_holds(act, rel.a_l[r], rel.c_l[r], rel.a_u[r], rel.c_u[r], T).all()
        assert np.all((rel.a_l[r] >= 0) & (rel.a_l[r] <= 1) & (rel.a_u[r] >= 0) & (rel.a_u[r] <= 1))


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, 6, elements=st.floats(-3, 3)), hnp.arrays(np.float64, 6, elements=st.floats(0, 2)),
       st.floats(0.0, 2.0))
def test_group_soft_threshold_relaxation_holds_at_samples(center, width, theta):
    act = GroupSoftThreshold.contiguous(theta, 6, 3)
    lo, hi = center - width, center + width
    rel = relaxation(act, lo, hi)
    V = lo + (hi - lo) * np.random.default_rng(1).random((400, 6))
    Z = act(V)
    tol = 1e-12 * (1 + np.abs(V))
    assert np.all(rel.a_l * V + rel.c_l <= Z + tol) and np.all(Z <= rel.a_u * V + rel.c_u + tol)


# ---------------------------------------------------------------------------- bad input
class _Tanhish(Activation):
    name = "my_clip"

    def __call__(self, v):
        return np.clip(v, -1.0, 1.0)


def test_bad_input_is_refused():
    spec = NetworkSpec(2, [Layer({0: np.eye(2)}, ReLU())])
    with pytest.raises(ValueError, match="unknown bound propagation method 'lp'"):
        preactivation_bounds(spec, Ball(np.zeros(2), 1.0), method="lp")
    with pytest.raises(ValueError, match="input dimension 3"):
        preactivation_bounds(spec, Ball(np.zeros(3), 1.0))
    with pytest.raises(TypeError, match="Region"):
        preactivation_bounds(spec, np.zeros(2))
    user = NetworkSpec(2, [Layer({0: np.eye(2)}, ReLU()), Layer({1: np.eye(2)}, _Tanhish())])
    with pytest.raises(ValueError, match=r"built-in activation: layer 2 .*my_clip"):
        preactivation_bounds(user, Box(-np.ones(2), np.ones(2)))


# ---------------------------------------------------------------------------- deadline
@settings(max_examples=20, deadline=None)
@given(ut.unrolled_specs(m=st.integers(1, 4), n=st.integers(1, 5), K=st.integers(1, 4),
                         activation=st.sampled_from(["soft_threshold", "relu"])), st.data())
def test_a_passed_deadline_leaves_the_interval_bounds(spec, data):
    """A deadline already passed stops the back-substitution at layer 1: the bounds are then the interval ones exactly
    (another route to the same numbers), and still contain every sample; with no deadline nothing is stopped."""
    region = data.draw(regions(spec.input_dim))
    plain = preactivation_bounds(spec, region, method="interval")
    Y = region.sample(100, rng=2)
    for method in ("crown", "alpha-crown"):
        late = preactivation_bounds(spec, region, method=method, deadline=time.perf_counter() - 1.0)
        assert late.stopped == 1
        for a, b in ((late.lower, plain.lower), (late.upper, plain.upper)):
            assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        _float_contains(late, spec, Y)
        assert preactivation_bounds(spec, region, method=method).stopped is None


def test_a_deadline_during_the_passes_keeps_rigorous_nested_bounds():
    """Stopped at any point, the bounds are nested in the interval bounds neuron by neuron and hold at sampled inputs
    exactly (the oracle); a deadline far ahead changes nothing."""
    spec, y = _lista(8, 16, 8, seed=3)
    region = Ball(y, 0.05 * float(np.linalg.norm(y)))
    plain = preactivation_bounds(spec, region, method="interval")
    for wait in (0.0, 0.02, 0.1):
        late = preactivation_bounds(spec, region, method="alpha-crown", deadline=time.perf_counter() + wait)
        for lo, hi, plo, phi in zip(late.lower, late.upper, plain.lower, plain.upper, strict=True):
            assert np.all(lo >= plo) and np.all(hi <= phi)
        assert all(bounds_contain(late, spec, x) for x in region.sample(3, rng=4))
    free = preactivation_bounds(spec, region, method="alpha-crown", deadline=time.perf_counter() + 1e6)
    full = preactivation_bounds(spec, region, method="alpha-crown")
    assert free.stopped is None and all(np.array_equal(a, b) for a, b in zip(free.lower, full.lower, strict=True))
