"""The parameter Lipschitz constant ``K_L`` of an unfolded network, certified and estimated.

``K_L`` is the constant of ``‖h_θ(y) − h_θ'(y)‖ ≤ K_L ‖θ − θ'‖`` for every input ``‖y‖ ≤ R`` and
every pair ``θ, θ'`` in the Euclidean ball ``Θ = {θ : ‖θ − c‖ ≤ r}`` of the flattened vector of
*distinct* learned parameters (``model.parameters()``, so a shared parameter is one coordinate block,
counted once). It is what covering-number generalization bounds need (Behboodi, Rauhut & Schnoor
2020; Schnoor, Behboodi & Rauhut 2023); :func:`parameter_lipschitz` computes a certified upper bound
by a layer recursion, :func:`parameter_lipschitz_estimate` a lower bound with a witness pair.

**Layer form.** Every supported model computes ``x_0 = 0``, ``x_{k+1} = ST_{t_k}(v_k)``,
``v_k = M_k x_k + N_k y``, ``t_k = max(θ_k, 0)`` (the forward pass clamps thresholds), with

* UnfoldedISTA (``P = A``) and ALISTA (``P = W̃``): ``M_k = I − γ_k PᵀA``, ``N_k = γ_k Pᵀ``;
* LISTA-CP: ``M_k = I − W_kᵀA``, ``N_k = W_kᵀ`` (learned ``W_k`` of A's shape);
* LISTA: ``M_k = W₂ᵏ`` (absent for k = 0), ``N_k = W₁ᵏ``.

**Derivation.** Write ``x_k, x'_k`` for the iterates under ``θ, θ'`` and ``e_k = ‖x_k − x'_k‖``.

1. *Thresholds.* Per coordinate ``|ST_t(v) − ST_t'(v)| ≤ |t − t'|`` and ``|max(θ,0) − max(θ',0)| ≤
   |θ − θ'|`` (``proofs/parameter_lipschitz.py``), so with one scalar threshold per layer
   ``‖ST_t(v') − ST_t'(v')‖ ≤ √n |Δθ_k|``; ST is 1-Lipschitz in ``v``. Hence
   ``e_{k+1} ≤ ‖v_k − v'_k‖ + √n |Δθ_k|``.
2. *Affine part.* ``v − v' = M(x − x') + (M − M')x' + (N − N')y``, which is, exactly,
   ``(I − γPᵀA)(x − x') − Δγ Pᵀ(Ax' − y)`` for the step-size models and
   ``(I − WᵀA)(x − x') + ΔWᵀ(y − Ax')`` for LISTA-CP (identities checked symbolically). With
   ``X_k ≥ sup ‖x'_k‖`` (over ``‖y‖ ≤ R`` and the ball) this gives
   ``‖v − v'‖ ≤ a_k e_k + Σ_g c_{k,g} ‖Δ_{k,g}‖`` over the layer's parameter tensors ``g``, where
   ``a_k = sup_Θ ‖M_k‖`` and the coefficients are
   ``‖P‖R + min(‖PᵀA‖, ‖P‖‖A‖) X_k`` for ``γ_k``, ``R + ‖A‖X_k`` for ``W_k`` (LISTA-CP),
   ``X_k`` for ``W₂ᵏ`` and ``R`` for ``W₁ᵏ`` (LISTA; ``‖ΔW‖₂ ≤ ‖ΔW‖_F``), and ``√n`` for ``θ_k``.
3. *Suprema over the ball.* Each layer's parameters move by at most ``r``. ``γ ↦ ‖I − γB‖`` is
   convex (the norm of an affine map), so its supremum over ``[γ_c − r, γ_c + r]`` is attained at
   an end point, and the same holds for ``‖[I − γB, γPᵀ]‖``; for matrix parameters the triangle
   inequality gives ``‖W_c‖ + r``, ``‖I − W_cᵀA‖ + r‖A‖``, ``‖[I − W_cᵀA, W_cᵀ]‖ + r√(‖A‖² + 1)``
   (as ``ΔWᵀ[−A, I]``), ``‖[W₂, W₁]_c‖ + r``.
4. *Iterate norms.* ``‖ST_t(v)‖ ≤ ‖v‖`` (t ≥ 0), so ``X_0 = 0`` and
   ``X_{k+1} = min(a_k X_k + n_k R, j_k √(X_k² + R²))`` with ``n_k = sup‖N_k‖``,
   ``j_k = sup‖[M_k, N_k]‖``. ``X_K`` bounds the output norm (used by the covering bound).
5. *Unrolling.* ``e_0 = 0`` and ``e_{k+1} ≤ a_k e_k + d_k`` give ``e_K ≤ Σ_k P_k d_k`` with
   ``P_k = Π_{j>k} a_j``. Collecting the coefficients of each distinct parameter tensor ``p``
   (a shared tensor gets the sum of its per-layer coefficients),
   ``e_K ≤ Σ_p C_p ‖Δ_p‖ ≤ √(Σ_p C_p²) ‖θ − θ'‖`` by Cauchy–Schwarz, so ``K_L = √(Σ_p C_p²)``.

With ``r = 0`` the value bounds ``sup_{‖y‖≤R} ‖∂h_θ(y)/∂θ‖`` at the centre (the limit of small balls).

**Certification.** Every norm is a rigorous float64 upper bound
(:func:`~unfoldtheory.lipschitz.norms.spectral_norm_upper`, plus an explicit bound on the rounding
error of each formed matrix, ``|fl(PᵀA) − PᵀA| ≤ γ_m|P|ᵀ|A|`` entrywise, Higham §3.5), the interval
end points are rounded outward and the recursion is evaluated with upward rounding. After the
computation the recursion is re-checked in exact rational arithmetic from the per-layer norms in
the certificate; only then is the Bound certified.

**Any other module** is traced (:func:`unfoldtheory.tracing.trace`) and takes the DAG form of this recursion
(:mod:`~unfoldtheory.generalization.traced_lipschitz`), or a clear refusal: a ValueError for a module without
parameters or an entry derived from the parameters (naming it), the tracer's ``NotRepresentable`` naming the op.
"""

