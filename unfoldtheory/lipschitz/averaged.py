"""The averaged-operator bound (Combettes & Pesquet) on the ℓ2 Lipschitz constant of a network.

**Source.** P. L. Combettes and J.-C. Pesquet, "Lipschitz certificates for layered network
structures driven by averaged activation operators", SIAM J. Math. Data Sci. 2 (2020)
(arXiv:1903.01014). For ``T = T_m ∘ … ∘ T_1``, ``T_i = R_i(W_i · + b_i)`` with firmly
nonexpansive (½-averaged) ``R_i``, the bound is ``Lip(T) ≤ θ_m / 2^{m−1}`` with

    θ_m = Σ_{J = {j_1 < … < j_k} ⊂ {1, …, m−1}} ‖W_m⋯W_{j_k+1}‖ ‖W_{j_k}⋯W_{j_{k−1}+1}‖ ⋯ ‖W_{j_1}⋯W_1‖

(the empty J contributes ``‖W_m⋯W_1‖``). The theorem text itself could not be retrieved here
(only the abstract); the statement is therefore proved below rather than taken on trust. A
third-party implementation that weights the terms by ``Π_{j=1}^{m}`` instead of
``Π_{j=1}^{m−1}`` of ``½``, i.e. ``θ_m / 2^m``, is wrong: for ``m = 1`` and ``R_1 = Id`` it would
give ``‖W_1‖/2`` for the linear map ``W_1``.

**Proof** (only ``R_1 … R_{m−1}`` firmly nonexpansive, ``R_m`` nonexpansive, are used).
Take inputs ``x, x'``; write ``d_0 = x − x'`` and ``d_i = z_i − z'_i`` for the layer outputs.
``R`` is firmly nonexpansive iff ``N = 2R − Id`` is nonexpansive, so
``d_i = ½ W_i d_{i−1} + ½ e_i`` with ``e_i = N_i(u_i) − N_i(u'_i)``, ``‖e_i‖ ≤ ‖W_i d_{i−1}‖``
(the biases cancel in ``u_i − u'_i = W_i d_{i−1}``). Hence, for every matrix ``P``,

    (lemma)  ‖P d_i‖ ≤ ½ ‖P W_i d_{i−1}‖ + ½ ‖P‖ ‖W_i d_{i−1}‖.

Let ``θ_0 = 1`` and ``θ_k = Σ_{j=0}^{k−1} ‖W_k⋯W_{j+1}‖ θ_j``. Claim(k): for every ``P``,
``‖P W_k d_{k−1}‖ ≤ 2^{−(k−1)} Σ_{j=0}^{k−1} ‖P W_k⋯W_{j+1}‖ θ_j ‖d_0‖``. Claim(1) is
``‖P W_1 d_0‖ ≤ ‖P W_1‖ ‖d_0‖``. For the step, the lemma (``R_k`` firmly nonexpansive) gives
``‖P W_{k+1} d_k‖ ≤ ½ ‖(P W_{k+1}) W_k d_{k−1}‖ + ½ ‖P W_{k+1}‖ ‖W_k d_{k−1}‖``; Claim(k) with
``P W_{k+1}`` bounds the first term by ``2^{−k} Σ_{j<k} ‖P W_{k+1}⋯W_{j+1}‖ θ_j``, and
Claim(k) with ``P = I`` bounds ``‖W_k d_{k−1}‖ ≤ 2^{−(k−1)} θ_k``, so the second term is at
most ``2^{−k} ‖P W_{k+1}‖ θ_k``: the sum is Claim(k+1). Finally ``‖d_m‖ ≤ ‖W_m d_{m−1}‖``
(``R_m`` nonexpansive) ``≤ θ_m / 2^{m−1} ‖d_0‖``. Unrolling the recursion for ``θ_m`` over its
last cut ``j`` gives the subset sum above (``proofs/averaged_bound.py`` checks this identity and
the two-layer expansion symbolically). ∎ By submultiplicativity each of the ``2^{m−1}`` terms
is ``≤ Π‖W_i‖``, so on a chain the bound is never worse than the product of the norms.

θ_m is computed by the ``O(m²)`` dynamic programme above, never by enumerating subsets.

**Networks it applies to.**

* A *chain*: layer ``k`` reads only state ``k − 1`` and the readout reads only the last state.
* *Input injection* (LISTA: layer k reads state 0 and state k−1; the readout may also read
  state 0): embedded exactly into a chain by carrying ``y`` through identity neurons, state
  ``(x_k, y)``, ``W̃_1 = [[W_10], [I]]``, ``W̃_k = [[W_k,k−1, W_k0], [0, I]]``, activation
  ``diag(φ_k, Id)``; a block-diagonal map of firmly nonexpansive maps is firmly nonexpansive
  (the defining inequality adds over blocks). The last layer carries ``y`` only when the
  readout reads state 0.
* The readout ``C`` is one more layer with the identity activation (``Id = (Id + Id)/2`` is
  firmly nonexpansive), so ``m = N + 1``.

Other skip edges raise ``ValueError`` naming the edge; an activation not declared firmly
nonexpansive raises ``ValueError``.

**Certification in float64.** Each partial product ``P = W_k⋯W_{j+1}`` is formed in float64
right to left as ``P̂ ← fl(P̂ W_i)``. With ``|fl(AB) − AB| ≤ γ_n |A||B|`` entrywise (Higham §3.5,
any summation order, FMA or not), ``‖P̂_new − P_new‖ ≤ ‖P̂ − P‖ ‖W_i‖ + γ_n ‖|P̂|‖ ‖|W_i|‖`` plus
an absolute subnormal term; ``‖P‖ ≤ spectral_norm_upper(P̂) + that error``. The recursion for
θ and the final division by ``2^{m−1}`` are rounded upward.
"""

