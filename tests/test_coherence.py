"""Generalized coherence (LP, certified both ways) and the LISTA-type per-layer certificates.

Routes compared: the LP against a closed form and against cvxpy/Clarabel; the certified lower side
against witnesses (any feasible W has coherence at least μ̃); ALISTA Theorem 1 against the product
formula and against the sharper chain; every certified per-layer bound against the actual network
run on sampled s-sparse signals (hypothesis), including a trained ALISTA and LISTA-CP.
"""

from functools import cache

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory.convergence.coherence import (
    alista_rate_bound,
    chain_certificate,
    generalized_coherence,
    layer_operator,
    lista_cp_certificate,
)
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.testing import sensing_matrices, sparse_signals
from unfoldtheory.train import fit
from unfoldtheory.unfold import ALISTA, LISTA, LISTACP, UnfoldedISTA

M, N, S, B, K = 24, 32, 2, 1.5, 8


def _coherence_of(W, A):
    """Plain float coherence max_{i≠j}|W_iᵀA_j| / |W_iᵀA_i| (the witness route)."""
    G = W.T @ A
    off = np.abs(G - np.diag(np.diag(G))) / np.abs(np.diag(G))[:, None]
    return off.max()


@cache
def _setup():
    problem = SparseRecovery(M, N, 0.1, seed=3)
    bound, W = generalized_coherence(problem.A, progress=False)
    return problem.A, bound, W


def _alista(A, W, steps, thresholds):
    model = ALISTA(A, len(steps), 0.1, W=W)
    with torch.no_grad():
        for k, (g, t) in enumerate(zip(steps, thresholds, strict=True)):
            model.step[k].fill_(float(g))
            model.threshold[k].fill_(float(t))
    return model


def _errors(model, X, A):
    with torch.no_grad():
        its = model(X @ A.T, return_iterates=True)
    return np.stack([np.linalg.norm(x.numpy() - X, axis=1) for x in its]), its


def _steps():
    return np.linspace(0.8, 1.1, K)


# ----------------------------------------------------------------------------------------- coherence
def test_closed_form_three_unit_vectors():
    # a3 = (a1 + a2)/√2: BP gives ‖z‖₁ = √2 for column 3 and 1 + √2 for columns 1, 2, so μ̃ = 1/√2.
    A = np.array([[1.0, 0.0, 2**-0.5], [0.0, 1.0, 2**-0.5]])
    bound, W = generalized_coherence(A, progress=False)
    assert bound.certified and bound.kind == "upper"
    assert bound.details["lower"] <= 2**-0.5 <= bound.value
    assert bound.value - bound.details["lower"] < 1e-12
    np.testing.assert_allclose(bound.details["upper_per_column"], [2**0.5 - 1, 2**0.5 - 1, 2**-0.5], rtol=1e-12)
    np.testing.assert_allclose(np.einsum("ij,ij->j", W, A), 1.0, atol=1e-14)


def test_orthogonal_columns_have_zero_coherence():
    A = np.eye(5)[:, :3] * np.array([1.0, 2.0, 0.5])
    bound, _ = generalized_coherence(A, progress=False)
    assert bound.value < 1e-14 and bound.details["lower"] == 0.0


@settings(max_examples=12)
@given(A=sensing_matrices(st.integers(2, 5), st.integers(6, 9)), seed=st.integers(0, 2**32 - 1))
def test_lp_certified_pair_against_cvxpy_and_witnesses(A, seed):
    import cvxpy as cp

    bound, W = generalized_coherence(A, progress=False)
    lower, upper = bound.details["lower"], bound.value
    assert bound.certified and 0 <= lower <= upper
    assert upper - lower <= 1e-8 * max(upper, 1e-12)
    assert abs(_coherence_of(W, A) - upper) <= 1e-12 * max(upper, 1.0)
    # solver against solver: the whole program at once in cvxpy (Clarabel)
    Wv, t = cp.Variable(A.shape), cp.Variable()
    G = Wv.T @ A
    off = 1.0 - np.eye(A.shape[1])
    problem = cp.Problem(cp.Minimize(t), [cp.diag(G) == 1, cp.abs(cp.multiply(G, off)) <= t])
    problem.solve(solver=cp.CLARABEL)
    assert problem.status == cp.OPTIMAL
    assert abs(problem.value - upper) <= 1e-6
    # witnesses: W = A (unit columns) and a random feasible W are no better than the certified lower side
    assert lower <= _coherence_of(A, A) + 1e-12
    R = np.random.default_rng(seed).standard_normal(A.shape)
    R = R + 0.1 * np.sign(np.einsum("ij,ij->j", R, A)) * A  # keep diag(RᵀA) away from 0
    if np.min(np.abs(np.einsum("ij,ij->j", R, A))) > 1e-3:
        assert lower <= _coherence_of(R, A) * (1 + 1e-12)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="zero column"):
        generalized_coherence(np.array([[1.0, 0.0], [0.0, 0.0]]), progress=False)
    with pytest.raises(ValueError, match="A has a non-finite"):
        generalized_coherence(np.array([[1.0, np.nan], [0.0, 1.0]]), progress=False)
    with pytest.raises(ValueError, match="dimension"):
        generalized_coherence(np.ones(3), progress=False)
    A, _, W = _setup()
    with pytest.raises(ValueError, match="steps"):
        alista_rate_bound(A, [1.0, -0.1], S, B, W=W)
    with pytest.raises(ValueError, match="sparsity"):
        alista_rate_bound(A, [1.0], N + 1, B, W=W)
    with pytest.raises(ValueError, match="B must be"):
        alista_rate_bound(A, [1.0], S, 0.0, W=W)
    with pytest.raises(ValueError, match="diag"):
        alista_rate_bound(A, [1.0], S, B, W=2 * W)
    trained = LISTA(A, 2, 0.1)  # untrained it is ISTA (accepted); W2 ≠ I − W1ᵀA breaks the form the chain needs
    with torch.no_grad():
        trained.W2[0].add_(0.01)
    with pytest.raises(ValueError, match=r"layer 2: W_2 is not I − B_2A"):
        lista_cp_certificate(trained, S, B)


