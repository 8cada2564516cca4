"""The certified range of the unclipped squared loss on a data domain (issue 15, item 3): the output radius and
``b_max`` against sampled and ascended outputs, closed forms for linear maps, both routes winning somewhere, exact
membership counts (boundary points both ways) and refusals."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import user_modules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from user_modules import Sine, Tanh, unit_columns

from unfoldtheory.activations import Identity, ReLU, SoftThreshold
from unfoldtheory.forward_error import evaluate_with_error
from unfoldtheory.generalization.loss_range import (
    ROUTES,
    domain_loss_bound,
    domain_radii,
    model_spec,
    output_radius,
    outside_fraction,
)
from unfoldtheory.generalization.parameter_lipschitz import flat_parameters, with_parameters
from unfoldtheory.rounding import norm_lower
from unfoldtheory.spec import Layer, NetworkSpec, NotRepresentable
from unfoldtheory.unfold import ALISTA, LISTA, UnfoldedISTA

M, N, K = 5, 8, 3
EX = torch.zeros(1, M, dtype=torch.float64)  # one input: traces a user module; package models ignore it


def _matrix(seed: int) -> np.ndarray:
    return unit_columns(M, N, seed)


def TiedLISTA(A: np.ndarray, layers: int) -> user_modules.TiedLISTA:
    """A user's LISTA: one ``nn.Linear`` pair and one threshold shared by every layer."""
    return user_modules.TiedLISTA(A, layers, 0.02, inject_scale=1.3, mix_scale=0.8)


HonestTanh = Tanh


def _perturbed(model: nn.Module, seed: int) -> nn.Module:
    theta = flat_parameters(model)
    return with_parameters(model, theta * (1 + 0.3 * np.random.default_rng(seed).standard_normal(theta.size)))


def _stacked_relu(d: int = 3) -> NetworkSpec:
    """``h(y) = [y; ReLU(y)]`` through an identity state: the two blocks are orthogonal, so the recursion's joint norm
    ``‖[W₂₀, W₂₁]‖√(X₀² + X₁²) = √2·R`` beats the product bound's ``(‖W₂₀‖ + ‖W₂₁‖)·R = 2R``."""
    eye, zero = np.eye(d), np.zeros((d, d))
    return NetworkSpec(d, [Layer({0: eye}, ReLU(), None, d),
                           Layer({0: np.vstack([eye, zero]), 1: np.vstack([zero, eye])}, Identity(), None, 2 * d)])


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    A = _matrix(0)
    out = {cls.__name__: _perturbed(cls(A, K, 0.1), 1) for cls in (UnfoldedISTA, ALISTA, LISTA)}
    out["TiedLISTA"] = TiedLISTA(A, K)
    return out


def _forward(model: nn.Module, Y: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(Y, dtype=torch.float64)).numpy()


def _ascend(model: nn.Module, y0: np.ndarray, R: float, steps: int = 15) -> np.ndarray:
    """Projected gradient ascent of ‖h(y)‖² on the sphere ‖y‖ = R: a strong witness for the sup."""
    y = torch.as_tensor(y0, dtype=torch.float64).clone().requires_grad_(True)
    for _ in range(steps):
        val = model(y[None, :]).pow(2).sum()
        (g,) = torch.autograd.grad(val, y)
        with torch.no_grad():
            if float(g.norm()) == 0:
                break
            y += 0.3 * R * g / g.norm()
            y *= R / y.norm()
    return y.detach().numpy()


@settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["UnfoldedISTA", "ALISTA", "LISTA", "TiedLISTA"]), seed=st.integers(0, 10**6),
       R=st.floats(0.05, 20.0), B=st.floats(0.05, 5.0))
def test_bounds_dominate_sampled_and_ascended_points(models, name, seed, R, B):
    model = models[name]
    bound = domain_loss_bound(model, R, B, example_input=EX, time_budget=5.0)
    radius = bound.details["output_radius_bound"]
    assert bound.certified and radius.certified and bound.kind == radius.kind == "upper"
    X = radius.value
    rng = np.random.default_rng(seed)
    Y = rng.standard_normal((12, M))
    Y /= np.linalg.norm(Y, axis=1, keepdims=True)
    Y[6:] *= rng.random((6, 1))  # half inside the ball, half on the sphere
    Y = np.vstack([Y * R, _ascend(model, Y[0] * R, R)[None, :]])
    H = _forward(model, Y)
    norms = np.linalg.norm(H, axis=1)
    assert norms.max() <= X * (1 + 1e-12)  # the torch forward pass: an independent evaluation
    for route in ROUTES:  # every certified route, not only the winner
        if radius.details[f"{route}_certified"]:
            assert norms.max() <= radius.details[f"{route}_value"] * (1 + 1e-12)
    spec = model_spec(model, EX)
    for y in Y[-3:]:  # the spec's exact output, bounded below rigorously: no tolerance
        ev = evaluate_with_error(spec, y)
        assert norm_lower(np.maximum(np.abs(ev.output) - ev.error, 0.0)) <= X
    # the worst target for each output, x = −B h/‖h‖, and random targets in the ball
    worst = -B * H / np.maximum(norms, 1e-300)[:, None]
    T = rng.standard_normal((len(Y), N))
    T *= B * rng.random((len(Y), 1)) / np.linalg.norm(T, axis=1, keepdims=True)
    for targets in (worst, T):
        assert np.sum((H - targets) ** 2, axis=1).max() <= bound.value * (1 + 1e-12)
    assert Fraction(bound.value) >= (Fraction(X) + Fraction(B)) ** 2


