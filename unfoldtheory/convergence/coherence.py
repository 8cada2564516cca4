"""Generalized mutual coherence and certified per-layer errors of LISTA-type networks.

**Generalized coherence** (ALISTA: Liu, Chen, Wang & Yin, ICLR 2019, Definition 1)::

    μ̃(A) = inf_{W ∈ ℝ^{m×n}: W_iᵀA_i = 1 ∀i} max_{i≠j} |W_iᵀA_j|.

The infimum separates by column, ``μ̃ = max_i μ̃_i`` with the LP
``μ̃_i = min_w max_{j≠i} |wᵀA_j|`` s.t. ``wᵀA_i = 1``. Its LP dual is
``μ̃_i = 1 / min{‖z‖₁ : Σ_{j≠i} z_j A_j = A_i}``: for every z with ``A_{−i}z = A_i − r`` and every
feasible w, ``max_j |wᵀA_j|·‖z‖₁ ≥ wᵀA_{−i}z = 1 − wᵀr`` (weak duality; ``proofs/lista_coherence_chain.py``).

**The per-layer chain.** Every layer of ALISTA, LISTA-CP and unfolded ISTA, fed noiseless
``y = Ax*``, is ``x_{k+1} = ST_{θ_k}(x_k − M_k(x_k − x*))`` with ``M_k = γ_k WᵀA`` (ALISTA),
``W_kᵀA`` (LISTA-CP) or ``γ_k AᵀA`` (ISTA). Let ``S = supp(x*)``, ``|S| ≤ s``, ``‖x*‖_∞ ≤ B``,
``x_0 = 0``, ``e_k = x_k − x*`` with ``‖e_k‖₁ ≤ b_k``, ``‖e_k‖_∞ ≤ a_k`` and ``supp(e_k) ⊆ S``.
Write ``μ_i = max_{j≠i}|M_ij|``, ``d_j = |1 − M_jj|`` and ``β_i(q)`` (``β^c_j(q)``) for the sum of the
q largest off-diagonal ``|M_ij|`` of row i (column j). Because ``|ST_θ(v) − v| ≤ θ``:

1. *No false positives* (Chen et al. 2018, Lemma 1; ALISTA Thm. 1). For ``i ∉ S``
   ``|v_i| = |Σ_{j∈S} M_ij e_j| ≤ min(μ_i b_k, β_i(s) a_k)``, so if
   ``θ_k ≥ max_i min(μ_i b_k, β_i(s) a_k)`` then ``x_{k+1,i} = 0`` and ``supp(e_{k+1}) ⊆ S``.
2. *On the support*, ``e_{k+1,i} = (1 − M_ii)e_{k,i} − Σ_{j∈S∖i} M_ij e_{k,j} + ξ_i`` with ``|ξ_i| ≤ θ_k``:
   ``a_{k+1} = max_i [d_i a_k + min(μ_i b_k, β_i(s−1) a_k)] + θ_k``,
   ``b_{k+1} = min(max_j [d_j + β^c_j(s−1)]·b_k + sθ_k,  s·a_{k+1})``.
3. ``‖e‖₂² ≤ ‖e‖_∞‖e‖₁``, so ``‖x_{k+1} − x*‖₂ ≤ √(a_{k+1} b_{k+1})``; start ``a_0 = B``, ``b_0 = sB``.

With ALISTA's weights (``diag(WᵀA) = 1``, off-diagonal ``≤ μ``) and ``θ_k = γ_k μ b_k``, step 2 gives
``b_{k+1} ≤ (|1 − γ_k| + γ_k μ(2s − 1))·b_k``: ALISTA Theorem 1,
``‖x_k − x*‖₂ ≤ sB·exp(−Σ_{τ<k} c_τ)``, ``c_τ = −log(|1 − γ_τ| + γ_τ μ̃(2s − 1))``, which contracts when
``s < (1 + 1/μ̃)/2`` and ``0 < γ_τ < 2/(1 + μ̃(2s − 1))``. The chain above is never weaker and it uses
the *actual* trained ``M_k`` (LISTA-CP: ``W_k`` need not have unit diagonal, so ``d_j`` enters).

**Rounding.** Each entry of ``M_k`` is bounded with Higham's inner-product error
``|fl(wᵀa) − wᵀa| ≤ γ_m |w|ᵀ|a|`` (*Accuracy and Stability of Numerical Algorithms*, §3.1), and
every nonnegative quantity of the chain is inflated by ``1 + 2γ_{t+4}`` after ``t`` floating-point
operations, so each float64 number is an upper bound of its exact counterpart. A threshold is
accepted only if it is at least the rounded-up requirement. The certificate is for the network in
exact arithmetic with the stored float64 weights (``max(θ, 0)`` as the forward pass uses it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from unfoldtheory.activations import SoftThreshold
from unfoldtheory.convergence.detect import TOLERANCE, residual_form
from unfoldtheory.convergence.inputs import check_finite_parameters, real_vector
from unfoldtheory.convergence.psd_bound import down, gram_extremes
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.validation import as_finite_array, finite_float, positive_int

UNIT = float(np.finfo(float).eps) / 2  # unit roundoff u of float64
TINY = float(np.nextafter(0.0, 1.0))  # 2^-1074: twice the largest underflow error of one product
CHAIN_METHOD = "lista-coherence-chain"
THEOREM_METHOD = "alista-theorem-1"
COHERENCE_METHOD = "per-column LP (HiGHS), primal and dual re-checked in float64"
#: Relative excess of the thresholds that :func:`alista_rate_bound` prescribes over ``γ_k μ b_k``: any
#: larger threshold satisfies the theorem, and the excess keeps them above the chain's own rounded-up
#: requirement (computed in a different order) when the network is certified afterwards.
THRESHOLD_MARGIN = 1e-12


def _gamma(k: int) -> float:
    """Higham's ``γ_k = ku/(1 − ku)``."""
    return k * UNIT / (1 - k * UNIT)


