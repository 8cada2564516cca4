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
up to several hundred rows, where it needs 15–25 iterations.

**Cost per iteration** (all float64, one BLAS thread, about 25 dense ``N × N`` operations): the inverse
Cholesky factors ``L_X⁻¹``, ``L_Z⁻¹`` (``trtri``) give ``W = L_Z⁻ᵀL_Z⁻¹`` (``lauum``) and every step length:
the corrector's largest ``α`` with ``X + αΔX ⪰ 0`` is ``−1/λ_min(L_X⁻¹ΔX L_X⁻ᵀ)``, two triangular products
and one smallest eigenvalue by bisection on the tridiagonal form (``syevx``); the predictor's, which only set
the centring parameter, come to 5 % from a bisection of Cholesky factorisations (each an order of magnitude
cheaper than the tridiagonal reduction). The new factors come from the Cholesky factorisation that confirms
each step.

The solver only proposes multipliers: :func:`~.certificate.certify_multipliers` recomputes the
bound they prove. Nothing it returns is trusted.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import linalg
from scipy.linalg import blas, lapack
from threadpoolctl import threadpool_limits

#: LipSDP matrices up to this many rows are solved on one BLAS thread (see :func:`solve`)
SINGLE_THREAD_SIZE = 1000


@dataclass(frozen=True)
class StructuredLMI:
    """``min ρ`` s.t. ``CᵀC − ρE₀ᵀE₀ + ½(F_aᵀ diag(Gλ) F_b + F_bᵀ diag(Gλ) F_a) + δ(I − E₀ᵀE₀) ⪯ 0``, ``λ ≥ 0``.

    ``CtC`` is ``N × N``, ``Fa`` and ``Fb`` are ``R × N`` and ``G`` is ``R × p`` (row → multiplier), all
    dense (the method is for sizes where dense BLAS beats sparse bookkeeping); the input block is the
    first ``m`` coordinates."""

    CtC: np.ndarray
    Fa: np.ndarray
    Fb: np.ndarray
    G: np.ndarray
    m: int
    strictness: float

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
    def one_row_each(self) -> bool:
        """Whether ``G`` is the identity (every multiplier owns one row, as for separable layers)."""
        return self.G.shape[0] == self.G.shape[1] and np.array_equal(self.G, np.eye(self.G.shape[0]))

    def adjoint(self, rho: float, lam: np.ndarray) -> np.ndarray:
        """``𝒜ᵀt = −ρE₀ᵀE₀ + ½(F_aᵀ diag(w) F_b + F_bᵀ diag(w) F_a)``."""
        wFb = (self.G @ lam)[:, None] * self.Fb
        if self.selection is None:
            S = self.Fa.T @ wFb
        else:
            S = np.zeros((self.size, self.size))
            S[self.selection] = wFb
        S = 0.5 * (S + S.T)
        S[np.arange(self.m), np.arange(self.m)] -= rho
        return S

    def apply(self, K: np.ndarray) -> np.ndarray:
        """``𝒜(K)`` for symmetric ``K``: ``(−tr K_yy, Gᵀ rowsum(F_a ∘ (F_b K)))``."""
        if self.selection is None:
            rows = np.einsum("ij,ij->i", self.Fa, self.Fb @ K)
        else:  # a_rᵀ K b_r = (K b_r)[i_r] = Σ_j K[i_r, j] b_rj
            rows = np.einsum("ij,ij->i", K[self.selection], self.Fb)
        return np.concatenate([[-np.trace(K[: self.m, : self.m])], self.G.T @ rows])

    def schur(self, X: np.ndarray, W: np.ndarray) -> np.ndarray:
        """The HKM Schur complement ``H_ij = tr(A_i X A_j W)`` of the SDP block, ``(1 + p) × (1 + p)``."""
        m, Fa, Fb, G, sel = self.m, self.Fa, self.Fb, self.G, self.selection
        FbX, FbW = Fb @ X, Fb @ W
        Xbb, Wbb = FbX @ Fb.T, FbW @ Fb.T
        if sel is None:
            FaX, FaW = Fa @ X, Fa @ W
            Xaa, Xab, Waa, Wab = FaX @ Fa.T, FaX @ Fb.T, FaW @ Fa.T, FaW @ Fb.T  # Xab[r, s] = a_rᵀ X b_s
        else:  # rows of the identity: products are selections
            FaX, FaW = X[sel], W[sel]
            Xaa, Waa = FaX[:, sel], FaW[:, sel]
            Xab, Wab = FbX[:, sel].T, FbW[:, sel].T
        rows = 0.25 * (Xab.T * Wab + Xbb * Waa + Xaa * Wbb + Xab * Wab.T)
        p = G.shape[1]
        H = np.empty((1 + p, 1 + p))
        H[1:, 1:] = rows if self.one_row_each else G.T @ rows @ G
        H[0, 0] = float(np.sum(X[:m, :m] * W[:m, :m]))
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
          deadline: float | None = None) -> IPMResult:
    """Solve ``problem`` (see the module docstring); the status is ``"optimal"`` when the relative
    gap and both relative infeasibilities are below ``tol``, else the reason it stopped.

    Matrices up to ``SINGLE_THREAD_SIZE`` rows run on one BLAS thread: each product is too small to
    share, and on loaded cores a second thread made the whole solve 4–6× slower."""
    start = time.perf_counter()
    limit = threadpool_limits(1, user_api="blas") if problem.size <= SINGLE_THREAD_SIZE else contextlib.nullcontext()
    with limit:
        return _solve(problem, tol, max_iterations, deadline, start)