def test_layer_operator_bounds_the_exact_entries():
    A, _, W = _setup()
    op = layer_operator(W, A, 0.9)
    exact = 0.9 * (W.T @ A)
    off = np.abs(exact - np.diag(np.diag(exact)))
    assert np.all(op.offdiag >= off) and np.all(op.offdiag <= off + 1e-12)  # the margin is ~γ_m·|W|ᵀ|A|
    assert np.all(op.diag_dev >= np.abs(1 - np.diag(exact)))
    assert np.all(op.row_babel(S) >= op.row_max()) and np.all(op.col_babel(1) >= op.offdiag.max(axis=0))
    top2 = np.sort(off, axis=0)[-2:].sum(axis=0)  # the column Babel sum of two, from the exact entries
    assert np.all(op.col_babel(2) >= top2) and np.all(op.col_babel(2) <= top2 + 1e-12)


# ------------------------------------------------------------------------------ ALISTA Theorem 1
def test_theorem_bound_is_the_product_formula():
    A, coh, W = _setup()
    steps = _steps()
    cert = alista_rate_bound(A, steps, S, B, W=W)
    mu = coh.value
    rho = np.abs(1 - steps) + steps * mu * (2 * S - 1)
    expected = S * B * np.cumprod(rho)
    assert cert.valid and cert.reason is None and all(b.certified for b in cert.errors)
    np.testing.assert_allclose(cert.values, expected, rtol=1e-9)
    assert np.all(cert.values >= expected * (1 - 1e-15))  # rounding only ever makes it larger
    np.testing.assert_allclose(cert.thresholds[0], steps[0] * mu * S * B, rtol=1e-9)
    assert np.all(np.diff(cert.values) < 0)  # hypotheses hold: it contracts


def test_theorem_hypotheses_are_reported_when_violated():
    A, coh, W = _setup()
    s_big = int(np.ceil((1 + 1 / coh.value) / 2))
    cert = alista_rate_bound(A, _steps(), s_big, B, W=W)
    assert not cert.valid and any("(1 + 1/μ)/2" in v for v in cert.violations)
    assert all(b.certified for b in cert.errors)  # still a proved (non-decreasing) bound
    assert np.all(cert.rates >= 1)
    limit = 2 / (2 * coh.value * S - coh.value + 1)
    cert = alista_rate_bound(A, [1.0, limit * 1.01, 1.0], S, B, W=W)
    assert not cert.valid and len(cert.violations) == 1 and "layer 2" in cert.violations[0]


@settings(max_examples=25)
@given(xs=st.lists(sparse_signals(N, S, amplitude=B), min_size=1, max_size=6))
def test_no_sampled_signal_exceeds_the_alista_certificates(xs):
    A, _, W = _setup()
    theorem = alista_rate_bound(A, _steps(), S, B, W=W)
    model = _alista(A, W, _steps(), theorem.thresholds)
    chain = lista_cp_certificate(model, S, B)
    assert chain.valid and chain.certified_layers == K
    assert np.all(chain.values <= theorem.values * (1 + 1e-12))  # the chain is never weaker
    X = np.array(xs)
    err, its = _errors(model, X, A)
    assert np.all(err <= chain.values[:, None])
    assert np.all(err <= theorem.values[:, None])
    l1 = np.stack([np.abs(x.numpy() - X).sum(axis=1) for x in its])
    assert np.all(l1 <= chain.l1[:, None])
    for x in its:  # no false positives: supp(x_k) ⊆ supp(x*)
        assert not np.any((x.numpy() != 0) & (X == 0))


