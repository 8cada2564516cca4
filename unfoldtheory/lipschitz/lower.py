"""Certified lower bounds on the ℓ2 Lipschitz constant of a :class:`NetworkSpec`, with a witness.

The Jacobian of a soft-thresholding (or ReLU, box) network is piecewise constant in the input, so
plain gradient ascent on ``‖J(y)‖`` has nothing to climb. The search here has four stages, the first
three run on all restarts at once (numpy, batched over restarts):

1. **Screening.** Random inputs at several scales around the spec's natural input scale (the
   thresholds make small inputs map to zero, large ones saturate nothing), scored by the exact
   ``‖J(y)‖₂``; the best ``restarts`` of them are the starts.
2. **Smoothed ascent.** Every piecewise-linear activation is replaced by a smooth surrogate with
   temperature τ (``relu ↦ τ·softplus(·/τ)``, soft-thresholding and box projection written with
   it), and ``½‖J_τ(y) v‖²`` is climbed by normalised gradient steps in ``y`` while ``v`` follows
   the top right singular vector of ``J_τ(y)`` by power iteration (forward tangent, then an
   adjoint sweep that also gives the gradient: second-order chain rule written by hand). τ is
   annealed from 0.3 to 0.001 of the pre-activation scale; every few steps the exact ``‖J(y)‖`` is
   evaluated and the best exact point of each restart is kept.
3. **Pattern polish** (small networks). At the best point, the first-order gain of flipping
   neuron ``i`` to its other slope is ``ā_i p_i Δs_i`` (``p`` the pre-activation tangent along the
   top right singular vector, ``ā`` the adjoint of the top left one). Candidate moves push the
   most promising pre-activations across their nearest kink along their gradient; a move is kept
   only if the exact ``‖J(y)‖`` grows.
4. **Region ascent** (separable piecewise-linear activations; at most 300 000 neurons × input
   dimension, beyond which one LP takes seconds; 10 s at most). A *region* R fixes the piece of
   every neuron; on it the network is affine, ``f(y) = J_R y + c_R`` with ``J_R = Σ_k C_k H_k``
   from the affine maps ``H_k y + h_k`` of the states propagated through the graph, and so is
   every pre-activation, ``G_k y + g_k``: R is an open polyhedron. A continuous piecewise-linear
   network is Lipschitz with constant exactly the maximum of ``‖J_R‖₂`` over its nonempty
   regions, and the stage climbs over them. From a point, the regions R' that differ in one
   neuron, moved to an adjacent nonempty piece, have ``J_R' = J_R + Δs a bᵀ`` (a rank-one change:
   every path crosses the neuron once); they are ranked by a lower bound on ``‖J_R'‖`` that is
   exact to first order (the polish's gain), the best get their exact norm, and those that beat
   ``‖J_R‖`` are tried, best first (above 50 000 neurons × input dimension, where an LP costs
   more than the rest of a step, those the rays reach go first): across a facet of R that random
   rays from the point reach, at a point just beyond it; otherwise at the Chebyshev centre of R'
   (an LP for HiGHS: maximise the margin of every pre-activation inside its piece, in a box of
   100 × the start's scale) or, when R' is empty, of its layers up to the moved neuron only. A
   point is taken when the exact ``‖J‖`` of its own region beats the current one. By default
   (``patience``) it climbs from the restarts' best points, best first, until ``patience`` climbs
   in a row find no new best; with ``patience=None``, passes of effort 1, 4, 16 (exact norms and
   LPs per step) climb from the best ⌈restarts / effort⌉ restarts while time allows.

**Certification, separate from the search.** ``‖J(y)‖`` built from per-layer Clarke elements is
only guaranteed to be a Jacobian where the network is differentiable, so the returned value is
the ratio ``‖f(y₂) − f(y₁)‖ / ‖y₂ − y₁‖`` of a pair, re-evaluated from the spec alone in
float64: ``y₁`` the best point and ``y₂ = y₁ + h v`` with ``v`` the top right singular vector of
``J(y₁)`` and ``h`` the largest step (halved from half the distance to the nearest kink) for
which every pre-activation of ``y₁``, ``y₂`` and the midpoint lies strictly inside the same
piece of its activation. For piecewise-linear activations the network is then affine on the
segment (by induction over the layers: an affine pre-activation whose ends lie in one interval
stays in it), so the ratio equals ``‖J(y₁) v‖ = ‖J(y₁)‖``. The ratio of any pair is a valid
lower bound whatever the pattern; ``details["same_region"]`` says whether the segment check passed.
The reported value is a rigorous lower bound on the ratio in exact arithmetic on the float64 data
(:func:`unfoldtheory.forward_error.certified_ratio`; :func:`check_witness` recomputes exactly this number): the
float64 output difference less a running-error bound of both evaluations (Higham §3.5: ``γ_n`` times the
products ``|W||ẑ|`` inside the pre-activations, where cancellation happens, propagated through the layers),
over an upper bound on ``‖y₂ − y₁‖``. When that bound swamps the in-region segment, longer segments along the
same direction are tried (``details["segment"]``). A spec with a user-defined activation (no rounding bound), an
overflowing evaluation, or a difference below float64's resolution gives ``certified=False`` with
``details["reason"]``.
:func:`unfoldtheory.lipschitz.local_lower.local_lower_bound` runs stages 1–4 inside an input region (projected steps
and moves, a ``_Domain`` for stage 4, segment caps in the certification).
The points of stage 4 are proposals only, certified like any other: each lies strictly inside
its region (the region is recomputed from the point, and a point on a kink is refused; the LP's
centre has a positive margin in every pre-activation), so the segment above has positive length.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from unfoldtheory.activations import Activation, BoxProjection, Identity, ReLU, SoftThreshold
from unfoldtheory.forward_error import CertifiedRatio, certified_ratio
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec

QUANTITY = "Lipschitz constant of the input-output map (l2)"
METHOD = "witness-search"
_FULL_JACOBIAN_FLOATS = 4_000_000  # batch·width·m above which norms come from power iteration
_POWER_ITERS = 60
PATIENCE = 1  # region climbs in a row without a new best after which lower_bound's region ascent stops
_LENGTHEN = 12  # segments up to 4^12 times longer are tried when rounding swamps the in-region one


# ---------------------------------------------------------------------------- activations
def _kinks(act: Activation, d: int) -> np.ndarray | None:
    """The kinks of a separable piecewise-linear activation, shape (d, q) (±inf: none), or None."""
    if isinstance(act, Identity):
        return np.zeros((d, 0))
    if isinstance(act, ReLU):
        return np.zeros((d, 1))
    if isinstance(act, SoftThreshold):
        th = np.broadcast_to(act.theta, (d,)).astype(float)
        th = np.where(th == 0, np.inf, th)  # ST_0 is the identity: no kink
        return np.stack([np.where(np.isinf(th), -np.inf, -th), th], axis=1)
    if isinstance(act, BoxProjection):
        return np.stack([np.broadcast_to(act.lower, (d,)), np.broadcast_to(act.upper, (d,))], axis=1).astype(float)
    return None


def _regions(kinks: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Index of the open piece of each pre-activation (…, d); -1 on a kink."""
    region = np.sum(kinks < v[..., None], axis=-1)
    return np.where(np.any(kinks == v[..., None], axis=-1), -1, region)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 0.5 * (1.0 + np.tanh(0.5 * x))


