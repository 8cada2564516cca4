"""A rigorous running-error evaluation of ``h_θ(y)`` for the models of the parameter recursion.

:func:`enclose_output` returns ``x̃`` (float64) and ``e ≥ 0`` with ``|h_θ(y) − x̃| ≤ e`` entrywise, where
``h_θ(y)`` is the exact-arithmetic output of the layer form of
:mod:`~unfoldtheory.generalization.parameter_lipschitz` at the float64 parameters ``θ`` and input ``y``:

* UnfoldedISTA / ALISTA: ``x⁺ = ST_t(x − γPᵀ(Ax − y))`` (``P = A`` or ALISTA's ``W̃``);
* LISTA-CP: ``x⁺ = ST_t(x + Wᵀ(y − Ax))``; LISTA: ``x⁺ = ST_t(W₂x + W₁y)``; ``t = max(θ, 0)``, ``x_0 = 0``.

The evaluation follows the factored form the model computes (it does not form ``I − γPᵀA``: the spec's
float64 weights are themselves rounded, so :mod:`~unfoldtheory.lipschitz` forward-error bounds for a spec
would bound a different map). Every step carries an entrywise error bound (Higham §3.1/§3.5 with underflow):

* matrix–vector product with an uncertain vector, ``|z − ẑ| ≤ e_z``:
  ``|fl(Mẑ) − Mz| ≤ γ_n|M||ẑ| + n·2⁻¹⁰⁷⁵ + |M|e_z``;
* a sum, difference or scalar product ``fl(a ∘ b)``: ``|fl(a ∘ b) − a ∘ b| ≤ u|a ∘ b| ≤ ε|fl(a ∘ b)|`` (+ underflow);
* soft thresholding is 1-Lipschitz in ``v``, and ``fl(|v| − t)`` has relative error ``u`` (it is 0 exactly
  when ``|v| ≤ t``, by monotone rounding), so ``|fl(ST_t(v̂)) − ST_t(v)| ≤ e_v + ε|fl(ST_t(v̂))|``.

Every bound is itself evaluated with :func:`~unfoldtheory.rounding.inflate`, so it is ≥ its exact value.

:func:`enclose_spec_output` does the same for the exact-arithmetic network of a
:class:`~unfoldtheory.spec.NetworkSpec` (a traced module): ``v_k = b_k + Σ_j W_kj z_j`` summed edge by edge,
then ``φ_k``; ReLU, box projections and the identity are exact in float64 and 1-Lipschitz, so they pass the
error bound on ``v`` through; soft thresholding as above. Other activations are refused (ValueError).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from unfoldtheory.activations import BoxProjection, Identity, ReLU, SoftThreshold
from unfoldtheory.lipschitz.norms import EPS, gamma_bound
from unfoldtheory.rounding import inflate
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.unfold import ALISTA, LISTA, LISTACP, UnfoldedISTA
from unfoldtheory.unfold.base import to_numpy


def _matvec(M: np.ndarray, z: np.ndarray, ez: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fl(Mẑ)`` and a bound on ``|fl(Mẑ) − Mz|`` given ``|z − ẑ| ≤ e_z``."""
    n = M.shape[1]
    w = inflate(ez + gamma_bound(n + 2) * np.abs(z), 2)
    return M @ z, inflate(np.abs(M) @ w, n + 2)


def _rounded(value: np.ndarray, err: np.ndarray, ops: int) -> np.ndarray:
    """The error bound after one more rounded operation that produced ``value`` from inputs off by ``err``."""
    return inflate(err + EPS * np.abs(value), ops)


def _soft(v: np.ndarray, ev: np.ndarray, t: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.sign(v) * np.maximum(np.abs(v) - t, 0.0)
    return x, _rounded(x, ev, 2)


def _residual(A: np.ndarray, x: np.ndarray, ex: np.ndarray, y: np.ndarray, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """``sign·(Ax − y)`` and its error bound."""
    a, ea = _matvec(A, x, ex)
    r = a - y if sign > 0 else y - a
    return r, _rounded(r, ea, 2)


def enclose_output(model: nn.Module, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(x̃, e)`` with ``|h_θ(y) − x̃| ≤ e`` entrywise for the model's float64 parameters (module docstring)."""
    y = np.asarray(y, dtype=np.float64)
    A = model.A_numpy()
    n = A.shape[1]
    x, ex = np.zeros(n), np.zeros(n)
    zero_m = np.zeros(A.shape[0])
    for k in range(model.layers):
        t = max(float(to_numpy(model.threshold[k])), 0.0)
        if isinstance(model, (UnfoldedISTA, ALISTA)):
            P = to_numpy(model.W) if isinstance(model, ALISTA) else A
            g = float(to_numpy(model.step[k]))
            r, er = _residual(A, x, ex, y, 1.0)
            s, es = _matvec(P.T, r, er)
            w = g * s
            ew = _rounded(w, abs(g) * es, 3)
            v = x - w
            ev = _rounded(v, ex + ew, 3)
        elif isinstance(model, LISTACP):
            W = to_numpy(model.W[k])
            r, er = _residual(A, x, ex, y, -1.0)
            s, es = _matvec(W.T, r, er)
            v = x + s
            ev = _rounded(v, ex + es, 3)
        elif isinstance(model, LISTA):
            q, eq = _matvec(to_numpy(model.W1[k]), y, zero_m)
            if k == 0:
                v, ev = q, eq
            else:
                p, ep = _matvec(to_numpy(model.W2[k - 1]), x, ex)
                v = p + q
                ev = _rounded(v, ep + eq, 3)
        else:
            raise ValueError(f"model {type(model).__name__} has no running-error evaluation")
        x, ex = _soft(v, ev, t)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(ex))):
        raise OverflowError("the running-error evaluation overflowed float64")
    return x, ex


def _accumulate(terms: list[tuple[np.ndarray, np.ndarray]], base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``base + Σ terms`` (each term a value with its error bound), added one term at a time."""
    v, ev = base.copy(), np.zeros_like(base)
    for q, eq in terms:
        v = v + q
        ev = _rounded(v, ev + eq, 3)
    return v, ev


def enclose_spec_output(spec: NetworkSpec, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(x̃, e)`` with ``|h(y) − x̃| ≤ e`` entrywise for the exact-arithmetic network of ``spec`` (module docstring)."""
    y = np.asarray(y, dtype=np.float64)
    states = [(y, np.zeros_like(y))]
    for k in range(1, spec.num_layers + 1):
        act = spec.activations[k - 1]
        v, ev = _accumulate([_matvec(W, *states[j]) for j, W in sorted(spec.weights[k - 1].items())], spec.biases[k - 1])
        if type(act) is SoftThreshold:
            x, ex = _soft(v, ev, act.theta)
        elif type(act) in (ReLU, Identity, BoxProjection):
            x, ex = act(v), ev
        else:
            raise ValueError(f"state {k} has activation {act.name}, which has no running-error evaluation")
        states.append((x, ex))
    n = spec.output_dim
    out, err = _accumulate([_matvec(C, *states[k]) for k, C in sorted(spec.readout.items())], np.zeros(n))
    if not (np.all(np.isfinite(out)) and np.all(np.isfinite(err))):
        raise OverflowError("the running-error evaluation overflowed float64")
    return out, err
