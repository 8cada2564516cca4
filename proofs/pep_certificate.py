"""Soundness of the PEP multiplier check (unfoldtheory/convergence/pep_certificate.py).

Claims
------
1. **Interpolation rows are necessary.** For f in F_{mu,L} (0 <= mu < L), h = f - mu/2||.||^2 is
   convex and (L - mu)-smooth, so h_i >= h_j + <grad h_j, x_i - x_j> + ||grad h_i - grad h_j||^2/(2(L - mu))
   for every pair (Nesterov, *Introductory Lectures on Convex Optimization*, Thm. 2.1.5).
   Substituting h_i = f_i - mu/2||x_i||^2, grad h_i = g_i - mu x_i gives exactly the row of
   ``interpolation.py``: f_j - f_i + <g_j, x_i - x_j> + mu/2||x_i - x_j||^2
   + ||g_i - g_j - mu(x_i - x_j)||^2/(2(L - mu)) <= 0 (checked in R^3).  It is also the
   inequality of Taylor, Hendrickx & Glineur 2017, Thm. 4 (checked).  For convex h the row is
   the subgradient inequality itself.
2. **Weak duality.** With S = tau e0 e0^T - C + sum_p lambda_p Q_p and sum_p lambda_p a_p = c,
   <C, G> + c.F - tau G_00 = sum_p lambda_p (<Q_p, G> + a_p.F) - <S, G>
   (generic 3x3 instance, three rows, symbolic data).  Every row is <= 0 on every run of the
   method and lambda >= 0; <S, G> = ||R^T T||_F^2 >= 0 when S = R R^T, G = T T^T (checked).
   Hence objective <= tau ||x_0 - x*||^2 whenever lambda >= 0, the equalities hold and S >= 0.
3. **Equality repair.** Moving the residual e of one value equation onto its two rows
   (x*, m) (coefficient c_in > 0) and (m, x*) (coefficient c_out < 0), as ``balance_values``
   does, makes the equation exact and keeps both multipliers >= 0 (all four branches).
4. **Smallest tau.** For S(tau) = [[B00 + tau, b^T], [b, B_rr]] with B_rr invertible,
   E^T S(tau) E = diag(B00 + tau - b^T B_rr^{-1} b, B_rr) for E = [[1, 0], [-B_rr^{-1} b, I]]
   (checked with a 2x2 B_rr).  So with B_rr > 0, S(tau) > 0 iff tau > tau* = b^T B_rr^{-1} b - B00.
5. **LDL^T.** The pivots d_k of symmetric elimination satisfy S = L diag(d) L^T with L unit lower
   triangular (generic 3x3); x^T S x = sum_k d_k (L^T x)_k^2, so all d_k > 0 iff S > 0.
6. **WLOG grad f(x*) = 0 for the proximal method.** Tilting f by -<c, x> and h by +<c, x> leaves
   both rows unchanged (checked in R^3), F = f + h unchanged, and the prox step unchanged:
   v - x - eta(s + c) = (v - eta c) - x - eta s, i.e. prox_{eta(h + <c,.>)}(v) = prox_{eta h}(v - eta c).
7. **Rounding (float route).** If the computed smallest eigenvalue of the float64 matrix exceeds
   2 gamma_D ||M||_F + 4 d^2 u ||S_hat||_F, the exact S is positive definite: Weyl's inequality
   lambda_min(S) >= lambda_min(S_hat) - ||S - S_hat||_2 with the assembly bound of Higham,
   *Accuracy and Stability of Numerical Algorithms*, Lemma 3.1, and the eigensolver's backward
   error (stated, not symbolic; see the module docstring of pep_certificate.py).
"""

import sympy as sp
from _check import check, finish, is_nonneg, is_pos, is_zero, section

mu = sp.Symbol("mu", nonnegative=True)
D = sp.Symbol("D", positive=True)  # L - mu
L = mu + D


def vec(name: str) -> sp.Matrix:
    return sp.Matrix(sp.symbols(f"{name}1:4", real=True))


def row_smooth(fi, fj, xi, xj, gi, gj):
    """The row of interpolation.py for F_{mu,L} (<= 0 form)."""
    dx, dg = xi - xj, gi - gj
    shifted = dg - mu * dx
    return fj - fi + gj.dot(dx) + mu / 2 * dx.dot(dx) + shifted.dot(shifted) / (2 * D)