@pytest.mark.parametrize("R", [0.5, 3.0])
def test_linear_map_matches_the_closed_form(R):
    """For ``h(y) = Wy`` the sup is ``‖W‖₂R`` and the worst loss ``(‖W‖₂R + B)²``: the Lipschitz and recursion routes
    meet them; propagation bounds each output by ``R‖w_i‖`` exactly, so its norm is ``R‖W‖_F``."""
    W = np.random.default_rng(3).standard_normal((4, 6))
    spec = NetworkSpec(6, [Layer({0: W}, Identity(), None, 4)])
    exact = np.linalg.norm(W, 2) * R
    bound = output_radius(spec, R)
    assert bound.certified
    assert all(bound.details[f"{route}_certified"] for route in ROUTES)
    for route in ("lipschitz", "recursion"):
        assert exact <= bound.details[f"{route}_value"] <= exact * (1 + 1e-6)
    frobenius = np.linalg.norm(W) * R
    assert frobenius <= bound.details["propagation_value"] <= frobenius * (1 + 1e-6)
    B = 1.7
    loss = domain_loss_bound(spec, R, B)
    assert (exact + B) ** 2 <= loss.value <= (exact + B) ** 2 * (1 + 1e-6)


def _shrink() -> NetworkSpec:
    """``h(y) = ST_½(2y)`` on ℝ: its sup over ``|y| ≤ 1`` is 1.5, which only the propagation route sees (the other two
    ignore thresholds and give 2)."""
    return NetworkSpec(1, [Layer({0: np.array([[2.0]])}, SoftThreshold(0.5), None, 1)])


def test_each_route_wins_somewhere(models):
    """The value is always the smallest certified route, and each route is the smallest somewhere: LISTA's certified
    Lipschitz constant; the recursion's joint norm on orthogonal blocks (against the product Lipschitz bound); the
    propagated thresholds of a shrinkage."""
    cases = {"lipschitz": output_radius(models["LISTA"], 2.0),
             "recursion": output_radius(_stacked_relu(), 2.0, lipschitz_method="product"),
             "propagation": output_radius(_shrink(), 1.0)}
    for winner, bound in cases.items():
        d = bound.details
        assert bound.certified and all(d[f"{route}_certified"] for route in ROUTES)
        assert d["route"] == winner
        assert bound.value == d[f"{winner}_value"] == min(d[f"{route}_value"] for route in ROUTES)
        assert all(bound.value < d[f"{route}_value"] for route in ROUTES if route != winner)
    # the stacked map reaches √2·R at y ≥ 0, the shrinkage 1.5 at y = 1: the winning routes are tight there
    y = np.full(3, 2.0 / math.sqrt(3))
    assert np.linalg.norm(_stacked_relu().evaluate(y)) <= cases["recursion"].value <= math.sqrt(2) * 2.0 * (1 + 1e-9)
    assert 1.5 <= cases["propagation"].value <= 1.5 * (1 + 1e-9)


def test_module_without_parameters_and_spec_inputs_share_one_function(models):
    """A package model and its spec give the same bound (the spec is the function bounded)."""
    model = models["ALISTA"]
    a, b = output_radius(model, 1.5), output_radius(model.spec(), 1.5)
    assert a.value == b.value and a.details["route"] == b.details["route"]


def test_uncertified_with_reasons_when_neither_route_applies():
    spec = NetworkSpec(3, [Layer({0: np.eye(3)}, HonestTanh(), None, 3)])
    bound = output_radius(spec, 1.0)
    assert not bound.certified and bound.details["route"] is None
    assert "h(0) has no rigorous enclosure" in bound.details["lipschitz_reason"]
    assert "does not apply" in bound.details["recursion_reason"] and "tanh" in bound.details["recursion_reason"]
    assert "bound propagation does not apply" in bound.details["propagation_reason"]
    assert all(f"{route} route" in bound.reason for route in ROUTES)
    loss = domain_loss_bound(spec, 1.0, 1.0)
    assert not loss.certified and "output radius is not certified" in loss.reason