from __future__ import annotations

import copy
import math
import time
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from unfoldtheory.generalization.running_error import enclose_output, enclose_spec_output
from unfoldtheory.generalization.traced_lipschitz import assemble_traced, traced_layers, verify_traced_recursion
from unfoldtheory.lipschitz.norms import EPS, abs_norm_upper, gamma_bound, spectral_norm_upper, up_add, up_mul
from unfoldtheory.results import Bound
from unfoldtheory.rounding import diff_norm_upper, down, down_div, inflate, norm_lower, norm_upper
from unfoldtheory.spec import NotRepresentable
from unfoldtheory.unfold import ALISTA, LISTA, LISTACP, UnfoldedISTA, UnfoldedModel
from unfoldtheory.unfold.base import to_numpy
from unfoldtheory.validation import as_finite_array, finite_float, positive_int

QUANTITY = "parameter Lipschitz constant K_L (l2): ‖h_θ(y) − h_θ'(y)‖ ≤ K_L‖θ − θ'‖, ‖y‖ ≤ R, θ, θ' in the ball"
SUPPORTED = (ALISTA, UnfoldedISTA, LISTA, LISTACP)


# ---------------------------------------------------------------------------- parameter vectors
def check_supported(model: Any) -> None:
    """Raise ``ValueError("model X is not supported: ...")`` unless the hand-written recursion covers ``model``."""
    if type(model) not in SUPPORTED:
        names = ", ".join(cls.__name__ for cls in SUPPORTED)
        raise ValueError(f"model {type(model).__name__} is not supported: the parameter recursion covers {names} "
                         "(layers x⁺ = ST_θ(M x + N y) with learned step sizes or weights)")


