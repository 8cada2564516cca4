"""Weight-tied iterations x -> phi(Wx + By + b): contraction factor, iterates, and detecting ISTA.

Used by ``unfoldtheory.convergence.spec_contraction`` (contraction_bound) and
``unfoldtheory.convergence.detect`` (detect_method).

Claims
------
1. **The input term does not change the factor.** For any y the pre-activations of a pair are
   u = Wx + c, u' = Wx' + c with c = By + b, so u - u' = W(x - x'), whatever c is. Every certificate
   of a Lipschitz upper bound of x -> phi(Wx) uses only slope restrictions of phi on pairs of
   pre-activations (e.g. the LipSDP quadratic constraint
   (phi(u) - phi(u') - alpha(u - u'))^T (beta(u - u') - (phi(u) - phi(u'))) >= 0), which are the same
   inequalities in u - u' for the shifted pair; hence it bounds x -> phi(Wx + c) for every c.
2. **Iterates.** If ||T(x) - T(x')|| <= rho ||x - x'|| with rho < 1 and x* = T(x*), then by induction
   ||x_K - x*|| = ||T(x_{K-1}) - T(x*)|| <= rho ||x_{K-1} - x*|| <= rho^K ||x_0 - x*||, and the
   fixed point is unique: ||x* - x'*|| <= rho ||x* - x'*|| forces ||x* - x'*|| = 0.
3. **Different layer maps, same W.** Each T_k is rho-Lipschitz, so two runs on the same y satisfy
   ||x_K - x'_K|| <= rho^K ||x_0 - x'_0|| (the same induction without a fixed point).
4. **ISTA from the weights.** W = I - gamma A^T A and B = gamma A^T give I - W = B B^T / gamma and
   A = B^T / gamma; the scalar 1/gamma fitting I - W ~ (1/gamma) B B^T in least squares is
   <B B^T, I - W> / ||B B^T||_F^2, exact when the form holds.
5. **A bias is part of the prox.** x = prox_h(v + b) iff 0 in dh(x) + x - v - b iff
   0 in d(h - <b, .>)(x) + x - v iff x = prox_{h - <b,.>}(v); h - <b, .> is convex when h is.
6. **Momentum layout.** (1 + beta)(I - gamma G) x1 - beta (I - gamma G) x0 + gamma A^T y
   = z - gamma (G z - A^T y) with z = x1 + beta (x1 - x0): a gradient step at the extrapolated point.
"""

import sympy as sp
from _check import check, finish, is_nonneg, is_zero, section

n, m = 3, 2


def _matrix(name: str, rows: int, cols: int) -> sp.Matrix:
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}{i}{j}", real=True))


def _vector(name: str, size: int) -> sp.Matrix:
    return sp.Matrix(size, 1, lambda i, _: sp.Symbol(f"{name}{i}", real=True))


def input_term() -> None:
    section("1. the input term cancels from the difference of a pair's pre-activations")
    W, B = _matrix("w", n, n), _matrix("b", n, m)
    x, xp, y, b = _vector("x", n), _vector("xp", n), _vector("y", m), _vector("c", n)
    diff = (W * x + B * y + b) - (W * xp + B * y + b)
    check("(Wx + By + b) - (Wx' + By + b) = W(x - x')", all(is_zero(e) for e in diff - W * (x - xp)))
    alpha, beta = sp.symbols("alpha beta", real=True)
    u, up, c = _vector("u", n), _vector("up", n), _vector("s", n)
    phi = sp.Function("phi")
    act = lambda v: v.applyfunc(phi)  # noqa: E731
    qc = lambda p, q: (act(p) - act(q) - alpha * (p - q)).dot(beta * (p - q) - (act(p) - act(q)))  # noqa: E731
    shifted = qc(u + c, up + c).subs({phi(u[i] + c[i]): sp.Symbol(f"f{i}") for i in range(n)})
    shifted = shifted.subs({phi(up[i] + c[i]): sp.Symbol(f"g{i}") for i in range(n)})
    plain = qc(u, up).subs({phi(u[i]): sp.Symbol(f"f{i}") for i in range(n)})
    plain = plain.subs({phi(up[i]): sp.Symbol(f"g{i}") for i in range(n)})
    check("the slope constraint of the shifted pair is the same expression in the outputs and u - u'",
          is_zero(shifted - plain))


def iterates() -> None:
    section("2-3. contraction gives rho^K, a unique fixed point, and rho^K between two runs")
    rho = sp.Symbol("rho", nonnegative=True)
    d, k = sp.symbols("d k", nonnegative=True)
    check("rho * rho^k d = rho^(k+1) d (the induction step)", is_zero(rho * (rho**k * d) - rho ** (k + 1) * d))
    r = sp.Symbol("r", nonnegative=True)  # rho = r/(1 + r) covers every rho in [0, 1)
    check("rho < 1: 1 - rho > 0, so D <= rho D, i.e. (1 - rho) D <= 0 with D >= 0, forces D = 0",
          sp.simplify(1 - r / (1 + r)).is_positive is True and is_nonneg((1 - r / (1 + r)) * d))


def ista_from_weights() -> None:
    section("4. W = I - gamma A^T A, B = gamma A^T: I - W = B B^T / gamma, A = B^T / gamma, and the fit")
    gamma = sp.Symbol("gamma", positive=True)
    A = _matrix("a", m, n)
    W, B = sp.eye(n) - gamma * A.T * A, gamma * A.T
    check("I - W = B B^T / gamma", all(is_zero(e) for e in (sp.eye(n) - W) - B * B.T / gamma))
    check("A = B^T / gamma", all(is_zero(e) for e in A - B.T / gamma))
    BB, D = B * B.T, sp.eye(n) - W
    inner = sum(BB[i, j] * D[i, j] for i in range(n) for j in range(n))
    norm2 = sum(BB[i, j] ** 2 for i in range(n) for j in range(n))
    check("<B B^T, I - W> / ||B B^T||_F^2 = 1/gamma", is_zero(inner / norm2 - 1 / gamma))


def bias_in_prox() -> None:
    section("5. phi(v + b) = prox_{h - <b,.>}(v): the optimality conditions coincide")
    x, v, b, s = sp.symbols("x v b s", real=True)  # s an element of dh(x); one coordinate suffices
    check("s + x - (v + b) = (s - b) + x - v", is_zero((s + x - (v + b)) - ((s - b) + x - v)))


def momentum_layout() -> None:
    section("6. FISTA's spec weights are a gradient step at the extrapolated point")
    gamma, beta = sp.symbols("gamma beta", real=True)
    A = _matrix("a", m, n)
    G = A.T * A
    x0, x1, y = _vector("x", n), _vector("z", n), _vector("y", m)
    step = sp.eye(n) - gamma * G
    layer = (1 + beta) * step * x1 - beta * step * x0 + gamma * A.T * y
    z = x1 + beta * (x1 - x0)
    check("(1+beta)(I - gamma G)x1 - beta(I - gamma G)x0 + gamma A^T y = z - gamma(Gz - A^T y)",
          all(is_zero(e) for e in layer - (z - gamma * (G * z - A.T * y))))


if __name__ == "__main__":
    input_term()
    iterates()
    ista_from_weights()
    bias_in_prox()
    momentum_layout()
    finish()
