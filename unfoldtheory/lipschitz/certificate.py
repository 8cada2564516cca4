"""Checking LipSDP multipliers after the search: the bound a given ``λ`` proves, in float64.

A solver or a search only proposes multipliers. :func:`certify_multipliers` recomputes, from ``λ``
alone, the smallest ``ρ`` with ``M(ρ, λ) ⪯ 0`` and then verifies that inequality with a rigorous
rounding margin, by a block Cholesky factorisation that follows the network's graph
(:mod:`.block_cholesky`), so it scales to large unfolded networks. Soundness
(``proofs/lipsdp_certificate.py``):

1. **S-procedure.** If ``λ ≥ 0`` and ``M(ρ, λ) ⪯ 0`` then for every pair of inputs
   ``‖Δout‖² − ρ‖Δy‖² ≤ −Σ_i λ_i (Δz_i − αΔv_i)(βΔv_i − Δz_i) ≤ 0``, so ``L ≤ √ρ``.
2. **Schur complement.** Write ``N(ρ) = −M(ρ) = [[ρI − A, −B], [−Bᵀ, −Z]]``. If ``−Z ≻ 0`` then
   ``N(ρ) ⪰ 0 ⟺ ρI ⪰ A − BZ⁻¹Bᵀ``, so ``ρ* = λ_max(A − BZ⁻¹Bᵀ)`` is the smallest feasible ρ;
   the block elimination of the states computes ``−(A − BZ⁻¹Bᵀ)`` as the last Schur complement.
   If ``−Z`` is not positive definite, no finite ρ is certified by this λ.
3. **Rounding** (after Rump, *BIT* 46, 2006). ``ρ*`` is only a floating-point candidate. For a
   candidate ``ρ_c`` the check factors ``Ñ = fl(N(ρ_c)) − cI`` by Cholesky. If that succeeds, the
   computed factor satisfies ``RᵀR = Ñ + ΔA`` with ``|ΔA| ≤ γ_{D+2}|Rᵀ||R|`` (Higham, Theorem 10.3;
   ``D + 2`` because ``ρ_c`` enters the last diagonal block as one more summand), hence
   ``‖ΔA‖₂ ≤ γ‖R‖_F² = γ·tr(RᵀR) ≤ γ/(1 − γ)·tr(Ñ)``. With ``E`` the error of assembling ``N`` in
   float64 (``|E| ≤ γ_T·|M|`` entrywise for sums of at most ``T`` products, from the magnitudes of
   the summands) and ``δ`` the rounding of the shifted diagonal,
   ``N(ρ_c) = RᵀR − ΔA + cI + E − δ ⪰ (c − ‖ΔA‖₂ − ‖E‖_F − |δ|)I``, which is ``⪰ 0`` because ``c`` is
   chosen twice that sum. Then ``L ≤ √ρ_c`` rounded upward.
4. **Equilibration.** Multipliers of a strongly expanding network span many orders of magnitude, and
   a margin ``c`` proportional to ``tr(Ñ)`` would swamp the small pivots. The check therefore runs on
   ``S N S`` with ``S = diag(s)``, every ``s_i`` a power of two (each state's diagonal entry brought
   into ``[1, 4)``; one ``s_y`` for the whole input block, so ``S N(ρ) S = S N(0) S + s_y²ρ·I_y``).
   ``S`` is invertible, so ``S N S ⪰ 0 ⟺ N ⪰ 0`` (congruence), and the scaled matrix and its
   magnitude bound are formed *exactly*: each entry is multiplied once by ``s_i s_j``, a power of two,
   and the scaling is skipped if any product would leave the normal range. Items 1–3 then apply to
   ``S N S`` verbatim, and ``ρ_c = ρ_scaled / s_y²`` (exact).
5. **Eliminated identity states.** ``M`` is built from the combined weights of the eliminated
   identity states, which were rounded (:mod:`.elimination`). The true matrix ``M_true`` of the given
   network differs from the exact ``M`` of the computed weights by at most
   :meth:`QuadraticForm.sparse_perturbation` entrywise, so ``‖S(M_true − M)S‖₂ ≤ ‖S Π S‖_F``; that
   bound joins the assembly error ``E`` of item 3, and the shifted factorisation then proves
   ``N_true(ρ_c) ⪰ 0`` for the given network.

A solver answer that is wrong, or inaccurate, can therefore never become a certified bound: the
worst it can do is propose multipliers that certify a larger value, or none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg, sparse

from unfoldtheory.lipschitz.block_cholesky import factor_leading, lower_blocks
from unfoldtheory.lipschitz.quadratic_form import QuadraticForm
from unfoldtheory.lipschitz.quantity import QUANTITY
from unfoldtheory.results import Bound

EPS = float(np.finfo(float).eps)  # 2u: every γ below is computed with twice the unit roundoff
TINY = float(np.finfo(float).tiny)


def gamma(n: int) -> float:
    """Higham's ``γ_n = n·u/(1 − n·u)``, here with ``u`` replaced by ``ε = 2u`` (conservative)."""
    if n * EPS >= 0.5:
        raise ValueError(f"the matrix is too large ({n}) for the float64 rounding analysis")
    return n * EPS / (1 - n * EPS)