def _solve(problem: StructuredLMI, tol: float, max_iterations: int, deadline: float | None, start: float) -> IPMResult:
    N, p, m = problem.size, problem.num_multipliers, problem.m
    C0 = problem.c0()
    b = np.zeros(1 + p)
    b[0] = -1.0
    norm_c = float(np.linalg.norm(C0))
    a_norms = np.concatenate([[np.sqrt(m)], np.sqrt(problem.G.T @ (
        np.einsum("ij,ij->i", problem.Fa, problem.Fa) * np.einsum("ij,ij->i", problem.Fb, problem.Fb)))])
    xi = max(10.0, np.sqrt(N), N * float(np.max((1 + np.abs(b)) / (1 + a_norms))))
    eta = max(10.0, np.sqrt(N), norm_c, float(a_norms.max()))
    X, Z = xi * np.eye(N), eta * np.eye(N)
    x, z = np.full(p, xi), np.full(p, eta)
    rho, lam = 0.0, np.zeros(p)
    nu = N + p
    status, iterations = "max_iterations", 0
    gap = pinf = dinf = np.inf
    LX, LZ = np.sqrt(xi) * np.eye(N), np.sqrt(eta) * np.eye(N)
    while iterations < max_iterations:
        iterations += 1
        AX = problem.apply(X)
        rp = b - AX
        rp[1:] += x
        Rd = C0 - Z - problem.adjoint(rho, lam)
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
        (iX, info_x), (iZ, info_z) = lapack.dtrtri(LX, lower=1), lapack.dtrtri(LZ, lower=1)
        if info_x != 0 or info_z != 0:
            status = "slack_singular"
            break
        W = _symmetric_from_lower(lapack.dlauum(iZ, lower=1)[0])
        factor = _factor_schur(problem.schur(X, W), x / z)
        if factor is None:
            status = "schur_complement_not_positive_definite"
            break
        # once a full dual step has been taken R_d is rounding noise: dropping it saves two products
        XRdW = X @ Rd @ W if dinf > 1e-13 else None
        point = _Point(X, x, Z, z, iX, iZ, W)
        residuals = _Residuals(rp, Rd, rdl, AX, XRdW)
        try:
            dX, dt, dZ, dx, dz = _direction(problem, point, residuals, factor, 0.0)  # predictor (affine scaling)
            # its step lengths only set σ: to 5 % by Cholesky bisection (cheaper than an eigenvalue)
            ap, ad = _cholesky_step(X, dX, x, dx, 1.0, 0.05), _cholesky_step(Z, dZ, z, dz, 1.0, 0.05)
            mu_aff = (_inner(X + ap * dX, Z + ad * dZ) + float((x + ap * dx) @ (z + ad * dz))) / nu
            sigma = min(1.0, max(0.0, mu_aff / mu) ** 3)  # Mehrotra's centring rule
            gamma = 0.9 + 0.09 * min(ap, ad)  # SDPT3's step-length factor: closer to the boundary after long steps
            dX, dt, dZ, dx, dz = _direction(problem, point, residuals, factor, sigma * mu, dX @ dZ, dx * dz)  # corrector
            ap, ad = _steps(point, dX, dZ, dx, dz)  # exact: the step that is taken
        except linalg.LinAlgError as exc:
            status = f"step_failed: {exc}"
            break
        ap, ad = min(1.0, gamma * ap), min(1.0, gamma * ad)
        LXn, ap = _step_into_cone(X, dX, ap)
        LZn, ad = _step_into_cone(Z, dZ, ad)
        if LXn is None or LZn is None:
            status = "lost_positive_definiteness"
            break
        X, x, LX = X + ap * dX, x + ap * dx, LXn
        Z, z, LZ = Z + ad * dZ, z + ad * dz, LZn
        rho, lam = rho + ad * dt[0], lam + ad * dt[1:]
    return IPMResult(rho=float(rho), lam=np.asarray(lam, dtype=float), status=status, iterations=iterations, gap=float(gap),
                     primal_infeasibility=float(pinf), dual_infeasibility=float(dinf),
                     seconds=time.perf_counter() - start)


