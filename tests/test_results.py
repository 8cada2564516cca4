"""``Bound``: validation, formatting, JSON serialisation and ``replace``."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from unfoldtheory.results import KINDS, Bound, to_jsonable


def make(**kw) -> Bound:
    base = {"value": 1.5, "kind": "upper", "quantity": "Lipschitz constant", "method": "lipsdp"}
    base.update(kw)
    return Bound(**base)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("changes", "match"), [
    ({"kind": "upper bound"}, r"^Bound kind is 'upper bound'; expected one of \('upper', 'lower', 'estimate'\)$"),
    ({"kind": None}, r"^Bound kind is None"),
    ({"value": float("nan")}, r"^Bound value for 'Lipschitz constant' \(lipsdp\) is NaN$"),
    ({"value": np.float64("nan")}, r"is NaN"),
    ({"kind": "estimate", "certified": True}, r"^an estimate cannot be certified"),
    ({"value": math.inf, "certified": True}, r"^an infinite value cannot be a certified bound$"),
    ({"value": -math.inf, "kind": "lower", "certified": True}, r"^an infinite value cannot be a certified bound$"),
    ({"seconds": -0.1}, r"^Bound seconds must be finite and >= 0, got -0\.1$"),
    ({"seconds": math.nan}, r"^Bound seconds must be finite and >= 0"),
    ({"seconds": math.inf}, r"^Bound seconds must be finite and >= 0"),
    ({"quantity": ""}, r"^Bound needs a non-empty quantity and method$"),
    ({"method": ""}, r"^Bound needs a non-empty quantity and method$"),
])
def test_bad_bounds_rejected(changes, match):
    with pytest.raises(ValueError, match=match):
        make(**changes)


def test_valid_bounds():
    b = make(value=np.float32(2.0), certified=True, certificate={"P": np.eye(2)}, seconds=0.25)
    assert type(b.value) is float and b.value == 2.0 and b.certified
    assert make(value=math.inf).value == math.inf  # an upper bound that could not be made finite
    assert make(kind="estimate", value=-3).value == -3.0
    assert set(KINDS) == {"upper", "lower", "estimate"}
    assert make().details == {} and make().details is not make().details
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.value = 3.0  # type: ignore[misc]


# ----------------------------------------------------------------------------- str


@pytest.mark.parametrize(("kind", "certified", "relation", "mark", "why"), [
    ("upper", True, "<=", "certified", ""), ("lower", False, ">=", "not certified", ": no certificate was checked"),
    ("estimate", False, "~", "not certified", "")])
def test_str(kind, certified, relation, mark, why):
    b = make(kind=kind, certified=certified, value=1234.56789, seconds=0.0123456)
    assert str(b) == f"Lipschitz constant {relation} 1234.57  [lipsdp, {mark}, 0.0123 s]{why}"


def test_str_gives_the_reason_of_an_uncertified_bound_on_one_line():
    b = make(value=math.inf, reason="the solver stopped:\n" + "slow " * 100)
    text = str(b)
    assert "\n" not in text
    assert text.startswith("Lipschitz constant <= inf  [lipsdp, not certified, 0 s]: the solver stopped: slow")
    assert text.endswith("…") and len(text) < 200


def test_str_infinite():
    assert str(make(value=math.inf)).startswith("Lipschitz constant <= inf  [lipsdp, not certified")


# ----------------------------------------------------------------------------- to_dict / JSON


def test_to_dict_fields_and_json():
    cert = {"multipliers": np.array([[1.0, 2.0], [3.0, np.inf]]), "witness": np.float64(0.5), "n": np.int64(3)}
    b = make(certified=True, certificate=cert, seconds=1.5,
             details={"status": "optimal", "gaps": (np.float32(1e-9), -math.inf), 2: np.bool_(True)})
    d = b.to_dict()
    assert set(d) == {f.name for f in dataclasses.fields(Bound)}
    text = json.dumps(d, allow_nan=False)  # strict JSON: no Infinity/NaN tokens
    back = json.loads(text)
    assert back["value"] == 1.5 and back["kind"] == "upper" and back["certified"] is True
    assert back["certificate"]["multipliers"] == [[1.0, 2.0], [3.0, "inf"]]
    assert back["certificate"]["witness"] == 0.5 and back["certificate"]["n"] == 3
    assert back["details"]["gaps"][1] == "-inf" and back["details"]["2"] is True
    assert back["details"]["gaps"][0] == pytest.approx(1e-9, rel=1e-6)


def test_to_dict_json_with_infinite_value():
    d = make(value=math.inf, certificate=np.array([1.0, math.nan])).to_dict()
    back = json.loads(json.dumps(d))  # Python's json writes inf as Infinity and reads it back
    assert back["value"] == "inf" and back["certificate"] == [1.0, "nan"]


def test_to_dict_infinite_value_is_strict_json():
    json.dumps(make(value=math.inf).to_dict(), allow_nan=False)


def test_to_jsonable_nested():
    inner = make(value=0.5, kind="lower")
    out = to_jsonable({"bounds": [inner, inner], "arr": np.arange(3), "t": (1, np.float64(2.0))})
    assert out["bounds"][0] == inner.to_dict()
    assert out["arr"] == [0, 1, 2] and out["t"] == [1, 2.0]
    assert json.loads(json.dumps(out, allow_nan=False)) == out


@settings(max_examples=60)
@given(value=st.floats(allow_nan=False), kind=st.sampled_from(KINDS),
       seconds=st.floats(0.0, 1e6), cert=st.lists(st.floats(allow_nan=True), max_size=5))
def test_to_dict_round_trips_through_json(value, kind, seconds, cert):
    assume(not (kind == "upper" and value == -math.inf) and not (kind == "lower" and value == math.inf))
    b = make(value=value, kind=kind, seconds=seconds, certificate=np.array(cert))
    back = json.loads(json.dumps(b.to_dict(), allow_nan=False))
    assert back["value"] == (b.value if math.isfinite(b.value) else repr(b.value))
    assert back["kind"] == kind and back["seconds"] == seconds
    assert len(back["certificate"]) == len(cert)
    for got, want in zip(back["certificate"], cert, strict=True):
        assert got == (want if math.isfinite(want) else repr(want))


def test_bounds_that_bound_nothing_are_rejected():
    with pytest.raises(ValueError, match="upper bound of -inf bounds nothing"):
        make(value=-math.inf, kind="upper")
    with pytest.raises(ValueError, match="lower bound of inf bounds nothing"):
        make(value=math.inf, kind="lower")


# ----------------------------------------------------------------------------- replace


def test_replace():
    b = make(certificate=[1, 2], details={"a": 1})
    c = b.replace(value=0.7, method="power-iteration", kind="lower")
    assert (c.value, c.method, c.kind, c.quantity) == (0.7, "power-iteration", "lower", b.quantity)
    assert (b.value, b.method, b.kind) == (1.5, "lipsdp", "upper")  # the original is unchanged
    assert c.certificate is b.certificate
    with pytest.raises(ValueError, match=r"an estimate cannot be certified"):
        make(certified=True).replace(kind="estimate")  # replace re-validates
    with pytest.raises(ValueError, match=r"is NaN"):
        b.replace(value=math.nan)
    with pytest.raises(TypeError):
        b.replace(colour="red")