@dataclass(frozen=True)
class MultiplierCheck:
    """Outcome of :func:`certify_multipliers`."""

    ok: bool
    rho: float  # the certified ρ (inf when not ok)
    bound: float  # √ρ rounded upward (inf when not ok)
    reason: str
    margin: float  # the shift c used in the rounding argument


def _fail(reason: str, margin: float = 0.0) -> MultiplierCheck:
    return MultiplierCheck(False, np.inf, np.inf, reason, margin)


def certify_multipliers(form: QuadraticForm, lam: np.ndarray) -> MultiplierCheck:
    """The Lipschitz bound that multipliers ``lam`` (one per group of ``form``) prove, or why none."""
    lam = np.asarray(lam, dtype=float)
    if lam.shape != (form.num_multipliers,):
        raise ValueError(f"got {lam.shape} multipliers; expected ({form.num_multipliers},)")
    if not np.all(np.isfinite(lam)):
        return _fail("multipliers contain non-finite values")
    if np.any(lam < 0):
        return _fail(f"multiplier {int(np.argmin(lam))} is negative ({lam.min():.3g}); the S-procedure needs λ ≥ 0")
    m, D = form.m, form.size
    N0 = -form.sparse_matrix(0.0, lam)
    magnitude = form.sparse_magnitude(0.0, lam)
    peak = float(np.max(np.abs(magnitude.data), initial=0.0))
    if not np.isfinite(peak) or peak > 1e150:
        return _fail(f"the matrix entries are too large for a float64 check (largest magnitude {peak:.3g})")
    # states first, the input block last: the elimination order of the chordal structure
    bounds = [slice(int(a), int(b)) for a, b in zip(form.offsets[1:-1], form.offsets[2:], strict=True)] + [slice(0, m)]
    scale = state_scaling(N0.diagonal(), m)
    scaled = _scaled(N0, magnitude, scale)
    if scaled is None:  # a scaled entry would leave the normal range: check the unscaled matrix
        scale = np.ones(D)
        scaled = N0, magnitude
    blocks = lower_blocks(scaled[0], bounds)
    first = factor_leading(blocks)
    if not first.ok:
        return _fail(f"the state block Z of M is not negative definite for these multipliers (elimination failed at "
                     f"state block {first.failed_block + 1}), so no finite ρ is certified")
    rho_estimate = max(-float(linalg.eigvalsh(first.schur_last)[0]), 0.0)
    # the input block too: one power of two s_y for all of y, so that ρ enters as s_y²ρ·I
    s_y = _power_of_two_inverse_sqrt(max(rho_estimate, float(np.max(np.abs(N0.diagonal()[:m]), initial=0.0))))
    scale[:m] = s_y
    rescaled = _scaled(N0, magnitude, scale)
    if rescaled is not None:
        scaled = rescaled
        blocks = lower_blocks(scaled[0], bounds)
    else:
        scale[:m], s_y = 1.0, 1.0
    perturbation = _scaled_frobenius(form.sparse_perturbation(lam), scale)
    if not np.isfinite(perturbation):
        return _fail("the error bound of the eliminated identity states' combined weights overflows float64")
    result = _shifted_check(form, blocks, scaled[0].diagonal(), scaled[1], s_y**2 * rho_estimate, perturbation)
    if not result.ok:
        if perturbation > 0:
            return _fail(f"{result.reason}; the margin includes {perturbation:.3g} (scaled units) for the rounding of "
                         "the combined weights of the eliminated identity states", result.margin)
        return result
    rho_c = result.rho / s_y**2  # exact division by a power of two, unless the quotient is subnormal:
    if 0.0 < rho_c < TINY:  # then it may have been rounded down, so step up by one unit
        rho_c = float(np.nextafter(rho_c, np.inf))
    bound = float(np.nextafter(np.sqrt(rho_c), np.inf))
    return MultiplierCheck(True, rho_c, bound, result.reason, result.margin / s_y**2)


