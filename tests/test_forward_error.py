"""Rigorous forward error bounds (issue 12): each bound against an independent exact (rational or 80-digit decimal)
recomputation, and the float32 deviation bound against float32 evaluations, numpy and torch."""

from __future__ import annotations

import decimal
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory import testing as ut
from unfoldtheory.activations import Activation, BoxProjection, GroupSoftThreshold, Identity, ReLU, SoftThreshold
from unfoldtheory.forward_error import (
    evaluate_float32,
    evaluate_with_error,
    float32_deviation,
    norm_bounds,
    pattern_gain_lower,
    pattern_product_with_error,
)
from unfoldtheory.oracle.rational import matrix, matvec, vector
from unfoldtheory.oracle.witness import exact_output
from unfoldtheory.spec import Layer, NetworkSpec
from unfoldtheory.unfold import LISTA

SPECS = st.one_of(ut.cancelling_identity_specs(), ut.near_singular_specs(),
                  ut.scaled_specs().map(lambda t: t[1]),
                  ut.unrolled_specs(m=st.integers(1, 3), n=st.integers(1, 3), K=st.integers(1, 3),
                                    activation=st.sampled_from(["soft_threshold", "relu"])))


def _within(computed, bound, exact_values) -> bool:
    return all(abs(Fraction(float(c)) - e) <= Fraction(float(b)) for c, b, e in zip(computed, bound, exact_values, strict=True))


@settings(max_examples=30)
@given(SPECS, st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3))
def test_point_error_bound_holds_exactly(spec, y):
    y = np.array(y[:spec.input_dim])
    ev = evaluate_with_error(spec, y)
    if ev.error is None:
        assert "overflow" in ev.reason
        return
    assert _within(ev.output, ev.error, exact_output(spec, y))


def test_point_error_bound_on_the_issue_example_is_of_the_cancelled_size():
    w = 1e20 / 3
    spec = NetworkSpec(1, [Layer({0: np.array([[3.0]])}, Identity()),
                           Layer({1: np.array([[w]]), 0: np.array([[-1e20]])}, ReLU(), np.array([-1.0]))])
    ev = evaluate_with_error(spec, [-1.0])
    assert _within(ev.output, ev.error, [Fraction(4095)])
    assert 1e4 < ev.error[0] < 1e6  # ~γ·2e20: the products, not the output 4095, set the size


@settings(max_examples=20)
@given(ut.unrolled_specs(m=st.integers(1, 3), n=st.integers(1, 3), K=st.integers(1, 3)), st.data())
def test_pattern_product_error_bound_holds_exactly(spec, data):
    pattern = [np.array(data.draw(st.lists(st.sampled_from([0.0, 1.0, 0.3]), min_size=d, max_size=d))) for d in spec.dims[1:]]
    v = np.array(data.draw(st.lists(st.floats(-10, 10), min_size=spec.input_dim, max_size=spec.input_dim)))
    out, err = pattern_product_with_error(spec, pattern, v)
    t = [vector(v)]
    for ws, d in zip(spec.weights, pattern, strict=True):
        p = [Fraction(0)] * len(d)
        for j, w in ws.items():
            p = [a + b for a, b in zip(p, matvec(matrix(w), t[j]), strict=True)]
        t.append([Fraction(float(x)) * q for x, q in zip(d, p, strict=True)])
    exact = [Fraction(0)] * spec.output_dim
    for k, c in spec.readout.items():
        exact = [a + b for a, b in zip(exact, matvec(matrix(c), t[k]), strict=True)]
    assert _within(out, err, exact)
    gain = pattern_gain_lower(spec, pattern, v)  # ‖J(D) v‖ ≥ gain ‖v‖, decided on squares
    assert Fraction(gain) ** 2 * sum(x * x for x in t[0]) <= sum(x * x for x in exact)


def _decimal_gst(spec: NetworkSpec, y) -> list[decimal.Decimal]:
    """The spec at y in 80-digit decimal arithmetic (square roots to 80 digits: far below any float64 bound)."""
    with decimal.localcontext() as ctx:
        ctx.prec = 80
        D = decimal.Decimal
        states = [[D(float(x)) for x in y]]
        for ws, b, act in zip(spec.weights, spec.biases, spec.activations, strict=True):
            v = [D(float(x)) for x in b]
            for j, w in ws.items():
                v = [a + sum((D(float(x)) * s for x, s in zip(row, states[j], strict=True)), D(0))
                     for a, row in zip(v, w, strict=True)]
            if isinstance(act, GroupSoftThreshold):
                z = [D(0)] * len(v)
                for g in act.groups:
                    r = sum((v[i] * v[i] for i in g), D(0)).sqrt()
                    c = max(1 - D(act.theta) / r, D(0)) if r > 0 else D(0)
                    for i in g:
                        z[i] = c * v[i]
                v = z
            states.append(v)
        (k, C), = spec.readout.items()
        return [sum((D(float(x)) * s for x, s in zip(row, states[k], strict=True)), D(0)) for row in C]