def _inner(A: np.ndarray, B: np.ndarray) -> float:
    """``⟨A, B⟩ = Σ A_ij B_ij`` (one BLAS dot over the flattened arrays)."""
    return float(np.vdot(A, B))


def _factor_schur(H: np.ndarray, diagonal: np.ndarray):
    """Cholesky factor of the Schur complement plus ``diag(x/z)`` on the multiplier block, with a tiny diagonal
    regularisation if rounding made it indefinite; None if that fails too."""
    H[1:, 1:][np.diag_indices(len(diagonal))] += diagonal
    for attempt in range(2):
        try:
            return linalg.cho_factor(H, lower=True, check_finite=False)
        except linalg.LinAlgError:
            if attempt:
                return None
            d = np.diag_indices_from(H)
            H[d] = H[d] * (1 + 1e-12) + 1e-14 * float(np.abs(H[d]).max())
    return None


@dataclass(frozen=True)
class _Point:
    """The current iterate: primal ``(X, x)``, dual slacks ``(Z, z)``, the inverses of their lower Cholesky
    factors and ``W = Z⁻¹``."""

    X: np.ndarray
    x: np.ndarray
    Z: np.ndarray
    z: np.ndarray
    iX: np.ndarray
    iZ: np.ndarray
    W: np.ndarray


@dataclass(frozen=True)
class _Residuals:
    """Primal ``r_p``, dual ``R_d`` and ``r_dl`` residuals, ``𝒜(X)`` and ``X R_d W`` (None once ``R_d`` is noise)."""

    rp: np.ndarray
    Rd: np.ndarray
    rdl: np.ndarray
    AX: np.ndarray
    XRdW: np.ndarray | None


def _direction(problem: StructuredLMI, pt: _Point, res: _Residuals, factor, sigma_mu: float,
               corr: np.ndarray | None = None, corr_lin: np.ndarray | None = None):
    """The HKM direction for the target ``σμ`` with Mehrotra's second-order terms ``corr = ΔX_aΔZ_a``,
    ``corr_lin = Δx_aΔz_a``: ``ΔX = σμW − X − corr·W − X ΔZ W`` (symmetrised), ``ΔZ = R_d − 𝒜ᵀΔt``,
    ``Δx = (σμ − xz − corr_lin)/z − x Δz / z``, ``Δz = r_dl + Δλ``, and ``Δt`` from the Schur system."""
    X, x, z, W = pt.X, pt.x, pt.z, pt.W
    K = sigma_mu * W
    if res.XRdW is not None:
        K = K - res.XRdW
    if corr is not None:
        K = K - corr @ W
    target = sigma_mu - x * z - (corr_lin if corr_lin is not None else 0.0)
    rhs = res.rp - (problem.apply(0.5 * (K + K.T)) - res.AX)  # 𝒜(σμW − X − corr·W − XR_dW) = 𝒜(K) − 𝒜(X)
    rhs[1:] += target / z - x * res.rdl / z
    dt = linalg.cho_solve(factor, rhs, check_finite=False)
    At = problem.adjoint(dt[0], dt[1:])
    dX = K - X + X @ At @ W
    dz = res.rdl + dt[1:]
    return 0.5 * (dX + dX.T), dt, res.Rd - At, target / z - x * dz / z, dz