def _power_of_two_inverse_sqrt(value: float) -> float:
    """``2^e`` with ``2^{2e}·value ∈ [1, 4)`` (``1`` for zero or non-finite values), ``|e| ≤ 500``."""
    return float(_powers_of_two_inverse_sqrt(np.array([value], dtype=float))[0])


def state_scaling(diagonal: np.ndarray, m: int) -> np.ndarray:
    """Diagonal congruence ``S`` of powers of two that brings each state's diagonal entry of ``−M`` into
    ``[1, 4)`` (Jacobi equilibration); the input block keeps scale 1 here."""
    scale = np.ones(diagonal.shape[0])
    scale[m:] = _powers_of_two_inverse_sqrt(np.asarray(diagonal[m:], dtype=float))
    return scale


def _powers_of_two_inverse_sqrt(values: np.ndarray) -> np.ndarray:
    """:func:`_power_of_two_inverse_sqrt` of every entry: ``2^e`` with ``2^{2e}·v ∈ [1, 4)`` (up to ``log2``'s
    rounding just below a power of two), ``1`` for zero, negative or non-finite entries, ``|e| ≤ 500``."""
    out = np.ones(values.shape)
    good = (values > 0) & np.isfinite(values)
    out[good] = np.ldexp(1.0, np.clip(-np.floor(np.log2(values[good]) / 2), -500, 500).astype(int))
    return out


def _scaled(N0: sparse.csr_matrix, magnitude: sparse.csr_matrix, scale: np.ndarray):
    """``(S N0 S, S |M| S)``, exact: each entry is multiplied once by ``s_i s_j``, a power of two (itself
    exact, the exponents being at most 500 in size), which is exact unless the product leaves the normal
    floating-point range; None if some nonzero entry would (then the scaling would round)."""
    out = []
    for matrix in (N0, magnitude):
        coo = matrix.tocoo()
        data = coo.data * (scale[coo.row] * scale[coo.col])
        values = np.abs(data[coo.data != 0])
        if np.any(values < TINY) or not np.all(np.isfinite(values)):
            return None
        out.append(sparse.csr_matrix((data, (coo.row, coo.col)), shape=matrix.shape))
    return out[0], out[1]


def _scaled_frobenius(perturbation: sparse.csr_matrix | None, scale: np.ndarray) -> float:
    """An upper bound on ``‖S Π S‖_F`` (0 for no perturbation): the scaled entries, their squares and their sum
    are formed from nonnegative numbers in round-to-nearest, hence the factor ``1 + γ`` and the absolute
    ``TINY`` terms for entries that underflow."""
    if perturbation is None or perturbation.nnz == 0:
        return 0.0
    coo = perturbation.tocoo()
    data = np.abs(coo.data) * (scale[coo.row] * scale[coo.col])
    peak = float(np.max(data, initial=0.0))
    if peak == 0.0:
        return float(coo.nnz) * TINY
    total = float(np.sum((data / peak) ** 2)) * (1 + gamma(coo.nnz + 4))
    return float(np.nextafter(peak * np.sqrt(total) * (1 + 4 * EPS), np.inf)) + coo.nnz * TINY