def check_parameters(model: Any) -> None:
    """Raise a ValueError unless ``model`` is a torch module with at least one learned parameter."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch nn.Module, got {type(model).__name__}")
    if model_size(model) == 0:
        raise ValueError(f"module {type(model).__name__} has no learned parameters: there is no parameter Lipschitz "
                         "constant to bound and no parameter class to generalise over")


def flat_parameters(model: nn.Module) -> np.ndarray:
    """The float64 vector of the distinct learned parameters, in ``model.parameters()`` order."""
    parts = [to_numpy(p).ravel() for p in model.parameters()]
    return np.concatenate(parts) if parts else np.zeros(0)


def with_parameters(model: nn.Module, theta: Any) -> nn.Module:
    """A float64 copy of ``model`` whose parameters are the flat vector ``theta``."""
    out = copy.deepcopy(model).double()
    vec = torch.as_tensor(as_finite_array(theta, "parameter vector", shape=(model_size(model),)))
    torch.nn.utils.vector_to_parameters(vec, out.parameters())
    return out


def model_size(model: nn.Module) -> int:
    """Number of distinct learned scalars (the dimension D of the parameter ball; a tied parameter counts once)."""
    return int(sum(p.numel() for p in model.parameters()))


def has_initialisation(model: Any) -> bool:
    """Whether ``model`` is a package model with a data-free classical initialisation (``config``/``from_checkpoint``)."""
    return isinstance(model, UnfoldedModel)


def initial_model(model: nn.Module) -> nn.Module:
    """The model's class at its data-free initialisation with the same ``A``, depth and ``λ``
    (ALISTA keeps its analytic weight, a buffer). A ValueError for a module that has none (not a package model)."""
    if not has_initialisation(model):
        raise ValueError(f"module {type(model).__name__} is not a package model: it has no known data-free "
                         "initialisation (config()/from_checkpoint); use center='zero' or pass a parameter vector "
                         "chosen without the training data")
    config = {k: v for k, v in model.config().items() if k != "class"}
    return type(model).from_checkpoint(config, {k: v.detach().cpu() for k, v in model.state_dict().items()})


def resolve_center(model: nn.Module, center: Any) -> tuple[np.ndarray, str]:
    """The ball's centre as a flat vector and its kind: ``None``/``"model"`` (the model itself),
    ``"init"`` (:func:`initial_model`), ``"zero"`` (the origin, data-free for every module) or a given
    vector (``"given"``)."""
    if center is None or (isinstance(center, str) and center == "model"):
        return flat_parameters(model), "model"
    if isinstance(center, str):
        if center == "zero":
            return np.zeros(model_size(model)), "zero"
        if center != "init":
            raise ValueError(f"center must be None, 'model', 'init', 'zero' or a parameter vector, got {center!r}")
        return flat_parameters(initial_model(model)), "init"
    if isinstance(center, nn.Module):
        if type(center) is not type(model):
            raise ValueError(f"center is a {type(center).__name__}; expected a {type(model).__name__} or a vector")
        center = flat_parameters(center)
    return as_finite_array(center, "center", shape=(model_size(model),)), "given"


def parameter_index(model: nn.Module) -> tuple[dict[str, int], list[str]]:
    """Every qualified name of a learned parameter (tied aliases included) mapped to the index of its distinct
    tensor in ``model.parameters()`` order, and the distinct tensors' names."""
    order = {id(p): i for i, p in enumerate(model.parameters())}
    names = [name for name, _ in model.named_parameters()]
    index = {name: order[id(p)] for name, p in model.named_parameters(remove_duplicate=False)}
    return index, names


def example_for(model: nn.Module, example_input: Any) -> torch.Tensor:
    """A float64 example input of shape (1, m): ``example_input`` (one sample or a batch, first row), or zeros of
    the model's ``m`` for a package model; a ValueError when the input dimension is unknown."""
    if example_input is None:
        m = getattr(model, "m", None)
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"module {type(model).__name__} has no attribute m (its input dimension): "
                             "pass example_input, one input of the module")
        return torch.zeros(1, int(m), dtype=torch.float64)
    arr = as_finite_array(example_input.detach().cpu().numpy() if isinstance(example_input, torch.Tensor) else example_input,
                          "example_input", ndim=(1, 2))
    if arr.size == 0:
        raise ValueError(f"example_input has shape {arr.shape}; expected one input (m,) or a batch (N, m)")
    return torch.as_tensor(arr.reshape(1, -1) if arr.ndim == 1 else arr[:1])


def trace_module(model: nn.Module, example_input: Any) -> Any:
    """The traced float64 model of ``model`` (:func:`unfoldtheory.tracing.trace` with ``exact=True``: no formed
    matrix products, so the spec's arithmetic is the module's own graph); the tracer's ``NotRepresentable``
    (naming the op) propagates."""
    from unfoldtheory.tracing import trace

    return trace(model, example_for(model, example_input), exact=True)


def spec_of(model: nn.Module, example_input: Any = None) -> Any:
    """The :class:`~unfoldtheory.spec.NetworkSpec` of ``model``: ``model.spec()`` for a package model, the trace of
    a float64 copy otherwise (the tracer's ``NotRepresentable`` propagates)."""
    if isinstance(model, UnfoldedModel):
        return model.spec()
    return trace_module(with_parameters(model, flat_parameters(model)), example_input).spec


# ---------------------------------------------------------------------------- rigorous norms
def _up(x: float) -> float:
    return float(np.nextafter(x, math.inf))


def _down(x: float) -> float:
    return float(np.nextafter(x, -math.inf))


def _sqrt_up(x: float) -> float:
    return _up(math.sqrt(x))


class _Overflow(ArithmeticError):
    """A formed matrix or a bound left the float64 range."""


def _finite(M: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(M)):
        raise _Overflow("a matrix formed from the weights overflows float64")
    return M


def _affine_norm(C: np.ndarray, P: np.ndarray, t: float) -> float:
    """An upper bound on ``‖C + tP‖₂`` for exact float matrices ``C``, ``P`` and a float ``t``: the norm of the
    formed matrix plus the rounding of forming it, ``|fl(C + fl(tP)) − (C + tP)| ≤ γ₃(|C| + |t||P|)``."""
    M = _finite(C + t * P)
    err = inflate(gamma_bound(3) * (np.abs(C) + abs(t) * np.abs(P)), 4)  # + the underflow of fl(tP), entrywise
    return up_add(spectral_norm_upper(M), abs_norm_upper(err))


