"""The split-prior PAC-Bayes bound (unfoldtheory/generalization/split_prior.py).

Theorem (Ambroladze, Parrado-Hernández & Shawe-Taylor 2007; Pérez-Ortiz et al., JMLR 2021, §5; Langford 2005 for
the point mass). Let S = (z_1, ..., z_N) be i.i.d. from D and I_P, I_B disjoint index sets fixed by a seed chosen
without S. Then S_P = S[I_P] and S_B = S[I_B] are independent, and conditional on (S_P, ξ) (ξ: randomness of the
training routine, independent of S) S_B is an i.i.d. sample of size m = |I_B| from D. A prior P = P(S_P, ξ) (the
prior net, the clip level b, the split-kl levels and the shape r are all functions of (S_P, ξ)) is therefore fixed
before S_B, and PAC-Bayes-kl (Seeger 2002; Maurer 2004) holds conditionally:

    P( ∃ Q, j : kl(Ẑ_j(Q) ‖ Z_j(Q)) > (KL(Q‖P) + log(ξ(m)·J·G/δ_k))/m  |  S_P, ξ ) ≤ δ_k.

Checked here:
(1) the tower step: a conditional failure probability ≤ δ_k for every value of (S_P, ξ) gives an unconditional one
    ≤ δ_k (δ_k − Σ_s p_s f_s = Σ_s p_s (δ_k − f_s) when Σ_s p_s = 1, a sum of nonnegative terms);
(2) the union bound over the K candidates (different priors) with equal shares δ/K: the shares sum to δ, and with
    the Monte-Carlo shares δ_mc/K_G the failure probability is at most δ + δ_mc;
(3) monotonicity: q = kl⁻¹(p, C) solves kl(p‖q) = C on q > p; ∂q/∂C = q(1 − q)/(q − p) > 0 and
    ∂q/∂p = −∂_p kl/∂_q kl > 0 (∂_p kl = log(p(1 − q)/(q(1 − p))) < 0 because q(1 − p) − p(1 − q) = q − p > 0), and
    C = (KL + log ξ(m) − log δ')/m grows as δ' shrinks and as KL grows. So a smaller share of δ, or an upper
    confidence value in place of a piece mean, gives a larger bound that still holds;
(4) the split-kl identity min(ℓ, b) = Σ_j Δ_j Z_j for *any* strictly increasing levels 0 = t_0 < … < t_J = b (the
    levels chosen from the prior part's quantiles are such levels), for J = 1..8: with gaps g_j > 0 and
    ℓ = t_{i−1} + u g_i, 0 < u < 1, piece j < i is full, piece i partial, piece j > i empty;
(5) the posteriors share the prior: KL(N(μ_q, σ_q²)‖N(μ_p, σ_p²)) − KL(N(μ_p, σ_q²)‖N(μ_p, σ_p²)) =
    (μ_q − μ_p)²/(2σ_p²) (candidate (c) pays the squared distance of the model from the prior net), and the
    equal-mean KL ½(ρ − 1 − log ρ), ρ = σ_q²/σ_p², is ≥ 0 with its minimum 0 at ρ = 1; the point mass has KL 0;
(6) with a loss bound B ≥ ℓ on the data domain, min(ℓ, B) = ℓ: the candidate clipped at B covers the loss itself there.
Numeric sanity check (not the proof): exact enumeration of a toy split with a prior predictor chosen on S_P.
"""

from __future__ import annotations

import itertools
import math
import sys
from fractions import Fraction
from pathlib import Path

import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _check import check, finish, is_nonneg, is_pos, is_zero, section

section("(1) the tower step: a conditional bound for every S_P is an unconditional bound")
for atoms in (2, 3, 5):
    p = sp.symbols(f"p1:{atoms + 1}", nonnegative=True)
    e = sp.symbols(f"e1:{atoms + 1}", nonnegative=True)  # e_s = δ − f_s ≥ 0
    d = sp.Symbol("delta", positive=True)
    last = 1 - sum(p[:-1])  # Σ p_s = 1
    probs = [*p[:-1], last]
    total = sum(q * (d - es) for q, es in zip(probs, e, strict=True))
    slack = sum(q * es for q, es in zip(probs, e, strict=True))
    check(f"{atoms} values of S_P: δ − Σ_s p_s f_s == Σ_s p_s e_s (Σ p_s = 1)", is_zero(d - total - slack))
    check(f"{atoms} values of S_P: Σ_s p_s e_s >= 0", is_nonneg(sum(q * es for q, es in zip(p, e, strict=True))))

