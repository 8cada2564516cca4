"""The parameter Lipschitz recursion on a traced network: the DAG form of :mod:`.parameter_lipschitz`.

**Setting.** A traced model (:func:`unfoldtheory.tracing.trace`) is a :class:`~unfoldtheory.spec.NetworkSpec`,
``z_0 = y``, ``z_k = φ_k(v_k)``, ``v_k = Σ_j W_kj z_j + b_k``, output ``Σ_k C_k z_k``, with the *provenance* of
every weight, bias and threshold entry: ``"constant"`` (no learned parameter), ``"direct"`` (the entry is
``s·R(p)`` for one learned parameter tensor ``p`` and a fixed rearrangement ``R`` that uses each entry of ``p``
at most once, so ``‖Δentry‖_F ≤ |s|‖Δp‖_F``; a threshold may also be ``max(s·R(p), 0)``) or ``"derived"``
(anything else, which this recursion refuses). Read-outs ``C_k`` may be learned the same way.
The statement is about the traced network: the spec's float64 constants, and learned entries exactly ``s·R(p)``,
evaluated in exact arithmetic.

**Derivation** (``e_k = ‖z_k − z'_k‖`` under ``θ, θ'`` in the ball ``‖θ − c‖ ≤ r`` of the distinct parameters,
``‖y‖ ≤ R``; it generalises the chain of :mod:`.parameter_lipschitz`, whose docstring has the per-step lemmas):

1. Every built-in activation is 1-Lipschitz in ``v`` (slopes in [0, 1], or firmly nonexpansive), and
   ``|ST_t(v) − ST_t'(v)| ≤ |t − t'|`` per coordinate (per group for group soft thresholding;
   ``|max(a, 0) − max(b, 0)| ≤ |a − b|``; ``proofs/parameter_lipschitz.py``). So
   ``e_k ≤ ‖v_k − v'_k‖ + τ_k‖Δp_θ‖`` with ``τ_k = |s|·√d_k`` for a scalar threshold (``√#groups`` for groups),
   ``|s|`` for a per-coordinate one.
2. ``v − v' = Σ_j W_kj(z_j − z'_j) + Σ_j ΔW_kj z'_j + Δb_k``, hence
   ``‖v − v'‖ ≤ Σ_j a_kj e_j + Σ_j |s_kj| X_j ‖Δp_kj‖ + |s_b|‖Δp_b‖`` with ``a_kj ≥ sup_Θ ‖W_kj‖₂``
   (``‖W_c‖ + |s|r``, triangle inequality; ``‖·‖₂ ≤ ‖·‖_F``) and ``X_j ≥ sup ‖z'_j‖``.
3. *State norms.* ``X_0 = R``; ``‖φ(v)‖ ≤ ‖φ(0)‖ + ‖v‖``, so
   ``X_k = ‖φ_k(0)‖ + β_k + min(Σ_j a_kj X_j, J_k √(Σ_j X_j²))`` with ``β_k ≥ sup‖b_k‖`` and
   ``J_k = ‖[W_kj]_c‖ + r·max_p √(Σ_{j: p_j = p} s_j²) ≥ sup ‖[W_kj]_j‖₂``
   (``‖[ΔW_kj]_j‖_F² = Σ_p (Σ_{j: p_j = p} s_j²)‖Δp‖²``).
4. *Collecting.* Each ``e_k ≤ Σ_p c_{k,p}‖Δp‖`` (``c_0 = 0``), with the vectors ``c_k`` from steps 1–2, and the
   output moves by ``≤ Σ_k (sup‖C_k‖ e_k + |s_k| X_k ‖Δp_k‖) ≤ Σ_p C_p‖Δp‖`` (the second term for a learned
   read-out). A parameter used by several layers is one ``p``: its coefficients add. Cauchy–Schwarz over the
   distinct tensors gives ``K_L = √(Σ_p C_p²)``.

**Certification.** Norms are rigorous float64 upper bounds (:func:`~unfoldtheory.lipschitz.norms.spectral_norm_upper`;
exact for matrices with at most one nonzero per row and column, such as ``I``), sums and products are rounded
upward, and :func:`verify_traced_recursion` re-checks steps 3–4 in exact rationals from the stored per-state
numbers before the Bound is certified.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from unfoldtheory.activations import BoxProjection, GroupSoftThreshold, Identity, ReLU, SoftThreshold
from unfoldtheory.lipschitz.norms import EPS, spectral_norm_upper, up_add, up_mul
from unfoldtheory.rounding import norm_upper, up_sqrt

ROLES = ("weight", "bias", "threshold", "bounds", "readout")
KINDS = ("constant", "direct", "derived")
#: Activations with a proved Lipschitz constant 1 in ``v`` (exactly these classes).
ONE_LIPSCHITZ = (SoftThreshold, ReLU, Identity, BoxProjection, GroupSoftThreshold)


def matrix_norm_upper(W: np.ndarray) -> float:
    """A rigorous upper bound on ``‖W‖₂``: exact (``max|W_ij|``) when every row and column has at most one
    nonzero (identity, selections, diagonals), :func:`spectral_norm_upper` otherwise."""
    nz = W != 0
    if not nz.any():
        return 0.0
    if np.all(nz.sum(axis=0) <= 1) and np.all(nz.sum(axis=1) <= 1):
        return float(np.max(np.abs(W)))
    return spectral_norm_upper(W)


def _as_array(t: Any) -> np.ndarray:
    return np.asarray(t.detach().cpu().double().numpy() if hasattr(t, "detach") else t, dtype=np.float64)


def _is_power_of_two(s: float) -> bool:
    return s != 0.0 and math.frexp(abs(s))[0] == 0.5


class _Entries:
    """The provenance of a traced model, looked up by ``(role, k, j)`` and mapped to distinct-parameter indices."""

    def __init__(self, traced: Any, index: dict[str, int]) -> None:
        self.provenance = dict(traced.provenance)
        self.parameters = dict(traced.parameters)
        self.index = index
        for key in self.provenance:
            if not (isinstance(key, tuple) and len(key) == 3 and key[0] in ROLES):
                raise ValueError(f"provenance key {key!r} is not (role, k, j) with role in {ROLES}: "
                                 "the traced recursion covers learned weights, biases, thresholds and read-outs only")

    def _find(self, role: str, k: int, j: Any) -> Any:
        if (role, k, j) in self.provenance:
            return self.provenance[(role, k, j)]
        if role != "weight":
            hits = [v for (rl, kk, _), v in self.provenance.items() if rl == role and kk == k]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise ValueError(f"state {k} has {len(hits)} {role} provenance entries; expected one")
        return None

    def lookup(self, role: str, k: int, j: Any, value: np.ndarray, where: str) -> tuple[int | None, float]:
        """``(parameter index or None, |s|)`` of one entry, or a ValueError naming it (derived, unknown, inconsistent)."""
        prov = self._find(role, k, j)
        if prov is None:
            if np.any(np.asarray(value) != 0):
                raise ValueError(f"{where} has no provenance entry: the tracer did not say whether it is learned")
            return None, 0.0
        kind = getattr(prov, "kind", None)
        if kind not in KINDS:
            raise ValueError(f"{where}: provenance kind {kind!r} is not one of {KINDS}")
        if kind == "constant":
            return None, 0.0
        detail = getattr(prov, "detail", "")
        if kind == "derived":
            raise ValueError(f"{where} is derived from the learned parameters ({detail}); the traced parameter "
                             "recursion needs entries that are a fixed rearrangement of one parameter times a scale")
        names = tuple(getattr(prov, "parameters", ()))
        if len(names) != 1 or names[0] not in self.index:
            raise ValueError(f"{where}: a direct entry must name one learned parameter of the model, got {names} ({detail})")
        scale = float(getattr(prov, "scale", math.nan))
        if not math.isfinite(scale):
            raise ValueError(f"{where}: provenance scale {scale!r} is not finite ({detail})")
        p = _as_array(self.parameters[names[0]])
        # ‖s·R(p)‖_F ≤ |s|‖p‖_F for a rearrangement: a cheap consistency check of the provenance itself
        if norm_upper(value) > up_mul(up_mul(abs(scale), norm_upper(p)), 1.0 + 4.0 * EPS) + 1e-300:
            raise ValueError(f"{where}: ‖entry‖_F exceeds |scale|·‖{names[0]}‖_F, so it is not a rearrangement of "
                             f"that parameter times {scale:g} ({detail})")
        return self.index[names[0]], abs(scale)


def _sup_norm(norm_c: float, scale: float, r: float, exact_scale: bool) -> float:
    """``sup_Θ ‖W‖`` for an entry of norm ``norm_c`` at the centre moving by ``|s|·r`` (one rounding of ``s·p``)."""
    if scale == 0.0:
        return norm_c
    base = norm_c if exact_scale else up_mul(norm_c, 1.0 + EPS)
    return up_add(base, up_mul(scale, r))


def traced_layers(traced: Any, index: dict[str, int], R: float, r: float) -> tuple[list[dict[str, Any]], list[list[float]]]:
    """Per state ``k``: the numbers of steps 1–3 (``edges`` ``[j, a_kj, p, |s|]``, ``bias`` ``β_k`` with its
    ``bias_term`` ``[p, |s|]``, ``threshold_term`` ``[p, τ_k, |s|]``, ``joint`` ``J_k``, ``offset`` ``‖φ_k(0)‖``), and the
    readout ``[[k, sup‖C_k‖, p, |s|]]``. A ValueError names an entry the recursion cannot take."""
    spec = traced.spec
    entries = _Entries(traced, index)
    states: list[dict[str, Any]] = []
    for k in range(1, spec.num_layers + 1):
        act, bias, weights = spec.activations[k - 1], spec.biases[k - 1], spec.weights[k - 1]
        if type(act) not in ONE_LIPSCHITZ:
            raise ValueError(f"state {k} has activation {act.name}; the traced recursion needs a built-in activation "
                             f"({', '.join(c.__name__ for c in ONE_LIPSCHITZ)})")
        edges, tied, exact = [], {}, True
        for j in sorted(weights):
            W = weights[j]
            p, s = entries.lookup("weight", k, j, W, f"W[{k}][{j}]")
            exact_j = p is None or _is_power_of_two(s)
            edges.append([int(j), _sup_norm(matrix_norm_upper(W), s, r, exact_j), p, s])
            exact = exact and exact_j
            if p is not None:
                tied[p] = up_add(tied.get(p, 0.0), up_mul(s, s))
        blocks = [weights[j] for j in sorted(weights)]
        joint_c = matrix_norm_upper(np.hstack(blocks)) if blocks else 0.0
        spread = up_sqrt(max(tied.values())) if tied else 0.0
        joint = up_add(joint_c if exact else up_mul(joint_c, 1.0 + EPS), up_mul(spread, r))
        pb, sb = entries.lookup("bias", k, None, bias, f"b[{k}]")
        beta = _sup_norm(norm_upper(bias), sb, r, pb is None or _is_power_of_two(sb))
        threshold_term = None
        theta = getattr(act, "theta", None)
        if theta is not None:
            pt, st = entries.lookup("threshold", k, None, np.asarray(theta), f"threshold of state {k}")
            if pt is not None:
                copies = len(act.groups) if isinstance(act, GroupSoftThreshold) else (spec.dims[k] if np.ndim(theta) == 0 else 1)
                threshold_term = [pt, up_mul(st, up_sqrt(float(copies))), st]
        elif entries._find("threshold", k, None) is not None:
            raise ValueError(f"state {k} has a learned threshold but activation {act.name} takes none")
        box = entries._find("bounds", k, None)
        if box is not None and getattr(box, "kind", None) != "constant":
            raise ValueError(f"the box bounds of state {k} depend on the learned parameters ({getattr(box, 'detail', '')}); "
                             "the traced recursion takes constant box bounds only")
        offset = norm_upper(act(np.zeros(spec.dims[k])))  # φ(0): exact for the built-ins (0, or a clip of 0)
        states.append({"edges": edges, "bias": beta, "bias_term": None if pb is None else [pb, sb],
                       "threshold_term": threshold_term, "joint": joint, "offset": offset})
    readout = []
    for k, C in sorted(spec.readout.items()):
        p, s = entries.lookup("readout", int(k), None, C, f"C[{k}]")
        readout.append([int(k), _sup_norm(matrix_norm_upper(C), s, r, p is None or _is_power_of_two(s)), p, s])
    return states, readout


def assemble_traced(states: list[dict[str, Any]], readout: list[list[float]], R: float,
                    D: int) -> tuple[float, list[float], list[float], float]:
    """``K_L``, the state bounds ``[X_0 = R, X_1, …]``, the per-tensor coefficients ``C_p`` and the output bound,
    rounded upward (steps 3–4 of the module docstring)."""
    X = [float(R)]
    c: list[list[float]] = [[0.0] * D]
    for S in states:
        chained, squares = 0.0, 0.0
        ck = [0.0] * D
        for j, a, p, s in S["edges"]:
            chained = up_add(chained, up_mul(a, X[j]))
            squares = up_add(squares, up_mul(X[j], X[j]))
            ck = [up_add(v, up_mul(a, w)) for v, w in zip(ck, c[j], strict=True)]
            if p is not None:
                ck[p] = up_add(ck[p], up_mul(s, X[j]))
        if S["bias_term"] is not None:
            p, s = S["bias_term"]
            ck[p] = up_add(ck[p], s)
        if S["threshold_term"] is not None:
            p, t = S["threshold_term"][:2]
            ck[p] = up_add(ck[p], t)
        spread = min(chained, up_mul(S["joint"], up_sqrt(squares)))
        X.append(up_add(up_add(S["offset"], S["bias"]), spread))
        c.append(ck)
    C = [0.0] * D
    out = 0.0
    for k, norm, p, s in readout:
        C = [up_add(v, up_mul(norm, w)) for v, w in zip(C, c[k], strict=True)]
        if p is not None:
            C[p] = up_add(C[p], up_mul(s, X[k]))
        out = up_add(out, up_mul(norm, X[k]))
    total = 0.0
    for v in C:
        total = up_add(total, up_mul(v, v))
    return up_sqrt(total), X, C, out


def verify_traced_recursion(certificate: dict[str, Any]) -> bool:
    """Re-check a traced certificate in exact rationals: the stored state bounds dominate step 3, the output
    bound dominates ``Σ_k ‖C_k‖X_k`` and ``K_L² ≥ Σ_p C_p²`` with ``C_p`` recomputed exactly from the per-state
    numbers (each a rigorous upper bound by construction)."""
    try:
        R, K = Fraction(certificate["input_radius"]), Fraction(certificate["K_L"])
        X = [Fraction(x) for x in certificate["state_bounds"]]
        states, readout, D = certificate["states"], certificate["readout"], int(certificate["num_tensors"])
        if X[0] != R or len(X) != len(states) + 1:
            return False
        c: list[list[Fraction]] = [[Fraction(0)] * D]
        for k, S in enumerate(states, start=1):
            chained, squares, ck = Fraction(0), Fraction(0), [Fraction(0)] * D
            for j, a, p, s in S["edges"]:
                if not 0 <= j < k or min(float(a), float(s)) < 0:
                    return False
                a, s = Fraction(a), Fraction(s)
                chained += a * X[j]
                squares += X[j] * X[j]
                ck = [v + a * w for v, w in zip(ck, c[j], strict=True)]
                if p is not None:
                    ck[p] += s * X[j]
            for term in (S["bias_term"], S["threshold_term"]):
                if term is not None:
                    ck[term[0]] += Fraction(term[1])
            slack = X[k] - Fraction(S["offset"]) - Fraction(S["bias"])
            joint = Fraction(S["joint"])
            if min(float(S["offset"]), float(S["bias"]), float(joint)) < 0:
                return False
            if not (slack >= chained or (slack >= 0 and slack * slack >= joint * joint * squares)):
                return False
            c.append(ck)
        C, out = [Fraction(0)] * D, Fraction(0)
        for k, norm, p, s in readout:
            norm, s = Fraction(norm), Fraction(s)
            if norm < 0 or s < 0:
                return False
            C = [v + norm * w for v, w in zip(C, c[k], strict=True)]
            if p is not None:
                C[p] += s * X[k]
            out += norm * X[k]
        return K >= 0 and K * K >= sum(v * v for v in C) and Fraction(certificate["output_bound"]) >= out
    except (OverflowError, ValueError, TypeError, KeyError, IndexError):  # inf/nan, or a malformed certificate
        return False


__all__ = ["assemble_traced", "matrix_norm_upper", "traced_layers", "verify_traced_recursion"]
