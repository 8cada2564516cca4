"""Gradient step on F_{mu,L}: the tight rate max(|1 - eta*mu|, |1 - eta*L|) and the optimal step.

Used by ``unfoldtheory.convergence.closed_form`` (gd_rate, gd_optimal_step, schedule_rate).
Let 0 <= mu < L, eta > 0, f L-smooth and mu-strongly convex, x* its minimiser, and
x+ = x - eta*grad f(x).  Write dx = x - x*, dg = grad f(x) - grad f(x*) = grad f(x).

Claims
------
1. **Maximum over the spectrum.** For lambda = (1-t) mu + t L, t in [0, 1]:
   1 - eta*lambda = (1-t)(1 - eta mu) + t(1 - eta L), so by the triangle inequality
   |1 - eta lambda| <= (1-t)|1 - eta mu| + t|1 - eta L| <= max(|1 - eta mu|, |1 - eta L|),
   with equality at t = 0 or t = 1.  Hence max_{lambda in [mu, L]} |1 - eta lambda| = rho(eta)
   := max(|1 - eta mu|, |1 - eta L|).
2. **Optimal step.** At eta* = 2/(L + mu): 1 - eta* mu = -(1 - eta* L) = (L - mu)/(L + mu), so
   rho(eta*) = (kappa - 1)/(kappa + 1), kappa = L/mu.  For eta = eta* - s (s > 0):
   rho >= 1 - eta mu = rho* + s mu; for eta = eta* + s: rho >= eta L - 1 = rho* + s L > rho*.
3. **Sector inequality.** Adding the two interpolation inequalities of the pair (x, x*)
   (Taylor, Hendrickx & Glineur 2017, Thm. 4; ``pep_certificate.py`` checks that every f of
   the class satisfies them) and multiplying by L - mu > 0 gives
   q := <dg - mu dx, L dx - dg> >= 0.
4. **Sufficiency (the rate holds for every f in the class).** With the Gram entries
   X = ||dx||^2, P = <dg, dx>, Q = ||dg||^2 (any dimension):
   - if eta <= eta*: rho = 1 - eta mu, and with nu = 2 eta (1 - eta mu)/(L - mu)
     rho^2 X - ||dx - eta dg||^2 - nu q = (nu - eta^2) ||dg - mu dx||^2, nu >= 0, nu - eta^2 >= 0;
   - if eta >= eta*: rho = eta L - 1, and with nu = 2 eta (eta L - 1)/(L - mu)
     rho^2 X - ||dx - eta dg||^2 - nu q = (nu - eta^2) ||dg - L dx||^2, nu >= 0, nu - eta^2 >= 0.
   Hence ||x+ - x*||^2 <= rho^2 ||x - x*||^2 - nu q - (square) <= rho^2 ||x - x*||^2.  The
   multiplier nu is the one-step PEP certificate.
5. **Tightness.** f(x) = lambda/2 ||x - x*||^2 with lambda the maximising end of claim 1 is in
   the class and gives ||x+ - x*|| = |1 - eta lambda| ||x - x*|| = rho ||x - x*||.
6. **Schedules.** x* is a fixed point of every step, so claim 4 applied step by step gives
   ||x_K - x*|| <= prod_k rho(eta_k) ||x_0 - x*||.  When all steps lie on the same side of eta*
   the same end (mu or L) maximises every factor, and that quadratic attains the product.
"""

import sympy as sp
from _check import check, finish, is_nonneg, is_zero, section

mu = sp.Symbol("mu", nonnegative=True)
D = sp.Symbol("D", positive=True)  # L - mu
L = mu + D
eta, t = sp.symbols("eta t", positive=True)
X, P, Q = sp.symbols("X P Q", real=True)  # ||dx||^2, <dg, dx>, ||dg||^2


def spectrum_maximum() -> None:
    section("1. max over lambda in [mu, L] of |1 - eta lambda| is attained at an end")
    tt = sp.Symbol("tt", real=True)
    lam = (1 - tt) * mu + tt * L
    check("1 - eta*lambda = (1-t)(1 - eta mu) + t(1 - eta L)",
          is_zero(1 - eta * lam - ((1 - tt) * (1 - eta * mu) + tt * (1 - eta * L))))
    # A = |1 - eta mu|, B = |1 - eta L|, M = max(A, B): A = M - m_a, B = M - m_b with m_a, m_b >= 0
    M, m_a, m_b = sp.symbols("M m_a m_b", nonnegative=True)
    A, B = M - m_a, M - m_b
    w = sp.Symbol("w", nonnegative=True)
    t1 = w / (1 + w)  # t in [0, 1); t = 1 is B <= M itself
    check("M - ((1-t) A + t B) = (1-t) m_a + t m_b >= 0 for t in [0, 1)",
          is_zero(M - ((1 - t1) * A + t1 * B) - ((1 - t1) * m_a + t1 * m_b)) and is_nonneg((1 - t1) * m_a + t1 * m_b))
    check("t = 0 gives lambda = mu and t = 1 gives lambda = L", is_zero(lam.subs(tt, 0) - mu) and is_zero(lam.subs(tt, 1) - L))