def _up(x: Any, ops: int) -> Any:
    """Inflate a nonnegative float result of ``ops`` operations so that it bounds the exact value.

    The expression must be a sum of nonnegative terms, each a product of at most two computed
    floats (or such a product times factors ≤ 1): then its relative rounding error is at most
    ``γ_ops`` and underflow adds at most ``2⁻¹⁰⁷⁵`` per operation (Higham's model (2.8); sums carry
    none). ``x(1 + 2γ_{ops+4}) + 2(ops + 1)·2⁻¹⁰⁷⁴`` covers both and its own rounding."""
    factor = 1 + 2 * _gamma(ops + 4)
    floor = 2 * (ops + 1) * TINY  # needed only below 2^-1021: above, the relative slack (ops + 8)u·x covers it
    with np.errstate(under="ignore"):
        if np.ndim(x):
            x = np.asarray(x, dtype=float)
            return x * factor + np.where(x < 2.0**-1021, floor, 0.0)
        x = float(x)
        return x * factor + (floor if x < 2.0**-1021 else 0.0)


# --------------------------------------------------------------------------- entrywise bounds of M = c·LᵀA
@dataclass(frozen=True)
class LayerOperator:
    """Certified entrywise bounds of one layer's ``M = c·LᵀA`` (``M_ij = c·L_iᵀA_j``).

    ``offdiag[i, j] ≥ |M_ij|`` for ``i ≠ j`` (zero on the diagonal) and ``diag_dev[j] ≥ |1 − M_jj|``.
    """

    offdiag: np.ndarray
    diag_dev: np.ndarray

    @property
    def n(self) -> int:
        return self.diag_dev.shape[0]

    def row_max(self) -> np.ndarray:
        """``μ_i ≥ max_{j≠i} |M_ij|``."""
        return self.offdiag.max(axis=1) if self.n > 1 else np.zeros(self.n)

    def row_babel(self, q: int) -> np.ndarray:
        """``β_i(q)``: sum of the q largest off-diagonal ``|M_ij|`` in row i (q clipped to n − 1)."""
        return _top_sum(self.offdiag, q)

    def col_babel(self, q: int) -> np.ndarray:
        """``β^c_j(q)``: sum of the q largest off-diagonal ``|M_ij|`` in column j."""
        return _top_sum(self.offdiag.T, q)


