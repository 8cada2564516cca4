"""Parameter Lipschitz constants (issue 6, part 1): the certified K_L against sampled and ascended ratios."""

import copy
import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from unfoldtheory.generalization import parameter_lipschitz, parameter_lipschitz_estimate
from unfoldtheory.generalization.parameter_lipschitz import flat_parameters, initial_model, verify_recursion, with_parameters
from unfoldtheory.unfold import ALISTA, LISTA, LISTACP, UnfoldedFISTA, UnfoldedISTA

M, N, K = 5, 8, 3
CLASSES = (UnfoldedISTA, ALISTA, LISTA, LISTACP)


def _matrix(seed: int) -> np.ndarray:
    A = np.random.default_rng(seed).standard_normal((M, N))
    return A / np.linalg.norm(A, axis=0)


def _perturbed(model: nn.Module, scale: float, seed: int) -> nn.Module:
    """The model moved off its initialisation (relative noise), so that the layers differ."""
    theta = flat_parameters(model)
    noise = np.random.default_rng(seed).standard_normal(theta.size)
    return with_parameters(model, theta * (1 + scale * noise))


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    A = _matrix(0)
    return {cls.__name__: _perturbed(cls(A, K, 0.1), 0.3, 1) for cls in CLASSES}


def _output(model: nn.Module, theta: np.ndarray, y: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return with_parameters(model, theta)(torch.as_tensor(y)).numpy()


def _ball_point(rng: np.random.Generator, centre: np.ndarray, r: float, on_sphere: bool) -> np.ndarray:
    d = rng.standard_normal(centre.size)
    return centre + d / np.linalg.norm(d) * (r if on_sphere else r * rng.random())


@settings(max_examples=30)
@given(name=st.sampled_from([c.__name__ for c in CLASSES]), seed=st.integers(0, 10**6),
       r=st.floats(0.0, 0.3), R=st.floats(0.3, 5.0), local=st.booleans())
def test_certified_K_L_dominates_every_sampled_ratio(models, name, seed, r, R, local):
    model = models[name]
    bound = parameter_lipschitz(model, R, r)
    assert bound.kind == "upper" and bound.certified and bound.value > 0
    rng = np.random.default_rng(seed)
    centre = flat_parameters(model)
    Y = rng.standard_normal((6, M))
    Y *= R * np.sqrt(rng.random((6, 1))) / np.linalg.norm(Y, axis=1, keepdims=True)
    Y[0] *= R / np.linalg.norm(Y[0])  # one input on the sphere
    for i in range(4):
        t1 = _ball_point(rng, centre, r, on_sphere=i == 0)
        if local or r == 0:  # a close pair: the ratio approaches a Jacobian norm
            d = rng.standard_normal(centre.size)
            t2 = t1 + 1e-5 * max(r, 1e-3) * d / np.linalg.norm(d)
            if r > 0 and np.linalg.norm(t2 - centre) > r:
                t1, t2 = centre + (t1 - centre) * 0.99, centre + (t2 - centre) * 0.99
        else:
            t2 = _ball_point(rng, centre, r, on_sphere=True)
        gap = np.linalg.norm(t2 - t1)
        if gap == 0:
            continue
        ratios = np.linalg.norm(_output(model, t2, Y) - _output(model, t1, Y), axis=1) / gap
        assert ratios.max() <= bound.value * (1 + 1e-9) + 1e-12
    outputs = np.linalg.norm(_output(model, _ball_point(rng, centre, r, True), Y), axis=1)
    assert outputs.max() <= bound.details["output_bound"] * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("name", [c.__name__ for c in CLASSES])
def test_estimate_is_a_certified_witness_below_the_certified_bound(models, name):
    model = models[name]
    est = parameter_lipschitz_estimate(model, 2.0, 0.05, restarts=2, steps=6, progress=False)
    upper = parameter_lipschitz(model, 2.0, 0.05)
    assert est.kind == "lower" and est.certified
    cert = est.certificate
    assert np.linalg.norm(cert["y"]) <= 2.0 and cert["witness_radius"] <= 0.05
    ratio = np.linalg.norm(_output(model, cert["theta2"], cert["y"][None]) - _output(model, cert["theta1"], cert["y"][None]))
    ratio /= np.linalg.norm(cert["theta2"] - cert["theta1"])
    assert ratio == pytest.approx(cert["ratio"], rel=1e-9)
    assert cert["lower_bound"] == est.value <= cert["ratio"] <= est.value * (1 + 1e-6)
    assert 0 < est.value <= upper.value


@pytest.mark.parametrize("name", [c.__name__ for c in CLASSES])
def test_K_L_grows_with_both_radii(models, name):
    model = models[name]
    values = [parameter_lipschitz(model, R, r).value for R, r in [(1.0, 0.0), (1.0, 0.1), (2.0, 0.1), (2.0, 0.2)]]
    assert all(a <= b for a, b in itertools.pairwise(values))
    assert values[0] < values[-1]


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("R", [0.05, 5.0])
def test_one_layer_closed_form_and_near_tight_witness(cls, R):
    """K = 1, r = 0: K_L = sqrt((c R)² + n) with c = ‖P‖ (step models) or 1 (learned matrices); thresholds
    just above 0 keep every coordinate active, so the witness comes close from below in both regimes
    (the step term dominates for large R, the threshold term for small R)."""
    model = cls(_matrix(2), 1, 0.1)
    with torch.no_grad():
        model.threshold[0].fill_(1e-4)
    P = model.W.detach().numpy() if cls is ALISTA else model.A_numpy()
    c = np.linalg.norm(P, 2) if cls in (ALISTA, UnfoldedISTA) else 1.0
    bound = parameter_lipschitz(model, R, 0.0)
    assert bound.value == pytest.approx(np.sqrt((c * R) ** 2 + N), rel=1e-9)
    est = parameter_lipschitz_estimate(model, R, 0.0, restarts=3, steps=15, progress=False)
    assert 0.8 * bound.value <= est.value <= bound.value


def test_verify_recursion_rejects_a_lowered_constant(models):
    bound = parameter_lipschitz(models["ALISTA"], 1.0, 0.1)
    assert verify_recursion(bound.certificate)
    tampered = copy.deepcopy(bound.certificate)
    tampered["K_L"] = bound.value * (1 - 1e-6)
    assert not verify_recursion(tampered)
    tampered = copy.deepcopy(bound.certificate)
    tampered["iterate_bounds"][-1] *= 0.5
    assert not verify_recursion(tampered)


def test_shared_parameters_are_counted_once_and_their_coefficients_add():
    model = UnfoldedISTA(_matrix(1), K, 0.1)
    tied = model.step[0]
    model.step = nn.ParameterList([tied] * K)
    assert model.num_parameters() == K + 1
    bound = parameter_lipschitz(model, 2.0, 0.05)
    cert = bound.certificate
    assert len(cert["tensor_coefficients"]) == K + 1 == len(list(model.parameters()))
    rows = [(k, row) for k, layer in enumerate(cert["layers"]) for row in layer["terms"] if row[0] == 0]
    assert len(rows) == K  # the shared step appears in every layer ...
    X, a = cert["iterate_bounds"], [layer["a"] for layer in cert["layers"]]
    expected = sum(np.prod(a[k + 1:]) * (c0 + c1 * X[k]) for k, (_, c0, c1) in rows)
    assert cert["tensor_coefficients"][0] == pytest.approx(expected, rel=1e-12)  # ... with one summed coefficient
    rng = np.random.default_rng(0)
    centre = flat_parameters(model)
    for _ in range(20):
        t1, t2 = _ball_point(rng, centre, 0.05, True), _ball_point(rng, centre, 0.05, True)
        t2[0] = t1[0] + 0.05 * np.sign(rng.standard_normal())  # move along the shared step
        t2 = centre + (t2 - centre) * min(1.0, 0.05 / np.linalg.norm(t2 - centre))
        y = rng.standard_normal((1, M))
        y *= 2.0 / np.linalg.norm(y)
        ratio = np.linalg.norm(_output(model, t2, y) - _output(model, t1, y)) / np.linalg.norm(t2 - t1)
        assert ratio <= bound.value


def test_initial_model_and_center_choices(models):
    model = models["LISTACP"]
    init = initial_model(model)
    assert type(init) is LISTACP
    assert np.allclose(flat_parameters(init), flat_parameters(LISTACP(model.A_numpy(), K, 0.1)))
    at_init = parameter_lipschitz(model, 1.0, 0.0, center="init")
    assert at_init.details["center"] == "init"
    assert at_init.value == parameter_lipschitz(init, 1.0, 0.0).value
    assert not at_init.details["model_in_ball"]


def test_bad_input_is_rejected_with_a_clear_message(models):
    fista = UnfoldedFISTA(_matrix(0), K, 0.1)
    with pytest.raises(ValueError, match="is derived from the learned parameters"):  # traced: W = (1+β)(I − γAᵀA)
        parameter_lipschitz(fista, 1.0, 0.1)
    est = parameter_lipschitz_estimate(fista, 1.0, 0.1, restarts=1, steps=1, progress=False)  # the forward pass suffices
    assert est.value > 0 and not est.certified and "no rigorous evaluation" in est.details["reason"]
    with pytest.raises(ValueError, match="input_radius"):
        parameter_lipschitz(models["LISTA"], 0.0, 0.1)
    with pytest.raises(ValueError, match="parameter_radius"):
        parameter_lipschitz(models["LISTA"], 1.0, -0.1)
    with pytest.raises(ValueError, match="center"):
        parameter_lipschitz(models["LISTA"], 1.0, 0.1, center=np.zeros(3))
    with pytest.raises(ValueError, match="center"):
        parameter_lipschitz(models["LISTA"], 1.0, 0.1, center="origin")
