"""unfoldtheory.robustness: mismatch test sets, iteration maps and contraction, classical ranges, pair witnesses."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from unfoldtheory import unfold
from unfoldtheory.classical import ista_support_rate
from unfoldtheory.lipschitz import upper_bound
from unfoldtheory.problems import RobustPCA, SparseRecovery
from unfoldtheory.results import Bound
from unfoldtheory.robustness import (
    GOLDEN,
    classical_range,
    iteration_bounds,
    iteration_maps,
    iteration_states,
    model_predictor,
    nmse_curve,
    one_layer_weight,
    pair_witness,
    perturbed_matrix,
    rpca_test_set,
    sparse_test_set,
    support_factor,
    witness_perturbation,
)
from unfoldtheory.train import evaluate_nmse

PROBLEM = SparseRecovery(8, 16, 0.2, seed=3)
SPARSE = ("UnfoldedISTA", "UnfoldedFISTA", "ALISTA", "UnfoldedADMM", "LISTA", "LISTACP", "HybridISTA", "LearnedUpdate")


def _perturbed(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """The model with every parameter moved a little, so that layers differ (as after training)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + 0.2 * torch.rand(p.shape, generator=gen, dtype=p.dtype))
    return model


# ---------------------------------------------------------------------------- mismatch
def test_zero_noise_and_zero_mismatch_is_the_standard_evaluation():
    model = unfold.UnfoldedISTA(PROBLEM.A, 3, PROBLEM.lam)
    Y, X = sparse_test_set(PROBLEM, 50, seed=7)
    Y0, X0 = PROBLEM.sample(50, seed=7)
    assert np.array_equal(X, X0) and np.array_equal(Y, Y0)
    curve = nmse_curve(model_predictor(model), {0.0: (Y, X)})
    assert curve[0.0] == pytest.approx(evaluate_nmse(model, Y0, X0), abs=1e-12)


@given(st.floats(0.0, 2.0), st.integers(0, 100))
def test_perturbed_matrix_has_the_requested_relative_size(relative, seed):
    A = PROBLEM.A
    Ap = perturbed_matrix(A, relative, seed)
    assert np.linalg.norm(Ap - A) / np.linalg.norm(A) == pytest.approx(relative, rel=1e-9, abs=1e-15)


def test_test_noise_and_matrix_mismatch_enter_the_measurements():
    Y, X = sparse_test_set(PROBLEM, 4000, seed=1, noise_std=0.3)
    residual = Y - X @ PROBLEM.A.T
    assert residual.std() == pytest.approx(0.3, rel=0.03)
    Ym, Xm = sparse_test_set(PROBLEM, 10, seed=1, matrix_perturbation=0.05, matrix_seed=2)
    assert np.allclose(Ym, Xm @ perturbed_matrix(PROBLEM.A, 0.05, 2).T)
    assert not np.allclose(Ym, Xm @ PROBLEM.A.T)


def test_noise_degrades_ista_monotonically_on_average():
    model = unfold.UnfoldedISTA(PROBLEM.A, 6, PROBLEM.lam)
    levels = [0.0, 0.1, 0.5]
    curve = nmse_curve(model_predictor(model), {s: sparse_test_set(PROBLEM, 500, 4, noise_std=s) for s in levels})
    assert curve[0.0] < curve[0.1] < curve[0.5]


def test_rpca_test_sets():
    problem = RobustPCA(10, 10, 2, 0.1, seed=1)
    Y, L = rpca_test_set(problem, 3, seed=5)
    Y0, L0 = problem.sample(3, seed=5)
    assert np.array_equal(Y, Y0) and np.array_equal(L, L0)
    Y, L = rpca_test_set(problem, 3, seed=5, outlier_fraction=0.3)
    assert [int(np.count_nonzero(y - lo)) for y, lo in zip(Y, L, strict=True)] == [30, 30, 30]
    Yn, Ln = rpca_test_set(problem, 200, seed=5, noise_rms=0.5)
    Yc, Lc = problem.sample(200, seed=5)
    assert np.array_equal(Ln, Lc)
    assert (Yn - Yc).std() == pytest.approx(0.5 * math.sqrt(2 / 100), rel=0.05)  # 0.5 × the RMS entry of L


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="relative"):
        perturbed_matrix(PROBLEM.A, -0.1)
    with pytest.raises(ValueError, match="noise_std"):
        sparse_test_set(PROBLEM, 5, 0, noise_std=-1.0)
    with pytest.raises(ValueError, match="seed"):
        sparse_test_set(PROBLEM, 5, -1)
    with pytest.raises(ValueError, match="multiple"):
        iteration_maps(unfold.LISTA(PROBLEM.A, 4, PROBLEM.lam).spec(), 3)


# ---------------------------------------------------------------------------- iteration maps
@pytest.mark.parametrize("name", SPARSE)
def test_iteration_maps_reproduce_the_network_states(name):
    """With y given, map k sends the states iteration k reads to those iteration k + 1 reads, as the full spec computes them."""
    K = 4
    model = _perturbed(getattr(unfold, name)(PROBLEM.A, K, PROBLEM.lam))
    spec = model.spec()
    y = PROBLEM.sample(1, seed=11)[0][0]
    _, states = spec.evaluate(y, return_states=True)
    _, reads = iteration_states(spec, K)
    maps = iteration_maps(spec, K, y=y)
    assert sorted(maps) == [k for k in range(2, K + 1) if reads[k - 1]] and maps
    for k, m in maps.items():  # reads[K]: what an iteration K + 1 would read, states of iteration K
        s_in = np.concatenate([states[j] for j in reads[k - 1]])
        assert np.allclose(m.evaluate(s_in), np.concatenate([states[j] for j in reads[k]]), atol=1e-10)