def _top_sum(E: np.ndarray, q: int) -> np.ndarray:
    q = min(q, E.shape[1] - 1)
    if q <= 0:
        return np.zeros(E.shape[0])
    # the zero diagonal is never among the top q of n − 1 ≥ q nonnegative off-diagonal entries' sum
    top = -np.partition(-E, q - 1, axis=1)[:, :q]
    return _up(top.sum(axis=1), q)


@dataclass(frozen=True)
class _Products:
    """``P = fl(LᵀA)`` and an entrywise bound ``err ≥ |P − LᵀA|``."""

    P: np.ndarray
    err: np.ndarray


def _products(L: np.ndarray, A: np.ndarray) -> _Products:
    m = A.shape[0]
    with np.errstate(under="ignore"):
        P = L.T @ A
        # ≥ γ_m(1 + γ_m)·fl(|L|ᵀ|A|) ≥ γ_m |L|ᵀ|A|, plus the underflow of the m products (≤ 2⁻¹⁰⁷⁵ each, twice over)
        err = 2 * _gamma(m + 2) * (np.abs(L).T @ np.abs(A)) + 2 * (m + 2) * TINY
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(err))):
        raise ValueError("the products LᵀA overflow float64 (weights too large); no certified entrywise bound")
    return _Products(P, err)


def _operator(prod: _Products, scale: float) -> LayerOperator:
    c = abs(scale)
    off = _up(c * (np.abs(prod.P) + prod.err), 3)
    np.fill_diagonal(off, 0.0)
    p, e = np.diag(prod.P), np.diag(prod.err)
    dev = _up(np.abs(1.0 - scale * p) + c * e + 2 * UNIT * (1.0 + np.abs(scale * p)), 6)
    return LayerOperator(off, dev)


def layer_operator(L: Any, A: Any, scale: float = 1.0) -> LayerOperator:
    """Certified entrywise bounds of ``M = scale·LᵀA`` (L and A of the same shape (m, n))."""
    A = as_finite_array(A, "A", ndim=2)
    L = as_finite_array(L, "L", shape=A.shape)
    return _operator(_products(L, A), finite_float(scale, "scale"))


