"""LipSDP-Neuron over the spec graph: solver against solver, bound against witness and against the
activation-agnostic ground truth, and the multiplier check against tampering."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory.activations import Identity, ReLU, SoftThreshold
from unfoldtheory.classical import ista_spec
from unfoldtheory.lipschitz import upper_bound
from unfoldtheory.lipschitz.agnostic import activation_agnostic
from unfoldtheory.lipschitz.certificate import certify_multipliers
from unfoldtheory.lipschitz.elimination import eliminate_linear_states
from unfoldtheory.lipschitz.lower import lower_bound
from unfoldtheory.lipschitz.product import product_bound
from unfoldtheory.lipschitz.quadratic_form import quadratic_form
from unfoldtheory.lipschitz.sdp import sdp_bound
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.spec import Layer, NetworkSpec
from unfoldtheory.testing import unrolled_specs
from unfoldtheory.unfold import LISTA, HybridISTA, LearnedUpdate, UnfoldedADMM, UnfoldedFISTA

MARGIN = 1e-7


def _ista(m=4, n=6, K=3, seed=0):
    p = SparseRecovery(m, n, 0.3, seed=seed)
    return ista_spec(p.A, p.lam, K)


def test_scs_and_clarabel_certify_the_same_value():
    spec = _ista()
    scs, clarabel = sdp_bound(spec, solver="SCS"), sdp_bound(spec, solver="CLARABEL")
    assert scs.certified and clarabel.certified
    assert scs.value == pytest.approx(clarabel.value, rel=1e-3)
    # the certified value is recomputed from the multipliers, never below what the solver itself claims
    assert clarabel.value >= clarabel.details["solver_rho"] ** 0.5 * (1 - 1e-6)


@settings(max_examples=12, deadline=None)
@given(spec=unrolled_specs(m=st.integers(1, 3), n=st.integers(1, 3), K=st.integers(1, 3)))
def test_order_lower_agnostic_sdp_product(spec):
    low = lower_bound(spec, restarts=4, seed=0)
    agn = activation_agnostic(spec)
    sdp = upper_bound(spec, method="sdp")
    prod = product_bound(spec)
    assert sdp.certified
    assert low.value <= agn.value * (1 + MARGIN) + 1e-12
    assert agn.value <= sdp.value * (1 + 1e-5) + 1e-9
    # The exact SDP is never above the product bound (the product bound is one feasible multiplier
    # choice), but the certified value carries SCS's accuracy (~1e-4 relative), the strictness margin of
    # the state block, and absolute errors in ρ of ~1e-6 (SCS) that give √ρ ~ 1e-3 for a zero map.
    assert sdp.value <= prod.value * (1 + 1e-3) + 1e-3


def test_single_linear_layer_gives_the_norm():
    rng = np.random.default_rng(0)
    V = rng.standard_normal((3, 4))
    spec = NetworkSpec(4, [Layer({0: V}, SoftThreshold(0.0))])  # ST_0 is the identity, declared in [0, 1]
    sdp = sdp_bound(spec, solver="CLARABEL")
    assert sdp.certified and sdp.value == pytest.approx(np.linalg.norm(V, 2), rel=1e-5)
    assert sdp.value >= np.linalg.norm(V, 2) * (1 - 1e-9)


def test_nonnegative_chain_is_exact():
    """Positive weights, ReLU, positive inputs: the all-active pattern is reachable, so the true constant
    is the norm of the product, and LipSDP certifies it."""
    rng = np.random.default_rng(1)
    W1, W2 = rng.uniform(0.1, 1.0, (3, 2)), rng.uniform(0.1, 1.0, (2, 3))
    spec = NetworkSpec(2, [Layer({0: W1}, ReLU()), Layer({1: W2}, ReLU())])
    exact = np.linalg.norm(W2 @ W1, 2)
    sdp = sdp_bound(spec, solver="CLARABEL")
    assert sdp.certified and sdp.value == pytest.approx(exact, rel=1e-4) and sdp.value >= exact * (1 - 1e-9)


@pytest.mark.parametrize("cls", [UnfoldedFISTA, UnfoldedADMM, HybridISTA, LearnedUpdate, LISTA])
def test_models_with_momentum_identity_states_and_mlps(cls):
    p = SparseRecovery(4, 5, 0.3, seed=2)
    model = cls(p.A, 2, p.lam)
    spec = model.spec()
    bound = upper_bound(spec, method="sdp")
    assert bound.certified, bound.details
    rng = np.random.default_rng(0)
    witness = max(np.linalg.norm(spec.jacobian(3 * rng.standard_normal(4)), 2) for _ in range(50))
    assert witness <= bound.value * (1 + 1e-9)
    assert bound.value <= product_bound(spec).value * (1 + 1e-5)


def test_linear_states_are_eliminated_exactly():
    p = SparseRecovery(4, 5, 0.3, seed=3)
    spec = UnfoldedADMM(p.A, 3, p.lam).spec()
    reduced = eliminate_linear_states(spec)
    assert not any(isinstance(a, Identity) for a in reduced.activations)
    Y = np.random.default_rng(0).standard_normal((6, 4))
    f, g = spec.evaluate(Y), reduced.evaluate(Y)
    np.testing.assert_allclose(f - f[0], g - g[0], atol=1e-12)  # equal up to a constant offset
    for y in Y:
        np.testing.assert_allclose(spec.jacobian(y), reduced.jacobian(y), atol=1e-12)


def test_tampered_multipliers_never_certify_less_than_the_truth():
    spec = _ista()
    form = quadratic_form(spec)
    good = sdp_bound(spec, solver="CLARABEL")
    lam = good.certificate["multipliers"]
    witness = lower_bound(spec, restarts=4, seed=0).value
    rng = np.random.default_rng(0)
    for _ in range(20):
        tampered = lam * rng.uniform(0.0, 2.0, lam.shape)
        check = certify_multipliers(form, tampered)
        assert not check.ok or check.bound >= witness * (1 - 1e-12)
        assert not check.ok or check.bound >= good.value * (1 - 1e-6)  # the optimum cannot be beaten
    negative = lam.copy()
    negative[0] = -1.0
    assert not certify_multipliers(form, negative).ok
    assert not certify_multipliers(form, np.zeros_like(lam)).ok
    assert "negative" in certify_multipliers(form, negative).reason
    with pytest.raises(ValueError, match="multipliers; expected"):
        certify_multipliers(form, lam[:-1])


def test_best_picks_the_tightest_certified():
    spec = _ista(K=2)
    best = upper_bound(spec)
    assert best.certified and best.method.startswith("best (")
    values = [c["value"] for c in best.details["candidates"].values() if c["certified"]]
    assert best.value == min(values)


def test_best_reuses_one_quadratic_form_for_the_same_sdp_certificate(monkeypatch):
    """"best" builds the LipSDP form once and hands it (and its product bound) to the structured solve: the SDP
    candidate equals a stand-alone ``sdp_bound`` to the last bit, and the form is built exactly once."""
    import unfoldtheory.lipschitz as lipschitz
    import unfoldtheory.lipschitz.sdp as sdp_module

    spec = _ista(K=3, seed=4)
    alone = sdp_bound(spec)
    builds = []

    def counting(s):
        builds.append(s)
        return quadratic_form(s)

    monkeypatch.setattr(lipschitz, "quadratic_form", counting)
    monkeypatch.setattr(sdp_module, "quadratic_form", counting)
    best = upper_bound(spec)
    assert len(builds) == 1
    sdp = best.details["candidates"]["lipsdp-neuron (structured)"]
    assert alone.certified and sdp["certified"] and sdp["value"] == alone.value
    if best.method == "best (lipsdp-neuron)":
        np.testing.assert_array_equal(best.certificate["multipliers"], alone.certificate["multipliers"])


def test_bad_input():
    with pytest.raises(TypeError, match="NetworkSpec"):
        upper_bound("not a spec")
    with pytest.raises(ValueError, match="method 'magic' is not known"):
        upper_bound(_ista(), method="magic")
    with pytest.raises(ValueError, match="solver 'MOSEK' is not supported"):
        sdp_bound(_ista(), solver="MOSEK")
    with pytest.raises(ValueError, match=r"> max_size = 5"):
        sdp_bound(_ista(), max_size=5)


def test_equilibration_gives_powers_of_two_that_bring_each_entry_into_1_4():
    """The check's state scaling against its definition (powers of two, ``2^{2e}·v ∈ [1, 4)``, ``|e| ≤ 500``, 1 for
    entries that cannot be scaled) on values across the whole float64 range, the ends of each binade, zero,
    negatives and non-finite entries."""
    from unfoldtheory.lipschitz.certificate import _power_of_two_inverse_sqrt, _powers_of_two_inverse_sqrt, state_scaling

    rng = np.random.default_rng(0)
    values = np.concatenate([10.0 ** rng.uniform(-323, 308, 2000), np.ldexp(1.0, np.arange(-1074, 1024)),
                             np.nextafter(np.ldexp(1.0, np.arange(-1000, 1000, 7)), 0.0),
                             [0.0, -1.0, -np.inf, np.inf, np.nan, 5e-324, np.finfo(float).max]])
    expected = _powers_of_two_inverse_sqrt(values)
    mantissa, exponent = np.frexp(expected)
    assert np.all(mantissa == 0.5) and np.all(np.abs(exponent - 1) <= 500)  # exact powers of two, |e| ≤ 500
    assert np.all(expected[~(np.isfinite(values) & (values > 0))] == 1.0)
    assert [_power_of_two_inverse_sqrt(v) for v in values[::97]] == list(expected[::97])
    np.testing.assert_array_equal(state_scaling(values, 3), np.concatenate([[1.0, 1.0, 1.0], expected[3:]]))
    scaled = expected[np.isfinite(values) & (values > 1e-290) & (values < 1e290)] ** 2 * values[
        np.isfinite(values) & (values > 1e-290) & (values < 1e290)]
    # each diagonal entry brought into [1, 4), up to log2's rounding just below a power of two
    assert np.all((scaled >= 1 - 1e-15) & (scaled < 4 * (1 + 1e-15)))
