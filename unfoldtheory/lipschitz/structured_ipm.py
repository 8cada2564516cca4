"""LipSDP-Neuron by a primal–dual interior-point method that uses the rank-two neuron structure.

The problem (:mod:`.quadratic_form`, data already scaled by :mod:`.sdp`) in SDP dual form, with
``t = (ρ, λ)``, ``w = Gλ`` the multiplier of each row, ``a_r``/``b_r`` the rows of ``F_a``/``F_b``::

    max −ρ   s.t.  Z = C₀ − 𝒜ᵀt ⪰ 0,  λ ≥ 0,
    C₀ = −CᵀC − δ(I − E₀ᵀE₀),   𝒜ᵀt = −ρE₀ᵀE₀ + ½ Σ_r w_r (a_r b_rᵀ + b_r a_rᵀ),

so ``Z = −(M(ρ, λ) + δ(I − E₀ᵀE₀))``. Its primal is ``min ⟨C₀, X⟩`` s.t. ``tr X_yy = 1``,
``Σ_{r∈g} a_rᵀ X b_r = x_g``, ``X ⪰ 0``, ``x ≥ 0``.

**Method.** Infeasible-start path following with the HKM direction and Mehrotra's
predictor–corrector (Helmberg, Rendl, Vanderbei & Wolkowicz, *SIAM J. Optim.* 6, 1996; Kojima,
Shindoh & Hara, *SIAM J. Optim.* 7, 1997; Monteiro, *SIAM J. Optim.* 7, 1997; Mehrotra, *SIAM J.
Optim.* 2, 1992; the starting point and step rules follow SDPT3, Toh, Todd & Tütüncü, *Optim.
Methods Softw.* 11, 1999). The HKM Schur complement ``H_ij = tr(A_i X A_j Z⁻¹)`` is where a generic
solver spends its time; for rank-two ``A_r = ½(a_r b_rᵀ + b_r a_rᵀ)`` it is, with
``X_ab = F_a X F_bᵀ`` and so on and ``W = Z⁻¹``,

    H_rs = ¼ (X_ba ∘ W_ab + X_bb ∘ W_aa + X_aa ∘ W_bb + X_ab ∘ W_ba)_rs,

summed over the rows of each multiplier's group: a few ``R × N`` products instead of ``p``
products of ``N × N`` matrices (``tests/test_lipschitz_structured_ipm.py`` checks it against the
definition). One iteration costs ``O(N³ + p³ + R·N·(N + R))``, so the method suits LipSDP matrices
up to several hundred rows, where it needs 12–20 iterations (:func:`solve`'s value test ends most runs).

**Cost per iteration** (all float64, one BLAS thread, about 9 dense ``N × N`` products and a few over the
nonzero blocks of ``F_b``): the inverse Cholesky factors ``L_X⁻¹``, ``L_Z⁻¹`` (``trtri``) give
``W = L_Z⁻ᵀL_Z⁻¹`` (``lauum``) and every step length; ``F_b X``, ``F_b W`` and their products with ``F_bᵀ`` (the
Schur complement), ``X𝒜ᵀ(Δt)`` and the predictor's ``ΔZ W`` go over the nonzero blocks of ``F_b``
(:class:`.RowBlocks`: a third of it at (20, 40, 4)), and ``F_a = E`` is a selection. The largest ``α`` with
``X + αΔX ⪰ 0`` is ``−1/λ_min(L_X⁻¹ΔX L_X⁻ᵀ)``, estimated from below by a few Lanczos steps on matrix–vector
products, warm-started from the last Ritz vector of the same cone (SDPT3 computes its step lengths by Lanczos
too): to 1 % for the step taken, to 2 % for the predictor's, which only set the centring parameter; a dense
tridiagonal reduction costs as much as six matrix products at N = 180. The new factors come from the Cholesky
factorisation that confirms each step. (Triangular solves with ``L_X`` instead of ``L_X⁻¹`` would save one
``trtri``, 3 % of an iteration, but changed the rounding enough that a net scaled by 2^110 lost its certificate.)

The solver only proposes multipliers: :func:`~.certificate.certify_multipliers` recomputes the
bound they prove. Nothing it returns is trusted.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from scipy import linalg
from scipy.linalg import blas, lapack
from threadpoolctl import ThreadpoolController

from unfoldtheory.lipschitz import heap
from unfoldtheory.lipschitz.row_blocks import RowBlocks

#: LipSDP matrices up to this many rows are solved on one BLAS thread (see :func:`solve`)
SINGLE_THREAD_SIZE = 1000
#: relative accuracy of the step lengths: the predictor's only set the centring parameter, the corrector's are taken
PREDICTOR_RTOL, CORRECTOR_RTOL = 0.02, 0.01
#: Lanczos steps before a step length falls back to LAPACK's smallest eigenvalue
LANCZOS_STEPS = 48
#: SDPT3's starting point ``X = ξI``, ``Z = ηI`` scaled down by these factors: :mod:`.sdp` has already scaled the
#: data to O(1), and SDPT3's general-purpose floors (10, √N) start far out; on the benchmark's LISTA family at
#: (20, 40, 4) (nine nets, three seeds) this saved 10 % of the iterations, and smaller factors lost again
START_X, START_Z = 0.1, 0.3
#: the value test (see :func:`solve`): relative change of the provable ρ between iterations, the gap below which it
#: applies, and the smallest last dual step (a stalled iteration changes nothing and proves nothing)
VALUE_TOL, VALUE_GAP, VALUE_STEP = 2e-5, 1e-3, 0.8
#: the products with ``F_b`` go block by block (:attr:`StructuredLMI.fb_blocks`) when its nonzero blocks fill at
#: most this fraction of it (a third at (20, 40, 4)); denser, one dense product is faster
SPARSE_FILL = 0.6


@dataclass(frozen=True)
class StructuredLMI:
    """``min ρ`` s.t. ``CᵀC − ρE₀ᵀE₀ + ½(F_aᵀ diag(Gλ) F_b + F_bᵀ diag(Gλ) F_a) + δ(I − E₀ᵀE₀) ⪯ 0``, ``λ ≥ 0``.

    ``CtC`` is ``N × N``, ``Fa`` and ``Fb`` are ``R × N`` and ``G`` is ``R × p`` (row → multiplier), all
    dense (the method is for sizes where dense BLAS beats sparse bookkeeping); the input block is the
    first ``m`` coordinates. ``blocks`` (optional): the boundaries of the blocks of ``ξ`` (``QuadraticForm.offsets``),
    along which the products with ``F_b`` skip its zero blocks (:attr:`fb_blocks`)."""

    CtC: np.ndarray
    Fa: np.ndarray
    Fb: np.ndarray
    G: np.ndarray
    m: int
    strictness: float
    blocks: np.ndarray | None = None

    @property
    def size(self) -> int:
        return self.CtC.shape[0]

    @property
    def num_multipliers(self) -> int:
        return self.G.shape[1]

    def c0(self) -> np.ndarray:
        C = -self.CtC.copy()
        idx = np.arange(self.m, self.size)
        C[idx, idx] -= self.strictness
        return C

    @cached_property
    def selection(self) -> np.ndarray | None:
        """Distinct ``i`` with ``F_a = I[i]`` when every row of ``F_a`` is a unit vector (slopes ``[0, β]``,
        where ``F_a = E``); then every product with ``F_a`` is an index operation."""
        Fa = self.Fa
        cols = np.argmax(np.abs(Fa), axis=1)
        unit = np.zeros_like(Fa)
        unit[np.arange(Fa.shape[0]), cols] = 1.0
        return cols if np.array_equal(Fa, unit) and len(np.unique(cols)) == len(cols) else None

    @cached_property
    def selected(self) -> slice | np.ndarray | None:
        """:attr:`selection` as a slice when it is a contiguous ascending range (the neurons of a chain in order):
        indexing by it then gives views instead of copies."""
        sel = self.selection
        if sel is not None and len(sel) and np.array_equal(sel, np.arange(sel[0], sel[0] + len(sel))):
            return slice(int(sel[0]), int(sel[0]) + len(sel))
        return sel

    @cached_property
    def fb_blocks(self) -> tuple[RowBlocks, np.ndarray] | None:
        """``(F_o, d)`` with ``F_b = F_o + diag(d)F_a`` when ``F_a`` is a contiguous selection and ``blocks`` is given:
        ``d`` the entries of ``F_b`` on the selected columns and ``F_o`` the rest, as its nonzero blocks
        (:class:`.RowBlocks`; row r of ``F_b`` belongs to the block of its selected column). None (dense products)
        otherwise, or when those blocks fill more than ``SPARSE_FILL`` of ``F_b``."""
        sel = self.selected
        if self.blocks is None or not isinstance(sel, slice):
            return None
        R = self.Fb.shape[0]
        rows = np.arange(R)
        d = self.Fb[rows, sel.start + rows].copy()
        Fo = self.Fb.copy()
        Fo[rows, sel.start + rows] = 0.0
        row_bounds = np.unique(np.clip(np.asarray(self.blocks) - sel.start, 0, R))
        pieces = RowBlocks.from_dense(Fo, row_bounds, np.asarray(self.blocks))
        fill = sum(block.size for _, _, block in pieces.pieces) / max(Fo.size, 1)
        return (pieces, d) if fill <= SPARSE_FILL else None

    def fb_left(self, X: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``F_b X`` into ``out`` (``R × N``)."""
        if self.fb_blocks is None:
            return np.matmul(self.Fb, X, out=out)
        Fo, d = self.fb_blocks
        Fo.left(X, out)
        out += d[:, None] * X[self.selected]
        return out

    def fb_right_transposed(self, Y: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``Y F_bᵀ`` into ``out`` (``Y.shape[0] × R``)."""
        if self.fb_blocks is None:
            return np.matmul(Y, self.Fb.T, out=out)
        Fo, d = self.fb_blocks
        Fo.right_transposed(Y, out)
        out += Y[:, self.selected] * d
        return out

    @cached_property
    def one_row_each(self) -> bool:
        """Whether ``G`` is the identity (every multiplier owns one row, as for separable layers)."""
        return self.G.shape[0] == self.G.shape[1] and np.array_equal(self.G, np.eye(self.G.shape[0]))

    def adjoint(self, rho: float, lam: np.ndarray) -> np.ndarray:
        """``𝒜ᵀt = −ρE₀ᵀE₀ + ½(F_aᵀ diag(w) F_b + F_bᵀ diag(w) F_a)``."""
        half = 0.5 * (lam if self.one_row_each else self.G @ lam)[:, None] * self.Fb  # ½ diag(w) F_b
        if self.selection is None:
            S = self.Fa.T @ half
            S += S.T.copy()
        else:  # ½ Eᵀ diag(w) F_b fills the selected rows, its transpose the selected columns
            S = np.empty((self.size, self.size))  # not np.zeros: calloc may map fresh pages, each a page fault
            S.fill(0.0)
            S[self.selected] = half
            S[:, self.selected] += half.T
        S[np.arange(self.m), np.arange(self.m)] -= rho
        return S

    def times_adjoint(self, X: np.ndarray, FbX: np.ndarray, rho: float, lam: np.ndarray) -> np.ndarray:
        """``X 𝒜ᵀt`` for symmetric ``X``, given ``FbX = F_b X``: with ``F_a = E`` (a selection) and ``Y = X Eᵀ diag(w/2)``,
        ``X𝒜ᵀt = Y F_b + (F_b X)ᵀ diag(w/2) E − ρ X E₀ᵀE₀``, whose one product goes over the nonzero blocks of
        ``F_b`` (:attr:`fb_blocks`); ``X @ adjoint(ρ, λ)`` where there are none."""
        if self.fb_blocks is None:
            return X @ self.adjoint(rho, lam)
        Fo, d = self.fb_blocks
        sel = self.selected
        half = 0.5 * (lam if self.one_row_each else self.G @ lam)
        Y = X[:, sel] * half
        out = Fo.right(Y, np.empty_like(X))
        out[:, sel] += Y * d  # Y diag(d) E
        out[:, sel] += FbX.T * half
        out[:, : self.m] -= rho * X[:, : self.m]
        return out

    def apply(self, K: np.ndarray) -> np.ndarray:
        """``𝒜(K)`` for symmetric ``K``: ``(−tr K_yy, Gᵀ rowsum(F_a ∘ (F_b K)))``."""
        if self.selection is None:
            rows = np.einsum("ij,ij->i", self.Fa, self.Fb @ K)
        else:  # a_rᵀ K b_r = (K b_r)[i_r] = Σ_j K[i_r, j] b_rj
            rows = np.einsum("ij,ij->i", K[self.selected], self.Fb)
        return np.concatenate([[-np.trace(K[: self.m, : self.m])], self.G.T @ rows])

    def schur(self, X: np.ndarray, W: np.ndarray, work: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """The HKM Schur complement ``H_ij = tr(A_i X A_j W)`` of the SDP block, ``(1 + p) × (1 + p)``.

        ``work`` (a dict, empty at first) keeps the ``R × N`` and ``R × R`` intermediates between calls, so that
        an iteration allocates none of them afresh (fresh large arrays cost page faults); the returned ``H`` is
        then one of them too, valid until the next call with the same ``work``."""
        m, Fa, Fb, G, sel = self.m, self.Fa, self.Fb, self.G, self.selected
        work = {} if work is None else work
        R, N, p = Fb.shape[0], self.size, G.shape[1]

        def buf(name: str, *shape: int) -> np.ndarray:
            if name not in work:
                work[name] = np.empty(shape)
            return work[name]

        FbX, FbW = self.fb_left(X, buf("FbX", R, N)), self.fb_left(W, buf("FbW", R, N))
        Xbb, Wbb = self.fb_right_transposed(FbX, buf("Xbb", R, R)), self.fb_right_transposed(FbW, buf("Wbb", R, R))
        if sel is None:
            FaX, FaW = np.matmul(Fa, X, out=buf("FaX", R, N)), np.matmul(Fa, W, out=buf("FaW", R, N))
            Xaa, Waa = np.matmul(FaX, Fa.T, out=buf("Xaa", R, R)), np.matmul(FaW, Fa.T, out=buf("Waa", R, R))
            XabT, WabT = np.matmul(FbX, Fa.T, out=buf("XabT", R, R)), np.matmul(FbW, Fa.T, out=buf("WabT", R, R))
        else:  # rows of the identity: products are selections
            FaX, FaW = X[sel], W[sel]
            Xaa, Waa = FaX[:, sel], FaW[:, sel]
            XabT, WabT = FbX[:, sel], FbW[:, sel]  # XabT[r, s] = b_rᵀ X a_s = Xab[s, r]
        # rows = ¼ (Xabᵀ ∘ Wab + Xbb ∘ Waa + Xaa ∘ Wbb + Xab ∘ Wabᵀ), and Xab ∘ Wabᵀ = Tᵀ for T = Xabᵀ ∘ Wab
        T = np.multiply(XabT, WabT.T, out=buf("T", R, R))
        rows = np.multiply(Xbb, Waa, out=buf("rows", R, R))
        rows += T
        rows += T.T
        rows += np.multiply(Xaa, Wbb, out=T)
        rows *= 0.25
        H = buf("H", 1 + p, 1 + p)
        if self.one_row_each:
            H[1:, 1:] = rows
        else:
            H[1:, 1:] = G.T @ rows @ G
        H[0, 0] = _inner(X[:m, :m], W[:m, :m])
        # H_0r = tr(A_0 X A_r W) = −½ (b_rᵀ W E₀ X a_r + a_rᵀ W E₀ X b_r), A_0 = −E₀ᵀE₀
        h0 = -0.5 * (np.einsum("ij,ij->i", FbW[:, :m], FaX[:, :m]) + np.einsum("ij,ij->i", FaW[:, :m], FbX[:, :m]))
        H[0, 1:] = H[1:, 0] = h0 if self.one_row_each else G.T @ h0
        return H


@dataclass(frozen=True)
class IPMResult:
    rho: float
    lam: np.ndarray
    status: str
    iterations: int
    gap: float
    primal_infeasibility: float
    dual_infeasibility: float
    seconds: float


def solve(problem: StructuredLMI, tol: float = 1e-6, max_iterations: int = 80,
          deadline: float | None = None, value_tol: float | None = VALUE_TOL) -> IPMResult:
    """Solve ``problem`` (see the module docstring); the status is ``"optimal"`` when the relative
    gap and both relative infeasibilities are below ``tol``, or when the *value test* passes, else the
    reason it stopped.

    The value test (``value_tol``; None switches it off): the iterate is dual feasible (relative
    ``R_d`` below ``tol``), the gap is below ``VALUE_GAP``, the last dual step was at least ``VALUE_STEP``
    and the ρ that the current multipliers prove (:func:`_provable_rho`) changed by at most ``value_tol``
    relative to the previous iteration. Near the end the interior-point iterates converge at least
    linearly with a small rate (measured: 5–20× per iteration), so the multipliers then prove a ρ within
    about ``value_tol`` of the optimum, long before the primal iterate is accurate. On the benchmark's nets at
    (m, n, K) = (20, 40, 4) (ISTA weights, LISTA and ALISTA trained, seeds 0–5 and 7: 21 nets) it stops after 12–18
    iterations instead of a tight solve's 19–30 (tol 1e-10), and the certified value stays within 4.2e-6
    (relative) of the tight one. ``5e-5`` saved half an iteration on average but let the error reach 6e-6 there
    and 1.3e-6 against Clarabel on a small ALISTA net (the tests hold 1e-6 there); ``1e-4`` reached 2e-5. Either
    way the multipliers only propose: the certificate is recomputed from them.

    Matrices up to ``SINGLE_THREAD_SIZE`` rows run on one BLAS thread: each product is too small to
    share, and on loaded cores a second thread made the whole solve 4–6× slower. The first call also fixes glibc's
    heap thresholds (:func:`.heap.keep_freed_memory`: no result changes, fewer page faults)."""
    start = time.perf_counter()
    heap.keep_freed_memory()
    with one_blas_thread(problem.size):
        return _solve(problem, tol, max_iterations, deadline, value_tol, start)


def one_blas_thread(size: int):
    """A context with one BLAS thread for matrices up to ``SINGLE_THREAD_SIZE`` rows (none for larger ones): their
    products are too small to share. The BLAS libraries are found once (:func:`_blas_controller`); looking them
    up on every call, as ``threadpool_limits`` does, cost a millisecond each time."""
    if size > SINGLE_THREAD_SIZE:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=1, user_api="blas")


@lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    """The BLAS libraries loaded in this process (numpy's and scipy's are: this module imports both)."""
    return ThreadpoolController()


def _solve(problem: StructuredLMI, tol: float, max_iterations: int, deadline: float | None, value_tol: float | None,
           start: float) -> IPMResult:
    N, p, m = problem.size, problem.num_multipliers, problem.m
    C0 = problem.c0()
    b = np.zeros(1 + p)
    b[0] = -1.0
    norm_c = float(np.linalg.norm(C0))
    a_norms = np.concatenate([[np.sqrt(m)], np.sqrt(problem.G.T @ (
        np.einsum("ij,ij->i", problem.Fa, problem.Fa) * np.einsum("ij,ij->i", problem.Fb, problem.Fb)))])
    xi = START_X * max(10.0, np.sqrt(N), N * float(np.max((1 + np.abs(b)) / (1 + a_norms))))
    eta = START_Z * max(10.0, np.sqrt(N), norm_c, float(a_norms.max()))
    X, Z = xi * np.eye(N), eta * np.eye(N)
    x, z = np.full(p, xi), np.full(p, eta)
    rho, lam = 0.0, np.zeros(p)
    nu = N + p
    status, iterations = "max_iterations", 0
    rho_c, ad = np.inf, 0.0  # the value the current multipliers prove (estimated), the last dual step
    gap = pinf = dinf = np.inf
    LX, LZ = np.sqrt(xi) * np.eye(N), np.sqrt(eta) * np.eye(N)
    start_vector = np.random.default_rng(0).standard_normal(N)  # deterministic: the same answer on every run
    lanczos = {"X": start_vector, "Z": start_vector}
    work: dict[str, np.ndarray] = {}  # the Schur complement's intermediates, reused by every iteration
    while iterations < max_iterations:
        iterations += 1
        AX = problem.apply(X)
        rp = b - AX
        rp[1:] += x
        Rd = problem.adjoint(rho, lam)
        Rd *= -1.0
        Rd += C0
        Rd -= Z  # R_d = C₀ − Z − 𝒜ᵀt
        rdl = lam - z
        mu = (_inner(X, Z) + float(x @ z)) / nu
        pobj, dobj = _inner(C0, X), -rho
        gap = abs(pobj - dobj) / (1 + abs(pobj) + abs(dobj))
        pinf = float(np.linalg.norm(rp)) / (1 + float(np.linalg.norm(b)))
        dinf = (float(np.linalg.norm(Rd)) + float(np.linalg.norm(rdl))) / (1 + norm_c)
        if gap < tol and pinf < tol and dinf < tol:
            status = "optimal"
            break
        if not np.isfinite(gap + pinf + dinf):
            status = "non_finite_iterate"
            break
        if deadline is not None and time.perf_counter() > deadline:
            status = "time_budget"
            break
        # inverse factors (for the step lengths) and W = Z⁻¹ = L_Z⁻ᵀL_Z⁻¹ from them
        # (LX and LZ are not needed again: their inverses overwrite them)
        (iX, info_x), (iZ, info_z) = lapack.dtrtri(LX, lower=1, overwrite_c=1), lapack.dtrtri(LZ, lower=1, overwrite_c=1)
        if info_x != 0 or info_z != 0:
            status = "slack_singular"
            break
        W = _symmetric_from_lower(lapack.dlauum(iZ, lower=1)[0])
        if value_tol is not None:
            rho_c, previous = _provable_rho(rho, W[:m, :m]), rho_c
            if (dinf < tol and gap < VALUE_GAP and ad >= VALUE_STEP and 0 < rho_c
                    and abs(previous - rho_c) <= value_tol * rho_c):
                status = "optimal"
                break
        H = problem.schur(X, W, work)
        factor = _factor_schur(H, x / z, work.setdefault("factor", np.empty_like(H)))
        if factor is None:
            status = "schur_complement_not_positive_definite"
            break
        # once a full dual step has been taken R_d is rounding noise: dropping it saves two products
        RdW = Rd @ W if dinf > 1e-13 else None
        point = _Point(X, x, Z, z, iX, iZ, W, work["FbX"], work["FbW"])
        residuals = _Residuals(rp, Rd, rdl, AX, RdW)
        try:
            dX, dt, dZ, dx, dz, WAt = _direction(problem, point, residuals, factor, 0.0)  # predictor (affine scaling)
            # its step lengths only set σ: to a few per cent
            ap, ad = _steps(point, dX, dZ, dx, dz, PREDICTOR_RTOL, lanczos)
            ap, ad = min(1.0, ap), min(1.0, ad)
            # ⟨X + a_pΔX, Z + a_dΔZ⟩ expanded: no N × N temporaries
            mu_aff = (_inner(X, Z) + ad * _inner(X, dZ) + ap * _inner(dX, Z) + ap * ad * _inner(dX, dZ)
                      + float((x + ap * dx) @ (z + ad * dz))) / nu
            sigma = min(1.0, max(0.0, mu_aff / mu) ** 3)  # Mehrotra's centring rule
            gamma = 0.9 + 0.09 * min(ap, ad)  # SDPT3's step-length factor: closer to the boundary after long steps
            corr = _corrector_term(dX, WAt, RdW)
            dX, dt, dZ, dx, dz, _ = _direction(problem, point, residuals, factor, sigma * mu, corr, dx * dz)  # corrector
            ap, ad = _steps(point, dX, dZ, dx, dz, CORRECTOR_RTOL, lanczos)  # the step that is taken
        except linalg.LinAlgError as exc:
            status = f"step_failed: {exc}"
            break
        ap, ad = min(1.0, gamma * ap), min(1.0, gamma * ad)
        LXn, ap = _step_into_cone(X, dX, ap, (iX, x, dx, gamma))
        LZn, ad = _step_into_cone(Z, dZ, ad, (iZ, z, dz, gamma))
        if LXn is None or LZn is None:
            status = "lost_positive_definiteness"
            break
        dX *= ap  # the directions are spent: the new iterates overwrite them
        dX += X
        dZ *= ad
        dZ += Z
        X, x, LX = dX, x + ap * dx, LXn
        Z, z, LZ = dZ, z + ad * dz, LZn
        rho, lam = rho + ad * dt[0], lam + ad * dt[1:]
    return IPMResult(rho=float(rho), lam=np.asarray(lam, dtype=float), status=status, iterations=iterations, gap=float(gap),
                     primal_infeasibility=float(pinf), dual_infeasibility=float(dinf),
                     seconds=time.perf_counter() - start)


def _provable_rho(rho: float, W_yy: np.ndarray) -> float:
    """The smallest ``ρ'`` with ``Z + (ρ' − ρ)E₀E₀ᵀ ⪰ 0`` for a dual-feasible iterate: ``ρ − 1/λ_max(W_yy)`` (the
    congruence by ``L_Z⁻¹`` turns it into ``I − s L_Z⁻¹E₀E₀ᵀL_Z⁻ᵀ ⪰ 0``, whose largest eigenvalue is that of
    ``E₀ᵀWE₀ = W_yy``): about the value that the current multipliers certify (:mod:`.certificate` recomputes it)."""
    top = float(np.linalg.eigvalsh(W_yy)[-1])
    return rho - 1.0 / top if top > 0 else np.inf


def _inner(A: np.ndarray, B: np.ndarray) -> float:
    """``⟨A, B⟩ = Σ A_ij B_ij`` (one BLAS dot over the flattened arrays)."""
    return float(np.vdot(A, B))


def _factor_schur(H: np.ndarray, diagonal: np.ndarray, out: np.ndarray | None = None):
    """Cholesky factor of the Schur complement plus ``diag(x/z)`` on the multiplier block, with a tiny diagonal
    regularisation if rounding made it indefinite; None if that fails too. ``out`` (shaped like ``H``) receives
    the factor if given."""
    H[1:, 1:][np.diag_indices(len(diagonal))] += diagonal
    out = np.empty_like(H) if out is None else out
    for attempt in range(2):
        try:
            np.copyto(out, H)
            return linalg.cho_factor(out, lower=True, overwrite_a=True, check_finite=False)
        except linalg.LinAlgError:
            if attempt:
                return None
            d = np.diag_indices_from(H)
            H[d] = H[d] * (1 + 1e-12) + 1e-14 * float(np.abs(H[d]).max())
    return None


@dataclass(frozen=True)
class _Point:
    """The current iterate: primal ``(X, x)``, dual slacks ``(Z, z)``, the inverses of their lower Cholesky
    factors, ``W = Z⁻¹``, and ``F_b X`` and ``F_b W`` (from the Schur complement)."""

    X: np.ndarray
    x: np.ndarray
    Z: np.ndarray
    z: np.ndarray
    iX: np.ndarray
    iZ: np.ndarray
    W: np.ndarray
    FbX: np.ndarray
    FbW: np.ndarray


@dataclass(frozen=True)
class _Residuals:
    """Primal ``r_p``, dual ``R_d`` and ``r_dl`` residuals, ``𝒜(X)`` and ``R_d W`` (None once ``R_d`` is noise)."""

    rp: np.ndarray
    Rd: np.ndarray
    rdl: np.ndarray
    AX: np.ndarray
    RdW: np.ndarray | None


def _direction(problem: StructuredLMI, pt: _Point, res: _Residuals, factor, sigma_mu: float,
               corr: np.ndarray | None = None, corr_lin: np.ndarray | None = None):
    """The HKM direction for the target ``σμ`` with Mehrotra's second-order terms ``corr = ΔX_aΔZ_aW``,
    ``corr_lin = Δx_aΔz_a``: ``ΔX = σμW − X − corr − X ΔZ W`` (symmetrised), ``ΔZ = R_d − 𝒜ᵀΔt``,
    ``Δx = (σμ − xz − corr_lin)/z − x Δz / z``, ``Δz = r_dl + Δλ``, and ``Δt`` from the Schur system; and for the
    predictor (``corr`` None) ``W𝒜ᵀΔt``, from which :func:`_corrector_term` forms ``corr`` (None for the
    corrector). The predictor's ``K = σμW − corr − XR_dW`` is usually zero, and is then left out."""
    X, x, z, W = pt.X, pt.x, pt.z, pt.W
    # (in place where possible: every fresh N × N array costs page faults)
    K = sigma_mu * W if sigma_mu != 0.0 else None
    if res.RdW is not None:
        K = -(X @ res.RdW) if K is None else np.subtract(K, X @ res.RdW, out=K)
    if corr is not None:
        K = -corr if K is None else np.subtract(K, corr, out=K)
    if K is not None:
        K = np.add(K, K.T)  # the symmetric part: ΔX is symmetrised anyway, and 𝒜 sees only it
        K *= 0.5
    target = sigma_mu - x * z - (corr_lin if corr_lin is not None else 0.0)
    rhs = res.rp + res.AX if K is None else res.rp - (problem.apply(K) - res.AX)  # 𝒜(K) − 𝒜(X)
    rhs[1:] += target / z - x * res.rdl / z
    dt = linalg.cho_solve(factor, rhs, check_finite=False)
    At = problem.adjoint(dt[0], dt[1:])
    XAt = problem.times_adjoint(X, pt.FbX, dt[0], dt[1:])
    XAtW = XAt @ W
    dX = np.add(XAtW, XAtW.T, out=XAt)  # ΔX = sym(K − X + X·𝒜ᵀΔt·W) = K − X + sym(X·𝒜ᵀΔt·W)
    dX *= 0.5
    if K is not None:
        dX += K
    dX -= X
    dz = res.rdl + dt[1:]
    At *= -1.0
    At += res.Rd
    WAt = problem.times_adjoint(W, pt.FbW, dt[0], dt[1:]) if corr is None else None
    return dX, dt, At, target / z - x * dz / z, dz, WAt


