"""Heavy ball and Nesterov's method on quadratics: rate = max of the spectral radii at mu and L.

Used by ``unfoldtheory.convergence.closed_form`` (heavy_ball_rate, nesterov_rate and the tunings).
On f(x) = 1/2 x^T H x with spectrum in [mu, L] (0 <= mu < L) each eigencomponent evolves on its
own, so the asymptotic rate is the largest root modulus r(lambda) of the characteristic
polynomial over lambda in [mu, L] (Polyak 1964; Lessard, Recht & Packard 2016, Sec. 2).
Step eta > 0, momentum beta >= 0.

Claims
------
1. **Characteristic polynomials.** Heavy ball x+ = x - eta lambda x + beta (x - x-):
   z^2 - (1 + beta - eta lambda) z + beta.  Nesterov y = x + beta (x - x-), x+ = (1 - eta lambda) y:
   z^2 - (1 + beta) c z + beta c with c = 1 - eta lambda (determinants of zI - T).
2. **Root modulus of z^2 - a z + b, b >= 0.** If a^2 < 4b the roots are complex conjugates with
   |z|^2 = b; otherwise real with largest modulus (|a| + sqrt(a^2 - 4b))/2 >= sqrt(b).  So
   r = R(|a|) with R(t) = sqrt(b) for t < 2 sqrt(b), (t + sqrt(t^2 - 4b))/2 after: continuous and
   nondecreasing in t.
3. **Heavy ball: worst case at an end.** a(lambda) = 1 + beta - eta lambda is affine, so |a| is
   largest at lambda = mu or L (``gradient_rate.py`` claim 1), and by claim 2
   rate = max(r(mu), r(L)).
4. **Polyak's tuning.** a(mu) = 2 sqrt(beta) and a(L) = -2 sqrt(beta) solve to
   sqrt(beta) = (sqrt L - sqrt mu)/(sqrt L + sqrt mu), eta = 4/(sqrt L + sqrt mu)^2; then
   |a(lambda)| <= 2 sqrt(beta) on [mu, L] and the rate is sqrt(beta) = (sqrt kappa - 1)/(sqrt kappa + 1).
5. **Nesterov: worst case at an end.** As a function of c, r is nondecreasing on c >= 0 (complex
   branch sqrt(beta c); real branch has positive derivative, and the branches meet) and
   nonincreasing on c <= 0 (real roots, modulus increasing in |c|).  c is affine in lambda, so the
   maximum over [mu, L] is at lambda = mu or L.
6. **Nesterov's tunings.** eta = 1/L, beta = (sqrt kappa - 1)/(sqrt kappa + 1): double root
   1 - 1/sqrt kappa at lambda = mu and c = 0 (roots 0) at lambda = L: rate 1 - 1/sqrt kappa.
   eta = 4/(3L + mu), beta = (q - 2)/(q + 2), q = sqrt(3 kappa + 1): r(mu) = r(L) = 1 - 2/q.
"""

import sympy as sp
from _check import check, finish, is_nonneg, is_pos, is_zero, section

z, lam = sp.symbols("z lambda", real=True)
eta = sp.Symbol("eta", positive=True)
beta = sp.Symbol("beta", nonnegative=True)


def characteristic_polynomials() -> None:
    section("1. characteristic polynomials of the 2x2 iterations")
    T_hb = sp.Matrix([[1 + beta - eta * lam, -beta], [1, 0]])
    check("heavy ball: det(zI - T) = z^2 - (1 + beta - eta lambda) z + beta",
          is_zero((z * sp.eye(2) - T_hb).det() - (z**2 - (1 + beta - eta * lam) * z + beta)))
    c = 1 - eta * lam
    T_n = sp.Matrix([[(1 + beta) * c, -beta * c], [1, 0]])  # (x_k, x_{k-1}) -> (x_{k+1}, x_k)
    check("Nesterov: det(zI - T) = z^2 - (1 + beta) c z + beta c",
          is_zero((z * sp.eye(2) - T_n).det() - (z**2 - (1 + beta) * c * z + beta * c)))


