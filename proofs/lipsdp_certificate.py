"""Soundness of the LipSDP multiplier check (unfoldtheory/lipschitz/certificate.py).

Claims
------
1. **S-procedure.** For the quadratic form built in ``unfoldtheory.lipschitz.quadratic_form``,
   ``ξᵀ M(ρ, λ) ξ = ‖Δout‖² − ρ‖Δy‖² + Σ_i λ_i (Δz_i − α_iΔv_i)(β_iΔv_i − Δz_i)`` identically
   (checked symbolically on a two-layer, two-neuron graph with input injection and a generic slope
   range [α_i, β_i] per neuron, as ``RegionSlopes`` gives over a region). Hence ``M ⪯ 0`` and
   ``λ ≥ 0`` give ``‖Δout‖² ≤ ρ‖Δy‖²`` whenever every neuron obeys its slope restriction, i.e.
   ``L ≤ √ρ`` (Fazlyab et al., NeurIPS 2019, Theorem 2).
2. **Schur complement.** For ``M = [[a − ρ, b], [b, z]]`` with ``z < 0``:
   ``M ⪯ 0 ⟺ ρ ≥ a − b²/z`` — both eigenvalues are ≤ 0 exactly when the determinant is ≥ 0
   (the trace is then negative); checked symbolically. The block version (Boyd & Vandenberghe,
   *Convex Optimization*, A.5.5) is the same statement with ``b²/z`` replaced by ``BZ⁻¹Bᵀ``, and
   the check uses it with ``ρ* = λ_max(A − BZ⁻¹Bᵀ)``.
3. **Monotonicity in ρ.** ``M(ρ') = M(ρ) − (ρ' − ρ) E_0ᵀE_0`` with ``E_0ᵀE_0 ⪰ 0``, so a
   certified ρ stays certified when increased (used when the check moves past rounding).
4. **Rounding (shifted Cholesky, after Rump 2006).** If floating-point Cholesky succeeds on
   ``Ñ`` then ``RᵀR = Ñ + ΔA`` with ``|ΔA| ≤ γ|Rᵀ||R|`` (Higham, Theorem 10.3). Checked here:
   (a) for one diagonal entry, ``r = a + δ`` with ``|δ| ≤ γr`` and ``0 ≤ γ < 1`` gives
   ``r ≤ a/(1 − γ)``; (b) ``‖|Rᵀ||R|‖₂ ≤ ‖R‖_F² = tr(RᵀR)`` on a symbolic 2×2 triangular factor (the
   entries of ``|Rᵀ||R|`` are sums of products of ``|r_ij|``, and its trace equals ``‖R‖_F²``; a
   nonnegative symmetric matrix has spectral norm ≤ its Frobenius norm ≤ ... — the inequality
   ``λ_max(|R|ᵀ|R|) ≤ tr(|R|ᵀ|R|)`` holds because ``|R|ᵀ|R| ⪰ 0``); (c) the final assembly:
   ``N = RᵀR − ΔA + cI + E − δI ⪰ (c − a − e − d)I`` is ``⪰ 0`` when ``c = 2(a + e + d)`` for any
   nonnegative ``a, e, d``.
5. **Equilibration.** For ``S = diag(s)`` with ``s_i > 0``: ``xᵀ(S N S)x = (Sx)ᵀ N (Sx)`` and ``S`` is
   invertible, so ``S N S ⪰ 0 ⟺ N ⪰ 0``; with one scale ``s_y`` on the input block,
   ``S N(ρ) S = S N(0) S + s_y²ρ·E_yᵀE_y``, so the scaled check certifies ``ρ = ρ_scaled/s_y²``
   (checked on a symbolic 3×3 matrix with a one-dimensional input block). Multiplying a float64 by a
   power of two is exact when the result is normal, which the code checks entry by entry.
6. **Eliminated identity states** (``unfoldtheory/lipschitz/elimination.py``). (a) Composition: for a
   computed combined weight ``T̂`` of ``Σ_j W_j S_j`` with ``Ŝ_j = S_j − Δ_j``,
   ``T_true − T̂ = (Σ_j W_j Ŝ_j − T̂) + Σ_j W_j Δ_j``, so the error is at most the rounding of the products
   (Higham's ``γ_p Σ|W||Ŝ|``) plus ``Σ|W|E_j`` entrywise (checked on scalars, where the triangle
   inequality is the whole step). (b) Perturbation of the form: with ``F_a,true = F_a + A``,
   ``F_b,true = F_b + B``, ``F_a,trueᵀΛF_b,true − F_aᵀΛF_b = F_aᵀΛB + AᵀΛF_b + AᵀΛB`` identically
   (checked on 2×2 blocks), and likewise for ``CᵀC``; each entry is then bounded by the same products of
   absolute values, which is :meth:`QuadraticForm.sparse_perturbation`. (c) For a symmetric perturbation
   ``Π``, ``‖Π‖₂ ≤ ‖Π‖_F`` (the eigenvalues' squares sum to ``‖Π‖_F²``; checked on a symmetric 2×2), so
   adding ``‖SΠS‖_F`` to the assembly error ``e`` of item 4(c) keeps ``c ≥ 2(a + e + d)`` sufficient for
   the true matrix of the given network.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _check import check, finish


def s_procedure_identity() -> None:
    # input y (1-D), state z1 (2 neurons) reading y, state z2 (2 neurons) reading z1 and y; output C z2
    dy = sp.Symbol("dy", real=True)
    z1 = sp.Matrix(sp.symbols("z1_0 z1_1", real=True))
    z2 = sp.Matrix(sp.symbols("z2_0 z2_1", real=True))
    V1 = sp.Matrix(2, 1, sp.symbols("v1_0 v1_1", real=True))
    W2 = sp.Matrix(2, 2, sp.symbols("w_0 w_1 w_2 w_3", real=True))
    V2 = sp.Matrix(2, 1, sp.symbols("v2_0 v2_1", real=True))
    C = sp.Matrix(1, 2, sp.symbols("c_0 c_1", real=True))
    rho = sp.Symbol("rho", real=True)
    al = sp.symbols("alpha0:4", real=True)  # per-neuron slope ranges, as quadratic_form builds them
    be = sp.symbols("beta0:4", real=True)
    lam = sp.symbols("l0:4", real=True)
    xi = sp.Matrix([dy, *z1, *z2])
    # selection and pre-activation rows, as quadratic_form builds them
    E = sp.zeros(4, 5)
    for i in range(4):
        E[i, 1 + i] = 1
    P = sp.zeros(4, 5)
    P[0:2, 0:1] = V1
    P[2:4, 0:1] = V2
    P[2:4, 1:3] = W2
    Cfull = sp.zeros(1, 5)
    Cfull[0, 3:5] = C
    Fa, Fb = E - sp.diag(*al) * P, sp.diag(*be) * P - E
    S = Fa.T * sp.diag(*lam) * Fb
    M = Cfull.T * Cfull + (S + S.T) / 2
    M[0, 0] -= rho
    quad = sp.expand((xi.T * M * xi)[0, 0])
    dz = list(z1) + list(z2)
    dv = list(V1 * dy) + list(W2 * z1 + V2 * dy)
    direct = (C * z2)[0, 0] ** 2 - rho * dy**2 + sum(lam[i] * (dz[i] - al[i] * dv[i]) * (be[i] * dv[i] - dz[i])
                                                     for i in range(4))
    check("xiᵀ M(ρ, λ) xi equals ‖Δout‖² − ρ‖Δy‖² + Σ λ_i(Δz_i − α_iΔv_i)(β_iΔv_i − Δz_i), per-neuron (α_i, β_i)",
          sp.simplify(quad - sp.expand(direct)) == 0)


def schur_complement() -> None:
    a, b, rho = sp.symbols("a b rho", real=True)
    z = sp.Symbol("z", negative=True)
    M = sp.Matrix([[a - rho, b], [b, z]])
    det = sp.expand(M.det())
    threshold = a - b**2 / z
    # det = z (a − ρ) − b² = −z (ρ − threshold) ... ≥ 0 ⟺ ρ ≥ threshold since −z > 0
    check("det M = (−z)·(ρ − (a − b²/z))", sp.simplify(det - (-z) * (rho - threshold)) == 0)
    t = sp.Symbol("t", nonnegative=True)
    tr = sp.simplify(M.trace().subs(rho, threshold + t))
    # trace = a − ρ + z = b²/z − t + z < 0 because z < 0, b²/z ≤ 0, t ≥ 0
    check("trace(M) = b²/z − t + z is negative for t ≥ 0, z < 0", sp.simplify(tr - (b**2 / z - t + z)) == 0
          and (b**2 / z - t + z).is_negative is True)
    check("det(M) ≥ 0 at ρ = a − b²/z + t", sp.simplify(det.subs(rho, threshold + t) - (-z) * t) == 0)


def monotone_in_rho() -> None:
    r1, d = sp.Symbol("rho", real=True), sp.Symbol("delta", nonnegative=True)
    a, b, z, y, w = sp.symbols("a b z y w", real=True)
    M = lambda r: sp.Matrix([[a - r, b], [b, z]])  # noqa: E731
    v = sp.Matrix([y, w])
    diff = sp.expand((v.T * (M(r1 + d) - M(r1)) * v)[0, 0])
    check("vᵀ(M(ρ + δ) − M(ρ))v = −δ y² ≤ 0", sp.simplify(diff + d * y**2) == 0 and (-d * y**2).is_nonpositive is True)


def shifted_cholesky_rounding() -> None:
    # (a) one diagonal entry: r = a + δ, |δ| ≤ γ r  ⇒  r ≤ a / (1 − γ)
    r, g = sp.Symbol("r", nonnegative=True), sp.Symbol("gamma", nonnegative=True)
    s_slack = sp.Symbol("s", nonnegative=True)  # a = r − δ ≥ r − γ r  ⇒  a = r(1 − γ) + s
    a = r * (1 - g) + s_slack
    check("r ≤ a/(1 − γ) for a = r − δ, |δ| ≤ γr, 0 ≤ γ < 1 (slack form)",
          sp.simplify((a / (1 - g) - r) - s_slack / (1 - g)) == 0)
    # (b) λ_max(|R|ᵀ|R|) ≤ tr(|R|ᵀ|R|) = ‖R‖_F² for a 2×2 upper-triangular factor with entries ≥ 0
    p, q, t = sp.symbols("p q t", nonnegative=True)
    G = sp.Matrix([[p, q], [0, t]]).T * sp.Matrix([[p, q], [0, t]])
    eig = list(G.eigenvals())
    tr = G.trace()
    check("tr(|R|ᵀ|R|) = ‖R‖_F²", sp.expand(tr - (p**2 + q**2 + t**2)) == 0)
    # the two eigenvalues sum to the trace (≥ 0) and multiply to det = (pt)² ≥ 0, so both are ≥ 0 and
    # each is ≤ the trace: λ_max(|R|ᵀ|R|) = ‖|R|‖₂² ≤ ‖R‖_F²
    e1, e2 = (eig * 2)[:2] if len(eig) == 1 else eig
    check("eigenvalues of |R|ᵀ|R| sum to its trace", sp.simplify(e1 + e2 - tr) == 0)
    check("eigenvalues of |R|ᵀ|R| multiply to (pt)² ≥ 0", sp.simplify(sp.expand(e1 * e2) - (p * t) ** 2) == 0)
    # (c) assembly: c − (a + e + d) ≥ 0 when c = 2(a + e + d)
    aa, ee, dd = sp.symbols("a e d", nonnegative=True)
    c = 2 * (aa + ee + dd)
    check("c − ‖ΔA‖ − ‖E‖ − |δ| = a + e + d ≥ 0 for c = 2(a + e + d)", (c - aa - ee - dd).is_nonnegative is True)


def equilibration() -> None:
    n = sp.Matrix(3, 3, lambda i, j: sp.Symbol(f"n_{min(i, j)}{max(i, j)}", real=True))
    s = sp.symbols("s_y s_1 s_2", positive=True)
    x = sp.Matrix(sp.symbols("x0:3", real=True))
    S = sp.diag(*s)
    check("xᵀ(S N S)x = (Sx)ᵀ N (Sx)", sp.expand((x.T * S * n * S * x)[0, 0] - ((S * x).T * n * (S * x))[0, 0]) == 0)
    check("S is invertible (det S > 0)", S.det().is_positive is True)
    rho = sp.Symbol("rho", real=True)
    Ey = sp.diag(1, 0, 0)
    check("S (N + ρ E_yᵀE_y) S = S N S + s_y² ρ E_yᵀE_y",
          sp.expand(S * (n + rho * Ey) * S - (S * n * S + s[0] ** 2 * rho * Ey)) == sp.zeros(3, 3))


def eliminated_states() -> None:
    # (a) the composition error splits into rounding of the products and propagated error
    w, s_hat, delta, t_hat = sp.symbols("w s_hat delta t_hat", real=True)
    true = w * (s_hat + delta)
    check("T_true − T̂ = (W Ŝ − T̂) + W Δ", sp.expand(true - t_hat - ((w * s_hat - t_hat) + w * delta)) == 0)
    # (b) the perturbation identity of the quadratic form
    Fa = sp.Matrix(2, 2, sp.symbols("fa0:4", real=True))
    Fb = sp.Matrix(2, 2, sp.symbols("fb0:4", real=True))
    A = sp.Matrix(2, 2, sp.symbols("da0:4", real=True))
    B = sp.Matrix(2, 2, sp.symbols("db0:4", real=True))
    Lam = sp.diag(*sp.symbols("l0:2", nonnegative=True))
    lhs = (Fa + A).T * Lam * (Fb + B) - Fa.T * Lam * Fb
    rhs = Fa.T * Lam * B + A.T * Lam * Fb + A.T * Lam * B
    check("F_a,trueᵀΛF_b,true − F_aᵀΛF_b = F_aᵀΛB + AᵀΛF_b + AᵀΛB", sp.expand(lhs - rhs) == sp.zeros(2, 2))
    C = sp.Matrix(1, 2, sp.symbols("c0:2", real=True))
    dC = sp.Matrix(1, 2, sp.symbols("dc0:2", real=True))
    check("(C + ΔC)ᵀ(C + ΔC) − CᵀC = CᵀΔC + ΔCᵀC + ΔCᵀΔC",
          sp.expand((C + dC).T * (C + dC) - C.T * C - (C.T * dC + dC.T * C + dC.T * dC)) == sp.zeros(2, 2))
    # (c) ‖Π‖₂² ≤ ‖Π‖_F² for a symmetric 2×2: the squared eigenvalues sum to the squared Frobenius norm
    p, q, r = sp.symbols("p q r", real=True)
    Pi = sp.Matrix([[p, q], [q, r]])
    e1, e2 = list(Pi.eigenvals())
    check("λ₁² + λ₂² = ‖Π‖_F² (so each |λ| ≤ ‖Π‖_F)", sp.simplify(e1**2 + e2**2 - (p**2 + 2 * q**2 + r**2)) == 0)


if __name__ == "__main__":
    s_procedure_identity()
    schur_complement()
    monotone_in_rho()
    shifted_cholesky_rounding()
    equilibration()
    eliminated_states()
    finish()
