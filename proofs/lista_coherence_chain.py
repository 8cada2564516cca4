"""The per-layer error chain of LISTA-type networks, and ALISTA Theorem 1 as its special case.

Setting: x_{k+1} = ST_theta(v), v = x_k - M e_k, e_k = x_k - x*, noiseless y = A x*
(M = gamma W^T A for ALISTA, W_k^T A for LISTA-CP), S = supp(x*), |S| <= s,
supp(e_k) in S, ||e_k||_1 <= b, ||e_k||_inf <= a.  Write p_ij = |M_ij| (i != j),
d_i = |1 - M_ii|, mu_i = max_{j != i} p_ij.

Claims:

(a) |ST_theta(v) - v| <= theta for every v (three regions), and ST_theta(v) = 0 for |v| <= theta.
(b) Error identity: x_{k+1,i} - x*_i = (1 - M_ii) e_i - sum_{j != i} M_ij e_j + xi_i with
    xi_i = ST(v_i) - v_i (checked for s = 3); off the support (x_i = x*_i = 0),
    v_i = -sum_{j in S} M_ij e_j.
(c) Triangle inequality |u1 + u2 + u3| <= |u1| + |u2| + |u3| (all 16 sign regions), and
    sum_j p_j q_j <= mu * sum_j q_j (mu >= p_j), sum_j p_j q_j <= a * sum_j p_j (a >= q_j): the
    no-false-positive requirement theta >= min(mu_i b, beta_i(s) a) and the l_inf step.
(d) Any q of the entries sums to at most the q largest (n = 4, q = 2): the Babel sums beta.
(e) l1 step: sum_i [d_i q_i + sum_{j != i} p_ij q_j] = sum_j q_j (d_j + sum_{i != j} p_ij)
    <= R * sum_j q_j when R >= d_j + colsum_j (s = 3).
(f) ||e||_2^2 <= ||e||_inf ||e||_1.
(g) ALISTA: (|1 - g| + g mu (s - 1)) b + s g mu b = (|1 - g| + g mu (2s - 1)) b; the factor
    rho = |1 - g| + g q (q = mu(2s - 1)) is < 1 iff q < 1 and 0 < g < 2/(1 + q); q < 1 iff
    s < (1 + 1/mu)/2; and s B prod rho_t = s B exp(-sum c_t) with c_t = -log rho_t.
(h) Coherence LP weak duality: if A_{-i} z = a_i - r and w^T a_i = 1 then
    sum_j z_j (w^T a_j) = 1 - w^T r (m = 2, n = 3), so max_j |w^T a_j| * ||z||_1 >= 1 - w^T r by (c).

Sources: Chen, Liu, Wang & Yin, NeurIPS 2018 (LISTA-CP, Theorem 2 and its no-false-positive
lemma); Liu, Chen, Wang & Yin, ICLR 2019 (ALISTA, Definition 1 and Theorem 1); Tropp 2004
(the Babel function).  Used by unfoldtheory/convergence/coherence.py.
"""

import itertools

import numpy as np
import sympy as sp
from _check import check, finish, ge, gt, holds_on, is_nonneg, is_zero, section

theta, v = sp.Symbol("theta", real=True), sp.Symbol("v", real=True)


def st(x):
    return sp.Piecewise((x + theta, x < -theta), (0, x <= theta), (x - theta, True))


section("(a) soft-thresholding moves a point by at most theta, and kills |v| <= theta")
for name, region in [("v < -theta", [gt(-theta, v)]), ("|v| <= theta", [ge(v, -theta), ge(theta, v)]),
                     ("v > theta", [gt(v, theta)])]:
    region = [ge(theta, 0), *region]
    lo = holds_on(region, [theta, v], theta - (st(v) - v), ">=")
    hi = holds_on(region, [theta, v], theta + (st(v) - v), ">=")
    check(f"{name}: |ST(v) - v| <= theta [{lo}; {hi}]", lo is not None and hi is not None)
cert = holds_on([ge(theta, 0), ge(v, -theta), ge(theta, v)], [theta, v], st(v), "==")
check(f"|v| <= theta: ST(v) == 0 [{cert}]", cert is not None)

section("(b) the error identity on and off the support (s = 3)")
s = 3
xs = sp.symbols("xs1:4", real=True)
e = sp.symbols("e1:4", real=True)
M = sp.Matrix(s, s, lambda i, j: sp.Symbol(f"M{i + 1}{j + 1}", real=True))
xi = sp.symbols("xi1:4", real=True)
for i in range(s):
    vi = (xs[i] + e[i]) - sum(M[i, j] * e[j] for j in range(s))
    new = vi + xi[i]  # ST(v_i) = v_i + xi_i
    claim = (1 - M[i, i]) * e[i] - sum(M[i, j] * e[j] for j in range(s) if j != i) + xi[i]
    check(f"i = {i + 1}: x_(k+1),i - x*_i == (1 - M_ii) e_i - sum_(j!=i) M_ij e_j + xi_i", is_zero(new - xs[i] - claim))