# --------------------------------------------------------------------------- generalized coherence
def generalized_coherence(A: Any, *, progress: bool | None = None) -> tuple[Bound, np.ndarray]:
    """ALISTA's generalized mutual coherence ``μ̃(A)`` and a weight ``W`` attaining it (to LP accuracy).

    Solves one LP per column with HiGHS, rescales ``W_i`` so that ``W_iᵀA_i = 1``, and then checks
    both sides in float64 with rounding margins:

    * **upper**: the coherence ``max_{i≠j}|W_iᵀA_j| / |W_iᵀA_i|`` of the returned W (exactly the
      feasible weight ``W·diag(WᵀA)⁻¹``), bounded entrywise — the Bound's ``value``;
    * **lower**: for each column, the LP dual vector z (from HiGHS's marginals, polished on its support)
      proves ``μ̃_i ≥ min(T, (1 − √n·T·‖r‖₂/σ_min(A))/‖z‖₁)``, ``r = A_i − A_{−i}z``, ``T = max(1, upper_i)``
      (``‖w‖₂ ≤ ‖Aᵀw‖₂/σ_min ≤ √n·T/σ_min`` for feasible w with value ≤ T); σ_min is bounded below by
      Weyl's inequality. Stored in ``details["lower"]`` (0 where no dual proof is possible).

    Returns ``(bound, W)``; ``bound.certified`` is True when every LP was solved to optimality and the
    upper side verified. Raises ValueError for a zero column and RuntimeError if HiGHS fails.
    """
    from scipy.optimize import linprog

    start = time.perf_counter()
    A = as_finite_array(A, "A", ndim=2)
    m, n = A.shape
    if A.size == 0:
        raise ValueError(f"A has shape {A.shape}; expected a non-empty (m, n) matrix")
    # μ̃ is invariant under A → cA: the LPs see A scaled by a power of two to a peak near 1 (exact, or A itself)
    k = int(np.frexp(float(np.abs(A).max()))[1])
    lp = np.ldexp(A, -k)
    if not np.array_equal(np.ldexp(lp, k), A):
        lp, k = A, 0
    norms = np.linalg.norm(lp, axis=0)
    if np.any(norms == 0):
        raise ValueError(f"A has a zero column ({int(np.argmin(norms))}): W_iᵀA_i = 1 is infeasible")
    W = np.empty((m, n))
    Z = np.zeros((n, n))  # row i: dual vector of column i (Z[i, i] = 0)
    for i in tqdm(range(n), desc="generalized coherence (LP per column)", disable=None if progress is None else not progress):
        if n == 1:
            W[:, 0] = lp[:, 0] / norms[0] ** 2
            continue
        others = np.delete(np.arange(n), i)
        Ao = lp[:, others]
        c = np.zeros(m + 1)
        c[-1] = 1.0
        ones = np.ones((n - 1, 1))
        res = linprog(c, A_ub=np.block([[Ao.T, -ones], [-Ao.T, -ones]]), b_ub=np.zeros(2 * (n - 1)),
                      A_eq=np.append(lp[:, i], 0.0)[None], b_eq=[1.0], bounds=[(None, None)] * m + [(0, None)],
                      method="highs")
        if res.status != 0:
            raise RuntimeError(f"generalized coherence: HiGHS failed on column {i} (status {res.status}: {res.message})")
        W[:, i] = res.x[:m]
        Z[i, others] = _dual_vector(lp, i, others, res.ineqlin.marginals)
    with np.errstate(over="ignore", under="ignore"):
        W = np.ldexp(W, -k)  # a weight for A itself (any positive multiple would do: W is normalised below)
    prod = _products(W, A)
    diag = np.diag(prod.P)
    W = W / diag  # exact feasibility up to rounding; the check below is for W·diag(WᵀA)⁻¹ exactly
    prod = _products(W, A)
    upper_cols, lower_cols = _upper_columns(prod), np.zeros(n)
    sigma = _sigma_min_lower(A)
    for i in range(n):
        lower_cols[i] = _lower_column(A, i, Z[i], upper_cols[i], sigma)
    upper, lower = float(upper_cols.max()), float(lower_cols.max())
    ok = bool(np.all(np.isfinite(upper_cols)) and lower <= upper)
    bound = Bound(
        upper if ok else math.inf, "upper", "generalized mutual coherence μ̃(A)", COHERENCE_METHOD, certified=ok,
        certificate={"lower": lower, "upper": upper, "sigma_min_lower": sigma},
        seconds=time.perf_counter() - start,
        details={"lower": lower, "relative_gap": (upper - lower) / upper if upper > 0 else 0.0,
                 "upper_per_column": upper_cols, "lower_per_column": lower_cols, "status": "optimal",
                 "dual_vectors": Z,
                 "m": m, "n": n},
    )
    return bound, W


def _dual_vector(A: np.ndarray, i: int, others: np.ndarray, marginals: np.ndarray) -> np.ndarray:
    """A dual vector z with ``A_{−i}z ≈ A_i`` from HiGHS's marginals, polished on its support by lstsq."""
    k = others.size
    z = marginals[:k] - marginals[k:]
    Ao, ai = A[:, others], A[:, i]
    image = Ao @ z
    scale = float(ai @ image) / float(ai @ ai)
    if scale == 0 or not np.isfinite(scale):
        return np.zeros(k)
    z = z / scale
    support = np.flatnonzero(np.abs(z) > 1e-12 * np.abs(z).max())
    if 0 < support.size <= A.shape[0]:
        polished = np.zeros(k)
        polished[support] = np.linalg.lstsq(Ao[:, support], ai, rcond=None)[0]
        if np.linalg.norm(Ao @ polished - ai) < np.linalg.norm(Ao @ z - ai):
            z = polished
    return z