def root_modulus() -> None:
    section("2. largest root modulus of z^2 - a z + b (b >= 0)")
    a = sp.Symbol("a", real=True)
    w = sp.Symbol("w", positive=True)  # complex case: w = 4b - a^2 > 0
    b_c = (a**2 + w) / 4
    root = (a + sp.I * sp.sqrt(w)) / 2
    check("complex case: (a + i sqrt(4b - a^2))/2 is a root (and so is its conjugate)",
          is_zero(sp.expand(root**2 - a * root + b_c)))
    check("complex case: |z|^2 = (a^2 + (4b - a^2))/4 = b", is_zero(sp.expand(root * sp.conjugate(root)) - b_c))
    rb = sp.Symbol("rb", positive=True)  # b = rb^2
    s = sp.Symbol("s", positive=True)  # real case t = |a| = 2 rb + s (s = 0 is the double root)
    t = 2 * rb + s
    disc = sp.expand(t**2 - 4 * rb**2)
    check("real case: t^2 - 4b = s (4 rb + s) > 0", is_zero(disc - s * (4 * rb + s)) and is_pos(s * (4 * rb + s)))
    R = (t + sp.sqrt(disc)) / 2
    other = (t - sp.sqrt(disc)) / 2
    check("real case: (t ± sqrt(t^2 - 4b))/2 are the roots of z^2 - t z + b",
          is_zero(sp.expand(R**2 - t * R + rb**2)) and is_zero(sp.expand(other**2 - t * other + rb**2)))
    check("real case: the roots' product is b >= 0 and their sum t > 0, so both are >= 0 and R is the largest modulus",
          is_zero(sp.expand(R * other) - rb**2) and is_pos(R + other))
    check("real case: R - sqrt(b) >= 0", is_nonneg(sp.expand(R - rb)))
    tt = sp.Symbol("t", positive=True)
    deriv = sp.diff((tt + sp.sqrt(tt**2 - 4 * rb**2)) / 2, tt).subs(tt, t)
    expected = (1 + t / sp.sqrt(s * (4 * rb + s))) / 2
    check("real case: dR/dt = (1 + t/sqrt(t^2 - 4b))/2 > 0", is_zero(sp.simplify(deriv - expected)) and is_pos(expected))
    check("branches meet: R -> sqrt(b) as s -> 0", is_zero(sp.limit(R, s, 0) - rb))


def polyak_tuning() -> None:
    section("3-4. heavy ball: Polyak's tuning equalises the ends; rate sqrt(beta)")
    sL, sm = sp.symbols("sL sm", positive=True)  # sqrt L, sqrt mu
    rbeta = (sL - sm) / (sL + sm)
    e = 4 / (sL + sm) ** 2
    a_mu = 1 + rbeta**2 - e * sm**2
    a_L = 1 + rbeta**2 - e * sL**2
    check("a(mu) = 2 sqrt(beta)", is_zero(a_mu - 2 * rbeta))
    check("a(L) = -2 sqrt(beta)", is_zero(a_L + 2 * rbeta))
    tt = sp.Symbol("tt", real=True)
    a_mid = (1 - tt) * a_mu + tt * a_L
    check("a is affine in lambda: a((1-t) mu + t L) = (1-t) a(mu) + t a(L)",
          is_zero(1 + rbeta**2 - e * ((1 - tt) * sm**2 + tt * sL**2) - a_mid))
    gap = 4 * rbeta**2 - a_mid**2
    v = sp.Symbol("v", nonnegative=True)
    check("4 beta - a^2 = 16 beta t(1 - t) >= 0 for t = v/(1 + v) in [0, 1) (and = 0 at t = 1): the complex or "
          "double branch, r = sqrt(beta) on all of [mu, L]",
          is_zero(gap - 16 * rbeta**2 * tt * (1 - tt))
          and is_nonneg(sp.factor((16 * rbeta**2 * tt * (1 - tt)).subs(tt, v / (1 + v)))))
    kappa_root = sp.Symbol("sk", positive=True)  # sqrt kappa
    check("sqrt(beta) = (sqrt kappa - 1)/(sqrt kappa + 1)",
          is_zero(rbeta.subs(sL, kappa_root * sm) - (kappa_root - 1) / (kappa_root + 1)))


