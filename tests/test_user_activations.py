"""User-declared activations (issue 12): a declaration is checked on a dense sample at spec construction, results
that rest on it say so, and nothing about its rounding is certified."""

import numpy as np
import pytest

from unfoldtheory.activations import (
    Activation,
    BoxProjection,
    GroupSoftThreshold,
    Identity,
    ReLU,
    SoftThreshold,
    declaration_caveats,
)
from unfoldtheory.lipschitz.lower import lower_bound
from unfoldtheory.spec import Layer, NetworkSpec


class Tanh(Activation):
    name = "tanh"
    slope_interval = (0.0, 0.1)  # false: the slope reaches 1 at 0

    def __call__(self, v):
        return np.tanh(v)

    def slopes(self, v):
        return 1.0 - np.tanh(v) ** 2


class HonestTanh(Tanh):
    slope_interval = (0.0, 1.0)


class Leaky(Activation):
    name = "leaky"
    slope_interval = (0.1, 1.0)
    firmly_nonexpansive = True

    def __call__(self, v):
        return np.where(v > 0, v, 0.1 * v)

    def slopes(self, v):
        return np.where(v > 0, 1.0, 0.1)


class Coupled(Activation):
    """Declared separable, but mixes coordinates."""
    name = "coupled"

    def __call__(self, v):
        return 0.5 * np.tanh(v + np.roll(v, 1, axis=-1))


class Doubling(Activation):
    """Non-separable (declared so), slope 2 against the declared [0, 1]."""
    name = "doubling"
    separable = False
    firmly_nonexpansive = False

    def __call__(self, v):
        return 2.0 * np.asarray(v, dtype=float)


def test_the_issue_tanh_is_refused_with_the_declared_interval_and_the_observed_quotient():
    with pytest.raises(ValueError, match=r"layer 1: user-defined activation tanh \(Tanh\) violates its declared "
                                         r"properties \(slope interval \[0\.0, 0\.1\].*difference quotient 0\.\d+"):
        NetworkSpec(2, [Layer({0: np.eye(2)}, Tanh())])


@pytest.mark.parametrize("act, match", [(Coupled(), "declared separable"), (Doubling(), "above beta = 1")])
def test_other_false_declarations_are_refused(act, match):
    with pytest.raises(ValueError, match=match):
        NetworkSpec(2, [Layer({0: np.eye(2)}, act)])


def test_a_true_declaration_passes_and_is_marked():
    spec = NetworkSpec(2, [Layer({0: np.eye(2)}, HonestTanh()), Layer({1: np.eye(2)}, Leaky())])
    caveats = declaration_caveats(spec)
    assert len(caveats) == 2 and "layer 1: activation tanh" in caveats[0] and "(0.1, 1.0)" in caveats[1]
    assert all("rests on the declaration" in c for c in caveats)
    assert HonestTanh().declared_by_user and HonestTanh().proof is None


def test_builtins_carry_their_proofs_and_subclasses_do_not():
    for act in (SoftThreshold(0.1), ReLU(), Identity(), BoxProjection(), GroupSoftThreshold(0.1, [[0, 1]])):
        assert not act.declared_by_user and act.proof.startswith("proofs/")

    class MyReLU(ReLU):
        pass
    assert MyReLU().declared_by_user and MyReLU().proof is None
    spec = NetworkSpec(2, [Layer({0: np.eye(2)}, ReLU())])
    assert declaration_caveats(spec) == []


def test_the_witness_of_a_user_activation_is_not_certified():
    rng = np.random.default_rng(0)
    spec = NetworkSpec(2, [Layer({0: rng.standard_normal((3, 2))}, HonestTanh())])
    lb = lower_bound(spec, restarts=2, steps=5)
    assert not lb.certified and "user-defined" in lb.details["reason"] and "rounding" in lb.details["reason"]
    assert lb.value > 0  # the float64 ratio, reported as an estimate
