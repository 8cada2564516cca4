"""Unfolded sparse-recovery models: spec against forward (at initialisation and after perturbing every
parameter), each model against the classical iteration it unfolds, ALISTA's weight against its
closed form, parameter and flop counts against closed forms, and bad input against clear errors."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory import unfold
from unfoldtheory.activations import soft_threshold
from unfoldtheory.classical import fista, ista
from unfoldtheory.reference import lasso
from unfoldtheory.testing import sensing_matrices
from unfoldtheory.unfold import (
    ALISTA,
    LISTA,
    LISTACP,
    HybridISTA,
    LearnedUpdate,
    UnfoldedADMM,
    UnfoldedFISTA,
    UnfoldedISTA,
    UnfoldedModel,
)

#: Every sparse-recovery model in the registry (learned RPCA has another constructor and is skipped).
SPARSE_MODELS = [getattr(unfold, name) for name in unfold.MODEL_CLASSES
                 if isinstance(getattr(unfold, name), type) and issubclass(getattr(unfold, name), UnfoldedModel)]
THRESHOLD_MODELS = [UnfoldedISTA, UnfoldedFISTA, ALISTA, LISTA, LISTACP, HybridISTA]


def _matrix(m, n, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n)) / np.sqrt(m)
    return A / np.linalg.norm(A, axis=0)


def _inputs(m, batch, seed):
    return np.random.default_rng([seed, 1]).standard_normal((batch, m))


def _out(model, Y):
    with torch.no_grad():
        return model(Y).detach().cpu().double().numpy()


def _perturb(model, rng, size=0.2):
    """Move every learned parameter away from the classical initialisation (thresholds kept >= 0)."""
    with torch.no_grad():
        for p in model.parameters():
            scale = float(p.abs().mean())
            scale = scale if scale > 1e-3 else 0.5  # e.g. log ρ = 0 when ρ = 1
            p.add_(torch.as_tensor(rng.normal(0.0, size * scale, tuple(p.shape)), dtype=p.dtype))
        if isinstance(model, HybridISTA):  # make every correction scale clearly nonzero
            for a in model.scale_logit:
                a.fill_(float(rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.5)))
    model.project_parameters()


def test_the_registry_holds_every_sparse_recovery_model():
    assert {UnfoldedISTA, UnfoldedFISTA, ALISTA, UnfoldedADMM, LISTA, LISTACP, HybridISTA, LearnedUpdate} <= set(SPARSE_MODELS)


# ---------------------------------------------------------------------------- spec against forward
@pytest.mark.parametrize("cls", SPARSE_MODELS, ids=lambda c: c.__name__)
@settings(max_examples=6, deadline=None)
@given(A=sensing_matrices(m=st.integers(2, 10), n=st.integers(2, 14)), K=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_spec_equals_forward_at_init_and_after_perturbation(cls, A, K, seed):
    model = cls(A, K, 0.05)
    Y = 3.0 * _inputs(A.shape[0], 5, seed)
    init = _out(model, Y)
    spec = model.spec()
    assert (spec.input_dim, spec.output_dim) == (A.shape[0], A.shape[1])
    np.testing.assert_allclose(spec.evaluate(Y), init, rtol=0, atol=1e-10 * max(1.0, np.abs(init).max()))

    _perturb(model, np.random.default_rng(seed))
    moved = _out(model, Y)
    if np.abs(init).max() > 0:  # (a large threshold on a degenerate A can zero both outputs)
        assert np.abs(moved - init).max() > 1e-6, "the perturbation did not change the map"
    np.testing.assert_allclose(model.spec().evaluate(Y), moved, rtol=0, atol=1e-10 * max(1.0, np.abs(moved).max()))


# ---------------------------------------------------------------------------- classical equivalence
ISTA_AT_INIT = {
    "UnfoldedISTA": UnfoldedISTA,
    "HybridISTA": HybridISTA,
    "LearnedUpdate(tied)": LearnedUpdate,
    "LearnedUpdate(untied, wide)": lambda A, K, lam: LearnedUpdate(A, K, lam, hidden=2 * A.shape[1] + 5, tied=False, seed=3),
    "LISTA": LISTA,
    "LISTACP": LISTACP,
}


@pytest.mark.parametrize("name", list(ISTA_AT_INIT))
@pytest.mark.parametrize("seed", [0, 1])
def test_models_are_ista_at_initialisation(name, seed):
    A = _matrix(9, 15, seed)
    Y = _inputs(9, 4, seed)
    lam, K = 0.07, 7
    its = ISTA_AT_INIT[name](A, K, lam)(Y, return_iterates=True)
    ref = ista(A, Y, lam, K)
    assert len(its) == K
    for k in range(K):
        np.testing.assert_allclose(its[k].detach().numpy(), ref[k + 1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_unfolded_fista_is_fista_at_initialisation(seed):
    A = _matrix(10, 16, seed)
    Y = _inputs(10, 4, seed)
    lam, K = 0.05, 9
    its = UnfoldedFISTA(A, K, lam)(Y, return_iterates=True)
    ref = fista(A, Y, lam, K)
    for k in range(K):
        np.testing.assert_allclose(its[k].detach().numpy(), ref[k + 1], rtol=0, atol=1e-12)
    # FISTA really differs from ISTA here, so the comparison above is not ISTA in disguise
    assert np.abs(ref[-1] - ista(A, Y, lam, K)[-1]).max() > 1e-6


# ---------------------------------------------------------------------------- ALISTA
def _closed_form_weight(A):
    """w_i = M⁻¹a_i / (a_iᵀM⁻¹a_i), M = AAᵀ (invertible for a full-rank A with m <= n)."""
    MinvA = np.linalg.solve(A @ A.T, A)
    return MinvA / np.einsum("ij,ij->j", A, MinvA)


@settings(max_examples=5, deadline=None)
@given(A=sensing_matrices(m=st.integers(2, 8), n=st.integers(8, 14)), seed=st.integers(0, 2**16))
def test_alista_weight_is_the_closed_form_minimiser(A, seed):
    model = ALISTA(A, 2, 0.1)
    W = model.W.numpy()
    assert W.shape == A.shape
    np.testing.assert_allclose(np.einsum("ij,ij->j", W, A), 1.0, rtol=0, atol=1e-9)
    W_closed = _closed_form_weight(A)
    np.testing.assert_allclose(W, W_closed, rtol=0, atol=1e-6 * max(1.0, np.abs(W_closed).max()))
    # no feasible perturbation (columns of Δ orthogonal to the matching a_i) lowers ‖WᵀA‖_F
    rng = np.random.default_rng(seed)
    best = np.linalg.norm(W.T @ A)
    for _ in range(10):
        D = rng.standard_normal(A.shape)
        D -= A * (np.einsum("ij,ij->j", D, A) / np.einsum("ij,ij->j", A, A))
        for t in (1e-3, 1e-1, 1.0):
            V = W + t * D
            np.testing.assert_allclose(np.einsum("ij,ij->j", V, A), 1.0, atol=1e-9)
            assert np.linalg.norm(V.T @ A) >= best * (1 - 1e-9)


def test_alista_initial_scalars_and_iteration():
    A = _matrix(8, 14, 5)
    Y = _inputs(8, 3, 5)
    lam, K = 0.1, 4
    model = ALISTA(A, K, lam)
    W = model.W.numpy()
    gamma = 1.0 / np.linalg.norm(W.T @ A, 2)
    for k in range(K):
        assert model.step[k].item() == pytest.approx(gamma, rel=1e-12)
        assert model.threshold[k].item() == pytest.approx(lam * gamma, rel=1e-12)
    x = np.zeros((3, 14))
    its = model(Y, return_iterates=True)
    for k in range(K):  # a plain numpy loop of x⁺ = ST_{λγ}(x − γWᵀ(Ax − y))
        x = soft_threshold(x - gamma * (x @ A.T - Y) @ W, lam * gamma)
        np.testing.assert_allclose(its[k].detach().numpy(), x, rtol=0, atol=1e-12)


def test_alista_accepts_a_feasible_weight_and_rejects_an_infeasible_one():
    A = _matrix(6, 10, 2)
    W = _closed_form_weight(A)
    model = ALISTA(A, 2, 0.1, W=W)
    np.testing.assert_array_equal(model.W.numpy(), W)
    with pytest.raises(ValueError, match=r"W violates diag\(WᵀA\) = 1"):
        ALISTA(A, 2, 0.1, W=1.5 * W)
    with pytest.raises(ValueError, match=r"W has shape \(6, 9\); expected \(6, 10\)"):
        ALISTA(A, 2, 0.1, W=W[:, :9])


# ---------------------------------------------------------------------------- ADMM
def _numpy_admm(A, Y, lam, rho, K):
    n = A.shape[1]
    Minv = np.linalg.inv(A.T @ A + rho * np.eye(n))
    aty = Y @ A
    z = u = np.zeros((Y.shape[0], n))
    out = []
    for _ in range(K):
        x = (aty + rho * (z - u)) @ Minv.T
        z = soft_threshold(x + u, lam / rho)
        u = u + x - z
        out.append(z)
    return out


@pytest.mark.parametrize("rho", [None, 0.7])
def test_unfolded_admm_is_admm_at_initialisation(rho):
    A = _matrix(10, 18, 4)
    Y = _inputs(10, 4, 4)
    lam, K = 0.05, 12
    model = UnfoldedADMM(A, K, lam, rho=rho)
    if rho is None:  # the default: the geometric mean of the extreme nonzero eigenvalues of AᵀA
        ev = np.linalg.eigvalsh(A.T @ A)
        ev = ev[ev > 1e-10 * ev[-1]]
        assert model.rho0 == pytest.approx(np.sqrt(ev[0] * ev[-1]), rel=1e-10)
    its = model(Y, return_iterates=True)
    ref = _numpy_admm(A, Y, lam, model.rho0, K)
    for k in range(K):
        np.testing.assert_allclose(its[k].detach().numpy(), ref[k], rtol=0, atol=1e-10)


def test_unfolded_admm_converges_to_the_certified_lasso_solution():
    A = _matrix(12, 24, 1)
    Y = _inputs(12, 4, 1)
    lam = 0.1
    ref = lasso(A, Y, lam, method="certified")
    assert ref.all_optimal
    err = {K: np.abs(_out(UnfoldedADMM(A, K, lam), Y) - ref.x).max() for K in (5, 200, 1000)}
    assert err[200] < 0.05 * err[5]
    assert err[1000] < 1e-6


# ---------------------------------------------------------------------------- counts
@pytest.mark.parametrize("K", [1, 3, 4])
def test_num_parameters_closed_forms(K):
    m, n = 5, 7
    A = _matrix(m, n, 0)
    h = 11
    expected = {
        UnfoldedISTA(A, K, 0.1): 2 * K,
        ALISTA(A, K, 0.1): 2 * K,
        UnfoldedADMM(A, K, 0.1): 2 * K,
        UnfoldedFISTA(A, K, 0.1): 3 * K - 1,
        LISTA(A, K, 0.1): K * n * m + (K - 1) * n * n + K,
        LISTACP(A, K, 0.1): K * m * n + K,
        HybridISTA(A, K, 0.1, hidden=h): K * (3 + n * h + h + h * n + n),
        LearnedUpdate(A, K, 0.1, hidden=2 * n, tied=True): 3 * (2 * n) * n + 2 * n + n,
        LearnedUpdate(A, K, 0.1, hidden=2 * n, tied=False): K * (3 * (2 * n) * n + 2 * n + n),
    }
    for model, count in expected.items():
        assert model.num_parameters() == count, type(model).__name__
    tied = LearnedUpdate(A, K, 0.1, tied=True)
    assert tied.num_parameters() == LearnedUpdate(A, 1, 0.1, tied=True).num_parameters()


@pytest.mark.parametrize("cls", SPARSE_MODELS, ids=lambda c: c.__name__)
def test_flops_are_positive_and_affine_in_depth(cls):
    A = _matrix(5, 8, 0)
    f = {K: cls(A, K, 0.1).flops_per_sample() for K in (2, 4, 6)}
    assert all(isinstance(v, int) and v > 0 for v in f.values())
    assert f[4] > f[2]
    assert f[4] - f[2] == f[6] - f[4]


# ---------------------------------------------------------------------------- dtypes and inputs
@pytest.mark.parametrize("cls", SPARSE_MODELS, ids=lambda c: c.__name__)
def test_float32_copy_stays_close_and_inputs_may_be_numpy_or_tensors(cls):
    A = _matrix(7, 11, 3)
    Y = _inputs(7, 4, 3)
    model = cls(A, 3, 0.1)
    _perturb(model, np.random.default_rng(0), size=0.05)
    ref = _out(model, Y)
    from_tensor = model(torch.tensor(Y))
    from_f32 = model(torch.tensor(Y, dtype=torch.float32))
    assert from_tensor.dtype == torch.float64
    np.testing.assert_array_equal(from_tensor.detach().numpy(), ref)
    np.testing.assert_allclose(from_f32.detach().numpy(), ref, atol=1e-5 * max(1.0, np.abs(ref).max()))
    its = model(Y, return_iterates=True)
    assert len(its) == 3 and all(x.shape == (4, 11) for x in its)
    np.testing.assert_array_equal(its[-1].detach().numpy(), ref)

    model.float()
    out32 = model(Y)
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32.detach().double().numpy(), ref, rtol=0, atol=1e-4 * max(1.0, np.abs(ref).max()))


@pytest.mark.parametrize("cls", SPARSE_MODELS, ids=lambda c: c.__name__)
def test_bad_inputs_raise_clear_errors(cls):
    A = _matrix(6, 9, 1)
    model = cls(A, 2, 0.1)
    with pytest.raises(ValueError, match=r"y has shape \(3, 7\); expected \(batch, 6\)"):
        model(np.zeros((3, 7)))
    with pytest.raises(ValueError, match=r"y has shape \(3, 7\); expected \(batch, 6\)"):
        model(torch.zeros(3, 7, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"y has 1 dimension"):
        model(np.zeros(6))
    with pytest.raises(ValueError, match=r"y has shape \(6,\); expected \(batch, 6\)"):
        model(torch.zeros(6, dtype=torch.float64))
    bad = np.zeros((2, 6))
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match=r"y has a non-finite entry at index \(1, 3\)"):
        model(bad)
    with pytest.raises(ValueError, match="y has non-finite entries"):
        model(torch.tensor(bad))
    A_nan = A.copy()
    A_nan[2, 4] = np.inf
    with pytest.raises(ValueError, match=r"A has a non-finite entry at index \(2, 4\)"):
        cls(A_nan, 2, 0.1)
    for layers in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="layers must be a positive integer"):
            cls(A, layers, 0.1)
    for lam in (0.0, -0.1):
        with pytest.raises(ValueError, match="lam must be > 0"):
            cls(A, 2, lam)
    with pytest.raises(ValueError, match="lam must be finite"):
        cls(A, 2, float("nan"))
    with pytest.raises(ValueError, match="A is zero"):
        cls(np.zeros((6, 9)), 2, 0.1)
    with pytest.raises(ValueError, match=r"A has shape \(0, 9\)"):
        cls(np.zeros((0, 9)), 2, 0.1)
    with pytest.raises(ValueError, match="A has 1 dimension"):
        cls(np.ones(9), 2, 0.1)


def test_learned_update_needs_width_two_n():
    A = _matrix(6, 9, 1)
    with pytest.raises(ValueError, match=r"hidden = 17 is below 2n = 18"):
        LearnedUpdate(A, 2, 0.1, hidden=17)
    assert LearnedUpdate(A, 2, 0.1, hidden=18).hidden == 18


# ---------------------------------------------------------------------------- projection
@pytest.mark.parametrize("cls", THRESHOLD_MODELS, ids=lambda c: c.__name__)
def test_project_parameters_clamps_negative_thresholds(cls):
    A = _matrix(7, 10, 2)
    Y = _inputs(7, 5, 2)
    model = cls(A, 4, 0.1)
    _perturb(model, np.random.default_rng(1), size=0.1)
    with torch.no_grad():
        model.threshold[0].fill_(-0.3)
        model.threshold[2].fill_(-1e-3)
    before = _out(model, Y)  # the forward pass already reads a negative threshold as 0
    np.testing.assert_allclose(model.spec().evaluate(Y), before, rtol=0, atol=1e-10)
    model.project_parameters()
    assert model.threshold[0].item() == 0.0 and model.threshold[2].item() == 0.0
    assert all(t.item() >= 0 for t in model.threshold)
    after = _out(model, Y)
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-14)
    np.testing.assert_allclose(model.spec().evaluate(Y), after, rtol=0, atol=1e-10)


def test_project_parameters_clamps_negative_steps():
    model = UnfoldedISTA(_matrix(5, 8, 0), 3, 0.1)
    with torch.no_grad():
        model.step[1].fill_(-0.2)
    model.project_parameters()
    assert model.step[1].item() == 0.0
    assert model.step[0].item() > 0.0


def test_soft_threshold_treats_a_negative_threshold_as_zero():
    v = torch.tensor([-2.0, -0.1, 0.0, 0.3, 1.5], dtype=torch.float64)
    np.testing.assert_array_equal(unfold.base.soft_threshold_t(v, -0.5).numpy(), v.numpy())
    np.testing.assert_array_equal(unfold.base.soft_threshold_t(v, 0.2).numpy(),
                                  soft_threshold(v.numpy(), 0.2))


def test_fista_momentum_matches_its_recursion():
    from unfoldtheory.unfold.learned_hyperparameters import fista_momentum

    t = [1.0]
    for _ in range(8):
        t.append((1 + np.sqrt(1 + 4 * t[-1] ** 2)) / 2)
    np.testing.assert_allclose(fista_momentum(8), [(t[k - 1] - 1) / t[k] for k in range(1, 8)], rtol=1e-15)
    assert fista_momentum(1).shape == (0,)
    assert fista_momentum(2)[0] == 0.0