def test_outside_count_is_exact_on_the_boundary():
    s = 2.0 ** -3
    Y = np.array([[3 * s, 4 * s], [0.0, 0.0], [1.0, 1.0]])  # ‖y‖ = 5s exactly, 0, √2
    X = np.array([[1.0], [2.0], [0.5]])
    r = math.sqrt(2.0)  # √2 is irrational: the floats r⁻ < √2 < r⁺ straddle it, decided in rationals
    low, high = (float(np.nextafter(r, 0.0)), r) if Fraction(r) ** 2 > 2 else (r, float(np.nextafter(r, np.inf)))
    data = (Y, X)
    assert outside_fraction(data, high, 2.0) == 0  # all inside; x = 2 lies on the boundary
    assert outside_fraction(data, low, 2.0) == 1  # (1, 1) just outside
    assert outside_fraction(data, high, float(np.nextafter(2.0, 0.0))) == 1  # x = 2 just outside
    assert outside_fraction(data, 5 * s, 2.0) == 1  # (3s, 4s) on the boundary is inside, (1, 1) is not
    assert outside_fraction(data, float(np.nextafter(5 * s, 0.0)), 2.0) == 2


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), shift=st.integers(-2, 2), which=st.integers(0, 19))
def test_outside_count_matches_exact_rationals(seed, shift, which):
    rng = np.random.default_rng(seed)
    Y, X = rng.standard_normal((20, 4)), rng.standard_normal((20, 3))
    R = float(np.linalg.norm(Y[which]))
    for _ in range(abs(shift)):  # a radius a few floats from a sample's norm: membership decided by the last bits
        R = float(np.nextafter(R, np.inf if shift > 0 else 0.0))
    B = float(np.linalg.norm(X[which]))

    def out(V, r):
        return [sum(Fraction(float(t)) ** 2 for t in v) > Fraction(r) ** 2 for v in V]

    expected = sum(a or b for a, b in zip(out(Y, R), out(X, B), strict=True))
    assert outside_fraction((Y, X), R, B) == expected


def test_domain_radii_contain_the_sample():
    rng = np.random.default_rng(4)
    data = (rng.standard_normal((200, M)), rng.standard_normal((200, N)))
    assert outside_fraction(data, *domain_radii(data)) == 0
    R, B = domain_radii(data, quantile=0.9)
    assert 0 < outside_fraction(data, R, B) <= 2 * 20  # each radius leaves at most the top 10 % outside
    R2, B2 = domain_radii(data, factor=2.0)
    assert R2 >= 2 * R and B2 >= 2 * B


def test_refusals(models):
    model = models["LISTA"]
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="input_radius"):
            output_radius(model, bad)
        with pytest.raises(ValueError, match="target_radius"):
            domain_loss_bound(model, 1.0, bad)
        with pytest.raises(ValueError, match="input_radius"):
            outside_fraction((np.ones((2, M)), np.ones((2, N))), bad, 1.0)
    with pytest.raises(ValueError, match="lipschitz_method"):
        output_radius(model, 1.0, lipschitz_method="magic")
    with pytest.raises(ValueError, match=r"nn\.Module or a NetworkSpec"):
        output_radius(np.eye(3), 1.0)
    with pytest.raises(NotRepresentable, match=r"Sine cannot be written as a NetworkSpec.*sin"):
        output_radius(Sine(M, N), 1.0, example_input=torch.zeros(1, M, dtype=torch.float64))
    with pytest.raises(ValueError, match="example_input"):
        output_radius(TiedLISTA(_matrix(0), 2), 1.0)
    with pytest.raises(ValueError, match="3 measurements Y but 2 signals X"):
        outside_fraction((np.ones((3, M)), np.ones((2, N))), 1.0, 1.0)
    with pytest.raises(ValueError, match="quantile"):
        domain_radii((np.ones((3, M)), np.ones((3, N))), quantile=0.0)
    with pytest.raises(ValueError, match="radius from the data"):
        domain_radii((np.full((3, M), 1e308), np.ones((3, N))))  # the norms overflow


@pytest.mark.parametrize("name", ["UnfoldedISTA", "ALISTA", "LISTA"])
def test_recursion_route_agrees_with_the_hand_written_recursion(models, name):
    """The spec-level state-norm recursion and the package models' hand-written layer recursion (its output bound at
    parameter radius 0) are two implementations of one bound: equal up to the rounding of formed products."""
    from unfoldtheory.generalization import parameter_lipschitz

    hand = parameter_lipschitz(models[name], 2.5, 0.0).details["output_bound"]
    spec_route = output_radius(models[name], 2.5, lipschitz_method="product").details["recursion_value"]
    assert spec_route == pytest.approx(hand, rel=1e-9)
