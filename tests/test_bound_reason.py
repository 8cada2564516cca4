"""``Bound.reason`` (why a result is not certified, on every uncertified Bound) and the compact ``Bound.__repr__``."""

from __future__ import annotations

import math

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from user_modules import Tanh

from unfoldtheory.classical import ista_spec
from unfoldtheory.forward_error import float32_deviation
from unfoldtheory.lipschitz import product_bound, sdp_bound, sequential_bound
from unfoldtheory.lipschitz.certificate import bound_from_multipliers
from unfoldtheory.lipschitz.lower import lower_bound
from unfoldtheory.lipschitz.quadratic_form import quadratic_form
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.results import REPR_MAX, Bound, default_reason
from unfoldtheory.robustness import pair_witness, support_factor
from unfoldtheory.spec import Layer, NetworkSpec, unrolled

GENERIC = {"no certificate was checked", "an estimate bounds nothing; it is not certified"}


@pytest.fixture(scope="module")
def spec():
    problem = SparseRecovery(8, 16, 0.2, seed=0)
    return ista_spec(problem.A, problem.lam, 3)


def make(**kw) -> Bound:
    return Bound(**{"value": 1.0, "kind": "upper", "quantity": "q", "method": "m", **kw})


# ----------------------------------------------------------------------------- repr


def test_repr_of_a_lipsdp_bound_is_one_short_line_and_to_dict_keeps_everything(spec):
    b = sdp_bound(spec)
    assert b.certified
    text = repr(b)
    n = b.details["num_multipliers"]
    assert "\n" not in text and len(text) <= REPR_MAX and text.startswith("Bound(") and text.endswith(")")
    assert f"multipliers: <ndarray ({n},)>" in text and "array(" not in text
    assert f"value={b.value!r}" in text and "method='lipsdp-neuron'" in text and "certified=True" in text
    assert "reason=" not in text  # only an uncertified Bound shows one
    assert len(b.to_dict()["certificate"]["multipliers"]) == n == len(b.certificate["multipliers"])


class NoLength:
    def __len__(self):
        raise RuntimeError("broken")


@settings(max_examples=40, deadline=None)
@given(text=st.text(min_size=1, max_size=400), size=st.integers(0, 5000), certified=st.booleans())
def test_repr_is_bounded_whatever_the_fields(text, size, certified):
    certificates = [np.zeros((size, 3)), {"multipliers": np.ones(size), "nested": {"a": list(range(size))}, text: text},
                    list(range(size)), NoLength(), text, None, 3.5]
    for certificate in certificates:
        b = make(value=2.0 if certified else math.inf, certified=certified, quantity=text, method=text,
                 certificate=certificate, details={text: np.arange(size), **{f"k{i}": i for i in range(size % 50)}},
                 reason="" if certified else text + "\n" + text)
        out = repr(b)
        assert "\n" not in out and len(out) <= REPR_MAX and out.startswith("Bound(value=") and out.endswith(")")
        assert ("reason=" in out) != certified


def test_str_shows_the_reason_of_an_uncertified_bound():
    b = make(value=math.inf, reason="the SDP solver ran out of time")
    assert str(b) == "q <= inf  [m, not certified, 0 s]: the SDP solver ran out of time"
    assert str(make(certified=True)) == "q <= 1  [m, certified, 0 s]"


# ----------------------------------------------------------------------------- the field


def test_certified_bounds_have_an_empty_reason(spec):
    for b in (sdp_bound(spec), product_bound(spec), lower_bound(spec, restarts=2, steps=20)):
        assert b.certified and b.reason == "", b.method
    with pytest.raises(ValueError, match="a certified bound has no reason to be uncertified"):
        make(certified=True, reason="solver stopped")
    with pytest.raises(ValueError, match="reason must be a str, got NoneType"):
        make(reason=None)


def test_positional_construction_is_unchanged():
    b = Bound(1.0, "upper", "q", "m", False, None, 0.5, {"reason": "r"})
    assert (b.certified, b.seconds, b.details, b.reason) == (False, 0.5, {"reason": "r"}, "r")
    assert Bound(1.0, "upper", "q", "m", False, None, 0.5, {}, "given").reason == "given"