def optimal_step() -> None:
    section("2. the optimal step 2/(L + mu) and its rate (kappa - 1)/(kappa + 1)")
    es = 2 / (L + mu)
    rho_star = (L - mu) / (L + mu)
    check("1 - eta* mu = (L - mu)/(L + mu)", is_zero(1 - es * mu - rho_star))
    check("1 - eta* L = -(L - mu)/(L + mu)", is_zero(1 - es * L + rho_star))
    kappa = sp.Symbol("kappa", positive=True)
    check("(L - mu)/(L + mu) = (kappa - 1)/(kappa + 1) with L = kappa mu",
          is_zero(rho_star.subs(D, (kappa - 1) * mu) - (kappa - 1) / (kappa + 1)))
    s = sp.Symbol("s", positive=True)
    check("eta = eta* - s: 1 - eta mu = rho* + s mu >= rho*",
          is_zero(1 - (es - s) * mu - rho_star - s * mu) and is_nonneg(s * mu))
    check("eta = eta* + s: eta L - 1 = rho* + s L > rho*", is_zero((es + s) * L - 1 - rho_star - s * L) and (s * L).is_positive)


def sector_inequality() -> None:
    section("3. the two interpolation inequalities of (x, x*) give <dg - mu dx, L dx - dg> >= 0")
    # row(i, j) = f_j - f_i + <g_j, x_i - x_j> + mu/2 ||x_i - x_j||^2 + ||g_i - g_j - mu(x_i - x_j)||^2/(2(L - mu)) <= 0
    f0, f1 = sp.symbols("f0 f1", real=True)
    shifted = Q - 2 * mu * P + mu**2 * X  # ||dg - mu dx||^2
    # point 1 = (x, g), point 0 = (x*, 0): <g_0, x_1 - x_0> = 0 and <g_1, x_0 - x_1> = -P
    row_10 = f0 - f1 + 0 + mu / 2 * X + shifted / (2 * D)
    row_01 = f1 - f0 - P + mu / 2 * X + shifted / (2 * D)
    q = L * P - Q - mu * L * X + mu * P  # <dg - mu dx, L dx - dg>
    check("(L - mu)(row(x, x*) + row(x*, x)) = -q", is_zero(D * (row_10 + row_01) + q))


def sufficiency() -> None:
    section("4. rho^2 ||dx||^2 - ||dx - eta dg||^2 is nu*q plus a nonnegative square (both regimes)")
    q = L * P - Q - mu * L * X + mu * P
    step = X - 2 * eta * P + eta**2 * Q  # ||dx - eta dg||^2
    w = sp.Symbol("w", nonnegative=True)
    # short steps: eta = eta*/(1 + w)
    rho = 1 - eta * mu
    nu = 2 * eta * (1 - eta * mu) / D
    check("short steps: rho^2 X - ||dx - eta dg||^2 - nu q = (nu - eta^2)||dg - mu dx||^2",
          is_zero(rho**2 * X - step - nu * q - (nu - eta**2) * (Q - 2 * mu * P + mu**2 * X)))
    short = {eta: 2 / ((1 + w) * (L + mu))}
    check("short steps: nu >= 0", is_nonneg(nu.subs(short)))
    check("short steps: nu - eta^2 >= 0", is_nonneg((nu - eta**2).subs(short)))
    check("short steps: rho = 1 - eta mu is the max (1 - eta mu >= eta L - 1)",
          is_nonneg((1 - eta * mu - (eta * L - 1)).subs(short)))
    check("short steps: 1 - eta mu >= 0", is_nonneg((1 - eta * mu).subs(short)))
    # long steps: eta = eta* (1 + w)
    rho = eta * L - 1
    nu = 2 * eta * (eta * L - 1) / D
    check("long steps: rho^2 X - ||dx - eta dg||^2 - nu q = (nu - eta^2)||dg - L dx||^2",
          is_zero(rho**2 * X - step - nu * q - (nu - eta**2) * (Q - 2 * L * P + L**2 * X)))
    long = {eta: 2 * (1 + w) / (L + mu)}
    check("long steps: nu >= 0", is_nonneg(nu.subs(long)))
    check("long steps: nu - eta^2 >= 0", is_nonneg((nu - eta**2).subs(long)))
    check("long steps: rho = eta L - 1 is the max (eta L - 1 >= |1 - eta mu|)",
          is_nonneg((eta * L - 1 - (1 - eta * mu)).subs(long)) and is_nonneg((eta * L - 1 + (1 - eta * mu)).subs(long)))


def tightness_and_schedules() -> None:
    section("5-6. quadratics attain the rate; schedules multiply")
    lam, x = sp.symbols("lambda x", real=True)
    check("f = lambda/2 x^2: x+ = (1 - eta lambda) x", is_zero((x - eta * lam * x) - (1 - eta * lam) * x))
    e1, e2, e3 = sp.symbols("eta1:4", positive=True)
    x3 = (1 - e3 * lam) * (1 - e2 * lam) * (1 - e1 * lam) * x
    check("three steps on the quadratic: x_3 = prod_k (1 - eta_k lambda) x_0",
          is_zero(x3 - sp.prod([1 - e * lam for e in (e1, e2, e3)]) * x))


if __name__ == "__main__":
    spectrum_maximum()
    optimal_step()
    sector_inequality()
    sufficiency()
    tightness_and_schedules()
    finish()
