"""A certified lower bound above a certified upper bound is an error naming both, with no allowance;
uncertified bounds are never compared. The helper alone, then the places that compute both ends."""

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import unfoldtheory.report  # imported before any test patches what its sections import
from unfoldtheory.consistency import InconsistentBounds, check_interval
from unfoldtheory.results import Bound

Q = "Lipschitz constant"


def _lower(value, certified=True, method="witness"):
    return Bound(value, "lower", Q, method, certified=certified)


def _upper(value, certified=True, method="lipsdp"):
    return Bound(value, "upper", Q, method, certified=certified)


def test_a_contradiction_names_both_bounds():
    with pytest.raises(InconsistentBounds) as info:
        check_interval(_lower(2.5), _upper(1.25), "Lipschitz constant of net")
    message = str(info.value)
    assert message.startswith("Lipschitz constant of net: the certified lower bound 2.5 (witness) exceeds the certified "
                              "upper bound 1.25 (lipsdp)")
    assert info.value.lower.value == 2.5 and info.value.upper.method == "lipsdp" and info.value.what.endswith("net")
    assert isinstance(info.value, ValueError)


def test_no_allowance_one_ulp_is_a_contradiction():
    up = 1.0
    low = float(np.nextafter(up, math.inf))
    with pytest.raises(InconsistentBounds, match=re.escape(repr(low))):  # the message shows every digit
        check_interval(_lower(low), _upper(up), Q)
    check_interval(_lower(up), _upper(up), Q)  # equal ends: a tight interval, not a contradiction
    check_interval(_lower(0.0), _upper(1e-300), Q)


def test_uncertified_ends_are_not_compared():
    check_interval(_lower(5.0, certified=False), _upper(1.0), Q)
    check_interval(_lower(5.0), _upper(1.0, certified=False), Q)
    check_interval(_lower(5.0), Bound(math.inf, "upper", Q, "product"), Q)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="lower is a Bound of kind 'upper'") as info:
        check_interval(_upper(1.0), _upper(2.0), Q)
    assert not isinstance(info.value, InconsistentBounds)
    with pytest.raises(ValueError, match="upper is a Bound of kind 'estimate'"):
        check_interval(_lower(1.0), Bound(2.0, "estimate", Q, "power iteration"), Q)
    with pytest.raises(ValueError, match="upper must be a Bound, got float"):
        check_interval(_lower(1.0), 2.0, Q)
    with pytest.raises(ValueError, match="what must be a non-empty string"):
        check_interval(_lower(1.0), _upper(2.0), "")


finite = st.floats(min_value=0.0, max_value=1e300, allow_nan=False)


@settings(max_examples=200)
@given(finite, finite, st.booleans(), st.booleans())
def test_raises_exactly_when_both_certified_and_lower_exceeds_upper(low, up, low_certified, up_certified):
    contradiction = low_certified and up_certified and low > up
    try:
        check_interval(_lower(low, low_certified), _upper(up, up_certified), Q)
    except InconsistentBounds:
        assert contradiction
    else:
        assert not contradiction


# ---------------------------------------------------------------------------- the places that compute both ends
def test_analyze_refuses_a_certified_witness_above_the_certified_upper_bound(monkeypatch, tmp_path, capsys):
    import unfoldtheory.lipschitz
    from unfoldtheory.analysis import analyze_model
    from unfoldtheory.cli import main
    from unfoldtheory.problems import SparseRecovery
    from unfoldtheory.unfold import LISTA, save

    p = SparseRecovery(6, 10, 0.2, seed=0)
    model = LISTA(p.A, 2, p.lam)
    honest = analyze_model(model, ["lipschitz"], time_budget=5, restarts=2)
    assert honest.bounds["lipschitz lower"].value <= honest.bounds["lipschitz upper"].value  # the real pair agrees
    monkeypatch.setattr(unfoldtheory.lipschitz, "lower_bound", lambda spec, **options: _lower(1e6, method="inflated witness"))
    with pytest.raises(InconsistentBounds) as info:
        analyze_model(model, ["lipschitz", "pep"], time_budget=5, restarts=2)
    upper = info.value.upper
    assert upper.certified and upper.value < 1e6
    assert (f"Lipschitz constant of LISTA (l2): the certified lower bound 1000000.0 (inflated witness) exceeds the certified "
            f"upper bound {upper.value!r} ({upper.method})") in str(info.value)

    path = save(model, tmp_path / "lista.pt")
    assert main(["analyze", str(path), "--analyses", "lipschitz", "--time-budget", "5", "--restarts", "2"]) == 1
    captured = capsys.readouterr()
    assert "contradictory certificates" in captured.err and "1000000.0 (inflated witness)" in captured.err
    assert "lipschitz lower" not in captured.out  # no row for a contradiction


def test_the_report_command_exits_1_on_a_contradiction(monkeypatch, tmp_path, capsys):
    from unfoldtheory.cli import main

    def contradiction(config, out, progress=None):
        raise InconsistentBounds("q", _lower(2.0), _upper(1.0))

    monkeypatch.setattr(unfoldtheory.report, "run_report", contradiction)
    assert main(["report", "--out", str(tmp_path), "--quiet"]) == 1
    assert "contradictory certificates: q: the certified lower bound 2.0 (witness)" in capsys.readouterr().err
