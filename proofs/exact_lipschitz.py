"""The exact Lipschitz constant of a piecewise-linear spec is max ‖J_R‖ over its regions with interior
(unfoldtheory/lipschitz/exact.py, unfoldtheory/lipschitz/polyhedra.py).

Setting. Every activation is a built-in ReLU, soft-threshold, box projection or identity. Each neuron has
finitely many *phases*, closed intervals I of its pre-activation v on which phi(v) = s*v + o, and the phases
of a neuron cover the real line (claim 1). A *pattern* sigma picks one phase per neuron; fixing the phases of
layers 1..k-1 makes every state z_j (j < k) affine in y, so layer k's pre-activations are affine in y and the
inputs consistent with sigma form a closed polyhedron P_sigma = {y : G y <= h}, on which f(y) = J_sigma y + c
(claim 2: phi is affine on its *closed* phases).

Theorem. L := sup_{y1 != y2} ||f(y1) - f(y2)|| / ||y1 - y2|| = max { ||J_sigma||_2 : P_sigma has an interior }.

Proof.
(a) The P_sigma cover R^m (each y picks, per neuron in topological order, a phase containing its pre-activation,
    claim 1). A closed polyhedron without interior lies in a hyperplane; finitely many hyperplanes have a dense
    complement, so the union U of the full-dimensional P_sigma is closed (finite union) and dense: U = R^m.
(b) Upper bound. For y1, y2 the segment y(t) = y1 + t(y2 - y1), t in [0, 1], meets each full-dimensional
    P_sigma in a closed interval of t (convexity); finitely many such closed intervals cover [0, 1] by (a), so
    there are 0 = t_0 < ... < t_r = 1 with [t_{j-1}, t_j] inside one full-dimensional P_{sigma_j}. f is affine on
    each, so f(y(t_j)) - f(y(t_{j-1})) = J_{sigma_j} (t_j - t_{j-1})(y2 - y1), and the triangle inequality
    telescopes: ||f(y2) - f(y1)|| <= sum_j (t_j - t_{j-1}) ||J_{sigma_j}|| ||y2 - y1|| <= max ||J|| ||y2 - y1||
    (claim 3 checks the two-piece case, with the continuity at the break point, symbolically).
(c) Lower bound. If P_sigma has an interior point y0, a ball B(y0, r) lies in it and f is affine there: the pair
    y0 +- (r/2) u, u the top right singular vector of J_sigma, has ratio ||J_sigma||.
Hence L = max. A pair on which the spec is re-evaluated rigorously (forward_error.certified_ratio) is a
certified lower bound whatever region it lies in.

Search (exact.py). A node fixes the phases of the first t neurons (topological order); its inputs are a
polyhedron P, and its children (the phases of neuron t + 1) cover P by claim 1. So every full-dimensional
P_sigma lies in a leaf of every node's subtree that contains it, and the leaves below a node cover it.
* Node bound. restrict() gives fixed neurons their phase interval, free neurons (-inf, inf); every slope-based
  certificate on the restricted spec bounds ||f(y1) - f(y2)|| / ||y1 - y2|| for all y1, y2 in P (restriction.py,
  proofs/local_slopes.py). For a region R in P with an interior, the pair of (c) lies in R, hence in P, and its
  ratio is ||J_R||: the bound covers ||J_R|| for EVERY pattern of the free neurons, whatever their phases.
  Vertex enumeration over the unstable neurons is such a certificate (agnostic.py: J is affine in each slope),
  and so is LipSDP-Neuron with re-checked multipliers (sdp.py, certificate.py) and the product bound.
* Lazy bounds. A node is queued with its parent's bound; its polyhedron lies in the parent's, so every region
  with interior in it is a region of the parent and the parent's bound covers it. Its own bound, computed when
  it first reaches the top, replaces the inherited one only if smaller (min of two valid bounds).
* Forced phases. If every child but one is proved interior-free, every region with interior of the node lies
  in the remaining child (the children cover the node); expanding it at once without queueing the node is the
  pruning rule below applied to its siblings.
* Pruning. A child is dropped only when an exact Gordan-Farkas vector proves that its polyhedron has no interior
  (claims 4, 5); such a child contains no region with interior. Best-first: the value returned is the largest
  bound among the nodes still queued. Every region with interior lies in exactly one queued node or leaf at any
  time (children replace their parent, and only interior-free ones are dropped), so by the theorem that largest
  bound is >= L: the returned value is a certified upper bound at every stopping point, closed or not.

Claims checked here:
1. The phases of ReLU, soft-thresholding (theta > 0) and the box projection (l < u) cover the real line.
2. On each closed phase the activation equals its affine piece, at the ends included.
3. Two-piece telescoping: with a break point ym = y1 + t(y2 - y1) and pieces agreeing at ym (continuity),
   f(y2) - f(y1) = J1 (ym - y1) + J2 (y2 - ym) identically, the two steps are t and 1 - t times y2 - y1, and
   t*L1 + (1 - t)*L2 <= max(L1, L2) for t in [0, 1].
4. Farkas. If lam >= 0, lam != 0, sum lam_i g_i = 0 then for every y, sum lam_i (g_i y - h_i) = -lam.h; so
   lam.h < 0 contradicts G y <= h (the polyhedron is empty), checked on two rows in the plane.
5. No interior. If lam.h = 0 and every g_i with lam_i > 0 is nonzero: at an interior point y0 each such row is
   strict (y0 + eps g/|g|^2 stays in a ball around y0 and has g y = g y0 + eps), so 0 = sum lam_i g_i y0 <
   lam.h = 0, a contradiction. Checked: the shifted point raises g y by exactly eps.
"""

