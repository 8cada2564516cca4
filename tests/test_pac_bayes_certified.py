"""The rigorous PAC-Bayes arithmetic against exact rationals and 256-bit intervals, the certificate against an
independent oracle and against tampering, and the certified bounds against held-out losses."""

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory.generalization.certified_arithmetic import (
    complexity_upper,
    gaussian_kl_upper,
    log_xi_upper,
    mean_lower,
    mean_upper,
    pieces_upper,
    squared_loss_bounds,
)
from unfoldtheory.generalization.data import squared_losses
from unfoldtheory.generalization.pac_bayes import (
    Prior,
    certificate_failure,
    even_chunk,
    gaussian_bound,
    gibbs_losses,
    pac_bayes_bound,
    point_mass_bound,
    reference_scale,
    split_levels,
)
from unfoldtheory.generalization.parameter_lipschitz import flat_parameters
from unfoldtheory.oracle.generalization import pac_bayes_certificate_holds
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.train import fit
from unfoldtheory.unfold import ALISTA, LISTA

floats = st.floats(-1e3, 1e3, allow_nan=False)
stds = st.floats(1e-6, 1e3, allow_nan=False)


def _exact_log_xi(m):
    xi = Fraction(sum(math.comb(m, k) * k**k * (m - k) ** (m - k) for k in range(m + 1)), m**m)
    mpmath.mp.prec = 200
    return mpmath.log(mpmath.mpf(xi.numerator) / xi.denominator)


@pytest.mark.parametrize("m", [1, 2, 3, 7, 8, 30, 151])
def test_log_xi_upper_bounds_the_exact_rational_value_tightly(m):
    exact = _exact_log_xi(m)
    got = log_xi_upper(m)
    assert mpmath.mpf(got) >= exact
    assert got - float(exact) <= 1e-13 * max(1.0, float(exact))


@given(st.lists(st.tuples(floats, stds, floats, stds), min_size=1, max_size=12), st.integers(1, 4))
@settings(max_examples=40, deadline=None)
def test_gaussian_kl_upper_is_above_the_exact_value_and_close(entries, repeat):
    mq, sq, mp, sp = (np.array([e[i] for e in entries] * repeat) for i in range(4))
    got = gaussian_kl_upper(mq, sq, mp, sp)
    mpmath.mp.prec = 200
    exact = mpmath.mpf(0)
    for a, s, b, t in zip(mq, sq, mp, sp, strict=True):
        rho = (mpmath.mpf(s) / mpmath.mpf(t)) ** 2
        exact += rho - 1 - mpmath.log(rho) + (mpmath.mpf(a) - mpmath.mpf(b)) ** 2 / mpmath.mpf(t) ** 2
    exact /= 2
    assert mpmath.mpf(got) >= exact
    assert got <= float(exact) * (1 + 1e-12) + 1e-300


@pytest.mark.parametrize("scale", [1e-150, 1.0, 1e150])
def test_gaussian_kl_upper_at_extreme_scales(scale):
    rng = np.random.default_rng(0)
    mq, mp = scale * rng.normal(size=50), scale * rng.normal(size=50)
    sq, sp = scale * np.full(50, 0.5), scale * np.full(50, 2.0)
    got = gaussian_kl_upper(mq, sq, mp, sp)
    mpmath.mp.prec = 200
    exact = sum(((mpmath.mpf(a) - mpmath.mpf(b)) / mpmath.mpf(2 * scale)) ** 2 for a, b in zip(mq, mp, strict=True))
    exact = (exact + 50 * (mpmath.mpf(1) / 16 - 1 - mpmath.log(mpmath.mpf(1) / 16))) / 2
    assert mpmath.mpf(got) >= exact and got <= float(exact) * (1 + 1e-10)


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=200))
def test_means_bracket_the_exact_rational_mean(values):
    exact = sum(Fraction(v) for v in values) / len(values)
    assert Fraction(mean_lower(values)) <= exact <= Fraction(mean_upper(values))


@given(st.lists(st.floats(0.0, 1e6), min_size=1, max_size=30), st.floats(0.01, 100.0), st.integers(1, 20))
def test_pieces_upper_bound_the_exact_pieces(losses, clip, pieces):
    levels = split_levels(clip, pieces)
    z = pieces_upper(np.array(losses), levels)
    for loss, row in zip(losses, z, strict=True):
        for j, got in enumerate(row):
            lo, hi = Fraction(levels[j]), Fraction(levels[j + 1])
            exact = min(max(Fraction(loss) - lo, Fraction(0)), hi - lo) / (hi - lo)
            assert Fraction(got) >= exact


def test_squared_loss_bounds_bracket_the_exact_loss_of_the_computed_output():
    rng = np.random.default_rng(1)
    out, x = rng.normal(size=(20, 33)) * 1e3, rng.normal(size=(20, 33))
    computed = np.sum((out - x) ** 2, axis=1)
    low, high = squared_loss_bounds(computed, 33)
    for o, t, lo, hi in zip(out, x, low, high, strict=True):
        exact = sum((Fraction(a) - Fraction(b)) ** 2 for a, b in zip(o, t, strict=True))
        assert Fraction(lo) <= exact <= Fraction(hi)