def _corrector_term(dX: np.ndarray, WAt: np.ndarray, RdW: np.ndarray | None) -> np.ndarray:
    """Mehrotra's ``ΔX ΔZ W`` for the predictor's ``ΔZ = R_d − 𝒜ᵀΔt``: ``ΔX R_dW − (W𝒜ᵀΔt ΔX)ᵀ`` (``ΔX``, ``W`` and
    ``𝒜ᵀΔt`` are symmetric), one dense product, as a transposed view."""
    corr = (WAt @ dX).T
    corr *= -1.0
    if RdW is not None:
        corr += dX @ RdW
    return corr


def _steps(pt: _Point, dX: np.ndarray, dZ: np.ndarray, dx: np.ndarray, dz: np.ndarray, rtol: float,
           starts: dict[str, np.ndarray]) -> tuple[float, float]:
    """The largest primal and dual steps that keep ``(X, x)`` and ``(Z, z)`` in their cones, each estimated from
    below to the relative accuracy ``rtol`` (:func:`_cone_step`)."""
    return (min(_cone_step(pt.iX, dX, rtol, starts, "X"), _lin_step(pt.x, dx)),
            min(_cone_step(pt.iZ, dZ, rtol, starts, "Z"), _lin_step(pt.z, dz)))


def _cone_step(iL: np.ndarray, D: np.ndarray, rtol: float, starts: dict[str, np.ndarray], cone: str) -> float:
    """The largest ``α ≤ ∞`` with ``LLᵀ + αD ⪰ 0``, given ``iL = L⁻¹`` (lower triangular): ``−1/λ_min(T)`` for
    ``T = L⁻¹DL⁻ᵀ``, with ``λ_min`` estimated from below by Lanczos (:func:`_smallest_eigenvalue`) on products
    ``v ↦ L⁻¹(D(L⁻ᵀv))`` (three matrix–vector products; ``T`` itself is formed only if Lanczos gives up), so the
    step is at most a fraction ``rtol`` short (the Cholesky factorisation of the step taken confirms it).
    ``starts[cone]`` keeps the last Ritz vector of that cone as the next start. A non-finite direction is refused
    before LAPACK sees it."""
    if not np.isfinite(D).all():
        raise linalg.LinAlgError("non-finite direction")
    iLt = iL.T

    def explicit() -> np.ndarray:
        T = blas.dtrmm(1.0, iL, blas.dtrmm(1.0, iL, D, lower=1).T, lower=1)  # L⁻¹ (L⁻¹D)ᵀ = L⁻¹DL⁻ᵀ
        if not np.isfinite(T).all():
            raise linalg.LinAlgError("the scaled direction L⁻¹DL⁻ᵀ is not finite")
        return T

    lam, starts[cone] = _smallest_eigenvalue(lambda v: iL @ (D @ (iLt @ v)), explicit, rtol, starts[cone])
    if not np.isfinite(lam):
        raise linalg.LinAlgError("the scaled direction L⁻¹DL⁻ᵀ is not finite")
    return -1.0 / lam if lam < 0 else np.inf