def _product(P: np.ndarray, A: np.ndarray) -> tuple[np.ndarray, float]:
    """``fl(PᵀA)`` and an upper bound on ``‖fl(PᵀA) − PᵀA‖₂`` (``≤ γ_m ‖|P|ᵀ|A|‖``, Higham §3.5)."""
    m = P.shape[0]
    B = _finite(P.T @ A)
    Q = inflate(np.abs(P).T @ np.abs(A), m + 2)  # ≥ |P|ᵀ|A| entrywise (with underflow)
    E = inflate(gamma_bound(m + 2) * Q, 2)  # ≥ γ_m|P|ᵀ|A| + m·2⁻¹⁰⁷⁵ ≥ |fl(PᵀA) − PᵀA|
    return B, abs_norm_upper(_finite(E))


def _step_norms(B: np.ndarray, B_err: float, P: np.ndarray, t: float) -> tuple[float, float]:
    """Upper bounds on ``‖I − tPᵀA‖`` and ``‖[I − tPᵀA, tPᵀ]‖`` from ``B = fl(PᵀA)`` and its error bound."""
    n, m = B.shape[0], P.shape[0]
    extra = up_mul(abs(t), B_err)
    a = up_add(_affine_norm(np.eye(n), -B, t), extra)
    joint = up_add(_affine_norm(np.hstack([np.eye(n), np.zeros((n, m))]), np.hstack([-B, P.T]), t), extra)
    return a, joint


# ---------------------------------------------------------------------------- the recursion
def _layers(c: nn.Module, R: float, r: float) -> list[dict[str, Any]]:
    """Per layer: ``a`` (sup‖M‖), ``inject`` (sup‖N‖), ``joint`` (sup‖[M, N]‖) and ``terms``, a list of
    ``(parameter index, c0, c1)`` meaning a coefficient ``c0 + c1·X_k`` on ``‖Δ_p‖``."""
    A = c.A_numpy()
    normA = spectral_norm_upper(A)
    sqrt_n = _sqrt_up(float(c.n))
    index = {id(p): i for i, p in enumerate(c.parameters())}
    layers: list[dict[str, Any]] = []

    def layer(a: float, inject: float, joint: float, terms: list[tuple[nn.Parameter, float, float]], theta: nn.Parameter) -> None:
        rows = [(index[id(p)], float(c0), float(c1)) for p, c0, c1 in terms] + [(index[id(theta)], sqrt_n, 0.0)]
        layers.append({"a": float(a), "inject": float(inject), "joint": float(joint), "terms": rows})

    if isinstance(c, (ALISTA, UnfoldedISTA)):
        P = to_numpy(c.W) if isinstance(c, ALISTA) else A
        normP = spectral_norm_upper(P)
        B, B_err = _product(P, A)
        c1 = min(up_add(spectral_norm_upper(B), B_err), up_mul(normP, normA))
        for k in range(c.layers):
            g = float(to_numpy(c.step[k]))
            ends = (_down(g - r), _up(g + r))  # contains [γ_c − r, γ_c + r]
            norms = [_step_norms(B, B_err, P, t) for t in ends]
            layer(max(a for a, _ in norms), up_mul(max(abs(t) for t in ends), normP), max(j for _, j in norms),
                  [(c.step[k], up_mul(normP, R), c1)], c.threshold[k])
    elif isinstance(c, LISTACP):
        wide = _sqrt_up(up_add(up_mul(normA, normA), 1.0))
        for k in range(c.layers):
            W = to_numpy(c.W[k])
            B, B_err = _product(W, A)
            a, joint = _step_norms(B, B_err, W, 1.0)
            layer(up_add(a, up_mul(r, normA)), up_add(spectral_norm_upper(W), r), up_add(joint, up_mul(r, wide)),
                  [(c.W[k], R, normA)], c.threshold[k])
    else:  # LISTA
        for k in range(c.layers):
            W1 = to_numpy(c.W1[k])
            inject = up_add(spectral_norm_upper(W1), r)
            if k == 0:
                layer(0.0, inject, inject, [(c.W1[0], R, 0.0)], c.threshold[0])
                continue
            W2 = to_numpy(c.W2[k - 1])
            layer(up_add(spectral_norm_upper(W2), r), inject, up_add(spectral_norm_upper(np.hstack([W2, W1])), r),
                  [(c.W2[k - 1], 0.0, 1.0), (c.W1[k], R, 0.0)], c.threshold[k])
    return layers