def _upper_columns(prod: _Products) -> np.ndarray:
    """``max_{j≠i}|W_iᵀA_j| / |W_iᵀA_i|`` per column i, rounded up (inf if the diagonal is not provably nonzero)."""
    n = prod.P.shape[0]
    num = np.abs(prod.P) + prod.err
    np.fill_diagonal(num, 0.0)
    num = _up(num.max(axis=1), 2) if n > 1 else np.zeros(n)
    den = np.abs(np.diag(prod.P)) - np.diag(prod.err)
    den = den * (1 - 2 * _gamma(2))
    return np.where(den > 0, _up(num / np.where(den > 0, den, 1.0), 1), np.inf)


def _sigma_min_lower(A: np.ndarray) -> float:
    """A rigorous lower bound of the smallest singular value σ_{min(m,n)}(A) (0 if none is provable):
    the square root of :func:`~unfoldtheory.convergence.psd_bound.gram_extremes`' lower end for the
    smaller Gram matrix, rounded down."""
    m, n = A.shape
    try:
        low = gram_extremes(A.T if m <= n else A)[0]
    except ValueError:
        return 0.0
    return max(down(math.sqrt(low)), 0.0) if low > 0 else 0.0


def _lower_column(A: np.ndarray, i: int, z: np.ndarray, upper: float, sigma: float) -> float:
    """The lower bound of ``μ̃_i`` that the dual vector z proves (0 when it proves nothing)."""
    z1 = float(_up(np.abs(z).sum(), A.shape[1]))
    if z1 == 0 or sigma == 0 or not np.isfinite(upper):
        return 0.0
    r = A[:, i] - A @ z
    r_err = 2 * _gamma(A.shape[1] + 2) * (np.abs(A[:, i]) + np.abs(A) @ np.abs(z))
    r_norm = float(_up(np.linalg.norm(r) + np.linalg.norm(r_err), 2 * A.shape[0]))
    T = max(1.0, upper)
    slack = float(_up(math.sqrt(A.shape[1]) * T * r_norm / sigma, 4))
    if slack >= 1:
        return 0.0
    return max(0.0, min(T, (1 - slack) / z1 * (1 - 4 * UNIT)))


# --------------------------------------------------------------------------- certificates
@dataclass(frozen=True, eq=False)
class LayerwiseCertificate:
    """Certified worst-case errors per layer over ``{x*: ‖x*‖₀ ≤ s, ‖x*‖_∞ ≤ B}``, noiseless ``y = Ax*``.

    Attributes
    ----------
    errors: one :class:`Bound` per layer k = 1..K on ``‖x_k − x*‖₂`` (``inf``, uncertified, from the
        first layer whose condition fails on).
    l1, linf: the chain's bounds on ``‖x_k − x*‖₁`` and ``‖x_k − x*‖_∞`` (inf after a refusal).
    thresholds: the thresholds θ_k used (the model's, or those the theorem prescribes).
    required: the smallest θ_k the no-false-positive step accepts (NaN where not evaluated).
    rates: the ℓ1 factor ρ_k in ``b_{k+1} ≤ ρ_k b_k + sθ_k`` (ALISTA: the theorem's ``|1−γ|+γμ(2s−1)``).
    valid: every layer is certified (for :func:`alista_rate_bound` also: Theorem 1's hypotheses hold).
    reason: why not (None when valid).
    violations: the hypotheses of ALISTA's Theorem 1 that fail (empty for the chain certificate).
    """

    errors: list[Bound]
    l1: np.ndarray
    linf: np.ndarray
    thresholds: np.ndarray
    required: np.ndarray
    rates: np.ndarray
    sparsity: int
    B: float
    method: str
    valid: bool
    reason: str | None
    violations: tuple[str, ...] = ()

    @property
    def values(self) -> np.ndarray:
        """The per-layer ℓ2 bounds as an array (inf where not certified)."""
        return np.array([b.value for b in self.errors])

    @property
    def certified_layers(self) -> int:
        """How many leading layers are certified."""
        return sum(1 for b in self.errors if b.certified)


def _quantity(k: int, s: int, B: float) -> str:
    return f"worst-case ‖x_{k} − x*‖₂ over {s}-sparse x* with ‖x*‖_∞ ≤ {B:g} (y = Ax*)"


