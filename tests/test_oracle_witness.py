"""The exact-arithmetic oracle for pair witnesses: every lower_bound value passes it (issue 12, defect 2).

``UNFOLDTHEORY_ORACLE_EXAMPLES`` sets the number of examples per strategy (with ``--hypothesis-profile explore``
for the large search, e.g. 10000); the default is a fast derandomized slice.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unfoldtheory import testing as ut
from unfoldtheory.activations import GroupSoftThreshold, Identity, ReLU
from unfoldtheory.lipschitz import product_bound
from unfoldtheory.lipschitz.lower import check_witness, lower_bound
from unfoldtheory.oracle.witness import exact_output, witness_holds
from unfoldtheory.spec import Layer, NetworkSpec

EXAMPLES = int(os.environ.get("UNFOLDTHEORY_ORACLE_EXAMPLES", "15"))
ORACLE = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _cancelling(w=1e20 / 3):
    return NetworkSpec(1, [Layer({0: np.array([[3.0]])}, Identity()),
                           Layer({1: np.array([[w]]), 0: np.array([[-1e20]])}, ReLU(), np.array([-1.0]))])


def _assert_witness_exact(spec, lb):
    assert lb.value >= 0.0
    assert witness_holds(spec, lb.certificate, lb.value)
    if lb.certified:
        assert check_witness(spec, lb.certificate) == lb.value
    else:
        assert lb.details["reason"]


def test_oracle_evaluates_exactly_and_decides_both_ways():
    spec = _cancelling()
    assert exact_output(spec, [-1.0]) == [4095]  # 3w − 1e20 = −4096 exactly, relu(4096 − 1)
    pair = {"y1": np.array([-1.0]), "y2": np.array([-2.0])}
    assert witness_holds(spec, pair, 4096.0) and not witness_holds(spec, pair, float(np.nextafter(4096.0, 5000.0)))
    with pytest.raises(ValueError, match="square root"):
        witness_holds(NetworkSpec(2, [Layer({0: np.eye(2)}, GroupSoftThreshold(0.1, [[0, 1]]))]), pair | {
            "y1": np.zeros(2), "y2": np.ones(2)}, 1.0)


def test_the_issue_pair_no_longer_certifies_rounding_noise():
    """Issue 12: a pair 0.0012 apart certified 1.1e5 … 2.6e7 against the true 4096."""
    spec = _cancelling()
    worst = 0.0
    for a in np.linspace(-0.01, 0.01, 201):
        pair = {"y1": np.array([a]), "y2": np.array([a + 0.0012])}
        value = check_witness(spec, pair)
        assert witness_holds(spec, pair, value)
        worst = max(worst, value)
    assert worst <= 4096.0
    lb = lower_bound(spec, restarts=4, steps=20)
    _assert_witness_exact(spec, lb)
    assert lb.value <= 4096.0


@ORACLE
@given(ut.scaled_specs(max_exponent=664 // 2))
def test_lower_bound_passes_the_oracle_on_scaled_specs(triple):
    base, spec, out = triple  # the scaled map is out · base exactly: its constant is out times the base one
    lb = lower_bound(spec, restarts=2, steps=10)
    _assert_witness_exact(spec, lb)
    assert lb.value <= out * product_bound(base).value * (1 + 1e-9)


@ORACLE
@given(ut.cancelling_identity_specs())
def test_lower_bound_passes_the_oracle_on_cancelling_chains(spec):
    _assert_witness_exact(spec, lower_bound(spec, restarts=2, steps=10))


@ORACLE
@given(ut.near_singular_specs())
def test_lower_bound_passes_the_oracle_on_near_singular_layers(spec):
    _assert_witness_exact(spec, lower_bound(spec, restarts=2, steps=10))


@ORACLE
@given(ut.cancelling_identity_specs(), st.data())
def test_check_witness_passes_the_oracle_on_arbitrary_pairs(spec, data):
    """Any pair, also one the search would never pick (short, across kinks, far out)."""
    m = spec.input_dim
    y1 = np.array(data.draw(st.lists(st.floats(-1e3, 1e3), min_size=m, max_size=m)))
    step = np.array(data.draw(st.lists(st.floats(-1.0, 1.0), min_size=m, max_size=m)))
    y2 = y1 + 10.0 ** data.draw(st.integers(-12, 3)) * step
    if np.array_equal(y1, y2):
        return
    pair = {"y1": y1, "y2": y2}
    assert witness_holds(spec, pair, check_witness(spec, pair))


@pytest.mark.parametrize("exponent", [-66, 66, -330, 330])  # weights about 1e∓20 … 1e∓100 in the scaled net
def test_scaled_nets_keep_a_useful_certified_value(exponent):
    """The certified value of the scaled net is σ_out times that of the base net, to rounding (issue 12: the old
    allowance, relative to ‖y‖, gave a certified 0 at weight scales 1e-20)."""
    rng = np.random.default_rng(0)
    V, W = rng.standard_normal((4, 3)), rng.standard_normal((4, 4))
    b1, b2 = 0.3 * rng.standard_normal(4), 0.3 * rng.standard_normal(4)
    s = 2.0 ** exponent
    base = NetworkSpec(3, [Layer({0: V}, ReLU(), b1), Layer({1: W}, ReLU(), b2)])
    scaled = NetworkSpec(3, [Layer({0: s * V}, ReLU(), s * b1), Layer({1: W}, ReLU(), s * b2)], readout={2: np.eye(4)})
    lb0, lb = lower_bound(base, restarts=4, steps=20), lower_bound(scaled, restarts=4, steps=20)
    assert lb0.certified and lb.certified and lb0.value > 0
    assert lb.value == pytest.approx(s * lb0.value, rel=1e-6)
    _assert_witness_exact(scaled, lb)


def test_beyond_float64_the_value_is_valid():
    """σ_out = 2^-1000 · 2^-1000: the true constant underflows float64; the value is 0 or tiny, and exact."""
    rng = np.random.default_rng(1)
    V = rng.standard_normal((3, 2))
    spec = NetworkSpec(2, [Layer({0: V * 2.0 ** -1000}, ReLU()), Layer({1: np.eye(3) * 2.0 ** -60}, ReLU())])
    lb = lower_bound(spec, restarts=2, steps=5)
    _assert_witness_exact(spec, lb)