Mo = sp.symbols("Mo1:4", real=True)
v_off = 0 - sum(Mo[j] * e[j] for j in range(s))  # x_i = 0 off the support, e_i = 0 there
check("off the support: v_i == -sum_(j in S) M_ij e_j", is_zero(v_off + sum(Mo[j] * e[j] for j in range(s))))

section("(c) triangle inequality (all sign regions) and the two Hoelder-type estimates")
u = sp.symbols("u1:4", real=True)
ok = True
for signs in itertools.product((1, -1), repeat=3):
    for total in (1, -1):
        region = [ge(sg * uj, 0) for sg, uj in zip(signs, u, strict=True)] + [ge(total * sum(u), 0)]
        expr = sum(sg * uj for sg, uj in zip(signs, u, strict=True)) - total * sum(u)
        ok = ok and holds_on(region, list(u), expr, ">=") is not None
check("|u1 + u2 + u3| <= |u1| + |u2| + |u3| on all 16 regions", ok)
q = sp.symbols("q1:4", nonnegative=True)
t = sp.symbols("t1:4", nonnegative=True)
mu = sp.Symbol("mu", nonnegative=True)
p = [mu - tj for tj in t]  # p_j <= mu
pq = sum(pj * qj for pj, qj in zip(p, q, strict=True))
check("mu >= p_j, q_j >= 0  =>  mu*sum q - sum p q >= 0", is_nonneg(sp.expand(mu * sum(q) - pq)))
a = sp.Symbol("a", nonnegative=True)
pn = sp.symbols("p1:4", nonnegative=True)
qa = [a - tj for tj in t]  # q_j <= a
pq = sum(pj * qj for pj, qj in zip(pn, qa, strict=True))
check("a >= q_j, p_j >= 0  =>  a*sum p - sum p q >= 0", is_nonneg(sp.expand(a * sum(pn) - pq)))

section("(d) a q-subset sums to at most the q largest entries (n = 4, q = 2)")
r = sp.symbols("r1:5", nonnegative=True)
ordered = [r[3]]  # p4 = r4, p3 = p4 + r3, ...: any p1 >= p2 >= p3 >= p4 >= 0
for k in (2, 1, 0):
    ordered.insert(0, ordered[0] + r[k])
for pair in itertools.combinations(range(4), 2):
    check(f"entries {pair[0] + 1},{pair[1] + 1}: p1 + p2 - (p_i + p_j) >= 0",
          is_nonneg(sp.expand(ordered[0] + ordered[1] - ordered[pair[0]] - ordered[pair[1]])))

section("(e) the l1 step: swap the double sum, then bound by the largest column factor (s = 3)")
P = sp.Matrix(s, s, lambda i, j: sp.Symbol(f"p{i + 1}{j + 1}", nonnegative=True))
d = sp.symbols("d1:4", nonnegative=True)
rows = sum(d[i] * q[i] + sum(P[i, j] * q[j] for j in range(s) if j != i) for i in range(s))
cols = sum(q[j] * (d[j] + sum(P[i, j] for i in range(s) if i != j)) for j in range(s))
check("sum_i [d_i q_i + sum_(j!=i) p_ij q_j] == sum_j q_j (d_j + sum_(i!=j) p_ij)", is_zero(rows - cols))
R = sp.Symbol("R", nonnegative=True)
col_factor = [d[j] + sum(P[i, j] for i in range(s) if i != j) for j in range(s)]
check("R*sum q - sum_j q_j factor_j == sum_j q_j (R - factor_j)",
      is_zero(R * sum(q) - cols - sum(q[j] * (R - col_factor[j]) for j in range(s))))
gaps = sp.symbols("w1:4", nonnegative=True)  # w_j = R - factor_j >= 0 when R is the largest factor
check("each q_j (R - factor_j) >= 0, so the sum is >= 0", is_nonneg(sum(qj * wj for qj, wj in zip(q, gaps, strict=True))))

section("(f) ||e||_2^2 <= ||e||_inf * ||e||_1")
check("a*sum q - sum q^2 == sum_j q_j (a - q_j)", is_zero(a * sum(q) - sum(qj**2 for qj in q) - sum(qj * (a - qj) for qj in q)))
check("q_j >= 0 and a - q_j >= 0 (a = ||e||_inf)  =>  sum_j q_j (a - q_j) >= 0",
      is_nonneg(sum(qj * tj for qj, tj in zip(q, t, strict=True))))

