"""Rigorous eigenvalue bounds from any float64 Cholesky factor (unfoldtheory/convergence/psd_bound.py).

Used by the PEP certificate's float route (``pep_certificate.rounded_check``), the class constants
``μ ≤ λ_min(AᵀA)``, ``L ≥ ‖A‖₂²`` of ``pep_rate_of`` and the σ_min bound of ``generalized_coherence``.

Claims
------
1. **Residual identity.** For symmetric S, Ŝ, a shift σ and any matrix R, with
   ``Δ = RᵀR − (Ŝ − σI)``: ``S − σI = RᵀR − Δ + (S − Ŝ)`` identically (checked on symbolic 2×2
   matrices).
2. **RᵀR ⪰ 0.** ``xᵀRᵀRx = ‖Rx‖²`` (checked symbolically), so by Weyl's inequality
   ``λ_min(S) − σ ≥ −‖Δ‖₂ − ‖S − Ŝ‖₂``.
3. **Spectral ≤ Frobenius** for a symmetric perturbation: the eigenvalues' squares sum to
   ``‖Π‖_F²`` (checked on a symmetric 2×2: ``λ₁² + λ₂² = tr(Π²) = ‖Π‖_F²``), so
   ``λ_min(S) ≥ σ − ‖Δ‖_F − ε`` whenever ``‖S − Ŝ‖_F ≤ ε``.
4. **Outward rounding by one ulp.** Round-to-nearest returns one of the two floats adjacent to the
   exact value x (or x itself), so the next float above the result is ≥ x (checked on the float64
   neighbours of sampled rationals, exactly in Fractions).
5. **Power-of-two scaling.** ``λ(c²G) = c²λ(G)`` for ``G = AᵀA`` scaled through ``A → cA``
   (checked symbolically on 2×2), so the bounds of the scaled matrix scale back by ``4^k``.

The floating-point error bounds themselves are Higham's (*Accuracy and Stability of Numerical
Algorithms*, 2nd ed.): Lemma 3.1 (inner products, any summation order, ``γ_n``) and the model (2.8)
with underflow (a product carries an absolute ``|η| ≤ 2⁻¹⁰⁷⁵``, additions none).
"""

import math
import random
from fractions import Fraction

import sympy as sp
from _check import check, finish, is_nonneg, is_zero, section

section("1. residual identity")
s = sp.symbols("s11 s12 s22", real=True)
h = sp.symbols("h11 h12 h22", real=True)
r = sp.symbols("r11 r12 r21 r22", real=True)
sigma = sp.Symbol("sigma", real=True)
S = sp.Matrix([[s[0], s[1]], [s[1], s[2]]])
Sh = sp.Matrix([[h[0], h[1]], [h[1], h[2]]])
R = sp.Matrix([[r[0], r[1]], [r[2], r[3]]])
I2 = sp.eye(2)
Delta = R.T * R - (Sh - sigma * I2)
check("S − σI = RᵀR − Δ + (S − Ŝ)", is_zero((S - sigma * I2 - (R.T * R - Delta + (S - Sh))).norm()))

section("2. RᵀR is positive semidefinite")
x = sp.Matrix(sp.symbols("x1 x2", real=True))
check("xᵀRᵀRx = ‖Rx‖²", is_zero(sp.expand((x.T * R.T * R * x)[0] - (R * x).dot(R * x))))
check("‖Rx‖² is a sum of squares", is_nonneg(sum(((R * x)[i]) ** 2 for i in range(2))))

section("3. spectral norm ≤ Frobenius norm (symmetric 2×2)")
p = sp.symbols("p11 p12 p22", real=True)
Pi = sp.Matrix([[p[0], p[1]], [p[1], p[2]]])
ev = list(Pi.eigenvals().keys())
check("λ₁² + λ₂² = ‖Π‖_F²", is_zero(sp.simplify(sum(e**2 for e in ev) - sum(v**2 for v in Pi))))

section("4. one ulp past the round-to-nearest result bounds the exact value")
rng = random.Random(0)
ok = True
for _ in range(2000):
    q = Fraction(rng.randint(1, 10**30), rng.randint(1, 10**30)) * Fraction(2) ** rng.randint(-1100, 1000)
    x_hat = float(q)
    ok = ok and Fraction(math.nextafter(x_hat, math.inf)) >= q and Fraction(math.nextafter(x_hat, -math.inf)) <= q
check("nextafter(fl(q), ±inf) brackets q for 2000 rationals across the float64 range (subnormals included)", ok)

section("5. power-of-two scaling of a Gram matrix")
a = sp.symbols("a11 a12 a21 a22", real=True)
c = sp.Symbol("c", positive=True)
A = sp.Matrix([[a[0], a[1]], [a[2], a[3]]])
lam = sp.Symbol("lam")
charpoly = ((c * A).T * (c * A) - c**2 * lam * I2).det() - c**4 * (A.T * A - lam * I2).det()
check("det((cA)ᵀ(cA) − c²λI) = c⁴ det(AᵀA − λI)", is_zero(sp.expand(charpoly)))

finish()
