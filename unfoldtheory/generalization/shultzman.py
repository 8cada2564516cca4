"""A Shultzman–Azar–Rodrigues–Eldar-style bound: ℓ∞-operator-norm peeling for ISTA/ADMM networks, and
their design rule as a checkable condition.

Shultzman, Azar, Rodrigues & Eldar (ICLR 2023, "Generalization and estimation error bounds for
model-based neural networks") bound the Rademacher complexity of ISTA and ADMM networks layer by
layer through the ℓ∞ operator norms ``‖W‖_∞`` (largest absolute row sum) of the weight matrices. Only
the abstract could be retrieved here; the bound below is re-derived in that style (peeling of ℓ1-bounded
rows, as in Bartlett & Mendelson 2002 / Golowich, Rakhlin & Shamir 2018) and does not use the paper's
refinement from the threshold, which could not be checked. Every constant is ours.

**Network.** Any :class:`~unfoldtheory.spec.NetworkSpec` with zero biases whose activations are soft
thresholds with one scalar threshold per state, or the identity: ISTA, ALISTA, LISTA, LISTA-CP,
unfolded FISTA and ADMM. ``z_0 = y``, ``z_k = φ_k(Σ_j W_kj z_j)``, output ``Σ_k C_k z_k``.

**Derivation** (empirical Rademacher complexities ``R`` on the sample, per coordinate):

1. *Classes.* ``G_k`` = the functions ``y ↦ φ_k(Σ_j w_j·z_j(y))`` with rows ``‖w_j‖₁ ≤ B_kj`` and
   ``z_j ∈ G_j^{d_j}``. ``φ`` is odd and 1-Lipschitz, so every ``G_k`` is symmetric (``f ∈ G ⇒ −f ∈ G``) and
   ``sup_f |Σ ε_i f| = sup_f Σ ε_i f``.
2. *Peeling.* For a fixed threshold, Talagrand's contraction and ``sup_{‖w‖₁≤B} w·v = B‖v‖_∞`` give
   ``R(G_k) ≤ Σ_{j≥1} B_kj R(G_j) + B_k0 ρ_y``, with ``ρ_y = (1/m)E‖Σ_i ε_i y_i‖_∞ ≤
   √(2 log(2d_y)) max_l ‖Y_{:,l}‖/m`` (Massart's lemma).
3. *Learned thresholds.* ``θ_k`` ranges over a grid ``T_k`` of ``[0, τ_k]``; each class
   ``X_θ = sup_{f∈G_k(θ)} (1/m)Σ ε_i f(y_i)`` has bounded differences ``2F_k/m`` (``F_k ≥ sup |f(y_i)|``,
   ``F_k = Σ_j B_kj F_j``, ``F_0 = max_i ‖y_i‖_∞``), hence is ``F_k/√m``-sub-Gaussian (McDiarmid), and
   ``E max_θ X_θ ≤ max_θ E X_θ + F_k√(2 log|T_k|/m)``. Off the grid (half-spacing η) the outputs move by
   at most ``ηΓ`` per coordinate, ``Γ`` from the same recursion with unit inputs; η is chosen so that
   this costs ``b/m`` in the gap.
4. *Readout and loss.* An output coordinate has ``R_out ≤ Σ_k ‖C_k‖_∞ R(G_k)``. The clipped loss is
   ``2√b``-Lipschitz in the output (ℓ2), so Maurer's vector-contraction inequality (2016, Cor. 1) gives
   ``R(loss) ≤ √2·2√b·Σ_l R_out = 2√2·√b·n_out·R_out``.
5. *Gap* ``≤ 2R(loss) + 3b√(log(2/δ')/(2m)) + b/m`` (:mod:`.rademacher`), with every ``B_kj``,
   ``‖C_k‖_∞`` and ``τ_k`` rounded up on a dyadic grid (bases from the data-free initialisation; union
   bound ``δ' = δ·Π 1/((j + 1)(j + 2))``) or given as ``radii``.

**Certification.** Not certified: :data:`UNPROVEN` names the steps without a directed-rounding argument.

**Design rule.** REFERENCES.md records (from the paper's code, [recalled], not verified here) the rule
``‖W_l‖_∞ ≤ B``, ``B ≈ 1 + λ/(2K√m)``, under which the bound stays flat in depth; :func:`design_rule`
checks it for the iterate-to-iterate weights with ``m`` the number of training samples (our reading;
for these weights ``Π_l ‖W_l‖_∞ ≤ (1 + λ/(2K√m))^K ≤ exp(λ/(2√m))``, which keeps the products of step 2
bounded).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from unfoldtheory.activations import Identity, SoftThreshold
from unfoldtheory.generalization.data import as_dataset, squared_losses
from unfoldtheory.generalization.parameter_lipschitz import has_initialisation, initial_model, spec_of
from unfoldtheory.generalization.rademacher import clip_value, gap_from_rademacher, round_up_radii
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.validation import finite_float, positive_int

QUANTITY = "generalization gap of the squared loss clipped at b (expected − training), with probability >= 1 − δ"
METHOD = "l-infinity peeling (Shultzman–Azar–Rodrigues–Eldar style, re-derived)"
_MARGIN = 1e-10
#: Why the bound is not certified (issue 12 audit).
UNPROVEN = ("not certified: the peeling recursion, the threshold-grid sizes (a float ceiling), the column norms of Y and "
            "the logs and square roots are evaluated in plain float64 with an a-priori margin of 1e-10, not with "
            "directed rounding")


def _inf_norm(W: np.ndarray) -> float:
    """An upper bound on ``‖W‖_∞ = max_rows Σ|W_ij|`` (float sum with a rounding margin)."""
    value = float(np.max(np.sum(np.abs(W), axis=1))) if W.size else 0.0
    return float(np.nextafter(value * (1.0 + 2.0 * (W.shape[1] + 2) * np.finfo(float).eps), math.inf))


@dataclass(frozen=True)
class PeelingNorms:
    """``edges[(k, j)] = ‖W_kj‖_∞``, ``readout[k] = ‖C_k‖_∞``, ``thresholds[k]`` (``None`` for the identity)."""

    edges: dict[tuple[int, int], float]
    readout: dict[int, float]
    thresholds: dict[int, float | None]


def peeling_norms(spec: NetworkSpec) -> PeelingNorms:
    """The ℓ∞ norms of ``spec``, or a ValueError if the peeling does not apply to it."""
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"expected a NetworkSpec, got {type(spec).__name__}")
    edges, thresholds = {}, {}
    for k in range(1, spec.num_layers + 1):
        act, bias = spec.activations[k - 1], spec.biases[k - 1]
        if np.any(bias != 0):
            raise ValueError(f"state {k} has a nonzero bias; the peeling bound needs none")
        if isinstance(act, SoftThreshold):
            if act.theta.ndim != 0:
                raise ValueError(f"state {k} has a vector threshold; the peeling bound needs one scalar threshold per state")
            thresholds[k] = float(act.theta)
        elif isinstance(act, Identity):
            thresholds[k] = None
        else:
            raise ValueError(f"state {k} has activation {act.name}; the peeling bound needs soft thresholds or the identity")
        for j, W in spec.weights[k - 1].items():
            edges[(k, j)] = _inf_norm(W)
    readout = {k: _inf_norm(C) for k, C in spec.readout.items()}
    return PeelingNorms(edges, readout, thresholds)


def _keys(norms: PeelingNorms) -> list[tuple[str, Any]]:
    return ([("edge", e) for e in sorted(norms.edges)] + [("readout", k) for k in sorted(norms.readout)]
            + [("threshold", k) for k in sorted(k for k, t in norms.thresholds.items() if t is not None)])


def _value(norms: PeelingNorms, key: tuple[str, Any]) -> float:
    kind, idx = key
    if kind == "edge":
        return norms.edges[idx]
    if kind == "readout":
        return norms.readout[idx]
    return float(norms.thresholds[idx] or 0.0)


def _class_radii(norms: PeelingNorms, model: nn.Module, radii: Any) -> tuple[dict[tuple[str, Any], float], float, str]:
    keys = _keys(norms)
    values = np.array([_value(norms, key) for key in keys])
    if radii is None:
        if has_initialisation(model):  # grid bases from the data-free initialisation ...
            ref = peeling_norms(initial_model(model).spec())
            if _keys(ref) != keys:
                raise ValueError("the initial model's spec has a different graph than the model's")
            ref_values = np.array([_value(ref, key) for key in keys])
        else:  # ... or, for a module without one, data-free constants
            ref_values = np.array([1e-3 if kind == "threshold" else 1.0 for kind, _ in keys])
        bases = np.where(ref_values > 0, ref_values, 1e-3)
        rounded, weight = round_up_radii(values, bases)
        return dict(zip(keys, rounded, strict=True)), weight, "dyadic grid (union bound)"
    if not isinstance(radii, dict):
        raise ValueError("radii must be a dict mapping ('edge', (k, j)), ('readout', k), ('threshold', k) to numbers")
    out = {}
    for key, v in zip(keys, values, strict=True):
        if key not in radii:
            raise ValueError(f"radii has no entry for {key}")
        r = finite_float(radii[key], f"radii[{key}]", low=0.0)
        if r < v * (1.0 - 1e-12):
            raise ValueError(f"radii[{key}] = {r:.6g} is below the model's value {v:.6g}: the class would not contain it")
        out[key] = max(r, v)
    return out, 1.0, "explicit"


def peeling_rademacher(spec: NetworkSpec, radii: dict[tuple[str, Any], float], Y: np.ndarray, clip: float) -> dict[str, Any]:
    """Steps 2–4 of the module docstring: the Rademacher bound of the clipped-loss class."""
    m, d_y = Y.shape
    b = clip_value(clip)
    rho_y = math.sqrt(2.0 * math.log(2.0 * d_y)) * float(np.max(np.linalg.norm(Y, axis=0))) / m
    F0 = float(np.max(np.abs(Y)))
    norms = peeling_norms(spec)
    thresholds = [k for k, t in norms.thresholds.items() if t is not None]
    n_out = spec.output_dim
    # unit propagation of threshold errors (Γ), then the grid half-spacing η
    E = {0: 0.0}
    for k in range(1, spec.num_layers + 1):
        E[k] = sum(radii[("edge", (k, j))] * E[j] for j in spec.weights[k - 1]) + (1.0 if k in thresholds else 0.0)
    gamma = sum(radii[("readout", k)] * E[k] for k in spec.readout)
    eta = math.sqrt(b) / (4.0 * m * math.sqrt(n_out) * gamma) if gamma > 0 else math.inf
    R, F, grid = {0: rho_y}, {0: F0}, {}
    for k in range(1, spec.num_layers + 1):
        inputs = spec.weights[k - 1]
        R[k] = sum(radii[("edge", (k, j))] * R[j] for j in inputs)
        F[k] = sum(radii[("edge", (k, j))] * F[j] for j in inputs)
        if k in thresholds:
            grid[k] = max(1, math.ceil(radii[("threshold", k)] / (2.0 * eta)))
            R[k] += F[k] * math.sqrt(2.0 * math.log(grid[k]) / m)
    R_out = sum(radii[("readout", k)] * R[k] for k in spec.readout)
    loss = 2.0 * math.sqrt(2.0) * math.sqrt(b) * n_out * R_out
    return {"input_complexity": rho_y, "state_complexity": R, "state_range": F, "output_complexity": R_out,
            "loss_complexity": loss, "threshold_grid_sizes": grid, "threshold_spacing": 2.0 * eta,
            "offgrid_cost": b / m if gamma > 0 else 0.0}


def shultzman_bound(model: nn.Module, data: Any, *, clip: float, delta: float = 0.05, radii: Any = None,
                    example_input: Any = None) -> Bound:
    """The ℓ∞-peeling bound on the gap of the loss clipped at ``b`` for ``model`` trained on ``data`` (a package
    model's spec, or the trace of any other module on ``example_input``; the grid bases of a module without a
    data-free initialisation are constants)."""
    start = time.perf_counter()
    b = clip_value(clip)
    delta = finite_float(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
    spec = spec_of(model, example_input)
    Y, X = as_dataset(data, "data", m=spec.input_dim, n=spec.output_dim)
    m = Y.shape[0]
    norms = peeling_norms(spec)
    r, weight, how = _class_radii(norms, model, radii)
    terms = peeling_rademacher(spec, r, Y, b)
    gap = gap_from_rademacher(terms["loss_complexity"], b, m, delta * weight) + terms["offgrid_cost"]
    gap = float(np.nextafter(gap * (1.0 + _MARGIN), math.inf))
    losses = squared_losses(model, (Y, X))
    details = {**terms, "radii": {str(k): v for k, v in r.items()}, "radii_choice": how, "delta": delta,
               "delta_used": delta * weight, "clip": b, "num_samples": m, "train_loss": float(losses.mean()),
               "clipped_fraction_train": float(np.mean(losses > b)), "trivial_bound": b, "vacuous": gap >= b,
               "expected_loss_bound": float(losses.mean()) + gap, "statement": "uniform over the class; loss clipped at b",
               "reason": UNPROVEN}
    return Bound(gap, "upper", QUANTITY, METHOD, certified=False, seconds=time.perf_counter() - start, details=details)


@dataclass(frozen=True)
class DesignRule:
    """The recalled design rule ``‖W_l‖_∞ ≤ B = 1 + λ/(2K√m)`` for the iterate-to-iterate weights."""

    norms: tuple[float, ...]
    limit: float
    satisfied: bool
    product: float
    worst_state: int

    def __str__(self) -> str:
        verdict = "holds" if self.satisfied else f"fails (state {self.worst_state}: {max(self.norms):.4g} > {self.limit:.6g})"
        return f"design rule ‖W_l‖_∞ ≤ {self.limit:.6g}: {verdict}; Π‖W_l‖_∞ = {self.product:.4g}"


def design_rule(model: nn.Module, num_samples: int, lam: float | None = None, *, layers: int | None = None,
                example_input: Any = None) -> DesignRule:
    """Check ``‖W_kj‖_∞ ≤ 1 + λ/(2K√m)`` for every weight between states (not from the input y).

    ``λ`` defaults to ``model.lam``, ``K`` to ``model.layers``, ``m = num_samples``; a module without them
    (not a package model) needs ``lam`` and ``layers`` (a ValueError says so) and is traced on ``example_input``.
    """
    m = positive_int(num_samples, "num_samples")
    for value, attr in ((lam, "lam"), (layers, "layers")):
        if value is None and not hasattr(model, attr):
            raise ValueError(f"module {type(model).__name__} has no attribute {attr!r}: the design rule needs λ and the "
                             f"depth K; pass {attr}=...")
    lam = finite_float(model.lam if lam is None else lam, "lam", low=0.0, low_open=True)
    K = positive_int(model.layers if layers is None else layers, "layers")
    norms = peeling_norms(spec_of(model, example_input))
    recurrent = [(v, k) for (k, j), v in sorted(norms.edges.items()) if j >= 1]
    limit = 1.0 + lam / (2.0 * K * math.sqrt(m))
    values = tuple(v for v, _ in recurrent)
    if not values:
        return DesignRule((), limit, True, 1.0, 0)
    worst = max(recurrent)[1]
    return DesignRule(values, limit, max(values) <= limit, float(np.prod(values)), worst)


def peeling_radii(model: nn.Module, scale: float = 1.0) -> dict[tuple[str, Any], float]:
    """The model's own class radii times ``scale ≥ 1`` (for an explicit ``radii`` argument)."""
    scale = finite_float(scale, "scale", low=1.0)
    norms = peeling_norms(model.spec())
    return {key: scale * _value(norms, key) for key in _keys(norms)}