def chain_certificate(operators: Sequence[LayerOperator], thresholds: Any, sparsity: int, B: float,
                      method: str = CHAIN_METHOD) -> LayerwiseCertificate:
    """Evaluate the per-layer chain (module docstring, steps 1–3) for given layer operators and thresholds."""
    start = time.perf_counter()
    s = positive_int(sparsity, "sparsity")
    B = finite_float(B, "B", low=0.0, low_open=True)
    K = len(operators)
    if K == 0:
        raise ValueError("no layers to certify")
    n = operators[0].n
    if s > n:
        raise ValueError(f"sparsity {s} exceeds the signal dimension n = {n}")
    theta = real_vector(thresholds, "thresholds")
    if theta.shape != (K,):
        raise ValueError(f"thresholds has {theta.size} entries; expected one per layer ({K})")
    if np.any(theta < 0):
        raise ValueError(f"thresholds must be >= 0 (the forward pass uses max(θ, 0)); got {theta.min():.3g}")
    l1, linf, required, rates = (np.full(K, np.inf), np.full(K, np.inf), np.full(K, np.nan), np.full(K, np.nan))
    errors: list[Bound] = []
    a, b = B, float(_up(s * B, 1))
    reason = None
    for k, op in enumerate(operators):
        mu, d = op.row_max(), op.diag_dev
        rates[k] = float(_up(np.max(d + op.col_babel(s - 1)), 2))
        if reason is None:
            required[k] = float(_up(np.max(np.minimum(mu * b, op.row_babel(s) * a)), 2))
            if theta[k] < required[k]:
                reason = (f"layer {k + 1}: threshold θ = {theta[k]:.6g} is below the required {required[k]:.6g} "
                          f"(max_i min(μ_i·‖e‖₁, β_i(s)·‖e‖_∞) with ‖e‖₁ ≤ {b:.4g}, ‖e‖_∞ ≤ {a:.4g}); no false-positive "
                          f"guarantee, so no bound from layer {k + 1} on")
        if reason is not None:
            errors.append(Bound(math.inf, "upper", _quantity(k + 1, s, B), method, details={"layer": k + 1, "reason": reason}))
            continue
        a_new = float(_up(np.max(d * a + np.minimum(mu * b, op.row_babel(s - 1) * a)) + theta[k], 4))
        b_new = min(float(_up(rates[k] * b + s * theta[k], 3)), float(_up(s * a_new, 1)))
        a, b = min(a_new, b_new), b_new
        l1[k], linf[k] = b, a
        l2 = float(np.nextafter(_up(math.sqrt(a) * math.sqrt(b), 3), np.inf))  # √a·√b: no underflow under the root
        errors.append(Bound(l2, "upper", _quantity(k + 1, s, B), method, certified=True,
                            certificate={"threshold": float(theta[k]), "required_threshold": required[k]},
                            details={"layer": k + 1, "l1": b, "linf": a, "rate_l1": rates[k]}))
    seconds = time.perf_counter() - start
    errors = [e.replace(seconds=seconds / K) for e in errors]
    return LayerwiseCertificate(errors, l1, linf, theta, required, rates, s, B, method, reason is None, reason)