def _assemble(layers: list[dict[str, Any]], R: float, D: int) -> tuple[float, list[float], list[float]]:
    """``K_L``, the iterate bounds ``[X_0, …, X_K]`` and the per-tensor coefficients ``C_p``, rounded upward."""
    X = [0.0]
    for L in layers:
        chained = up_add(up_mul(L["a"], X[-1]), up_mul(L["inject"], R))
        joint = up_mul(L["joint"], _sqrt_up(up_add(up_mul(X[-1], X[-1]), up_mul(R, R))))
        X.append(min(chained, joint))
    K = len(layers)
    P = [1.0] * K
    for k in range(K - 2, -1, -1):
        P[k] = up_mul(P[k + 1], layers[k + 1]["a"])
    C = [0.0] * D
    for k, L in enumerate(layers):
        for p, c0, c1 in L["terms"]:
            C[p] = up_add(C[p], up_mul(P[k], up_add(c0, up_mul(c1, X[k]))))
    total = 0.0
    for value in C:
        total = up_add(total, up_mul(value, value))
    return _sqrt_up(total), X, C


def verify_recursion(certificate: dict[str, Any]) -> bool:
    """Re-check a certificate of :func:`parameter_lipschitz` in exact rational arithmetic: the stored
    ``X_{k+1}`` dominate the recursion of step 4, and ``K_L² ≥ Σ_p C_p²`` with ``C_p`` recomputed exactly
    from the per-layer norms (which are rigorous upper bounds by construction)."""
    numbers = [certificate["input_radius"], certificate["K_L"], *certificate["iterate_bounds"]]
    numbers += [v for L in certificate["layers"] for v in (L["a"], L["inject"], L["joint"])]
    numbers += [v for L in certificate["layers"] for _, c0, c1 in L["terms"] for v in (c0, c1)]
    if not all(math.isfinite(float(v)) and float(v) >= 0 for v in numbers):
        return False
    R = Fraction(certificate["input_radius"])
    layers, X = certificate["layers"], [Fraction(x) for x in certificate["iterate_bounds"]]
    if X[0] != 0 or len(X) != len(layers) + 1:
        return False
    for k, L in enumerate(layers):
        a, inject, joint = Fraction(L["a"]), Fraction(L["inject"]), Fraction(L["joint"])
        if not (X[k + 1] >= a * X[k] + inject * R or X[k + 1] ** 2 >= joint ** 2 * (X[k] ** 2 + R ** 2)):
            return False
    P = [Fraction(1)] * len(layers)
    for k in range(len(layers) - 2, -1, -1):
        P[k] = P[k + 1] * Fraction(layers[k + 1]["a"])
    C: dict[int, Fraction] = {}
    for k, L in enumerate(layers):
        for p, c0, c1 in L["terms"]:
            C[p] = C.get(p, Fraction(0)) + P[k] * (Fraction(c0) + Fraction(c1) * X[k])
    return Fraction(certificate["K_L"]) ** 2 >= sum(v * v for v in C.values())


def _radii(input_radius: Any, parameter_radius: Any) -> tuple[float, float]:
    R = finite_float(input_radius, "input_radius", low=0.0, low_open=True)
    r = finite_float(parameter_radius, "parameter_radius", low=0.0)
    return R, r


