"""PAC-Bayes route: the kl inverse against closed forms and an independent root finder, Maurer's
constant against exact sums and its 2√m bound, the kl confidence bound against simulated coverage,
the split of the clipped loss, the Gaussian KL against numerical integration, and the bound itself:
≥ the posterior's own sampled loss on held-out data, decreasing in the number of samples."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, stats

from unfoldtheory.generalization.data import squared_losses
from unfoldtheory.generalization.kl import (
    kl_bernoulli,
    kl_inverse_upper,
    kl_upper_confidence,
    maurer_log_xi,
    pinsker_upper,
    refined_upper,
)
from unfoldtheory.generalization.pac_bayes import (
    gaussian_kl,
    gibbs_losses,
    pac_bayes_bound,
    reference_scale,
    split_levels,
    split_pieces,
)
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.train import fit
from unfoldtheory.unfold import ALISTA, LISTACP, UnfoldedADMM, UnfoldedFISTA, UnfoldedISTA

probabilities = st.floats(0.0, 0.999, allow_nan=False)
budgets = st.floats(1e-6, 5.0, allow_nan=False)


# ---------------------------------------------------------------------------- kl and its inverse
@given(budgets)
def test_kl_inverse_at_zero_is_the_closed_form(c):
    q = kl_inverse_upper(0.0, c)
    exact = -math.expm1(-c)
    assert q >= exact
    assert q - exact <= 1e-9 * max(1.0, exact)


@given(probabilities, budgets)
@settings(max_examples=60)
def test_kl_inverse_matches_an_independent_root_finder(p, c):
    q = kl_inverse_upper(p, c)
    assert p <= q <= 1.0
    if kl_bernoulli(p, 1.0 - 1e-15) <= c:  # the supremum is (numerically) 1
        assert q >= 1.0 - 1e-9
        return
    root = optimize.brentq(lambda x: kl_bernoulli(p, x) - c, p, 1.0 - 1e-15, xtol=1e-15, rtol=1e-15)
    assert q >= root - 1e-12
    assert q - root <= 1e-9
    assert q >= 1.0 or kl_bernoulli(p, q) >= c * (1 - 1e-9)


@given(probabilities, budgets)
def test_kl_inverse_is_below_its_relaxations(p, c):
    q = kl_inverse_upper(p, c)
    assert q <= refined_upper(p, c) + 1e-12
    assert q <= pinsker_upper(p, c) + 1e-12


@given(probabilities, budgets, budgets)
def test_kl_inverse_is_monotone(p, c1, c2):
    lo, hi = sorted((c1, c2))
    assert kl_inverse_upper(p, lo) <= kl_inverse_upper(p, hi)
    assert kl_inverse_upper(min(p, 0.5), lo) <= kl_inverse_upper(max(p, 0.5), lo)


def test_maurer_xi_against_the_exact_sum_and_its_bounds():
    for m in (1, 2, 3, 8, 20):
        exact = sum(Fraction(math.comb(m, k)) * Fraction(k, m) ** k * Fraction(m - k, m) ** (m - k) for k in range(m + 1))
        assert math.isclose(math.exp(maurer_log_xi(m)), float(exact), rel_tol=1e-9)
        assert maurer_log_xi(m) >= math.log(float(exact))
    for m in (8, 9, 50, 1000, 20000):
        xi = math.exp(maurer_log_xi(m))
        assert math.sqrt(m) <= xi <= 2.0 * math.sqrt(m)


def test_kl_confidence_bound_covers_the_mean():
    rng = np.random.default_rng(0)
    mu, n, delta, trials = 0.3, 200, 0.1, 2000
    # [0, 1]-valued, not Bernoulli: a Beta with mean mu
    samples = rng.beta(3.0, 7.0, size=(trials, n))
    misses = sum(mu > kl_upper_confidence(float(s.mean()), n, delta) for s in samples)
    assert misses / trials <= delta  # the bound is conservative; expected misses are far below δ


def test_kl_bad_input():
    with pytest.raises(ValueError, match="p must be"):
        kl_inverse_upper(1.5, 0.1)
    with pytest.raises(ValueError, match="c must be"):
        kl_inverse_upper(0.1, -1.0)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        kl_upper_confidence(0.1, 0, 0.1)
    with pytest.raises(ValueError, match="delta"):
        kl_upper_confidence(0.1, 10, 1.0)


# ---------------------------------------------------------------------------- pieces and Gaussian KL
@given(st.lists(st.floats(0.0, 50.0, allow_nan=False), min_size=1, max_size=20), st.floats(0.1, 20.0),
       st.integers(1, 30))
def test_split_pieces_add_up_to_the_clipped_loss(losses, clip, pieces):
    levels = split_levels(clip, pieces)
    Z = split_pieces(np.array(losses), levels)
    assert np.all((Z >= 0) & (Z <= 1))
    np.testing.assert_allclose(Z @ np.diff(levels), np.minimum(losses, clip), rtol=1e-12, atol=1e-12)


@given(st.floats(-2, 2), st.floats(0.1, 2), st.floats(-2, 2), st.floats(0.1, 2))
@settings(max_examples=20)
def test_gaussian_kl_against_numerical_integration(mq, sq, mp, sp):
    def integrand(x):
        return stats.norm.pdf(x, mq, sq) * (stats.norm.logpdf(x, mq, sq) - stats.norm.logpdf(x, mp, sp))

    numeric = integrate.quad(integrand, mq - 12 * sq, mq + 12 * sq, limit=200)[0]
    closed = gaussian_kl(np.array([mq]), np.array([sq]), np.array([mp]), np.array([sp]))
    assert math.isclose(closed, numeric, rel_tol=1e-6, abs_tol=1e-8)


# ---------------------------------------------------------------------------- the bound
@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    problem = SparseRecovery(16, 32, 0.15, seed=3)
    train = problem.sample(800, seed=1)
    model = ALISTA(problem.A, 4, problem.lam)
    fit(model, problem, steps=150, lr=0.02, data=train, seed=0, progress=False)
    test = problem.sample(20000, seed=2)
    clip = 2.0 ** math.ceil(math.log2(float(squared_losses(model, train).max())))
    return model, train, test, clip


def test_bound_is_above_the_posteriors_sampled_held_out_loss(trained):
    model, train, test, clip = trained
    bound = pac_bayes_bound(model, train, clip=clip, draws=8, progress=False)
    d = bound.details
    losses, _ = gibbs_losses(model, d["posterior_std"], test, draws=2, seed=5)
    held_out = float(np.minimum(losses, clip).mean())
    assert d["expected_loss_bound"] >= held_out
    assert d["expected_loss_bound"] >= d["gibbs_train_loss_upper"] >= d["gibbs_train_loss_mc"] - 1e-12
    assert bound.value == pytest.approx(d["expected_loss_bound"] - d["train_loss"])
    assert bound.certified and bound.reason == "" and bound.kind == "upper"  # data-free prior, every number rounded up
    assert d["vacuous"] == (d["expected_loss_bound"] >= clip)


def test_bound_decreases_in_the_number_of_samples(trained):
    model, train, _, clip = trained
    std = 0.01 * reference_scale(model)
    Y, X = train
    values = [pac_bayes_bound(model, (np.tile(Y, (r, 1)), np.tile(X, (r, 1))), clip=clip, posterior_std=std, draws=2,
                              seed=3, progress=False).value for r in (1, 2, 4)]
    assert values[0] > values[1] > values[2]


def test_a_larger_clip_gives_a_larger_bound_on_the_same_data(trained):
    model, train, _, clip = trained
    std = 0.01 * reference_scale(model)
    small, large = (pac_bayes_bound(model, train, clip=c, posterior_std=std, draws=2, seed=3, progress=False).value
                    for c in (clip, 4.0 * clip))
    assert large > small


def test_supplied_prior_is_not_certified_and_used(trained):
    model, train, _, clip = trained
    std = 0.01 * reference_scale(model)
    own = pac_bayes_bound(model, train, clip=clip, posterior_std=std, prior_mean=model, prior_shape=std, draws=2,
                          progress=False)
    assert not own.certified and "reason" in own.details
    assert own.details["kl"] < 1.0  # prior centred at the posterior mean with the same shape: KL at σ_P = 1 is 0
    init = pac_bayes_bound(model, train, clip=clip, posterior_std=std, draws=2, progress=False)
    assert own.value < init.value


def test_matrix_models_get_a_draw_per_sample_when_affordable_else_chunks():
    problem = SparseRecovery(8, 12, 0.2, seed=1)
    model = LISTACP(problem.A, 2, problem.lam)
    data = problem.sample(200, seed=1)
    std = 0.01 * reference_scale(model)
    losses, groups = gibbs_losses(model, std, data, draws=2, chunk=50, per_sample=False)
    assert losses.shape == (2, 200) and len(np.unique(groups)) == 8
    bound = pac_bayes_bound(model, data, clip=16.0, posterior_std=std, draws=2, chunk=50, progress=False)
    assert bound.details["mc_groups"] == 400  # small enough for one draw per sample
    assert bound.details["expected_loss_bound"] >= bound.details["gibbs_train_loss_mc"]


@pytest.mark.parametrize("cls", [UnfoldedISTA, ALISTA, UnfoldedFISTA, UnfoldedADMM])
def test_zero_posterior_noise_reproduces_the_model(cls):
    """The per-sample parameter broadcast of the scalar-parameter models computes the forward pass."""
    problem = SparseRecovery(8, 12, 0.2, seed=1)
    model = cls(problem.A, 3, problem.lam)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.1)
    data = problem.sample(50, seed=1)
    losses, groups = gibbs_losses(model, np.zeros(model.num_parameters()), data)
    np.testing.assert_allclose(losses[0], squared_losses(model, data), rtol=1e-10)
    assert len(np.unique(groups)) == 50


def test_pac_bayes_bad_input(trained):
    model, train, _, clip = trained
    std = 0.01 * reference_scale(model)
    with pytest.raises(ValueError, match="clip"):
        pac_bayes_bound(model, train, clip=0.0, posterior_std=std)
    with pytest.raises(ValueError, match="delta"):
        pac_bayes_bound(model, train, clip=clip, posterior_std=std, delta=1.5)
    with pytest.raises(ValueError, match="posterior_std"):
        pac_bayes_bound(model, train, clip=clip, posterior_std=-std)
    with pytest.raises(ValueError, match="posterior_std has shape"):
        pac_bayes_bound(model, train, clip=clip, posterior_std=std[:3])
    with pytest.raises(ValueError, match="prior_mean"):
        pac_bayes_bound(model, train, clip=clip, posterior_std=std, prior_mean="origin")
    with pytest.raises(ValueError, match="data Y has shape"):
        pac_bayes_bound(model, (train[0][:, :3], train[1]), clip=clip, posterior_std=std)
    with pytest.raises(ValueError, match="prior_scales"):
        pac_bayes_bound(model, train, clip=clip, posterior_std=std, prior_scales=())
