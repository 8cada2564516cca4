"""The averaged-operator (Combettes-Pesquet) Lipschitz bound theta_m / 2**(m-1).

Setting: z_i = R_i(W_i z_{i-1} + b_i), i = 1..m, with R_1..R_{m-1} firmly nonexpansive
and R_m nonexpansive.  For two inputs put d_0 = x - x', d_i = z_i - z'_i.  Firm
nonexpansiveness means N_i = 2 R_i - Id is nonexpansive, so d_i = W_i d_{i-1}/2 + E_i/2
with ||E_i|| <= ||W_i d_{i-1}||.

Claims (noncommutative symbols for the matrices, checked for m = 1..6):

(a) exact identity: W_m d_{m-1} = 2**-(m-1) W_m...W_1 d_0
                                  + sum_{j=1}^{m-1} 2**-(m-j) W_m...W_{j+1} E_j;
(b) with n[k, j] >= ||W_k...W_{j+1}|| and b_j the bound on ||W_j d_{j-1}|| obtained from (a)
    by the triangle inequality, b_m = 2**-(m-1) n[m, 0] + sum_j 2**-(m-j) n[m, j] b_j
    equals theta_m / 2**(m-1), where theta_0 = 1, theta_k = sum_{j<k} n[k, j] theta_j
    (the O(m^2) programme used in unfoldtheory/lipschitz/averaged.py);
(c) theta_m equals the subset sum over J = {j_1 < ... < j_k} of {1..m-1} of the products of
    the blocks' norms n[m, j_k] n[j_k, j_{k-1}] ... n[j_1, 0] (the published form);
(d) replacing every n[k, j] by the product of single-layer norms gives 2**(m-1) prod ||W_i||,
    so the bound never exceeds the plain product on a chain.

Finally ||d_m|| <= ||W_m d_{m-1}|| <= b_m ||d_0|| since R_m is nonexpansive.
Source: Combettes & Pesquet, SIAM J. Math. Data Sci. 2020 (arXiv:1903.01014).
"""

import itertools

import sympy as sp
from _check import check, finish, section

M = 6


def matrices(m):
    return [sp.Symbol(f"W{i}", commutative=False) for i in range(1, m + 1)]


def prod_range(Ws, hi, lo):
    """W_hi ... W_{lo+1} (1-based hi, lo), as a noncommutative product."""
    out = sp.Integer(1)
    for i in range(hi, lo, -1):
        out = out * Ws[i - 1]
    return out


section("(a) exact expansion of W_m d_{m-1}")
for m in range(1, M + 1):
    Ws = matrices(m)
    d0 = sp.Symbol("d0", commutative=False)
    Es = [sp.Symbol(f"E{i}", commutative=False) for i in range(1, m + 1)]
    d = d0
    for i in range(1, m):
        d = sp.Rational(1, 2) * Ws[i - 1] * d + sp.Rational(1, 2) * Es[i - 1]
    lhs = sp.expand(Ws[m - 1] * d)
    rhs = sp.Rational(1, 2 ** (m - 1)) * prod_range(Ws, m, 0) * d0
    rhs += sum((sp.Rational(1, 2 ** (m - j)) * prod_range(Ws, m, j) * Es[j - 1] for j in range(1, m)), sp.Integer(0))
    check(f"m = {m}: W_m d_(m-1) expands into the partial products", sp.expand(lhs - rhs) == 0)

section("(b)-(d) the bound recursion, the O(m^2) programme and the subset sum")
for m in range(1, M + 1):
    n = {(k, j): sp.Symbol(f"n{k}_{j}", positive=True) for k in range(1, m + 1) for j in range(k)}
    b = {}
    for k in range(1, m + 1):
        b[k] = sp.Rational(1, 2 ** (k - 1)) * n[k, 0] + sum(
            (sp.Rational(1, 2 ** (k - j)) * n[k, j] * b[j] for j in range(1, k)), sp.Integer(0))
    theta = {0: sp.Integer(1)}
    for k in range(1, m + 1):
        theta[k] = sum((n[k, j] * theta[j] for j in range(k)), sp.Integer(0))
    check(f"m = {m}: b_m = theta_m / 2**(m-1)", sp.expand(b[m] - theta[m] / 2 ** (m - 1)) == 0)
    subset_sum = sp.Integer(0)
    for r in range(m):
        for J in itertools.combinations(range(1, m), r):
            cuts = (0, *J, m)
            term = sp.Integer(1)
            for lo, hi in itertools.pairwise(cuts):
                term *= n[hi, lo]
            subset_sum += term
    check(f"m = {m}: theta_m equals the sum over the 2**(m-1) subsets", sp.expand(theta[m] - subset_sum) == 0)
    w = sp.symbols(f"w1:{m + 1}", positive=True)
    sub = {n[k, j]: sp.Mul(*w[j:k]) for (k, j) in n}
    check(f"m = {m}: with block norms = products of layer norms, theta_m = 2**(m-1) prod w",
          sp.expand(theta[m].subs(sub) - 2 ** (m - 1) * sp.Mul(*w)) == 0)

finish()
