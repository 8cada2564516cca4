"""Covering-number (Dudley) bound on the generalization gap of an unfolded network.

It follows the template of Behboodi, Rauhut & Schnoor (2020, "Compressive sensing and neural networks
from a statistical learning perspective") and Schnoor, Behboodi & Rauhut (2023, "Generalization error
bounds for iterative recovery algorithms unfolded as neural networks"): the Rademacher complexity of
the class is bounded by Dudley's entropy integral, whose covering numbers come from a Lipschitz
constant of the network in its parameters. Only the abstracts of these papers could be retrieved
here (they confirm the template: Rademacher complexity via Dudley's integral, sample complexity
linear in the number of parameters); their constants could not be checked, so every constant below
is re-derived, and the chain is written to be self-contained and checked in
``proofs/covering_bound.py``. The chaining constant 12 matches Shalev-Shwartz & Ben-David,
*Understanding Machine Learning* (2014), Lemma 27.4; McDiarmid and symmetrization as in their
Lemma 26.2/26.4 and Mohri, Rostamizadeh & Talwalkar, *Foundations of ML*, Thm 3.3.

**Setting.** Samples ``z = (y, x)`` are i.i.d. with ``‖y‖ ≤ R`` and ``‖x‖ ≤ B`` almost surely
(``input_radius``, ``output_radius``). The class is ``{h_θ : θ ∈ Θ}``, ``Θ`` the ℓ2 ball of radius
``r`` around a centre ``c`` in ``ℝ^D`` (D = distinct learned scalars: a parameter tied across layers counts once).
Let ``X_K`` be the certified bound on ``‖h_θ(y)‖`` from the parameter recursion. If ``X_K ≤ B`` the
predictor is the model itself and ``B_h = X_K``; otherwise the bound is for the *clipped* model
``P_B ∘ h_θ`` (projection onto the ball of radius B, 1-Lipschitz, so ``K_L`` carries over, and, as
``‖x‖ ≤ B``, ``‖P_B h − x‖ ≤ ‖h − x‖``: clipping never increases a loss) with ``B_h = B``.

**Chain.** Loss ``ℓ = ‖h − x‖²``.

1. Range and Lipschitz constant: ``0 ≤ ℓ ≤ b = (B_h + B)²`` and
   ``|ℓ(h) − ℓ(h')| = |⟨h − h', h + h' − 2x⟩| ≤ L_ℓ‖h − h'‖``, ``L_ℓ = 2(B_h + B)``.
2. Loss class covering: ``|ℓ_θ(z) − ℓ_θ'(z)| ≤ L_ℓ K_L ‖θ − θ'‖``, so an ``ε/(L_ℓK_L)``-cover of Θ
   is an ε-cover of the loss class ``F`` in the empirical metric ``d_S``; the volumetric argument
   gives ``N(Θ, η) ≤ (1 + 2r/η)^D``, hence ``N(F, ε, d_S) ≤ (1 + 2ρ/ε)^D`` with ``ρ = L_ℓK_Lr``.
3. Dudley (chaining with ``ε_j = c₀2^{-j}``, Massart's lemma on the ``≤ N_j²`` links of length
   ``≤ 3ε_j``): ``R̂_S(F) ≤ (12/√m) ∫₀^{c₀/2} √(log N(F, ε, d_S)) dε``, where
   ``c₀ ≥ sup_f ‖f − f_c‖_S``; the Rademacher complexity is unchanged by subtracting the fixed
   ``f_c``, and ``|f − f_c| ≤ min(b, ρ)``, so ``c₀ = min(b, ρ)``.
4. The integral: by Cauchy–Schwarz ``∫₀^a √g ≤ √(a ∫₀^a g)`` and, exactly,
   ``∫₀^a log(1 + β/ε) dε = a log(1 + β/a) + β log(1 + a/β)`` (≤ ``a log(e(1 + β/a))``), so with
   ``a = c₀/2``, ``β = 2ρ``: ``R̂_S ≤ (12/√m) √D a √(log(1 + β/a) + (β/a) log(1 + a/β))``, for every S.
5. Gap: ``Φ(S) = sup_f (E f − Ê_S f)`` has bounded differences ``b/m``, so by McDiarmid with
   probability ≥ 1 − δ, ``Φ ≤ E Φ + b√(log(1/δ)/(2m))``, and ``E Φ ≤ 2 E R̂_S`` (symmetrization):
   ``gap ≤ 2R̂ + b√(log(1/δ)/(2m))`` for every θ in the ball, the trained model included.

**Which ball makes it rigorous.** The statement is uniform over a ball fixed *before* the data:

* ``center="init"`` (default): the model's data-free initialisation (``A``, depth and ``λ`` are
  taken as fixed beforehand). With ``parameter_radius=None`` (default) the radius is the smallest
  ``r_j = r₀2^j ≥ ‖θ − c‖`` (``r₀ = 10⁻³·max(1, ‖c‖)``, fixed by the centre) and ``δ`` is split
  as ``δ_j = δ/((j+1)(j+2))`` (``Σ_j δ_j = δ``): a union bound over the grid, so the radius may be
  read off the trained model. An explicit ``parameter_radius`` must have been fixed beforehand.
* ``center="zero"``: the origin, data-free for every module (the radius then covers the whole trained model).
* a given vector or model: the same, if it was chosen without the training data.
* ``center="model"``: the ball is centred at the trained model, which depends on the data; the
  number is then *not* a valid bound for the trained model (``certified=False``, said in details).

For signal models with unbounded support (Bernoulli–Gaussian) the statement holds for the
distribution conditioned on ``‖y‖ ≤ R, ‖x‖ ≤ B``; see :func:`~unfoldtheory.generalization.data.data_radii`.

**Certification.** ``K_L`` and ``X_K`` come certified from
:func:`~unfoldtheory.generalization.parameter_lipschitz.parameter_lipschitz`; the model's distance to the
centre is an upward-rounded norm, the grid share of δ is rounded down, and the value is the formula
evaluated in mpmath interval arithmetic (:func:`interval_gap`) from the same float inputs, its upper end
rounded up: no step relies on an a-priori margin. Certified when ``K_L`` is and the centre is data-independent.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from torch import nn

from unfoldtheory.generalization.parameter_lipschitz import (
    check_parameters,
    flat_parameters,
    model_size,
    parameter_lipschitz,
    resolve_center,
)
from unfoldtheory.results import Bound
from unfoldtheory.rounding import PREC, diff_norm_upper, down, interval, iv_min, mp_upper, precision
from unfoldtheory.validation import finite_float, positive_int

QUANTITY = "generalization gap of the squared loss (expected − training), with probability >= 1 − δ"
METHOD = "covering number + Dudley integral"
DUDLEY = 12
GRID_BASE = 1e-3


def dudley_integral_bound(a: float, beta: float) -> float:
    """``a √(log(1 + β/a) + (β/a) log(1 + a/β))`` ≥ ``∫₀^a √log(1 + β/ε) dε`` (0 for ``a = 0``)."""
    if a <= 0.0:
        return 0.0
    if beta <= 0.0:
        return 0.0
    q = beta / a
    return a * math.sqrt(math.log1p(q) + q * math.log1p(1.0 / q))


def gap_terms(num_samples: int, delta: float, D: int, K_L: float, r: float, B_h: float, B: float) -> dict[str, float]:
    """Every term of the bound (module docstring, steps 1–5), in float64 (not yet rounded up)."""
    b = (B_h + B) ** 2
    lip = 2.0 * (B_h + B)
    rho = lip * K_L * r
    c0 = min(b, rho)
    integral = dudley_integral_bound(c0 / 2.0, 2.0 * rho)
    rademacher = DUDLEY / math.sqrt(num_samples) * math.sqrt(D) * integral
    concentration = b * math.sqrt(-math.log(delta) / (2.0 * num_samples))
    return {"loss_range": b, "loss_lipschitz": lip, "rho": rho, "c0": c0, "dudley_integral": integral,
            "rademacher": rademacher, "concentration": concentration, "gap": 2.0 * rademacher + concentration}


def interval_gap(num_samples: int, delta: float, D: int, K_L: float, r: float, B_h: float, B: float) -> float:
    """A rigorous float upper bound on the formula of :func:`gap_terms` at the exact values of the float inputs:
    the formula evaluated in mpmath interval arithmetic (:mod:`unfoldtheory.rounding`), upper end rounded up."""
    # q·log(1 + 1/q) loses log2(q) bits to the cancellation inside log(1 + 1/q): carry that many more
    q_scale = math.frexp(max(1.0, 8.0 * float(K_L) * float(r) / max(float(B_h) + float(B), 1e-300)))[1]
    with precision(PREC + q_scale) as iv:
        b = (interval(B_h) + interval(B)) ** 2
        rho = 2 * (interval(B_h) + interval(B)) * interval(K_L) * interval(r)
        a = iv_min(b, rho) / 2
        if mp_upper(a) == 0.0:
            integral = interval(0)
        else:
            q = 2 * rho / a
            integral = a * iv.sqrt(iv.log(1 + q) + q * iv.log(1 + 1 / q))
        rademacher = DUDLEY / iv.sqrt(interval(num_samples)) * iv.sqrt(interval(D)) * integral
        return mp_upper(2 * rademacher + b * iv.sqrt(-iv.log(interval(delta)) / (2 * interval(num_samples))))


def radius_on_grid(distance: float, center_norm: float) -> tuple[float, int]:
    """The smallest ``r_j = r₀2^j ≥ distance`` with ``r₀ = GRID_BASE·max(1, ‖c‖)``, and ``j``."""
    r0 = GRID_BASE * max(1.0, center_norm)
    j = 0 if distance <= r0 else math.ceil(math.log2(distance / r0))
    while r0 * 2.0 ** j < distance:
        j += 1
    return r0 * 2.0 ** j, j


def covering_bound(model: nn.Module, num_samples: int, delta: float, input_radius: float, output_radius: float,
                   loss: str = "mse", parameter_radius: float | None = None, center: Any = "init", *,
                   example_input: Any = None) -> Bound:
    """Upper bound on the gap ``E ℓ − (1/m)Σℓ`` of ``model`` trained on ``num_samples`` samples, w.p. ≥ 1 − δ.

    ``input_radius`` R and ``output_radius`` B bound ``‖y‖`` and ``‖x‖`` (the data's support);
    ``parameter_radius`` and ``center`` fix the parameter ball (module docstring: which choice
    is rigorous). ``details`` holds every term, ``applies_to`` (the model or the clipped model),
    ``trivial_bound = b`` (the loss range, which any gap respects) and ``vacuous = value ≥ b``.
    Adding the training loss gives the bound on the expected loss.

    Any torch module with parameters (:func:`~unfoldtheory.generalization.parameter_lipschitz.parameter_lipschitz`
    traces it on ``example_input``); ``center="init"`` needs a package model, ``center="zero"`` (the origin) is
    data-free for every module.
    """
    start = time.perf_counter()
    check_parameters(model)
    if loss != "mse":
        raise ValueError(f"loss {loss!r} is not supported; the bounds are stated for 'mse' (‖h(y) − x‖² summed over coordinates)")
    m = positive_int(num_samples, "num_samples")
    delta = finite_float(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
    R = finite_float(input_radius, "input_radius", low=0.0, low_open=True)
    B = finite_float(output_radius, "output_radius", low=0.0, low_open=True)
    theta_c, kind = resolve_center(model, center)
    distance = diff_norm_upper(flat_parameters(model), theta_c)  # ≥ the exact distance
    if parameter_radius is None:
        r, j = radius_on_grid(distance, float(np.linalg.norm(theta_c)))
        delta_used = float(down(delta / ((j + 1) * (j + 2))))  # ≤ the exact share: the shares sum to ≤ δ
    else:
        r = finite_float(parameter_radius, "parameter_radius", low=0.0)
        if r < distance:
            raise ValueError(f"parameter_radius {r:.6g} is smaller than the model's distance {distance:.6g} to the centre: "
                             "the bound would not cover the model")
        j, delta_used = None, delta
    lip = parameter_lipschitz(model, R, r, center=theta_c, example_input=example_input)
    X_K = float(lip.details["output_bound"])
    clipped = X_K > B
    B_h = B if clipped else X_K
    D = model_size(model)  # distinct scalars: a tied parameter counts once
    terms = gap_terms(m, delta_used, D, lip.value, r, B_h, B)
    value = interval_gap(m, delta_used, D, lip.value, r, B_h, B) if math.isfinite(lip.value) else math.inf
    checked = math.isfinite(value)
    rigorous = kind != "model"
    certified = bool(lip.certified and checked and rigorous)
    details: dict[str, Any] = {
        **terms, "K_L": lip.value, "K_L_certified": lip.certified, "num_parameters": D, "num_samples": m,
        "delta": delta, "delta_used": delta_used, "radius_grid_index": j, "parameter_radius": r,
        "center": kind, "model_distance_to_center": distance, "input_radius": R, "output_radius": B,
        "model_output_bound": X_K, "clipped": clipped,
        "applies_to": "the clipped model P_B∘h (outputs projected onto ‖·‖ ≤ output_radius)" if clipped else "the model",
        "trivial_bound": terms["loss_range"], "vacuous": value >= terms["loss_range"], "interval_evaluation_finite": checked,
        "rigorous_for_trained_model": rigorous,
        "assumptions": "i.i.d. samples with ‖y‖ ≤ input_radius and ‖x‖ ≤ output_radius; ball fixed before the data"
                       + (" (radius from the dyadic grid, union bound)" if j is not None else " (explicit radius)"),
    }
    if not rigorous:
        details["reason"] = ("the ball is centred at the trained model, which depends on the training data; "
                             "use center='init' (or a data-independent vector) for a valid bound")
    elif not certified:
        details["reason"] = "K_L is not certified or the bound overflowed float64"
    return Bound(value, "upper", QUANTITY, METHOD, certified=certified, certificate=lip.certificate,
                 seconds=time.perf_counter() - start, details=details)
