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

Search (exact.py). A node fixes the phases of the first t neurons: layer by layer, and within a layer in any fixed
order (once layers 1..k-1 are fixed, every pre-activation of layer k is affine in y); its inputs are a
polyhedron P, and its children (the phases of neuron t + 1) cover P by claim 1. So every full-dimensional
P_sigma lies in a leaf of every node's subtree that contains it, and the leaves below a node cover it.
* Node bound. restrict() gives fixed neurons their phase interval, free neurons (-inf, inf) or the node's bounds
  (node intervals below; any bounds that hold on P serve); every slope-based
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
* Node intervals (exact_box.py). Bounds lo <= v(y) <= hi valid for every y in P (claims 6, 7). If [lo, hi] lies in
  one closed phase I_p, the child with phase p is P itself: it replaces P with no new row ("forced"), and the cover
  is unchanged. Otherwise the children whose phase meets [lo, hi] in at most a point are not built: such a child
  is empty, or lies in the hyperplane v = end, whose points belong (closed phases) to the neighbouring phase, which
  meets [lo, hi] in an interval and is kept (claim 8): the kept children still cover P. Bounds that cross (lo > hi)
  prove P empty: its bound is 0. The node bound is the certificate on restrict() with these intervals (valid on
  P: restriction.py's claim needs exactly bounds that hold on the set).
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
6. Enclosing box. Rows known within errors: the exact rows are M*_i = M_i + D_i, g0*_i = g0_i + d0_i with
   |D_i| <= E_i, |d0_i| <= e0_i, and P = {y : M*_i y + g0*_i <= r_i}. For mu >= 0 and a direction d:
   d.y = (d - sum mu_i M_i).y + sum mu_i (M*_i y) - sum mu_i D_i y, and M*_i y <= r_i - g0*_i <= t_i := r_i - g0_i + e0_i
   on P, so d.y <= sum mu_i t_i + (||d - M^T mu||_1 + ||E^T mu||_1) ||y||_inf =: beta_d + rho_d ||y||_inf (Hoelder).
   Taking d = +-e_j for all j: ||y||_inf <= B + R ||y||_inf with B = max beta_d, R = max rho_d, and R < 1 gives
   ||y||_inf <= B/(1 - R) for this y (no a-priori bound on y is used: ||y||_inf is a finite number). Checked: the
   identity for d.y, and the fixed point step.
7. Intervals over P. Every interval that the propagation uses at layer k holds for y in P (the phase intervals of
   fixed neurons hold on P by definition; those of earlier layers by induction), and every relaxation line of
   CROWN holds wherever v_j lies in its interval; concretising over the box (a superset of P) bounds the minimum
   over P. So each computed bound holds for every y in P (bound_propagation.py's rounding argument is unchanged:
   it needs |z_j| bounds that hold at the points considered, which the same intervals give). Checked: a minimum
   over a superset is a lower bound for the subset (one line, shown on an example), and the intersection of two
   intervals that hold at y holds at y.
8. Dropped children. For soft-thresholding (theta = 1) and the box [-1, 1] on a grid of intervals [lo, hi] with
   rational end points: when no phase contains [lo, hi], every v in [lo, hi] (grid points, end points included)
   lies in a phase that meets [lo, hi] in more than a point (the kept ones).
9. Local constant over a convex region C with an interior (exact_bound(region=...)).
   Theorem. L_C := sup over y1 != y2 in C of the ratio = max { ||J_sigma|| : P_sigma ∩ C has an interior }.
   (a') The closed sets P_sigma ∩ C cover C; those without interior lie in finitely many hyperplanes H, and
   int C minus H is dense in C (C convex with an interior: C lies in the closure of int C, and removing finitely many
   hyperplanes from an open set leaves a dense subset of it), so the union of the P_sigma ∩ C with interior, a closed
   set containing int C minus H, is all of C. (b') For y1, y2 in C the segment lies in C (convexity, checked below for a
   box and a disc), and meets each P_sigma ∩ C with interior in a closed interval of t; these cover [0, 1] by (a'),
   and (b)'s telescoping gives the ratio <= the max. (c') An interior point y0 of P_sigma ∩ C has a ball around it in
   P_sigma ∩ C: the pair of (c) lies in C and has ratio ||J_sigma||. A pair checked to lie in C exactly
   (local_lower.inside_exactly) and re-evaluated rigorously is a certified lower bound on L_C.
   Search. The root polyhedron is a box B ⊇ C (C itself for a Box; a Ball's enclosing box rounded outward), its
   rows +-y_j <= +-end_j exact (float64 ends are rationals). The invariant of the global search becomes: every sigma
   with P_sigma ∩ C of nonempty interior has P_sigma ∩ B in a queued node, and the node's bound is >= ||J_sigma||.
   Children still cover their parent (claim 1), an interior-free node holds no such sigma (claims 4, 5, on the input
   rows too), a node's certificate bounds the ratios of pairs in its polyhedron (which contains the pair of (c')),
   node intervals from B ∩ (LP box) hold on the node (claims 6, 7: both boxes contain it), and the root's bound,
   local_upper_bound(C) >= L_C, is >= ||J_sigma|| for each such sigma by (c'). So the largest queued bound is
   >= L_C, and the interval [lower, upper] contains L_C.
   Intervals on P ∩ C. Every step above that uses node intervals needs them only on P ∩ C, where the regions of the
   invariant live: a certificate from intervals that hold on P ∩ C bounds the ratios of pairs in P ∩ C (the pair of
   (c') is one); intervals that cross prove P ∩ C empty; a phase they force holds on P ∩ C, so the child without a new
   row, whose later rows use that phase's maps, agrees with the true pre-activations on P ∩ C (induction over the
   layers) and still holds every sigma of the invariant; the kept children cover P ∩ C (claim 8). So for a ball the
   root's intervals may be the ball's CROWN bounds intersected with the box's (bound_propagation.py: valid on C).
   Ball pruning. If lam >= 0 aggregates the exact rows of a node into g.y <= h (valid on P) and, with c the ball's
   centre, gap := g.c - h >= 0 and gap^2 >= r^2 |g|^2, then for y in P and |y - c| <= r: g.(y - c) <= -gap <= -r|g|
   and g.(y - c) >= -|g| |y - c| >= -r|g| (Cauchy-Schwarz), so equality holds: P ∩ ball lies in a hyperplane (g != 0)
   or is empty (g = 0, gap > 0: 0 <= h < 0): no interior, the node holds no sigma of the invariant (checked below).
"""

from fractions import Fraction

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

section("6. enclosing box: d.y <= beta + rho ||y||, and the fixed point")
mu1, mu2 = sp.symbols("mu1 mu2", nonnegative=True)
dvec = sp.Matrix(sp.symbols("d0:2", real=True))
Mrow = [sp.Matrix(sp.symbols(f"M{i}_0:2", real=True)).T for i in range(2)]
Drow = [sp.Matrix(sp.symbols(f"D{i}_0:2", real=True)).T for i in range(2)]
yy = sp.Matrix(sp.symbols("x0:2", real=True))
mus = [mu1, mu2]
residual = dvec.T - sum((mus[i] * Mrow[i] for i in range(2)), sp.zeros(1, 2))
exact_part = sum((mus[i] * ((Mrow[i] + Drow[i]) * yy)[0] for i in range(2)), 0)
error_part = sum((mus[i] * (Drow[i] * yy)[0] for i in range(2)), 0)
check("d.y = (d - sum mu_i M_i).y + sum mu_i (M*_i y) - sum mu_i D_i y, M* = M + D",
      sp.expand((dvec.T * yy)[0] - ((residual * yy)[0] + exact_part - error_part)) == 0)
Yn, Bb = sp.symbols("Y B", nonnegative=True)
Rr = sp.Symbol("R", nonnegative=True)
slack = sp.Symbol("s", nonnegative=True)  # B + R Y - Y = s >= 0
Rval = sp.Symbol("q", positive=True)  # 1 - R = q > 0
check("Y <= B + R Y with R < 1 gives Y <= B/(1 - R): B/(1 - R) - Y = (B + R Y - Y)/(1 - R)",
      sp.simplify(Bb / (1 - Rr) - Yn - (Bb + Rr * Yn - Yn) / (1 - Rr)) == 0
      and (slack / Rval).is_nonnegative)

section("7. bounds over a superset hold on the subset; intersections of valid bounds are valid")
grid = [sp.Rational(k, 4) for k in range(-8, 9)]
box_pts = [(a, b) for a in grid for b in grid]
sub_pts = [(a, b) for a, b in box_pts if a + b <= 0 and a >= -1]  # a subset of the box
obj = [3 * a - 2 * b for a, b in box_pts]
check("min over the box <= min over a subset of it (a lower bound there)", min(obj) <= min(3 * a - 2 * b for a, b in sub_pts))
lo1, hi1, lo2, hi2, vv = sp.symbols("l1 h1 l2 h2 v", real=True)
check("l1 <= v <= h1 and l2 <= v <= h2 imply max(l1, l2) <= v <= min(h1, h2)",
      all(max(a, c) <= x <= min(b, e) for a, b, c, e, x in
          [(sp.Rational(p, 2), sp.Rational(p + 3, 2), sp.Rational(q, 2), sp.Rational(q + 4, 2), sp.Rational(r, 2))
           for p in range(-4, 3) for q in range(-4, 3) for r in range(-6, 8)]
          if a <= x <= b and c <= x <= e))

section("8. the kept children cover the node")
one = sp.Integer(1)
for name, phases in (("soft-threshold (theta = 1)", [(-sp.oo, -one), (-one, one), (one, sp.oo)]),
                     ("box [-1, 1]", [(-sp.oo, -one), (-one, one), (one, sp.oo)]), ("ReLU", [(-sp.oo, 0), (0, sp.oo)])):
    pts = [sp.Rational(k, 4) for k in range(-12, 13)]
    ok = True
    for lo_ in pts:
        for hi_ in pts:
            if lo_ > hi_ or any(a <= lo_ and hi_ <= b for a, b in phases):
                continue
            kept = [(a, b) for a, b in phases if sp.Max(lo_, a) < sp.Min(hi_, b)]
            ok &= all(any(a <= x <= b for a, b in kept) for x in pts if lo_ <= x <= hi_)
    check(f"{name}: every v in [lo, hi] lies in a kept phase when no phase contains [lo, hi]", bool(ok))

section("9. the local constant over a convex region: segments stay in the region, box rows are exact")
tt9 = sp.Symbol("t", nonnegative=True)
pts9 = [sp.Rational(k, 3) for k in range(-4, 5)]
box_lo, box_hi = sp.Rational(-1, 2), sp.Rational(4, 3)
inside_box = [p for p in pts9 if box_lo <= p <= box_hi]
check("box: l <= a, b <= u and t in [0, 1] give l <= (1 - t) a + t b <= u (grid of a, b, t)",
      all(box_lo <= (1 - w) * a + w * b <= box_hi for a in inside_box for b in inside_box
          for w in (sp.Integer(0), sp.Rational(1, 4), sp.Rational(1, 2), sp.Integer(1))))
aa = sp.Matrix(sp.symbols("a0:2", real=True))
bb = sp.Matrix(sp.symbols("b0:2", real=True))
ra, rb = sp.symbols("ra rb", nonnegative=True)
gap9 = sp.expand((((1 - tt9) * aa + tt9 * bb).T * ((1 - tt9) * aa + tt9 * bb))[0]
                 - ((1 - tt9) * (aa.T * aa)[0] + tt9 * (bb.T * bb)[0]))
check("disc: |(1 - t) a + t b|^2 = (1 - t)|a|^2 + t|b|^2 - t(1 - t)|a - b|^2 <= max(|a|^2, |b|^2) (centre 0)",
      sp.simplify(gap9 + tt9 * (1 - tt9) * ((aa - bb).T * (aa - bb))[0]) == 0)
gg9 = sp.Matrix(sp.symbols("k0:2", real=True))
dy = sp.Matrix(sp.symbols("e0:2", real=True))
check("Cauchy-Schwarz: (|g|^2 |d|^2) - (g.d)^2 = (g0 d1 - g1 d0)^2 >= 0, so g.d >= -|g| |d| >= -r|g| for |d| <= r",
      sp.expand((gg9.T * gg9)[0] * (dy.T * dy)[0] - ((gg9.T * dy)[0]) ** 2 - (gg9[0] * dy[1] - gg9[1] * dy[0]) ** 2) == 0)
check("a float64 box end is a dyadic rational that converts back exactly (the input rows need no error term)",
      all(float(Fraction(x)) == x and Fraction(x).denominator & (Fraction(x).denominator - 1) == 0
          for x in (0.1, -2.5e-7, 3.0, 1e300, 5e-324)))

finish()