def test_ista_iteration_bound_is_the_norm_of_its_linear_part():
    model = _perturbed(unfold.UnfoldedISTA(PROBLEM.A, 3, PROBLEM.lam))
    G = PROBLEM.A.T @ PROBLEM.A
    bounds = iteration_bounds(model.spec(), 3, time_budget=0.5)
    for k, b in bounds.items():
        W = np.eye(PROBLEM.n) - model.step[k - 1].item() * G
        assert b.certified and b.value == pytest.approx(np.linalg.norm(W, 2), rel=1e-6)
        assert b.value >= 1 - 1e-12 and not b.details["contraction"]  # n > m: the null space of A is not contracted


def test_a_well_conditioned_square_ista_is_a_certified_contraction():
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    A = Q * np.linspace(1.0, 2.0, 6)  # singular values 1..2: ‖I − AᵀA/L‖ = 1 − 1/4
    model = unfold.UnfoldedISTA(A, 3, 0.1)
    bounds = iteration_bounds(model.spec(), 3, time_budget=0.5)
    assert all(b.details["contraction"] and b.value == pytest.approx(0.75, rel=1e-6) for b in bounds.values())


def test_support_factor_is_istas_closed_form_support_rate():
    model = unfold.UnfoldedISTA(PROBLEM.A, 3, PROBLEM.lam)
    maps = iteration_maps(model.spec(), 3)
    _, X = PROBLEM.sample(30, seed=2)
    factor = support_factor(maps[2], [x != 0 for x in X])
    assert factor.kind == "estimate"
    assert factor.value == pytest.approx(max(ista_support_rate(PROBLEM.A, x) for x in X), rel=1e-10)
    fista_maps = iteration_maps(unfold.UnfoldedFISTA(PROBLEM.A, 3, PROBLEM.lam).spec(), 3)
    assert one_layer_weight(fista_maps[3]) is None
    with pytest.raises(ValueError, match="one-layer"):
        support_factor(fista_maps[3], [X[0] != 0])


# ---------------------------------------------------------------------------- classical ranges
def test_classical_range_flags_steps_outside_the_stable_range():
    ista = unfold.UnfoldedISTA(PROBLEM.A, 3, PROBLEM.lam)
    (check,) = classical_range(ista)
    assert check.within == [True, True, True] and check.values == pytest.approx([1.0] * 3)
    with torch.no_grad():
        ista.step[1].fill_(2.5 / ista.L)
        ista.step[2].fill_(2.0 / ista.L)  # the range (0, 2) is open
    assert classical_range(ista)[0].within == [True, False, False]
    fista = unfold.UnfoldedFISTA(PROBLEM.A, 3, PROBLEM.lam)
    with torch.no_grad():
        fista.step[0].fill_(1.5 / fista.L)
    steps, momentum = classical_range(fista)
    assert steps.within == [False, True, True] and all(momentum.within)
    admm = unfold.UnfoldedADMM(PROBLEM.A, 2, PROBLEM.lam)
    with torch.no_grad():
        admm.dual_step[0].fill_(GOLDEN + 1e-9)
    alpha, rho = classical_range(admm)
    assert alpha.within == [False, True] and all(rho.within)
    rpca = unfold.LearnedRPCA(2, 3, 10, 10)
    assert classical_range(rpca)[0].within == [True] * 3
    assert classical_range(unfold.LISTA(PROBLEM.A, 2, PROBLEM.lam)) == []


# ---------------------------------------------------------------------------- witnesses
def test_pair_witness_of_a_linear_map_is_its_norm():
    rng = np.random.default_rng(1)
    M = torch.as_tensor(rng.standard_normal((5, 7)))
    bound = pair_witness(lambda y: y @ M.T, rng.standard_normal((3, 7)), iterations=60)
    assert bound.kind == "lower" and not bound.certified and "black-box" in bound.details["reason"]
    assert bound.value == pytest.approx(float(torch.linalg.matrix_norm(M, 2)), rel=1e-6)
    info = witness_perturbation(bound)
    assert info["relative_perturbation"] == pytest.approx(1e-4, rel=1e-9)
    assert info["output_change"] == pytest.approx(bound.value * info["perturbation"])


def test_pair_witness_is_below_the_certified_upper_bound():
    model = _perturbed(unfold.LISTA(PROBLEM.A, 3, PROBLEM.lam))
    witness = pair_witness(lambda y: model(y), PROBLEM.sample(4, seed=3)[0])
    assert 0 < witness.value <= upper_bound(model.spec(), time_budget=1.0).value * (1 + 1e-9)


def test_pair_witness_works_without_a_spec():
    problem = RobustPCA(8, 8, 2, 0.1, seed=0)
    model = unfold.LearnedRPCA(2, 3, 8, 8)
    bound = pair_witness(lambda Y: model(Y), problem.sample(2, seed=1)[0], iterations=5)
    assert not bound.certified and bound.value > 0 and np.shape(bound.certificate["y1"]) == (8, 8)


def test_witness_perturbation_needs_a_pair():
    with pytest.raises(ValueError, match="lower Bound"):
        witness_perturbation(Bound(1.0, "upper", "q", "m"))
