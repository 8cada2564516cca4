"""Sound linear relaxations of the built-in activations, and CROWN back-substitution on a spec's graph.

**Relaxation.** For a neuron with pre-activation ``v ∈ [l, u]`` a relaxation is a pair of lines
``a_l v + c_l ≤ φ(v) ≤ a_u v + c_u`` on ``[l, u]``. Every separable built-in activation is piecewise linear
with pieces of slope 0 or 1 (:func:`pieces`: soft-thresholding ``[1, 0, 1]`` with kinks ``±θ``, ReLU ``[0, 1]``,
a box projection ``[0, 1, 0]``, the identity ``[1]``). Group soft-thresholding is bounded per coordinate by
``min(v_i, 0) ≤ GST(v)_i ≤ max(v_i, 0)`` (it scales each group by a factor in ``[0, 1]``), and its group is exactly
0 when the group's norm cannot exceed θ; its lower line relaxes ``min(v, 0)``, its upper line ``max(v, 0)``.

* A neuron whose interval meets only pieces of one slope gets that piece's own line, exactly, as both lines.
* Otherwise the *slope* is a heuristic float (0, 1, or the chord between two of the breakpoints ``l``, ``u`` and the
  kinks inside; the line with the largest (lower) / smallest (upper) value at the midpoint, i.e. the least area,
  CROWN's adaptive choice) and the *intercept* is made sound by directed rounding:
  ``c_l = min_t ↓(↓φ(t) − ↑(a t))`` over the breakpoints ``t``. A line lies below a piecewise-linear function on
  ``[l, u]`` iff it does so at ``l``, ``u`` and the kinks inside (``proofs/bound_propagation.py``), so the rounded
  intercept makes the line sound in exact arithmetic whatever float slope was chosen. An infinite end needs the
  slope of the outer piece there (``a ≥ s₋∞`` for a lower line at ``l = −∞``, ``a ≤ s₊∞`` at ``u = +∞``; reversed
  for upper lines); where none fits there is no line (``c = ∓inf``) and rows that need it get no bound.
* **Free slopes** (:class:`SlopeFamily`, α-CROWN): on a finite interval every float slope is sound with that intercept,
  so the back-substitution may use a different slope per row (target) and neuron; :meth:`SlopeFamily.lines` builds those
  lines (intercepts rounded as above, per row) and :meth:`Backsubstitution.layer_bounds` takes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unfoldtheory.activations import Activation, BoxProjection, GroupSoftThreshold, Identity, ReLU, SoftThreshold
from unfoldtheory.lipschitz.regions import Ball, Box, Region
from unfoldtheory.rounding import down, inflate, norm_upper, up
from unfoldtheory.spec import NetworkSpec

_U = 2.0 ** -53
_ETA = 2.0 ** -1075  # half the smallest subnormal: the absolute error of an underflowing product


@dataclass(frozen=True)
class Pieces:
    """A scalar piecewise-linear map per neuron: ``kinks`` (q, d) nondecreasing per column (may be ±inf), the pieces'
    ``slopes`` (q + 1,) in {0, 1} and ``intercepts`` (q + 1, d): on ``[kinks[p-1], kinks[p]]`` it is
    ``slopes[p]·v + intercepts[p]``."""

    kinks: np.ndarray
    slopes: np.ndarray
    intercepts: np.ndarray


def pieces(act: Activation, d: int) -> Pieces:
    """The pieces of a separable built-in activation on ``d`` neurons."""
    def b(x: object) -> np.ndarray:
        return np.broadcast_to(np.asarray(x, dtype=float), (d,))

    zero = np.zeros(d)
    if isinstance(act, SoftThreshold):
        th = b(act.theta)
        return Pieces(np.stack([-th, th]), np.array([1.0, 0.0, 1.0]), np.stack([th, zero, -th]))
    if isinstance(act, ReLU):
        return Pieces(zero[None, :], np.array([0.0, 1.0]), np.stack([zero, zero]))
    if isinstance(act, BoxProjection):
        lo, hi = b(act.lower), b(act.upper)
        return Pieces(np.stack([lo, hi]), np.array([0.0, 1.0, 0.0]), np.stack([lo, zero, hi]))
    if isinstance(act, Identity):
        return Pieces(np.empty((0, d)), np.array([1.0]), zero[None, :])
    raise TypeError(f"no piecewise-linear description of activation {act.name}")


_MIN0 = Pieces(np.zeros((1, 1)), np.array([1.0, 0.0]), np.zeros((2, 1)))  # min(v, 0)
_MAX0 = Pieces(np.zeros((1, 1)), np.array([0.0, 1.0]), np.zeros((2, 1)))  # max(v, 0)


def _widen(p: Pieces, d: int) -> Pieces:
    return Pieces(np.broadcast_to(p.kinks, (p.kinks.shape[0], d)), p.slopes, np.broadcast_to(p.intercepts, (p.slopes.size, d)))


def _overlaps(p: Pieces, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(q + 1, d): whether piece ``p`` meets ``(lo, hi)`` in a segment of positive length."""
    d = p.kinks.shape[1]
    left = np.vstack([np.full((1, d), -np.inf), p.kinks])
    right = np.vstack([p.kinks, np.full((1, d), np.inf)])
    return np.maximum(lo, left) < np.minimum(hi, right)