def _steps(pt: _Point, dX: np.ndarray, dZ: np.ndarray, dx: np.ndarray, dz: np.ndarray) -> tuple[float, float]:
    """The largest primal and dual steps that keep ``(X, x)`` and ``(Z, z)`` in their cones."""
    return (min(_max_step(pt.iX, dX), _lin_step(pt.x, dx)),
            min(_max_step(pt.iZ, dZ), _lin_step(pt.z, dz)))


def _max_step(iL: np.ndarray, D: np.ndarray) -> float:
    """The largest ``α ≤ ∞`` with ``LLᵀ + αD ⪰ 0``, given ``iL = L⁻¹`` (lower triangular): ``−1/λ_min(L⁻¹DL⁻ᵀ)``,
    the congruence by two triangular products and only the smallest eigenvalue computed (``syevx``,
    bisection on the tridiagonal form). A non-finite direction is refused before LAPACK sees it."""
    if not np.isfinite(D).all():
        raise linalg.LinAlgError("non-finite direction")
    T = blas.dtrmm(1.0, iL, blas.dtrmm(1.0, iL, D, lower=1).T, lower=1)  # L⁻¹ (L⁻¹D)ᵀ = L⁻¹DL⁻ᵀ
    if not np.isfinite(T).all():
        raise linalg.LinAlgError("the scaled direction L⁻¹DL⁻ᵀ is not finite")
    w, _, _, _, info = lapack.dsyevx(T, compute_v=0, range="I", il=1, iu=1, lower=1)
    if info != 0 or not np.isfinite(w[0]):
        raise linalg.LinAlgError(f"syevx failed (info {info})")
    return -1.0 / float(w[0]) if w[0] < 0 else np.inf


def _symmetric_from_lower(A: np.ndarray) -> np.ndarray:
    """The symmetric matrix whose lower triangle is that of ``A``."""
    lower = np.tril(A)
    return lower + np.tril(lower, -1).T


def _cholesky_step(X: np.ndarray, dX: np.ndarray, x: np.ndarray, dx: np.ndarray, upper: float, rtol: float) -> float:
    """A step ``α ≤ upper`` with ``X + αΔX ≻ 0`` (its Cholesky factorisation succeeds) and ``x + αΔx ≥ 0``, within
    the relative distance ``rtol`` of the largest one: ``upper`` itself if it passes, else bisection between the
    last passing and the first failing step (halving from the diagonal bound ``X_ii + αΔX_ii ≥ 0`` until one passes).
    Each trial is one Cholesky factorisation, an order of magnitude cheaper than a tridiagonal reduction."""
    if not np.isfinite(dX).all():
        raise linalg.LinAlgError("non-finite direction")
    d, dd = np.diagonal(X), np.diagonal(dX)
    hi = min(upper, _lin_step(x, dx), _lin_step(d, dd))
    if _positive_definite(X + hi * dX):
        return hi
    lo, trial, floor = 0.0, 0.5 * hi, 1e-12 * hi
    while trial > floor:
        if _positive_definite(X + trial * dX):
            lo = trial
            break
        hi, trial = trial, 0.5 * trial
    if lo == 0.0:
        return 0.0
    while hi > lo * (1 + rtol):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _positive_definite(X + mid * dX) else (lo, mid)
    return lo


def _positive_definite(A: np.ndarray) -> bool:
    return lapack.dpotrf(A, lower=1, clean=0, overwrite_a=1)[1] == 0


def _step_into_cone(X: np.ndarray, dX: np.ndarray, step: float) -> tuple[np.ndarray | None, float]:
    """The Cholesky factor of ``X + step·dX`` and the step, halving the step (at most 8 times) while the
    factorisation fails, which rounding in the step-length computation can cause at the boundary."""
    for _ in range(9):
        factor, info = lapack.dpotrf(X + step * dX, lower=1, clean=1)
        if info == 0:
            return factor, step
        step *= 0.5
    return None, step


def _lin_step(v: np.ndarray, dv: np.ndarray) -> float:
    neg = dv < 0
    return float(np.min(-v[neg] / dv[neg])) if np.any(neg) else np.inf


__all__ = ["SINGLE_THREAD_SIZE", "IPMResult", "StructuredLMI", "solve"]