@pytest.mark.parametrize(("kind", "details", "expected"), [
    ("upper", {"reason": "r", "check": "c", "stopped": "s", "status": "infeasible"}, "r"),
    ("upper", {"reason": "", "check": "c", "stopped": "s"}, "c"),
    ("upper", {"check": {"not": "text"}, "stopped": "s"}, "s"),
    ("lower", {"status": "optimal_inaccurate"}, "solver status 'optimal_inaccurate', not optimal"),
    ("upper", {"status": "optimal"}, "no certificate was checked"),
    ("lower", {}, "no certificate was checked"),
    ("estimate", {}, "an estimate bounds nothing; it is not certified"),
    ("estimate", {"reason": "fitted on 3 layers only"}, "fitted on 3 layers only"),
])
def test_reason_is_derived_from_the_details(kind, details, expected):
    assert make(kind=kind, details=details).reason == expected == default_reason(kind, details)


def test_replace_derives_the_reason_afresh_unless_it_was_given():
    derived = make(details={"reason": "old"})
    assert derived.replace(details={"reason": "new"}).reason == "new"
    assert derived.replace(certified=True).reason == ""
    assert derived.replace(certified=True).replace(certified=False).reason == "old"  # still in the details
    assert derived.replace(details={}).reason == "no certificate was checked"
    given_ = make(reason="given", details={"reason": "old"})
    assert given_.replace(details={}).reason == "given" and given_.replace(value=3.0).reason == "given"
    assert given_.replace(certified=True).reason == ""
    assert given_.replace(reason="other").reason == "other"
    assert make(certified=True).replace(kind="estimate", certified=False).reason == \
        "an estimate bounds nothing; it is not certified"


def test_to_dict_has_the_reason():
    assert make(details={"reason": "r"}).to_dict()["reason"] == "r"
    assert make(certified=True).to_dict()["reason"] == ""


# ----------------------------------------------------------------------------- real uncertified results


def specific(b: Bound) -> str:
    assert not b.certified and b.reason and b.reason not in GENERIC, (b.method, b.reason)
    return b.reason


def test_sdp_stopped_by_its_time_budget_says_so(spec):
    b = sdp_bound(spec, time_budget=1e-9)
    assert b.details["status"] != "optimal"
    assert specific(b) == f"solver status {b.details['status']!r}; {b.details['check']}"


def test_multipliers_that_prove_nothing_say_why(spec):
    form = quadratic_form(spec)
    b = bound_from_multipliers(form, np.zeros(form.num_multipliers), "zeros", 0.0)
    assert specific(b) == b.details["check"] and "not negative definite" in b.reason


def test_a_failing_cvxpy_solver_is_the_reason(spec, monkeypatch):
    def fail(self, *args, **kwargs):
        raise cp.error.SolverError("forced failure")

    monkeypatch.setattr(cp.Problem, "solve", fail)
    b = sdp_bound(spec, solver="SCS")
    assert specific(b) == "SCS failed: forced failure" and math.isinf(b.value)


def test_search_out_of_time_says_so(spec):
    b = sequential_bound(spec, time_budget=1e-9)
    assert "time budget" in specific(b) and b.reason == b.details["check"]


def test_overflowing_product_bound_says_so():
    huge = unrolled([None, 1e200 * np.eye(2)], [1e200 * np.eye(2)] * 2, [0.0, 0.0])
    b = product_bound(huge)
    assert specific(b) == "the recursion overflowed float64" == b.details["reason"]


def test_witness_without_a_rounding_bound_says_so():
    rng = np.random.default_rng(0)
    user = NetworkSpec(2, [Layer({0: rng.standard_normal((3, 2))}, Tanh())])
    b = lower_bound(user, restarts=2, steps=10)
    assert specific(b) == b.details["reason"] == b.details["witness_check"]["reason"]


def test_float32_deviation_out_of_range_says_so(spec):
    b = float32_deviation(spec, np.full(spec.input_dim, -1e39), np.full(spec.input_dim, 1e39))
    assert specific(b) == b.details["reason"] and "float32 range" in b.reason


def test_estimates_and_black_box_witnesses_say_what_they_are(spec):
    torch = pytest.importorskip("torch")
    W = np.array([[0.5, 0.1], [0.2, 0.4]])
    state_map = unrolled([None], [W], [0.0])  # x -> ST_0(W x): a one-layer state map
    est = support_factor(state_map, [np.array([0]), np.array([0, 1])])
    assert est.kind == "estimate" and "given supports" in specific(est)
    b = pair_witness(lambda y: torch.tanh(y), np.ones((2, 3)))
    assert "black-box" in specific(b) and b.reason == b.details["reason"]
