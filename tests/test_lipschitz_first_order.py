"""The first-order LipSDP-Neuron solver on the Schur recursion: its gradient against finite
differences, its certified value against the dense SDP (solver against solver) and the sequential
multipliers it starts from, and the order lower ≤ agnostic ≤ sdp ≤ first-order ≤ sequential."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory.classical import ista_spec
from unfoldtheory.lipschitz import upper_bound
from unfoldtheory.lipschitz.agnostic import activation_agnostic
from unfoldtheory.lipschitz.chain import chain_layers, schur_rho, schur_rho_gradient
from unfoldtheory.lipschitz.first_order import first_order_bound
from unfoldtheory.lipschitz.lower import lower_bound
from unfoldtheory.lipschitz.sdp import sdp_bound
from unfoldtheory.lipschitz.sequential import sequential_bound
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.testing import unrolled_specs
from unfoldtheory.unfold import ALISTA, LISTA


@pytest.mark.parametrize("temperature", [0.0, 0.05])
def test_gradient_matches_finite_differences(temperature):
    p = SparseRecovery(6, 10, 0.2, seed=0)
    spec = ista_spec(p.A, p.lam, 3)
    layers, C = chain_layers(spec)
    lam = sequential_bound(spec).certificate["multipliers"] * np.random.default_rng(0).uniform(1.0, 1.5, 30)
    lams = np.split(lam, 3)
    value, exact, grads = schur_rho_gradient(layers, C, lams, temperature)
    assert exact == pytest.approx(schur_rho(layers, C, lams), rel=1e-12)
    assert value >= exact  # the softmax surrogate is above λ_max
    grad = np.concatenate(grads)
    for i in (0, 7, 15, 29):
        h = 1e-6 * lam[i]
        up, down = lam.copy(), lam.copy()
        up[i] += h
        down[i] -= h
        fd = (schur_rho_gradient(layers, C, np.split(up, 3), temperature)[0]
              - schur_rho_gradient(layers, C, np.split(down, 3), temperature)[0]) / (2 * h)
        assert fd == pytest.approx(grad[i], rel=1e-4, abs=1e-9)


@pytest.mark.parametrize("build", [lambda p: ista_spec(p.A, p.lam, 4), lambda p: LISTA(p.A, 3, p.lam).spec(),
                                   lambda p: ALISTA(p.A, 3, p.lam).spec()])
def test_first_order_is_within_one_percent_of_the_sdp(build):
    spec = build(SparseRecovery(8, 14, 0.2, seed=1))
    fo, sdp = first_order_bound(spec), sdp_bound(spec, solver="CLARABEL")
    assert fo.certified and sdp.certified
    assert fo.value >= sdp.value * (1 - 1e-5)  # the SDP's optimum is the smallest ρ over all λ
    assert fo.value <= sdp.value * 1.01
    assert fo.value <= sequential_bound(spec).value * (1 + 1e-9)


@settings(max_examples=10, deadline=None)
@given(spec=unrolled_specs(m=st.integers(1, 3), n=st.integers(1, 4), K=st.integers(1, 3)))
def test_order_lower_agnostic_sdp_first_order_sequential(spec):
    fo = first_order_bound(spec)
    seq = sequential_bound(spec)
    assert fo.certified and seq.certified
    low = lower_bound(spec, restarts=3, seed=0)
    agn = activation_agnostic(spec)
    assert low.value <= agn.value * (1 + 1e-7) + 1e-12
    assert agn.value <= fo.value * (1 + 1e-9) + 1e-12
    assert fo.value <= seq.value * (1 + 1e-9)
    sdp = sdp_bound(spec, solver="CLARABEL")
    if sdp.certified:
        assert sdp.value <= fo.value * (1 + 1e-4) + 1e-3  # SCS/strictness: ~1e-6 absolute in ρ


def test_best_refines_the_sequential_multipliers_and_rejects_bad_starts():
    p = SparseRecovery(10, 16, 0.2, seed=2)
    spec = ista_spec(p.A, p.lam, 5)
    best = upper_bound(spec, max_sdp_size=0)
    assert best.certified and best.details["chosen"] == "first-order"
    assert best.value <= best.details["candidates"]["sequential"]["value"]
    with pytest.raises(ValueError, match="start_multipliers has shape"):
        first_order_bound(spec, start_multipliers=np.ones(3))
    with pytest.raises(ValueError, match="positive"):
        first_order_bound(spec, start_multipliers=np.zeros(80))
    with pytest.raises(ValueError, match="time_budget"):
        first_order_bound(spec, time_budget=0)


def test_a_spent_time_budget_is_the_stated_reason():
    p = SparseRecovery(8, 14, 0.2, seed=1)
    spec = ista_spec(p.A, p.lam, 4)
    for bound in (sequential_bound(spec, time_budget=1e-9), first_order_bound(spec, time_budget=1e-9)):
        assert not bound.certified and bound.value == np.inf
        assert "time budget" in bound.details["check"]
