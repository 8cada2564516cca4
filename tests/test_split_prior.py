"""The split-prior PAC-Bayes procedure: the split and its refusals, a training routine that never sees the bound's
part, every certified candidate above its predictor's held-out loss beyond the sampling margin, the certificate
re-check (passing on the real one, naming the field of a tampered one), the given-prior route against the seeded
route, matrix-weight models, and reproducibility."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory.generalization.data import squared_losses
from unfoldtheory.generalization.pac_bayes import gibbs_losses, split_pieces
from unfoldtheory.generalization.split_prior import (
    CALIBRATION,
    PREDICTORS,
    calibration_indices,
    check_split_certificate,
    choose_levels,
    prior_clip,
    split_indices,
    split_prior_bound,
    split_prior_bound_from,
)
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.train import fit
from unfoldtheory.unfold import ALISTA, LISTA, LISTACP

PROBLEM = SparseRecovery(8, 16, 0.2, noise_std=0.01, seed=1)  # noise: no two samples alike
#: A held-out mean is an estimate: the bound must exceed it by this many standard errors (a normal tail of 3e-5).
MARGIN_SE = 4.0


def trainer(cls, seen=None, steps=30):
    def train(data):
        if seen is not None:
            seen.append((data[0].copy(), data[1].copy()))
        net = cls(PROBLEM.A, 2, PROBLEM.lam)
        fit(net, PROBLEM, steps=steps, lr=0.02, data=data, seed=0, progress=False)
        return net
    return train


def loss_bound(net, part):
    """A loss level far above every loss these tests meet (checked in the test against the held-out maximum)."""
    assert part[0].shape[0] > 0
    return 1e4


@pytest.fixture(scope="module")
def split():
    data = PROBLEM.sample(240, seed=1)
    seen = []
    train = trainer(ALISTA, seen)
    full = train(data)
    seen.clear()
    bound = split_prior_bound(train, data, model=full, draws=2, loss_bound=loss_bound, progress=False)
    return data, full, bound, seen, train


# ---------------------------------------------------------------------------- the split
@given(st.integers(2, 400), st.floats(0.001, 0.999), st.integers(0, 2**32))
@settings(max_examples=40, deadline=None)
def test_split_indices_are_a_recorded_partition(samples, fraction, seed):
    prior, bound = split_indices(samples, fraction, seed)
    assert prior.size == min(samples - 1, max(1, round(fraction * samples))) and bound.size == samples - prior.size
    assert np.all(np.diff(prior) > 0) and np.all(np.diff(bound) > 0)
    assert np.array_equal(np.sort(np.concatenate([prior, bound])), np.arange(samples))
    again = split_indices(samples, fraction, seed)
    assert np.array_equal(again[0], prior) and np.array_equal(again[1], bound)
    perm = np.random.default_rng(seed).permutation(samples)  # the prior part is the permutation's head
    assert np.array_equal(prior, np.sort(perm[:prior.size]))


def test_split_indices_bad_input():
    with pytest.raises(ValueError, match="samples must be an integer >= 2"):
        split_indices(1, 0.5, 0)
    for fraction in (0.0, 1.0, math.nan):
        with pytest.raises(ValueError, match="fraction"):
            split_indices(10, fraction, 0)
    for seed in (-1, True, 1.5):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            split_indices(10, 0.5, seed)


@given(st.lists(st.floats(0.0, 30.0), min_size=5, max_size=60))
@settings(max_examples=25, deadline=None)
def test_chosen_levels_split_the_clipped_loss_exactly(losses):
    losses = np.array(losses)
    b = prior_clip(losses)
    levels = choose_levels(losses, b, 100, 0.01)
    assert levels[0] == 0.0 and levels[-1] == b and np.all(np.diff(levels) > 0)
    fresh = np.concatenate([losses, 3.0 * losses + 1.0])  # losses above b too
    np.testing.assert_allclose(split_pieces(fresh, levels) @ np.diff(levels), np.minimum(fresh, b), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------- the procedure
def test_train_sees_only_copies_of_the_prior_part(split):
    data, _, bound, seen, _ = split
    prior, rest = split_indices(240, 0.5, 0)
    fitted, calibration = calibration_indices(prior, CALIBRATION, 0)
    assert calibration.size == round(CALIBRATION * prior.size) and np.array_equal(np.union1d(fitted, calibration), prior)
    assert len(seen) == 1
    Y, X = seen[0]
    np.testing.assert_array_equal(Y, data[0][fitted])
    np.testing.assert_array_equal(X, data[1][fitted])
    received = {row.tobytes() for row in Y}
    assert not received & {row.tobytes() for row in data[0][rest]}
    assert not received & {row.tobytes() for row in data[0][calibration]}
    assert bound.details["prior_samples"] == prior.size and bound.details["bound_samples"] == rest.size
    np.testing.assert_array_equal(bound.details["calibration_indices"], calibration)


def test_every_certified_candidate_is_above_its_predictors_held_out_loss(split):
    _, full, bound, _, _ = split
    test = PROBLEM.sample(20000, seed=2)
    prior_net = bound.details["prior_net"]
    assert bound.certified and bound.kind == "upper" and not bound.reason
    candidates = bound.details["candidates"]
    assert set(candidates) == set(PREDICTORS)
    assert bound.details["predictor"] == PREDICTORS[bound.details["candidate"]]
    assert bound.details["expected_loss_bound"] == min(c["expected_loss_bound"] for c in candidates.values())
    for name, cand in candidates.items():
        assert cand["certified"], name
        b = bound.details["candidate_bounds"][name].details["clip"]
        if name.startswith("point mass"):
            losses = squared_losses(prior_net, test)
            assert losses.max() <= loss_bound(prior_net, test)
        else:
            net = prior_net if name == "Gibbs around the prior net" else full
            losses, _ = gibbs_losses(net, bound.details["candidate_bounds"][name].details["posterior_std"], test,
                                     draws=1, seed=5)
        clipped = np.minimum(losses, b).ravel()
        margin = MARGIN_SE * clipped.std() / math.sqrt(clipped.size)
        assert cand["expected_loss_bound"] >= clipped.mean() + margin, name
    assert candidates["point mass at loss_bound"]["expected_loss_bound"] >= candidates["point mass"]["expected_loss_bound"]
    assert bound.details["candidate_bounds"]["point mass at loss_bound"].details["above_loss_bound"] == 0


def test_certificate_is_rechecked_and_tampering_is_named(split):
    data, _, bound, _, _ = split
    prior_net = bound.details["prior_net"]
    check_split_certificate(bound, data, prior_model=prior_net)
    cert = bound.certificate

    def tampered(**changes):
        return dataclasses.replace(bound, certificate={**cert, **changes})

    with pytest.raises(ValueError, match="prior_indices_sha256 does not match the split recomputed from seed 1"):
        check_split_certificate(tampered(seed=1), data)
    with pytest.raises(ValueError, match="bound_indices_sha256"):
        check_split_certificate(tampered(bound_indices_sha256="0" * 64), data)
    with pytest.raises(ValueError, match="prior_data_sha256"):
        check_split_certificate(tampered(prior_data_sha256="0" * 64), data)
    shares = [(name, 2.0 * share) for name, share in cert["delta_shares"]]
    with pytest.raises(ValueError, match="delta_shares sum to more than"):
        check_split_certificate(tampered(delta_shares=shares), data)
    with pytest.raises(ValueError, match="delta_mc_shares"):
        check_split_certificate(tampered(delta_mc_shares=[("Gibbs around the model", 0.02)]), data)
    moved = ALISTA(PROBLEM.A, 2, PROBLEM.lam)
    moved.load_state_dict(prior_net.state_dict())
    with torch.no_grad():
        next(moved.parameters()).mul_(1.0 + 1e-9)
    with pytest.raises(ValueError, match="prior_parameters differ"):
        check_split_certificate(bound, data, prior_model=moved)
    with pytest.raises(ValueError, match="clip"):
        check_split_certificate(tampered(clip=cert["clip"] * 2), data, prior_model=prior_net)
    Y = data[0].copy()
    Y[split_indices(240, 0.5, 0)[1][3], 0] += 1e-12  # one entry of the bound's part
    with pytest.raises(ValueError, match="bound_data_sha256 does not match the data"):
        check_split_certificate(bound, (Y, data[1]))
    with pytest.raises(ValueError, match="samples"):
        check_split_certificate(bound, (data[0][:-1], data[1][:-1]))
    with pytest.raises(ValueError, match="no split-prior certificate"):
        check_split_certificate(bound.details["candidate_bounds"]["point mass"], data)


def test_given_prior_agrees_with_the_seeded_split_and_overlaps_are_refused(split):
    data, full, _, _, train = split
    prior, rest = split_indices(240, 0.5, 0)
    bound = split_prior_bound(train, data, model=full, draws=2, loss_bound=loss_bound, calibration=0.0, progress=False)
    prior_net = bound.details["prior_net"]
    given_bound = split_prior_bound_from(prior_net, prior, data, model=full, draws=2, loss_bound=loss_bound,
                                         progress=False)
    assert given_bound.certified
    assert given_bound.certificate["candidates"] == bound.certificate["candidates"]
    for key in ("prior_indices_sha256", "bound_indices_sha256", "prior_data_sha256", "bound_data_sha256"):
        assert given_bound.certificate[key] == bound.certificate[key]
    check_split_certificate(given_bound, data, prior_model=prior_net)
    overlapping = np.concatenate([prior, rest[:3]])
    with pytest.raises(ValueError, match="prior_indices_sha256"):  # a prior part grown into the bound's part
        check_split_certificate(dataclasses.replace(given_bound, certificate={**given_bound.certificate,
                                                                              "prior_indices": overlapping}), data)
    with pytest.raises(ValueError, match="covers all 240 samples"):
        split_prior_bound_from(prior_net, np.arange(240), data)
    with pytest.raises(ValueError, match=r"repeats 2 indices: \[3, 5\]"):
        split_prior_bound_from(prior_net, np.array([3, 3, 5, 5, 7]), data)
    with pytest.raises(ValueError, match=r"2 entries outside \[0, 240\): \[240, -1\]"):
        split_prior_bound_from(prior_net, np.array([0, 240, -1]), data)
    with pytest.raises(ValueError, match="must be integers"):
        split_prior_bound_from(prior_net, np.array([0.0, 1.0]), data)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        split_prior_bound_from(prior_net, np.array([], dtype=int), data)


def test_the_bound_is_reproducible_for_a_fixed_seed():
    data = PROBLEM.sample(80, seed=5)
    first, again = (split_prior_bound(trainer(ALISTA, steps=10), data, seed=3, draws=1, progress=False) for _ in range(2))
    assert again.value == first.value and again.certificate["candidates"] == first.certificate["candidates"]
    for key in ("prior_indices_sha256", "bound_indices_sha256", "clip"):
        assert again.certificate[key] == first.certificate[key]
    np.testing.assert_array_equal(again.certificate["prior_parameters"], first.certificate["prior_parameters"])


@pytest.mark.parametrize("cls", [LISTA, LISTACP])
def test_matrix_weight_models_get_a_certified_bound(cls):
    data = PROBLEM.sample(160, seed=3)
    bound = split_prior_bound(trainer(cls, steps=20), data, fraction=0.5, seed=4, draws=2, progress=False)
    assert bound.certified
    point = bound.details["candidates"]["point mass"]
    assert point["certified"] and point["predictor"] == "prior net (deterministic)"
    gibbs = bound.details["candidate_bounds"]["Gibbs around the prior net"]
    assert gibbs.details["mc_groups"] >= 2  # matrix weights: one draw per chunk of samples
    net = bound.details["prior_net"]
    heldout = np.minimum(squared_losses(net, PROBLEM.sample(20000, seed=4)), bound.details["candidate_bounds"]
                         ["point mass"].details["clip"])
    assert point["expected_loss_bound"] >= heldout.mean() + MARGIN_SE * heldout.std() / math.sqrt(heldout.size)


def test_split_prior_bad_input(split):
    data, _, _, _, train = split
    with pytest.raises(ValueError, match="train must be a callable"):
        split_prior_bound(None, data)
    with pytest.raises(ValueError, match="train returned a str"):
        split_prior_bound(lambda d: "net", data)
    with pytest.raises(ValueError, match="output on the prior part has shape"):
        split_prior_bound(lambda d: torch.nn.Linear(8, 3).double(), data)
    with pytest.raises(ValueError, match="model is a LISTA; the prior net is a ALISTA"):
        split_prior_bound(train, data, model=LISTA(PROBLEM.A, 2, PROBLEM.lam))
    with pytest.raises(ValueError, match="delta"):
        split_prior_bound(train, data, delta=0.0)
    with pytest.raises(ValueError, match="delta \\+ delta_mc"):
        split_prior_bound(train, data, delta=0.6, delta_mc=0.5)
    with pytest.raises(ValueError, match="draws"):
        split_prior_bound(train, data, draws=0)
    left_out = split_prior_bound(train, data, loss_bound=lambda net, part: -1.0, draws=1)
    assert "loss_bound" in left_out.details["unavailable"]["point mass at loss_bound"]
    assert "point mass at loss_bound" not in left_out.details["candidates"]
    with pytest.raises(ValueError, match="calibration"):
        split_prior_bound(train, data, calibration=1.0, draws=1)