def _smallest_eigenvalue(matvec, explicit, rtol: float, start: np.ndarray) -> tuple[float, np.ndarray]:
    """A lower estimate ``θ − r`` of ``λ_min(T)`` and its Ritz vector, for the symmetric ``T`` that ``matvec``
    applies, by the Lanczos method with full reorthogonalisation from ``start``: ``θ`` is the smallest Ritz
    value (``θ ≥ λ_min``, Courant–Fischer) and ``r = β_k|s_k|`` its residual norm, so some eigenvalue lies in
    ``[θ − r, θ + r]`` (the residual bound of a Ritz pair; Parlett, *The Symmetric Eigenvalue Problem*). It
    stops once ``r ≤ rtol·|θ|``; if the Krylov space becomes invariant early, or Lanczos has not converged
    within ``LANCZOS_STEPS`` steps, ``λ_min`` of ``explicit()`` (the matrix ``T``) comes from LAPACK (``syevx``)."""
    n = start.shape[0]
    steps = min(n, LANCZOS_STEPS)
    Q = np.empty((steps, n))
    a, b = np.empty(steps), np.empty(steps)
    q = start / np.linalg.norm(start)
    for j in range(steps):
        Q[j] = q
        w = matvec(q)
        a[j] = q @ w
        basis = Q[: j + 1]
        w -= (basis @ w) @ basis
        w -= (basis @ w) @ basis  # twice is enough in floating point
        b[j] = math.sqrt(w @ w)
        if not math.isfinite(b[j]):
            break
        whole = j + 1 == n  # the Krylov space is the whole space: θ is λ_min
        if b[j] <= 1e-13 * (abs(a[j]) + (b[j - 1] if j else 0.0)) and not whole:
            break  # an invariant subspace: its Ritz values need not include λ_min
        if (j + 1) % 4 == 0 or j + 1 == steps:
            theta, s, info = lapack.dstev(a[: j + 1], b[:j], compute_v=1)  # ascending
            if info != 0:
                break
            residual = b[j] * abs(float(s[-1, 0]))
            if residual <= rtol * abs(float(theta[0])) or whole:
                return float(theta[0]) - residual, s[:, 0] @ basis
        if j + 1 < steps:
            q = w / b[j]
    w, v, _, _, info = lapack.dsyevx(explicit(), compute_v=1, range="I", il=1, iu=1, lower=1)
    if info != 0 or not np.isfinite(w[0]):
        raise linalg.LinAlgError(f"syevx failed (info {info})")
    return float(w[0]), v[:, 0]