def _piece_nonaffine(p: Pieces, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    ov = _overlaps(p, lo, hi)
    s = p.slopes[:, None]
    return np.any(ov & (s == 0), axis=0) & np.any(ov & (s == 1), axis=0)


def _group_zero(act: GroupSoftThreshold, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Coordinates whose group is exactly 0 on the box: ``‖v_g‖ ≤ ‖max(|lo|, |hi|)_g‖↑ ≤ θ``."""
    mag = np.maximum(np.abs(lo), np.abs(hi))
    out = np.zeros(lo.shape, dtype=bool)
    for g in act.groups:
        out[g] = norm_upper(mag[g]) <= act.theta
    return out


def nonaffine(act: Activation, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Neurons on which ``act`` is not affine over ``[lo, hi]`` (group soft-thresholding: unless θ = 0 or the group is
    surely 0)."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    if isinstance(act, GroupSoftThreshold):
        return np.zeros(lo.shape, dtype=bool) if act.theta == 0 else ~_group_zero(act, lo, hi)
    return _piece_nonaffine(pieces(act, lo.size), lo, hi)


def constant(act: Activation, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Neurons on which ``act`` is constant over ``[lo, hi]``: the interval meets only pieces of slope 0 (a continuous
    function, so one value), or a group soft-threshold's group is surely 0. Their state is that constant whatever part of
    the interval the pre-activation fills, so a tighter interval changes nothing after them."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    if isinstance(act, GroupSoftThreshold):
        return np.zeros(lo.shape, dtype=bool) if act.theta == 0 else _group_zero(act, lo, hi)
    p = pieces(act, lo.size)
    return ~np.any(_overlaps(p, lo, hi) & (p.slopes[:, None] != 0), axis=0)


def shrink_to_stable(act: Activation, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per neuron, the least total length by which ``[lo, hi]`` must shrink to lie in one piece of ``act`` (0 when it
    does; group soft-thresholding: 0 when affine, else ``inf``)."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    if isinstance(act, GroupSoftThreshold):
        return np.where(nonaffine(act, lo, hi), np.inf, 0.0)
    p = pieces(act, lo.size)
    d = lo.size
    left = np.vstack([np.full((1, d), -np.inf), p.kinks])
    right = np.vstack([p.kinks, np.full((1, d), np.inf)])
    with np.errstate(invalid="ignore", over="ignore"):
        cut = np.maximum(left - lo, 0.0) + np.maximum(hi - right, 0.0)
    cut = np.where(np.isnan(cut), np.inf, cut)
    return np.where(nonaffine(act, lo, hi), np.min(cut, axis=0), 0.0)


@dataclass(frozen=True)
class Relaxation:
    """``a_l v + c_l ≤ φ(v) ≤ a_u v + c_u`` on each neuron's interval (exact arithmetic); ``c_l = −inf`` /
    ``c_u = +inf``: no such line."""

    a_l: np.ndarray
    c_l: np.ndarray
    a_u: np.ndarray
    c_u: np.ndarray

    @property
    def fractional(self) -> np.ndarray:
        """Neurons with a slope other than 0 or 1 (its products with a coefficient are rounded)."""
        return (self.a_l != 0) & (self.a_l != 1) | (self.a_u != 0) & (self.a_u != 1)


def _values(p: Pieces, t: np.ndarray, direction: int) -> np.ndarray:
    """``φ(t)`` at finite points ``t`` (r, d), rounded down (``direction=-1``) or up: ``t + c`` is one rounding."""
    idx = np.sum(p.kinks[None, :, :] < t[:, None, :], axis=1)  # the piece of t (either one at a kink: continuity)
    s = p.slopes[idx]
    c = np.take_along_axis(np.broadcast_to(p.intercepts, (p.slopes.size, t.shape[1])), idx, axis=0)
    with np.errstate(invalid="ignore", over="ignore"):
        val = np.where(s == 1, t + c, c)
    rounded = (s == 1) & (c != 0)
    return np.where(rounded, down(val) if direction < 0 else up(val), val)


@dataclass(frozen=True)
class _Frame:
    """One side of ``p`` on ``[lo, hi]``: the neurons on one slope (``affine``) and their exact line, and for the others
    the breakpoints ``T`` (r, d) of the finite hull ``[lo_e, hi_e]`` (infinite ends replaced by the outermost finite kink)
    with ``φ(T)`` rounded in the side's direction; ``ok``: a line can exist; ``s_lo``/``s_hi``: the outer pieces' slopes."""

    affine: np.ndarray
    a_exact: np.ndarray
    c_exact: np.ndarray
    T: np.ndarray
    phi: np.ndarray
    ok: np.ndarray
    mid: np.ndarray
    s_lo: np.ndarray
    s_hi: np.ndarray
    inf_lo: np.ndarray
    inf_hi: np.ndarray


def _frame(p: Pieces, lo: np.ndarray, hi: np.ndarray, direction: int) -> _Frame:
    d = lo.size
    kinks = p.kinks
    ov = _overlaps(p, lo, hi)
    affine = ~(np.any(ov & (p.slopes[:, None] == 0), axis=0) & np.any(ov & (p.slopes[:, None] == 1), axis=0))
    # --- neurons on one slope: the piece's own line (the first piece met, or the one containing lo)
    first = np.where(np.any(ov, axis=0), np.argmax(ov, axis=0), np.sum(kinks < lo[None, :], axis=0))
    a_exact = p.slopes[first]
    c_exact = np.take_along_axis(np.asarray(p.intercepts), first[None, :], axis=0)[0]
    # --- the others: breakpoints (infinite ends replaced by the outermost finite kink)
    fk = np.where(np.isfinite(kinks), kinks, np.nan)
    with np.errstate(all="ignore"):
        kmin = np.nanmin(np.vstack([fk, np.full((1, d), np.inf)]), axis=0)
        kmax = np.nanmax(np.vstack([fk, np.full((1, d), -np.inf)]), axis=0)
    lo_e = np.where(np.isfinite(lo), lo, np.minimum(kmin, np.where(np.isfinite(hi), hi, np.inf)))
    hi_e = np.where(np.isfinite(hi), hi, np.maximum(kmax, lo_e))
    ok = affine | (np.isfinite(lo_e) & np.isfinite(hi_e))
    lo_e, hi_e = np.where(ok, lo_e, 0.0), np.where(ok, hi_e, 0.0)
    T = np.vstack([lo_e[None, :], hi_e[None, :], np.clip(kinks, lo_e, hi_e)])  # (r, d) points of [lo_e, hi_e]
    with np.errstate(all="ignore"):
        mid = 0.5 * lo_e + 0.5 * hi_e
    return _Frame(affine, a_exact, c_exact, T, _values(p, T, direction), ok, mid,
                  p.slopes[np.sum(kinks == -np.inf, axis=0)], p.slopes[p.slopes.size - 1 - np.sum(kinks == np.inf, axis=0)],
                  ~np.isfinite(lo), ~np.isfinite(hi))


def _intercepts(f: _Frame, A: np.ndarray, direction: int) -> np.ndarray:
    """Sound intercepts for the float slopes ``A`` (shape (..., d)): ``c = min_t ↓(↓φ(t) − ↑(a t))`` over the
    breakpoints for a lower line, ``max_t ↑(↑φ(t) − ↓(a t))`` for an upper one (module docstring); NaN as ``∓inf``.
    Valid for every slope when the neuron's interval is finite; at an infinite end only for the slopes allowed there."""
    with np.errstate(all="ignore"):
        at = A[..., None, :] * f.T  # (..., r, d)
        if direction < 0:
            C = np.min(down(f.phi - up(at)), axis=-2)
        else:
            C = np.max(up(f.phi - down(at)), axis=-2)
    return np.where(np.isnan(C), direction * np.inf, C)


def _side(p: Pieces, lo: np.ndarray, hi: np.ndarray, direction: int) -> tuple[np.ndarray, np.ndarray]:
    """The lower (``direction=-1``) or upper line of ``p`` on ``[lo, hi]``: ``(slope, intercept)`` per neuron."""
    d = lo.size
    f = _frame(p, lo, hi, direction)
    T = f.T
    r = T.shape[0]
    # candidate slopes: 0, 1 and the chords between breakpoints (a heuristic: any float is sound)
    cands = [np.zeros(d), np.ones(d)]
    phi_mid = _values(p, T, 1)
    with np.errstate(all="ignore"):
        for i in range(r):
            for j in range(i + 1, r):
                ch = (phi_mid[j] - phi_mid[i]) / (T[j] - T[i])
                cands.append(np.clip(np.where(np.isfinite(ch), ch, 0.0), 0.0, 1.0))
    A = np.stack(cands)  # (n_c, d)
    unbounded = f.inf_lo | f.inf_hi
    A = np.where(unbounded, np.vstack([f.s_lo, f.s_hi] + [f.s_lo] * (A.shape[0] - 2)), A)
    if direction < 0:  # a lower line: a ≥ s₋∞ at l = −∞, a ≤ s₊∞ at u = +∞
        valid = (~f.inf_lo | (A >= f.s_lo)) & (~f.inf_hi | (A <= f.s_hi))
    else:
        valid = (~f.inf_lo | (A <= f.s_lo)) & (~f.inf_hi | (A >= f.s_hi))
    C = _intercepts(f, A, direction)
    with np.errstate(all="ignore"):
        score = -direction * (A * f.mid + C)
    score = np.where(unbounded, 0.0, score)
    score = np.where(valid & np.isfinite(C), np.where(np.isnan(score), -np.inf, score), -np.inf)
    best = np.argmax(score, axis=0)
    a = A[best, np.arange(d)]
    c = C[best, np.arange(d)]
    none = ~np.isfinite(score[best, np.arange(d)]) | ~f.ok
    c = np.where(none, direction * np.inf, c)
    return np.where(f.affine, f.a_exact, a), np.where(f.affine, f.c_exact, c)


def relaxation(act: Activation, lo: np.ndarray, hi: np.ndarray) -> Relaxation:
    """Sound lines for ``act`` on ``[lo, hi]`` per neuron (module docstring)."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    d = lo.size
    if isinstance(act, GroupSoftThreshold):
        if act.theta == 0:
            one, zero = np.ones(d), np.zeros(d)
            return Relaxation(one, zero, one, zero)
        a_l, c_l = _side(_widen(_MIN0, d), lo, hi, -1)
        a_u, c_u = _side(_widen(_MAX0, d), lo, hi, 1)
        z = _group_zero(act, lo, hi)
        zero = np.zeros(d)
        return Relaxation(np.where(z, 0.0, a_l), np.where(z, zero, c_l), np.where(z, 0.0, a_u), np.where(z, zero, c_u))
    p = pieces(act, d)
    a_l, c_l = _side(p, lo, hi, -1)
    a_u, c_u = _side(p, lo, hi, 1)
    return Relaxation(a_l, c_l, a_u, c_u)


@dataclass(frozen=True)
class SlopeFamily:
    """The lines with a free slope of one layer's neurons (α-CROWN: Xu et al., *Fast and Complete*, ICLR 2021).

    On a neuron whose interval is finite and on which a side's piecewise-linear function (the activation, or
    ``min(v, 0)`` / ``max(v, 0)`` for group soft-thresholding) is not affine, *every* float slope gives a sound line with
    the intercept of :func:`_intercepts` (breakpoint lemma, ``proofs/bound_propagation.py``); the slopes are kept in
    ``[0, 1]``, the range of the tight lines. ``free_l``/``free_u`` mark those neurons, ``base`` is :func:`relaxation`
    (the lines of every other neuron, and CROWN's starting slopes)."""

    base: Relaxation
    lower: _Frame
    upper: _Frame
    free_l: np.ndarray
    free_u: np.ndarray

    def lines(self, a_l: np.ndarray, a_u: np.ndarray) -> Relaxation:
        """A relaxation with one line per row and neuron (``a_l``, ``a_u`` of shape (rows, d)): the given slopes, clipped
        to ``[0, 1]``, on free neurons with their rigorous intercepts; ``base`` elsewhere."""
        b = self.base
        with np.errstate(invalid="ignore"):
            a_l = np.where(self.free_l, np.clip(a_l, 0.0, 1.0), b.a_l)
            a_u = np.where(self.free_u, np.clip(a_u, 0.0, 1.0), b.a_u)
        return Relaxation(a_l, np.where(self.free_l, _intercepts(self.lower, a_l, -1), b.c_l),
                          a_u, np.where(self.free_u, _intercepts(self.upper, a_u, 1), b.c_u))


def slope_family(act: Activation, lo: np.ndarray, hi: np.ndarray) -> SlopeFamily:
    """The free-slope lines of ``act`` on ``[lo, hi]`` per neuron (:class:`SlopeFamily`)."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    d = lo.size
    base = relaxation(act, lo, hi)
    finite = np.isfinite(lo) & np.isfinite(hi)
    if isinstance(act, GroupSoftThreshold):
        lower, upper = _frame(_widen(_MIN0, d), lo, hi, -1), _frame(_widen(_MAX0, d), lo, hi, 1)
        finite &= (act.theta != 0) & ~_group_zero(act, lo, hi)  # θ = 0: the identity; a zero group: the line 0
    else:
        p = pieces(act, d)
        lower, upper = _frame(p, lo, hi, -1), _frame(p, lo, hi, 1)
    return SlopeFamily(base, lower, upper, finite & ~lower.affine, finite & ~upper.affine)


# ---------------------------------------------------------------------------- back-substitution
def _gamma(n: int) -> float:
    """An upper bound on ``γ_n = nu/(1 − nu)`` (u = 2⁻⁵³): ``2nu`` for ``nu ≤ ½``."""
    return float(up(2.0 * n * _U))


def _nonneg(x: np.ndarray) -> np.ndarray:
    """NaN (an ``0·inf`` of an overflowed term) as ``+inf``."""
    return np.where(np.isnan(x), np.inf, x)


def row_norm2_upper(A: np.ndarray) -> np.ndarray:
    """Rigorous upper bounds on the ℓ2 norms of the rows of ``A`` (per row the scaling of
    :func:`unfoldtheory.rounding.norm_upper`: a power of two, the squares' sum inflated, the root rounded up)."""
    M = np.abs(A)
    amax = np.max(M, axis=1) if M.shape[1] else np.zeros(M.shape[0])
    _, e = np.frexp(amax)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        S = up(np.ldexp(M, -e[:, None]))
        total = inflate(np.sum(S * S, axis=1), M.shape[1] + 1)
        out = up(np.ldexp(up(np.sqrt(total)), e))
    return np.where(amax == 0, 0.0, _nonneg(np.where(np.isfinite(amax), out, np.inf)))


def concretise_lower(A0: np.ndarray, c: np.ndarray, region: Region) -> np.ndarray:
    """Per row, a float ``≤ min_{y ∈ region} A0 y + c`` (exact arithmetic on the floats ``A0``, ``c``).

    ``A0 y = A0 y₀ + A0 (y − y₀)``: on ``Ball(y₀, r, 2)`` the second term is ``≥ −r‖a‖₂`` (Cauchy–Schwarz), on
    ``Ball(y₀, r, ∞)`` ``≥ −r‖a‖₁`` (Hölder), on a box (or the enclosing box of any other region) with midpoint
    ``y₀`` and radius ``ρ ≥ |y − y₀|`` it is ``≥ −|A0| ρ``. The computed ``fl(A0 y₀ + c)`` is within
    ``γ_{m+1}(|A0||y₀| + |c|) + (m + 1)η``.
    """
    m = A0.shape[1]
    with np.errstate(over="ignore", invalid="ignore"):
        if isinstance(region, Ball):
            y0 = np.asarray(region.center, dtype=float)
            r = region.radius
            norms = row_norm2_upper(A0) if region.norm == 2 else inflate(np.sum(np.abs(A0), axis=1), m + 1)
            spread = up(norms * r)
        else:
            lo, hi = region.enclosing_box() if not isinstance(region, Box) else (region.lower, region.upper)
            y0 = 0.5 * lo + 0.5 * hi
            rho = up(np.maximum(hi - y0, y0 - lo))
            spread = np.abs(A0) @ rho
        s = A0 @ y0 + c
        err = _gamma(m + 1) * (np.abs(A0) @ np.abs(y0) + np.abs(c)) + (m + 1) * _ETA
        out = down(s - inflate(_nonneg(spread + err), 2 * m + 8))
    return np.where(np.isnan(out), -np.inf, out)


def _coefficients(Aj: np.ndarray, rel: Relaxation,
                  valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For one line per neuron: ``S = fl(Aj·a)`` with the lower slope where ``Aj > 0`` and the upper one elsewhere, the
    lines' constants ``t = Σ fl(Aj·c)`` (a sum of ≤ 2d_j products), ``|Aj|·max(|c_l|, |c_u|)``, the rows that stay valid
    and the columns of ``S`` that may be nonzero. Only the neurons whose two lines differ need the sign of ``Aj``."""
    has_l, has_u = np.isfinite(rel.c_l), np.isfinite(rel.c_u)
    cl, cu = np.where(has_l, rel.c_l, 0.0), np.where(has_u, rel.c_u, 0.0)
    absA = np.abs(Aj)
    valid = valid & np.all(np.isfinite(Aj), axis=1)
    bad = np.flatnonzero(~(has_l & has_u))
    if bad.size:
        Ab = Aj[:, bad]
        valid &= ~np.any(((Ab > 0) & ~has_l[bad]) | ((Ab < 0) & ~has_u[bad]), axis=1)
    two = np.flatnonzero((rel.a_l != rel.a_u) | (cl != cu))
    S = Aj * rel.a_u
    t = Aj @ np.where((rel.a_l != rel.a_u) | (cl != cu), 0.0, cu)
    if two.size:
        AU = Aj[:, two]
        pU = AU > 0
        S[:, two] = np.where(pU, AU * rel.a_l[two], AU * rel.a_u[two])
        t = t + np.where(pU, AU, 0.0) @ cl[two] + np.where(pU, 0.0, AU) @ cu[two]
    S[~valid] = 0.0
    return S, t, absA @ np.maximum(np.abs(cl), np.abs(cu)), valid, (rel.a_l != 0) | (rel.a_u != 0)


def _coefficients_per_row(Aj: np.ndarray, rel: Relaxation,
                          valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_coefficients` for one line per row and neuron (arrays of the shape of ``Aj``)."""
    pos, neg = Aj > 0, Aj < 0
    has_l, has_u = np.isfinite(rel.c_l), np.isfinite(rel.c_u)
    valid = valid & ~np.any((pos & ~has_l) | (neg & ~has_u), axis=1) & np.all(np.isfinite(Aj), axis=1)
    cl, cu = np.where(has_l, rel.c_l, 0.0), np.where(has_u, rel.c_u, 0.0)
    S = np.where(pos, Aj * rel.a_l, np.where(neg, Aj * rel.a_u, 0.0))
    S[~valid] = 0.0
    t = np.sum(np.where(pos, Aj * cl, np.where(neg, Aj * cu, 0.0)), axis=1)
    tc = np.sum(np.abs(Aj) * np.maximum(np.abs(cl), np.abs(cu)), axis=1)
    return S, t, tc, valid, np.any(S != 0, axis=0)


class Backsubstitution:
    """CROWN bounds on the layers of a spec over a region, layer by layer (see :mod:`.bound_propagation`).

    Call :meth:`layer_bounds` for layer ``k`` once :meth:`add_layer` has recorded the final intervals of every layer
    before it (``lo, hi`` of ``v_j`` and ``zl, zh`` of ``z_j``).
    """

    def __init__(self, spec: NetworkSpec, region: Region) -> None:
        self.spec, self.region = spec, region
        lo0, hi0 = region.enclosing_box()
        self.Z: dict[int, np.ndarray] = {0: np.maximum(np.abs(lo0), np.abs(hi0))}
        self.V: dict[int, np.ndarray] = {}
        self.relax: dict[int, Relaxation] = {}
        self.WZ: dict[tuple[int, int], np.ndarray] = {}
        width = max(max(spec.dims), max(sum(spec.dims[j] for j in ws) for ws in spec.weights))
        self.ops = 4 * width + 32

    def add_layer(self, k: int, lo: np.ndarray, hi: np.ndarray, zl: np.ndarray, zh: np.ndarray,
                  relax: Relaxation | None = None) -> None:
        """Record layer ``k``'s intervals and its relaxation on them (``relax``, if already computed as
        ``relaxation(φ_k, lo, hi)``)."""
        self.relax[k] = relaxation(self.spec.activations[k - 1], lo, hi) if relax is None else relax
        self.V[k] = np.maximum(np.abs(lo), np.abs(hi))
        self.Z[k] = np.maximum(np.abs(zl), np.abs(zh))
        with np.errstate(over="ignore", invalid="ignore"):
            for j, w in self.spec.weights[k - 1].items():
                self.WZ[(k, j)] = _nonneg(inflate(np.abs(w) @ self.Z[j], w.shape[1] + 1))

    def layer_bounds(self, k: int, neurons: np.ndarray | None = None,
                     lines: dict[int, Relaxation] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` of ``v_k`` over the region, for the ``neurons`` given (indices; default all): lower bounds
        of the rows ``[v_k; −v_k]``. ``lines`` may replace the relaxation of a layer ``j < k`` by one line per row
        (arrays of shape (2·len(neurons), d_j), from :meth:`SlopeFamily.lines`)."""
        spec = self.spec
        idx = np.arange(spec.dims[k]) if neurons is None else np.asarray(neurons, dtype=int)
        d = idx.size
        A = {j: np.vstack([w[idx], -w[idx]]) for j, w in spec.weights[k - 1].items()}
        b = spec.biases[k - 1][idx]
        c = np.concatenate([b, -b])
        e = np.zeros(2 * d)
        valid = np.ones(2 * d, dtype=bool)
        lines = lines or {}
        with np.errstate(over="ignore", invalid="ignore"):
            for j in range(k - 1, 0, -1):
                if j not in A:
                    continue
                e, c, valid = self._step(A, j, lines.get(j, self.relax[j]), c, e, valid)
            A0 = A.pop(0, np.zeros((2 * d, spec.input_dim)))
            valid &= np.all(np.isfinite(A0), axis=1) & np.isfinite(c) & np.isfinite(e)
            low = down(concretise_lower(A0, c, self.region) - e)
        low = np.where(valid & ~np.isnan(low), low, -np.inf)
        return low[:d], -low[d:]

    def _step(self, A: dict[int, np.ndarray], j: int, rel: Relaxation, c: np.ndarray, e: np.ndarray,
              valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Replace ``Â_j z_j`` by its relaxation ``rel`` (one line per neuron, or per row and neuron) and ``v_j`` by
        ``Σ_i W_ji z_i + b_j`` (module docstring of :mod:`.bound_propagation`: every rounded operation adds its error
        bound to ``e``)."""
        spec = self.spec
        Aj = A.pop(j)
        S, t, tc, valid, nz = (_coefficients if rel.a_l.ndim == 1 else _coefficients_per_row)(Aj, rel, valid)
        absS, dj = np.abs(S), spec.dims[j]
        frac = rel.fractional
        # the relaxation's constants, S b_j, added to c: one sum of ≤ 4d_j + 1 terms (any order)
        sb = S @ spec.biases[j - 1]
        c_new = c + t + sb
        terms = [_gamma(4 * dj + 1) * (np.abs(c) + tc + absS @ np.abs(spec.biases[j - 1])) + (4 * dj + 1) * _ETA]
        if np.any(frac):  # rounded products coefficient × slope: ≤ (2u|Ŝ| + 2η)|v_j|
            Vf = np.where(frac, self.V[j], 0.0)
            if Vf.ndim == 1:
                terms.append(2.0 * _U * (absS @ Vf) + 2.0 * _ETA * np.sum(Vf))
            else:
                terms.append(2.0 * _U * np.sum(absS * Vf, axis=1) + 2.0 * _ETA * np.sum(Vf, axis=1))
        Snz, absSnz = S[:, nz], absS[:, nz]
        n = int(np.sum(nz)) + 1
        for i, w in spec.weights[j - 1].items():
            P = Snz @ w[nz]
            WZ = self.WZ[(j, i)][nz]
            if i in A:
                terms.append(_gamma(n) * (np.abs(A[i]) @ self.Z[i] + absSnz @ WZ) + n * _ETA * np.sum(self.Z[i]))
                A[i] = A[i] + P
            else:
                terms.append(_gamma(n) * (absSnz @ WZ) + n * _ETA * np.sum(self.Z[i]))
                A[i] = P
        step = inflate(_nonneg(np.sum(terms, axis=0)), self.ops + len(terms))
        return up(e + step), c_new, valid


__all__ = ["Backsubstitution", "Pieces", "Relaxation", "SlopeFamily", "concretise_lower", "constant", "nonaffine", "pieces",
           "relaxation", "row_norm2_upper", "shrink_to_stable", "slope_family"]
