"""The coherence certificates against the exact oracles (unfoldtheory.oracle.coherence): the
generalized-coherence bound and its dual side, ALISTA Theorem 1's per-layer bounds and the LISTA-CP
chain, recomputed in exact rationals on their float64 data, for tiny A at adversarial scales.

Broad search: ``UNFOLDTHEORY_ORACLE_EXAMPLES=10000 pytest tests/test_oracle_coherence.py --hypothesis-profile explore``.
"""

import dataclasses
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory.convergence import alista_rate_bound, generalized_coherence, lista_cp_certificate
from unfoldtheory.convergence.coherence import chain_certificate, layer_operator
from unfoldtheory.oracle.coherence import chain_bound_holds, coherence_bound_holds
from unfoldtheory.unfold import ALISTA, LISTACP

EXAMPLES = int(os.environ.get("UNFOLDTHEORY_ORACLE_EXAMPLES", "15"))


@st.composite
def small_matrices(draw, scale_exponents=(-300, 300)):
    """A tiny m×n matrix (2 ≤ m, n ≤ 4) of unit-ish entries times 2^e, e across the float64 range;
    sometimes with two nearly equal columns (coherence near 1)."""
    m, n = draw(st.integers(2, 4)), draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    A = np.random.default_rng(seed).standard_normal((m, n))
    if draw(st.booleans()):
        A[:, 1] = A[:, 0] + draw(st.sampled_from([1e-3, 1e-8, 1e-14])) * A[:, 1]
    return np.ldexp(A, draw(st.integers(*scale_exponents)))


@settings(max_examples=EXAMPLES)
@given(small_matrices())
def test_generalized_coherence_passes_the_exact_oracle(A):
    bound, W = generalized_coherence(A, progress=False)
    if not bound.certified:
        return
    assert coherence_bound_holds(A, W, bound), bound.details
    if bound.value > 1e-3:  # well above the rounding of the check (|W| grows as columns align), a smaller value is refused
        assert not coherence_bound_holds(A, W, dataclasses.replace(bound, value=bound.value * (1 - 1e-3)))


@settings(max_examples=EXAMPLES)
@given(small_matrices((-60, 60)), st.lists(st.floats(0.05, 2.5), min_size=1, max_size=3), st.integers(1, 2),
       st.sampled_from([1e-200, 1.0, 1e150]))
def test_alista_theorem_bounds_pass_the_exact_chain(A, steps, s, B):
    A = A / np.linalg.norm(A, axis=0)
    if s > A.shape[1]:
        return
    _, W = generalized_coherence(A, progress=False)
    try:
        cert = alista_rate_bound(A, steps, s, B, W=W)
    except ValueError as exc:  # W too far from diag(WᵀA) = 1 (near-parallel columns)
        assert "diag" in str(exc)
        return
    assert chain_bound_holds([(W, A, g) for g in steps], cert.thresholds, s, B, cert)


@settings(max_examples=EXAMPLES)
@given(small_matrices((-100, 100)), st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 2),
       st.floats(0.0, 3.0), st.sampled_from([1e-250, 1e-3, 1.0, 1e100]))
def test_lista_cp_chain_passes_the_exact_oracle(A, seed, K, s, theta_scale, B):
    if s > A.shape[1]:
        return
    rng = np.random.default_rng(seed)
    pinv = np.linalg.pinv(A).T  # W with WᵀA near the identity, perturbed per layer
    layers = [(pinv + 0.05 * rng.standard_normal(A.shape) * np.abs(pinv).max(), A, 1.0) for _ in range(K)]
    thresholds = theta_scale * B * rng.uniform(0.0, 1.0, K)
    cert = chain_certificate([layer_operator(Lk, A, c) for Lk, A, c in layers], thresholds, s, B)
    assert chain_bound_holds(layers, thresholds, s, B, cert)
    if cert.errors[0].certified:  # the oracle can fail: a bound below the exact chain is refused
        first = dataclasses.replace(cert.errors[0], value=cert.errors[0].value * 0.5)
        low = dataclasses.replace(cert, errors=[first, *cert.errors[1:]], l1=cert.l1 * 0.5)
        assert not chain_bound_holds(layers, thresholds, s, B, low)


def test_trained_style_models_pass_the_exact_chain():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((4, 6))
    A /= np.linalg.norm(A, axis=0)
    model = ALISTA(A, 3, 0.05)
    cert = lista_cp_certificate(model, 1, 1.0)
    W = model.W.numpy()
    steps = [float(g.detach()) for g in model.step]
    thresholds = [max(float(t.detach()), 0.0) for t in model.threshold]
    assert chain_bound_holds([(W, A, g) for g in steps], thresholds, 1, 1.0, cert)
    cp = LISTACP(A, 2, 0.05)
    cert = lista_cp_certificate(cp, 1, 1.0)
    layers = [(w.detach().numpy(), A, 1.0) for w in cp.W]
    assert chain_bound_holds(layers, [max(float(t.detach()), 0.0) for t in cp.threshold], 1, 1.0, cert)


@pytest.mark.parametrize(("cls", "name"), [(ALISTA, "step"), (LISTACP, "threshold"), (LISTACP, "W")])
def test_a_nan_parameter_is_named(cls, name):
    A = np.random.default_rng(0).standard_normal((4, 6))
    model = cls(A, 2, 0.1)
    with torch.no_grad():
        getattr(model, name)[0].view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match=rf"{cls.__name__} {name}\[0\]"):
        lista_cp_certificate(model, 1, 1.0)
