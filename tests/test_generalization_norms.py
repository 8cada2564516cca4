"""Norm-based bounds: the unrolled chain against the model's forward pass, rigorous norms against numpy,
the chaining bound against a Monte Carlo Rademacher complexity, the spectral PAC-Bayes perturbation bound
against sampled perturbations, and every bound decreasing in the number of samples, increasing in the
radius and above the measured gap of the clipped loss."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory.generalization.data import squared_losses
from unfoldtheory.generalization.pac_bayes import reference_scale
from unfoldtheory.generalization.parameter_lipschitz import flat_parameters, with_parameters
from unfoldtheory.generalization.rademacher import chaining_bound, dyadic_ceiling, gap_from_rademacher, grid_weight
from unfoldtheory.generalization.shultzman import design_rule, peeling_norms, peeling_radii, shultzman_bound
from unfoldtheory.generalization.spectral import (
    _perturbation_setup,
    _tensor_quantiles,
    _tensor_scales,
    layer_norms,
    perturbation_coefficients,
    spectral_bound,
    spectral_pac_bayes_bound,
    spectral_radii,
    unrolled_chain,
)
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.train import fit
from unfoldtheory.unfold import ALISTA, LISTA, LISTACP, UnfoldedADMM, UnfoldedFISTA, UnfoldedISTA

CHAIN_MODELS = [UnfoldedISTA, ALISTA, LISTA, LISTACP]


@pytest.fixture(scope="module")
def problem():
    return SparseRecovery(12, 20, 0.2, seed=5)


@pytest.fixture(scope="module")
def trained(problem):
    torch.manual_seed(0)
    train = problem.sample(400, seed=1)
    model = ALISTA(problem.A, 3, problem.lam)
    fit(model, problem, steps=80, lr=0.02, data=train, seed=0, progress=False)
    test = problem.sample(4000, seed=2)
    clip = 2.0 ** math.ceil(math.log2(float(squared_losses(model, train).max())))
    return model, train, test, clip


def _perturbed(model, scale, seed):
    rng = np.random.default_rng(seed)
    theta = flat_parameters(model)
    return with_parameters(model, theta * (1 + scale * rng.standard_normal(theta.size)))


def _clipped_gap(model, train, test, clip):
    return float(np.minimum(squared_losses(model, test), clip).mean() - np.minimum(squared_losses(model, train), clip).mean())


def _replicated(data, r):
    return np.tile(data[0], (r, 1)), np.tile(data[1], (r, 1))


# ---------------------------------------------------------------------------- the chain and its norms
@pytest.mark.parametrize("cls", CHAIN_MODELS)
def test_unrolled_chain_reproduces_the_forward_pass(cls, problem):
    model = _perturbed(cls(problem.A, 3, problem.lam), 0.1, 1)
    chain = unrolled_chain(model.spec())
    Y, _ = problem.sample(20, seed=3)
    x = np.zeros((20, chain.n))
    for k in range(chain.layers):
        v = Y @ chain.V[k].T + (0.0 if chain.W[k] is None else x @ chain.W[k].T)
        x = np.sign(v) * np.maximum(np.abs(v) - chain.thresholds[k], 0.0)
    with torch.no_grad():
        np.testing.assert_allclose(x, model(torch.as_tensor(Y)).numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls", CHAIN_MODELS)
def test_layer_norms_are_upper_bounds_of_the_exact_norms(cls, problem):
    model = _perturbed(cls(problem.A, 3, problem.lam), 0.1, 2)
    chain = unrolled_chain(model.spec())
    norms = layer_norms(chain, None)
    for k in range(chain.layers):
        block = chain.block(k)
        assert norms.joint[k] >= np.linalg.norm(block, 2)
        assert norms.joint[k] <= np.linalg.norm(block, 2) * (1 + 1e-9) + 1e-12
        assert norms.injection[k] >= np.linalg.norm(chain.V[k], 2)
        two_one = sum(math.sqrt(sum(v * v for v in row)) for row in block.tolist())
        assert two_one <= norms.distance[k] <= two_one * (1 + 1e-9)


def test_chain_and_peeling_reject_other_graphs(problem):
    data = problem.sample(20, seed=1)
    with pytest.raises(ValueError, match="unrolled chain reads only"):
        spectral_bound(UnfoldedFISTA(problem.A, 3, problem.lam), data, clip=4.0)
    with pytest.raises(ValueError, match="unrolled chain reads only"):
        spectral_bound(UnfoldedADMM(problem.A, 2, problem.lam), data, clip=4.0)
    # the peeling bound is generic: FISTA and ADMM specs are accepted
    for model in (UnfoldedFISTA(problem.A, 3, problem.lam), UnfoldedADMM(problem.A, 2, problem.lam)):
        assert shultzman_bound(model, data, clip=4.0).value > 0


# ---------------------------------------------------------------------------- Rademacher helpers
def test_chaining_bound_dominates_a_monte_carlo_rademacher_complexity():
    rng = np.random.default_rng(0)
    m, K, b = 200, 30, 3.0
    A = rng.uniform(0, b, size=(K, m))  # a finite class of K functions with values in [0, b]
    eps = rng.choice([-1.0, 1.0], size=(4000, m))
    mc = float(np.mean(np.max(eps @ A.T, axis=1))) / m
    bound, _ = chaining_bound(lambda e: math.log(K), b / 2.0, m)
    assert bound >= mc
    assert bound <= 6.0 * (b / 2.0) * math.sqrt(math.log(K) / m) * 1.01  # the sum telescopes to ≤ 6c√(log K/m)


@given(st.floats(0.0, 1e6), st.floats(1e-3, 10.0))
def test_dyadic_ceiling(value, base):
    r, j = dyadic_ceiling(value, base)
    assert r >= value and (j == 0 or r / 2 < value)
    assert math.isclose(r, base * 2.0 ** j)


def test_grid_weights_sum_to_one_and_gap_decreases_in_m():
    assert math.isclose(sum(grid_weight(j) for j in range(100000)), 1.0, rel_tol=1e-4)
    assert gap_from_rademacher(0.1, 2.0, 100, 0.05) > gap_from_rademacher(0.1, 2.0, 1000, 0.05)


# ---------------------------------------------------------------------------- spectral covering bound
def test_spectral_bound_properties(trained):
    model, train, test, clip = trained
    bound = spectral_bound(model, train, clip=clip)
    assert bound.kind == "upper" and not bound.certified and "directed rounding" in bound.details["reason"]
    assert bound.value >= _clipped_gap(model, train, test, clip)
    assert bound.details["vacuous"] == (bound.value >= clip)
    values = [spectral_bound(model, _replicated(train, r), clip=clip).value for r in (1, 4)]
    assert values[0] > values[1]
    small, large = (spectral_bound(model, train, clip=clip, radii=spectral_radii(model, s)).value for s in (1.0, 2.0))
    assert large > small


def test_spectral_bound_bad_input(trained, problem):
    model, train, _, clip = trained
    with pytest.raises(ValueError, match="clip"):
        spectral_bound(model, train, clip=-1.0)
    with pytest.raises(ValueError, match="reference"):
        spectral_bound(model, train, clip=clip, reference="random")
    too_small = spectral_radii(model)
    too_small["spectral"] = 0.5 * too_small["spectral"]
    with pytest.raises(ValueError, match="below the model's value"):
        spectral_bound(model, train, clip=clip, radii=too_small)
    with pytest.raises(ValueError, match="radii must be a dict"):
        spectral_bound(model, train, clip=clip, radii={"spectral": 1.0})


# ---------------------------------------------------------------------------- spectral PAC-Bayes
@pytest.mark.parametrize("cls", CHAIN_MODELS)
def test_perturbation_bound_holds_for_sampled_perturbations(cls, problem):
    model = _perturbed(cls(problem.A, 3, problem.lam), 0.05, 3)
    sigma = 0.02
    kappa, tau = perturbation_coefficients(model, sigma)
    setup = _perturbation_setup(model)
    omega = sigma * setup["unit"]
    scales = _tensor_scales(model)
    Y, _ = problem.sample(200, seed=4)
    rng = np.random.default_rng(0)
    theta = flat_parameters(model)
    with torch.no_grad():
        base = model(torch.as_tensor(Y)).numpy()
    checked = 0
    for _ in range(10):
        deltas, inside, offset = [], True, 0
        for i, p in enumerate(model.parameters()):
            d = sigma * scales[i] * rng.standard_normal(p.numel())
            mat = d.reshape(p.shape) if p.dim() == 2 else d
            inside &= (np.linalg.norm(mat, 2) if p.dim() == 2 else abs(float(d[0]))) <= omega[i]
            deltas.append(d)
            offset += p.numel()
        if not inside:
            continue
        checked += 1
        moved = with_parameters(model, theta + np.concatenate(deltas))
        with torch.no_grad():
            diff = np.linalg.norm(moved(torch.as_tensor(Y)).numpy() - base, axis=1)
        assert np.all(diff <= kappa * np.linalg.norm(Y, axis=1) + tau + 1e-12)
    assert checked >= 5  # the good event has probability >= 1/2


def test_tensor_quantiles_give_the_good_event(problem):
    model = LISTA(problem.A, 2, problem.lam)
    z = _tensor_quantiles(model)
    shapes = [tuple(p.shape) for p in model.parameters()]
    q = 1 / (2 * len(shapes))
    rng = np.random.default_rng(1)
    for zi, shape in zip(z, shapes, strict=True):
        if len(shape) == 2:
            norms = [np.linalg.norm(rng.standard_normal(shape), 2) for _ in range(300)]
            assert np.mean(np.array(norms) > zi) <= q


def test_spectral_pac_bayes_properties(trained):
    model, train, test, clip = trained
    bound = spectral_pac_bayes_bound(model, train, clip=clip)
    assert bound.kind == "upper" and not bound.certified and "forward-error" in bound.details["reason"]
    assert bound.value >= _clipped_gap(model, train, test, clip)
    values = [spectral_pac_bayes_bound(model, _replicated(train, r), clip=clip).value for r in (1, 4)]
    assert values[0] > values[1]
    with pytest.raises(ValueError, match="not supported"):
        spectral_pac_bayes_bound(UnfoldedFISTA(model.A_numpy(), 2, model.lam), train, clip=clip)


def test_spectral_pac_bayes_at_initialisation_has_zero_kl(problem):
    model = UnfoldedISTA(problem.A, 3, problem.lam)
    data = problem.sample(300, seed=1)
    bound = spectral_pac_bayes_bound(model, data, clip=32.0)
    assert bound.details["kl"] == 0.0
    assert reference_scale(model).shape == (6,)


# ---------------------------------------------------------------------------- l-infinity peeling
def test_shultzman_bound_properties(trained):
    model, train, test, clip = trained
    bound = shultzman_bound(model, train, clip=clip)
    assert bound.kind == "upper" and not bound.certified and "directed rounding" in bound.details["reason"]
    assert bound.value >= _clipped_gap(model, train, test, clip)
    values = [shultzman_bound(model, _replicated(train, r), clip=clip).value for r in (1, 4)]
    assert values[0] > values[1]
    small, large = (shultzman_bound(model, train, clip=clip, radii=peeling_radii(model, s)).value for s in (1.0, 2.0))
    assert large > small
    radii = peeling_radii(model)
    key = next(k for k in radii if k[0] == "edge")
    radii[key] *= 0.5
    with pytest.raises(ValueError, match="below the model's value"):
        shultzman_bound(model, train, clip=clip, radii=radii)


@settings(max_examples=10)
@given(st.floats(0.05, 2.0))
def test_peeling_norms_are_row_sums(scale):
    problem = SparseRecovery(6, 10, 0.3, seed=2)
    model = UnfoldedISTA(problem.A, 2, problem.lam)
    with torch.no_grad():
        model.step[1].fill_(scale)
    norms = peeling_norms(model.spec())
    W = np.eye(10) - scale * problem.A.T @ problem.A
    exact = float(np.max(np.abs(W).sum(axis=1)))
    assert exact <= norms.edges[(2, 1)] <= exact * (1 + 1e-9)


def test_design_rule(problem):
    model = UnfoldedISTA(problem.A, 3, problem.lam)
    rule = design_rule(model, 1000)
    assert math.isclose(rule.limit, 1 + problem.lam / (2 * 3 * math.sqrt(1000)))
    assert len(rule.norms) == 2 and rule.satisfied == (max(rule.norms) <= rule.limit)
    assert not rule.satisfied  # ISTA's I − AᵀA/L has row sums above 1 for a Gaussian A
    with torch.no_grad():
        for g in model.step:
            g.fill_(0.0)  # W_k = I: ‖W_k‖_∞ = 1 ≤ limit
    assert design_rule(model, 1000).satisfied
    with pytest.raises(ValueError, match="num_samples"):
        design_rule(model, 0)
