"""The covering-number / Dudley chain of unfoldtheory/generalization/covering.py, constant by constant.

Sources: Shalev-Shwartz & Ben-David, *Understanding Machine Learning* (2014): Lemma 26.2
(symmetrization), 26.4 (McDiarmid), 26.8 (Massart), 27.4 (chaining, constant 6 per scale, i.e. 12
in integral form); Mohri, Rostamizadeh & Talwalkar, *Foundations of ML*, Thm 3.3. The papers the
bound follows (Behboodi–Rauhut–Schnoor 2020; Schnoor–Behboodi–Rauhut 2023) use the same template;
their constants could not be retrieved, so each step is re-derived here.

(1) Volume ratio: an η-separated set in a radius-r ball of R^D has disjoint η/2-balls inside the
    (r + η/2)-ball, so N <= ((r + η/2)/(η/2))^D = (1 + 2r/η)^D.
(2) Loss: ||h - x||² - ||h' - x||² = <h - h', h + h' - 2x> (so |.| <= 2(B_h + B)||h - h'|| when
    ||h||, ||h'|| <= B_h, ||x|| <= B) and 0 <= ||h - x||² <= (B_h + B)².
    Loss-class cover: η = ε/(L_ℓ K_L) turns (1 + 2r/η)^D into (1 + 2ρ/ε)^D, ρ = L_ℓ K_L r.
(3) Massart: cosh(s) <= exp(s²/2) coefficientwise, (2k)! >= 2^k k!; then
    min_λ>0 (log N / λ + λ c²/2) = c sqrt(2 log N) at λ = sqrt(2 log N)/c.
(4) Chaining: ε_j = c0 2^-j; links have length <= ε_j + ε_{j-1} = 3ε_j and there are <= N_j²
    of them; Massart gives (1/m)(3ε_j sqrt m) sqrt(2 log N_j²) = 6 ε_j sqrt(log N_j)/sqrt m, and
    6ε_j = 12(ε_j - ε_{j+1}); the scales telescope to ∫ from ε_{J+1} to ε_1 = c0/2.
(5) Integral: F(ε) = ε log(1 + β/ε) + β log(1 + ε/β) has F' = log(1 + β/ε) and F(0+) = 0, so
    ∫_0^a log(1 + β/ε) dε = F(a) <= a log(e(1 + β/a)) (log(1+u) <= u). By Cauchy–Schwarz,
    ∫_0^a sqrt(g) <= sqrt(a ∫_0^a g); the code's a sqrt(log1p(q) + q log1p(1/q)), q = β/a, equals
    sqrt(a F(a)). F increases in a and in β (∂F/∂β = log(1 + a/β)), so the bound grows with the
    radius (through ρ and c0 = min(b, ρ)).
(6) McDiarmid: differences c_i = b/m, exp(-2t²/Σc_i²) = δ solves to t = b sqrt(log(1/δ)/(2m)).
(7) Union bound over the radius grid: Σ_{j>=0} δ/((j+1)(j+2)) = δ.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _check import check, finish, is_zero, section

r, eta, eps, D = sp.symbols("r eta epsilon D", positive=True)

section("(1) covering number of a ball")
check("(r + η/2)/(η/2) == 1 + 2r/η, so the volume ratio ((r + η/2)/(η/2))^D == (1 + 2r/η)^D",
      is_zero((r + eta / 2) / (eta / 2) - (1 + 2 * r / eta)))

section("(2) the squared loss and the loss-class cover")
h = sp.Matrix(sp.symbols("h0:3", real=True))
h2 = sp.Matrix(sp.symbols("k0:3", real=True))
x = sp.Matrix(sp.symbols("x0:3", real=True))
check("||h-x||² - ||h'-x||² == <h - h', h + h' - 2x> (n = 3)",
      is_zero((h - x).dot(h - x) - (h2 - x).dot(h2 - x) - (h - h2).dot(h + h2 - 2 * x)))
Bh, B = sp.symbols("B_h B", nonnegative=True)
u1, u2, u3 = sp.symbols("u1 u2 u3", nonnegative=True)
check("triangle: with ||h|| = B_h - u1, ||h'|| = B_h - u2, ||x|| = B - u3 (u_i >= 0), "
      "2(B_h + B) - (||h|| + ||h'|| + 2||x||) == u1 + u2 + 2u3 >= 0",
      is_zero(2 * (Bh + B) - ((Bh - u1) + (Bh - u2) + 2 * (B - u3)) - (u1 + u2 + 2 * u3)))
diff = sp.expand((Bh + B) ** 2 - (Bh - u1 + B - u3) ** 2)
check("range: (B_h + B)² - (B_h - u1 + B - u3)² == (u1 + u3)(2B_h + 2B - u1 - u3) >= 0 for u1 <= B_h, u3 <= B",
      is_zero(diff - (u1 + u3) * (2 * Bh + 2 * B - u1 - u3)))
L, K, rho = sp.symbols("L_l K_L rho", positive=True)
check("η = ε/(L_ℓ K_L): (1 + 2r/η)^D == (1 + 2 L_ℓ K_L r/ε)^D",
      is_zero((1 + 2 * r / (eps / (L * K))) - (1 + 2 * L * K * r / eps)))

section("(3) Massart's lemma")
k = sp.Symbol("k", integer=True, nonnegative=True)
ratio = (sp.factorial(2 * k + 2) / sp.factorial(2 * k)) / ((2 ** (k + 1) * sp.factorial(k + 1)) / (2 ** k * sp.factorial(k)))
check("((2k+2)!/(2k)!) / (2^(k+1)(k+1)!/(2^k k!)) == 2k + 1 >= 1 (induction step of (2k)! >= 2^k k!)",
      is_zero(sp.simplify(sp.combsimp(ratio)) - (2 * k + 1)))
check("base case k = 0: 0! == 2^0 0!", sp.factorial(0) == 2**0 * sp.factorial(0))
s = sp.Symbol("s", real=True)
cosh_series = sp.series(sp.cosh(s), s, 0, 12).removeO()
exp_series = sp.series(sp.exp(s**2 / 2), s, 0, 12).removeO()
check("cosh and exp(s²/2) series: coefficients 1/(2k)! and 1/(2^k k!) (k = 0..5 compared)",
      all(cosh_series.coeff(s, 2 * i) <= exp_series.coeff(s, 2 * i) for i in range(6)))
lam, c, logN = sp.symbols("lambda c logN", positive=True)
objective = logN / lam + lam * c**2 / 2
star = sp.sqrt(2 * logN) / c
check("d/dλ (log N/λ + λc²/2) == 0 at λ* = sqrt(2 log N)/c", is_zero(sp.diff(objective, lam).subs(lam, star)))
check("value at λ*: c sqrt(2 log N)", is_zero(objective.subs(lam, star) - c * sp.sqrt(2 * logN)))
check("second derivative 2 log N/λ³ > 0 (a minimum)", sp.diff(objective, lam, 2).is_positive)

section("(4) chaining constants")
c0, m, j = sp.symbols("c0 m j", positive=True)
e = lambda i: c0 * sp.Integer(2) ** (-i)  # noqa: E731
check("ε_j + ε_{j-1} == 3ε_j", is_zero(e(j) + e(j - 1) - 3 * e(j)))
logNj = sp.Symbol("logN_j", positive=True)
massart = (3 * e(j) * sp.sqrt(m)) * sp.sqrt(2 * (2 * logNj)) / m
check("(1/m)(3ε_j sqrt m) sqrt(2 log N_j²) == 6 ε_j sqrt(log N_j)/sqrt m",
      is_zero(massart - 6 * e(j) * sp.sqrt(logNj) / sp.sqrt(m)))
check("6 ε_j == 12 (ε_j - ε_{j+1})", is_zero(6 * e(j) - 12 * (e(j) - e(j + 1))))
J = sp.Symbol("J", integer=True, positive=True)
i = sp.Symbol("i", integer=True, positive=True)
check("Σ_{j=1}^J (ε_j - ε_{j+1}) == ε_1 - ε_{J+1}, ε_1 == c0/2",
      is_zero(sp.summation(e(i) - e(i + 1), (i, 1, J)) - (c0 / 2 - e(J + 1))))
check("remainder term ε_J -> 0 as J -> oo", sp.limit(e(J), J, sp.oo) == 0)

section("(5) the entropy integral")
a, beta, q = sp.symbols("a beta q", positive=True)
F = eps * sp.log(1 + beta / eps) + beta * sp.log(1 + eps / beta)
check("F'(ε) == log(1 + β/ε)", is_zero(sp.simplify(sp.diff(F, eps) - sp.log(1 + beta / eps))))
check("F(0+) == 0", sp.limit(F, eps, 0, "+") == 0)
uu = sp.Symbol("u", nonnegative=True)
check("log(1+u) <= u: g(u) = u - log(1+u) has g(0) = 0 and g'(u) = u/(1+u) >= 0",
      (uu - sp.log(1 + uu)).subs(uu, 0) == 0 and is_zero(sp.diff(uu - sp.log(1 + uu), uu) - uu / (1 + uu)))
check("so F(a) <= a log(1 + β/a) + a == a log(e(1 + β/a))",
      is_zero(sp.expand_log(a * sp.log(sp.E * (1 + beta / a)), force=True) - (a * sp.log(1 + beta / a) + a)))
code = a * sp.sqrt(sp.log(1 + q) + q * sp.log(1 + 1 / q))
check("code form a sqrt(log1p(q) + q log1p(1/q)), q = β/a, equals sqrt(a F(a))",
      is_zero(code.subs(q, beta / a) ** 2 - a * F.subs(eps, a)))
Fa = F.subs(eps, a)
check("∂F(a)/∂a == log(1 + β/a) > 0", is_zero(sp.simplify(sp.diff(Fa, a) - sp.log(1 + beta / a))))
check("∂F(a)/∂β == log(1 + a/β) > 0", is_zero(sp.simplify(sp.diff(Fa, beta) - sp.log(1 + a / beta))))

section("(6) McDiarmid")
t, b, delta = sp.symbols("t b delta", positive=True)
tstar = b * sp.sqrt(sp.log(1 / delta) / (2 * m))
check("exp(-2t²/(m (b/m)²)) == δ at t = b sqrt(log(1/δ)/(2m))",
      is_zero(sp.simplify(sp.exp(-2 * tstar**2 / (m * (b / m) ** 2)) - delta)))

section("(7) union bound over the radius grid")
jj = sp.Symbol("j", integer=True, nonnegative=True)
check("Σ_{j=0}^{J} 1/((j+1)(j+2)) == 1 - 1/(J+2)",
      is_zero(sp.summation(1 / ((jj + 1) * (jj + 2)), (jj, 0, J)) - (1 - 1 / (J + 2))))
check("Σ_{j>=0} 1/((j+1)(j+2)) == 1", sp.summation(1 / ((jj + 1) * (jj + 2)), (jj, 0, sp.oo)) == 1)

section("numeric sanity check (in addition to the proof)")
import mpmath  # noqa: E402

ok = True
for av, bv in [(0.1, 5.0), (1.0, 1.0), (50.0, 1e4), (3.0, 0.01)]:
    integral = mpmath.quad(lambda z, bv=bv: mpmath.sqrt(mpmath.log(1 + bv / z)), [0, av])
    bound = av * mpmath.sqrt(mpmath.log1p(bv / av) + bv / av * mpmath.log1p(av / bv))
    ok = ok and integral <= bound <= av * mpmath.sqrt(mpmath.log(mpmath.e * (1 + bv / av)))
check("quadrature <= closed form <= a sqrt(log(e(1 + β/a))) at 4 points", ok)

finish()
