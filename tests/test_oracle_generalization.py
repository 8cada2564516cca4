"""Exact-arithmetic oracles for the generalization area (issue 12): every certified number passes its oracle.

Large search: ``pytest tests/test_oracle_generalization.py --hypothesis-profile explore`` with
``UNFOLDTHEORY_ORACLE_EXAMPLES=10000``.
"""

import math
import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unfoldtheory.generalization import parameter_lipschitz, parameter_lipschitz_estimate
from unfoldtheory.generalization.covering import gap_terms, interval_gap
from unfoldtheory.generalization.kl import kl_inverse_upper
from unfoldtheory.generalization.parameter_lipschitz import flat_parameters, with_parameters
from unfoldtheory.oracle.generalization import covering_formula_holds, kl_inverse_holds
from unfoldtheory.oracle.parameter import exact_output, norm_at_most, recursion_holds, witness_holds
from unfoldtheory.oracle.rational import matrix
from unfoldtheory.unfold import ALISTA, LISTA, LISTACP, UnfoldedISTA

CHEAP = int(os.environ.get("UNFOLDTHEORY_ORACLE_EXAMPLES", "60"))
COSTLY = max(8, CHEAP // 20)
CLASSES = (UnfoldedISTA, ALISTA, LISTA, LISTACP)


def _model(cls, seed: int, scale_exp: int, noise: float):
    """A tiny model (A: 2×3, two layers) with its parameters moved off the initialisation and scaled by 10^scale_exp."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((2, 3))
    model = cls(A / np.linalg.norm(A, axis=0), 2, 0.1)
    theta = flat_parameters(model)
    theta = theta * (1 + noise * rng.standard_normal(theta.size)) * 10.0 ** scale_exp
    return with_parameters(model, theta)


model_args = dict(cls=st.sampled_from(CLASSES), seed=st.integers(0, 10**6), scale_exp=st.integers(-200, 200),
                  noise=st.floats(0.0, 1.0))


@settings(max_examples=COSTLY, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**model_args, R=st.sampled_from([1e-150, 1e-3, 1.0, 1e3, 1e150]), r=st.sampled_from([0.0, 1e-8, 0.1]))
def test_certified_parameter_recursion_passes_the_exact_oracle(cls, seed, scale_exp, noise, R, r):
    model = _model(cls, seed, scale_exp, noise)
    bound = parameter_lipschitz(model, R, r)
    if bound.certified:
        assert recursion_holds(model, bound)
    else:
        assert "reason" in bound.details


@settings(max_examples=COSTLY, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**model_args, R=st.sampled_from([1e-3, 1.0, 1e3]), r=st.sampled_from([1e-6, 0.05]))
def test_certified_witness_passes_the_exact_oracle_and_stays_below_the_upper_bound(cls, seed, scale_exp, noise, R, r):
    model = _model(cls, seed, scale_exp % 41 - 20, noise)  # the search itself runs in torch: moderate scales
    lower = parameter_lipschitz_estimate(model, R, r, restarts=1, steps=2, seed=seed, progress=False)
    if lower.certified:
        assert witness_holds(model, lower, flat_parameters(model), r, R)
    upper = parameter_lipschitz(model, R, r)
    if lower.certified and upper.certified:
        assert lower.value <= upper.value


def test_witness_oracle_rejects_an_inflated_value():
    model = _model(LISTA, 3, 0, 0.3)
    lower = parameter_lipschitz_estimate(model, 1.0, 0.05, restarts=1, steps=2, progress=False)
    assert lower.certified and witness_holds(model, lower, flat_parameters(model), 0.05, 1.0)
    exact_ratio = math.sqrt(float(sum((a - b) ** 2 for a, b in zip(
        exact_output(with_parameters(model, lower.certificate["theta2"]), lower.certificate["y"]),
        exact_output(with_parameters(model, lower.certificate["theta1"]), lower.certificate["y"]), strict=True))))
    exact_ratio /= float(np.linalg.norm(lower.certificate["theta2"] - lower.certificate["theta1"]))
    assert lower.value == pytest.approx(exact_ratio, rel=1e-6)
    assert not witness_holds(model, lower.replace(value=exact_ratio * (1 + 1e-4)), flat_parameters(model), 0.05, 1.0)


def test_exact_output_matches_the_torch_forward_pass():
    for cls in CLASSES:
        model = _model(cls, 5, 0, 0.2)
        y = np.array([0.3, -0.7])
        with torch.no_grad():
            torch_out = model(torch.as_tensor(y[None])).numpy()[0]
        assert np.allclose([float(v) for v in exact_output(model, y)], torch_out, rtol=1e-12, atol=1e-15)


def test_norm_oracle_decides_a_known_norm_exactly():
    M = matrix(np.array([[3.0, 0.0], [0.0, 4.0]]))
    assert norm_at_most(M, 4) and not norm_at_most(M, 4 - 1e-15)


def test_recursion_oracle_rejects_a_lowered_layer_norm():
    model = _model(UnfoldedISTA, 1, 0, 0.3)
    bound = parameter_lipschitz(model, 1.0, 0.1)
    assert recursion_holds(model, bound)
    layers = [dict(L, joint=L["joint"] * (1 - 1e-3)) for L in bound.certificate["layers"]]
    assert not recursion_holds(model, bound.replace(certificate={**bound.certificate, "layers": layers}))


def test_identity_scale_underflow_is_still_rigorous():
    """Weights near the float64 floor: products PᵀA underflow; the certified recursion must still hold exactly."""
    model = _model(LISTACP, 7, -160, 0.5)
    bound = parameter_lipschitz(model, 1.0, 0.0)
    assert bound.certified and recursion_holds(model, bound)


def test_overflowing_weights_are_not_certified():
    model = _model(LISTACP, 7, 200, 0.5)
    bound = parameter_lipschitz(model, 1e150, 0.0)
    assert not bound.certified and "overflow" in bound.details["reason"]


@settings(max_examples=CHEAP, deadline=None)
@given(p=st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0, 5e-324, 1e-300, 1 - 2**-53])),
       c=st.one_of(st.floats(0.0, 50.0), st.sampled_from([0.0, 5e-324, 1e-300, 1e-17])))
def test_kl_inverse_passes_the_interval_oracle(p, c):
    q = kl_inverse_upper(p, c)
    assert p <= q <= 1.0
    assert kl_inverse_holds(p, c, q)


@settings(max_examples=CHEAP, deadline=None)
@given(m=st.integers(1, 10**9), delta=st.floats(1e-300, 0.999), D=st.integers(1, 10**7),
       K_L=st.floats(1e-200, 1e100), r=st.one_of(st.just(0.0), st.floats(1e-200, 1e50)),
       B_h=st.floats(0.0, 1e50), B=st.floats(1e-100, 1e50))
def test_covering_formula_value_passes_the_interval_oracle(m, delta, D, K_L, r, B_h, B):
    value = interval_gap(m, delta, D, K_L, r, B_h, B)
    if math.isfinite(value):
        assert covering_formula_holds(value, m, delta, D, K_L, r, B_h, B)
        float_gap = gap_terms(m, delta, D, K_L, r, B_h, B)["gap"]
        if math.isfinite(float_gap) and float_gap > 1e-250:
            assert value == pytest.approx(float_gap, rel=1e-9)
