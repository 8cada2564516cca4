"""The LipSDP certificate against an exact-arithmetic oracle, on the spec as given (identity states included).

Every certified LipSDP-type upper bound (LipSDP-Neuron, sequential, first-order) carries its multipliers and ρ;
:func:`unfoldtheory.oracle.lmi.lipsdp_certificate_holds` rebuilds ``M(ρ, λ)`` in rationals from the float64
weights, eliminating identity states exactly, and decides ``M ⪯ 0`` exactly. The large search:
``UNFOLDTHEORY_ORACLE_EXAMPLES=10000 pytest tests/test_oracle_lmi.py --hypothesis-profile explore``.
"""

import os
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unfoldtheory import testing as ut
from unfoldtheory.activations import Identity, ReLU
from unfoldtheory.lipschitz import activation_agnostic, lower_bound, upper_bound
from unfoldtheory.lipschitz.elimination import eliminate_identity_states
from unfoldtheory.lipschitz.quadratic_form import quadratic_form
from unfoldtheory.oracle.lmi import lipsdp_certificate_holds, lipsdp_matrix
from unfoldtheory.spec import Layer, NetworkSpec, unrolled

EXAMPLES = int(os.environ.get("UNFOLDTHEORY_ORACLE_EXAMPLES", "25"))
LMI_METHODS = ("sdp", "sequential", "first-order")


def cancelling_spec() -> NetworkSpec:
    """Issue 12's example: z1 = 3y (identity), z2 = relu(w·z1 − 1e20·y − 1), w = fl(1e20/3); exactly L = 4096."""
    w = 1e20 / 3
    return NetworkSpec(1, [Layer({0: np.array([[3.0]])}, Identity()),
                           Layer({1: np.array([[w]]), 0: np.array([[-1e20]])}, ReLU(), np.array([-1.0]))])


def exact_lipschitz_of_cancelling_spec() -> Fraction:
    w = Fraction(1e20 / 3)
    return abs(3 * w - Fraction(1e20))


def _check(spec: NetworkSpec, bound) -> None:
    if not bound.certified:
        return
    cert = bound.certificate
    assert lipsdp_certificate_holds(spec, cert["multipliers"], cert["rho"]), bound.method
    assert Fraction(bound.value) ** 2 >= Fraction(cert["rho"])


def _run(spec: NetworkSpec, method: str):
    try:
        return upper_bound(spec, method=method, time_budget=5.0)
    except ValueError as exc:  # a method that does not apply to this graph says so
        assert "needs" in str(exc) or "linear" in str(exc) or "neither" in str(exc), str(exc)
        return None


def test_the_cancelling_example_is_never_certified_below_its_exact_constant():
    spec = cancelling_spec()
    exact = exact_lipschitz_of_cancelling_spec()
    assert exact == 4096
    for method in ("best", "sdp", "sequential", "first-order", "product", "averaged"):
        b = upper_bound(spec, method=method)
        if b.certified:
            assert Fraction(b.value) >= exact, (method, b.value)
        else:
            assert "rounding" in b.details.get("check", "") or "reason" in b.details, (method, b.details)
    for method in LMI_METHODS:
        _check(spec, upper_bound(spec, method=method))
    assert activation_agnostic(spec).value >= exact
    assert lower_bound(spec).value <= exact


def test_elimination_error_bounds_cover_the_exact_combined_weight():
    elim = eliminate_identity_states(cancelling_spec())
    computed = Fraction(float(elim.spec.weights[0][0][0, 0]))
    error = Fraction(float(elim.weight_errors[0][0][0, 0]))
    assert abs(computed - (-4096)) <= error


def test_without_identity_states_the_form_is_exact():
    spec = _small_relu_net(1.0)
    assert quadratic_form(spec).sparse_perturbation(np.ones(6)) is None
    assert eliminate_identity_states(spec).exact


def test_the_oracle_refuses_a_too_small_rho():
    spec = cancelling_spec()
    b = upper_bound(spec, method="product")
    assert b.certified
    # ρ below the exact L² = 4096² is refused for any multiplier (here: a large one)
    assert not lipsdp_certificate_holds(spec, [1.0], 4096.0**2 * (1 - 1e-9))
    M = lipsdp_matrix(spec, [0.0], 1.0)
    assert M[0][0] == -1  # the input block carries −ρ


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
@given(ut.adversarial_specs(), st.sampled_from(LMI_METHODS))
def test_every_certified_lmi_bound_passes_the_exact_oracle_on_adversarial_specs(spec, method):
    bound = _run(spec, method)
    if bound is not None:
        _check(spec, bound)


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
@given(ut.unrolled_specs(m=st.integers(1, 3), n=st.integers(1, 3), K=st.integers(1, 3)), st.sampled_from(LMI_METHODS))
def test_every_certified_lmi_bound_passes_the_exact_oracle_on_unrolled_specs(spec, method):
    bound = _run(spec, method)
    if bound is not None:
        _check(spec, bound)


@settings(max_examples=max(EXAMPLES // 5, 5), suppress_health_check=[HealthCheck.too_slow])
@given(ut.adversarial_specs(kinds=("cancelling",)))
def test_cancelling_chains_upper_bounds_stay_above_the_exact_lower_bound(spec):
    """Every certified upper bound lies above the exact-arithmetic Jacobian norm at a sample point."""
    bound = upper_bound(spec, time_budget=5.0)
    if not bound.certified:
        return
    lower = lower_bound(spec, restarts=2, steps=20, time_budget=2.0)
    if lower.certified:
        assert lower.value <= bound.value * (1 + 1e-12), (lower.value, bound.value)


def _small_relu_net(scale: float) -> NetworkSpec:
    rng = np.random.default_rng(0)
    W, V = rng.standard_normal((3, 3)) * scale, rng.standard_normal((3, 2)) * scale
    return unrolled([None, W], [V, V * scale], [0.1 * scale, 0.1 * scale**2], activation="relu")


@pytest.mark.parametrize("scale", [1e-150, 1e-20, 1e20, 1e150])
def test_extreme_scales_give_a_valid_number_or_a_reason(scale):
    spec = _small_relu_net(scale)
    for method in LMI_METHODS:
        b = _run(spec, method)
        if b is not None and b.certified:
            _check(spec, b)
        elif b is not None:
            assert b.details.get("check") or b.details.get("reason"), b.details