import sympy as sp
from _check import check, check_cover, finish, ge, gt, section

v, theta, lo, up = sp.symbols("v theta l u", real=True)


def _affine_on(f, piece, lo_end, hi_end, assumptions):
    """f equals piece on [lo_end, hi_end]: at both (finite) ends and at an interior point (affine pieces)."""
    points = [p for p in (lo_end, hi_end) if p is not None]
    if lo_end is not None and hi_end is not None:
        points.append((lo_end + hi_end) / 2)
    elif lo_end is not None:
        points.append(lo_end + 1)
    elif hi_end is not None:
        points.append(hi_end - 1)
    return all(sp.simplify(sp.refine((f(p) - piece.subs(v, p)), assumptions)) == 0 for p in points)


section("1. phases cover the real line")
check_cover("ReLU", [("v <= 0", lambda x: [ge(-x)]), ("v >= 0", lambda x: [ge(x)])])
check_cover("soft-threshold", [("v <= -theta", lambda x: [ge(-theta - x)]),
                               ("-theta <= v <= theta", lambda x: [ge(x + theta), ge(theta - x)]),
                               ("v >= theta", lambda x: [ge(x - theta)])], params=[theta], assumptions=[gt(theta)])
check_cover("box", [("v <= l", lambda x: [ge(lo - x)]), ("l <= v <= u", lambda x: [ge(x - lo), ge(up - x)]),
                    ("v >= u", lambda x: [ge(x - up)])], params=[lo, up], assumptions=[gt(up - lo)])

section("2. the activation is affine on each closed phase, ends included")
th = sp.Symbol("theta", positive=True)
bl = sp.Symbol("l", real=True)
dd = sp.Symbol("d", positive=True)  # the upper end u = l + d


def relu(x):
    return sp.Max(x, 0)


def st(x):
    return sp.sign(x) * sp.Max(sp.Abs(x) - th, 0)


def box(x):
    return sp.Min(sp.Max(x, bl), bl + dd)


check("ReLU: 0 on (-oo, 0], v on [0, oo)",
      _affine_on(relu, sp.Integer(0), None, 0, True) and _affine_on(relu, v, 0, None, True))
check("soft-threshold: v + theta on (-oo, -theta], 0 on [-theta, theta], v - theta on [theta, oo)",
      _affine_on(st, v + th, None, -th, True) and _affine_on(st, sp.Integer(0), -th, th, True)
      and _affine_on(st, v - th, th, None, True))