def parameter_lipschitz(model: nn.Module, input_radius: float, parameter_radius: float = 0.0, center: Any = None, *,
                        example_input: Any = None) -> Bound:
    """A certified upper bound on ``K_L`` over ``‖y‖ ≤ input_radius`` and the ball of radius
    ``parameter_radius`` around ``center``, for any torch module with parameters.

    UnfoldedISTA, ALISTA, LISTA and LISTA-CP take the hand-written layer recursion (module docstring); any
    other module is traced (:func:`unfoldtheory.tracing.trace` on ``example_input``, one input of the module) and
    takes the DAG recursion of :mod:`~unfoldtheory.generalization.traced_lipschitz`. Refusals are ValueErrors
    (no parameters, an entry derived from the parameters, an activation without a proved constant) or the
    tracer's ``NotRepresentable`` (naming the op).

    ``center``: ``None`` or ``"model"`` (the model's own parameters), ``"init"`` (a package model's data-free
    initialisation), ``"zero"`` (the origin) or a flat vector / model of the same class.
    ``details["output_bound"]`` is a certified bound on ``‖h_θ(y)‖`` over the same set; ``certificate`` holds
    the per-layer norms, re-checked exactly (:func:`verify_recursion`, :func:`verify_traced_recursion`).
    """
    start = time.perf_counter()
    check_parameters(model)
    R, r = _radii(input_radius, parameter_radius)
    theta_c, kind = resolve_center(model, center)
    c = with_parameters(model, theta_c)
    distance = diff_norm_upper(flat_parameters(model), theta_c)
    details: dict[str, Any] = {"center": kind, "parameter_radius": r, "input_radius": R, "num_parameters": model_size(model),
                               "model_distance_to_center": distance, "model_in_ball": distance <= r}
    if type(model) not in SUPPORTED:
        return _traced_bound(c, R, r, example_input, details, start)
    try:
        layers = _layers(c, R, r)
    except _Overflow as exc:
        return Bound(math.inf, "upper", QUANTITY, "layer recursion", certified=False, seconds=time.perf_counter() - start,
                     details={**details, "reason": f"{exc}; no finite certified bound", "exact_recheck": False})
    K_L, X, C = _assemble(layers, R, len(list(c.parameters())))
    K_L = K_L if math.isfinite(K_L) else math.inf  # an overflow (inf, or 0·inf = nan) bounds nothing
    certificate = {"input_radius": R, "parameter_radius": r, "layers": layers, "iterate_bounds": X,
                   "tensor_coefficients": C, "K_L": K_L}
    verified = verify_recursion(certificate)
    output_bound = X[-1] if math.isfinite(X[-1]) else math.inf
    details.update({"output_bound": output_bound, "exact_recheck": verified, "growth": [L["a"] for L in layers],
                    "route": "hand-written layer recursion"})
    if not verified:
        details["reason"] = ("the recursion overflowed float64" if not math.isfinite(K_L)
                             else "the exact re-check of the recursion failed")
    return Bound(K_L, "upper", QUANTITY, "layer recursion", certified=verified, certificate=certificate,
                 seconds=time.perf_counter() - start, details=details)


def _traced_bound(c: nn.Module, R: float, r: float, example_input: Any, details: dict[str, Any], start: float) -> Bound:
    """The traced route of :func:`parameter_lipschitz` for the float64 copy ``c`` at the centre."""
    traced = trace_module(c, example_input)
    index, names = parameter_index(c)
    states, readout = traced_layers(traced, index, R, r)
    K_L, X, C, out = assemble_traced(states, readout, R, len(names))
    finite = math.isfinite(K_L) and math.isfinite(out)
    certificate = {"input_radius": R, "parameter_radius": r, "states": states, "readout": readout, "state_bounds": X,
                   "parameter_coefficients": C, "parameters": names, "num_tensors": len(names),
                   "K_L": K_L if finite else math.inf, "output_bound": out if finite else math.inf}
    verified = finite and verify_traced_recursion(certificate)
    details.update({"output_bound": certificate["output_bound"], "exact_recheck": verified, "route": "traced DAG recursion",
                    "parameter_coefficients": dict(zip(names, C, strict=True))})
    if not verified:
        details["reason"] = "the recursion overflowed float64" if not finite else "the exact re-check of the recursion failed"
    return Bound(certificate["K_L"], "upper", QUANTITY, "traced DAG recursion", certified=verified, certificate=certificate,
                 seconds=time.perf_counter() - start, details=details)