def alista_rate_bound(A: Any, steps: Any, sparsity: int, B: float, *, W: Any = None,
                      progress: bool | None = None) -> LayerwiseCertificate:
    """ALISTA Theorem 1 (Liu, Chen, Wang & Yin, ICLR 2019): per-layer bounds and the thresholds it prescribes.

    For ``x_{k+1} = ST_{θ_k}(x_k − γ_k Wᵀ(Ax_k − y))`` with W attaining the generalized coherence μ
    (computed by :func:`generalized_coherence` unless given), ``x_0 = 0``, ``y = Ax*`` with
    ``‖x*‖₀ ≤ s``, ``‖x*‖_∞ ≤ B``, and thresholds ``θ_k = γ_k μ b_k``, the chain gives
    ``supp(x_k) ⊆ supp(x*)`` and ``‖x_k − x*‖₂ ≤ ‖x_k − x*‖₁ ≤ b_k = sB·Π_{τ<k}(|1 − γ_τ| + γ_τ μ(2s − 1))``
    (module docstring; ``proofs/lista_coherence_chain.py``). μ and ``|1 − W_jᵀA_j|`` are the float64
    values of the W used, bounded with rounding margins; ``b_k`` and θ_k are rounded up, so a network
    run with ``thresholds`` satisfies the hypothesis. ``steps`` are the γ_k (> 0), one per layer.

    Theorem 1's hypotheses ``s < (1 + 1/μ)/2`` and ``0 < γ_k < 2/(2μs − μ + 1)`` make every factor
    below 1; where one fails it is listed in ``violations`` (``valid`` False) — the bounds themselves
    are still proved (the chain needs only γ_k > 0), they just do not decrease.
    """
    start = time.perf_counter()
    A = as_finite_array(A, "A", ndim=2)
    gam = real_vector(steps, "steps")
    if gam.size == 0 or np.any(gam <= 0):
        raise ValueError("steps must be a non-empty vector of step sizes γ_k > 0")
    s = positive_int(sparsity, "sparsity")
    B = finite_float(B, "B", low=0.0, low_open=True)
    if s > A.shape[1]:
        raise ValueError(f"sparsity {s} exceeds the signal dimension n = {A.shape[1]}")
    if W is None:
        W = generalized_coherence(A, progress=progress)[1]
    W = as_finite_array(W, "W", shape=A.shape)
    base = _operator(_products(W, A), 1.0)
    mu = float(base.row_max().max()) if A.shape[1] > 1 else 0.0
    delta = float(base.diag_dev.max())
    if delta > 1e-6:
        raise ValueError(f"W violates diag(WᵀA) = 1 by {delta:.3g}; Theorem 1 needs W from generalized_coherence")
    K = gam.size
    b = float(_up(s * B, 1))
    thresholds, rates, l1 = np.empty(K), np.empty(K), np.empty(K)
    errors = []
    for k, g in enumerate(gam):
        g_mu, g_delta = float(_up(g * mu, 1)), float(_up(g * delta, 1))  # one product each (see _up)
        thresholds[k] = float(_up(g_mu * b, 1)) * (1 + THRESHOLD_MARGIN)  # ≥ γ_k μ b_k; the factor > 1 never rounds below
        rates[k] = float(_up(abs(1 - g) + g_delta + g_mu * (2 * s - 1), 4))
        b = float(_up(float(_up(abs(1 - g) + g_delta + g_mu * (s - 1), 4)) * b + s * thresholds[k], 3))
        l1[k] = b
        errors.append(Bound(b, "upper", _quantity(k + 1, s, B), THEOREM_METHOD, certified=True,
                            certificate={"threshold": thresholds[k], "coherence": mu},
                            details={"layer": k + 1, "l1": b, "rate": rates[k], "step": float(g)}))
    violations = []
    if mu > 0 and not s < (1 + 1 / mu) / 2:
        violations.append(f"s = {s} is not below (1 + 1/μ)/2 = {(1 + 1 / mu) / 2:.4g} (μ = {mu:.4g}): no step contracts")
    limit = 2 / (2 * mu * s - mu + 1)
    for k in np.flatnonzero(gam >= limit):
        violations.append(f"layer {k + 1}: step γ = {gam[k]:.4g} is not below 2/(2μs − μ + 1) = {limit:.4g}")
    reason = None
    if violations:
        reason = "ALISTA Theorem 1's hypotheses fail: " + "; ".join(violations) + " (the bounds hold but need not decrease)"
    seconds = time.perf_counter() - start
    errors = [e.replace(seconds=seconds / K, details={**e.details, "theorem_hypotheses_hold": not violations})
              for e in errors]
    return LayerwiseCertificate(errors, l1, l1.copy(), thresholds, thresholds.copy(), rates, s, B,
                                THEOREM_METHOD, not violations, reason, tuple(violations))


