"""The PEP dual certificate against the exact oracle: every certified pep_rate value is proved, in
exact rationals on its float64 data, by its own multipliers (unfoldtheory.oracle.pep).

CI runs a small derandomized slice; the broad search is
``UNFOLDTHEORY_ORACLE_EXAMPLES=10000 pytest tests/test_oracle_pep.py --hypothesis-profile explore``.
"""

import dataclasses
import os
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory.convergence import pep_rate
from unfoldtheory.oracle.pep import pep_certificate_holds

EXAMPLES = int(os.environ.get("UNFOLDTHEORY_ORACLE_EXAMPLES", "12"))
COMBOS = [("gradient", "distance"), ("gradient", "function_value"), ("gradient", "gradient_norm"),
          ("proximal_gradient", "distance"), ("proximal_gradient", "function_value"),
          ("accelerated", "distance"), ("accelerated", "function_value"), ("accelerated", "gradient_norm")]


@st.composite
def pep_instances(draw):
    """Tiny PEPs (1–3 steps) with adversarial constants: L from 2^-300 to 2^300, μ/L from 0 to
    1 − 2^-40, and steps γL drawn from the edges of their range (2/(L + μ), 2/L, tiny, beyond 2)."""
    method, metric = draw(st.sampled_from(COMBOS))
    K = draw(st.integers(1, 3))
    L = float(np.ldexp(draw(st.floats(1.0, 2.0)), draw(st.integers(-300, 300))))
    ratio = draw(st.sampled_from([0.0, 2.0**-40, 1e-6, 0.01, 0.1, 0.5, 0.9, 1 - 2.0**-40]) | st.floats(0.0, 0.99))
    mu = ratio * L
    edges = [2 / (L + mu), 2 / L, 1 / L, 2.0**-30 / L, 1e-3 / L, 2.5 / L]
    steps = [draw(st.sampled_from(edges) | st.floats(0.01, 2.2).map(lambda t: t / L)) for _ in range(K)]
    momentum = [draw(st.floats(0.0, 1.0)) for _ in range(K - 1)] if method == "accelerated" else None
    return steps, mu, L, method, momentum, metric


def _run(steps, mu, L, method, momentum, metric):
    try:
        return pep_rate(steps, mu, L, method, momentum, metric)
    except ValueError as exc:  # a refusal must say why (the float64 range)
        assert "float64" in str(exc) or "mu must be < L" in str(exc), str(exc)
        return None


@settings(max_examples=EXAMPLES)
@given(pep_instances())
def test_every_certified_pep_value_passes_the_exact_oracle(instance):
    bound = _run(*instance)
    if bound is None or not bound.certified:
        return
    assert pep_certificate_holds(bound), (instance, bound.details)
    # the oracle can fail: a value below what the multipliers prove is refused
    proved = Fraction(bound.certificate["tau"]) * Fraction(bound.certificate["objective_unit"])
    squared = bound.details["metric"] == "distance"
    smaller = bound.value
    while (Fraction(smaller) ** 2 if squared else Fraction(smaller)) >= proved:
        smaller = float(np.nextafter(smaller, -np.inf))
    assert not pep_certificate_holds(dataclasses.replace(bound, value=smaller))


@pytest.mark.parametrize(("method", "metric"), COMBOS)
def test_oracle_accepts_the_certificate_and_rejects_tampering(method, metric):
    steps = np.array([0.6, 0.9, 0.8])  # all below 2/(L + μ): shorter steps have a strictly larger worst case
    momentum = [0.4, 0.7] if method == "accelerated" else None
    bound = pep_rate(steps, 0.1, 1.0, method, momentum, metric)
    assert bound.certified and pep_certificate_holds(bound)
    lam = [Fraction(q) for q in bound.certificate["multipliers"]]
    k = max(range(len(lam)), key=lambda i: lam[i])
    tampered = {**bound.certificate, "multipliers": [str(q * (2 if i == k else 1)) for i, q in enumerate(lam)]}
    assert not pep_certificate_holds(dataclasses.replace(bound, certificate=tampered))  # breaks the value balance
    if method != "accelerated":  # the multipliers cannot prove the old value for a worse schedule
        shorter = dataclasses.replace(bound, details={**bound.details, "steps": steps * 0.9})
        assert pep_rate(steps * 0.9, 0.1, 1.0, method, None, metric).details["lower"] > bound.value
        assert not pep_certificate_holds(shorter)


def test_the_float_route_is_also_proved_exactly():
    bound = pep_rate([0.7, 1.4, 1.1], 0.2, 1.0, "proximal_gradient", metric="function_value", exact_max_dim=0)
    assert bound.certified and bound.details["check_route"].startswith("float64")
    assert pep_certificate_holds(bound)