def interpolation_rows() -> None:
    section("1. the F_{mu,L} row is the smooth convex inequality of h = f - mu/2||x||^2, and THG's")
    xi, xj, gi, gj = vec("xi"), vec("xj"), vec("gi"), vec("gj")
    fi, fj = sp.symbols("f_i f_j", real=True)
    hi, hj = fi - mu / 2 * xi.dot(xi), fj - mu / 2 * xj.dot(xj)
    ghi, ghj = gi - mu * xi, gj - mu * xj
    h_row = hj - hi + ghj.dot(xi - xj) + (ghi - ghj).dot(ghi - ghj) / (2 * D)
    ours = row_smooth(fi, fj, xi, xj, gi, gj)
    check("h_j - h_i + <grad h_j, x_i - x_j> + ||grad h_i - grad h_j||^2/(2(L - mu)) equals the row",
          is_zero(sp.expand(h_row - ours)))
    c = 1 / (2 * (1 - mu / L))
    thg = fj - fi + gj.dot(xi - xj) + c * ((gi - gj).dot(gi - gj) / L + mu * (xi - xj).dot(xi - xj)
                                          - 2 * mu / L * (gj - gi).dot(xj - xi))
    check("equals Taylor-Hendrickx-Glineur's form with c = 1/(2(1 - mu/L))", is_zero(sp.simplify(thg - ours)))


def weak_duality() -> None:
    section("2. objective - tau G00 = sum_p lambda_p row_p - <S, G>; <S, G> >= 0 for S, G >= 0")
    d, n_rows = 3, 3

    def sym(name):
        entries = sp.symbols(f"{name}_0:{d * (d + 1) // 2}", real=True)
        M, it = sp.zeros(d, d), iter(entries)
        for i in range(d):
            for j in range(i, d):
                M[i, j] = M[j, i] = next(it)
        return M

    G, C = sym("G"), sym("C")
    Qs = [sym(f"Q{p}") for p in range(n_rows)]
    F = sp.Matrix(sp.symbols("F1:3", real=True))
    a = [sp.Matrix(sp.symbols(f"a{p}_1:3", real=True)) for p in range(n_rows)]
    lam = sp.symbols(f"lambda0:{n_rows}", nonnegative=True)
    tau = sp.Symbol("tau", real=True)
    c = sum((lam[p] * a[p] for p in range(n_rows)), sp.zeros(2, 1))  # the equalities, substituted
    E00 = sp.zeros(d, d)
    E00[0, 0] = 1
    S = tau * E00 - C + sum((lam[p] * Qs[p] for p in range(n_rows)), sp.zeros(d, d))

    def inner(A, B):
        return (A.T * B).trace()

    lhs = inner(C, G) + c.dot(F) - tau * G[0, 0]
    rhs = sum(lam[p] * (inner(Qs[p], G) + a[p].dot(F)) for p in range(n_rows)) - inner(S, G)
    check("<C,G> + c.F - tau G00 = sum_p lambda_p(<Q_p,G> + a_p.F) - <S,G> when sum lambda_p a_p = c",
          is_zero(sp.expand(lhs - rhs)))
    R = sp.Matrix(d, d, sp.symbols(f"r0:{d * d}", real=True))
    T = sp.Matrix(d, d, sp.symbols(f"t0:{d * d}", real=True))
    RtT = R.T * T
    check("<R R^T, T T^T> = ||R^T T||_F^2 (a sum of squares)",
          is_zero(sp.expand(inner(R * R.T, T * T.T) - sum(e**2 for e in RtT))))


def equality_repair() -> None:
    section("3. the residual moved onto rows (x*, m), (m, x*) keeps lambda >= 0 and fixes the equation")
    l_in, l_out, s1, s2 = sp.symbols("l_in l_out s1 s2", nonnegative=True)
    c_in, kk = sp.symbols("c_in kk", positive=True)
    c_out = -kk

    def total(a, b):
        return c_in * a + c_out * b

    # residual e > 0, lambda_out covers it: e = kk (l_out - s1), new l_out = s1
    e = kk * (l_out - s1)
    check("e > 0, l_out >= e/|c_out|: l_out' = l_out - e/|c_out| >= 0 and the sum rises by e",
          is_zero(total(l_in, l_out - e / kk) - total(l_in, l_out) - e) and is_nonneg(l_out - e / kk))
    # residual e > 0, lambda_out does not cover it: e = kk l_out + s2 with s2 > 0
    e = kk * l_out + s2
    new_in = l_in + (e - l_out * kk) / c_in
    check("e > 0, l_out < e/|c_out|: l_out' = 0, l_in' = l_in + (e - |c_out| l_out)/c_in >= 0, sum rises by e",
          is_zero(total(new_in, 0) - total(l_in, l_out) - e) and is_nonneg(new_in))
    e = -c_in * (l_in - s1)  # e < 0, lambda_in covers it
    check("e < 0, l_in >= -e/c_in: l_in' = l_in + e/c_in >= 0 and the sum falls by |e|",
          is_zero(total(l_in + e / c_in, l_out) - total(l_in, l_out) - e) and is_nonneg(l_in + e / c_in))
    e = -(c_in * l_in + s2)
    new_out = l_out + (-e - l_in * c_in) / kk
    check("e < 0, l_in < -e/c_in: l_in' = 0, l_out' = l_out + (-e - c_in l_in)/|c_out| >= 0, sum falls by |e|",
          is_zero(total(0, new_out) - total(l_in, l_out) - e) and is_nonneg(new_out))


