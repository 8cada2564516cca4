"""Which classical method an unrolled network is, read from its weights alone.

**Proximal gradient (ISTA).** ``K`` steps of proximal gradient with steps ``γ_k`` on
``f(x) = ½‖Ax − y‖²`` plus a convex ``h``, from ``x_0 = 0``, are the layers
``x_k = prox_{γ_k h}(W_k x_{k−1} + B_k y)`` with ``W_k = I − γ_k AᵀA`` and ``B_k = γ_k Aᵀ``. From ``W`` and
``B`` alone: ``I − W_k = γ_k AᵀA = B_kB_kᵀ/γ_k``, so ``1/γ_k`` is the scalar fitting
``I − W_k ≈ (1/γ_k)·B_kB_kᵀ`` and then ``A = B_kᵀ/γ_k`` (``proofs/spec_contraction.py``, claim 4). The
first layer has no W (``x_0 = 0``): its step is read from ``B_1 = γ_1Aᵀ`` with the A of the other layers.
Every fit is checked by its relative Frobenius residual (``W_k`` against ``I − γ_kAᵀA``, ``B_k`` against
``γ_kAᵀ``; :attr:`DetectedMethod.residual` is the largest), and a residual above ``tol`` is a refusal
with the layer named. A layer bias ``b_k`` belongs to the prox: ``φ(v + b) = prox_{h − ⟨b, ·⟩}(v)``.

**Activations** must be proximal maps of convex functions: the built-in soft threshold (ℓ1), ReLU
(ℓ1 + nonnegativity with its bias), box projection (indicator), group soft threshold, identity
(``h = 0``: gradient descent), or a user activation declared separable with slopes in [0, 1] (a
nondecreasing 1-Lipschitz scalar map is the prox of a convex function; Moreau 1965).

**Momentum** (FISTA's layout, :class:`~unfoldtheory.unfold.UnfoldedFISTA`): layer k ≥ 3 reads
``x_{k−1}`` through ``(1 + β)(I − γ_kAᵀA)`` and ``x_{k−2}`` through ``−β(I − γ_kAᵀA)``; layer 2 reads
``(1 + β_1)(I − γ_2AᵀA)`` on ``x_1`` only. With the identity activation this is the accelerated gradient
method of :func:`~unfoldtheory.convergence.pep_rate`; with a prox it is FISTA, detected but without a
PEP here (the reason says so).

**What a PEP of the detected method covers.** The classical method with the detected constants
(``A``, ``γ_k``, ``μ ≤ λ_min(AᵀA)``, ``L ≥ ‖A‖₂²``). The network equals it up to the detection
residual: within float64 rounding (``residual ≤`` :data:`ROUNDING`) it *is* that method
(:attr:`~DetectedMethod.covers_network`); with a looser residual the bound is certified for the
classical method only, not for the given network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unfoldtheory.activations import (
    Activation,
    BoxProjection,
    GroupSoftThreshold,
    Identity,
    ReLU,
    SoftThreshold,
    is_builtin,
)
from unfoldtheory.convergence.iteration import IterationLayer, iteration_layers
from unfoldtheory.convergence.psd_bound import gram_extremes
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.validation import as_finite_array, finite_float

#: Default relative residual accepted by the detection (a float32-trained model exported to float64 passes).
TOLERANCE = 1e-6
#: Residuals up to this are float64 rounding of the weights: the network then is the detected method.
ROUNDING = 1e-12
_PROXES = (SoftThreshold, ReLU, BoxProjection, GroupSoftThreshold, Identity)


@dataclass(frozen=True, eq=False)
class DetectedMethod:
    """The classical method an unrolled spec is, with its constants, or the reason none was detected.

    Attributes
    ----------
    method: a name such as ``"proximal gradient (ISTA)"``, ``"gradient descent"``,
        ``"accelerated gradient (Nesterov momentum)"``; None when nothing was detected.
    pep_method: the :func:`~unfoldtheory.convergence.pep_rate` method that covers it (None when none does).
    steps: ``γ_1..γ_K``.   momentum: ``β_1..β_{K−1}`` (accelerated methods only).
    thresholds: per layer, the soft threshold θ_k (a scalar or an n-vector; ReLU: ``−b_k``), else None.
    A: the implied ``A`` (m×n) with ``B_k = γ_kAᵀ``; ``gram = AᵀA``.
    mu, L: certified ``μ ≤ λ_min(AᵀA)`` and ``L ≥ ‖A‖₂²`` (:func:`~.psd_bound.gram_extremes`).
    lam: ``λ = θ_k/γ_k`` when every layer's soft threshold is the prox of the same ``λ‖·‖₁``.
    same_prox: every layer's prox is ``prox_{γ_k h}`` of one convex h (else the PEP covers the steps on
        a fixed ``F = f + h``, not the per-layer proxes).
    residual: the largest relative residual of the fits (inf when none was made); tolerance: the one used.
    covers_network: residual ≤ :data:`ROUNDING`: the network is the detected method up to float64 rounding.
    reason: why no method (or no PEP) was detected; None when ``pep_method`` is set.
    notes: caveats (user-declared activations, biases, the readout).
    surrogate: set when the layers are not the method's steps but the PEP is of the steps γ_k used as
        proximal gradient steps (ALISTA's ``x − γ_kW̃ᵀ(Ax − y)``); says what is and is not covered.
    """

    method: str | None
    pep_method: str | None = None
    steps: np.ndarray | None = None
    momentum: np.ndarray | None = None
    thresholds: list[Any] | None = None
    A: np.ndarray | None = None
    gram: np.ndarray | None = None
    mu: float | None = None
    L: float | None = None
    lam: float | None = None
    same_prox: bool = False
    residual: float = float("inf")
    tolerance: float = TOLERANCE
    covers_network: bool = False
    reason: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    surrogate: str | None = None

    @property
    def detected(self) -> bool:
        """Whether a method with a PEP was detected."""
        return self.pep_method is not None

    def __repr__(self) -> str:
        if self.method is None:
            return f"DetectedMethod(None, reason={self.reason!r})"
        K = 0 if self.steps is None else self.steps.size
        extra = "" if self.reason is None else f", reason={self.reason!r}"
        return (f"DetectedMethod({self.method!r}, K={K}, mu={self.mu!r}, L={self.L!r}, residual={self.residual:.3g}, "
                f"covers_network={self.covers_network}{extra})")


def _rel(diff: np.ndarray, ref: np.ndarray) -> float:
    """``‖diff‖_F / ‖ref‖_F`` (inf when ref is zero and diff is not)."""
    den = float(np.linalg.norm(ref))
    num = float(np.linalg.norm(diff))
    return num / den if den > 0 else (0.0 if num == 0 else float("inf"))


def _is_prox(act: Activation) -> bool:
    if isinstance(act, _PROXES) and is_builtin(act):
        return True
    lo, hi = (float(x) for x in act.slope_interval)
    return bool(act.separable and 0.0 <= lo and hi <= 1.0)


def _refuse(reason: str, method: str | None = None, **found: Any) -> DetectedMethod:
    return DetectedMethod(method, reason=reason, **found)


def _name(acts: list[Activation], momentum: bool) -> str:
    if all(isinstance(a, Identity) for a in acts):
        return "accelerated gradient (Nesterov momentum)" if momentum else "gradient descent"
    if momentum:
        return "accelerated proximal gradient (FISTA)"
    if all(isinstance(a, SoftThreshold) for a in acts):
        return "proximal gradient (ISTA)"
    if all(isinstance(a, BoxProjection) for a in acts):
        return "proximal gradient (projected gradient)"
    return "proximal gradient"


def _thresholds(layer: IterationLayer) -> Any:
    act = layer.activation
    if isinstance(act, SoftThreshold):
        return float(act.theta) if act.theta.ndim == 0 else act.theta.copy()
    if isinstance(act, ReLU):
        return -layer.bias.copy()
    return None


def _lam(layers: list[IterationLayer], steps: np.ndarray) -> float | None:
    """``λ`` when every layer is ``ST_{γ_kλ}`` with zero bias (one ``h = λ‖·‖₁``), else None."""
    if not all(isinstance(layer.activation, SoftThreshold) and not np.any(layer.bias) for layer in layers):
        return None
    ratios = [np.asarray(layer.activation.theta) / g for layer, g in zip(layers, steps, strict=True)]
    first = ratios[0]
    if first.ndim == 0 and all(r.ndim == 0 and np.isclose(r, first, rtol=1e-9, atol=0) for r in ratios):
        return float(first)
    return None


def _same_prox(layers: list[IterationLayer], steps: np.ndarray, lam: float | None) -> bool:
    if lam is not None:
        return True
    from unfoldtheory.convergence.spec_contraction import same_activation

    if all(isinstance(layer.activation, Identity) for layer in layers):  # h = 0 up to a linear term
        return all(np.allclose(layer.bias / g, layers[0].bias / steps[0], rtol=1e-9, atol=0)
                   for layer, g in zip(layers, steps, strict=True))
    first = layers[0]
    return all(same_activation(layer.activation, first.activation) and np.array_equal(layer.bias, first.bias)
               for layer in layers) and bool(np.all(steps == steps[0]))


def detect_method(spec: NetworkSpec, *, A: Any = None, tol: float = TOLERANCE) -> DetectedMethod:
    """The classical method that the unrolled ``spec`` is (module docstring), detected from its weights.

    ``A`` (m×n), when known, is used instead of the one implied by the weights (then a single layer
    suffices). ``tol`` is the largest relative residual accepted. Returns a :class:`DetectedMethod`;
    when nothing is detected, ``method`` (or ``pep_method``) is None and ``reason`` names the layer and the
    residual. A spec that is not an unrolled iteration at all is such a refusal too.
    """
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"detect_method takes a NetworkSpec, got {type(spec).__name__}")
    tol = finite_float(tol, "tol", low=0.0, low_open=True)
    try:
        layers = iteration_layers(spec, output=False)
    except ValueError as exc:
        return _refuse(str(exc))
    n, K = spec.dims[1], spec.num_layers
    notes = []
    if set(spec.readout) != {K} or not np.array_equal(spec.readout[K], np.eye(n)):
        notes.append(f"the network's output is a read-out of the states, not x_{K}: the method's iterates are its states")
    for layer in layers:
        if not _is_prox(layer.activation):
            return _refuse(f"layer {layer.k}'s activation {layer.activation.name} is not declared the proximal map of a "
                           "convex function (built-in soft threshold, ReLU, box, group soft threshold, identity, or "
                           "separable with slopes in [0, 1])")
        if layer.B is None:
            return _refuse(f"y does not enter layer {layer.k}: not a gradient step on ½‖Ax − y‖²")
        if layer.k >= 2 and layer.W is None:
            return _refuse(f"layer {layer.k} does not read x_{layer.k - 1}: not an iteration")
        if not is_builtin(layer.activation):
            notes.append(f"layer {layer.k}: the activation is declared by the user; that it is a prox rests on the declaration")
    momentum = any(layer.V is not None for layer in layers)
    acts = [layer.activation for layer in layers]
    name = _name(acts, momentum)
    known_A = A is not None
    if known_A:
        A = as_finite_array(A, "A", ndim=2)
        if A.shape[1] != n or A.shape[0] != spec.input_dim:
            raise ValueError(f"A has shape {A.shape}; expected ({spec.input_dim}, {n}) for this spec")
    else:
        if K < 2:
            return _refuse("one layer reads only y (x_0 = 0): its step is not determined by the weights (pass A)", name)
        W2, B2 = layers[1].W, layers[1].B
        BB = B2 @ B2.T
        eye = np.eye(n)
        if momentum:  # W_2 = (1 + β_1)I − ((1 + β_1)/γ_2)·B_2B_2ᵀ: fit (a, c) in W_2 ≈ aI − c·BBᵀ
            gram2 = np.array([[n, np.trace(BB)], [np.trace(BB), float(np.sum(BB * BB))]])
            rhs = np.array([np.trace(W2), float(np.sum(W2 * BB))])
            try:
                a, minus_c = np.linalg.solve(gram2, rhs)
            except np.linalg.LinAlgError:
                return _refuse("layer 2: B_2B_2ᵀ is a multiple of I, so the step and the momentum are not separable", name)
            c = -minus_c
            gamma2 = a / c if c > 0 else -1.0
        else:
            inv = float(np.sum(BB * (eye - W2))) / float(np.sum(BB * BB)) if np.any(BB) else 0.0
            gamma2 = 1.0 / inv if inv > 0 else -1.0
        if not gamma2 > 0 or not np.isfinite(gamma2):
            return _refuse("layer 2: I − W_2 is not a positive multiple of B_2B_2ᵀ, so no step γ_2 > 0 with W_2 = I − γ_2AᵀA "
                           "and B_2 = γ_2Aᵀ exists", name)
        A = B2.T / gamma2
    found = _fit(layers, A, momentum, name, tol, tuple(notes))
    if known_A and not found.detected and not momentum:
        analytic = _analytic(layers, A, tol, tuple(notes))
        if analytic is not None:
            return analytic
    return found


def residual_form(spec: NetworkSpec, A: Any, *, tol: float = TOLERANCE) -> tuple[list[IterationLayer], float]:
    """The layers of ``spec`` as ``x_k = φ_k(x_{k−1} − B_k(Ax_{k−1} − y))``, i.e. ``W_k = I − B_kA`` (LISTA-CP,
    ALISTA and ISTA layers), with the largest relative residual ``‖W_k − (I − B_kA)‖_F / ‖B_kA‖_F``.

    ValueError naming the layer when the spec is not an unrolled iteration, y does not enter a layer,
    a layer has a momentum edge, or a residual exceeds ``tol``."""
    A = as_finite_array(A, "A", ndim=2)
    layers = iteration_layers(spec)
    n = spec.dims[1]
    if A.shape != (spec.input_dim, n):
        raise ValueError(f"A has shape {A.shape}; expected ({spec.input_dim}, {n}) for this spec")
    residual = 0.0
    for layer in layers:
        if layer.B is None:
            raise ValueError(f"y does not enter layer {layer.k}: not x − B(Ax − y)")
        if layer.V is not None:
            raise ValueError(f"layer {layer.k} reads x_{layer.k - 2} (momentum): not x⁺ = φ(x − B(Ax − y))")
        if layer.k >= 2:
            BA = layer.B @ A
            r = _rel(layer.W - (np.eye(n) - BA), BA)
            if r > tol:
                raise ValueError(f"layer {layer.k}: W_{layer.k} is not I − B_{layer.k}A (relative residual {r:.3g} > tol "
                                 f"{tol:g}), so the layer is not x − B(Ax − y) with this A")
            residual = max(residual, r)
    return layers, residual


def _analytic(layers: list[IterationLayer], A: np.ndarray, tol: float, notes: tuple[str, ...]) -> DetectedMethod | None:
    """ALISTA's form ``x − γ_kW̃ᵀ(Ax − y)`` with one W̃, ``diag(W̃ᵀA) = 1``, as a surrogate (None if not that form)."""
    n = A.shape[1]
    steps, residual, first = [], 0.0, None
    for layer in layers:
        BA = layer.B @ A
        g = float(np.mean(np.diag(BA)))
        if not g > 0:
            return None
        M = layer.B / g
        first = M if first is None else first
        checks = [_rel(M - first, first), float(np.max(np.abs(np.diag(M @ A) - 1.0)))]
        if layer.W is not None:
            checks.append(_rel(layer.W - (np.eye(n) - BA), BA))
        residual = max(residual, *checks)
        steps.append(g)
    if residual > tol:
        return None
    mu, L = gram_extremes(A)
    steps_arr = np.array(steps)
    surrogate = ("the ALISTA-type update x − γ_k W̃ᵀ(Ax − y) is not a gradient step on f = ½‖Ax − y‖² (W̃ᵀA is not "
                 "symmetric) and its iterates are not covered: the PEP certifies the steps γ_k applied as proximal "
                 "gradient steps on f plus a convex h (L = ‖A‖₂²)")
    return DetectedMethod("ALISTA-type iteration x − γ_k W̃ᵀ(Ax − y)", "proximal_gradient", steps_arr, None,
                          [_thresholds(layer) for layer in layers], A, A.T @ A, mu, L, _lam(layers, steps_arr),
                          False, residual, tol, residual <= ROUNDING, None, notes, surrogate)


def _fit(layers: list[IterationLayer], A: np.ndarray, momentum: bool, name: str, tol: float,
         notes: tuple[str, ...]) -> DetectedMethod:
    """Steps (and momentum) of every layer for a given A, with the residuals checked against ``tol``."""
    n = A.shape[1]
    G, eye = A.T @ A, np.eye(n)
    AT, norm2 = A.T, float(np.sum(A * A))
    if norm2 == 0:
        return _refuse("the implied A is zero", name)
    steps, betas, residual, worst = [], [], 0.0, ""
    for layer in layers:
        g = float(np.sum(layer.B * AT)) / norm2
        if not g > 0:
            return _refuse(f"layer {layer.k}: B_{layer.k} is not a positive multiple of Aᵀ (step {g:.3g})", name)
        checks = {f"B_{layer.k} against γ_{layer.k}Aᵀ": _rel(layer.B - g * AT, layer.B)}
        if layer.W is not None:
            step = eye - g * G
            if momentum:
                a = float(np.sum(layer.W * step)) / float(np.sum(step * step))
                beta = a - 1.0
                if -tol <= beta < 0:  # float rounding of a zero momentum (e.g. FISTA's β_1 = 0)
                    checks[f"β of layer {layer.k} against 0"] = -beta
                    beta = 0.0
                checks[f"W_{layer.k} against (1 + β)(I − γ_{layer.k}AᵀA)"] = _rel(layer.W - a * step, g * a * G)
                V = np.zeros((n, n)) if layer.V is None else layer.V
                checks[f"the momentum weight of layer {layer.k} against −β(I − γAᵀA)"] = _rel(V + beta * step, layer.W)
                betas.append(beta)
            else:
                asym = _rel(layer.W - layer.W.T, eye - layer.W)
                if asym > tol:
                    return _refuse(f"layer {layer.k}: I − W_{layer.k} is not symmetric (relative asymmetry {asym:.3g} > tol "
                                   f"{tol:g}): not a gradient step on any function", None, residual=asym, tolerance=tol)
                checks[f"W_{layer.k} against I − γ_{layer.k}AᵀA"] = _rel(layer.W - step, g * G)
        for what, r in checks.items():
            if r > residual:
                residual, worst = r, what
        steps.append(g)
    steps_arr = np.array(steps)
    if residual > tol:
        return _refuse(f"{worst}: relative residual {residual:.3g} > tol {tol:g}; the weights are not those of {name} "
                       "with one A", None, residual=residual, tolerance=tol)
    if momentum and len(betas) != len(layers) - 1:
        return _refuse("a momentum layer does not read x_(k−1)", name)
    mu, L = gram_extremes(A)
    lam = _lam(layers, steps_arr)
    found = dict(steps=steps_arr, momentum=np.array(betas) if momentum else None,
                 thresholds=[_thresholds(layer) for layer in layers], A=A, gram=G, mu=mu, L=L, lam=lam,
                 same_prox=_same_prox(layers, steps_arr, lam), residual=residual, tolerance=tol,
                 covers_network=residual <= ROUNDING, notes=notes)
    identity = all(isinstance(layer.activation, Identity) for layer in layers)
    if momentum and not identity:
        return DetectedMethod(name, reason="an accelerated proximal method (FISTA) has no PEP here: pep_rate's "
                              "'accelerated' method takes gradient steps without a prox", **found)
    if momentum and np.any(found["momentum"] < 0):
        k = int(np.argmax(found["momentum"] < 0))
        return DetectedMethod(name, reason=f"momentum β_{k + 1} = {found['momentum'][k]:.3g} < 0", **found)
    pep_method = "accelerated" if momentum else ("gradient" if identity else "proximal_gradient")
    if identity and not found["same_prox"]:
        return DetectedMethod(name, reason="the layer biases are not γ_k·c for one c: gradient steps on different "
                              "functions", **found)
    return DetectedMethod(name, pep_method, **found)
