"""The structured interior-point solver for LipSDP-Neuron: its Schur complement against the definition,
solver against solver (cvxpy + Clarabel on the same data and on the same networks), and its answers
against the activation-agnostic ground truth and the witness."""

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory.lipschitz import STRUCTURED_SDP, upper_bound
from unfoldtheory.lipschitz.agnostic import activation_agnostic
from unfoldtheory.lipschitz.lower import lower_bound
from unfoldtheory.lipschitz.product import product_bound
from unfoldtheory.lipschitz.sdp import sdp_bound
from unfoldtheory.lipschitz.structured_ipm import StructuredLMI, solve
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.testing import unrolled_specs
from unfoldtheory.unfold import ALISTA, LISTA, UnfoldedFISTA


def _random_lmi(seed: int, m: int = 3, widths: tuple[int, ...] = (2, 3, 2), selection: bool = False,
                grouped: bool = False, blocks: bool = False) -> StructuredLMI:
    """LipSDP data of a random layered net with input injection: layer k reads y and layer k − 1, slopes
    ``[α, β]`` with ``α = 0`` (``F_a`` a selection) or random ``α ∈ (0, ½)``; ``grouped`` makes the last
    layer share one multiplier; ``blocks`` passes the block boundaries (products with ``F_b`` by its blocks)."""
    rng = np.random.default_rng(seed)
    R, N = sum(widths), m + sum(widths)
    starts = m + np.concatenate([[0], np.cumsum(widths)])
    P = np.zeros((R, N))
    for k, w in enumerate(widths):
        rows = slice(starts[k] - m, starts[k + 1] - m)
        P[rows, :m] = rng.standard_normal((w, m))
        if k:
            P[rows, starts[k - 1]:starts[k]] = rng.standard_normal((w, widths[k - 1]))
    E = np.zeros((R, N))
    E[np.arange(R), m + np.arange(R)] = 1.0
    alpha = np.zeros((R, 1)) if selection else rng.uniform(0.0, 0.5, (R, 1))
    beta = rng.uniform(0.6, 1.5, (R, 1))
    C = np.zeros((2, N))
    C[:, starts[-2]:] = rng.standard_normal((2, widths[-1]))
    groups = np.arange(R)
    if grouped:
        groups[R - widths[-1]:] = R - widths[-1]
    G = np.zeros((R, groups.max() + 1))
    G[np.arange(R), groups] = 1.0
    return StructuredLMI(C.T @ C, E - alpha * P, beta * P - E, G, m, 1e-6, np.concatenate([[0], starts]) if blocks else None)


def _dense_constraints(P: StructuredLMI) -> list[np.ndarray]:
    """``A_0 = −E₀ᵀE₀`` and ``A_g = ½ Σ_{r∈g} (a_r b_rᵀ + b_r a_rᵀ)`` as dense matrices."""
    A0 = np.zeros((P.size, P.size))
    A0[np.arange(P.m), np.arange(P.m)] = -1.0
    out = [A0]
    for g in range(P.num_multipliers):
        rows = np.flatnonzero(P.G[:, g])
        out.append(sum(0.5 * (np.outer(P.Fa[r], P.Fb[r]) + np.outer(P.Fb[r], P.Fa[r])) for r in rows))
    return out


def _permuted(P: StructuredLMI, seed: int) -> StructuredLMI:
    """The same constraints with their rows in a random order (a selection ``F_a`` that is no contiguous range)."""
    order = np.random.default_rng(seed).permutation(P.Fa.shape[0])
    return StructuredLMI(P.CtC, P.Fa[order], P.Fb[order], P.G[order], P.m, P.strictness, P.blocks)


@pytest.mark.parametrize(("selection", "grouped", "permuted", "blocks"),
                         [(False, False, False, False), (True, False, False, False), (True, True, False, False),
                          (False, True, False, False), (True, False, True, False), (True, True, True, False),
                          (True, False, False, True), (True, True, False, True), (True, False, True, True),
                          (False, False, False, True)])
