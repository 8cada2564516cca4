"""The exact global ℓ2 Lipschitz constant of a piecewise-linear spec, by branch and bound over activation patterns.

**Theorem** (``proofs/exact_lipschitz.py``). A spec whose activations are the built-in ReLU, soft-thresholding,
box projection or identity computes a continuous piecewise-affine ``f``; its ℓ2 Lipschitz constant equals
``max ‖J_R‖₂`` over the linear regions ``R`` (activation patterns, :mod:`.polyhedra`) that have an interior.

**Search.** A node fixes the phases of the first neurons, layer by layer (topological order) and within a layer in
the order of :func:`branching_order` (larger influence on the output first: any order within a layer keeps the
polyhedra); its inputs form a polyhedron (:mod:`.polyhedra`) and its children (the next neuron's phases) cover it,
so the leaves cover ℝᵐ: no bounded domain is assumed. Best first on a certified upper bound of ``‖J_R‖`` over every
region of the node's subtree:

* **node intervals** (:mod:`.exact_box`). When the float LPs find the node's polyhedron ``P`` bounded, a rigorous
  box around it (LP multipliers re-checked with outward rounding against rows whose float error is bounded) and
  interval/CROWN propagation over the box, intersected layer by layer with the fixed neurons' phase intervals, give
  bounds on every pre-activation that hold on ``P``. A free neuron whose bounds lie in one phase is *forced*: that
  child is ``P`` itself (no row, no LP, no emptiness proof); phases that meet the bounds in at most a point are
  not branched on (their children are empty or lie in a kept neighbour's); bounds that cross prove ``P`` empty.
  Children inherit their parent's bounds;
* **node bound.** The spec restricted to the node (:func:`~.restriction.restrict`: a fixed neuron gets the
  interval of its phase, every neuron the node's bounds where known, a free one otherwise ``(−∞, ∞)``) is
  certified by vertex enumeration (:func:`~.agnostic.activation_agnostic`) up to ``VERTEX_NEURONS`` unstable
  neurons, else by LipSDP-Neuron (:func:`~.sdp.sdp_bound`, structured interior-point method, multipliers
  re-checked) when its matrix has at most ``NODE_SDP_ROWS`` rows, with the product bound as the fallback (the root,
  with all neurons free: ``upper_bound(spec, "best")`` within a quarter of the budget, ≤ 30 s); a slope-based
  certificate bounds the difference quotients of every pair in the node, hence ``‖J_R‖`` of every region with
  interior in it. A node enters the queue with its parent's bound (valid: its polyhedron lies in the parent's) and
  gets its own bounds and bound, the smaller of the two, when it is first the largest (lazily: nodes that never
  reach the top cost no certificate);
* **forced phases.** When all children but one are proved to have no interior, or the node's bounds force the
  phase, the one left holds every region of the node: it is expanded at once, so only nodes with a choice are
  queued and bounded;
* **leaf** (every phase fixed). ``f`` is affine on the region: ``Restriction.jacobian_upper`` bounds ``‖J_R‖``
  rigorously; the float Chebyshev centre of the region and the top right singular vector ``u`` of ``J_R`` give
  a witness pair ``y ± s·u`` whose ratio :func:`~unfoldtheory.forward_error.certified_ratio` re-evaluates from
  the spec;
* **incumbent.** The largest certified ratio of the leaf witnesses and of global witness searches
  (:func:`~.lower.lower_bound`): a quick one before the search, then thorough ones (region ascent from all their
  starts, the next random seed each) whenever the searches have had under ``INCUMBENT_SHARE`` of the time spent;
* **pruning.** A child whose float LP finds no interior is dropped only when
  :func:`~.polyhedra.proves_no_interior` proves it in exact rational arithmetic; otherwise it stays in the
  search. The search stops when the largest open bound is ≤ ``(1 + rtol)·lower``, or at the time budget. Among equal
  bounds the deepest node goes first (towards leaves, whose witnesses raise the incumbent).

The returned value is the largest bound left in the queue (every region with interior lies in an open node or
a leaf still queued): a certified upper bound whether or not the interval closed.

**Local constant** (``region=``; ``proofs/exact_lipschitz.py``, claim 9). For a convex region ``C`` with an interior,
the Lipschitz constant of ``f`` on ``C`` is ``max ‖J_R‖`` over the regions ``R`` with ``R ∩ C`` of nonempty interior.
The root polyhedron is a box ``B ⊇ C``: a :class:`~.regions.Box` itself, a :class:`~.regions.Ball`'s enclosing box
rounded outward. Its ``2m`` rows ``±y_j ≤ ±end`` are exact float data (rows of kind ``(0, j, side)``, layer 0 the
input). Every node polyhedron is then bounded, and its enclosing box is ``B`` intersected with what the LPs prove; the
root's intervals come from ``B`` and, for a ball, are intersected with the ball's own CROWN bounds: node intervals
need only hold on ``P ∩ C`` (claim 9), and children inherit them. The root bound is also
:func:`~.local.local_upper_bound` on the region (valid for every region meeting ``C`` with interior: the invariant the
search keeps, node bounds over supersets of ``P ∩ C`` included). The incumbent comes from
:func:`~.local_lower.local_lower_bound` on the region and the leaf witnesses, each pair kept only when both points lie
in the region exactly (:func:`~.local_lower.inside_exactly`). For an ℓ2 ball a child whose polyhedron misses the
ball's interior is dropped on an exact proof (:meth:`_Search._misses_ball`: an aggregate of its exact rows, weights
from Lawson–Hanson least-distance programming, at distance ≥ r from the centre), and a leaf whose Chebyshev pair falls
outside the ball tries pairs between its nearest point to the centre and its Chebyshev centre
(``details["outside_region"]`` counts the dropped children).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from scipy.optimize import nnls
from tqdm.auto import tqdm

from unfoldtheory.forward_error import certified_ratio
from unfoldtheory.lipschitz.agnostic import activation_agnostic
from unfoldtheory.lipschitz.bound_propagation import preactivation_bounds
from unfoldtheory.lipschitz.exact_box import affine_preactivation, affine_state, enclosing_box, node_intervals
from unfoldtheory.lipschitz.linear_relaxation import nonaffine
from unfoldtheory.lipschitz.local import local_upper_bound
from unfoldtheory.lipschitz.local_lower import inside_exactly, local_lower_bound
from unfoldtheory.lipschitz.lower import lower_bound
from unfoldtheory.lipschitz.polyhedra import Centre, ExactPreactivations, chebyshev_centre, phase_table, proves_no_interior
from unfoldtheory.lipschitz.product import product_bound
from unfoldtheory.lipschitz.quantity import LOCAL_QUANTITY, QUANTITY
from unfoldtheory.lipschitz.regions import Ball, Box, Region
from unfoldtheory.lipschitz.restriction import restrict
from unfoldtheory.lipschitz.sdp import sdp_bound
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.validation import finite_float, time_budget_seconds

METHOD = "exact (pattern branch and bound)"
#: Up to this many unstable neurons a node is bounded by vertex enumeration (2^n patterns; below ~13 neurons it is
#: cheaper than the node SDP and never looser), else by LipSDP-Neuron or the product bound.
VERTEX_NEURONS = 12
#: Each global witness search for the incumbent (:func:`~.lower.lower_bound`) gets ``SEED_SHARE`` of the budget, at
#: most ``SEED_SECONDS``: a quick one (its defaults) seeds the search; a thorough one (``SEED_RESTARTS`` starts, region
#: ascent from every one: ``patience=None``), with the next random seed, runs whenever the searches so far have had less
#: than ``INCUMBENT_SHARE`` of the time spent (their value varies with the seed by several per cent on trained nets).
SEED_SHARE, SEED_SECONDS, SEED_RESTARTS, INCUMBENT_SHARE = 0.15, 15.0, 64, 0.25
#: Share of the time budget (at most ``ROOT_SECONDS``) for the root's global certificate (``upper_bound``, "best").
ROOT_SHARE, ROOT_SECONDS = 0.25, 30.0
#: Beyond ``VERTEX_NEURONS`` a node with a LipSDP matrix of at most this many rows is bounded by LipSDP-Neuron on its
#: restricted spec (structured interior-point method, at most ``NODE_SDP_SECONDS`` each), larger ones by the product bound.
NODE_SDP_ROWS, NODE_SDP_SECONDS = 400, 5.0
#: Node boxes (:meth:`_Search.tighten`): after ``BOX_TRIAL`` boxes of which under ``BOX_GAIN_SHARE`` stabilised a free
#: neuron, one eligible node in ``BOX_RETRY``.
BOX_TRIAL, BOX_GAIN_SHARE, BOX_RETRY = 30, 0.05, 10


@dataclass
class _Node:
    phases: tuple[int, ...]  # phase index of the neurons fixed so far (flat, topological order)
    maps: tuple[np.ndarray, ...]  # float [H_j | h_j] of the completed states j = 0..K−1
    pre: np.ndarray | None  # float [G | g] of the pre-activations of layer K (None at a leaf)
    A: np.ndarray  # unit rows of the node's polyhedron {A y ≤ c}
    c: np.ndarray
    rows: tuple[tuple[int, int, int], ...]  # per row: (layer, neuron, side): +1 is v ≤ hi, −1 is v ≥ lo; layer 0: y_j
    point: np.ndarray | None  # a float point of the node (guidance), None when the LP found none
    bound: float
    errs: tuple[np.ndarray, ...]  # entrywise bounds on |maps − exact maps| (:mod:`.exact_box`)
    pre_err: np.ndarray | None  # the same for ``pre``
    G: np.ndarray  # per row of A: side·[g | g0], the float pre-activation row it came from …
    E: np.ndarray  # … its error bound …
    rhs: np.ndarray  # … and side·(phase end): the exact row is side·(g*·y + g0*) ≤ rhs
    lower: list[np.ndarray] | None = None  # rigorous pre-activation bounds over the polyhedron (None: not known)
    upper: list[np.ndarray] | None = None
    bounded: bool = False  # False: ``bound`` is the parent's (valid, the node lies in it), its own not computed yet


def branching_order(spec: NetworkSpec) -> list[np.ndarray]:
    """Per layer, the order in which its neurons are branched on (any order within a layer keeps the node polyhedra:
    every pre-activation of a layer is affine once the layers before it are fixed): larger influence first,
    ``‖∂out/∂z_{k,i}‖·‖∂v_{k,i}/∂y‖`` of the linear net with every slope at 1 (a float heuristic; ties keep the index
    order)."""
    N = spec.num_layers
    with np.errstate(all="ignore"):
        states, pres = [np.eye(spec.input_dim)], []
        for k in range(1, N + 1):
            v = sum(w @ states[j] for j, w in spec.weights[k - 1].items())
            pres.append(v)
            states.append(v)
        adjoint = [np.zeros((spec.output_dim, d)) for d in spec.dims]
        for j, c in spec.readout.items():
            adjoint[j] = adjoint[j] + c
        for k in range(N, 0, -1):
            for j, w in spec.weights[k - 1].items():
                adjoint[j] = adjoint[j] + adjoint[k] @ w
        out = []
        for k in range(1, N + 1):
            score = np.linalg.norm(adjoint[k], axis=0) * np.linalg.norm(pres[k - 1], axis=1)
            out.append(np.argsort(-np.nan_to_num(score, nan=0.0, posinf=np.finfo(float).max), kind="stable"))
    return out


def _least_distance(A: np.ndarray, c: np.ndarray, y0: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Float ``λ ≥ 0`` and the nearest point of ``{A y ≤ c}`` to ``y0`` (None when infeasible) by Lawson–Hanson's
    least-distance programming (NNLS of ``[Gᵀ; hᵀ] u ≈ e``, ``G = −A``, ``h = A y0 − c``); (None, None) on failure.
    A proposal only: the callers check what they use exactly."""
    m = A.shape[1]
    h = A @ y0 - c
    E = np.vstack([-A.T, h[None, :]])
    f = np.zeros(m + 1)
    f[-1] = 1.0
    if not (np.all(np.isfinite(E))):
        return None, None
    try:
        u = nnls(E, f, maxiter=50 * E.shape[1])[0]
    except (RuntimeError, ValueError):
        return None, None
    if not np.any(u > 0):
        return None, None
    res = E @ u - f
    point = None if abs(res[-1]) < 1e-14 else y0 - res[:m] / res[-1]
    return u, point


