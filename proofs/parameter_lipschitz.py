"""Lemmas of the parameter Lipschitz recursion (unfoldtheory/generalization/parameter_lipschitz.py).

Claims (all per coordinate or for exact symbolic matrices; sources: Bauschke & Combettes, Ch. 12
for soft thresholding as a prox; the rest is elementary algebra, checked here):

(1) Threshold perturbation: for thresholds 0 <= t <= t', |ST_t(v) - ST_t'(v)| <= t' - t for every
    real v (five regions of v, which cover the line). With the clamp of the forward pass,
    |max(a, 0) - max(b, 0)| <= |a - b|; so a scalar threshold per layer moves the output of an
    n-vector by at most sqrt(n)|Δθ|.
(2) |ST_t(v)| <= |v| for t >= 0 (hence ||ST_t(v)|| <= ||v||, the iterate-norm recursion).
(3) Perturbation identities of the affine part v = M x + N y (exact, symbolic 3x2 matrices):
    step-size models (M = I - γPᵀA, N = γPᵀ):
        v - v' = (I - γPᵀA)(x - x') - (γ - γ')Pᵀ(A x' - y);
    LISTA-CP (M = I - WᵀA, N = Wᵀ):
        v - v' = (I - WᵀA)(x - x') + (W - W')ᵀ(y - A x');
    LISTA (M = W2, N = W1):
        v - v' = W2(x - x') + (W2 - W2')x' + (W1 - W1')y;
    and [I - WᵀA, Wᵀ] - [I - W'ᵀA, W'ᵀ] = ΔWᵀ[-A, I] with [-A, I][-A, I]ᵀ = AAᵀ + I, whose
    largest eigenvalue is ||A||² + 1.
(4) γ ↦ M(γ) = I - γB is affine: M(λγ₁ + (1-λ)γ₂) = λM(γ₁) + (1-λ)M(γ₂), so ||M(γ)|| is convex
    and its maximum over an interval is at an end point (same for [I - γB, γPᵀ]).
(5) [M, N](x; y) = Mx + Ny, so ||Mx + Ny|| <= ||[M, N]|| sqrt(||x||² + ||y||²).
(6) Unrolling: e_0 = 0, e_{k+1} = a_k e_k + d_k gives e_K = Σ_k (Π_{j>k} a_j) d_k (K = 1..6); with
    a_k >= 0 the inequality version follows by induction (each step is monotone in e_k).
(7) Cauchy–Schwarz by Lagrange's identity: (Σc²)(Σt²) - (Σct)² = Σ_{i<j}(c_i t_j - c_j t_i)² (n = 4),
    so Σ_p C_p ||Δ_p|| <= sqrt(Σ C_p²) ||Δ||; a tensor shared by two layers contributes
    c₁||Δ|| + c₂||Δ|| = (c₁ + c₂)||Δ||, one coefficient.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _check import check, check_cover, finish, ge, gt, holds_on, is_zero, section

t, t2, v = sp.symbols("t t2 v", real=True)


def st(x, th):
    """Soft thresholding written piecewise (threshold th >= 0)."""
    return sp.Piecewise((x + th, x < -th), (0, x <= th), (x - th, True))


section("(1) |ST_t(v) - ST_t'(v)| <= t' - t for 0 <= t <= t'")
ORDER = [ge(t, 0), ge(t2, t)]
REGIONS = [
    ("v < -t'", lambda x: [gt(-t2, x)]),
    ("-t' <= v < -t", lambda x: [ge(x, -t2), gt(-t, x)]),
    ("-t <= v <= t", lambda x: [ge(x, -t), ge(t, x)]),
    ("t < v <= t'", lambda x: [gt(x, t), ge(t2, x)]),
    ("v > t'", lambda x: [gt(x, t2)]),
]
check_cover("threshold regions", REGIONS, params=[t, t2], assumptions=ORDER)
diff = st(v, t) - st(v, t2)
for name, region in REGIONS:
    reg = ORDER + region(v)
    lo = holds_on(reg, [t, t2, v], (t2 - t) + diff, ">=")
    hi = holds_on(reg, [t, t2, v], (t2 - t) - diff, ">=")
    check(f"{name}: -(t'-t) <= ST_t(v) - ST_t'(v) <= t'-t [{lo}] [{hi}]", lo is not None and hi is not None)

a, b = sp.symbols("a b", real=True)


def relu(z):
    return sp.Piecewise((0, z <= 0), (z, True))


for name, reg in [("a <= b <= 0", [ge(b, a), ge(0, b)]), ("a <= 0 < b", [ge(0, a), gt(b, 0)]),
                  ("0 < a <= b", [gt(a, 0), ge(b, a)])]:
    lo = holds_on(reg, [a, b], relu(b) - relu(a), ">=")
    hi = holds_on(reg, [a, b], (b - a) - (relu(b) - relu(a)), ">=")
    check(f"{name}: 0 <= max(b,0) - max(a,0) <= b - a [{lo}] [{hi}]", lo is not None and hi is not None)
check("the case b <= a is the same statement with a and b swapped", True)
n = sp.Symbol("n", positive=True, integer=True)
d = sp.Symbol("d", nonnegative=True)
check("n coordinates each moved by <= d: sqrt(n d^2) == sqrt(n) d", is_zero(sp.sqrt(n * d**2) - sp.sqrt(n) * d))

section("(2) |ST_t(v)| <= |v| for t >= 0")
for name, region, sign in [("v < -t", [gt(-t, v)], -1), ("|v| <= t, v < 0", [ge(v, -t), gt(0, v)], -1),
                           ("0 <= v <= t", [ge(v, 0), ge(t, v)], 1), ("v > t", [gt(v, t)], 1)]:
    reg = [ge(t, 0), *region]
    cert_a = holds_on(reg, [t, v], sign * v - st(v, t), ">=")
    cert_b = holds_on(reg, [t, v], sign * v + st(v, t), ">=")
    check(f"{name}: -|v| <= ST_t(v) <= |v| [{cert_a}] [{cert_b}]", cert_a is not None and cert_b is not None)

section("(3) perturbation identities (exact, symbolic n = 3, m = 2)")
N_, M_ = 3, 2


def mat(name, rows, cols):
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}{i}{j}", real=True))


A, P, W, W_ = mat("A", M_, N_), mat("P", M_, N_), mat("W", M_, N_), mat("V", M_, N_)
x, x_, y = mat("x", N_, 1), mat("z", N_, 1), mat("y", M_, 1)
g, g_ = sp.symbols("gamma gamma2", real=True)
eye = sp.eye(N_)
B = P.T * A
lhs = ((eye - g * B) * x + g * P.T * y) - ((eye - g_ * B) * x_ + g_ * P.T * y)
rhs = (eye - g * B) * (x - x_) - (g - g_) * P.T * (A * x_ - y)
check("step-size models: v - v' == (I - γPᵀA)(x - x') - Δγ Pᵀ(Ax' - y)", (lhs - rhs).expand() == sp.zeros(N_, 1))
lhs = (x + W.T * (y - A * x)) - (x_ + W_.T * (y - A * x_))
rhs = (eye - W.T * A) * (x - x_) + (W - W_).T * (y - A * x_)
check("LISTA-CP: v - v' == (I - WᵀA)(x - x') + ΔWᵀ(y - Ax')", (lhs - rhs).expand() == sp.zeros(N_, 1))
W1, W1_, W2, W2_ = mat("F", N_, M_), mat("G", N_, M_), mat("H", N_, N_), mat("J", N_, N_)
lhs = (W2 * x + W1 * y) - (W2_ * x_ + W1_ * y)
rhs = W2 * (x - x_) + (W2 - W2_) * x_ + (W1 - W1_) * y
check("LISTA: v - v' == W2(x - x') + ΔW2 x' + ΔW1 y", (lhs - rhs).expand() == sp.zeros(N_, 1))
wide = (eye - W.T * A).row_join(W.T) - (eye - W_.T * A).row_join(W_.T)
check("[I - WᵀA, Wᵀ] - [I - W'ᵀA, W'ᵀ] == ΔWᵀ[-A, I]", (wide - (W - W_).T * (-A).row_join(sp.eye(M_))).expand()
      == sp.zeros(N_, N_ + M_))
S = (-A).row_join(sp.eye(M_))
check("[-A, I][-A, I]ᵀ == AAᵀ + I (eigenvalues σ_i(A)² + 1, the largest ||A||² + 1)",
      (S * S.T - (A * A.T + sp.eye(M_))).expand() == sp.zeros(M_, M_))

section("(4) γ ↦ I - γB and γ ↦ [I - γB, γPᵀ] are affine (so their norms are convex)")
lam = sp.Symbol("lambda", real=True)
g1, g2 = sp.symbols("g1 g2", real=True)
for name, F in [("I - γB", lambda s: eye - s * B), ("[I - γB, γPᵀ]", lambda s: (eye - s * B).row_join(s * P.T))]:
    mixed = F(lam * g1 + (1 - lam) * g2) - (lam * F(g1) + (1 - lam) * F(g2))
    check(f"{name}: F(λg1 + (1-λ)g2) == λF(g1) + (1-λ)F(g2)", mixed.expand() == sp.zeros(*mixed.shape))
f1, f2 = sp.symbols("f1 f2", real=True)
cert = holds_on([ge(lam, 0), ge(1 - lam, 0), ge(f2, f1)], [lam, f1, f2], f2 - (lam * f1 + (1 - lam) * f2), ">=")
check(f"convex combination of end values <= the larger end value [{cert}]", cert is not None)

section("(5) [M, N](x; y) == Mx + Ny")
Mm, Nm = mat("M", N_, N_), mat("N", N_, M_)
check("block product", (Mm.row_join(Nm) * x.col_join(y) - (Mm * x + Nm * y)).expand() == sp.zeros(N_, 1))

section("(6) unrolling e_{k+1} = a_k e_k + d_k from e_0 = 0")
for K in range(1, 7):
    av, dv = sp.symbols(f"a0:{K}"), sp.symbols(f"d0:{K}")
    e = sp.Integer(0)
    for k in range(K):
        e = av[k] * e + dv[k]
    closed = sum(sp.Mul(*av[k + 1:]) * dv[k] for k in range(K))
    check(f"K = {K}: e_K == Σ_k (Π_{{j>k}} a_j) d_k", is_zero(e - closed))
ak, ek, Ek, dk = sp.symbols("a_k e_k E_k d_k", real=True)
check("induction step: a_k >= 0 and e_k <= E_k give a_k e_k + d_k <= a_k E_k + d_k (a_k(E_k - e_k) >= 0)",
      sp.factor((ak * Ek + dk) - (ak * ek + dk)) == ak * (Ek - ek))

section("(7) Cauchy–Schwarz (Lagrange's identity, n = 4) and shared tensors")
cs, ts = sp.symbols("c0:4", real=True), sp.symbols("t0:4", real=True)
lagrange = sum(ci**2 for ci in cs) * sum(ti**2 for ti in ts) - sum(ci * ti for ci, ti in zip(cs, ts, strict=True)) ** 2
squares = sum((cs[i] * ts[j] - cs[j] * ts[i]) ** 2 for i, j in itertools.combinations(range(4), 2))
check("(Σc²)(Σt²) - (Σct)² == Σ_{i<j}(c_i t_j - c_j t_i)² >= 0", is_zero(lagrange - squares))
c1, c2, nd = sp.symbols("c1 c2 delta", nonnegative=True)
check("shared tensor: c1||Δ|| + c2||Δ|| == (c1 + c2)||Δ||", is_zero(c1 * nd + c2 * nd - (c1 + c2) * nd))

section("numeric sanity check (in addition to the proof)")
import random  # noqa: E402

rng = random.Random(0)
ok = True
for _ in range(2000):
    ta, tb, vv = rng.uniform(0, 2), rng.uniform(0, 2), rng.uniform(-4, 4)
    ok = ok and abs(float(st(vv, ta)) - float(st(vv, tb))) <= abs(ta - tb) + 1e-12
check("|ST_t(v) - ST_t'(v)| <= |t - t'| at 2000 random points", ok)

finish()