def test_schur_apply_and_adjoint_match_their_definitions(selection, grouped, permuted, blocks):
    P = _random_lmi(0, selection=selection, grouped=grouped, blocks=blocks)
    if permuted:
        P = _permuted(P, 2)
    assert (P.selection is not None) == selection
    # F_b goes by its blocks only where F_a is a contiguous selection and the block boundaries are known
    assert (P.fb_blocks is not None) == (selection and blocks and not permuted)
    # a contiguous selection is indexed by a slice (views), a permuted one by its index array
    assert isinstance(P.selected, slice) == (selection and not permuted)
    rng = np.random.default_rng(1)
    B1, B2 = rng.standard_normal((2, P.size, P.size))
    X, W = B1 @ B1.T + np.eye(P.size), B2 @ B2.T + np.eye(P.size)
    A = _dense_constraints(P)
    H = np.array([[np.trace(Ai @ X @ Aj @ W) for Aj in A] for Ai in A])
    np.testing.assert_allclose(P.schur(X, W), H, rtol=1e-10, atol=1e-10)
    K = 0.5 * (B1 + B1.T)
    np.testing.assert_allclose(P.apply(K), [np.sum(Ai * K) for Ai in A], rtol=1e-10, atol=1e-10)
    t = rng.standard_normal(len(A))
    At = sum(ti * Ai for ti, Ai in zip(t, A, strict=True))
    np.testing.assert_allclose(P.adjoint(t[0], t[1:]), At, atol=1e-12)
    np.testing.assert_allclose(P.times_adjoint(X, P.Fb @ X, t[0], t[1:]), X @ At, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(P.fb_left(X, np.empty((P.Fb.shape[0], P.size))), P.Fb @ X, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(P.fb_right_transposed(X, np.empty((P.size, P.Fb.shape[0]))), X @ P.Fb.T, rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_products_by_blocks_reach_the_same_optimum_as_dense_ones(seed):
    """The same LMI with and without its block boundaries: the same status, iteration count and ρ (the
    products sum the same nonzero terms in another order), and the block path is the one taken."""
    dense = _random_lmi(seed, m=4, widths=(5, 6, 5, 4), selection=True)
    blocked = _random_lmi(seed, m=4, widths=(5, 6, 5, 4), selection=True, blocks=True)
    assert dense.fb_blocks is None and blocked.fb_blocks is not None
    a, b = solve(dense), solve(blocked)
    assert a.status == b.status == "optimal" and a.iterations == b.iterations
    assert b.rho == pytest.approx(a.rho, rel=1e-9)
    np.testing.assert_allclose(b.lam, a.lam, rtol=1e-6, atol=1e-9 * np.abs(a.lam).max())


def test_row_blocks_products_match_the_dense_matrix():
    from unfoldtheory.lipschitz.row_blocks import RowBlocks

    rng = np.random.default_rng(0)
    F = rng.standard_normal((7, 9))
    F[:3, 4:] = 0.0  # rows 0-2 touch columns 0-3 only; rows 3-6 skip columns 2-3
    F[3:, 2:4] = 0.0
    blocks = RowBlocks.from_dense(F, np.array([0, 3, 7]), np.array([0, 2, 4, 9]))
    assert [(r.start, r.stop, c.start, c.stop) for r, c, _ in blocks.pieces] == [(0, 3, 0, 4), (3, 7, 0, 2), (3, 7, 4, 9)]
    np.testing.assert_array_equal(blocks.toarray(), F)
    X, Y, Yt = rng.standard_normal((9, 5)), rng.standard_normal((4, 7)), rng.standard_normal((4, 9))
    np.testing.assert_allclose(blocks.left(X, np.full((7, 5), np.nan)), F @ X, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(blocks.right(Y, np.full((4, 9), np.nan)), Y @ F, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(blocks.right_transposed(Yt, np.full((4, 7), np.nan)), Yt @ F.T, rtol=1e-13, atol=1e-13)
    with pytest.raises(ValueError, match="col_bounds must ascend"):
        RowBlocks.from_dense(F, np.array([0, 7]), np.array([0, 5, 4, 9]))


def _cvxpy_value(P: StructuredLMI) -> float:
    lam, rho = cp.Variable(P.num_multipliers, nonneg=True), cp.Variable()
    S = P.Fa.T @ cp.diag(P.G @ lam) @ P.Fb
    E = np.zeros((P.size, P.size))
    E[np.arange(P.m), np.arange(P.m)] = 1.0
    M = P.CtC + 0.5 * (S + S.T) - rho * E + P.strictness * (np.eye(P.size) - E)
    cp.Problem(cp.Minimize(rho), [0.5 * (M + M.T) << 0]).solve(solver=cp.CLARABEL)
    return float(rho.value)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("selection", [False, True])
def test_solver_against_clarabel_on_the_same_data(seed, selection):
    P = _random_lmi(seed, selection=selection, grouped=seed % 2 == 1)
    ours = solve(P, tol=1e-9, value_tol=None)
    assert ours.status == "optimal", ours
    assert ours.rho == pytest.approx(_cvxpy_value(P), rel=1e-5, abs=1e-7)
    assert np.all(ours.lam >= 0)


@settings(max_examples=15)
@given(spec=unrolled_specs(m=st.integers(1, 3), n=st.integers(1, 4), K=st.integers(1, 3),
                           activation=st.sampled_from(["soft_threshold", "relu"])))
def test_structured_sdp_agrees_with_clarabel_and_sits_above_the_ground_truth(spec):
    ours = sdp_bound(spec, solver="structured")
    ref = sdp_bound(spec, solver="CLARABEL")
    agn = activation_agnostic(spec)
    assert ours.certified, ours.details
    assert agn.value <= ours.value * (1 + 1e-7) + 1e-12
    assert lower_bound(spec, restarts=2, steps=20).value <= ours.value * (1 + 1e-9) + 1e-12
    # solver against solver: the same optimum up to the solvers' accuracy, where the input scaling (at most
    # 2^20) brings ρ to order 1; on maps below that (hypothesis found a weight of −1.1e-308) every solver's
    # certified value is valid but swamped by its absolute tolerance, each differently
    if ref.certified and product_bound(spec).value >= 1e-6:
        assert ours.value == pytest.approx(ref.value, rel=1e-3, abs=1e-6)


@pytest.mark.parametrize("cls", [LISTA, ALISTA, UnfoldedFISTA])
def test_best_solves_small_nets_exactly_and_matches_clarabel(cls):
    p = SparseRecovery(5, 8, 0.2, seed=4)
    spec = cls(p.A, 3, p.lam).spec()
    best = upper_bound(spec)
    assert best.certified and best.details["chosen"] == "lipsdp-neuron"
    assert best.details["solver"] == "structured" and best.details["matrix_size"] <= STRUCTURED_SDP
    ref = sdp_bound(spec, solver="CLARABEL")
    assert ref.certified
    assert best.value == pytest.approx(ref.value, rel=1e-4)
    assert best.value <= ref.value * (1 + 1e-6)  # an interior-point optimum: not above Clarabel's


def test_an_exhausted_time_budget_never_certifies_too_little():
    p = SparseRecovery(6, 10, 0.2, seed=5)
    spec = LISTA(p.A, 3, p.lam).spec()
    exact = sdp_bound(spec, solver="structured")
    rushed = sdp_bound(spec, solver="structured", time_budget=1e-9)
    assert rushed.details["status"] == "time_budget"
    assert not rushed.certified or rushed.value >= exact.value * (1 - 1e-6)


def test_bad_input():
    p = SparseRecovery(3, 4, 0.2, seed=0)
    spec = LISTA(p.A, 2, p.lam).spec()
    with pytest.raises(ValueError, match="time_budget must be > 0"):
        sdp_bound(spec, time_budget=0.0)
    with pytest.raises(ValueError, match="time_budget"):
        sdp_bound(spec, time_budget=float("nan"))


def test_best_falls_back_to_the_chain_methods_when_the_solve_does_not_converge(monkeypatch):
    import functools

    from unfoldtheory.lipschitz import structured_ipm

    p = SparseRecovery(5, 8, 0.2, seed=6)
    spec = LISTA(p.A, 3, p.lam).spec()
    exact = upper_bound(spec)
    monkeypatch.setattr(structured_ipm, "solve", functools.partial(structured_ipm.solve, max_iterations=3))
    rushed = upper_bound(spec)
    candidates = rushed.details["candidates"]
    assert "lipsdp-neuron (structured)" in exact.details["candidates"] and "first-order" not in exact.details["candidates"]
    assert "lipsdp-neuron (structured)" in candidates  # tried, stopped after 3 iterations
    assert "first-order" in candidates and candidates["sequential"]["certified"]  # then the chain methods
    assert rushed.certified and rushed.value >= exact.value * (1 - 1e-6)
    assert candidates["first-order"]["value"] <= exact.value * 1.01  # the first-order method gets close to the optimum


def _symmetric_with_spectrum(rng, eigenvalues: np.ndarray) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
    return (Q * eigenvalues) @ Q.T


@pytest.mark.parametrize("rtol", [0.02, 0.01])
def test_cone_step_by_lanczos_against_the_dense_eigenvalue(rtol):
    """The step ``−1/λ_min(L⁻¹ΔXL⁻ᵀ)`` from Lanczos against ``eigvalsh`` of the explicit matrix: never more than a
    hair longer than the exact step, at most about ``rtol`` shorter, ``X + αΔX`` positive semidefinite, and
    ``∞`` when ``ΔX ⪰ 0``."""
    from unfoldtheory.lipschitz.structured_ipm import _cone_step

    rng = np.random.default_rng(7)
    n = 40
    for trial in range(30):
        B = rng.standard_normal((n, n))
        X = B @ B.T + 0.1 * np.eye(n)
        spread = 10.0 ** rng.uniform(-1, 3)  # from clustered to widely spread spectra
        D = _symmetric_with_spectrum(rng, rng.uniform(-1, 1, n) * np.geomspace(1, spread, n))
        iL = np.linalg.inv(np.linalg.cholesky(X))
        exact = -1 / np.linalg.eigvalsh(iL @ D @ iL.T)[0]
        starts = {"X": rng.standard_normal(n)}
        step = _cone_step(iL, D, rtol, starts, "X")
        assert step <= exact * (1 + 1e-6), trial
        assert step >= exact / (1 + 3 * rtol), trial
        assert np.linalg.eigvalsh(X + step * D)[0] >= -1e-9 * np.abs(X).max(), trial
        assert starts["X"].shape == (n,)  # the Ritz vector, the next start
    assert _cone_step(iL, D @ D, rtol, {"X": np.ones(n)}, "X") == np.inf


def test_smallest_eigenvalue_falls_back_to_lapack_where_lanczos_cannot_see_lambda_min(monkeypatch):
    """A start that is an eigenvector spans an invariant subspace without ``λ_min``, and a Lanczos run cut short
    does not converge: both must fall back to the dense eigenvalue, not return the wrong Ritz value."""
    from unfoldtheory.lipschitz import structured_ipm
    from unfoldtheory.lipschitz.structured_ipm import _smallest_eigenvalue

    rng = np.random.default_rng(3)
    n = 30
    T = _symmetric_with_spectrum(rng, np.linspace(-5.0, 3.0, n))
    w, V = np.linalg.eigh(T)
    lam, _ = _smallest_eigenvalue(lambda v: T @ v, lambda: T, 0.01, V[:, -1])  # the largest eigenvector
    assert lam == pytest.approx(w[0], rel=1e-12)
    monkeypatch.setattr(structured_ipm, "LANCZOS_STEPS", 2)
    lam, _ = _smallest_eigenvalue(lambda v: T @ v, lambda: T, 1e-6, rng.standard_normal(n))
    assert lam == pytest.approx(w[0], rel=1e-12)


def test_provable_rho_is_the_smallest_shift_of_the_input_block():
    """``_provable_rho`` (from ``W = Z⁻¹``) against the spectrum: at ``ρ' = ρ_c`` the shifted slack
    ``Z + (ρ_c − ρ)E₀E₀ᵀ`` is singular and just positive semidefinite."""
    from unfoldtheory.lipschitz.structured_ipm import _provable_rho

    rng = np.random.default_rng(5)
    n, m, rho = 12, 4, 0.7
    B = rng.standard_normal((n, n))
    Z = B @ B.T + 0.05 * np.eye(n)
    rho_c = _provable_rho(rho, np.linalg.inv(Z)[:m, :m])
    shifted = Z.copy()
    shifted[np.arange(m), np.arange(m)] += rho_c - rho
    smallest = np.linalg.eigvalsh(shifted)[0]
    assert rho_c < rho
    assert abs(smallest) <= 1e-9 * np.linalg.eigvalsh(Z)[-1]
    shifted[np.arange(m), np.arange(m)] -= 1e-6
    assert np.linalg.eigvalsh(shifted)[0] < 0  # a smaller ρ' is infeasible


@pytest.mark.parametrize("cls", [LISTA, ALISTA])
def test_value_test_stops_early_within_1e5_of_a_tight_solve(cls, monkeypatch):
    """The value test against a tight solve without it (tol 1e-10): fewer iterations, the certified value within
    1e-5 (relative) of the tight one and not below it beyond rounding, and a witness below both."""
    import functools

    from unfoldtheory.lipschitz import structured_ipm

    p = SparseRecovery(8, 16, 0.2, seed=2)
    spec = cls(p.A, 3, p.lam).spec()
    early = sdp_bound(spec, solver="structured")
    monkeypatch.setattr(structured_ipm, "solve",
                        functools.partial(structured_ipm.solve, tol=1e-10, max_iterations=200, value_tol=None))
    tight = sdp_bound(spec, solver="structured")
    assert early.certified and tight.certified and early.details["status"] == tight.details["status"] == "optimal"
    assert early.details["iterations"] < tight.details["iterations"]
    assert early.value == pytest.approx(tight.value, rel=1e-5)
    assert early.value >= tight.value * (1 - 1e-9)
    assert lower_bound(spec, restarts=2, steps=20).value <= tight.value * (1 + 1e-12)


def _random_relu_net(seed: int, m: int = 3, n: int = 5, K: int = 3, scale: float = 0.7):
    from unfoldtheory.spec import unrolled

    rng = np.random.default_rng(seed)
    W = [None] + [rng.standard_normal((n, n)) * scale / np.sqrt(n) for _ in range(K - 1)]
    V = [rng.standard_normal((n, m)) / np.sqrt(m) for _ in range(K)]
    return unrolled(W, V, [0.05] * K, activation="relu")


@pytest.mark.parametrize("net", ["ista", "random-0", "random-1"])
def test_structured_sdp_matches_clarabel_to_1e4_on_small_nets(net):
    """Solver against solver on small nets of the benchmark's families (ISTA weights, random ReLU nets):
    the certified structured value within 1e-4 of cvxpy + Clarabel's certified value, and never below the
    witness."""
    from unfoldtheory.classical import ista_spec

    if net == "ista":
        p = SparseRecovery(5, 8, 0.2, seed=9)
        spec = ista_spec(p.A, p.lam, 3)
    else:
        spec = _random_relu_net(int(net.split("-")[1]))
    ours = sdp_bound(spec, solver="structured")
    ref = sdp_bound(spec, solver="CLARABEL")
    assert ours.certified and ref.certified, (ours.details, ref.details)
    assert ours.details["status"] == "optimal"
    assert ours.value == pytest.approx(ref.value, rel=1e-4)
    assert lower_bound(spec, restarts=2, steps=20).value <= ours.value * (1 + 1e-12)


def test_data_beyond_float32_are_solved_and_data_that_would_overflow_are_refused():
    """Step lengths are float64 now: a layer scaled by 2^110 (refused before, as beyond float32) is solved,
    and its certified value is never below the unscaled net's (the scaled net computes the same map:
    ReLU is positively homogeneous); data whose fourth powers overflow give an uncertified bound that says so."""
    from unfoldtheory.spec import unrolled

    rng = np.random.default_rng(3)
    W2, V1, V2 = rng.standard_normal((5, 5)) / 2, rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    plain = sdp_bound(unrolled([None, W2], [V1, V2], [0.1, 0.1], activation="relu"), solver="CLARABEL")
    assert plain.certified
    for exponent, certifies in ((110, True), (260, False)):
        c = 2.0**exponent
        spec = unrolled([None, W2 / c], [V1 * c, V2], [0.1 * c, 0.1], activation="relu")
        bound = sdp_bound(spec, solver="structured")
        assert bound.certified == certifies, bound.details
        if certifies:
            assert bound.value >= plain.value * (1 - 1e-9)
        else:
            assert bound.value == np.inf and "overflow" in bound.details["check"]


def test_symmetric_from_lower_and_the_heap_setting():
    """The masked copy gives the symmetric matrix of the lower triangle; glibc accepts the heap thresholds
    (once: a second call changes nothing), elsewhere the setting reports that it did nothing."""
    import os

    from unfoldtheory.lipschitz import heap
    from unfoldtheory.lipschitz.structured_ipm import _symmetric_from_lower

    A = np.random.default_rng(0).standard_normal((7, 7))
    expected = np.tril(A) + np.tril(A, -1).T
    np.testing.assert_array_equal(_symmetric_from_lower(A.copy()), expected)
    glibc = hasattr(os, "confstr") and (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    assert heap.keep_freed_memory() == glibc
    assert heap.keep_freed_memory() == glibc