from __future__ import annotations

import math
import time

import numpy as np

from unfoldtheory.lipschitz.norms import abs_norm_upper, gamma_bound, spectral_norm_upper, up_add, up_mul
from unfoldtheory.lipschitz.quantity import QUANTITY
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.validation import time_budget_seconds

METHOD = "averaged (Combettes–Pesquet)"
_MIN_SUBNORMAL = 2.0 ** -1074


def chain_matrices(spec: NetworkSpec) -> tuple[list[np.ndarray], bool]:
    """The linear parts ``W̃_1, …, W̃_N, C̃`` of the spec written as a chain of firmly
    nonexpansive layers (the readout last, with the identity activation), and whether input
    injection was embedded. Raises ValueError for graphs or activations the bound does not cover.
    """
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"averaged_bound takes a NetworkSpec, got {type(spec).__name__}")
    N = spec.num_layers
    dims = spec.dims
    for k, act in enumerate(spec.activations, start=1):
        if not act.firmly_nonexpansive:
            raise ValueError(f"layer {k}: activation {act.name} is not firmly nonexpansive; "
                             "the averaged bound needs firmly nonexpansive (1/2-averaged) activations")
    inject = False
    for k, ws in enumerate(spec.weights, start=1):
        for j in ws:
            if j == k - 1:
                continue
            if j == 0:
                inject = True
                continue
            raise ValueError(f"averaged bound needs a chain or input injection; layer {k} reads state {j}")
    for k in spec.readout:
        if k not in (0, N):
            raise ValueError(f"averaged bound needs a chain or input injection; the readout reads state {k} "
                             f"(only the last state {N} or the input 0 may be read)")
    carry_last = 0 in spec.readout and N > 0
    inject = inject or carry_last
    m0 = dims[0]
    out_dim = spec.output_dim
    if not inject:
        mats = [spec.weights[k - 1].get(k - 1, np.zeros((dims[k], dims[k - 1]))) for k in range(1, N + 1)]
        mats.append(spec.readout[N])
        return mats, False
    mats = []
    for k in range(1, N + 1):
        ws = spec.weights[k - 1]
        carry = k < N or carry_last
        if k == 1:
            top = ws.get(0, np.zeros((dims[1], m0)))
            bottom = np.eye(m0)
        else:
            prev = ws.get(k - 1, np.zeros((dims[k], dims[k - 1])))
            inj = ws.get(0, np.zeros((dims[k], m0)))
            top = np.hstack([prev, inj])
            bottom = np.hstack([np.zeros((m0, dims[k - 1])), np.eye(m0)])
        mats.append(np.vstack([top, bottom]) if carry else top)
    if carry_last:
        mats.append(np.hstack([spec.readout.get(N, np.zeros((out_dim, dims[N]))),
                               spec.readout.get(0, np.zeros((out_dim, m0)))]))
    else:
        mats.append(spec.readout[N])
    return mats, True