def _shifted_check(form: QuadraticForm, blocks: dict, diag: np.ndarray, magnitude: sparse.csr_matrix,
                   rho_c: float, perturbation: float = 0.0) -> MultiplierCheck:
    """Item 3 of the module docstring on the (scaled) matrix: the smallest ``ρ ≥ rho_c`` (in the scaled
    units) for which the shifted Cholesky factorisation proves ``N(ρ) ⪰ 0``. ``perturbation`` bounds
    ``‖S(M_true − M)S‖_F``, the error from the eliminated identity states (item 6), and joins the assembly
    error."""
    m, D = form.m, form.size
    g_terms = gamma(form.terms)
    peak = float(np.max(magnitude.data, initial=0.0))
    frobenius = peak * float(np.sqrt(np.sum((magnitude.data / peak) ** 2))) if peak > 0 else 0.0
    assembly = g_terms * frobenius * (1 + gamma(magnitude.nnz + 2)) * (1 + g_terms) + perturbation
    g_chol = gamma(D + 2)
    c = 0.0
    for _ in range(12):
        trace = (float(np.sum(np.abs(diag))) + m * rho_c) * (1 + gamma(D + 1))
        rounding_diag = 2 * EPS * (float(np.max(np.abs(diag), initial=0.0)) + rho_c + c)
        c = 2 * (g_chol / (1 - g_chol) * trace + assembly + rounding_diag) + D * (D + 2) * TINY
        shifted = factor_leading(blocks, shift=c)
        if not shifted.ok:
            return _fail(f"the state block Z of M is negative definite only within the rounding margin {c:.3g} "
                         f"(elimination failed at state block {shifted.failed_block + 1})", c)
        need = -float(linalg.eigvalsh(shifted.schur_last)[0])
        if rho_c <= need:
            rho_c = need * (1 + 1e-12) + 1e-15 * (1 + abs(need))
            continue  # the margin depends on ρ_c: recompute it for the new candidate
        last = shifted.schur_last.copy()
        last[np.diag_indices_from(last)] += rho_c
        try:
            linalg.cholesky(last, lower=True, check_finite=False)
        except linalg.LinAlgError:
            rho_c = rho_c * (1 + 1e-9) + 1e-12 * (1 + rho_c)
            continue
        return MultiplierCheck(True, rho_c, float(np.nextafter(np.sqrt(rho_c), np.inf)),
                               "M(ρ, λ) ⪯ 0 verified by a shifted Cholesky factorisation with rounding margin, after an "
                               "exact power-of-two equilibration", c)
    return _fail(f"could not verify M(ρ, λ) ⪯ 0 beyond the rounding margin {c:.3g}", c)


def bound_from_multipliers(form: QuadraticForm, multipliers: np.ndarray, method: str, start: float,
                           details: dict[str, Any] | None = None) -> Bound:
    """The :class:`Bound` that ``multipliers`` prove, certified only if :func:`certify_multipliers` passes
    (``start`` is the ``time.perf_counter()`` at which the method began)."""
    check = certify_multipliers(form, multipliers)
    value = check.bound if check.ok else np.inf
    certificate = {"multipliers": multipliers, "rho": check.rho} if check.ok else {"multipliers": multipliers}
    status = (details or {}).get("status")
    reason = "" if check.ok else (f"solver status {status!r}; " if status not in (None, "optimal") else "") + check.reason
    return Bound(value, "upper", QUANTITY, method, check.ok, certificate, time.perf_counter() - start,
                 {**(details or {}), "check": check.reason, "rounding_margin": check.margin,
                  "matrix_size": form.size, "num_multipliers": form.num_multipliers}, reason=reason)