@settings(max_examples=15)
@given(xs=st.lists(sparse_signals(N, S, amplitude=B), min_size=1, max_size=6))
def test_thresholds_below_the_requirement_are_refused(xs):
    A, _, W = _setup()
    theorem = alista_rate_bound(A, _steps(), S, B, W=W)
    low = theorem.thresholds.copy()
    low[2] *= 0.3
    model = _alista(A, W, _steps(), low)
    cert = lista_cp_certificate(model, S, B)
    assert not cert.valid and "layer 3" in cert.reason and "below the required" in cert.reason
    assert cert.certified_layers == 2 and np.all(np.isinf(cert.values[2:]))
    assert not any(b.certified for b in cert.errors[2:])
    err, _ = _errors(model, np.array(xs), A)
    assert np.all(err[:2] <= cert.values[:2, None])


def test_lista_cp_with_alista_weights_gets_the_same_certificate():
    A, _, W = _setup()
    steps = _steps()
    theorem = alista_rate_bound(A, steps, S, B, W=W)
    alista = _alista(A, W, steps, theorem.thresholds)
    cp_model = LISTACP(A, K, 0.1)
    with torch.no_grad():
        for k in range(K):
            cp_model.W[k].copy_(torch.as_tensor(steps[k] * W))
            cp_model.threshold[k].fill_(float(theorem.thresholds[k]))
    a, c = lista_cp_certificate(alista, S, B), lista_cp_certificate(cp_model, S, B)
    assert a.valid and c.valid
    np.testing.assert_allclose(c.values, a.values, rtol=1e-9)


def test_untrained_ista_thresholds_are_refused_at_the_first_layer():
    A, _, _ = _setup()
    cert = lista_cp_certificate(UnfoldedISTA(A, 4, 0.1), S, B)
    assert not cert.valid and cert.reason.startswith("UnfoldedISTA layer 1:") and cert.certified_layers == 0


def test_chain_handles_a_diagonal_operator_exactly():
    # M = γI: no coupling, so e_{k+1} = (1 − γ)e_k + ξ with |ξ| ≤ θ; θ = 1e-300 covers the certificate's
    # underflow allowance (a few multiples of 2^-1074 on the zero off-diagonal).
    n, gamma = 5, 0.6
    op = layer_operator(np.eye(n), np.eye(n), gamma)
    cert = chain_certificate([op] * 3, np.full(3, 1e-300), 2, 1.0)
    assert cert.valid
    expected_linf = 0.4 ** np.arange(1, 4)
    np.testing.assert_allclose(cert.linf, expected_linf, rtol=1e-12)
    np.testing.assert_allclose(cert.values, np.sqrt(2) * expected_linf, rtol=1e-12)


# ------------------------------------------------------------------------------ trained models
@pytest.mark.parametrize("cls", [ALISTA, LISTACP])
def test_trained_model_is_certified_or_refused_with_a_reason(cls):
    A, _, W = _setup()
    problem = SparseRecovery(M, N, 0.1, seed=3)
    X = _sparse_data(N, S, 512, seed=1, amplitude=B)
    model = cls(A, 6, problem.lam, W=W) if cls is ALISTA else cls(A, 6, problem.lam)
    fit(model, problem, steps=200, seed=0, batch_size=64, data=(X @ A.T, X), progress=False)
    first = lista_cp_certificate(model, S, B)
    # the requirement at layer 1 is proportional to B: half the amplitude at which layer 1 just passes
    small = 0.5 * B * first.thresholds[0] / first.required[0]
    for amplitude in (B, small):
        cert = lista_cp_certificate(model, S, amplitude)
        if cert.valid:
            assert cert.reason is None and cert.certified_layers == 6
        else:
            refused = cert.certified_layers + 1
            assert cert.reason.startswith(f"{cls.__name__} layer {refused}:") and "below the required" in cert.reason
            assert np.all(np.isinf(cert.values[refused - 1:]))
        Xt = _sparse_data(N, S, 400, seed=2, amplitude=amplitude)
        err, _ = _errors(model, Xt, A)
        k = cert.certified_layers
        assert np.all(err[:k] <= cert.values[:k, None])
    assert cert.certified_layers >= 1  # at the small amplitude layer 1 passes by construction


def _sparse_data(n, s, count, seed, amplitude):
    """s-sparse signals, half of their entries at ±amplitude (the extremes of the class)."""
    rng = np.random.default_rng(seed)
    X = np.zeros((count, n))
    for row in X:
        idx = rng.choice(n, s, replace=False)
        row[idx] = rng.uniform(-amplitude, amplitude, s)
        row[idx[0]] = amplitude * rng.choice([-1.0, 1.0])
    return X
