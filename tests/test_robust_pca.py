"""RobustPCA (generator, objective, checks) and the PCP reference with its recomputed duality gap.

PCP is solved at 12 × 12 (rank 1, 5 % outliers): a few hundredths of a second per instance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from unfoldtheory.problems import RobustPCA
from unfoldtheory.problems.robust_pca import default_lam, feasible_dual, pcp, pcp_duality_gap

FINITE = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


def _nuclear_by_eigs(M: np.ndarray) -> float:
    """‖M‖_* as the sum of square roots of the eigenvalues of MᵀM (a route other than the SVD)."""
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(M.T @ M), 0.0, None)).sum())


# --------------------------------------------------------------------------- the generator


@settings(max_examples=25)
@given(d1=st.integers(1, 12), d2=st.integers(1, 12), data=st.data())
def test_samples_have_the_promised_structure(d1, d2, data):
    rank = data.draw(st.integers(1, min(d1, d2)))
    alpha = data.draw(st.floats(0.0, 0.99))
    p = RobustPCA(d1, d2, rank, alpha, seed=data.draw(st.integers(0, 100)))
    Y, L, S = p.sample_parts(3, seed=data.draw(st.integers(0, 100)))
    for M in (Y, L, S):
        assert M.shape == (3, d1, d2)
        assert M.dtype == np.float64
    np.testing.assert_array_equal(Y, L + S)
    assert all(np.linalg.matrix_rank(Li) == rank for Li in L)
    count = math.floor(alpha * d1 * d2)
    assert p.num_outliers == count
    assert all(np.count_nonzero(Si) == count for Si in S)  # values are continuous: none is exactly 0
    bound = np.abs(L).mean(axis=(1, 2))
    assert np.all(np.abs(S).max(axis=(1, 2), initial=0.0) <= bound)
    Y2, L2 = p.sample(3, seed=0)
    assert Y2.shape == L2.shape == (3, d1, d2)


def test_sample_returns_the_observation_and_the_low_rank_target():
    p = RobustPCA(9, 7, 2, 0.2, seed=3)
    Y, L = p.sample(4, seed=11)
    Y2, L2, S2 = p.sample_parts(4, seed=11)
    np.testing.assert_array_equal(Y, Y2)
    np.testing.assert_array_equal(L, L2)
    np.testing.assert_allclose(Y - L, S2, rtol=0, atol=1e-15)  # S = Y − L up to rounding


def test_reproducible_for_a_seed_and_a_fresh_stream_without_one():
    a, b = RobustPCA(8, 8, 2, 0.1, seed=5), RobustPCA(8, 8, 2, 0.1, seed=5)
    np.testing.assert_array_equal(a.sample(3, seed=1)[0], b.sample(3, seed=1)[0])
    first, second = a.sample(3), a.sample(3)
    assert not np.allclose(first[0], second[0])  # the stream moves on
    np.testing.assert_array_equal(first[0], b.sample(3)[0])  # and is the same stream for the same problem seed
    assert not np.allclose(a.sample(3, seed=1)[0], a.sample(3, seed=2)[0])
    assert not np.allclose(a.sample(3, seed=1)[0], RobustPCA(8, 8, 2, 0.1, seed=6).sample(3, seed=1)[0])


def test_scale_of_the_low_rank_part_and_of_the_outliers():
    """Entries of L = UVᵀ have variance r/(d1 d2); outlier values are uniform on [−c, c] (E|s|/c = 1/2).
    Tolerances are 5 standard errors of the estimates (fixed seed: deterministic)."""
    d, r, n = 30, 3, 40
    p = RobustPCA(d, d, r, 0.1, seed=0)
    _, L, S = p.sample_parts(n, seed=1)
    var = float((L**2).mean()) * d * d / r
    assert abs(var - 1.0) < 5 * math.sqrt(2.0 / (n * r))  # per-sample ‖L‖²_F·d²/r has relative sd ≈ √(2/r)
    c = np.abs(L).mean(axis=(1, 2))
    ratios = (np.abs(S) / c[:, None, None])[S != 0]
    assert abs(ratios.mean() - 0.5) < 5 * math.sqrt(1 / 12) / math.sqrt(ratios.size)


def test_zero_outlier_fraction_gives_pure_low_rank():
    Y, L = RobustPCA(6, 5, 2, 0.0).sample(2, seed=0)
    np.testing.assert_array_equal(Y, L)


@pytest.mark.parametrize(("args", "message"), [
    ((0, 5, 1, 0.1), "d1"),
    ((5, 0, 1, 0.1), "d2"),
    ((5, 4, 0, 0.1), "rank"),
    ((5, 4, 5, 0.1), "rank 5 exceeds min"),
    ((5, 4, 2, 1.0), "outlier_fraction"),
    ((5, 4, 2, -0.1), "outlier_fraction"),
    ((5, 4, 2, float("nan")), "outlier_fraction"),
    ((5.5, 4, 2, 0.1), "d1"),
])
def test_bad_parameters_raise(args, message):
    with pytest.raises(ValueError, match=message):
        RobustPCA(*args)


def test_bad_lam_seed_and_num_raise():
    with pytest.raises(ValueError, match="lam"):
        RobustPCA(5, 5, 1, 0.1, lam=0.0)
    with pytest.raises(ValueError, match="seed"):
        RobustPCA(5, 5, 1, 0.1, seed=-1)
    p = RobustPCA(5, 5, 1, 0.1)
    with pytest.raises(ValueError, match="num"):
        p.sample(0)
    with pytest.raises(ValueError, match="seed"):
        p.sample(2, seed=True)


def test_default_lam_is_candes_choice():
    assert RobustPCA(16, 9, 1, 0.1).lam == pytest.approx(0.25)
    assert default_lam(9, 16) == pytest.approx(0.25)
    assert RobustPCA(16, 9, 1, 0.1, lam=0.7).lam == 0.7


# --------------------------------------------------------------------------- the objective


def test_objective_matches_a_hand_computation_and_torch():
    p = RobustPCA(7, 5, 2, 0.2, seed=1)
    Y, L = p.sample(3, seed=0)
    Lhat = L + 0.01 * np.random.default_rng(0).standard_normal(L.shape)
    by_hand = [_nuclear_by_eigs(Lh) + p.lam * sum(abs(float(v)) for v in (Yi - Lh).ravel())
               for Lh, Yi in zip(Lhat, Y, strict=True)]
    np.testing.assert_allclose(p.objective(Lhat, Y), by_hand, rtol=1e-10)
    assert isinstance(p.objective(Lhat[0], Y[0]), float)
    assert p.objective(Lhat[0], Y[0]) == pytest.approx(by_hand[0], rel=1e-10)
    t = p.torch_objective(torch.as_tensor(Lhat), torch.as_tensor(Y))
    assert float(t) == pytest.approx(np.mean(by_hand), rel=1e-10)


def test_torch_objective_is_differentiable():
    p = RobustPCA(6, 6, 1, 0.1, seed=2)
    Y, L = p.sample(2, seed=0)
    Lt = torch.tensor(L + 0.1, requires_grad=True)
    p.torch_objective(Lt, torch.as_tensor(Y)).backward()
    assert Lt.grad is not None and torch.isfinite(Lt.grad).all()


def test_objective_rejects_bad_shapes():
    p = RobustPCA(4, 3, 1, 0.1)
    with pytest.raises(ValueError, match="expected"):
        p.objective(np.zeros((3, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="must match"):
        p.objective(np.zeros((2, 4, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        p.objective(np.full((4, 3), np.nan), np.zeros((4, 3)))


# --------------------------------------------------------------------------- PCP and its certificate


@pytest.fixture(scope="module")
def easy():
    """An easy PCP instance: 12 × 12, rank 1, 5 % outliers, solved by both solvers."""
    p = RobustPCA(12, 12, 1, 0.05, seed=1)
    Y, L, S = p.sample_parts(2, seed=0)
    return p, Y, L, S, pcp(Y, solver="CLARABEL"), pcp(Y, solver="SCS")


def test_pcp_recovers_the_low_rank_part(easy):
    _, Y, L, S, sol, _ = easy
    assert sol.all_optimal, sol.status
    assert sol.L.shape == sol.S.shape == sol.dual.shape == (2, 12, 12)
    rel = np.linalg.norm(sol.L - L, axis=(1, 2)) / np.linalg.norm(L, axis=(1, 2))
    assert np.all(rel < 1e-6), rel
    np.testing.assert_allclose(sol.S, S, atol=1e-6 * np.abs(L).max())
    np.testing.assert_array_equal(sol.S, Y - sol.L)  # S = Y − L exactly, so L + S = Y to rounding


def test_pcp_duality_gap_is_nonnegative_and_small(easy):
    p, Y, L, _, sol, _ = easy
    assert np.all(sol.duality_gap >= 0)
    assert np.all(sol.relative_gap < 1e-6), sol.relative_gap
    np.testing.assert_allclose(sol.objective, p.objective(sol.L, Y), rtol=1e-12)
    # the objective at the truth is at least the certified lower bound objective − gap
    assert np.all(p.objective(L, Y) >= sol.objective - sol.duality_gap - 1e-12)


def test_pcp_dual_point_is_feasible_and_certifies(easy):
    p, Y, _, _, sol, _ = easy
    for Lam in sol.dual:
        assert np.linalg.norm(Lam, 2) <= 1 + 1e-12
        assert np.abs(Lam).max() <= p.lam * (1 + 1e-12)
    dual_value = np.einsum("kij,kij->k", sol.dual, Y)
    np.testing.assert_allclose(sol.objective - dual_value, sol.duality_gap, rtol=1e-9, atol=1e-15)


def test_gap_is_recomputed_from_the_returned_point(easy):
    """Tamper test: moving L away from the solution raises the recomputed objective and gap."""
    p, Y, _, _, sol, _ = easy
    bumped = sol.L + 1e-3 * np.random.default_rng(0).standard_normal(sol.L.shape)
    gap, primal = pcp_duality_gap(bumped, Y, sol.dual, p.lam)
    assert np.all(primal > sol.objective)
    assert np.all(gap > sol.duality_gap + 1e-5)
    # and a dual of the wrong sign certifies nothing: the gap becomes of the order of the objective
    wrong, _ = pcp_duality_gap(sol.L, Y, -sol.dual, p.lam)
    assert np.all(wrong > 0.5 * sol.objective)


def test_clarabel_and_scs_agree(easy):
    _, _, _, _, clarabel, scs = easy
    assert clarabel.solver == "CLARABEL" and scs.solver == "SCS"
    assert np.all(scs.duality_gap >= 0)
    np.testing.assert_allclose(scs.objective, clarabel.objective, rtol=1e-4)
    np.testing.assert_allclose(scs.L, clarabel.L, atol=1e-3 * np.abs(clarabel.L).max())


def test_pcp_takes_a_single_matrix_and_scales():
    Y = RobustPCA(8, 6, 1, 0.05, seed=4).sample(1, seed=0)[0][0]
    one = pcp(Y)
    big = pcp(1e3 * Y)
    assert one.L.shape == (1, 8, 6)
    np.testing.assert_allclose(big.L, 1e3 * one.L, rtol=1e-5, atol=1e-5 * np.abs(big.L).max())
    np.testing.assert_allclose(big.objective, 1e3 * one.objective, rtol=1e-7)


def test_pcp_of_zero_is_zero():
    sol = pcp(np.zeros((2, 4, 4)))
    assert sol.all_optimal
    np.testing.assert_array_equal(sol.L, 0.0)
    np.testing.assert_array_equal(sol.duality_gap, 0.0)


def test_pcp_rejects_bad_input():
    with pytest.raises(ValueError, match="solver"):
        pcp(np.eye(3), solver="ECOS")
    with pytest.raises(ValueError, match="non-finite"):
        pcp(np.full((3, 3), np.inf))
    with pytest.raises(ValueError, match="lam"):
        pcp(np.eye(3), lam=-1.0)
    with pytest.raises(ValueError, match="dimension"):
        pcp(np.ones(3))


@settings(max_examples=40)
@given(L=hnp.arrays(np.float64, (4, 3), elements=FINITE), Y=hnp.arrays(np.float64, (4, 3), elements=FINITE),
       Lam=hnp.arrays(np.float64, (4, 3), elements=FINITE), lam=st.floats(0.05, 3.0))
def test_weak_duality_holds_for_every_point(L, Y, Lam, lam):
    """Any L and any Λ (scaled into feasibility) give gap ≥ 0: the certificate cannot be fooled."""
    gap, primal = pcp_duality_gap(L, Y, Lam, lam)
    assert gap >= -1e-9 * max(1.0, primal)
    F = feasible_dual(Lam, lam)
    assert np.linalg.norm(F, 2) <= 1 + 1e-12 and np.abs(F).max() <= lam * (1 + 1e-12)
    small = Lam / max(1.0, 2 * np.linalg.norm(Lam, 2), 2 * np.abs(Lam).max() / lam)
    np.testing.assert_array_equal(feasible_dual(small, lam), small)  # feasible points are left alone
