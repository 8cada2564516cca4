"""Oracle: the exact Lipschitz constant of a tiny piecewise-linear spec by enumerating its linear regions.

Independent of :mod:`unfoldtheory.lipschitz.exact` (no shared code): every activation pattern — one piece of
every neuron, built here from the activation's parameters — is checked for a nonempty interior by a float
Chebyshev-centre LP (HiGHS), and ``max ‖J_R‖₂`` is taken over the regions that pass. Patterns are enumerated
layer by layer (all combinations of a layer's pieces), and a prefix whose polyhedron has no interior is not
extended (its extensions are subsets of it).

**Tolerance.** A region counts when its Chebyshev radius (capped at 1, in input units) exceeds
``INTERIOR_TOL`` = 1e-7, and a pre-activation that is constant on the region (weight row exactly zero) lies in
its closed piece up to 1e-12. So the value is exact for nets whose regions with interior have inradius (or
inradius within the unit ball around their centre) above 1e-7; thinner regions may be missed (the oracle then
reports a value ≤ the true one) and the float LP may, within its tolerance, accept a region whose exact
inradius is below it. Exponential: at most ``MAX_PATTERNS`` patterns per layer, for nets of ≤ ~8 neurons.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from unfoldtheory.activations import BoxProjection, Identity, ReLU, SoftThreshold
from unfoldtheory.spec import NetworkSpec

INTERIOR_TOL = 1e-7
MAX_PATTERNS = 4096


@dataclass(frozen=True)
class Regions:
    """``lipschitz``: max ``‖J_R‖₂`` over the regions found; ``count``: their number; ``best``: the pieces
    (per layer, per neuron: (lo, hi, slope, offset)) of a maximising region and ``point`` inside it."""

    lipschitz: float
    count: int
    best: tuple
    point: np.ndarray


def _pieces(act: object, d: int) -> list[list[tuple[float, float, float, float]]]:
    """Per neuron the pieces (lo, hi, slope, offset) with φ(v) = slope·v + offset on [lo, hi]."""
    inf = math.inf
    out = []
    for i in range(d):
        if isinstance(act, Identity):
            out.append([(-inf, inf, 1.0, 0.0)])
        elif isinstance(act, ReLU):
            out.append([(-inf, 0.0, 0.0, 0.0), (0.0, inf, 1.0, 0.0)])
        elif isinstance(act, SoftThreshold):
            t = float(np.broadcast_to(act.theta, (d,))[i])
            out.append([(-inf, inf, 1.0, 0.0)] if t == 0 else
                       [(-inf, -t, 1.0, t), (-t, t, 0.0, 0.0), (t, inf, 1.0, -t)])
        elif isinstance(act, BoxProjection):
            lo, hi = float(np.broadcast_to(act.lower, (d,))[i]), float(np.broadcast_to(act.upper, (d,))[i])
            cand = [(-inf, lo, 0.0, lo), (lo, hi, 1.0, 0.0), (hi, inf, 0.0, hi)]
            out.append([p for p in cand if p[0] < p[1] and (p[2] == 1.0 or math.isfinite(p[3]))])
        else:
            raise ValueError(f"the oracle enumerates ReLU, soft-threshold, box and identity layers, not {act!r}")
    return out


def _interior(rows: list[np.ndarray], rhs: list[float], m: int) -> np.ndarray | None:
    """A point with Chebyshev radius > INTERIOR_TOL in {g·y ≤ h}, or None."""
    G, h = [], []
    for g, c in zip(rows, rhs, strict=True):
        n = float(np.linalg.norm(g))
        if n == 0.0:
            if c < -1e-12:
                return None
            continue
        G.append(np.append(g / n, 1.0))
        h.append(c / n)
    if not G:
        return np.zeros(m)
    obj = np.zeros(m + 1)
    obj[-1] = -1.0
    res = linprog(obj, A_ub=np.array(G), b_ub=np.array(h), bounds=[(None, None)] * m + [(None, 1.0)], method="highs")
    if res.status != 0 or res.x[-1] <= INTERIOR_TOL:
        return None
    return res.x[:m]


def linear_regions(spec: NetworkSpec) -> Regions:
    """Enumerate the regions with interior of a tiny piecewise-linear spec (module docstring)."""
    m = spec.input_dim
    pieces = [_pieces(act, d) for act, d in zip(spec.activations, spec.dims[1:], strict=True)]
    best = {"value": -1.0, "pattern": (), "point": np.zeros(m), "count": 0}

    def extend(k: int, states: list[np.ndarray], jac: list[np.ndarray], rows: list[np.ndarray], rhs: list[float],
               chosen: tuple) -> None:
        if k > spec.num_layers:
            point = _interior(rows, rhs, m)
            if point is None:
                return
            J = sum(c @ jac[j] for j, c in spec.readout.items())
            value = float(np.linalg.norm(J, 2))
            best["count"] += 1
            if value > best["value"]:
                best.update(value=value, pattern=chosen, point=point)
            return
        # the pre-activation of layer k, affine in y: v = P y + q
        P = sum(w @ jac[j] for j, w in spec.weights[k - 1].items())
        q = spec.biases[k - 1] + sum(w @ states[j] for j, w in spec.weights[k - 1].items())
        combos = list(itertools.product(*pieces[k - 1]))
        if len(combos) > MAX_PATTERNS:
            raise ValueError(f"layer {k} has {len(combos)} piece combinations; the oracle is for tiny nets")
        for combo in combos:
            new_rows, new_rhs = list(rows), list(rhs)
            for i, (lo, hi, _, _) in enumerate(combo):
                if math.isfinite(hi):
                    new_rows.append(P[i])
                    new_rhs.append(hi - q[i])
                if math.isfinite(lo):
                    new_rows.append(-P[i])
                    new_rhs.append(q[i] - lo)
            if _interior(new_rows, new_rhs, m) is None:
                continue
            s = np.array([p[2] for p in combo])
            o = np.array([p[3] for p in combo])
            extend(k + 1, [*states, s * q + o], [*jac, s[:, None] * P], new_rows, new_rhs, (*chosen, combo))

    extend(1, [np.zeros(m)], [np.eye(m)], [], [], ())  # state 0 is y = I y + 0
    return Regions(best["value"], best["count"], best["pattern"], best["point"])


__all__ = ["INTERIOR_TOL", "MAX_PATTERNS", "Regions", "linear_regions"]
