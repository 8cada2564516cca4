"""Detecting the classical method a spec's layers are, and the PEP of what was detected.

Routes compared: detected steps / A against the model's own parameters; the PEP of a hand-built
spec against the PEP of the package's model with the same weights; the PEP of detected gradient
descent against the closed-form product of per-step rates (the same unsquared convention); refusals
name the layer and the residual.
"""

import numpy as np
import pytest
import torch

from unfoldtheory.activations import Identity
from unfoldtheory.convergence import detect_method, pep_rate_of, schedule_rate
from unfoldtheory.convergence.detect import ROUNDING
from unfoldtheory.spec import Layer, NetworkSpec, unrolled
from unfoldtheory.unfold import ALISTA, LISTA, UnfoldedFISTA, UnfoldedISTA
from unfoldtheory.unfold.learned_hyperparameters import fista_momentum


def _A(m=16, n=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, n)) / np.sqrt(m)


def _ista_spec(A, steps, lam=0.05):
    G = A.T @ A
    W = [None] + [np.eye(A.shape[1]) - g * G for g in steps[1:]]
    return unrolled(W, [g * A.T for g in steps], [g * lam for g in steps])


def test_unfolded_ista_is_detected_with_its_own_steps():
    A = _A()
    model = UnfoldedISTA(A, 4, 0.05)
    with torch.no_grad():
        for k, g in enumerate(model.step):
            g.mul_(1 + 0.15 * k)
    found = detect_method(model.spec())  # without A: implied by the weights
    assert found.method == "proximal gradient (ISTA)" and found.pep_method == "proximal_gradient"
    np.testing.assert_allclose(found.steps, [float(g.detach()) for g in model.step], rtol=1e-12)
    np.testing.assert_allclose(found.A, A, rtol=1e-12, atol=1e-14)
    assert found.residual <= ROUNDING and found.covers_network
    assert found.mu <= np.linalg.eigvalsh(A.T @ A)[0] and found.L >= np.linalg.norm(A, 2) ** 2
    assert found.lam is None and not found.same_prox  # learned steps, thresholds left at λ/L
    assert detect_method(UnfoldedISTA(A, 4, 0.05).spec()).lam == pytest.approx(0.05, rel=1e-9)


def test_a_hand_built_spec_gets_the_same_pep_as_the_model():
    A = _A(seed=1)
    steps = np.array([0.5, 0.8, 1.1]) / np.linalg.norm(A, 2) ** 2
    model = UnfoldedISTA(A, 3, 0.05)
    with torch.no_grad():
        for g, value in zip(model.step, steps, strict=True):
            g.fill_(float(value))
    spec_rates, model_rates = pep_rate_of(_ista_spec(A, steps)), pep_rate_of(model)
    assert spec_rates.metric == model_rates.metric == "distance"  # tall A: μ > 0
    assert spec_rates.learned.certified and spec_rates.classical.certified
    assert spec_rates.learned.value == pytest.approx(model_rates.learned.value, rel=1e-6)
    assert spec_rates.learned.value < 1
    assert "proximal gradient (ISTA)" in spec_rates.certifies and "float64 rounding" in spec_rates.certifies
    assert spec_rates.detected.same_prox  # θ_k = γ_k·λ: one h = λ‖·‖₁, exact for the network


def test_gradient_descent_pep_against_the_closed_form():
    A = _A(seed=2)
    n = A.shape[1]
    G, L = A.T @ A, np.linalg.norm(A, 2) ** 2
    steps = np.array([0.6, 0.9, 0.7, 1.0]) / L  # all below 2/(L + μ): the product is tight
    layers = [Layer({0: steps[0] * A.T}, Identity())]
    layers += [Layer({0: g * A.T, k: np.eye(n) - g * G}, Identity()) for k, g in enumerate(steps[1:], start=1)]
    rates = pep_rate_of(NetworkSpec(A.shape[0], layers))
    found = rates.detected
    assert found.method == "gradient descent" and found.pep_method == "gradient"
    product = schedule_rate(rates.mu, rates.L, rates.steps)
    assert rates.learned.certified
    assert rates.learned.value == pytest.approx(product.value, rel=1e-6)  # ‖x_K − x*‖/‖x_0 − x*‖, both unsquared


def test_accelerated_gradient_is_detected_with_its_momentum():
    A = _A(seed=3)
    n, K = A.shape[1], 4
    G, L = A.T @ A, np.linalg.norm(A, 2) ** 2
    beta = fista_momentum(K)
    W = np.eye(n) - G / L
    layers = [Layer({0: A.T / L}, Identity())]
    for k in range(1, K):
        weights = {0: A.T / L, k: (1 + beta[k - 1]) * W}
        if k >= 2:
            weights[k - 1] = -beta[k - 1] * W
        layers.append(Layer(weights, Identity()))
    found = detect_method(NetworkSpec(A.shape[0], layers))
    assert found.pep_method == "accelerated"
    np.testing.assert_allclose(found.momentum, beta, atol=1e-12)
    np.testing.assert_allclose(found.steps, np.full(K, 1 / L), rtol=1e-12)
    fista = detect_method(UnfoldedFISTA(A, K, 0.05).spec())
    assert fista.method == "accelerated proximal gradient (FISTA)" and not fista.detected and "no PEP" in fista.reason


def test_alista_needs_A_and_is_a_surrogate():
    A = _A(m=8, n=12, seed=4)
    model = ALISTA(A, 3, 0.05)
    refused = detect_method(model.spec())
    assert not refused.detected and "not symmetric" in refused.reason
    found = detect_method(model.spec(), A=A)
    assert found.detected and found.surrogate is not None and "not covered" in found.surrogate
    np.testing.assert_allclose(found.steps, [float(g.detach()) for g in model.step], rtol=1e-9)


def test_perturbed_weights_are_covered_only_as_the_classical_method():
    A = _A(seed=5)
    steps = np.full(3, 0.8 / np.linalg.norm(A, 2) ** 2)
    spec = _ista_spec(A, steps)
    rng = np.random.default_rng(6)
    noisy = [Layer({j: w * (1 + 1e-8 * rng.standard_normal(w.shape)) for j, w in ws.items()}, act, b)
             for ws, act, b in zip(spec.weights, spec.activations, spec.biases, strict=True)]
    noisy_spec = NetworkSpec(spec.input_dim, noisy)
    found = detect_method(noisy_spec)
    assert found.detected and ROUNDING < found.residual < 1e-6 and not found.covers_network
    rates = pep_rate_of(noisy_spec)
    assert "not for the given network" in rates.certifies and not rates.learned.details["covers_network"]
    strict = detect_method(noisy_spec, tol=1e-10)
    assert not strict.detected and "layer 2" in strict.reason and "> tol 1e-10" in strict.reason


def test_refusals_name_the_layer():
    A = _A(seed=7)
    lista = LISTA(A, 3, 0.05)
    with torch.no_grad():
        lista.W2[1].add_(torch.as_tensor(np.random.default_rng(8).standard_normal((A.shape[1], A.shape[1]))) * 0.05)
    found = detect_method(lista.spec())
    assert not found.detected and "W_3" in found.reason
    with pytest.raises(ValueError, match="no classical method"):
        pep_rate_of(lista)
    one = detect_method(_ista_spec(A, [0.1]))
    assert not one.detected and "one layer" in one.reason
    assert detect_method(_ista_spec(A, [0.1]), A=A).detected  # with A a single layer suffices
    with pytest.raises(TypeError):
        detect_method(A)