section("(g) ALISTA Theorem 1's constant, its contraction conditions and its exponential form")
g, mu_p, S_ = sp.Symbol("gamma", positive=True), sp.Symbol("mu", positive=True), sp.Symbol("s", positive=True)
b = sp.Symbol("b", positive=True)
absg = sp.Symbol("abs_1_minus_gamma", nonnegative=True)
check("(|1-g| + g mu (s-1)) b + s g mu b == (|1-g| + g mu (2s-1)) b",
      is_zero((absg + g * mu_p * (S_ - 1)) * b + S_ * g * mu_p * b - (absg + g * mu_p * (2 * S_ - 1)) * b))
gg, qq = sp.symbols("g q", real=True)
cert = holds_on([gt(gg, 0), ge(1, gg), gt(1, qq)], [gg, qq], 1 - ((1 - gg) + gg * qq), ">")
check(f"0 < g <= 1, q < 1  =>  rho = (1 - g) + g q < 1 [{cert}]", cert is not None)
check("g > 1: 1 - rho == (1 + q)(2/(1 + q) - g), positive iff g < 2/(1 + q) (1 + q > 0)",
      is_zero(1 - ((gg - 1) + gg * qq) - (1 + qq) * (2 / (1 + qq) - gg)))
cert = holds_on([gt(gg, 0), ge(1, gg), ge(qq, 1)], [gg, qq], ((1 - gg) + gg * qq) - 1, ">=")
check(f"q >= 1, 0 < g <= 1  =>  rho >= 1 [{cert}]", cert is not None)
cert = holds_on([gt(gg, 1), ge(qq, 1)], [gg, qq], ((gg - 1) + gg * qq) - 1, ">")
check(f"q >= 1, g > 1  =>  rho > 1 [{cert}]", cert is not None)
check("(1 + 1/mu)/2 - s == (1 - mu(2s - 1))/(2 mu): q < 1 iff s < (1 + 1/mu)/2",
      is_zero((1 + 1 / mu_p) / 2 - S_ - (1 - mu_p * (2 * S_ - 1)) / (2 * mu_p)))
rho = sp.symbols("rho1:4", positive=True)
B_ = sp.Symbol("B", positive=True)
check("s B rho1 rho2 rho3 == s B exp(-sum c_t), c_t = -log rho_t",
      is_zero(sp.expand_log(S_ * B_ * sp.exp(-sum(-sp.log(x) for x in rho)), force=True) - S_ * B_ * sp.Mul(*rho)))

section("(h) weak duality of the coherence LP (m = 2, n = 3, column i = 1)")
A = sp.Matrix(2, 3, lambda i, j: sp.Symbol(f"A{i + 1}{j + 1}", real=True))
w = sp.Matrix(sp.symbols("w1:3", real=True))
z2, z3 = sp.symbols("z2 z3", real=True)
rvec = A[:, 0] - (z2 * A[:, 1] + z3 * A[:, 2])
lhs = z2 * (w.T * A[:, 1])[0] + z3 * (w.T * A[:, 2])[0]
check("w^T a_1 = 1  =>  sum_j z_j w^T a_j == 1 - w^T r",
      is_zero((lhs - (1 - (w.T * rvec)[0])).subs(w[1], sp.solve((w.T * A[:, 0])[0] - 1, w[1])[0])))

section("numeric sanity check of one step of the chain (in addition to the proof)")
rng = np.random.default_rng(0)
ok = True
for _ in range(200):
    n, s_num = 8, 3
    Mn = np.eye(n) + 0.15 * rng.standard_normal((n, n))
    S = rng.choice(n, s_num, replace=False)
    xstar = np.zeros(n)
    xstar[S] = rng.uniform(-1, 1, s_num)
    x = xstar.copy()
    x[S] += 0.3 * rng.standard_normal(s_num)
    err = x - xstar
    off = np.abs(Mn - np.diag(np.diag(Mn)))
    mu_i = off.max(axis=1)
    th = float(np.max(mu_i * np.abs(err).sum())) * 1.0001
    xn = np.sign(x - Mn @ err) * np.maximum(np.abs(x - Mn @ err) - th, 0)
    rate = np.max(np.abs(1 - np.diag(Mn)) + np.sort(off, axis=0)[::-1][: s_num - 1].sum(axis=0))
    ok = ok and set(np.flatnonzero(xn)) <= set(S) and np.abs(xn - xstar).sum() <= rate * np.abs(err).sum() + s_num * th + 1e-12
check("200 random steps: no false positive, and ||e+||_1 <= rho ||e||_1 + s theta", bool(ok))

finish()
