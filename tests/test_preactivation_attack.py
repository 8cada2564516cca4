"""Attacked (inner) pre-activation ranges (``unfoldtheory.lipschitz.preactivation_attack``).

Independent routes: the rigorous outer intervals of CROWN (inner ⊆ outer), the closed-form range of an affine map over
a ball or a box (the attack must reach it), finite differences for the reverse-mode gradient, the activations' own
Jacobians for the vector-Jacobian products, and dense sampling of a small region.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory import testing as ut
from unfoldtheory.activations import GroupSoftThreshold, ReLU, SoftThreshold
from unfoldtheory.lipschitz import AttackedRanges, Ball, Box, attack_preactivations, preactivation_bounds
from unfoldtheory.lipschitz.preactivation_attack import _forward, _gradient, _vjp
from unfoldtheory.spec import Layer, NetworkSpec


def _region(kind: str, center: np.ndarray, radius: float, rng: np.random.Generator):
    """An ℓ2 ball, an ℓ∞ ball or a box of uneven widths around ``center``."""
    if kind == "box":
        widths = radius * rng.uniform(0.0, 1.0, center.shape)
        return Box(center - widths, center + widths)
    return Ball(center, radius, 2 if kind == "l2" else np.inf)


_KINDS = st.sampled_from(["l2", "linf", "box"])
_SPECS = ut.unrolled_specs(m=st.integers(1, 4), n=st.integers(1, 5), K=st.integers(1, 4),
                           activation=st.sampled_from(["soft_threshold", "relu"]), per_coordinate_thresholds=True,
                           max_norm=1.5)


@settings(max_examples=30, deadline=None)
@given(_SPECS, _KINDS, st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_attacked_ranges_lie_inside_the_rigorous_intervals(spec, kind, radius, seed):
    rng = np.random.default_rng(seed)
    region = _region(kind, rng.uniform(-2.0, 2.0, spec.input_dim), radius, rng)
    attacked = attack_preactivations(spec, region, steps=20, samples=32, seed=seed % 1000)
    crown = preactivation_bounds(spec, region)
    for k, (al, au, cl, cu) in enumerate(zip(attacked.lower, attacked.upper, crown.lower, crown.upper, strict=True), 1):
        tol = 1e-12 * (1.0 + np.abs(al) + np.abs(au))  # the attack's values are float evaluations
        assert np.all(al <= au + tol), f"layer {k}: an empty attacked range"
        assert np.all(cl <= al + tol) and np.all(au <= cu + tol), f"layer {k}: an attacked value outside CROWN"
    assert all(a <= c for a, c in zip(attacked.unstable_counts(spec), crown.unstable_counts(spec), strict=True))
    Y = region.sample(32, seed % 1000)  # the documented sampled hull is inside the ranges
    for P, lo, hi in zip(spec.preactivations(Y), attacked.lower, attacked.upper, strict=True):
        assert np.all(lo <= P.min(axis=0)) and np.all(P.max(axis=0) <= hi)
    assert attacked.stopped is None and attacked.sampled_only == ()


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), _KINDS, st.floats(0.01, 2.0), st.integers(0, 2**32 - 1))
def test_an_affine_layer_reaches_its_closed_form_range(m, d, kind, radius, seed):
    """v = W y + b over a region: max/min are W c + b ± r‖w_i‖₂ (ℓ2 ball), ± r‖w_i‖₁ (ℓ∞ ball), ± |W| h (box)."""
    rng = np.random.default_rng(seed)
    W, b, c = rng.standard_normal((d, m)), rng.standard_normal(d), rng.standard_normal(m)
    region = _region(kind, c, radius, rng)
    if isinstance(region, Box):
        center, spread = 0.5 * (region.lower + region.upper), np.abs(W) @ (0.5 * (region.upper - region.lower))
    else:
        center, spread = c, radius * (np.linalg.norm(W, axis=1) if kind == "l2" else np.abs(W).sum(axis=1))
    spec = NetworkSpec(m, [Layer({0: W}, ReLU(), b)])
    attacked = attack_preactivations(spec, region, samples=4)
    mid = W @ center + b
    tol = 1e-5 * (1.0 + np.abs(mid) + spread)  # steps end at 1e-3 of the radius: the optimum to ~1e-6
    np.testing.assert_allclose(attacked.upper[0], mid + spread, atol=float(np.max(tol)))
    np.testing.assert_allclose(attacked.lower[0], mid - spread, atol=float(np.max(tol)))


@settings(max_examples=25, deadline=None)
@given(_SPECS, st.integers(0, 2**32 - 1))
def test_the_reverse_gradient_matches_finite_differences(spec, seed):
    rng = np.random.default_rng(seed)
    Y = rng.uniform(-2.0, 2.0, (3, spec.input_dim))
    k = spec.num_layers
    seeds = rng.standard_normal((3, spec.dims[k]))
    _, pres = _forward(spec, Y, k)
    if any(np.min(np.abs(np.abs(v) - np.abs(getattr(a, "theta", 0.0)))) < 1e-4
           for v, a in zip(pres, spec.activations, strict=True)):
        return  # a point within the difference step of a kink: the derivative there is not the difference quotient
    g = _gradient(spec, k, pres, seeds)
    h = 1e-7
    for i in range(spec.input_dim):
        e = np.zeros(spec.input_dim)
        e[i] = h
        up, down = spec.preactivations(Y + e)[k - 1], spec.preactivations(Y - e)[k - 1]
        fd = np.sum(seeds * (up - down), axis=1) / (2 * h)
        np.testing.assert_allclose(g[:, i], fd, rtol=1e-5, atol=1e-6)


def test_vector_jacobian_products_match_the_activations_jacobians():
    rng = np.random.default_rng(3)
    v, adj = 2.0 * rng.standard_normal((5, 6)), rng.standard_normal((5, 6))
    for act in (GroupSoftThreshold.contiguous(0.7, 6, 3), GroupSoftThreshold.contiguous(0.0, 6, 2), SoftThreshold(0.4)):
        expected = np.stack([np.asarray(act.jacobian(row)).T @ a for row, a in zip(v, adj, strict=True)])
        np.testing.assert_allclose(_vjp(act, v, adj), expected, atol=1e-12)


def test_the_attack_covers_dense_sampling_and_finds_true_instability():
    """A 3-layer LISTA-like net: the attacked ranges contain (up to 1 %) the hull of 20 000 samples from another seed,
    and every neuron two of those samples put on either side of a kink is attacked-unstable."""
    rng = np.random.default_rng(7)
    m, n = 3, 6
    V = rng.standard_normal((n, m))
    layers = [Layer({0: V}, SoftThreshold(0.3))]
    for _ in range(2):
        layers.append(Layer({0: V, len(layers): 0.5 * rng.standard_normal((n, n))}, SoftThreshold(0.3)))
    spec = NetworkSpec(m, layers)
    region = Ball(rng.standard_normal(m), 0.5)
    attacked = attack_preactivations(spec, region, seed=1)
    P = spec.preactivations(region.sample(20_000, 99))
    for p, lo, hi in zip(P, attacked.lower, attacked.upper, strict=True):
        width = hi - lo
        assert np.all(lo <= p.min(axis=0) + 0.01 * width) and np.all(p.max(axis=0) <= hi + 0.01 * width)
    sampled = [(p.min(axis=0) < -0.3) & (p.max(axis=0) > -0.3) | (p.min(axis=0) < 0.3) & (p.max(axis=0) > 0.3) for p in P]
    for s, u in zip(sampled, attacked.unstable(spec), strict=True):
        assert np.all(u[s]), "a neuron that samples show unstable is not attacked-unstable"
    assert sum(attacked.unstable_counts(spec)) >= sum(int(np.sum(s)) for s in sampled) > 0


def test_a_spent_budget_stops_and_keeps_the_sampled_hull():
    spec = NetworkSpec(3, [Layer({0: np.ones((4, 3))}, ReLU(), np.zeros(4)), Layer({1: np.eye(4)}, ReLU(), -np.ones(4))])
    region = Box(-np.ones(3), np.ones(3))
    attacked = attack_preactivations(spec, region, time_budget=1e-9, samples=16)
    assert isinstance(attacked, AttackedRanges) and attacked.stopped == 1
    for P, lo, hi in zip(spec.preactivations(region.sample(16, 0)), attacked.lower, attacked.upper, strict=True):
        assert np.all(lo <= P.min(axis=0)) and np.all(P.max(axis=0) <= hi)


def test_bad_input_is_refused():
    spec = NetworkSpec(2, [Layer({0: np.eye(2)}, ReLU())])
    ball = Ball(np.zeros(2), 1.0)
    with pytest.raises(TypeError, match="NetworkSpec"):
        attack_preactivations("spec", ball)
    with pytest.raises(TypeError, match="Region"):
        attack_preactivations(spec, np.zeros(2))
    with pytest.raises(ValueError, match="input dimension 3"):
        attack_preactivations(spec, Ball(np.zeros(3), 1.0))
    for kwargs, name in (({"steps": 0}, "steps"), ({"samples": 0}, "samples"), ({"seed": -1}, "seed"),
                         ({"steps": 2.5}, "steps"), ({"steps": True}, "steps"), ({"starts": 0}, "starts")):
        with pytest.raises(ValueError, match=name):
            attack_preactivations(spec, ball, **kwargs)
    with pytest.raises(ValueError, match="time_budget"):
        attack_preactivations(spec, ball, time_budget=0.0)
