"""The sequential (layer-by-layer) multipliers: the Schur recursion against the dense check, and the
certified value between the SDP and the product bound."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory.classical import ista_spec
from unfoldtheory.lipschitz import upper_bound
from unfoldtheory.lipschitz.certificate import certify_multipliers
from unfoldtheory.lipschitz.chain import chain_layers, schur_rho
from unfoldtheory.lipschitz.lower import lower_bound
from unfoldtheory.lipschitz.product import product_bound
from unfoldtheory.lipschitz.quadratic_form import quadratic_form
from unfoldtheory.lipschitz.sdp import sdp_bound
from unfoldtheory.lipschitz.sequential import sequential_bound, sequential_multipliers
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.spec import unrolled
from unfoldtheory.testing import unrolled_specs
from unfoldtheory.unfold import ALISTA, LISTA, UnfoldedADMM, UnfoldedFISTA


def test_schur_recursion_equals_the_dense_schur_complement():
    """Two routes to ρ(λ): block elimination along the chain, and the dense Schur complement."""
    p = SparseRecovery(6, 10, 0.2, seed=0)
    spec = ista_spec(p.A, p.lam, 3)
    lam = sdp_bound(spec, solver="CLARABEL").certificate["multipliers"]  # feasible, per neuron
    layers, C = chain_layers(spec)
    dense = certify_multipliers(quadratic_form(spec), lam)
    assert dense.ok
    assert schur_rho(layers, C, np.split(lam, 3)) == pytest.approx(dense.rho, rel=1e-7)


@settings(max_examples=15, deadline=None)
@given(spec=unrolled_specs(m=st.integers(1, 4), n=st.integers(1, 5), K=st.integers(1, 4)))
def test_sequential_between_witness_and_sdp(spec):
    """Sound (≥ every witness) and never better than the SDP, which optimises over a superset of its
    multipliers. It is *not* always below the product bound: per-layer scalar multipliers found by a
    coarse search can miss the exact product on degenerate (e.g. scalar) chains; "best" then picks product."""
    seq = sequential_bound(spec)
    assert seq.certified, seq.details
    low = lower_bound(spec, restarts=3, seed=0)
    assert low.value <= seq.value * (1 + 1e-9)
    sdp = sdp_bound(spec, solver="CLARABEL")
    if sdp.certified:  # compared in ρ = L², where the solver's accuracy is absolute (Clarabel's tolerances, 1e-8)
        assert sdp.value**2 <= seq.value**2 * (1 + 2e-4) + 1e-8
    assert upper_bound(spec).value <= min(seq.value, product_bound(spec).value)


def test_sequential_multipliers_keep_the_recursion_feasible():
    p = SparseRecovery(8, 12, 0.2, seed=1)
    spec = LISTA(p.A, 4, p.lam).spec()
    layers, C = chain_layers(spec)
    bound = sequential_bound(spec)
    lams = sequential_multipliers(layers, C, bound.details["factors"])
    assert lams is not None and all(np.all(lam > 0) for lam in lams)
    assert schur_rho(layers, C, lams) == pytest.approx(bound.details["search_rho"])
    np.testing.assert_allclose(np.concatenate(lams), bound.certificate["multipliers"])


@pytest.mark.parametrize("cls", [LISTA, ALISTA])
def test_models_are_certified_and_not_below_the_sdp(cls):
    p = SparseRecovery(5, 8, 0.2, seed=2)
    spec = cls(p.A, 3, p.lam).spec()
    seq, sdp = sequential_bound(spec), sdp_bound(spec, solver="CLARABEL")
    assert seq.certified and sdp.certified
    assert seq.value >= sdp.value * (1 - 1e-5)  # the SDP optimises over all (per-neuron) multipliers


def test_best_includes_sequential_and_unsupported_graphs_are_named():
    p = SparseRecovery(5, 8, 0.2, seed=3)
    spec = ista_spec(p.A, p.lam, 2)
    assert "sequential" in upper_bound(spec, max_sdp_size=0).details["candidates"]  # no SDP: the chain methods
    small = upper_bound(spec)  # 21 rows: solved exactly, the sequential search skipped with the reason
    assert "solved exactly" in small.details["skipped"]["sequential"]
    assert small.value <= upper_bound(spec, method="sequential").value * (1 + 1e-9)
    momentum = UnfoldedFISTA(p.A, 3, p.lam).spec()
    with pytest.raises(ValueError, match="chain with input injection; layer 3 reads state 1"):
        sequential_bound(momentum)
    with pytest.raises(ValueError, match="chain with input injection"):  # ADMM's dual state reaches back
        sequential_bound(UnfoldedADMM(p.A, 3, p.lam).spec())
    assert "sequential" in upper_bound(momentum, max_sdp_size=0).details["skipped"]


def test_sparse_certificate_agrees_with_a_dense_eigenvalue_check():
    """Two routes to "M(ρ_c, λ) ⪯ 0": the shifted block Cholesky of the certificate, and a dense
    eigendecomposition; the certified ρ_c is also tight (just below it the matrix is indefinite)."""
    p = SparseRecovery(12, 20, 0.2, seed=4)
    spec = ista_spec(p.A, p.lam, 5)
    bound = sequential_bound(spec)
    assert bound.certified
    form = quadratic_form(spec)
    rho = bound.certificate["rho"]
    lam = bound.certificate["multipliers"]
    top = np.linalg.eigvalsh(form.matrix(rho, lam))[-1]
    assert top <= 1e-12 * np.abs(form.matrix(rho, lam)).max()
    assert np.linalg.eigvalsh(form.matrix(rho * (1 - 1e-6), lam))[-1] > 0
    assert bound.details["rounding_margin"] < 1e-9 * rho


def test_strongly_expanding_chain_is_certified():
    """Multipliers spanning ~10^18 (‖W_k‖ = 6 over 12 layers): the layer scales stay coupled however large
    the multipliers grow, and the check's power-of-two equilibration keeps its rounding margin relative."""
    rng = np.random.default_rng(0)
    n, m, K = 8, 4, 12
    W = [None] + [6.0 * np.linalg.qr(rng.standard_normal((n, n)))[0] for _ in range(1, K)]
    V = [rng.standard_normal((n, m)) for _ in range(K)]
    spec = unrolled(W, V, thresholds=[0.01] * K)
    seq = sequential_bound(spec)
    assert seq.certified, seq.details["check"]
    lam = seq.certificate["multipliers"]
    assert lam.max() / lam.min() > 1e12
    low = lower_bound(spec, restarts=2, seed=0)
    assert low.value <= seq.value <= 1.05 * product_bound(spec).value


def test_a_boundary_that_is_singular_in_exact_arithmetic_is_not_taken_for_feasible():
    """LISTA at ISTA weights with n > m: W = I − AᵀA/L is the identity on the null space of A, and with the
    first factor 1 the last state block is exactly singular there (−λ + λ²/4 + 1 = (λ/2 − 1)² ≥ 0). Rounding
    made it look negative definite, so the search stopped on it and the certificate (rightly) refused;
    such pivots now count as infeasible, and the search moves to a certifiable scale."""
    from unfoldtheory.unfold import LISTA

    p = SparseRecovery(5, 8, 0.2, seed=6)
    spec = LISTA(p.A, 3, p.lam).spec()
    seq = sequential_bound(spec)
    assert seq.certified, seq.details["check"]
    assert seq.value >= sdp_bound(spec, solver="CLARABEL").value * (1 - 1e-6)