def spec_operators(spec: NetworkSpec, A: Any, *, tol: float = TOLERANCE) -> tuple[list[LayerOperator], np.ndarray, float]:
    """The layer operators ``M_k = B_kA`` and thresholds of a spec whose layers are ``x⁺ = ST_{θ_k}(x − B_k(Ax − y))``.

    The form is what the chain needs: ``W_k = I − B_kA`` (checked by
    :func:`~unfoldtheory.convergence.detect.residual_form` to relative residual ``tol``; returned as the third
    value), a scalar soft threshold θ_k ≥ 0 and no bias. Any LISTA-CP / ALISTA / ISTA layer is of this form,
    whatever class produced it; a spec that is not raises a ValueError naming the layer. The certificate is
    for ``x⁺ = ST_{θ_k}(x − B_k(Ax − y))`` with the stored ``B_k`` (the spec's ``W_k`` agrees up to the residual).
    """
    A = as_finite_array(A, "A", ndim=2)
    layers, residual = residual_form(spec, A, tol=tol)
    thresholds = []
    for layer in layers:
        act = layer.activation
        if not isinstance(act, SoftThreshold) or act.theta.ndim != 0:
            raise ValueError(f"layer {layer.k}: the coherence chain needs a scalar soft threshold, got {act!r}")
        if np.any(layer.bias):
            raise ValueError(f"layer {layer.k} has a bias: the chain needs x⁺ = ST_θ(x − B(Ax − y)) without one")
        thresholds.append(float(act.theta))
    operators = [_operator(_products(layer.B.T, A), 1.0) for layer in layers]
    return operators, np.array(thresholds), residual


def model_operators(model: Any, A: Any = None, *, tol: float = TOLERANCE) -> tuple[list[LayerOperator], np.ndarray, float]:
    """:func:`spec_operators` of ``model`` (a NetworkSpec, or anything with ``.spec()``) and ``A`` (default:
    ``model.A_numpy()`` when the model has it)."""
    spec = model if isinstance(model, NetworkSpec) else getattr(model, "spec", None)
    if spec is None or not (isinstance(spec, NetworkSpec) or callable(spec)):
        raise ValueError(f"the coherence certificate needs a NetworkSpec or a model with .spec(); got {type(model).__name__}")
    if not isinstance(spec, NetworkSpec):
        check_finite_parameters(model)
        spec = spec()
    if A is None:
        if not callable(getattr(model, "A_numpy", None)):
            raise ValueError("the coherence certificate needs the measurement matrix A (pass A=...)")
        A = model.A_numpy()
    return spec_operators(spec, A, tol=tol)


def lista_cp_certificate(model: Any, sparsity: int, B: float, *, A: Any = None,
                         tol: float = TOLERANCE) -> LayerwiseCertificate:
    """Certified per-layer worst-case errors of any network whose layers are ``x⁺ = ST_θ(x − B_k(Ax − y))``.

    ``model`` is a :class:`~unfoldtheory.spec.NetworkSpec` or has ``.spec()`` (LISTA-CP, ALISTA, unfolded
    ISTA, untrained LISTA, or a user's module traced to a spec); ``A`` defaults to ``model.A_numpy()``.
    Evaluates the chain of the module docstring with the trained ``M_k = B_kA`` (LISTA-CP: ``W_kᵀA``, its
    actual off-diagonal coherence and diagonal deviation ``|1 − (W_kᵀA)_jj|``; ALISTA: ``γ_k WᵀA``) and
    the spec's thresholds ``max(θ_k, 0)``, over every s-sparse x* with ``‖x*‖_∞ ≤ B`` and noiseless ``y = Ax*``.
    Layers up to the first whose threshold is below the no-false-positive requirement are certified;
    ``reason`` names that layer, its threshold and the required value. A network not of this form raises
    a ValueError naming the layer (:func:`spec_operators`).
    """
    operators, thresholds, residual = model_operators(model, A, tol=tol)
    cert = chain_certificate(operators, thresholds, sparsity, B)
    name = model.name if isinstance(model, NetworkSpec) else type(model).__name__
    extra = {"model": name, "form_residual": residual}
    return LayerwiseCertificate([e.replace(details={**e.details, **extra}) for e in cert.errors], cert.l1, cert.linf,
                                cert.thresholds, cert.required, cert.rates, cert.sparsity, cert.B, cert.method, cert.valid,
                                None if cert.reason is None else f"{name} {cert.reason}")
