"""The spec-level contraction certificate of weight-tied iterations x ↦ φ(Wx + By + b).

Routes compared: the certified factor against the exact one of ISTA's map (‖W‖₂ = 1 − μ/L, attained on
the all-active region), upper against the witness, the spec route against the direct (W, φ) route,
and the implied bound on ‖x_K − x*‖ against the iterates of the spec with x* found by iterating.
"""

import numpy as np
import pytest

from unfoldtheory.activations import Identity, ReLU, SoftThreshold
from unfoldtheory.convergence import contraction_bound, tied_iteration
from unfoldtheory.convergence.spec_contraction import QUANTITY
from unfoldtheory.spec import Layer, NetworkSpec, unrolled
from unfoldtheory.unfold import UnfoldedFISTA


def _tall(m=14, n=8, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n)) / np.sqrt(m)
    return A, float(np.linalg.norm(A, 2) ** 2)


def _tied_ista(A, L, K=6, lam=0.05):
    W = np.eye(A.shape[1]) - A.T @ A / L
    return unrolled([None] + [W] * (K - 1), [A.T / L] * K, [lam / L] * K), W


def test_tied_ista_factor_is_certified_and_exact():
    A, L = _tall()
    spec, W = _tied_ista(A, L)
    bound = contraction_bound(spec)
    exact = 1 - np.linalg.eigvalsh(A.T @ A)[0] / L  # ‖W‖₂, attained where every coordinate is active
    assert bound.certified and bound.kind == "upper" and bound.quantity == QUANTITY
    assert bound.details["lower"] <= exact * (1 + 1e-12) <= bound.value * (1 + 1e-9)
    assert bound.value <= exact * (1 + 1e-6) and bound.details["lower"] >= exact * (1 - 1e-6)
    assert bound.details["contracts"] and bound.details["same_map"] and bound.details["from_zero"]
    assert bound.details["layers"] == tuple(range(1, 7))
    direct = contraction_bound(W, SoftThreshold(0.05 / L))
    assert direct.value == pytest.approx(bound.value, rel=1e-9)


def test_the_implied_iterate_bound_holds_on_the_spec():
    A, L = _tall(seed=1)
    K = 6
    spec, W = _tied_ista(A, L, K)
    bound = contraction_bound(spec)
    factor = bound.details["iterates"]["factor"]
    assert factor >= bound.value**K
    rng = np.random.default_rng(2)
    for y in rng.standard_normal((5, A.shape[0])):
        _, states = spec.evaluate(y, return_states=True)
        x_star = np.zeros(A.shape[1])
        for _ in range(5000):  # x* = T_y(x*), reached geometrically
            x_star = SoftThreshold(0.05 / L)(W @ x_star + A.T @ y / L)
        assert np.linalg.norm(states[K] - x_star) <= factor * np.linalg.norm(x_star) + 1e-12


def test_per_layer_thresholds_bound_two_runs():
    A, L = _tall(seed=3)
    W = np.eye(A.shape[1]) - A.T @ A / L
    K = 5
    spec = unrolled([None] + [W] * (K - 1), [A.T / L] * K, [0.01 * (k + 1) for k in range(K)])
    bound = contraction_bound(spec)
    assert bound.certified and not bound.details["same_map"] and bound.details["layers"] == (2, 3, 4, 5)
    assert "two runs" in bound.details["iterates"]["statement"]
    # two runs of layers 2..K from different x_1, same y: the distance shrinks by at least the factor
    rng = np.random.default_rng(4)
    y = rng.standard_normal(A.shape[0])
    a, b = rng.standard_normal(A.shape[1]), rng.standard_normal(A.shape[1])
    start = np.linalg.norm(a - b)
    for k in range(1, K):
        act = SoftThreshold(0.01 * (k + 1))
        a, b = act(W @ a + A.T @ y / L), act(W @ b + A.T @ y / L)
    assert np.linalg.norm(a - b) <= bound.details["iterates"]["factor"] * start + 1e-12


def test_a_non_contraction_is_reported_not_hidden():
    rng = np.random.default_rng(5)
    W = 1.5 * np.linalg.qr(rng.standard_normal((6, 6)))[0]
    bound = contraction_bound(W, Identity())
    assert bound.certified and bound.value >= 1.5 * (1 - 1e-9)
    assert not bound.details["contracts"] and "not below 1" in bound.details["note"]
    assert bound.details["lower"] >= 1  # the witness proves it expands


def test_not_weight_tied_names_the_layer():
    A, L = _tall()
    spec, W = _tied_ista(A, L, 4)
    Ws = [None, W, W + 1e-9, W]
    broken = unrolled(Ws, [A.T / L] * 4, [0.01] * 4)
    with pytest.raises(ValueError, match="layer 3's weight on x_2 differs from layer 2's"):
        tied_iteration(broken)
    with pytest.raises(ValueError, match="momentum"):
        contraction_bound(UnfoldedFISTA(A, 4, 0.05).spec())
    with pytest.raises(ValueError, match="one layer"):
        contraction_bound(unrolled([None], [A.T / L], [0.01]))
    with pytest.raises(ValueError, match="square"):
        contraction_bound(np.ones((3, 4)), ReLU())
    with pytest.raises(ValueError, match="Activation"):
        contraction_bound(W)
    with pytest.raises(ValueError, match="read from the spec"):
        contraction_bound(spec, ReLU())


def test_a_hand_written_relu_iteration_with_bias():
    rng = np.random.default_rng(6)
    n, m = 5, 3
    W = 0.3 * rng.standard_normal((n, n))
    B, b = rng.standard_normal((n, m)), rng.standard_normal(n)
    layers = [Layer({0: B}, ReLU(), b, n)] + [Layer({0: B, k: W}, ReLU(), b, n) for k in range(1, 4)]
    bound = contraction_bound(NetworkSpec(m, layers))
    assert bound.certified and bound.details["from_zero"] and bound.details["same_map"]
    assert bound.details["lower"] <= bound.value <= float(np.linalg.norm(W, 2)) * (1 + 1e-9)