# ---------------------------------------------------------------------------- the lower estimate
def _functional(model: nn.Module) -> tuple[Any, list[tuple[str, torch.Size, int]]]:
    names = [(name, p.shape, p.numel()) for name, p in model.named_parameters()]

    def h(theta: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        params, offset = {}, 0
        for name, shape, size in names:
            params[name] = theta[offset:offset + size].reshape(shape)
            offset += size
        return torch.func.functional_call(model, params, (y[None, :],))[0]

    return h, names


def _project(v: torch.Tensor, centre: torch.Tensor, radius: float) -> torch.Tensor:
    d = v - centre
    norm = float(d.norm())
    return v if norm <= radius else centre + d * (radius / norm)


def _jacobian_norm(h: Any, theta: torch.Tensor, y: torch.Tensor, u: torch.Tensor, iters: int) -> tuple[float, torch.Tensor]:
    """Power iteration for the top right singular vector of ``∂h/∂θ`` at ``(θ, y)`` (JVP then VJP)."""
    f = lambda t: h(t, y)  # noqa: E731
    for _ in range(iters):
        w = torch.func.jvp(f, (theta,), (u,))[1]
        _, pullback = torch.func.vjp(f, theta)
        g = pullback(w)[0]
        norm = float(g.norm())
        if norm == 0.0:
            break
        u = g / norm
    return float(torch.func.jvp(f, (theta,), (u,))[1].norm()), u


def parameter_lipschitz_estimate(model: nn.Module, input_radius: float, parameter_radius: float = 0.0, center: Any = None, *,
                                 restarts: int = 6, steps: int = 40, seed: int = 0, progress: bool | None = None,
                                 example_input: Any = None) -> Bound:
    """A lower bound on ``K_L`` (same set as :func:`parameter_lipschitz`) with a witness pair, for any torch
    module with parameters (the search needs only the forward pass; ``example_input``, one input of the module,
    gives the input dimension of a module that is not a package model).

    Search: from random inputs on the sphere ``‖y‖ = R`` (for package models half of them measurement-like,
    ``y ∝ Ax`` for a sparse ``x``) and random points of the ball, alternate power iteration for the top singular
    vector ``u`` of the parameter Jacobian ``∂h_θ(y)/∂θ`` with normalised gradient ascent of
    ``‖(∂h/∂θ) u‖²`` in ``θ`` (projected on the ball) and ``y`` (projected on ``‖y‖ ≤ R``).

    Witness and certification: the pair ``θ₁,₂ = θ* ∓ (s/2)u`` (inside the ball) and ``y*`` is
    re-evaluated with a rigorous running-error bound (``|h_θ(y) − x̃| ≤ e`` entrywise for the exact-arithmetic
    network: :func:`~unfoldtheory.generalization.running_error.enclose_output` for the layer map of a package
    model, :func:`~unfoldtheory.generalization.running_error.enclose_spec_output` for a traced module whose learned
    entries are exact in float64), and ``value`` is ``‖max(|x̃₂ − x̃₁| − e₁ − e₂, 0)‖ / ‖θ₂ − θ₁‖`` rounded down
    (numerator bounded below, denominator above), a lower bound on the exact ratio and so on ``K_L``. It is
    certified when the witness provably lies in the set (``‖θ_i − c‖ ≤ r`` and ``‖y‖ ≤ R`` checked with
    upward-rounded norms). With ``r = 0`` the set holds one parameter and a pair at distance ``s/2`` from the
    centre (``witness_radius``) bounds only the constant of the larger ball: the result is then not certified,
    and says so. A module whose witness cannot be evaluated rigorously (not traceable, a derived entry) gets the
    float ratio of its forward pass, uncertified, with the reason.
    """
    start = time.perf_counter()
    check_parameters(model)
    R, r = _radii(input_radius, parameter_radius)
    restarts = positive_int(restarts, "restarts")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    theta_c, kind = resolve_center(model, center)
    net = with_parameters(model, theta_c)
    builtin = type(model) in SUPPORTED
    m = net.m if builtin else int(example_for(model, example_input).shape[1])
    h, _ = _functional(net)
    centre = torch.as_tensor(theta_c)
    D = centre.numel()
    A = torch.as_tensor(net.A_numpy()) if builtin else None
    gen = torch.Generator().manual_seed(int(seed))
    best = (-1.0, centre.clone(), torch.zeros(m, dtype=torch.float64), torch.zeros(D, dtype=torch.float64))
    bar = tqdm(total=restarts * max(steps, 1), desc="K_L estimate", disable=None if progress is None else not progress)
    for i in range(restarts):
        y = torch.randn(m, generator=gen, dtype=torch.float64)
        if i % 2 and A is not None:
            x = torch.randn(net.n, generator=gen, dtype=torch.float64) * (torch.rand(net.n, generator=gen) < 0.1)
            y = A @ x if float((A @ x).norm()) > 0 else y
        y = y * (R / float(y.norm()))
        d = torch.randn(D, generator=gen, dtype=torch.float64)
        theta = centre + d * (r * float(torch.rand(1, generator=gen)) / float(d.norm())) if i and r > 0 else centre.clone()
        u = torch.randn(D, generator=gen, dtype=torch.float64)
        u = u / u.norm()
        value, u = _jacobian_norm(h, theta, y, u, 20)
        for t in range(steps):
            step = 0.3 * (1.0 - t / max(steps, 1))

            def objective(th: torch.Tensor, yy: torch.Tensor, direction: torch.Tensor = u) -> torch.Tensor:
                return torch.func.jvp(lambda s: h(s, yy), (th,), (direction,))[1].pow(2).sum()

            g_theta, g_y = torch.func.grad(objective, argnums=(0, 1))(theta, y)
            if r > 0 and float(g_theta.norm()) > 0:
                theta = _project(theta + step * r * g_theta / g_theta.norm(), centre, r)
            if float(g_y.norm()) > 0:
                y = _project(y + step * R * g_y / g_y.norm(), torch.zeros_like(y), R)
            new, u = _jacobian_norm(h, theta, y, u, 3)
            if new > value:
                value = new
            if value > best[0]:
                best = (value, theta.clone(), y.clone(), u.clone())
            bar.update(1)
        if value > best[0]:
            best = (value, theta.clone(), y.clone(), u.clone())
    bar.close()
    enclose = enclose_output if builtin else _traced_enclosure(example_input)
    certificate = _witness(model, best, centre, r, R, enclose)
    details = {"center": kind, "parameter_radius": r, "input_radius": R, "restarts": restarts, "steps": steps,
               "jacobian_norm_at_search_point": best[0], "num_parameters": D}
    certified = bool(certificate["inside"] and r > 0 and certificate["evaluated"])
    if not certificate["evaluated"]:
        details["reason"] = certificate["unevaluated_reason"]
    elif r == 0:
        details["reason"] = (f"parameter_radius is 0: the witness pair lies at distance {certificate['witness_radius']:.3g} "
                             "from the centre, so it bounds K_L only for balls of at least that radius")
    elif not certificate["inside"]:
        details["reason"] = "the witness could not be shown to lie in the parameter ball and the input ball"
    return Bound(certificate["lower_bound"], "lower", QUANTITY, "jacobian ascent + pair witness", certified=certified,
                 certificate=certificate, seconds=time.perf_counter() - start, details=details)


def _traced_enclosure(example_input: Any) -> Any:
    """``(module, y) ↦ (x̃, e)`` by the running-error evaluation of the module's trace; a ValueError when the
    trace's learned entries are not exact in float64 (a scale that is not a power of two, or derived)."""

    def enclose(module: nn.Module, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        traced = trace_module(module, example_input)
        for key, prov in traced.provenance.items():
            scale = abs(float(getattr(prov, "scale", 1.0)))
            if prov.kind == "derived" or (prov.kind == "direct" and not (scale > 0 and math.frexp(scale)[0] == 0.5)):
                raise ValueError(f"the traced entry {key} is not exact in float64 ({prov.kind}, scale {scale:g}: "
                                 f"{getattr(prov, 'detail', '')})")
        return enclose_spec_output(traced.spec, y)

    return enclose


def _witness(model: nn.Module, best: tuple[float, torch.Tensor, torch.Tensor, torch.Tensor], centre: torch.Tensor,
             r: float, R: float, enclose: Any) -> dict[str, Any]:
    """The pair witness around the search point: its rigorous ratio bound (running-error evaluation by
    ``enclose``), the float ratio of the same evaluation and, for comparison, the torch forward pass's ratio."""
    _, theta, y, u = best
    theta, y, u = theta.numpy(), y.numpy(), u.numpy()
    c = centre.numpy()
    scale = max(1.0, float(np.linalg.norm(c)))
    s = 1e-4 * scale if r == 0 else min(1e-4 * scale, r)
    d = theta - c
    dist = float(np.linalg.norm(d))
    if r > 0 and dist + s / 2 > r * (1 - 1e-12):
        theta = c + d * max(0.0, r * (1 - 1e-9) - s / 2) / dist
    t1, t2 = theta - 0.5 * s * u, theta + 0.5 * s * u
    norm_y = norm_upper(y)
    if norm_y > R:
        y = y * (R / norm_y) * (1 - 1e-12)
    m1, m2 = with_parameters(model, t1), with_parameters(model, t2)
    gap = float(np.linalg.norm(t2 - t1))
    with torch.no_grad():
        g1 = m1(torch.as_tensor(y[None, :])).numpy()[0]
        g2 = m2(torch.as_tensor(y[None, :])).numpy()[0]
    torch_ratio = float(np.linalg.norm(g2 - g1) / gap) if gap > 0 else 0.0
    why = ""
    try:
        (x1, e1), (x2, e2) = enclose(m1, y), enclose(m2, y)
        low = np.maximum(0.0, down(np.abs(x2 - x1) * (1.0 - EPS) - inflate(e1 + e2, 1)))  # ≤ |h₂ − h₁| entrywise
        gap_up = diff_norm_upper(t2, t1)
        lower = max(0.0, down_div(norm_lower(low), gap_up)) if gap_up > 0 else 0.0
        evaluated, error = True, float(max(e1.max(initial=0.0), e2.max(initial=0.0)))
        ratio = float(np.linalg.norm(x2 - x1) / gap) if gap > 0 else 0.0
    except OverflowError:
        lower, evaluated, error, ratio = 0.0, False, math.inf, torch_ratio
        why = "the running-error evaluation of the witness overflowed float64"
    except (ValueError, NotRepresentable) as exc:
        lower, evaluated, error, ratio = torch_ratio, False, math.inf, torch_ratio
        why = f"no rigorous evaluation of the witness ({exc}): the value is the float ratio of the forward pass"
    radius = max(diff_norm_upper(t1, c), diff_norm_upper(t2, c))
    return {"theta1": t1, "theta2": t2, "y": y, "ratio": ratio, "lower_bound": lower, "torch_ratio": torch_ratio,
            "output_error_bound": error, "witness_radius": radius, "evaluated": evaluated, "unevaluated_reason": why,
            "inside": bool(radius <= r and norm_upper(y) <= R)}