def _smooth_relu(x: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """τ·softplus(x/τ), its derivative and second derivative (x may hold ±inf offsets)."""
    with np.errstate(invalid="ignore", over="ignore"):
        u = x / tau
        s = _sigmoid(u)
        val = np.where(np.isfinite(u), tau * _softplus(np.where(np.isfinite(u), u, 0.0)), np.maximum(x, 0.0))
    return val, s, s * (1.0 - s) / tau


def _smoothed(act: Activation, v: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smooth surrogate φ_τ of a piecewise-linear activation: value, slope, slope derivative."""
    if isinstance(act, Identity):
        return v.copy(), np.ones_like(v), np.zeros_like(v)
    if isinstance(act, ReLU):
        return _smooth_relu(v, tau)
    if isinstance(act, SoftThreshold):
        th = np.broadcast_to(act.theta, v.shape[-1:])
        a, sa, ca = _smooth_relu(v - th, tau)
        b, sb, cb = _smooth_relu(-v - th, tau)
        val, s, c = a - b, sa + sb, ca - cb
        exact = th == 0  # ST_0 is the identity
        return np.where(exact, v, val), np.where(exact, 1.0, s), np.where(exact, 0.0, c)
    if isinstance(act, BoxProjection):
        d = v.shape[-1]
        lo, hi = np.broadcast_to(act.lower, (d,)), np.broadcast_to(act.upper, (d,))
        a, sa, ca = _smooth_relu(v - np.where(np.isfinite(lo), lo, 0.0), tau)
        b, sb, cb = _smooth_relu(v - np.where(np.isfinite(hi), hi, 0.0), tau)
        lo_f, hi_f = np.isfinite(lo), np.isfinite(hi)
        val = np.where(lo_f, lo + a, v) - np.where(hi_f, b, 0.0)
        s = np.where(lo_f, sa, 1.0) - np.where(hi_f, sb, 0.0)
        c = np.where(lo_f, ca, 0.0) - np.where(hi_f, cb, 0.0)
        return val, s, c
    raise TypeError(f"no smooth surrogate for activation {act.name}")


# ---------------------------------------------------------------------------- batched linear algebra
class _Net:
    """Batched forward, tangent and adjoint sweeps over a spec's graph (inputs (B, m))."""

    def __init__(self, spec: NetworkSpec) -> None:
        self.spec = spec
        self.separable = all(a.separable for a in spec.activations)
        self.kinks = [_kinks(a, d) for a, d in zip(spec.activations, spec.dims[1:], strict=True)]
        self.smoothable = all(k is not None for k in self.kinks)
        self.piecewise_linear = self.smoothable
        # readers[j] = [(k, W_kj)]: who reads state j (for the adjoint sweeps)
        self.readers: list[list[tuple[int, np.ndarray]]] = [[] for _ in spec.dims]
        for k, ws in enumerate(spec.weights, start=1):
            for j, w in ws.items():
                self.readers[j].append((k, w))

    def forward(self, Y: np.ndarray, tau: float | None = None) -> tuple[list[np.ndarray], list, list]:
        """Pre-activations, slopes and slope derivatives (exact slopes when tau is None)."""
        states, pres, slopes, curv = [Y], [], [], []
        for ws, b, act in zip(self.spec.weights, self.spec.biases, self.spec.activations, strict=True):
            v = np.broadcast_to(b, (Y.shape[0], b.shape[0])).copy()
            for j, w in ws.items():
                v += states[j] @ w.T
            pres.append(v)
            if tau is None:
                states.append(act(v))
                slopes.append(act.slopes(v))
                curv.append(None)
            else:
                z, s, c = _smoothed(act, v, tau)
                states.append(z)
                slopes.append(s)
                curv.append(c)
        return pres, slopes, curv

    def tangent(self, slopes: list[np.ndarray], V: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Pre-activation tangents p_k along V and the output tangent J V."""
        t, ps = [V], []
        for k, (ws, s) in enumerate(zip(self.spec.weights, slopes, strict=True), start=1):
            # a state with no incoming edge (a constant: its bias only) has a zero tangent
            p = sum((t[j] @ w.T for j, w in ws.items()), np.zeros((V.shape[0], self.spec.dims[k])))
            ps.append(p)
            t.append(s * p)
        out = sum(t[k] @ c.T for k, c in self.spec.readout.items())
        return ps, out

    def adjoint(self, slopes: list[np.ndarray], U: np.ndarray,
                ps: list[np.ndarray] | None = None, curv: list | None = None
                ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray | None]:
        """Adjoint sweep from output weights U: activation-output adjoints ā_k, Jᵀ U and, given the
        tangents ``ps`` and slope derivatives ``curv``, the gradient of ⟨U, J_τ(y) v⟩ in y."""
        N = self.spec.num_layers
        abar = [np.zeros((U.shape[0], d)) for d in self.spec.dims]
        zbar = [np.zeros((U.shape[0], d)) for d in self.spec.dims] if curv is not None else None
        for k, c in self.spec.readout.items():
            abar[k] += U @ c
        for k in range(N, 0, -1):
            s = slopes[k - 1]
            pbar = s * abar[k]
            vbar = None
            if zbar is not None:
                vbar = abar[k] * ps[k - 1] * curv[k - 1] + s * zbar[k]
            for j, w in self.spec.weights[k - 1].items():
                abar[j] += pbar @ w
                if vbar is not None:
                    zbar[j] += vbar @ w
        return abar, abar[0], (zbar[0] if zbar is not None else None)

    def exact_norms(self, Y: np.ndarray, V0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """‖J(y)‖₂ per row of Y (Clarke elements at kinks) and the top right singular vectors."""
        B, m = Y.shape
        if not self.separable:
            vals, vecs = np.empty(B), np.empty((B, m))
            for b in range(B):
                _, s, vt = np.linalg.svd(self.spec.jacobian(Y[b]))
                vals[b], vecs[b] = s[0], vt[0]
            return vals, vecs
        _, slopes, _ = self.forward(Y)
        if B * max(self.spec.dims) * m <= _FULL_JACOBIAN_FLOATS:
            J = self.full_jacobians(slopes)
            _, s, vt = np.linalg.svd(J)
            return s[:, 0], vt[:, 0, :]
        rng = np.random.default_rng(0)
        V = rng.standard_normal((B, m)) if V0 is None else V0.copy()
        V /= np.linalg.norm(V, axis=1, keepdims=True) + 1e-300
        sig = np.zeros(B)
        for _ in range(_POWER_ITERS):
            _, out = self.tangent(slopes, V)
            _, back, _ = self.adjoint(slopes, out)
            nrm = np.linalg.norm(back, axis=1, keepdims=True)
            sig = np.sqrt(nrm[:, 0])
            V = np.where(nrm > 0, back / np.maximum(nrm, 1e-300), V)
        _, out = self.tangent(slopes, V)
        return np.maximum(sig, np.linalg.norm(out, axis=1)), V

    def full_jacobians(self, slopes: list[np.ndarray]) -> np.ndarray:
        B, m = slopes[0].shape[0], self.spec.input_dim
        jac: list[Any] = [None]
        for k, (ws, s) in enumerate(zip(self.spec.weights, slopes, strict=True), start=1):
            pre = np.zeros((B, self.spec.dims[k], m))
            for j, w in ws.items():
                pre += w if j == 0 else w @ jac[j]
            jac.append(s[:, :, None] * pre)
        out = np.zeros((B, self.spec.output_dim, m))
        for k, c in self.spec.readout.items():
            out += c if k == 0 else c @ jac[k]
        return out


# ---------------------------------------------------------------------------- search
def _input_scale(spec: NetworkSpec, net: _Net) -> float:
    """An input norm at which pre-activations are of the size of the kinks and biases (within 1e±150, so that the
    search's products stay finite; weights of any scale get their inputs, issue 12)."""
    offsets = [np.abs(b) for b in spec.biases]
    offsets += [np.abs(k[np.isfinite(k)]) for k in net.kinks if k is not None]
    c = max((float(o.max()) for o in offsets if o.size), default=0.0)
    gains = [float(np.linalg.norm(ws[0], 2)) for ws in spec.weights if 0 in ws]
    g = max(gains, default=0.0)
    with np.errstate(all="ignore"):
        r = (c if c > 0 else 1.0) / (g if g > 0 else 1.0)
    return float(np.clip(r, 1e-150, 1e150)) if math.isfinite(r) and r > 0 else 1.0


def _random_inputs(rng: np.random.Generator, count: int, m: int, scales: np.ndarray) -> np.ndarray:
    G = rng.standard_normal((count, m))
    G /= np.linalg.norm(G, axis=1, keepdims=True) + 1e-300
    return G * scales[:, None]


def _ascent(net: _Net, Y: np.ndarray, scales: np.ndarray, steps: int, record: Callable[[np.ndarray], None],
            deadline: float, radius: float, project: Callable[[np.ndarray], np.ndarray] | None = None,
            pre_scale: float | None = None) -> None:
    """Smoothed, annealed ascent of ½‖J_τ(y) v‖² with v tracking the top right singular vector.

    Globally the steps are relative to ``max(scale, ‖y‖)`` and τ to the pre-activations' size. Inside a region
    (``project``: the map onto it) every step is projected, steps are relative to ``scales`` alone (the region's
    size) and τ to ``pre_scale`` (how much the pre-activations vary over the region).
    """
    _, V = net.exact_norms(Y)
    if pre_scale is None:
        pres, _, _ = net.forward(Y)
        pre_scale = float(np.sqrt(np.mean(np.concatenate([p.ravel() ** 2 for p in pres]))))
    pre_scale = max(pre_scale, 1e-12)
    taus = pre_scale * np.geomspace(0.3, 1e-3, steps)
    lrs = np.geomspace(0.05, 0.002, steps)
    for it in range(steps):
        if time.perf_counter() > deadline:
            break
        _, slopes, curv = net.forward(Y, float(taus[it]))
        ps, out = net.tangent(slopes, V)
        _, back, grad = net.adjoint(slopes, out, ps, curv)
        nrm = np.linalg.norm(back, axis=1, keepdims=True)
        V = np.where(nrm > 0, back / np.maximum(nrm, 1e-300), V)  # power step on J_τᵀJ_τ
        gn = np.linalg.norm(grad, axis=1, keepdims=True)
        step = lrs[it] * (scales if project is not None else np.maximum(scales, np.linalg.norm(Y, axis=1)))[:, None]
        with np.errstate(all="ignore"):
            Ynew = Y + np.where(gn > 0, step * grad / np.maximum(gn, 1e-300), 0.0)
        if project is not None:
            Ynew = np.where(np.all(np.isfinite(Ynew), axis=1)[:, None], Ynew, Y)
            Ynew = project(Ynew)
        ok = np.all(np.isfinite(Ynew), axis=1) & (np.linalg.norm(Ynew, axis=1) <= radius)
        Y = np.where(ok[:, None], Ynew, Y)  # a restart whose gradient overflowed stays put
        if it % 5 == 4 or it == steps - 1:
            record(Y)


_POLISH_CANDIDATES = 96  # kink-crossing moves per polish round, by first-order gain
_POLISH_SCREEN_ITERS = 3  # power iterations (warm-started at the current top singular vector) that rank the moves
_POLISH_EXACT = 8  # moves of the best screened estimates whose exact ‖J‖ is computed


def _kink_moves(net: _Net, y: np.ndarray, pres: list[np.ndarray], slopes: list[np.ndarray], u: np.ndarray, v: np.ndarray,
                max_move: float) -> tuple[np.ndarray, np.ndarray]:
    """The moves of :func:`_polish`: for every neuron and kink whose crossing raises ``‖J‖`` to first order
    (``āᵢ pᵢ Δsᵢ > 0``, ``ā`` the adjoint of ``u``, ``p`` the tangent of ``v``), the least-norm steps along the
    neuron's pre-activation gradient that put it a relative 1e-7, 1e-3 and 0.1 beyond the kink (at most
    ``max_move`` long). Returns the gains and the moved points, in the order layer, neuron, kink, overshoot."""
    spec = net.spec
    ps, _ = net.tangent(slopes, v[None, :])
    abar, _, _ = net.adjoint(slopes, u[None, :])
    overs = np.array([1e-7, 1e-3, 0.1])
    gains, points = [], []
    jac: list[Any] = [np.eye(spec.input_dim)]  # d state_j / dy
    for k, ws in enumerate(spec.weights, start=1):
        P = sum((w @ jac[j] for j, w in ws.items()), np.zeros((spec.dims[k], spec.input_dim)))
        s = slopes[k - 1][0]
        jac.append(s[:, None] * P)
        kinks = net.kinks[k - 1]
        if kinks.shape[1] == 0:
            continue
        vk = pres[k - 1][0]
        gg = np.einsum("ij,ij->i", P, P)
        with np.errstate(invalid="ignore", over="ignore"):
            valid = np.isfinite(kinks) & (kinks != vk[:, None]) & (gg[:, None] >= 1e-150)
            direction = np.where(kinks > vk[:, None], 1.0, -1.0)
            scale = 1.0 + np.abs(np.where(valid, kinks, 0.0))
            probe = np.where(valid, kinks + direction * 1e-9 * scale, 0.0)  # just beyond each kink
            new_slope = spec.activations[k - 1].slopes(probe.T).T  # (d, q): a separable activation, per neuron
            gain = (abar[k][0] * ps[k - 1][0])[:, None] * (new_slope - s[:, None])  # d‖J‖/d(slope) × change
            target = np.where(valid, kinks, 0.0)[:, :, None] + direction[:, :, None] * overs * scale[:, :, None]
            shift = (target - vk[:, None, None]) / np.where(gg > 0, gg, 1.0)[:, None, None]  # move = shift · P_i
            length = np.abs(shift) * np.sqrt(gg)[:, None, None]
        keep = (valid & (gain > 0))[:, :, None] & (length <= max_move)  # no jumps to huge inputs (rounding)
        idx = np.nonzero(keep)
        if idx[0].size:
            gains.append(gain[idx[0], idx[1]])
            points.append(y + shift[idx][:, None] * P[idx[0]])
    if not gains:
        return np.zeros(0), np.zeros((0, spec.input_dim))
    return np.concatenate(gains), np.concatenate(points)


def _screened_best(net: _Net, Y: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, float]:
    """The point of ``Y`` with the largest ``‖J‖`` among the ``_POLISH_EXACT`` with the largest estimate ``‖J w‖``
    (``w``: a few power iterations from ``v``, a lower bound on ``‖J‖`` of each point); its exact ``‖J‖``."""
    if len(Y) > _POLISH_EXACT:
        _, slopes, _ = net.forward(Y)
        W = np.broadcast_to(v, Y.shape).copy()
        for _ in range(_POLISH_SCREEN_ITERS):
            _, out = net.tangent(slopes, W)
            _, back, _ = net.adjoint(slopes, out)
            nrm = np.linalg.norm(back, axis=1, keepdims=True)
            W = np.where(nrm > 0, back / np.maximum(nrm, 1e-300), W)
        _, out = net.tangent(slopes, W)
        est = np.nan_to_num(np.linalg.norm(out, axis=1), nan=-1.0)
        Y = Y[np.argsort(-est, kind="stable")[:_POLISH_EXACT]]
    vals, _ = net.exact_norms(Y)
    b = int(np.argmax(np.nan_to_num(vals, nan=-1.0)))
    return Y[b], float(vals[b])


def _polish(net: _Net, y: np.ndarray, value: float, deadline: float, radius: float,
            rounds: int = 30, project: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, float]:
    """Greedy kink-crossing moves toward slope patterns with a larger ‖J‖ (:func:`_kink_moves`, the
    ``_POLISH_CANDIDATES`` of largest first-order gain, ranked by :func:`_screened_best`; exact acceptance); moves of
    length at most ``radius``, mapped by ``project`` (onto a region) when given."""
    if not (net.piecewise_linear and net.separable):
        return y, value
    for _ in range(rounds):
        if time.perf_counter() > deadline:
            break
        pres, slopes, _ = net.forward(y[None, :])
        u_, _, vt = np.linalg.svd(net.full_jacobians(slopes)[0])
        gains, Yc = _kink_moves(net, y, pres, slopes, u_[:, 0], vt[0], radius)
        if not gains.size:
            break
        Yc = Yc[np.argsort(-gains, kind="stable")[:_POLISH_CANDIDATES]]
        if project is not None:
            Yc = project(Yc)
        best, val = _screened_best(net, Yc, vt[0])
        if val <= value * (1 + 1e-12):
            break
        y, value = best, val
    return y, value


# ---------------------------------------------------------------------------- region ascent
_REGION_MAX_SIZE = 300_000  # neurons × input_dim above which stage 4 is skipped (an LP alone would take seconds)
_REGION_SECONDS = 10.0  # wall-clock cap on stage 4 (within the caller's time budget)
_REGION_RAYS = 128  # random rays per step (at least 4·input_dim)
_REGION_EXACT = 48  # neighbouring regions per step whose exact ‖J_R'‖ is computed (× effort)
_REGION_LPS = 4  # Chebyshev-centre LPs per step for neighbours the rays did not reach (× effort)
_REGION_MAX_EFFORT = 16  # effort grows 1, 4, 16 over passes through the starts while time remains
_REGION_CHEAP_FIRST = 50_000  # neurons × input_dim above which moves the rays found go before LPs
_REGION_BOX = 100.0  # the LPs search the box |y_i| ≤ 100 × the start's scale
_REGION_CUTS = 4  # cuts of a non-box domain per LP search before it gives up (each one costs a full LP)


def _pieces(act: Activation, kinks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bounds ``lo``, ``hi``, slope and offset of the pieces of a separable piecewise-linear activation.

    Each is (d, q + 1): on piece r the activation is ``s·v + o`` for ``lo < v < hi``; an empty
    piece (``lo >= hi``: beyond an infinite kink, or between equal kinks) has ``s = o = 0``.
    """
    d = kinks.shape[0]
    lo = np.concatenate([np.full((d, 1), -np.inf), kinks], axis=1)
    hi = np.concatenate([kinks, np.full((d, 1), np.inf)], axis=1)
    nonempty = lo < hi
    with np.errstate(invalid="ignore"):  # an interior point of every nonempty piece
        mid = np.where(np.isfinite(lo) & np.isfinite(hi), 0.5 * (lo + hi),
                       np.where(np.isfinite(lo), lo + 1.0 + np.abs(lo),
                                np.where(np.isfinite(hi), hi - 1.0 - np.abs(hi), 0.0)))
    mid = np.where(nonempty, mid, 0.0)
    slope = act.slopes(mid.T).T
    offset = act(mid.T).T - slope * mid
    return lo, hi, np.where(nonempty, slope, 0.0), np.where(nonempty, offset, 0.0)


class _Bounds(NamedTuple):
    """A region as ``{y : A y < b}`` with unit rows, one per finite kink next to a neuron's piece,
    and the move across each row: ``layer`` (0-based), ``neuron``, the ``piece`` beyond, its
    change ``ds`` of slope and whether that piece is ``nonempty``."""

    A: np.ndarray
    b: np.ndarray
    layer: np.ndarray
    neuron: np.ndarray
    piece: np.ndarray
    ds: np.ndarray
    nonempty: np.ndarray


class _Regions:
    """The regions of a separable piecewise-linear network. A region R is a piece index for every
    neuron; on R the network is affine, ``f(y) = J_R y + c_R``, and so is every pre-activation,
    ``v_k = G_k y + g_k``, so R is an open polyhedron."""

    def __init__(self, net: _Net) -> None:
        self.net = net
        self.pieces = [_pieces(a, k) for a, k in zip(net.spec.activations, net.kinks, strict=True)]

    def pattern(self, y: np.ndarray) -> list[np.ndarray] | None:
        """The region of ``y`` (piece indices per layer); None on a kink."""
        pres, _, _ = self.net.forward(y[None, :])
        pattern = [_regions(k, p[0]) for k, p in zip(self.net.kinks, pres, strict=True)]
        return None if any(np.any(r < 0) for r in pattern) else pattern

    def affine(self, pattern: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        """``[G_k | g_k]`` (d_k, m + 1) of every pre-activation, and ``J_R``, on a region."""
        spec, m = self.net.spec, self.net.spec.input_dim
        maps = [np.eye(m, m + 1)]  # [H_k | h_k]: state k is H_k y + h_k on the region
        pre = []
        for k, (ws, b, (_, _, s, o), r) in enumerate(
                zip(spec.weights, spec.biases, self.pieces, pattern, strict=True), start=1):
            a = sum((w @ maps[j] for j, w in ws.items()), np.zeros((spec.dims[k], m + 1)))
            a[:, m] += b
            pre.append(a)
            idx = np.arange(r.size)
            h = s[idx, r][:, None] * a
            h[:, m] += o[idx, r]
            maps.append(h)
        J = sum(c @ maps[k][:, :m] for k, c in spec.readout.items())
        return pre, J

    def bounds(self, pattern: list[np.ndarray], pre: list[np.ndarray], layers: int | None = None) -> _Bounds | None:
        """The bounds of a region from layers 1..``layers`` (all by default); None when a constant
        pre-activation lies outside its piece (the region is empty)."""
        m = self.net.spec.input_dim
        parts = [(np.zeros((0, m)), *(np.zeros(0, dtype=t) for t in (float, int, int, int, float, bool)))]
        for k, (a, (lo, hi, s, _), r) in enumerate(zip(pre[:layers], self.pieces[:layers], pattern[:layers], strict=True)):
            idx = np.arange(r.size)
            G, g = a[:, :m], a[:, m]
            n = np.linalg.norm(G, axis=1)
            const = n <= 1e-12 * max(float(n.max(initial=0.0)), 1e-300)
            if np.any(const & ~((lo[idx, r] < g) & (g < hi[idx, r]))):
                return None
            for side, bound, step in ((1.0, hi[idx, r], 1), (-1.0, lo[idx, r], -1)):
                i = np.flatnonzero(~const & np.isfinite(bound))
                beyond = r[i] + step  # a finite bound has a piece beyond it
                parts.append((side * G[i] / n[i, None], side * (bound[i] - g[i]) / n[i], np.full(i.size, k), i,
                              beyond, s[i, beyond] - s[i, r[i]], lo[i, beyond] < hi[i, beyond]))
        return _Bounds(*(np.concatenate(c) for c in zip(*parts, strict=True)))

    def scores(self, pattern: list[np.ndarray], pre: list[np.ndarray], J: np.ndarray, F: _Bounds
               ) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        """A lower bound on ``‖J_R'‖`` for the move across every row of ``F``, and a function giving
        the exact ``‖J_R'‖`` of chosen rows.

        Moving neuron i of layer k changes its slope by Δs, and ``J_R' = J_R + Δs a bᵀ`` exactly (a
        path through the neuron crosses it once), with ``a = ∂f/∂z_{k,i}`` and ``b = ∂v_{k,i}/∂y``.
        The bound is ``‖[u, â⊥]ᵀ J_R' [v, b̂⊥]‖`` (u, v the top singular pair of J_R): exact to first
        order (``σ + Δs·āᵢpᵢ``, the gain of :func:`_polish`), it also sees a large ``Δs a bᵀ``
        orthogonal to the top singular pair.
        """
        m, out = self.net.spec.input_dim, J.shape[0]
        U, sv, Vt = np.linalg.svd(J)
        u, sigma, v = U[:, 0], sv[0], Vt[0]
        slopes = [s[np.arange(r.size), r] for (_, _, s, _), r in zip(self.pieces, pattern, strict=True)]
        adj, _, _ = self.net.adjoint([np.broadcast_to(s, (out, s.size)) for s in slopes], np.eye(out))
        bound = np.zeros(F.A.shape[0])
        for k in np.unique(F.layer):
            rows = np.flatnonzero(F.layer == k)
            ds = F.ds[rows]
            A, G = adj[k + 1][:, F.neuron[rows]], pre[k][F.neuron[rows], :m]
            alpha, beta = u @ A, G @ v
            na = np.sqrt(np.maximum(np.sum(A * A, axis=0) - alpha ** 2, 0.0))
            nb = np.sqrt(np.maximum(np.sum(G * G, axis=1) - beta ** 2, 0.0))
            with np.errstate(invalid="ignore", divide="ignore"):
                # â⊥ᵀ J b̂⊥ with a⊥ = a − αu, b⊥ = b − βv (uᵀJ = σvᵀ, J v = σu)
                cross = np.where(na * nb > 0, (np.sum((A.T @ J) * G, axis=1) - sigma * alpha * beta) / (na * nb), 0.0)
            p11, p12, p21, p22 = sigma + ds * alpha * beta, ds * alpha * nb, ds * na * beta, cross + ds * na * nb
            t = p11 ** 2 + p12 ** 2 + p21 ** 2 + p22 ** 2
            det = p11 * p22 - p12 * p21
            bound[rows] = np.sqrt(0.5 * (t + np.sqrt(np.maximum(t * t - 4.0 * det * det, 0.0))))

        def exact(rows: np.ndarray) -> np.ndarray:
            a = np.array([adj[F.layer[j] + 1][:, F.neuron[j]] for j in rows]).reshape(len(rows), out)
            b = np.array([pre[F.layer[j]][F.neuron[j], :m] for j in rows]).reshape(len(rows), m)
            return np.linalg.norm(J[None] + F.ds[rows, None, None] * a[:, :, None] * b[:, None, :], 2, axis=(1, 2))

        return bound, exact


class _Domain(NamedTuple):
    """Where region ascent may put its points: a box ``lo ≤ y ≤ hi`` for the LPs, a membership test, and for a
    convex domain that is not a box a ``cut``: for a point outside, a half-space ``a·y ≤ c`` (unit ``a``) that holds
    on the domain and not at the point (None inside), and ``reach(y, p)``: the largest ``s ≤ 1`` with
    ``y + s(p − y)`` in the domain, for ``y`` inside."""

    lo: np.ndarray
    hi: np.ndarray
    inside: Callable[[np.ndarray], bool]
    cut: Callable[[np.ndarray], tuple[np.ndarray, float] | None] | None = None
    reach: Callable[[np.ndarray, np.ndarray], float] | None = None


def _global_domain(m: int, scale: float) -> _Domain:
    """The global search's box ``|y_i| ≤ _REGION_BOX·scale``."""
    half = _REGION_BOX * scale
    return _Domain(np.full(m, -half), np.full(m, half), lambda p: bool(np.abs(p).max() <= half))


def _interior(F: _Bounds, y: np.ndarray, scale: float, deadline: float, domain: _Domain) -> np.ndarray | None:
    """A point strictly inside ``{A y < b}`` and the domain, or None: the Chebyshev centre in the domain's box (and
    cuts), maximising t with every row's margin at least t (t ≤ scale).

    Constraint generation: the LP starts with the rows nearest to ``y`` and adds the rows its
    solution violates (and the domain's cut at it) until there are none; an infeasible relaxation (t ≤ 0) proves
    the full LP infeasible. None also when the LPs reach the deadline or need more than ``_REGION_CUTS`` cuts. A
    solution ``p`` inside the polyhedron but outside the domain is first tried along the chord from ``y`` (inside the
    domain): the chord meets the
    polyhedron in ``s ∈ (s₀, 1]`` and the domain in ``[0, s₁]``; if ``s₀ < s₁`` the middle of the overlap is returned
    (one LP instead of the many cuts that would approximate a ball).
    """
    from scipy.optimize import linprog

    rows, m = F.A.shape
    A, b = np.hstack([F.A, np.ones((rows, 1))]), F.b / scale
    cost = np.zeros(m + 1)
    cost[m] = -1.0
    batch = 2 * (m + 1)
    active = np.zeros(rows, dtype=bool)
    active[np.argsort(b - F.A @ (y / scale))[:4 * batch]] = True
    box = [(float(lo), float(hi)) for lo, hi in zip(domain.lo / scale, domain.hi / scale, strict=True)] + [(None, 1.0)]
    cuts_A, cuts_b = np.zeros((0, m + 1)), np.zeros(0)
    while (left := deadline - time.perf_counter()) > 0:
        res = linprog(cost, A_ub=np.vstack([A[active], cuts_A]), b_ub=np.concatenate([b[active], cuts_b]), bounds=box,
                      method="highs", options={"time_limit": left})
        if res.status != 0 or not res.x[m] > 0:
            return None
        excess = np.where(active, 0.0, A @ res.x - b)
        worst = np.argsort(-excess)[:batch]
        worst = worst[excess[worst] > 1e-9 * max(1.0, float(np.abs(res.x).max()))]
        point = scale * res.x[:m]
        cut = None if domain.cut is None else domain.cut(point)
        if worst.size == 0 and cut is None:
            return point
        if worst.size == 0 and domain.reach is not None:
            rate, slack = F.A @ (point - y), F.b - F.A @ y
            with np.errstate(divide="ignore", invalid="ignore"):
                s0 = float(np.max(np.where(rate < 0, slack / rate, -np.inf), initial=-np.inf))
            s1 = domain.reach(y, point)
            if max(s0, 0.0) < s1:
                return y + 0.5 * (max(s0, 0.0) + s1) * (point - y)
        active[worst] = True
        if cut is not None:
            if cuts_b.size >= _REGION_CUTS:
                return None
            cuts_A = np.vstack([cuts_A, np.append(cut[0], 1.0)])
            cuts_b = np.append(cuts_b, cut[1] / scale)
    return None


def _shoot(F: _Bounds, y: np.ndarray, D: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rays ``y + τ d`` (columns of D) from a point of ``{A y < b}`` to its boundary: the first row
    hit and the distances of the first and second hits (inf: none)."""
    n = D.shape[1]
    if F.A.shape[0] == 0:
        return np.zeros(n, dtype=int), np.full(n, np.inf), np.full(n, np.inf)
    # row j is hit at τ = slack_j / rate_j where its rate is positive: the first hit maximises rate/slack
    inverse = (D.T @ F.A.T) / np.maximum(F.b - F.A @ y, 1e-300)
    rays = np.arange(n)
    first = np.argmax(inverse, axis=1)
    r1 = inverse[rays, first]
    inverse[rays, first] = 0.0
    r2 = inverse.max(axis=1)
    t1, t2 = np.full(n, np.inf), np.full(n, np.inf)
    with np.errstate(over="ignore"):
        np.divide(1.0, r1, out=t1, where=r1 > 0)
        np.divide(1.0, r2, out=t2, where=r2 > 0)
    return first, t1, t2


def _recentre(F: _Bounds, y: np.ndarray, D: np.ndarray, reach: float) -> np.ndarray:
    """The mean of the midpoints of the chords ``y + τ d`` (|τ| ≤ reach) of ``{A y < b}``: a point
    of the (convex) region further from its boundary."""
    _, fwd, _ = _shoot(F, y, D)
    _, bwd, _ = _shoot(F, y, -D)
    return y + D @ (0.5 * (np.minimum(fwd, reach) - np.minimum(bwd, reach))) / D.shape[1]


def _region_ascent(regions: _Regions, y: np.ndarray, deadline: float, scale: float, rng: np.random.Generator,
                   stats: dict[str, Any], effort: int = 1, domain: _Domain | None = None) -> tuple[np.ndarray, float]:
    """Hill climb over neighbouring regions from ``y``; returns the final point and its ``‖J_R‖``.

    Each step ranks the moves across the bounds of the current region R by
    :meth:`_Regions.scores` and computes the exact ``‖J_R'‖`` of the best ``_REGION_EXACT·effort``
    of them and of those across the facets that rays from the current point reach (random
    directions and the normals of the best-ranked bounds). The moves that beat ``‖J_R‖`` are tried
    in decreasing order of ``‖J_R'‖`` (on networks above ``_REGION_CHEAP_FIRST`` neurons × input
    dimension, those across the facets the rays reached first): across such a facet, at a point
    just beyond it; else (at most ``_REGION_LPS·effort`` of them per step) at the Chebyshev centre
    of R' found by LP or, when R' is empty, at that of the bounds of its layers up to the moved
    neuron's (then in whatever region that point lies). Only points of ``domain`` are taken (default: the box
    ``|y_i| ≤ _REGION_BOX·scale``; the LPs search it). The first point whose own region beats
    ``‖J_R‖`` is taken, moved towards the middle of its region, and the climb goes on until no
    move improves or the deadline.
    """
    m, layers = regions.net.spec.input_dim, regions.net.spec.num_layers
    size = m * sum(regions.net.spec.dims[1:])
    domain = _global_domain(m, scale) if domain is None else domain
    pattern = regions.pattern(y)
    if pattern is None:
        return y, -math.inf
    pre, J = regions.affine(pattern)
    value = float(np.linalg.norm(J, 2))
    n_rays, n_exact = max(_REGION_RAYS, 4 * m), _REGION_EXACT * effort
    while time.perf_counter() < deadline:
        F = regions.bounds(pattern, pre)
        if F is None or F.A.shape[0] == 0:
            break
        bound, exact = regions.scores(pattern, pre, J, F)
        movable = F.nonempty & (F.ds != 0)
        ranked = np.flatnonzero(movable)[np.argsort(-bound[movable])]
        D = rng.standard_normal((m, n_rays))
        D = np.hstack([D / np.linalg.norm(D, axis=0), F.A[ranked[:n_exact]].T])
        first, t1, t2 = _shoot(F, y, D)
        hit = np.flatnonzero(np.isfinite(t1))
        hit = hit[np.argsort(t1[hit] - t2[hit])]
        facets, at = np.unique(first[hit], return_index=True)  # each facet reached, by its widest-margin ray
        ray = hit[at]
        beyond = t1[ray] + 1e-3 * np.minimum(t2[ray] - t1[ray], t1[ray])
        cross = dict(zip(facets.tolist(), (y[:, None] + D[:, ray] * beyond).T, strict=True))
        rows = np.union1d(ranked[:n_exact], ranked[np.isin(ranked, facets)][:n_exact]).astype(int)
        vals = exact(rows)
        better = [int(rows[j]) for j in np.argsort(-vals) if vals[j] > value * (1 + 1e-9)]
        lps_left = _REGION_LPS * effort
        moved = False
        if size > _REGION_CHEAP_FIRST:  # an LP costs more than the rest of a step
            better = [j for j in better if j in cross] + [j for j in better if j not in cross]
        for j in better:
            if time.perf_counter() > deadline:
                break
            point, relaxed = cross.get(j), False
            if point is None:
                if lps_left == 0:
                    continue
                lps_left -= 1
                cand = [r.copy() for r in pattern]
                cand[F.layer[j]][F.neuron[j]] = F.piece[j]
                cand_pre, _ = regions.affine(cand)
                for upto in dict.fromkeys((layers, int(F.layer[j]) + 1)):
                    cand_bounds = regions.bounds(cand, cand_pre, upto)
                    if cand_bounds is not None:
                        stats["lps"] += 1
                        point, relaxed = _interior(cand_bounds, y, scale, deadline, domain), upto < layers
                        if point is not None:
                            break
            if point is None or not domain.inside(point) or (new := regions.pattern(point)) is None:
                continue
            new_pre, new_J = regions.affine(new)
            new_value = float(np.linalg.norm(new_J, 2))
            if new_value > value * (1 + 1e-9):
                y, pattern, pre, J, value = point, new, new_pre, new_J, new_value
                stats["moves"] += 1
                stats["lp_moves"] += j not in cross
                stats["relaxed_moves"] += relaxed
                moved = True
                break
        if not moved:
            break
        F = regions.bounds(pattern, pre)
        if F is not None:
            centred = _recentre(F, y, D[:, :n_rays], scale)
            same = regions.pattern(centred)
            if domain.inside(centred) and same is not None and all(
                    np.array_equal(a, b) for a, b in zip(same, pattern, strict=True)):
                y = centred
    return y, value


def _region_stage(net: _Net, best_Y: np.ndarray, best_vals: np.ndarray, deadline: float, radius: float,
                  r0: float, rng: np.random.Generator, domain: _Domain | None = None, scale: float | None = None,
                  patience: int | None = None) -> dict[str, Any]:
    """Stage 4: region ascent from the restarts' best points, best first, in passes of effort 1, 4,
    16 (the pass of effort e climbs from the best ⌈restarts / e⌉ points) while time allows. With ``patience``, one
    pass of effort 1 only, which stops after ``patience`` climbs in a row that did not raise the best value (the
    later passes and climbs gained under 0.1 % at several times the cost, ``benchmarks/lower_bound_budget.py``).
    Given a ``domain`` (a search inside an input region), its points stay there and every start has the ``scale``.

    Updates ``best_Y`` and ``best_vals`` in place; returns what it did, or why it was skipped.
    """
    spec, m = net.spec, net.spec.input_dim
    before = float(best_vals.max())
    if not (net.separable and net.piecewise_linear):
        return {"skipped": "an activation is not separable piecewise-linear", "value_before": before}
    size = sum(spec.dims[1:]) * m
    if size > _REGION_MAX_SIZE:
        return {"skipped": f"too large: neurons x input_dim = {size} > {_REGION_MAX_SIZE}", "value_before": before}
    t0 = time.perf_counter()
    if t0 >= deadline:
        return {"skipped": "the time budget is spent", "value_before": before}
    stop = min(deadline, t0 + _REGION_SECONDS)
    regions = _Regions(net)
    stats: dict[str, Any] = {"moves": 0, "lp_moves": 0, "relaxed_moves": 0, "lps": 0, "climbs": 0}
    passes = []
    # each start's scale (at least that of the spec's inputs); the LP box stays in the ball of `radius`
    scales = np.clip(np.abs(best_Y).max(axis=1), r0 / math.sqrt(m), radius / (_REGION_BOX * math.sqrt(m))) \
        if scale is None else np.full(len(best_Y), scale)
    effort = 1
    while True:
        stale, top = 0, float(best_vals.max())
        for i in np.argsort(-best_vals)[:-(-len(best_vals) // effort)]:
            if time.perf_counter() >= stop or (patience is not None and stale >= patience):
                break
            y, val = _region_ascent(regions, best_Y[i], stop, float(scales[i]), rng, stats, effort, domain)
            stats["climbs"] += 1
            if val > best_vals[i]:
                best_vals[i], best_Y[i] = val, y
            stale, top = (0, val) if val > top * (1 + 1e-9) else (stale + 1, top)
        passes.append({"effort": effort, "value": float(best_vals.max()), "seconds": time.perf_counter() - t0})
        if time.perf_counter() >= stop or effort >= _REGION_MAX_EFFORT or patience is not None:
            break
        effort *= 4
    return {**stats, "passes": passes, "value_before": before, "value_after": float(best_vals.max()),
            "seconds": time.perf_counter() - t0, "skipped": None}


# ---------------------------------------------------------------------------- certification
Limits = Callable[[np.ndarray, np.ndarray], "tuple[float, float]"]


def _certify(net: _Net, y0: np.ndarray, limits: Limits | None = None, direction: np.ndarray | None = None) -> dict[str, Any]:
    """The pair witness (y1, y1 + h v) on the line y0 + t v and its certified ratio, recomputed from the spec alone.

    The segment is made as long as the linear region of y0 allows (up to ‖y0‖ on each side), so that
    the rounding bound of the difference quotient (~γ·|W||z|/h) is small; when it still swamps the
    ratio, segments up to 4^12 times longer are tried and the best certified one is kept.
    ``v`` is the top right singular vector of ``J(y0)`` unless a unit ``direction`` is given; ``limits(y0, v)``
    (for a search inside a region) caps the steps ``(backward, forward)`` along ``v``, lengthened ones included.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        return _segment(net, y0, limits, direction)


def _segment(net: _Net, y0: np.ndarray, limits: Limits | None, direction: np.ndarray | None) -> dict[str, Any]:
    spec = net.spec
    J = spec.jacobian(y0)
    if direction is not None:
        v = direction
    elif np.all(np.isfinite(J)):
        _, _, vt = np.linalg.svd(J)
        v = vt[0]
    else:  # the Jacobian overflows float64: any direction (the certificate decides what the pair is worth)
        v = np.eye(spec.input_dim)[0]
    scale = max(float(np.linalg.norm(y0)), 1e-8)
    lim_a, lim_b = (scale, scale) if limits is None else limits(y0, v)
    same = False
    a, b = min(1e-6 * scale, lim_a), min(1e-6 * scale, lim_b)  # fallback: a short segment
    if net.piecewise_linear:
        pres = spec.preactivations(y0)
        slopes = [act.slopes(p) for act, p in zip(spec.activations, pres, strict=True)]
        ps, _ = net.tangent(slopes, v[None, :])
        t_fwd = t_bwd = math.inf
        for kinks, p, dv in zip(net.kinks, pres, ps, strict=True):
            with np.errstate(all="ignore"):
                t = (kinks - p[0][:, None]) / dv[0][:, None]
            fwd, bwd = t[np.isfinite(t) & (t >= 0)], -t[np.isfinite(t) & (t <= 0)]
            t_fwd = min(t_fwd, float(fwd.min())) if fwd.size else t_fwd
            t_bwd = min(t_bwd, float(bwd.min())) if bwd.size else t_bwd
        b = min(lim_b, 0.45 * t_fwd) if t_fwd > 0 else b
        a = min(lim_a, 0.45 * t_bwd) if t_bwd > 0 else a
        for _ in range(60):
            ya, yb = y0 - a * v, y0 + b * v
            regions = [[_regions(k, p[0]) for k, p in zip(net.kinks, spec.preactivations(x), strict=True)]
                       for x in (y0, ya, yb, 0.5 * (ya + yb))]
            if all(np.all(r >= 0) for r in regions[0]) and all(
                    np.array_equal(r0, r1) for other in regions[1:] for r0, r1 in zip(regions[0], other, strict=True)):
                same = True
                break
            a, b = 0.5 * a, 0.5 * b
    y1, y2 = y0 - a * v, y0 + b * v
    h = 1e-6 * scale
    while np.array_equal(y2, y1):
        if limits is not None:
            raise ValueError("the segment allowed around the point is below the float64 resolution of its coordinates")
        y1, y2, h = y0, y0 + h * v, 2 * h  # below the resolution of y0: lengthen the step
    jnorm = float(np.linalg.norm(spec.jacobian(y1), 2))
    best, segment = certified_ratio(spec, y1, y2), "in-region"
    if math.isfinite(best.error) and (best.reason is not None or best.value < best.float_ratio * (1 - 1e-9)):
        # rounding matters on this segment: any pair's ratio is a lower bound, so try longer ones along v
        half = 0.5 * float(np.linalg.norm(y2 - y1))
        steps = (a, b)
        for i in range(1, _LENGTHEN + 1):
            t = half * 4.0 ** i
            if limits is not None:
                if (min(t, lim_a), min(t, lim_b)) == steps:
                    break  # the region allows no longer segment
                steps = (min(t, lim_a), min(t, lim_b))
            ya, yb = (y0 - t * v, y0 + t * v) if limits is None else (y0 - steps[0] * v, y0 + steps[1] * v)
            if not (np.all(np.isfinite(ya)) and np.all(np.isfinite(yb))):
                break
            if np.array_equal(ya, yb):  # t·v below the resolution of y0
                continue
            cand = certified_ratio(spec, ya, yb)
            if (cand.reason is not None and best.reason is None) or cand.value <= best.value:
                continue
            best, segment, y1, y2, same = cand, f"lengthened x{4 ** i}", ya, yb, False
    return {"y1": y1, "y2": y2, "ratio": best.value, "jacobian_norm_at_y1": jnorm, "h": float(np.linalg.norm(y2 - y1)),
            "same_region": same, "search_point": y0, "witness": best, "segment": segment}


def check_witness(spec: NetworkSpec, certificate: dict[str, Any]) -> float:
    """Re-evaluate a lower-bound certificate: a rigorous lower bound on ``‖f(y₂) − f(y₁)‖ / ‖y₂ − y₁‖`` with ``f`` in
    exact arithmetic on the spec's float64 data (:func:`unfoldtheory.forward_error.certified_ratio`: the float64
    difference less a running-error bound of both evaluations, over an upper bound on the gap), 0 when nothing can
    be certified (a user-defined activation, overflow, or a difference within its rounding bound)."""
    return certified_ratio(spec, np.asarray(certificate["y1"], dtype=np.float64),
                           np.asarray(certificate["y2"], dtype=np.float64)).value


def lower_bound(spec: NetworkSpec, restarts: int = 16, seed: int = 0, steps: int = 200,
                time_budget: float | None = None, patience: int | None = PATIENCE) -> Bound:
    """A certified lower bound on the ℓ2 Lipschitz constant of ``spec``, with a pair witness.

    See the module docstring for the search (screening, smoothed annealed ascent, pattern polish,
    region ascent) and the certification. The returned ``value`` is a rigorous lower bound on the exact ratio
    ``‖f(y₂) − f(y₁)‖ / ‖y₂ − y₁‖`` of the witness pair (valid for any pair); it equals ``‖J(y₁)‖₂`` up to its
    rounding bound when ``details["same_region"]`` is True.

    Parameters
    ----------
    spec:
        The network.
    restarts:
        Number of starting points climbed in parallel (≥ 1).
    seed:
        Seed of the random starts.
    steps:
        Ascent steps per restart (≥ 0; 0 keeps only screening, polish and region ascent).
    time_budget:
        Seconds after which the search stops early and certifies its best point (None: no limit;
        the region ascent stops after 10 s in any case).
    patience:
        The region ascent (stage 4) stops after this many climbs in a row that found no new best (≥ 1;
        default :data:`PATIENCE`). ``None`` climbs from every restart, then again from the best ones
        with 4 and 16 times the effort, up to the 10 s cap: the default before issue 14, several times
        the cost of the exact SDP at (20, 40, 6) for values within 1 % (``benchmarks/lower_bound_budget.py``).

    Returns
    -------
    Bound
        ``kind="lower"``, ``certified=True`` unless ``details["reason"]`` says why not (then the value is the rigorous
        bound, possibly 0, or without a rounding bound the float64 ratio as an estimate); ``certificate`` =
        ``{"y1", "y2", "ratio", "jacobian_norm_at_y1"}``; ``reason`` (and ``details["reason"]``) says why when not
        certified; ``details`` = restarts, patience, best exact ‖J‖ per restart, steps,
        ``same_region``, ``segment``, ``witness_check`` (float ratio, bounds on the difference, its rounding and the
        gap), ``rounding_bound`` (on the ratio), ``region_ascent`` (moves made, of them ``lp_moves`` to LP points and
        ``relaxed_moves`` from the relaxed LP, LPs solved, climbs, passes, ‖J‖ before and after,
        seconds; or the reason it was ``skipped``), seconds.
    """
    t0 = time.perf_counter()
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"lower_bound takes a NetworkSpec, got {type(spec).__name__}")
    for name, val, low in (("restarts", restarts, 1), ("steps", steps, 0)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < low:
            raise ValueError(f"{name} must be an int >= {low}, got {val!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if time_budget is not None and not (isinstance(time_budget, (int, float)) and time_budget > 0):
        raise ValueError(f"time_budget must be a positive number of seconds or None, got {time_budget!r}")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, (int, np.integer))
                                 or patience < 1):
        raise ValueError(f"patience must be an int >= 1 or None, got {patience!r}")
    deadline = math.inf if time_budget is None else t0 + float(time_budget)
    net = _Net(spec)
    rng = np.random.default_rng(seed)
    m = spec.input_dim
    r0 = _input_scale(spec, net)

    # the search only proposes points (certified below from the spec alone): overflow at extreme weight
    # scales may make a proposal useless, never the certificate wrong
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        # 1. screening: 8 random inputs per restart, log-spread scales 0.1 … 30 × r0
        n_screen = 8 * restarts
        scales = r0 * np.geomspace(0.1, 30.0, n_screen)
        rng.shuffle(scales)
        Ys = _random_inputs(rng, n_screen, m, scales)
        vals, _ = net.exact_norms(Ys)
        order = np.argsort(-vals)[:restarts]
        Y, sc = Ys[order], scales[order]
        best_vals, best_Y = vals[order].copy(), Y.copy()

        def record(Ynew: np.ndarray) -> None:
            nv, _ = net.exact_norms(Ynew)
            better = nv > best_vals
            best_vals[better] = nv[better]
            best_Y[better] = Ynew[better]

        # 2. smoothed annealed ascent, all restarts at once, inside a ball of radius 100·30·r0 (beyond it
        # the float64 difference quotients of the certificate would lose their digits)
        radius = 3000.0 * r0
        if net.smoothable and net.separable and steps > 0:
            _ascent(net, Y, sc, int(steps), record, deadline, radius)

        # 3. pattern polish of the best few restarts
        top = np.argsort(-best_vals)[: min(3, restarts)]
        if net.separable and net.piecewise_linear and m * max(spec.dims) * max(spec.dims) <= 2_000_000:
            for i in top:
                y, val = _polish(net, best_Y[i].copy(), float(best_vals[i]), deadline, radius)
                if val > best_vals[i]:
                    best_vals[i], best_Y[i] = val, y

        # 4. region ascent from the restarts' best points (separable piecewise-linear nets of moderate size)
        region = _region_stage(net, best_Y, best_vals, deadline, radius, r0, rng, patience=patience)
    i_best = int(np.argmax(np.nan_to_num(best_vals, nan=-1.0)))

    # certification: from the spec alone, with a rigorous forward error bound
    cert = _certify(net, best_Y[i_best])
    witness: CertifiedRatio = cert["witness"]
    certified = witness.certified and check_witness(spec, cert) == cert["ratio"]
    # without a rounding bound (user activation, overflow) the float ratio is reported, uncertified
    value = witness.value if math.isfinite(witness.error) or not math.isfinite(witness.float_ratio) else witness.float_ratio
    certificate = {k: cert[k] for k in ("y1", "y2", "ratio", "jacobian_norm_at_y1")}
    why = "" if certified else (witness.reason or "re-evaluating the witness pair did not reproduce its certified ratio")
    reason = {"reason": why} if why else {}
    seconds = time.perf_counter() - t0
    return Bound(
        value=value, kind="lower", quantity=QUANTITY, method=METHOD, certified=bool(certified),
        certificate=certificate, seconds=seconds,
        details={"restarts": int(restarts), "patience": None if patience is None else int(patience),
                 "best_per_restart": best_vals.tolist(), "steps": int(steps),
                 "seed": int(seed), "input_scale": r0, "h": cert["h"], "same_region": cert["same_region"],
                 "segment": cert["segment"], "witness_check": witness.summary(), **reason,
                 "rounding_bound": witness.error / witness.gap if witness.gap > 0 else math.inf,
                 "search_best_jacobian_norm": float(best_vals[i_best]), "region_ascent": region,
                 "seconds": seconds},
        reason=why,
    )


__all__ = ["check_witness", "lower_bound"]