section("(2) the union bound over candidates and Monte-Carlo estimates")
d, dmc = sp.symbols("delta delta_mc", positive=True)
for K in (1, 2, 3, 4):
    check(f"K = {K}: Σ_k δ/K == δ", is_zero(sum(d / K for _ in range(K)) - d))
    check(f"K = {K}: exact rational shares of δ = 1/20 sum to 1/20",
          sum((Fraction(1, 20) / K for _ in range(K)), Fraction(0)) == Fraction(1, 20))
for G in (1, 2):
    check(f"{G} Monte-Carlo estimate(s): P(fail) <= Σ δ_k + Σ δ_mc/{G} == δ + δ_mc",
          is_zero(d + sum(dmc / G for _ in range(G)) - (d + dmc)))

section("(3) kl⁻¹(p, C) increases in C and p; C increases as δ' decreases")
p, q = sp.symbols("p q", positive=True)
kl = p * sp.log(p / q) + (1 - p) * sp.log((1 - p) / (1 - q))
dq_kl = sp.diff(kl, q)
dp_kl = sp.diff(kl, p)
check("∂_q kl == (q − p)/(q(1 − q))", is_zero(dq_kl - (q - p) / (q * (1 - q))))
check("∂_p kl == log(p(1 − q)/(q(1 − p)))", is_zero(sp.expand_log(dp_kl - sp.log(p * (1 - q) / (q * (1 - p))), force=True)))
check("q(1 − p) − p(1 − q) == q − p (so p(1 − q)/(q(1 − p)) < 1 and ∂_p kl < 0 for p < q)",
      is_zero(q * (1 - p) - p * (1 - q) - (q - p)))
s, w, pp = sp.symbols("s w p0", positive=True)  # q = p + s, 1 − q = w
check("∂q/∂C = 1/∂_q kl = q(1 − q)/(q − p) > 0 for q = p + s, 1 − q = w", is_pos((pp + s) * w / s))
L = sp.Symbol("L", positive=True)  # L = −∂_p kl > 0
check("∂q/∂p = −∂_p kl/∂_q kl = L·q(1 − q)/(q − p) > 0", is_pos(L * (pp + s) * w / s))
KL, lxi, m, dp_ = sp.symbols("KL logxi m delta_prime", positive=True)
C = (KL + lxi - sp.log(dp_)) / m
check("∂C/∂δ' == −1/(mδ') < 0", is_zero(sp.diff(C, dp_) + 1 / (m * dp_)) and is_pos(1 / (m * dp_)))
check("∂C/∂KL == 1/m > 0", is_zero(sp.diff(C, KL) - 1 / m))

section("(4) min(ℓ, b) == Σ_j Δ_j Z_j for any strictly increasing levels, J = 1..8")
u = sp.Symbol("u", positive=True)  # ℓ = t_{i−1} + u·g_i with 0 < u < 1, i.e. u = 1 − v, v > 0 as well
v = sp.Symbol("v", positive=True)
for J in range(1, 9):
    g = sp.symbols(f"g1:{J + 1}", positive=True)
    t = [sp.Integer(0)] + [sum(g[:j]) for j in range(1, J + 1)]
    ok_all = True
    for i in range(1, J + 2):  # region i <= J: t_{i−1} < ℓ < t_i; region J + 1: ℓ > b
        ell = t[i - 1] + (u * g[i - 1] if i <= J else u)
        total = 0
        for j in range(1, J + 1):
            lo, hi = t[j - 1], t[j]
            if j < i:  # full: ℓ − t_j > 0, so min((ℓ − t_{j−1})₊, Δ_j) = Δ_j
                ok_all = ok_all and is_pos(ell - hi)
                total += hi - lo
            elif j == i:  # partial: 0 < ℓ − t_{j−1} < Δ_j
                ok_all = ok_all and is_pos(ell - lo) and is_pos((hi - ell).subs(u, 1 - v))
                total += ell - lo
            else:  # empty: ℓ − t_{j−1} < 0
                ok_all = ok_all and is_pos((lo - ell).subs(u, 1 - v))
        ok_all = ok_all and is_zero(total - (ell if i <= J else t[J]))
    check(f"J = {J}: every piece is at its branch on every region, and the pieces add up to min(ℓ, b)", ok_all)