def _symmetric_from_lower(A: np.ndarray) -> np.ndarray:
    """The symmetric matrix whose lower triangle is that of ``A``, in place (``A`` is overwritten)."""
    np.copyto(A, A.T, where=_strict_upper(A.shape[0]))  # numpy buffers the overlapping transpose first
    return A


@lru_cache(maxsize=8)
def _strict_upper(n: int) -> np.ndarray:
    """The boolean mask of the strict upper triangle of an ``n × n`` matrix (read only; computed once per size; a
    masked copy is five times faster than fancy indexing by ``triu_indices``)."""
    mask = np.triu(np.ones((n, n), dtype=bool), 1)
    mask.flags.writeable = False
    return mask


def _step_into_cone(X: np.ndarray, dX: np.ndarray, step: float,
                    exact: tuple[np.ndarray, np.ndarray, np.ndarray, float]) -> tuple[np.ndarray | None, float]:
    """The Cholesky factor of ``X + step·dX`` and the step. If the factorisation fails, the Lanczos estimate was
    too long (its Ritz vectors can miss ``λ_min`` of a badly conditioned ``L⁻¹ΔXL⁻ᵀ``): with ``exact = (L⁻¹, x,
    Δx, γ)`` the step becomes ``min(1, γ·α)`` for the exact largest step ``α`` (the dense smallest eigenvalue and
    the linear part), then halves (at most 8 times) while the factorisation still fails, which rounding in the
    step-length computation can cause at the boundary."""
    factor, info = lapack.dpotrf(X + step * dX, lower=1, clean=1)
    if info == 0:
        return factor, step
    iL, v, dv, gamma = exact
    step = min(step, 1.0, gamma * min(_exact_cone_step(iL, dX), _lin_step(v, dv)))
    for _ in range(9):
        factor, info = lapack.dpotrf(X + step * dX, lower=1, clean=1)
        if info == 0:
            return factor, step
        step *= 0.5
    return None, step


def _exact_cone_step(iL: np.ndarray, D: np.ndarray) -> float:
    """:func:`_cone_step` with ``λ_min`` from LAPACK (``syevx`` on the explicit ``L⁻¹DL⁻ᵀ``)."""
    T = blas.dtrmm(1.0, iL, blas.dtrmm(1.0, iL, D, lower=1).T, lower=1)
    if not np.isfinite(T).all():
        return 0.0
    w, _, _, _, info = lapack.dsyevx(T, compute_v=0, range="I", il=1, iu=1, lower=1)
    return -1.0 / float(w[0]) if info == 0 and w[0] < 0 else (np.inf if info == 0 else 0.0)


def _lin_step(v: np.ndarray, dv: np.ndarray) -> float:
    neg = dv < 0
    return float(np.min(-v[neg] / dv[neg])) if np.any(neg) else np.inf


__all__ = ["SINGLE_THREAD_SIZE", "IPMResult", "StructuredLMI", "one_blas_thread", "solve"]
