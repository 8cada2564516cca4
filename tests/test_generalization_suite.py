"""The generalization suite: every bound of one model beside its measured gap, the clip grid, and the
split-prior variant, whose prior must only ever see the first part of the sample."""

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unfoldtheory import unfold
from unfoldtheory.generalization.data import squared_losses
from unfoldtheory.generalization.split_prior import CALIBRATION, calibration_indices, split_indices
from unfoldtheory.generalization.suite import METHODS, bound_rows, clip_level, generalization_bounds
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.train import fit


@pytest.fixture(scope="module")
def setting():
    problem = SparseRecovery(8, 16, 0.2, seed=0)
    train, test = problem.sample(120, seed=1), problem.sample(400, seed=2)
    return problem, train, test


def _trained(name, problem, data, steps=20):
    torch.manual_seed(0)
    model = getattr(unfold, name)(problem.A, 3, problem.lam)
    fit(model, problem, steps=steps, lr=0.02, data=data, seed=0, keep_best=False, progress=False)
    return model


@pytest.mark.parametrize("value", [0.3, 1.0, 5.0, 2.0**-40, 1024.0])
def test_clip_level_is_the_smallest_power_of_two_above(value):
    b = clip_level(np.array([value / 3, value]))
    assert b >= value and math.log2(b) == round(math.log2(b)) and -30 <= math.log2(b) <= 30
    assert b / 2 < value or b == 2.0**-30


def test_clip_level_refuses_losses_beyond_the_grid():
    with pytest.raises(ValueError, match="beyond the clip grid"):
        clip_level(np.array([2.0**31]))
    with pytest.raises(ValueError, match="beyond the clip grid"):
        clip_level(np.array([np.nan]))


def test_every_bound_beside_the_measured_gap(setting):
    problem, train, test = setting
    seen = []

    def retrain(data):
        seen.append(data)
        return _trained("UnfoldedISTA", problem, data)

    model = _trained("UnfoldedISTA", problem, train)
    result = generalization_bounds(model, train, test, retrain=retrain, split_fraction=0.25, seed=0)
    tr, te = squared_losses(model, train), squared_losses(model, test)
    assert result["train_loss"] == pytest.approx(tr.mean()) and result["test_loss"] == pytest.approx(te.mean())
    lo, hi = result["gap_interval"]
    assert lo <= result["gap"] <= hi and result["gap"] == pytest.approx(te.mean() - tr.mean())
    assert result["clip"] >= tr.max() and result["parameters"] == model.num_parameters()
    assert set(result["bounds"]) == set(METHODS) and not result["errors"]
    # the split prior was trained on part of its quarter of the sample and on nothing of the bound's part
    prior, rest = split_indices(120, 0.25, 0)
    fitted, _ = calibration_indices(prior, CALIBRATION, 0)
    assert len(seen) == 1 and np.array_equal(seen[0][0], train[0][fitted])
    split = result["bounds"]["PAC-Bayes (split prior)"]
    assert split["bound_samples"] == rest.size and split["certified"]
    assert result["bounds"]["split prior, unclipped on D"]["certified"]
    assert "ℓ·1_D" in result["bounds"]["split prior, unclipped on D"]["covers"]
    rows = dict(bound_rows(result))
    assert list(rows) == [m for m in METHODS if m in rows]
    for method, r in rows.items():
        assert r["expected"] >= r["gap_bound"] + min(result["train_loss"], 0.0)
        assert r["ratio_test"] == pytest.approx(r["expected"] / r["test"])
        # every bound on the expected (clipped) loss lies above the held-out value it covers, up to sampling error
        assert r["expected"] >= r["clipped"] - 4 * (hi - lo), method
    assert rows["covering"]["clipped"] == result["test_loss"]


def test_matrix_weight_models_get_the_certified_split_prior_bound(setting):
    problem, train, test = setting
    model = _trained("LISTA", problem, train, steps=5)
    result = generalization_bounds(model, train, test, retrain=lambda data: _trained("LISTA", problem, data, steps=5))
    rows = dict(bound_rows(result))
    split = rows["PAC-Bayes (split prior)"]
    assert split["certified"] and not split["vacuous"] and split["predictor"]
    assert split["expected"] >= split["clipped"] - 4 * (result["gap_interval"][1] - result["gap_interval"][0])
    assert rows["PAC-Bayes (data-free prior)"]["certified"]
    no_retrain = generalization_bounds(_trained("ALISTA", problem, train, steps=5), train, test)
    assert "no retraining function" in no_retrain["errors"]["PAC-Bayes (split prior)"]


@pytest.mark.parametrize(("kwargs", "message"), [({"delta": 0.0}, "delta"), ({"delta": 1.5}, "delta"),
                                                  ({"split_fraction": 1.0}, "split_fraction")])
def test_bad_parameters_are_named(setting, kwargs, message):
    problem, train, test = setting
    model = unfold.ALISTA(problem.A, 2, problem.lam)
    with pytest.raises(ValueError, match=message):
        generalization_bounds(model, train, test, **kwargs)


def test_bad_data_is_named(setting):
    problem, train, test = setting
    model = unfold.ALISTA(problem.A, 2, problem.lam)
    with pytest.raises(ValueError, match="test"):
        generalization_bounds(model, train, (test[0][:, :3], test[1]))


@pytest.mark.slow
@given(st.sampled_from(["ALISTA", "UnfoldedISTA", "LISTA", "LISTACP"]), st.integers(4, 8), st.integers(1, 3),
       st.integers(0, 10_000))
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_certified_bound_lies_above_the_held_out_value_it_covers(name, m, layers, seed):
    """On random small problems: each certified row's bound on the expected covered loss is above that loss measured on
    20 000 fresh samples, beyond 4 standard errors of the measurement (a normal tail of 3e-5)."""
    problem = SparseRecovery(m, 2 * m, 0.2, seed=seed)
    train, test = problem.sample(160, seed=seed + 1), problem.sample(20_000, seed=seed + 2)

    def fitted(data):
        torch.manual_seed(0)
        model = getattr(unfold, name)(problem.A, layers, problem.lam)
        fit(model, problem, steps=15, lr=0.03, data=data, seed=0, keep_best=False, progress=False)
        return model

    result = generalization_bounds(fitted(train), train, test, retrain=fitted, seed=seed)
    spread = math.sqrt(float(np.var(squared_losses(fitted(train), test))) / test[0].shape[0])
    certified = [(method, row) for method, row in bound_rows(result) if row["certified"]]
    assert any(method.startswith("PAC-Bayes") for method, _ in certified)
    for method, row in certified:
        assert row["expected"] >= row["clipped"] - 4 * spread, method