section("(5) Gaussian KL: the model's posterior pays the squared mean shift; the point mass pays nothing")
mq, mp = sp.symbols("mu_q mu_p", real=True)
sq, spr = sp.symbols("sigma_q sigma_p", positive=True)


def kl_gauss(mu_q, s_q, mu_p, s_p):
    return sp.log(s_p / s_q) + (s_q ** 2 + (mu_q - mu_p) ** 2) / (2 * s_p ** 2) - sp.Rational(1, 2)


check("KL(N(μ_q, σ_q²)‖N(μ_p, σ_p²)) − KL(N(μ_p, σ_q²)‖N(μ_p, σ_p²)) == (μ_q − μ_p)²/(2σ_p²)",
      is_zero(kl_gauss(mq, sq, mp, spr) - kl_gauss(mp, sq, mp, spr) - (mq - mp) ** 2 / (2 * spr ** 2)))
rho = sp.Symbol("rho", positive=True)
equal_mean = (rho - 1 - sp.log(rho)) / 2
check("equal means: KL == ½(ρ − 1 − log ρ), ρ = σ_q²/σ_p²",
      is_zero(sp.expand_log(kl_gauss(mp, sq, mp, spr) - equal_mean.subs(rho, sq ** 2 / spr ** 2), force=True)))
check("d/dρ ½(ρ − 1 − log ρ) == (ρ − 1)/(2ρ): negative below 1, positive above, minimum 0 at ρ = 1",
      is_zero(sp.diff(equal_mean, rho) - (rho - 1) / (2 * rho)) and is_zero(equal_mean.subs(rho, 1)))
check("point mass: KL(δ_θ‖δ_θ) = log(1/1) == 0", is_zero(sp.log(sp.Integer(1))))

section("(6) a loss bound B >= ℓ makes the clipped loss the loss itself")
ell, B, gap = sp.symbols("ell B gap", nonnegative=True)
check("ℓ <= B (B = ℓ + gap): min(ℓ, B) == ℓ", is_zero(sp.Min(ell, ell + gap) - ell))

section("numeric sanity check: exact failure probability of a toy split test-set bound (not the proof)")


def kl_inv(phat: float, c: float) -> float:
    if phat >= 1.0:
        return 1.0
    lo, hi = phat, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        val = (phat * math.log(phat / mid) if phat > 0 else 0.0) + (1 - phat) * math.log((1 - phat) / (1 - mid))
        lo, hi = (mid, hi) if val <= c else (lo, mid)
    return hi


def xi(n: int) -> float:
    return sum(math.comb(n, k) * (k / n) ** k * (1 - k / n) ** (n - k) for k in range(n + 1))


delta, worst = 0.2, 0.0
for prob in (0.1, 0.3, 0.5, 0.7):
    for n_p, n_b in ((3, 4), (2, 6)):
        fail = 0.0
        for sample in itertools.product((0, 1), repeat=n_p + n_b):
            weight = math.prod(prob if z else 1 - prob for z in sample)
            h = int(2 * sum(sample[:n_p]) > n_p)  # the "prior net": majority vote of the prior part
            risk = prob if h == 0 else 1 - prob  # its true 0-1 risk
            emp = sum(z != h for z in sample[n_p:]) / n_b
            if risk > kl_inv(emp, math.log(xi(n_b) / delta) / n_b):
                fail += weight
        worst = max(worst, fail)
check(f"toy split bound: the largest exact failure probability {worst:.4f} <= δ = {delta}", worst <= delta)

finish()