class _Search:
    def __init__(self, spec: NetworkSpec, rtol: float, region: Region | None = None) -> None:
        self.spec, self.rtol, self.region = spec, rtol, region
        self.box = None if region is None else region.enclosing_box()  # the root polyhedron B ⊇ region (exact rows)
        self.table = phase_table(spec)
        self.exact = ExactPreactivations(spec, self.table)
        self.order = branching_order(spec)  # per layer, its neurons in the order they are branched on
        self.where = [(k, int(i)) for k in range(1, spec.num_layers + 1) for i in self.order[k - 1]]
        self.position = [np.argsort(o) for o in self.order]  # position[k − 1][i]: neuron i's place in layer k's order
        self.start = np.cumsum([0, *spec.dims[1:]])  # flat index of layer k's first neuron: start[k − 1]
        self.flat = np.array([self.start[k - 1] + i for k, i in self.where], dtype=int)  # where-order → layer order
        self.stats = {"nodes": 0, "regions_visited": 0, "empty_proved": 0, "empty_unproved": 0, "lps": 0,
                      "box_tries": 0, "boxes": 0, "box_gains": 0, "forced_by_intervals": 0, "bound_methods": {},
                      "outside_region": 0}
        self.scale = 1.0

    # ------------------------------------------------------------------ node bookkeeping
    def _forced(self, node: _Node, k: int, i: int) -> int | None:
        """The phase whose closed interval contains the neuron's bounds over the node (then that child is the node
        itself), or None."""
        if node.lower is None:
            return None
        lo, hi = node.lower[k - 1][i], node.upper[k - 1][i]
        return next((p for p, ph in enumerate(self.table[k - 1][i]) if ph.lo <= lo and hi <= ph.hi), None)

    def _candidates(self, node: _Node, k: int, i: int) -> list[int]:
        """The phases to branch on: those whose interval meets the neuron's bounds over the node in more than a point
        (the others' children are empty or lie in a neighbour's, on the shared end: the kept ones still cover the node)."""
        phases = self.table[k - 1][i]
        if node.lower is None:
            return list(range(len(phases)))
        lo, hi = node.lower[k - 1][i], node.upper[k - 1][i]
        return [p for p, ph in enumerate(phases) if max(lo, ph.lo) < min(hi, ph.hi)]

    def _settle(self, node: _Node) -> _Node:
        """Fix single-phase neurons and neurons whose bounds over the node lie in one phase (no new row: the node is
        unchanged), and complete layers, until a neuron with a choice (or the leaf) is next."""
        spec = self.spec
        with np.errstate(over="ignore", invalid="ignore"):
            while len(node.phases) < len(self.where):
                t = len(node.phases)
                k, i = self.where[t]
                if node.pre is None:
                    node.pre, node.pre_err = affine_preactivation(spec, node.maps, node.errs, k)
                if len(self.table[k - 1][i]) > 1:
                    p = self._forced(node, k, i)
                    if p is None:
                        return node
                    self.stats["forced_by_intervals"] += 1
                else:
                    p = 0
                node.phases = (*node.phases, p)
                if len(node.phases) == self.start[k]:
                    self._complete(node, k)
            return node

    def _complete(self, node: _Node, k: int) -> None:
        """Layer k's phases are all fixed: its state is affine, ``S v + o``; move to layer k + 1."""
        phases = node.phases[self.start[k - 1]:self.start[k]]
        ph = [self.table[k - 1][i][phases[j]] for i, j in enumerate(self.position[k - 1])]
        h, e = affine_state(node.pre, node.pre_err, np.array([p.slope for p in ph]), np.array([p.offset for p in ph]))
        node.maps, node.errs = (*node.maps, h), (*node.errs, e)
        node.pre = node.pre_err = None

    def child(self, node: _Node, p: int) -> _Node | None:
        """The child of ``node`` with phase ``p`` for its next neuron, settled; None when proved to have no interior."""
        t = len(node.phases)
        k, i = self.where[t]
        ph = self.table[k - 1][i][p]
        row = node.pre[i]
        g, g0 = row[:-1], row[-1]
        norm = float(np.linalg.norm(g))
        unit = norm if norm > 0 and math.isfinite(norm) else 1.0
        new_A, new_c, new_rows, new_G, new_E, new_rhs = [], [], [], [], [], []
        for side, end in ((1, ph.hi), (-1, ph.lo)):
            if math.isfinite(end):
                new_A.append(side * g / unit)
                new_c.append(side * (end - g0) / unit)
                new_rows.append((k, i, side))
                new_G.append(side * row)
                new_E.append(node.pre_err[i])
                new_rhs.append(side * end)
        A = np.vstack([node.A, *new_A]) if new_A else node.A
        c = np.concatenate([node.c, new_c]) if new_c else node.c
        G = np.vstack([node.G, *new_G]) if new_G else node.G
        E = np.vstack([node.E, *new_E]) if new_E else node.E
        rhs = np.concatenate([node.rhs, new_rhs]) if new_rhs else node.rhs
        point = node.point
        if point is not None:
            v = float(g @ point + g0)
            if not ph.lo < v < ph.hi:
                point = None
        child = _Node((*node.phases, p), node.maps, node.pre, A, c, (*node.rows, *new_rows), point, node.bound,
                      node.errs, node.pre_err, G, E, rhs, node.lower, node.upper)
        if point is None:
            centre = self._centre(child)
            if centre.radius > 0 and centre.y is not None:
                child.point = centre.y
            elif self._no_interior(child, centre.multipliers):
                self.stats["empty_proved"] += 1
                return None
            else:
                self.stats["empty_unproved"] += 1
        if (isinstance(self.region, Ball) and not (child.point is not None and self.region.contains(child.point))
                and self._misses_ball(child)):
            self.stats["outside_region"] += 1
            return None
        if len(child.phases) == self.start[k]:
            self._complete(child, k)
        return self._settle(child)

    def _centre(self, node: _Node) -> Centre:
        self.stats["lps"] += 1
        with np.errstate(all="ignore"):
            if not (np.all(np.isfinite(node.A)) and np.all(np.isfinite(node.c))):
                return Centre(-math.inf, None, None)
            return chebyshev_centre(node.A, node.c, 100.0 * self.scale)

    def _no_interior(self, node: _Node, multipliers: np.ndarray | None) -> bool:
        """The exact check (:func:`~.polyhedra.proves_no_interior`) on the rows the LP's dual vector uses."""
        if multipliers is None or multipliers.shape[0] != len(node.rows) or not np.any(multipliers > 0):
            return False
        support = np.flatnonzero(multipliers > 1e-12 * float(np.max(multipliers)))
        G, h = self._exact_rows(node, support)
        norms = np.linalg.norm(node.A[support], axis=1)
        guess = multipliers[support] / np.where(norms > 0, norms, 1.0)
        return proves_no_interior(G, h, guess)

    def _misses_ball(self, node: _Node) -> bool:
        """For an ℓ2 ball ``B(c, r)``: an exact proof that the node's polyhedron meets it in no interior point. The
        least-distance problem ``min ‖y − c‖`` over the float rows (Lawson–Hanson: NNLS on ``[−Aᵀ; (A c − b)ᵀ]``)
        proposes ``λ ≥ 0``; the exact aggregate row ``g·y ≤ h`` (``g = Σ λ_i g*_i``, ``h = Σ λ_i h*_i``) holds on the
        polyhedron, and ``g·c − h ≥ 0`` with ``(g·c − h)² ≥ r²‖g‖²`` puts every common point on the hyperplane
        ``g·(y − c) = −r‖g‖`` (or proves the polyhedron empty when ``g = 0``)."""
        ball = self.region
        if not (isinstance(ball, Ball) and ball.norm == 2) or node.A.shape[0] == 0:
            return False
        with np.errstate(all="ignore"):
            lam = _least_distance(node.A, node.c, ball.center)[0]
            if lam is None:
                return False
            support = np.flatnonzero(lam > 1e-12 * float(np.max(lam)))
            units = np.linalg.norm(node.G[support, :-1], axis=1)
            weights = lam[support] / np.where(units > 0, units, 1.0)
        if not np.all(np.isfinite(weights)):
            return False
        G, h = self._exact_rows(node, support)
        m = self.spec.input_dim
        w = [Fraction(float(x)) for x in weights]
        g = [sum(wi * row[j] for wi, row in zip(w, G, strict=True)) for j in range(m)]
        gap = sum(gj * Fraction(float(cj)) for gj, cj in zip(g, ball.center, strict=True)) - sum(
            wi * hi for wi, hi in zip(w, h, strict=True))
        return gap >= 0 and gap * gap >= Fraction(ball.radius) ** 2 * sum(gj * gj for gj in g) and (gap > 0 or any(g))

    def _exact_rows(self, node: _Node, support: np.ndarray) -> tuple[list[list[Fraction]], list[Fraction]]:
        """The node's rows ``support`` in exact arithmetic on the float64 spec: ``G y ≤ h`` (:mod:`.polyhedra`)."""
        K = max(k for k, _, _ in (node.rows[s] for s in support))
        pres = self.exact.maps(self.layer_order(node.phases[:self.start[K - 1]]), K) if K > 0 else []
        G, h = [], []
        m = self.spec.input_dim
        for s in support:
            k, i, side = node.rows[s]
            if k == 0:  # an input row of the root box: side·y_i ≤ side·end, exact
                unit = [Fraction(side) if j == i else Fraction(0) for j in range(m)]
                G.append(unit)
                h.append(Fraction(float(self.box[1][i])) if side == 1 else -Fraction(float(self.box[0][i])))
                continue
            ph = self.table[k - 1][i][node.phases[self.start[k - 1] + self.position[k - 1][i]]]
            row = pres[k - 1][i]
            if side == 1:
                G.append([x for x in row[:-1]])
                h.append(Fraction(ph.hi) - row[-1])
            else:
                G.append([-x for x in row[:-1]])
                h.append(row[-1] - Fraction(ph.lo))
        return G, h

    def layer_order(self, phases: tuple[int, ...]) -> tuple[int, ...]:
        """The phases of complete layers (branching order) in layer order, neuron by neuron."""
        out = [0] * len(phases)
        for t, p in enumerate(phases):
            out[self.flat[t]] = p
        return tuple(out)

    def expand(self, node: _Node, leaves: int) -> list[_Node]:
        """The children of ``node`` that are not proved interior-free; a single one (its siblings proved empty, so it
        holds every region of ``node``) is expanded in turn, so that only nodes with a choice reach the queue."""
        node = self._settle(dataclasses.replace(node, bounded=False))  # its own intervals may force the next phases
        if len(node.phases) == leaves:
            return [node]
        while True:
            self.stats["nodes"] += 1
            k, i = self.where[len(node.phases)]
            kids = [c for c in (self.child(node, p) for p in self._candidates(node, k, i)) if c is not None]
            if len(kids) != 1 or len(kids[0].phases) == leaves:
                return kids
            node = kids[0]

    # ------------------------------------------------------------------ bounds and witnesses
    def _intervals(self, node: _Node) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Bounds on every pre-activation over the node: the fixed neurons' phase intervals, intersected with the
        node's propagated bounds when known."""
        lower = [np.full(d, -np.inf) for d in self.spec.dims[1:]]
        upper = [np.full(d, np.inf) for d in self.spec.dims[1:]]
        for t, p in enumerate(node.phases):
            k, i = self.where[t]
            ph = self.table[k - 1][i][p]
            lower[k - 1][i], upper[k - 1][i] = ph.lo, ph.hi
        if node.lower is not None:
            lower = [np.maximum(a, b) for a, b in zip(lower, node.lower, strict=True)]
            upper = [np.minimum(a, b) for a, b in zip(upper, node.upper, strict=True)]
        return lower, upper

    def tighten(self, node: _Node) -> None:
        """The node's bounds from its enclosing box (:func:`~.exact_box.enclosing_box`, when the float LPs find the
        polyhedron bounded) by :func:`~.exact_box.node_intervals`, kept in ``node.lower``/``node.upper``. Once
        ``BOX_TRIAL`` boxes were found and under ``BOX_GAIN_SHARE`` of them made a free neuron stable, only every
        ``BOX_RETRY``-th eligible node gets one (the LPs cost about a node SDP each time)."""
        st = self.stats
        if node.A.shape[0] <= self.spec.input_dim:
            return
        st["box_tries"] += 1
        if (st["boxes"] >= BOX_TRIAL and st["box_gains"] < BOX_GAIN_SHARE * st["boxes"]
                and st["box_tries"] % BOX_RETRY):
            return
        with np.errstate(all="ignore"):
            box = enclosing_box(node.A, node.c, node.G, node.E, node.rhs)
        if self.box is not None:  # the root box holds the node: intersect (both contain it)
            box = self.box if box is None else (np.maximum(box[0], self.box[0]), np.minimum(box[1], self.box[1]))
        if box is None:
            return
        st["boxes"] += 1
        node.lower, node.upper = node_intervals(self.spec, box, *self._intervals(node))
        with np.errstate(invalid="ignore"):
            stable = np.concatenate([~nonaffine(act, lo, hi) | (lo > hi)
                                     for act, lo, hi in zip(self.spec.activations, node.lower, node.upper, strict=True)])
        st["box_gains"] += bool(np.any(stable[self.flat[len(node.phases):]]))

    def bound(self, node: _Node, budget: float, root: bool = False) -> float:
        """A certified upper bound on ``‖J_R‖`` over the regions of ``node`` (module docstring), ≤ its parent's:
        the Jacobian bound of a leaf, vertex enumeration up to ``VERTEX_NEURONS`` unstable neurons, else LipSDP-Neuron
        on the restricted spec (at the root :func:`~unfoldtheory.lipschitz.upper_bound`, "best"), within ``budget``
        seconds, and the product bound when that does not certify. The bounds of the free neurons come from
        :meth:`tighten`; bounds that cross prove the node empty (bound 0)."""
        if not root:
            self.tighten(node)
        lower, upper = self._intervals(node)
        methods = self.stats["bound_methods"]
        if any(np.any(lo > hi) for lo, hi in zip(lower, upper, strict=True)):
            methods["empty"] = methods.get("empty", 0) + 1
            return 0.0
        restriction = restrict(self.spec, lower, upper)
        method, value = None, math.inf
        if restriction.linear:
            value, method = restriction.jacobian_upper, "jacobian"
        elif restriction.unstable <= VERTEX_NEURONS:
            try:
                b = activation_agnostic(restriction.spec, max_neurons=VERTEX_NEURONS)
                value, method = (b.value if b.certified else math.inf), "vertex"
            except ValueError:  # a non-separable block stays (no vertex enumeration): the product bound below
                value, method = math.inf, None
        elif root:  # with a region, the region's own certificate below; without, the global "best"
            if self.region is None:
                from unfoldtheory.lipschitz import upper_bound  # the package's entry point imports this module

                b = upper_bound(restriction.spec, "best", time_budget=budget)
                value, method = (b.value if b.certified else math.inf), "best"
        elif self.spec.input_dim + restriction.unstable <= NODE_SDP_ROWS:
            try:
                b = sdp_bound(restriction.spec, solver="structured", max_size=NODE_SDP_ROWS, time_budget=budget)
                value, method = (b.value if b.certified else math.inf), "sdp"
            except (ValueError, np.linalg.LinAlgError):  # no LipSDP form or a failed solve: the product bound below
                value, method = math.inf, None
        if root and self.region is not None:  # the region's own certificate (its CROWN intervals, "best" on them)
            b = local_upper_bound(self.spec, self.region, time_budget=budget)
            if b.certified and b.value < value:
                value, method = b.value, "local"
        if method is None or not math.isfinite(value):
            b = product_bound(restriction.spec)
            value, method = min(value, b.value if b.certified else math.inf), "product"
        methods[method] = methods.get(method, 0) + 1
        return min(node.bound, value)

    def slopes(self, node: _Node) -> list[np.ndarray]:
        out = [np.zeros(d) for d in self.spec.dims[1:]]
        for t, p in enumerate(node.phases):
            k, i = self.where[t]
            out[k - 1][i] = self.table[k - 1][i][p].slope
        return out

    def _ball_pair(self, node: _Node, centre: Centre, u: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """For a ball whose region's Chebyshev pair lies outside it: a pair around ``q = p + s(y_c − p)`` (``p`` the
        region's nearest point to the ball's centre, ``y_c`` its Chebyshev centre of radius ``ρ``: the ball
        ``B(q, sρ)`` lies in the region by convexity), for the first ``s`` whose pair lies in the ball exactly."""
        if not isinstance(self.region, Ball):
            return None, None
        with np.errstate(all="ignore"):
            p = _least_distance(node.A, node.c, self.region.center)[1]
            if p is None or not np.all(np.isfinite(p)):
                return None, None
            for s in (0.5, 0.1, 0.01, 0.001):
                q = p + s * (centre.y - p)
                y1, y2 = q - 0.5 * s * centre.radius * u, q + 0.5 * s * centre.radius * u
                if not np.array_equal(y1, y2) and np.all(inside_exactly(self.region, np.vstack([y1, y2]))):
                    return y1, y2
        return None, None

    def witness(self, node: _Node) -> tuple[float, np.ndarray, np.ndarray] | None:
        """A certified lower bound from a pair inside the leaf's region along its top right singular vector."""
        centre = self._centre(node)
        if not (centre.radius > 0 and centre.y is not None):
            return None
        with np.errstate(all="ignore"):
            J = self.spec.linearized_jacobian(self.slopes(node))
            if not np.all(np.isfinite(J)):
                return None
            u = np.linalg.svd(J)[2][0]
            y1, y2 = centre.y - 0.5 * centre.radius * u, centre.y + 0.5 * centre.radius * u
        if not (np.all(np.isfinite(y1)) and np.all(np.isfinite(y2))) or np.array_equal(y1, y2):
            return None
        if self.region is not None and not np.all(inside_exactly(self.region, np.vstack([y1, y2]))):
            y1, y2 = self._ball_pair(node, centre, u)
            if y1 is None:
                return None
        ratio = certified_ratio(self.spec, y1, y2)
        return (ratio.value, y1, y2) if ratio.certified else None


def _check_region(spec: NetworkSpec, region: Any) -> Region | None:
    """The region, checked: None, or a Box or Ball of the spec's input dimension with a nonempty interior."""
    if region is None:
        return None
    if not isinstance(region, (Box, Ball)):
        raise TypeError(f"exact_bound's region must be a Box or a Ball, got {type(region).__name__}")
    region.check_dim(spec.input_dim)
    lo, hi = region.enclosing_box()
    if (isinstance(region, Box) and not np.all(lo < hi)) or (isinstance(region, Ball) and not region.radius > 0):
        raise ValueError(f"exact_bound's region {region!r} has an empty interior (a Box needs lower < upper in every "
                         "coordinate, a Ball a positive radius): the constant over it is not a max over linear regions")
    return region


def exact_bound(spec: NetworkSpec, *, region: Box | Ball | None = None, rtol: float = 1e-3, time_budget: float = 60.0,
                progress: bool | None = None) -> Bound:
    """The exact ℓ2 Lipschitz constant of a piecewise-linear spec, as a certified interval (module docstring).

    Parameters
    ----------
    spec:
        A spec whose activations are the built-in ReLU, SoftThreshold, BoxProjection or Identity (ValueError naming
        the first other layer).
    region:
        None: the global constant. A :class:`~.regions.Box` or :class:`~.regions.Ball` (input dimension, nonempty
        interior; ValueError otherwise): the constant of ``f`` restricted to it (module docstring, "Local constant").
    rtol:
        The search stops once ``upper ≤ (1 + rtol)·lower`` (> 0).
    time_budget:
        Seconds (> 0, ``inf`` for none); up to a quarter of it goes to global witness searches for the incumbent
        (:func:`~.lower.lower_bound`, ``SEED_SHARE``, ``INCUMBENT_SHARE``).
    progress:
        Show a progress bar (None: only on a terminal).

    Returns
    -------
    Bound
        ``kind="upper"``: ``value`` the certified upper bound (the largest bound left open), ``certified`` when it is
        finite. ``details``: ``lower`` (a certified lower :class:`Bound` with its witness), ``witness`` ``(y1, y2)``,
        ``closed`` (``value ≤ (1 + rtol)·lower``), ``rtol``, ``nodes``, ``regions_visited``, ``empty_proved``
        (children dropped on an exact emptiness proof), ``empty_unproved`` (kept although the LP found no interior),
        ``bound_methods`` (how many node bounds each certificate gave: ``best``, ``sdp``, ``vertex``, ``product``,
        ``jacobian``, ``empty``: crossed node bounds), ``box_tries``/``boxes``/``box_gains`` (nodes that tried an
        enclosing box / got one / got a free neuron stable from it), ``forced_by_intervals`` (phases fixed by node
        bounds), ``witness_searches`` (thorough incumbent searches), ``reason`` (when not closed); with a region also
        ``region`` (its repr) and ``domain`` (the box searched), and ``quantity`` is the local one.
    """
    t0 = time.perf_counter()
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"exact_bound takes a NetworkSpec, got {type(spec).__name__}")
    rtol = finite_float(rtol, "rtol", low=0.0, low_open=True)
    budget = time_budget_seconds(time_budget)
    region = _check_region(spec, region)
    search = _Search(spec, rtol, region)  # ValueError for a layer that is not piecewise linear
    seed_seconds = min(SEED_SHARE * budget, SEED_SECONDS)

    def witnesses(**kw: Any) -> Bound:
        """A witness search: global (:func:`~.lower.lower_bound`) or in the region (:func:`~.local_lower.local_lower_bound`,
        both points checked to lie in it exactly)."""
        if region is None:
            return lower_bound(spec, time_budget=seed_seconds, **kw)
        kw.pop("patience", None)  # the local search has no patience: it always ascends from every start
        return local_lower_bound(spec, region, time_budget=seed_seconds, **kw)
    seed = witnesses()  # quick (defaults): enough where the root's bound closes
    search.scale = max(float(seed.details.get("input_scale", 1.0)), 1e-300)
    best: dict[str, Any] = {"value": seed.value if seed.certified else 0.0, "method": f"seed: {seed.method}",
                            "y1": seed.certificate["y1"], "y2": seed.certificate["y2"]}
    incumbent = {"seconds": time.perf_counter() - t0, "searches": 0}

    def reseed() -> None:
        """A thorough witness search (next random seed) while the searches have had under ``INCUMBENT_SHARE`` of the
        time."""
        elapsed = time.perf_counter() - t0
        if incumbent["seconds"] >= INCUMBENT_SHARE * elapsed or budget - elapsed < 2.0 * seed_seconds:
            return
        start = time.perf_counter()
        b = witnesses(restarts=SEED_RESTARTS, seed=incumbent["searches"], patience=None)
        incumbent["seconds"] += time.perf_counter() - start
        incumbent["searches"] += 1
        if b.certified and b.value > best["value"]:
            best.update(value=b.value, method=f"witness search {incumbent['searches']}: {b.method}",
                        y1=b.certificate["y1"], y2=b.certificate["y2"])
    m = spec.input_dim
    if region is None:
        root = _Node((), (np.eye(m, m + 1),), None, np.zeros((0, m)), np.zeros(0), (), np.zeros(m), math.inf,
                     (np.zeros((m, m + 1)),), None, np.zeros((0, m + 1)), np.zeros((0, m + 1)), np.zeros(0))
    else:  # the root box's 2m rows y_j ≤ hi_j, −y_j ≤ −lo_j (exact), its intervals from the box
        lo, hi = search.box
        eye, zero = np.eye(m), np.zeros((m, 1))
        G = np.vstack([np.hstack([eye, zero]), np.hstack([-eye, zero])])
        rows = tuple((0, j, side) for side in (1, -1) for j in range(m))
        root = _Node((), (np.eye(m, m + 1),), None, np.vstack([eye, -eye]), np.concatenate([hi, -lo]), rows,
                     0.5 * lo + 0.5 * hi, math.inf, (np.zeros((m, m + 1)),), None, G, np.zeros_like(G),
                     np.concatenate([hi, -lo]))
        root.lower, root.upper = node_intervals(spec, search.box, *search._intervals(root))
        if isinstance(region, Ball):  # the ball's own CROWN bounds: valid on the ball, all the invariant needs
            ball = preactivation_bounds(spec, region)
            root.lower = [np.maximum(a, b) for a, b in zip(root.lower, ball.lower, strict=True)]
            root.upper = [np.minimum(a, b) for a, b in zip(root.upper, ball.upper, strict=True)]
    root = search._settle(root)
    root.bound, root.bounded = search.bound(root, min(ROOT_SHARE * budget, ROOT_SECONDS), root=True), True
    heap: list[tuple[float, int, int, _Node]] = []  # (−bound, −depth, order, node): best first, deepest among equals
    counter = itertools.count()
    leaves = len(search.where)

    def push(node: _Node) -> None:
        if len(node.phases) == leaves and not node.bounded:
            search.stats["regions_visited"] += 1
            w = search.witness(node)
            if w is not None and w[0] > best["value"]:
                best.update(value=w[0], method="region witness", y1=w[1], y2=w[2])
        heapq.heappush(heap, (-node.bound, -len(node.phases), next(counter), node))

    push(root)
    reason = None
    bar = tqdm(desc="exact Lipschitz (pattern branch and bound)", unit="node", disable=None if progress is None else not progress)
    with bar:
        while True:
            top = -heap[0][0]
            if top <= (1.0 + rtol) * best["value"]:
                break
            left = budget - (time.perf_counter() - t0)
            if left <= 0:
                reason = f"time budget of {budget:g} s spent"
                break
            reseed()
            node = heap[0][-1]
            if not node.bounded:  # its own bound, computed when it is first the largest (lazily)
                heapq.heappop(heap)
                node.bound, node.bounded = search.bound(node, min(NODE_SDP_SECONDS, left)), True
                push(node)
                continue
            if len(node.phases) == leaves:
                reason = ("the largest remaining bound is a single region's, and its witness (a pair around the region's "
                          "Chebyshev centre) does not reach it within rtol: rounding dominates the pair's ratio, or (a ball) "
                          "no pair of the region lies in the ball and the exact check cannot prove the region misses it"
                          if node.point is not None else
                          "the largest remaining bound is a single region's that the float LP finds no interior point in, "
                          "but that the exact check cannot prove to have none (in exact arithmetic on the float64 data it may "
                          "be a thin region far out, beyond what a float64 witness resolves)")
                break
            heapq.heappop(heap)
            for c in search.expand(node, leaves):
                push(c)
            if not heap:
                break
            bar.update(1)
            bar.set_postfix(lower=f"{best['value']:.6g}", upper=f"{-heap[0][0]:.6g}", refresh=False)
    upper = -heap[0][0] if heap else 0.0
    lower_value = float(best["value"])
    closed = upper <= (1.0 + rtol) * lower_value
    seconds = time.perf_counter() - t0
    quantity = QUANTITY if region is None else LOCAL_QUANTITY
    lower = Bound(lower_value, "lower", quantity, f"exact ({best['method']})", certified=True,
                  certificate={"y1": best["y1"], "y2": best["y2"], "ratio": lower_value}, seconds=seconds)
    certified = math.isfinite(upper)
    details = {"lower": lower, "witness": (best["y1"], best["y2"]), "closed": bool(closed), "rtol": rtol,
               **search.stats, "open": len(heap), "time_budget": budget, "seed": seed.value,
               "witness_searches": incumbent["searches"],
               **({} if closed else {"reason": reason or "the search ended without closing the interval"})}
    if not certified:
        details["reason"] = "no certified bound on the largest open node (the float64 bounds overflowed)"
    if region is not None:
        details["region"] = repr(region)
        details["domain"] = ("the box itself" if isinstance(region, Box) else
                             "the ball's enclosing box, rounded outward: the upper bound covers its regions (valid, the "
                             "ball lies in it; node bounds hold on supersets of the ball's part), every witness pair is "
                             "checked to lie in the ball exactly")
    top = heap[0][-1].phases if heap else ()
    return Bound(upper if certified else math.inf, "upper", quantity, METHOD, certified=certified,
                 certificate={"pattern": top, "neurons": tuple(search.where[:len(top)])}, seconds=seconds, details=details)


__all__ = ["METHOD", "NODE_SDP_ROWS", "VERTEX_NEURONS", "exact_bound"]