check("box: l on (-oo, l], v on [l, u], u on [u, oo)",
      _affine_on(box, bl + 0 * v, None, bl, True) and _affine_on(box, v, bl, bl + dd, True)
      and _affine_on(box, bl + dd + 0 * v, bl + dd, None, True))

section("3. two-piece telescoping along a segment")
t = sp.Symbol("t", nonnegative=True)
J1 = sp.Matrix(2, 2, sp.symbols("a0:4", real=True))
J2 = sp.Matrix(2, 2, sp.symbols("b0:4", real=True))
c1 = sp.Matrix(sp.symbols("c0:2", real=True))
y1 = sp.Matrix(sp.symbols("p0:2", real=True))
y2 = sp.Matrix(sp.symbols("q0:2", real=True))
ym = y1 + t * (y2 - y1)
c2 = J1 * ym + c1 - J2 * ym  # continuity: the two affine pieces agree at the break point
diff = (J2 * y2 + c2) - (J1 * y1 + c1)
check("f(y2) - f(y1) = J1 (ym - y1) + J2 (y2 - ym) when the pieces agree at ym",
      sp.simplify(diff - (J1 * (ym - y1) + J2 * (y2 - ym))) == sp.zeros(2, 1))
check("ym - y1 = t (y2 - y1) and y2 - ym = (1 - t)(y2 - y1): the step lengths add up to ||y2 - y1||",
      sp.simplify(ym - y1 - t * (y2 - y1)) == sp.zeros(2, 1) and sp.simplify(y2 - ym - (1 - t) * (y2 - y1)) == sp.zeros(2, 1))
L1, gap = sp.symbols("L1 g", nonnegative=True)
s = sp.Symbol("s", nonnegative=True)  # t = s / (1 + s) ranges over [0, 1)
tt = s / (1 + s)
check("t L1 + (1 - t) L2 <= L2 when L1 <= L2 = L1 + g, t in [0, 1]",
      sp.simplify((L1 + gap) - (tt * L1 + (1 - tt) * (L1 + gap))).is_nonnegative)

section("4. Farkas: lam >= 0, sum lam_i g_i = 0, lam.h < 0 empties {G y <= h}")
g1 = sp.Matrix(sp.symbols("g0:2", real=True)).T
lam1, lam2 = sp.symbols("lam1 lam2", positive=True)
h1, h2 = sp.symbols("h1 h2", real=True)
y = sp.Matrix(sp.symbols("y0:2", real=True))
g2 = -(lam1 / lam2) * g1  # the combination lam1 g1 + lam2 g2 vanishes
combo = sp.expand(lam1 * ((g1 * y)[0] - h1) + lam2 * ((g2 * y)[0] - h2))
check("sum lam_i (g_i y - h_i) = -(lam1 h1 + lam2 h2) for every y", sp.simplify(combo + lam1 * h1 + lam2 * h2) == 0)
check("each term lam_i (g_i y - h_i) <= 0 on the polyhedron, so their sum -lam.h <= 0: lam.h < 0 is a contradiction",
      (lam1 * sp.Symbol("r1", nonpositive=True) + lam2 * sp.Symbol("r2", nonpositive=True)).is_nonpositive)

section("5. no interior: nonzero rows are strict at interior points")
eps = sp.Symbol("epsilon", positive=True)
y0 = sp.Matrix(sp.symbols("z0:2", real=True))
gg = sp.Matrix(sp.symbols("w0:2", real=True)).T
nrm2 = (gg * gg.T)[0]
shifted = y0 + eps * gg.T / nrm2
check("g (y0 + eps g/|g|^2) = g y0 + eps for g != 0", sp.simplify((gg * shifted)[0] - (gg * y0)[0] - eps) == 0)
check("the shift has length eps/|g|, inside any ball around y0 for small eps",
      sp.simplify(((shifted - y0).T * (shifted - y0))[0] - eps ** 2 / nrm2) == 0)
strict = sp.Symbol("r", negative=True)  # g_i y0 - h_i < 0 on the rows with lam_i > 0
check("sum lam_i (g_i y0 - h_i) < 0 when every such row is strict, contradicting sum = -lam.h = 0",
      (lam1 * strict + lam2 * strict).is_negative)

finish()