@settings(max_examples=30)
@given(st.integers(0, 2**16), st.sampled_from([1e-150, 1e-8, 1.0, 1e8, 1e150]), st.floats(0.0, 2.0))
def test_group_soft_threshold_error_bound_holds(seed, scale, theta):
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((4, 3)) * scale
    spec = NetworkSpec(3, [Layer({0: V}, GroupSoftThreshold(theta * scale, [[0, 1], [2, 3]]))])
    y = rng.standard_normal(3)
    ev = evaluate_with_error(spec, y)
    if ev.error is None:
        assert scale == 1e150 and "overflow" in ev.reason
        return
    ref = _decimal_gst(spec, y)
    with decimal.localcontext() as ctx:
        ctx.prec = 80
        assert all(abs(decimal.Decimal(float(c)) - r) <= decimal.Decimal(float(e))
                   for c, e, r in zip(ev.output, ev.error, ref, strict=True))


def test_norm_bounds_bracket_the_exact_norm():
    rng = np.random.default_rng(0)
    for scale in (1e-300, 1e-160, 1.0, 1e160, 1e300):
        x = rng.standard_normal(7) * scale
        lo, hi = norm_bounds(x)
        sq = sum(Fraction(float(v)) ** 2 for v in x)
        assert Fraction(lo) ** 2 <= sq <= Fraction(hi) ** 2 and hi <= lo * (1 + 1e-13)


# ---------------------------------------------------------------------------- float32
def _box_points(rng, lower, upper, count):
    return lower + (upper - lower) * rng.uniform(0.0, 1.0, (count, lower.size))


@settings(max_examples=15)
@given(SPECS.filter(lambda s: max(float(np.abs(w).max()) for ws in s.weights for w in ws.values()) < 1e30), st.integers(0, 2**16))
def test_float32_deviation_bounds_the_float32_pass(spec, seed):
    rng = np.random.default_rng(seed)
    lower = -rng.uniform(0.0, 2.0, spec.input_dim)
    upper = rng.uniform(0.0, 2.0, spec.input_dim)
    bound = float32_deviation(spec, lower, upper)
    if not bound.certified:
        assert bound.details["reason"] and bound.value == np.inf
        return
    Y = np.vstack([_box_points(rng, lower, upper, 200), lower, upper])
    f32 = evaluate_float32(spec, Y).astype(np.float64)
    for y, out in zip(Y[:20], f32[:20], strict=True):  # exact comparison on a few points
        dev2 = sum((Fraction(float(a)) - b) ** 2 for a, b in zip(out, exact_output(spec, y), strict=True))
        assert dev2 <= Fraction(bound.value) ** 2
    assert np.linalg.norm(f32 - spec(Y), axis=1).max() <= bound.value  # the rest against float64 (far finer)


def test_float32_deviation_on_a_trained_ish_lista_against_torch():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((6, 10)) / np.sqrt(6)
    A /= np.linalg.norm(A, axis=0)
    model = LISTA(A, 4, 0.05).float()
    with torch.no_grad():  # move every parameter away from the ISTA initialisation, as training would
        for p in model.parameters():
            p.add_(0.05 * float(p.abs().mean()) * torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))
    spec = model.spec()
    lower, upper = -np.ones(6), np.ones(6)
    bound = float32_deviation(spec, lower, upper)
    assert bound.certified and 0 < bound.value < 1e-3
    Y = np.vstack([_box_points(rng, lower, upper, 500), lower, upper])
    with torch.no_grad():
        deployed = model(torch.as_tensor(Y, dtype=torch.float32)).double().numpy()
    observed = np.linalg.norm(deployed - spec(Y), axis=1).max()
    assert 0 < observed <= bound.value
    assert np.linalg.norm(evaluate_float32(spec, Y) - spec(Y), axis=1).max() <= bound.value
    # the spec of the float32 model has float32 weights: no stored-weight rounding; a float64 spec pays for it
    assert bound.value < float32_deviation(model.double().spec(), lower, upper).value * 1.5


def test_float32_weights_rounding_is_covered_for_a_float64_spec():
    rng = np.random.default_rng(5)
    spec = NetworkSpec(3, [Layer({0: rng.standard_normal((4, 3)) * 1e3}, SoftThreshold(0.1 + 1e-9)),
                           Layer({1: rng.standard_normal((4, 4)), 0: rng.standard_normal((4, 3))},
                                 BoxProjection(-1e3 + 1e-7, 1e3))])
    lower, upper = -np.ones(3), np.ones(3)
    bound = float32_deviation(spec, lower, upper)
    Y = _box_points(rng, lower, upper, 2000)
    assert bound.certified and np.linalg.norm(evaluate_float32(spec, Y) - spec(Y), axis=1).max() <= bound.value


class _Tanh(Activation):
    name = "tanh"

    def __call__(self, v):
        return np.tanh(v)

    def slopes(self, v):
        return 1.0 - np.tanh(v) ** 2


def test_float32_deviation_refuses_what_it_cannot_bound():
    spec = NetworkSpec(2, [Layer({0: np.eye(2)}, _Tanh())])
    b = float32_deviation(spec, -np.ones(2), np.ones(2))
    assert not b.certified and "user-defined" in b.details["reason"]
    big = NetworkSpec(2, [Layer({0: 1e20 * np.eye(2)}, ReLU())])
    b = float32_deviation(big, -1e20 * np.ones(2), 1e20 * np.ones(2))
    assert not b.certified and "overflow" in b.details["reason"]
    with pytest.raises(ValueError, match=r"lower\[1\]"):
        float32_deviation(big, [0.0, 1.0], [1.0, 0.0])