class OutOfTime(Exception):
    """The ``O(m²)`` partial products did not finish within the time budget."""


def partial_product_norms(mats: list[np.ndarray], deadline: float = math.inf) -> list[list[float]]:
    """Rigorous upper bounds ``n[k][j] ≥ ‖W_k⋯W_{j+1}‖₂`` for ``0 ≤ j < k ≤ m`` (1-based ``k``); raises
    :class:`OutOfTime` once ``time.perf_counter()`` passes ``deadline``."""
    m = len(mats)
    single = [spectral_norm_upper(w) for w in mats]
    absn = [abs_norm_upper(w) for w in mats]
    norms: list[list[float]] = [[] for _ in range(m + 1)]
    for k in range(1, m + 1):
        row = [0.0] * k
        row[k - 1] = single[k - 1]
        P = mats[k - 1]
        err = 0.0  # an upper bound on ‖P̂ − P‖₂
        for j in range(k - 2, -1, -1):
            if time.perf_counter() > deadline:
                raise OutOfTime
            W = mats[j]  # W_{j+1}
            inner = P.shape[1]
            rounding = up_mul(up_mul(gamma_bound(inner), abs_norm_upper(P)), absn[j])
            subnormal = float(P.shape[0] * W.shape[1] * inner) * _MIN_SUBNORMAL * 2.0
            err = up_add(up_add(up_mul(err, single[j]), rounding), subnormal)
            P = P @ W
            row[j] = up_add(spectral_norm_upper(P), err)
        norms[k] = row
    return norms


def averaged_bound(spec: NetworkSpec, time_budget: float = math.inf) -> Bound:
    """The Combettes–Pesquet bound ``θ_m / 2^{m−1}`` (module docstring), certified in float64.

    ``certificate`` is ``{"theta": θ_m, "m": m}``; ``details`` records whether input injection
    was embedded and the per-depth values ``θ_k / 2^{k−1}``. Its ``O(m²)`` spectral norms of wide
    products are the cost on deep wide networks: after ``time_budget`` seconds it stops and returns
    an uncertified ``inf`` that says so.
    """
    time_budget = time_budget_seconds(time_budget)
    start = time.perf_counter()
    mats, injected = chain_matrices(spec)
    m = len(mats)
    try:
        norms = partial_product_norms(mats, deadline=start + time_budget)
    except OutOfTime:
        why = f"time budget of {time_budget} s reached before the {m * (m - 1) // 2} partial products were bounded"
        return Bound(math.inf, "upper", QUANTITY, METHOD, certified=False, certificate=None,
                     seconds=time.perf_counter() - start,
                     details={"input_injection_embedded": injected, "layers_in_chain": m, "reason": why}, reason=why)
    theta = [1.0]
    for k in range(1, m + 1):
        total = 0.0
        for j in range(k):
            total = up_add(total, up_mul(norms[k][j], theta[j]))
        theta.append(total)
    value = float(np.nextafter(math.ldexp(theta[m], -(m - 1)), math.inf))
    seconds = time.perf_counter() - start
    details = {"input_injection_embedded": injected, "layers_in_chain": m,
               "bound_by_depth": [math.ldexp(t, -(k - 1)) for k, t in enumerate(theta[1:], start=1)]}
    certificate = {"theta": theta[m], "m": m}
    if not math.isfinite(value):
        why = "theta overflowed float64"
        return Bound(math.inf, "upper", QUANTITY, METHOD, certified=False, certificate=certificate, seconds=seconds,
                     details={**details, "reason": why}, reason=why)
    return Bound(value, "upper", QUANTITY, METHOD, certified=True, certificate=certificate, seconds=seconds,
                 details=details)
