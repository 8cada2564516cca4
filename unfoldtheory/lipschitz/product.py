"""The product bound on the ℓ2 Lipschitz constant of a :class:`~unfoldtheory.spec.NetworkSpec`.

**Statement.** For the graph ``z_0 = y``, ``z_k = φ_k(Σ_{j<k} W_kj z_j + b_k)``, output
``Σ_k C_k z_k``, let ``ℓ_k`` be a Lipschitz constant of ``φ_k`` and define

    L_0 = 1,    L_k = ℓ_k · Σ_{j<k} ‖W_kj‖₂ L_j,    L = Σ_k ‖C_k‖₂ L_k.

Then ``‖out(y) − out(y')‖ ≤ L ‖y − y'‖`` for all inputs.

**Proof.** By induction ``‖z_k(y) − z_k(y')‖ ≤ L_k ‖y − y'‖``: true for ``k = 0``; and
``‖z_k − z'_k‖ ≤ ℓ_k ‖Σ_j W_kj (z_j − z'_j)‖ ≤ ℓ_k Σ_j ‖W_kj‖ ‖z_j − z'_j‖`` (Lipschitz
continuity of ``φ_k``, the bias cancels, triangle inequality, operator norm), then the
induction hypothesis. The output difference is ``Σ_k C_k (z_k − z'_k)``; the triangle inequality
gives ``L``. ∎

For unrolled LISTA (layer k reads ``x_{k−1}`` through ``W_k`` and ``y`` through ``V_k``) this is
exactly the input-injection recursion ``L_k = ‖W_k‖ L_{k−1} + ‖V_k‖`` (ℓ_k = 1).

**Lipschitz constants of the activations.** A separable activation with slope interval
``[α, β]`` acts coordinatewise with difference quotients in ``[α, β]``, so it is
``max(|α|, |β|)``-Lipschitz. A non-separable activation declared firmly nonexpansive is
nonexpansive (``‖Ta − Tb‖² ≤ ⟨Ta − Tb, a − b⟩ ≤ ‖Ta − Tb‖‖a − b‖``, Cauchy–Schwarz), so
ℓ = 1. A non-separable activation without that property is rejected.

**Certification.** Every norm is :func:`~unfoldtheory.lipschitz.norms.spectral_norm_upper`
(a rigorous upper bound) and the recursion is evaluated with upward rounding, so the float64
value is ≥ the exact-arithmetic ``L``.
"""

from __future__ import annotations

import math
import time

from unfoldtheory.activations import Activation
from unfoldtheory.lipschitz.norms import spectral_norm_upper, up_add, up_mul
from unfoldtheory.lipschitz.quantity import QUANTITY
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec


def activation_lipschitz(act: Activation, where: str) -> float:
    """A Lipschitz constant of ``act`` in ℓ2 from its declared properties (see module docstring)."""
    if act.separable:
        lo, hi = act.slope_interval
        return float(max(abs(lo), abs(hi)))
    if act.firmly_nonexpansive:
        return 1.0
    raise ValueError(f"{where}: activation {act.name} is neither separable nor firmly nonexpansive; "
                     "the product bound has no Lipschitz constant for it")


def product_bound(spec: NetworkSpec) -> Bound:
    """The product bound (module docstring): ``L_k = Lip(φ_k) Σ_j ‖W_kj‖ L_j``, ``L = Σ_k ‖C_k‖ L_k``.

    Returns a certified upper :class:`~unfoldtheory.results.Bound`; ``certificate`` holds the
    per-state list ``[L_0, …, L_N]`` and ``details`` the norms used.
    """
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"product_bound takes a NetworkSpec, got {type(spec).__name__}")
    start = time.perf_counter()
    lips = [activation_lipschitz(act, f"layer {k}") for k, act in enumerate(spec.activations, start=1)]
    L = [1.0]
    weight_norms: dict[str, float] = {}
    for k, (ws, lip) in enumerate(zip(spec.weights, lips, strict=True), start=1):
        total = 0.0
        for j, w in sorted(ws.items()):
            nrm = spectral_norm_upper(w)
            weight_norms[f"W[{k}][{j}]"] = nrm
            total = up_add(total, up_mul(nrm, L[j]))
        L.append(up_mul(lip, total))
    value = 0.0
    readout_norms: dict[str, float] = {}
    for k, c in sorted(spec.readout.items()):
        nrm = spectral_norm_upper(c)
        readout_norms[f"C[{k}]"] = nrm
        value = up_add(value, up_mul(nrm, L[k]))
    seconds = time.perf_counter() - start
    details = {"activation_lipschitz": lips, "weight_norms": weight_norms, "readout_norms": readout_norms}
    if not math.isfinite(value):
        why = "the recursion overflowed float64"
        return Bound(math.inf, "upper", QUANTITY, "product", certified=False, certificate=L, seconds=seconds,
                     details={**details, "reason": why}, reason=why)
    return Bound(value, "upper", QUANTITY, "product", certified=True, certificate=L, seconds=seconds, details=details)