def nesterov_monotone() -> None:
    section("5. Nesterov: r(c) nondecreasing for c >= 0, nonincreasing for c <= 0")
    c = sp.Symbol("c", positive=True)
    check("complex branch: d sqrt(beta c)/dc >= 0", is_nonneg(sp.diff(sp.sqrt(beta * c), c)))
    k = sp.Symbol("k", nonnegative=True)  # real branch: (1 + beta)^2 c - 4 beta = k >= 0
    cc = sp.Symbol("cc", positive=True)
    r_real = ((1 + beta) * cc + sp.sqrt((1 + beta) ** 2 * cc**2 - 4 * beta * cc)) / 2
    d = sp.diff(r_real, cc)
    on_branch = {cc: (4 * beta + k) / (1 + beta) ** 2}
    numerator = (1 + beta) ** 2 * cc - 2 * beta
    check("real branch (c > 0): dr/dc = ((1 + beta) + ((1 + beta)^2 c - 2 beta)/sqrt(disc))/2",
          is_zero(sp.simplify(d - ((1 + beta) + numerator / sp.sqrt((1 + beta) ** 2 * cc**2 - 4 * beta * cc)) / 2)))
    check("real branch: (1 + beta)^2 c - 2 beta = 2 beta + k >= 0",
          is_zero(numerator.subs(on_branch) - (2 * beta + k)) and is_nonneg(2 * beta + k))
    check("branches meet where (1 + beta)^2 c = 4 beta: (1 + beta) c / 2 = sqrt(beta c)",
          is_zero(sp.simplify((((1 + beta) * cc / 2) ** 2 - beta * cc).subs(cc, 4 * beta / (1 + beta) ** 2))))
    m = sp.Symbol("m", positive=True)  # c = -m
    r_neg = ((1 + beta) * m + sp.sqrt((1 + beta) ** 2 * m**2 + 4 * beta * m)) / 2
    check("c = -m < 0: (r_neg) is a root of z^2 + (1 + beta) m z - beta m",
          is_zero(sp.expand(r_neg**2 + (1 + beta) * m * (-r_neg) - beta * m)) or
          is_zero(sp.expand((-r_neg) ** 2 - (1 + beta) * (-m) * (-r_neg) + beta * (-m))))
    check("c < 0: the modulus ((1 + beta)|c| + sqrt(...))/2 is increasing in |c|", is_pos(sp.diff(r_neg, m)))


def nesterov_tunings() -> None:
    section("6. Nesterov's tunings: standard 1 - 1/sqrt(kappa), equalised 1 - 2/sqrt(3 kappa + 1)")
    sk = sp.Symbol("sk", positive=True)  # sqrt(kappa), kappa = L/mu; take mu = 1, L = kappa
    b = (sk - 1) / (sk + 1)
    c_mu = 1 - 1 / sk**2  # eta mu = mu/L
    disc = sp.factor((1 + b) ** 2 * c_mu**2 - 4 * b * c_mu)
    check("standard: the discriminant vanishes at lambda = mu", is_zero(disc))
    check("standard: the double root is 1 - 1/sqrt(kappa)", is_zero((1 + b) * c_mu / 2 - (1 - 1 / sk)))
    check("standard: at lambda = L, c = 1 - L/L = 0 and both roots are 0", is_zero(1 - sk**2 / sk**2))
    w = sp.Symbol("w", positive=True)
    q = 2 + w  # q = sqrt(3 kappa + 1) > 2
    kappa = (q**2 - 1) / 3
    bq = (q - 2) / (q + 2)
    e = 4 / (3 * kappa + 1)  # eta with mu = 1
    c_mu, c_L = 1 - e, 1 - e * kappa
    check("equalised: the discriminant vanishes at lambda = mu", is_zero(sp.factor((1 + bq) ** 2 * c_mu**2 - 4 * bq * c_mu)))
    check("equalised: the double root at mu is 1 - 2/q", is_zero((1 + bq) * c_mu / 2 - (1 - 2 / q)))
    mL = sp.factor(-c_L)
    check("equalised: c(L) < 0", is_pos(mL))
    r_L = ((1 + bq) * mL + sp.sqrt(sp.factor((1 + bq) ** 2 * mL**2 + 4 * bq * mL))) / 2
    check("equalised: r(L) = 1 - 2/q", is_zero(sp.simplify(r_L - (1 - 2 / q))))


if __name__ == "__main__":
    characteristic_polynomials()
    root_modulus()
    polyak_tuning()
    nesterov_monotone()
    nesterov_tunings()
    finish()