def smallest_tau() -> None:
    section("4. Schur complement: S(tau) > 0 iff B_rr > 0 and tau > b^T B_rr^-1 b - B00")
    B00, tau = sp.symbols("B00 tau", real=True)
    b = sp.Matrix(sp.symbols("b1:3", real=True))
    p, q, r = sp.symbols("p q r", real=True)
    Brr = sp.Matrix([[p, q], [q, r]])
    S = sp.Matrix(sp.BlockMatrix([[sp.Matrix([[B00 + tau]]), b.T], [b, Brr]]))
    E = sp.Matrix(sp.BlockMatrix([[sp.eye(1), sp.zeros(1, 2)], [-Brr.inv() * b, sp.eye(2)]]))
    schur = B00 + tau - (b.T * Brr.inv() * b)[0, 0]
    target = sp.diag(schur, Brr)
    check("E^T S(tau) E = diag(B00 + tau - b^T B_rr^-1 b, B_rr)", is_zero(sp.simplify(E.T * S * E - target).norm()))
    delta = sp.Symbol("delta", positive=True)
    check("the (0,0) block at tau = tau* + delta is delta > 0",
          is_pos(sp.simplify(schur.subs(tau, (b.T * Brr.inv() * b)[0, 0] - B00 + delta))))


def ldl() -> None:
    section("5. symmetric elimination: S = L diag(pivots) L^T")
    s = sp.symbols("s11 s12 s13 s22 s23 s33", real=True)
    S = sp.Matrix([[s[0], s[1], s[2]], [s[1], s[3], s[4]], [s[2], s[4], s[5]]])
    A = S.copy()
    Lm = sp.eye(3)
    pivots = []
    for k in range(3):
        pivots.append(A[k, k])
        for i in range(k + 1, 3):
            Lm[i, k] = A[i, k] / A[k, k]
            for j in range(k + 1, 3):
                A[i, j] = A[i, j] - Lm[i, k] * A[k, j]
    check("S = L diag(d) L^T for the pivots of symmetric elimination",
          is_zero(sp.simplify(Lm * sp.diag(*pivots) * Lm.T - S).norm()))
    x = sp.Matrix(sp.symbols("x1:4", real=True))
    y = Lm.T * x
    check("x^T S x = sum_k d_k (L^T x)_k^2",
          is_zero(sp.simplify((x.T * S * x)[0, 0] - sum(pivots[k] * y[k] ** 2 for k in range(3)))))


def tilt_invariance() -> None:
    section("6. tilting f by -<c,x> and h by +<c,x> changes no row and no prox step")
    xi, xj, gi, gj, cvec = vec("xi"), vec("xj"), vec("gi"), vec("gj"), vec("c")
    fi, fj = sp.symbols("f_i f_j", real=True)
    tilted = row_smooth(fi - cvec.dot(xi), fj - cvec.dot(xj), xi, xj, gi - cvec, gj - cvec)
    check("F_{mu,L} row of f - <c,.> (gradients g - c) equals that of f",
          is_zero(sp.expand(tilted - row_smooth(fi, fj, xi, xj, gi, gj))))
    sj = vec("sj")
    hi, hj = sp.symbols("h_i h_j", real=True)
    conv = hj - hi + sj.dot(xi - xj)
    conv_t = (hj + cvec.dot(xj)) - (hi + cvec.dot(xi)) + (sj + cvec).dot(xi - xj)
    check("convex row of h + <c,.> (subgradients s + c) equals that of h", is_zero(sp.expand(conv_t - conv)))
    v, x, s_ = vec("v"), vec("x"), vec("s")
    eta = sp.Symbol("eta", positive=True)
    check("v - x - eta(s + c) = (v - eta c) - x - eta s: prox_{eta(h + <c,.>)}(v) = prox_{eta h}(v - eta c)",
          is_zero((v - x - eta * (s_ + cvec) - ((v - eta * cvec) - x - eta * s_)).norm()))


if __name__ == "__main__":
    interpolation_rows()
    weak_duality()
    equality_repair()
    smallest_tau()
    ldl()
    tilt_invariance()
    finish()