def test_complexity_upper_is_above_the_formula():
    got = complexity_upper(3.25, 4.5, 96, 0.05, 1000)
    mpmath.mp.prec = 200
    assert mpmath.mpf(got) >= (mpmath.mpf(3.25) + mpmath.mpf(4.5) + mpmath.log(96) - mpmath.log(mpmath.mpf(0.05))) / 1000


def test_even_chunk_divides():
    assert even_chunk(200, 50) == 50 and even_chunk(199, 50) == 1 and even_chunk(210, 50) == 42 and even_chunk(10, 50) == 10


# ---------------------------------------------------------------------------- the bounds and their certificates
@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    problem = SparseRecovery(12, 24, 0.15, seed=3)
    train = problem.sample(300, seed=1)
    model = ALISTA(problem.A, 3, problem.lam)
    fit(model, problem, steps=80, lr=0.02, data=train, seed=0, progress=False)
    clip = 2.0 ** math.ceil(math.log2(float(squared_losses(model, train).max())))
    return problem, model, train, clip


def test_data_free_bound_is_certified_and_passes_the_independent_oracle(trained):
    problem, model, train, clip = trained
    bound = pac_bayes_bound(model, train, clip=clip, posterior_std=0.02 * reference_scale(model), draws=4, progress=False)
    assert bound.certified and bound.reason == ""
    assert pac_bayes_certificate_holds(bound.certificate)
    test = problem.sample(20000, seed=2)
    losses, _ = gibbs_losses(model, bound.details["posterior_std"], test, draws=2, seed=5)
    assert bound.details["expected_loss_bound"] >= float(np.minimum(losses, clip).mean())


def test_point_mass_bound_on_independent_data_is_certified_and_above_the_test_loss(trained):
    problem, model, _, clip = trained
    held = problem.sample(400, seed=11)
    bound = point_mass_bound(model, held, clip=clip, data_free=True, origin="trained on another sample")
    assert bound.certified and pac_bayes_certificate_holds(bound.certificate)
    test = squared_losses(model, problem.sample(20000, seed=12))
    assert bound.details["expected_loss_bound"] >= float(np.minimum(test, clip).mean())
    assert not point_mass_bound(model, held, clip=clip, data_free=False, origin="x").certified


@pytest.mark.parametrize("field,factor", [("kl", 0.5), ("log_xi", 0.5), ("complexity", 0.9), ("value", 0.99),
                                          ("mc_cost", 0.5)])
def test_tampered_certificates_fail_both_checks(trained, field, factor):
    _, model, train, clip = trained
    bound = pac_bayes_bound(model, train, clip=clip, posterior_std=0.02 * reference_scale(model), draws=2, progress=False)
    cert = dict(bound.certificate)
    cert[field] = cert[field] * factor
    assert certificate_failure(cert) is not None
    assert not pac_bayes_certificate_holds(cert)


def test_a_piece_lowered_in_the_certificate_is_caught(trained):
    _, model, train, clip = trained
    bound = pac_bayes_bound(model, train, clip=clip, posterior_std=0.02 * reference_scale(model), draws=2, progress=False)
    cert = dict(bound.certificate)
    cert["kl_inverse"] = np.array(cert["kl_inverse"]) * 0.9
    assert "kl⁻¹" in certificate_failure(cert)
    assert not pac_bayes_certificate_holds(cert)


def test_a_caller_prior_is_not_certified_even_when_its_arithmetic_checks(trained):
    _, model, train, clip = trained
    theta = flat_parameters(model)
    prior = Prior(theta, reference_scale(model), (0.5, 1.0), "the model itself", data_free=False)
    bound = gaussian_bound(model, train, prior, clip=clip, posterior_std=0.02 * reference_scale(model), draws=2)
    assert not bound.certified and "without" in bound.reason
    assert certificate_failure(bound.certificate) is None


def test_matrix_weight_model_with_unequal_chunks_uses_equal_groups():
    problem = SparseRecovery(6, 10, 0.2, seed=1)
    model = LISTA(problem.A, 2, problem.lam)
    data = problem.sample(210, seed=1)
    bound = pac_bayes_bound(model, data, clip=16.0, posterior_std=0.01 * reference_scale(model), draws=2, chunk=50,
                            prior_mean="zero", per_sample=False)
    assert bound.details["mc_groups"] == 2 * 210 // 42
    assert bound.certified and pac_bayes_certificate_holds(bound.certificate)


def test_levels_and_clip_must_agree(trained):
    _, model, train, clip = trained
    with pytest.raises(ValueError, match="differs from the last level"):
        point_mass_bound(model, train, clip=clip, levels=split_levels(2 * clip, 4), data_free=True, origin="x")
    with pytest.raises(ValueError, match="levels must start at 0"):
        point_mass_bound(model, train, levels=[0.5, 1.0], data_free=True, origin="x")
    with pytest.raises(ValueError, match="give the clip level"):
        point_mass_bound(model, train, data_free=True, origin="x")
