"""Checking LipSDP multipliers after the solve: the bound a given ``λ`` proves, in float64.

The solver only proposes multipliers. :func:`certify_multipliers` recomputes, from ``λ`` alone,
the smallest ``ρ`` with ``M(ρ, λ) ⪯ 0`` and then verifies that inequality with a rigorous
rounding margin. Soundness (``proofs/lipsdp_certificate.py``):

1. **S-procedure.** If ``λ ≥ 0`` and ``M(ρ, λ) ⪯ 0`` then for every pair of inputs
   ``‖Δout‖² − ρ‖Δy‖² ≤ −Σ_i λ_i (Δz_i − αΔv_i)(βΔv_i − Δz_i) ≤ 0``, so ``L ≤ √ρ``.
2. **Schur complement.** Write ``M(ρ) = [[A − ρI, B], [Bᵀ, Z]]`` (input block first). If ``Z ≺ 0``
   then ``M(ρ) ⪯ 0 ⟺ A − BZ⁻¹Bᵀ ⪯ ρI``; so ``ρ* = λ_max(A − BZ⁻¹Bᵀ)`` is the smallest feasible ρ.
   If ``Z`` is not negative definite no finite ρ is certified by this λ.
3. **Rounding.** ρ* is computed in floating point, so it is only a candidate. The candidate
   ``ρ_c = ρ* + margin`` is accepted only if ``λ_max(M(ρ_c))`` computed by a backward-stable
   symmetric eigensolver is below ``−τ``, where ``τ`` bounds both the eigensolver's error
   (``≤ c·D·ε·‖M‖_F``, D the matrix size) and the error of assembling M in float64
   (``≤ γ·‖|M|‖_F`` from the entrywise magnitudes, γ = (n + 2)ε/(1 − (n + 2)ε) for sums of n
   products). Then the exact ``M(ρ_c, λ)`` is negative semidefinite (Weyl's inequality), and
   ``L ≤ √ρ_c`` rounded upward.

A solver answer that is wrong, or inaccurate, can therefore never become a certified bound: the
worst it can do is propose multipliers that certify a larger value, or none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unfoldtheory.lipschitz.quadratic_form import QuadraticForm

EPS = float(np.finfo(float).eps)


@dataclass(frozen=True)
class MultiplierCheck:
    """Outcome of :func:`certify_multipliers`."""

    ok: bool
    rho: float  # the certified ρ (inf when not ok)
    bound: float  # √ρ rounded upward (inf when not ok)
    reason: str
    margin: float  # the rounding margin τ used


def certify_multipliers(form: QuadraticForm, lam: np.ndarray) -> MultiplierCheck:
    """The Lipschitz bound that multipliers ``lam`` (one per group of ``form``) prove, or why none."""
    lam = np.asarray(lam, dtype=float)
    if lam.shape != (form.num_multipliers,):
        raise ValueError(f"got {lam.shape} multipliers; expected ({form.num_multipliers},)")
    if not np.all(np.isfinite(lam)):
        return MultiplierCheck(False, np.inf, np.inf, "multipliers contain non-finite values", 0.0)
    if np.any(lam < 0):
        return MultiplierCheck(False, np.inf, np.inf, f"multiplier {int(np.argmin(lam))} is negative ({lam.min():.3g}); "
                               "the S-procedure needs λ ≥ 0", 0.0)
    m = form.m
    M0 = form.matrix(0.0, lam)
    A, B, Z = M0[:m, :m], M0[:m, m:], M0[m:, m:]
    try:
        chol = np.linalg.cholesky(-Z)
    except np.linalg.LinAlgError:
        return MultiplierCheck(False, np.inf, np.inf, "the state block Z of M is not negative definite for these "
                               "multipliers, so no finite ρ is certified", 0.0)
    Y = np.linalg.solve(chol, B.T)  # Bᵀ = chol Y  ⇒  B Z⁻¹ Bᵀ = −YᵀY
    schur = A + Y.T @ Y
    rho_star = float(np.linalg.eigvalsh(0.5 * (schur + schur.T))[-1])
    D = form.size
    n_terms = form.Fa.shape[0] + form.CtC.shape[0] + 2
    gamma = n_terms * EPS / (1 - n_terms * EPS)
    for attempt in range(8):
        rho_c = max(rho_star, 0.0) * (1 + 1e-9) + (10.0 ** attempt) * 1e-12 * (1 + abs(rho_star))
        M = form.matrix(rho_c, lam)
        tau = 8 * D * EPS * float(np.linalg.norm(M)) + gamma * float(np.linalg.norm(form.magnitude(rho_c, lam)))
        top = float(np.linalg.eigvalsh(M)[-1])
        if top < -tau:
            bound = float(np.nextafter(np.sqrt(rho_c), np.inf))
            return MultiplierCheck(True, rho_c, bound, "M(ρ, λ) ⪯ 0 verified with rounding margin", tau)
        rho_star = rho_c + 2 * (top + tau)  # move past the numerical boundary and retry
    return MultiplierCheck(False, np.inf, np.inf, f"could not verify M(ρ, λ) ⪯ 0 beyond the rounding margin {tau:.3g} "
                           f"(largest eigenvalue {top:.3g})", tau)
