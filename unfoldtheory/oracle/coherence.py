"""Exact oracles for the coherence certificates of :mod:`unfoldtheory.convergence.coherence`.

* :func:`coherence_bound_holds`: the generalized-coherence ``Bound`` of
  :func:`~unfoldtheory.convergence.generalized_coherence` — its value is the coherence of the feasible
  weight ``W_i/(W_iᵀA_i)`` (so ``μ̃(A) ≤ value``), and its dual side ``details["lower"]`` follows from
  the dual vectors by weak duality (``proofs/lista_coherence_chain.py``):
  ``σ² ≤ λ_min`` of the smaller Gram matrix, and per column ``(1 − ℓ_i‖z‖₁)²σ² ≥ n T_i²‖r‖₂²`` with
  ``r = A_i − A_{−i}z``, ``T_i = max(1, upper_i)``.
* :func:`chain_bound_holds`: a :class:`~unfoldtheory.convergence.LayerwiseCertificate` — the per-layer
  chain (module docstring of ``coherence``, steps 1–3) recomputed exactly from the layer matrices
  ``M_k = c_k·L_kᵀA`` and thresholds; every certified layer must have its threshold at least the exact
  no-false-positive requirement and bounds at least the exact chain's ``(‖e‖_∞, ‖e‖₁, √(ab))``.

Both take the float64 data as given and decide in :class:`~fractions.Fraction` (tiny A only).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from unfoldtheory.oracle.rational import add, exact, identity, is_positive_semidefinite, matmul, matrix, transpose


def coherence_bound_holds(A: Any, W: Any, bound: Any) -> bool:
    """Whether ``bound`` (from ``generalized_coherence(A)``, with its ``W``) is proved exactly."""
    Aq, Wq = matrix(A), matrix(W)
    m, n = len(Aq), len(Aq[0])
    P = matmul(transpose(Wq), Aq)  # P_ij = W_iᵀA_j
    value = exact(bound.value)
    for i in range(n):
        if P[i][i] == 0 or any(abs(P[i][j]) > value * abs(P[i][i]) for j in range(n) if j != i):
            return False
    return _lower_holds(Aq, m, n, bound.details, exact(bound.certificate["sigma_min_lower"]))


def _lower_holds(Aq: list[list[Fraction]], m: int, n: int, details: dict[str, Any], sigma: Fraction) -> bool:
    """The dual side: ``σ`` (the certified lower bound on σ_min(A) it used) and each column's lower bound."""
    if sigma > 0:
        F = Aq if m <= n else transpose(Aq)  # the smaller Gram matrix F Fᵀ
        gram = matmul(F, transpose(F))
        if not is_positive_semidefinite(add(gram, identity(len(gram)), -sigma * sigma)):
            return False
    for i in range(n):
        low = exact(details["lower_per_column"][i])
        if low == 0:
            continue
        if sigma <= 0:
            return False
        z = [exact(v) for v in details["dual_vectors"][i]]
        T = max(Fraction(1), exact(details["upper_per_column"][i]))
        r = [Aq[k][i] - sum((Aq[k][j] * z[j] for j in range(n) if j != i), Fraction(0)) for k in range(m)]
        z1 = sum((abs(z[j]) for j in range(n) if j != i), Fraction(0))
        slack = 1 - low * z1
        if low > T or slack < 0 or slack * slack * sigma * sigma < n * T * T * sum((v * v for v in r), Fraction(0)):
            return False
    return True


def _top(values: list[Fraction], q: int) -> Fraction:
    return sum(sorted(values, reverse=True)[:q], Fraction(0)) if q > 0 else Fraction(0)


def chain_bound_holds(layers: Sequence[tuple[Any, Any, float]], thresholds: Any, sparsity: int, B: float,
                      certificate: Any) -> bool:
    """Whether every certified layer of ``certificate`` is proved by the exact chain.

    ``layers`` are ``(L_k, A, c_k)`` with ``M_k = c_k·L_kᵀA``; ``thresholds`` the ``θ_k`` used."""
    s, a, b = sparsity, exact(B), sparsity * exact(B)
    for k, (Lk, A, c) in enumerate(layers):
        err = certificate.errors[k]
        if not err.certified:
            return all(not e.certified for e in certificate.errors[k:])
        M = [[exact(c) * v for v in row] for row in matmul(transpose(matrix(Lk)), matrix(A))]
        n = len(M)
        off = [[abs(M[i][j]) for j in range(n) if j != i] for i in range(n)]
        col = [[abs(M[i][j]) for i in range(n) if i != j] for j in range(n)]
        q = min(s, n - 1)
        mu = [max(row, default=Fraction(0)) for row in off]
        d = [abs(1 - M[j][j]) for j in range(n)]
        theta = exact(thresholds[k])
        required = max(min(mu[i] * b, _top(off[i], q) * a) for i in range(n))
        if theta < required:
            return False
        q1 = min(s - 1, n - 1)
        a_new = max(d[i] * a + min(mu[i] * b, _top(off[i], q1) * a) for i in range(n)) + theta
        rate = max(d[j] + _top(col[j], q1) for j in range(n))
        b = min(rate * b + s * theta, s * a_new)
        a = min(a_new, b)
        value = exact(err.value)
        if exact(certificate.l1[k]) < b or exact(certificate.linf[k]) < a or value < 0 or value * value < a * b:
            return False
    return True


__all__ = ["chain_bound_holds", "coherence_bound_holds"]
