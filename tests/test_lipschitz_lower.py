"""Lower bounds with witnesses and the exact activation-agnostic bound (issue 4)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from unfoldtheory import testing as ut
from unfoldtheory.activations import BoxProjection, GroupSoftThreshold, Identity, ReLU, SoftThreshold
from unfoldtheory.classical import ista_spec
from unfoldtheory.lipschitz import lower, upper_bound
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
    if lb.details["same_region"]:  # affine on the segment: the float ratio is ‖J(y1)‖, the value that less its rounding bound
        jnorm, allowance = cert["jacobian_norm_at_y1"], lb.details["rounding_bound"]
        assert 0.0 <= allowance <= 1e-6 * max(jnorm, 1.0)
        assert jnorm * (1 - 1e-6) - allowance - 1e-15 <= lb.value <= jnorm * (1 + 1e-6) + 1e-15


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
    assert "not separable piecewise-linear" in lb.details["region_ascent"]["skipped"]


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


# ---------------------------------------------------------------------------- stage 4: region ascent
def _without_region_ascent(spec, **kwargs):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lower, "_REGION_MAX_SIZE", 0)
        return lower_bound(spec, **kwargs)


def _exact_relu_lipschitz(spec):
    """max ‖J_R‖ over the nonempty regions of a ReLU net: every 0/1 pattern, kept when the
    Chebyshev LP of its pre-activation signs has a positive margin."""
    m, best = spec.input_dim, 0.0
    for bits in itertools.product([0.0, 1.0], repeat=sum(spec.dims[1:])):
        D = np.split(np.array(bits), np.cumsum(spec.dims[1:-1]))
        maps, A, b = [np.eye(m, m + 1)], [], []  # [H | h]: state k is H y + h on the pattern
        for ws, bias, d in zip(spec.weights, spec.biases, D, strict=True):
            pre = sum(w @ maps[j] for j, w in ws.items())
            pre[:, m] += bias
            sign = np.where(d > 0, -1.0, 1.0)  # active: G y + g > 0, inactive: G y + g < 0
            A.append(np.hstack([sign[:, None] * pre[:, :m], np.linalg.norm(pre[:, :m], axis=1)[:, None]]))
            b.append(-sign * pre[:, m])
            maps.append(d[:, None] * pre)
        res = linprog(np.r_[np.zeros(m), -1.0], A_ub=np.vstack(A), b_ub=np.concatenate(b),
                      bounds=[(-1e3, 1e3)] * m + [(None, 1.0)], method="highs")
        if res.status == 0 and res.x[m] > 1e-9:
            best = max(best, float(np.linalg.norm(spec.linearized_jacobian(D), 2)))
    return best


def _random_relu_net(seed, m=2, n=3):
    rng = np.random.default_rng(seed)
    return NetworkSpec(m, [Layer({0: rng.standard_normal((n, m))}, ReLU(), 0.5 * rng.standard_normal(n)),
                           Layer({1: rng.standard_normal((n, n)), 0: rng.standard_normal((n, m))}, ReLU(),
                                 0.5 * rng.standard_normal(n))], readout={2: rng.standard_normal((2, n))})


@settings(max_examples=15)
@given(SMALL)
def test_region_ascent_never_lowers_the_bound_and_its_witness_re_evaluates(spec):
    lb, off = lower_bound(spec, restarts=3, steps=20), _without_region_ascent(spec, restarts=3, steps=20)
    stage = lb.details["region_ascent"]
    assert stage["skipped"] is None and off.details["region_ascent"]["skipped"].startswith("too large")
    assert stage["value_before"] == off.details["search_best_jacobian_norm"]  # stages 1-3 are unchanged
    assert stage["value_after"] == lb.details["search_best_jacobian_norm"] >= stage["value_before"]
    assert lb.value >= off.value * (1 - 1e-9) - 1e-12
    assert lb.certified and check_witness(spec, lb.certificate) == lb.value == lb.certificate["ratio"]
    if stage["moves"]:  # every point the climb moves to lies strictly inside its region
        assert lb.details["same_region"]
    if lb.details["same_region"]:
        assert lb.value == pytest.approx(stage["value_after"], rel=1e-6, abs=1e-12)


@settings(max_examples=6)
@given(ut.unrolled_specs(m=st.integers(1, 3), n=st.integers(1, 3), K=st.integers(1, 2),
                         activation=st.sampled_from(["soft_threshold", "relu"])))
def test_region_ascent_stays_below_the_certified_upper_bounds(spec):
    lb = lower_bound(spec, restarts=3, steps=20)
    assert lb.value <= upper_bound(spec, time_budget=0.5).value * (1 + 1e-9) + 1e-12
    assert lb.value <= activation_agnostic(spec).value * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("seed", [2, 4, 9])
def test_region_ascent_reaches_the_exact_constant_of_a_tiny_relu_net(seed):
    """From screening points only (no ascent), the climb ends in the region of largest ‖J_R‖; for
    seeds 4 and 9 the search without it stays below."""
    spec = _random_relu_net(seed)
    exact = _exact_relu_lipschitz(spec)
    lb = lower_bound(spec, restarts=2, steps=0)
    assert lb.value == pytest.approx(exact, rel=1e-9) and lb.certified
    if seed != 2:
        assert _without_region_ascent(spec, restarts=2, steps=0).value < 0.9 * exact


@pytest.mark.parametrize("act", [SoftThreshold([0.3, 0.0, 1.2]), ReLU(), Identity(),
                                 BoxProjection([-np.inf, -1.0, 0.5], [1.0, np.inf, 0.5])])
def test_pieces_are_the_affine_parts_of_the_activation(act):
    lo, hi, slope, offset = lower._pieces(act, lower._kinks(act, 3))
    rng = np.random.default_rng(0)
    for r in range(lo.shape[1]):
        ok = lo[:, r] < hi[:, r]  # the nonempty pieces: draw inputs strictly inside them
        a = np.where(ok, np.where(np.isfinite(lo[:, r]), lo[:, r], np.minimum(hi[:, r], 0.0) - 5.0), 0.0)
        b = np.where(ok, np.where(np.isfinite(hi[:, r]), hi[:, r], np.maximum(lo[:, r], 0.0) + 5.0), 1.0)
        v = a + (b - a) * rng.uniform(0.01, 0.99, (50, 3))
        np.testing.assert_allclose(np.where(ok, act(v), 0.0), np.where(ok, slope[:, r] * v + offset[:, r], 0.0),
                                   rtol=1e-12, atol=1e-12)
        assert np.all(np.where(ok, act.slopes(v) == slope[:, r], True))


def test_a_move_changes_the_region_jacobian_by_rank_one():
    """J_R' = J_R + Δs a bᵀ for every neighbouring region R' (checked against the affine maps of R'),
    the ranking bound never exceeds it, and J_R is the Jacobian at a point of R."""
    spec = ista_spec(np.random.default_rng(6).standard_normal((3, 5)) / np.sqrt(3), lam=0.1, layers=3)
    regions = lower._Regions(lower._Net(spec))
    y = np.random.default_rng(7).standard_normal(3)
    pattern = regions.pattern(y)
    pre, J = regions.affine(pattern)
    np.testing.assert_allclose(J, spec.jacobian(y), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([a[:, :3] @ y + a[:, 3] for a in pre]),
                               np.concatenate([p[0] for p in spec.preactivations(y)]), rtol=1e-12, atol=1e-12)
    F = regions.bounds(pattern, pre)
    bound, exact = regions.scores(pattern, pre, J, F)
    rows = np.arange(len(F.b))
    moved = []
    for j in rows:
        cand = [r.copy() for r in pattern]
        cand[F.layer[j]][F.neuron[j]] = F.piece[j]
        moved.append(np.linalg.norm(regions.affine(cand)[1], 2))
    np.testing.assert_allclose(exact(rows), moved, rtol=1e-10, atol=1e-12)
    assert np.all(bound <= np.array(moved) * (1 + 1e-10) + 1e-12)
    assert np.all(F.b - F.A @ y > 0)  # y lies inside its region


def test_region_ascent_is_skipped_when_too_large_or_out_of_time():
    spec = _random_relu_net(0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lower, "_REGION_MAX_SIZE", 5)
        lb = lower_bound(spec, restarts=2, steps=5)
    assert lb.certified and "too large" in lb.details["region_ascent"]["skipped"]
    lb = lower_bound(spec, restarts=2, steps=5, time_budget=1e-9)
    assert lb.certified and lb.details["region_ascent"]["skipped"] == "the time budget is spent"
    assert check_witness(spec, lb.certificate) == lb.value
