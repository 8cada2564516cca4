"""Group soft thresholding is firmly nonexpansive, with a symmetric Jacobian with eigenvalues in [0, 1].

Let theta >= 0 and, on one group (a vector v in R^d with r = ||v||_2),

    GST(v) = v * max(1 - theta / r, 0)        (GST(0) = 0),

applied independently to each group of a partition of the coordinates.

Claims:

1. Moreau decomposition: GST = I - P_B, where P_B(v) = v * min(1, theta / r)
   is the projection onto the closed ball B of radius theta (checked in the
   cases r <= theta and r > theta; P_B is shown to satisfy the projection
   inequality <v - P_B v, y - P_B v> <= 0 for every y in B).  Hence GST is the
   prox of theta*||.||_2, whose conjugate is the indicator of B.
   (Bauschke & Combettes, "Convex Analysis and Monotone Operator Theory",
   Ch. 3 (projection theorem, projection onto a ball) and Ch. 14 (Moreau
   decomposition, prox of a norm); Parikh & Boyd, "Proximal Algorithms",
   Sec. 2.5 (Moreau decomposition) and Sec. 6.5 (prox of the Euclidean norm:
   block soft thresholding); Combettes & Pesquet, "Proximal splitting methods
   in signal processing", Sec. 10.2.)
2. T is firmly nonexpansive iff I - T is: the identity
   <(a-Ta)-(b-Tb), a-b> - ||(a-Ta)-(b-Tb)||^2 = <Ta-Tb, a-b> - ||Ta-Tb||^2
   holds in any inner-product space (checked with a generic Gram matrix).
   (Bauschke & Combettes, Ch. 4.)
3. P_B is firmly nonexpansive: <P a - P b, a - b> >= ||P a - P b||^2.  Proved
   dimension-free in Gram quantities ||a||, ||b||, <a, b> by the case analysis
   both inside / both outside / one inside, one outside, using Cauchy-Schwarz
   <a, b> <= ||a|| ||b|| as the only inequality between them.
   (Bauschke & Combettes, Ch. 4: projections onto closed convex sets are
   firmly nonexpansive.)
   Hence GST = I - P_B is firmly nonexpansive (also checked directly).
4. Groups: for a partition of the coordinates, <Dz, Dv> - ||Dz||^2 is the sum
   of the per-group gaps, so the grouped map is firmly nonexpansive.  It is
   not separable across coordinates (an off-diagonal Jacobian entry is
   nonzero), which is why the package declares it non-separable with slope
   interval [0, 1] and firmly nonexpansive.
5. Jacobian: GST is the gradient of the convex function 1/2 dist(v, B)^2 (the
   Moreau envelope of the indicator of B; Bauschke & Combettes Ch. 12).
   For r > theta its Jacobian is J = (1 - theta/r) I + (theta/r^3) v v^T,
   symmetric, with eigenvalue 1 on span{v} and 1 - theta/r on v-perp
   (multiplicity d - 1), both in [0, 1]; for r < theta, J = 0.  Checked in
   d = 3 by direct differentiation and characteristic polynomial, and
   dimension-free via the eigenvector structure.
"""

import itertools

import numpy as np
import sympy as sp
from _check import check, finish, is_nonneg, is_zero, section

theta = sp.Symbol("theta", nonnegative=True)


def gst_factor(r):
    """max(1 - theta/r, 0), with 1 - theta/r written over the common denominator."""
    return sp.Max(sp.together(1 - theta / r), 0)


def proj_factor(r):
    """P_B(v) = proj_factor(||v||) * v: v if ||v|| <= theta, else theta v / ||v||."""
    return sp.Piecewise((1, r <= theta), (theta / r, True))


def inner(p, q, gram):
    """<p, q> for linear combinations p, q of formal vectors, gram[(u, w)] = <u, w>."""
    vectors = {u for pair in gram for u in pair}
    p, q = sp.expand(p), sp.expand(q)
    for x in (p, q):
        if not is_zero(x - sum(x.coeff(u) * u for u in vectors)):
            raise ValueError(f"{x} is not a linear combination of {vectors}")

    def g(u, w):
        return gram[(u, w)] if (u, w) in gram else gram[(w, u)]

    return sum(p.coeff(u) * q.coeff(w) * g(u, w) for u in vectors for w in vectors)


def fne_gap(ta, tb, a, b, gram):
    """<Ta - Tb, a - b> - ||Ta - Tb||^2."""
    return inner(ta - tb, a - b, gram) - inner(ta - tb, ta - tb, gram)


# Positive / nonnegative parameters used to describe the cases.
r, s, s1, s2 = sp.symbols("r s s1 s2", positive=True)
t, e, c = sp.symbols("t e c", nonnegative=True)

section("1. Moreau decomposition GST = I - P_B (scalar factors: GST(v) = g*v, P_B(v) = p*v)")
inside = {theta: r + t}  # 0 < r <= theta; (v = 0 is trivial: GST(0) = P_B(0) = 0)
outside = {r: theta + s}  # r > theta
check("r <= theta: max(1 - theta/r, 0) == 0", is_zero(gst_factor(r).subs(inside)))
check("r <= theta: P_B(v) == v", is_zero(proj_factor(r).subs(inside) - 1))
check("r <= theta: g + p == 1", is_zero((gst_factor(r) + proj_factor(r)).subs(inside) - 1))
check("r > theta: max(1 - theta/r, 0) == 1 - theta/r", is_zero((gst_factor(r) - (1 - theta / r)).subs(outside)))
check("r > theta: P_B(v) == theta v / r", is_zero((proj_factor(r) - theta / r).subs(outside)))
check("r > theta: g + p == 1", is_zero((gst_factor(r) + proj_factor(r)).subs(outside) - 1))

section("1. P_B is the projection onto B = {||y|| <= theta} (Gram form: ||v|| = r, ||y|| = rho, <v, y> = m)")
rho = sp.Symbol("rho", nonnegative=True)
m = sp.Symbol("m", real=True)
vv, yy = sp.symbols("vec_v vec_y")
gram = {(vv, vv): r**2, (yy, yy): rho**2, (vv, yy): m}
pv = proj_factor(r) * vv
variational = inner(vv - pv, yy - pv, gram)
check("r <= theta: P_B v = v lies in B and <v - P_B v, y - P_B v> == 0", is_zero(variational.subs(inside)))
check("r > theta: ||P_B v||^2 == theta^2 (P_B v lies in B)", is_zero(inner(pv, pv, gram).subs(outside) - theta**2))
# Cauchy-Schwarz: m = r*rho - c with c >= 0; v outside: r = theta + s; y in B: theta = rho + e.
value = variational.subs(m, r * rho - c).subs(r, theta + s).subs(theta, rho + e)
check("r > theta, ||y|| <= theta, <v,y> <= r||y||: <v - P_B v, y - P_B v> <= 0", is_nonneg(-value))

section("2. T firmly nonexpansive <=> I - T firmly nonexpansive (generic Gram matrix)")
a, b, ta, tb = sp.symbols("vec_a vec_b vec_Ta vec_Tb")
vectors = [a, b, ta, tb]
generic_gram = {(u, w): sp.Symbol(f"G_{u}_{w}", real=True) for u, w in itertools.combinations_with_replacement(vectors, 2)}
check(
    "<(a-Ta)-(b-Tb), a-b> - ||(a-Ta)-(b-Tb)||^2 == <Ta-Tb, a-b> - ||Ta-Tb||^2",
    is_zero(fne_gap(a - ta, b - tb, a, b, generic_gram) - fne_gap(ta, tb, a, b, generic_gram)),
)

section("3. P_B and GST firmly nonexpansive: Gram form ||a|| = alpha, ||b|| = beta, <a, b> = C")
alpha, beta = sp.symbols("alpha beta", nonnegative=True)
C = sp.Symbol("C", real=True)
gram = {(a, a): alpha**2, (b, b): beta**2, (a, b): C}
print("  assumption (Cauchy-Schwarz): C <= alpha*beta, written C = alpha*beta - c with c >= 0")
cases = {
    # both inside: alpha, beta <= theta (no further assumption is needed, the gap vanishes)
    "a inside, b inside": {},
    # a outside, b inside: alpha = theta + s, beta <= theta i.e. theta = beta + e
    "a outside, b inside": {alpha: beta + e + s, theta: beta + e},
    "a inside, b outside": {beta: alpha + e + s, theta: alpha + e},
    # both outside: alpha = theta + s1, beta = theta + s2
    "a outside, b outside": {alpha: theta + s1, beta: theta + s2},
}
lam, mu = sp.symbols("lambda mu")
gap_p = fne_gap(lam * a, mu * b, a, b, gram)
gap_gst = fne_gap((1 - lam) * a, (1 - mu) * b, a, b, gram)
for name, case in cases.items():
    if name == "a inside, b inside":
        factors = {lam: 1, mu: 1}
    else:
        factors = {lam: proj_factor(alpha).subs(case), mu: proj_factor(beta).subs(case)}
        if any(f.has(sp.Piecewise) for f in factors.values()):
            raise ValueError(f"{name}: the case assumptions do not decide the projection branch")
    p_gap = gap_p.subs(factors).subs(case).subs({C: alpha * beta - c}).subs(case)
    g_gap = gap_gst.subs(factors).subs(case).subs({C: alpha * beta - c}).subs(case)
    print(f"  {name}: lambda = {factors[lam]}, mu = {factors[mu]}, P_B gap = {sp.factor(p_gap)}")
    if name == "a inside, b inside":
        check(f"{name}: P_B gap == 0 (P_B is the identity there, no Cauchy-Schwarz needed)", is_zero(gap_p.subs(factors)))
    check(f"{name}: <P a - P b, a - b> - ||P a - P b||^2 >= 0", is_nonneg(p_gap))
    check(f"{name}: GST gap == P_B gap (claim 2)", is_zero(g_gap - p_gap))
    check(f"{name}: <GST a - GST b, a - b> - ||GST a - GST b||^2 >= 0", is_nonneg(g_gap))

section("4. grouped map: the gap is the sum of the per-group gaps; GST is not separable")
groups = [(0, 1), (2, 3, 4)]
dv = sp.symbols("dv0:5", real=True)
dz = sp.symbols("dz0:5", real=True)
total_gap = sum(z * w for z, w in zip(dz, dv, strict=True)) - sum(z**2 for z in dz)
group_gaps = sum(sum(dz[i] * dv[i] for i in g) - sum(dz[i] ** 2 for i in g) for g in groups)
check("<Dz, Dv> - ||Dz||^2 == sum over groups {0,1}, {2,3,4} of group gaps", is_zero(total_gap - group_gaps))

section("5. Jacobian in d = 3 (region r > theta)")
v = sp.Matrix(sp.symbols("v1:4", real=True))
norm = sp.sqrt((v.T * v)[0])
gst_out = v * (1 - theta / norm)
envelope = (norm - theta) ** 2 / 2  # 1/2 dist(v, B)^2 for ||v|| > theta
grad = sp.Matrix([sp.diff(envelope, x) for x in v])
check("GST == gradient of 1/2 dist(v, B)^2 = 1/2 (||v|| - theta)^2", all(is_zero(x) for x in grad - gst_out))
jac = gst_out.jacobian(v)
jac_formula = (1 - theta / norm) * sp.eye(3) + theta / norm**3 * v * v.T
check("J == (1 - theta/r) I + (theta/r^3) v v^T", all(is_zero(x) for x in jac - jac_formula))
check("J is symmetric", all(is_zero(x) for x in jac - jac.T))
x = sp.Symbol("x")
charpoly = (jac_formula - x * sp.eye(3)).det()
check(
    "det(J - x I) == (1 - x) (1 - theta/r - x)^2",
    is_zero(charpoly - (1 - x) * (1 - theta / norm - x) ** 2),
)
witness = {v[0]: 2, v[1]: 1, v[2]: 0, theta: 1}
check("not separable: dGST_1/dv_2 != 0 at v = (2, 1, 0), theta = 1", jac[0, 1].subs(witness) != 0)
check(
    "r < theta: GST == 0 on the open set r < theta, so J == 0 there",
    is_zero(gst_factor(r).subs(theta, r + s)) and sp.zeros(3, 1).jacobian(v) == sp.zeros(3, 3),
)

section("5. Jacobian eigenstructure, dimension-free (formal v, w with <v, w> = 0)")
fv, fw = sp.symbols("vec_v vec_w")
omega = sp.Symbol("omega", positive=True)
gram = {(fv, fv): r**2, (fw, fw): omega**2, (fv, fw): 0}


def apply_jacobian(z):
    return (1 - theta / r) * z + theta / r**3 * inner(fv, z, gram) * fv


check("J v == 1 * v", is_zero(apply_jacobian(fv) - fv))
check("J w == (1 - theta/r) w for every w perpendicular to v", is_zero(apply_jacobian(fw) - (1 - theta / r) * fw))
eig = (1 - theta / r).subs(outside)
check("r > theta: eigenvalue 1 - theta/r >= 0", is_nonneg(eig))
check("r > theta: eigenvalue 1 - theta/r <= 1", is_nonneg(1 - eig))

section("numeric sanity check (in addition to the proof)")
rng = np.random.default_rng(0)


def gst_numeric(z, th):
    out = np.zeros_like(z)
    for g in groups:
        n = np.linalg.norm(z[list(g)])
        out[list(g)] = 0.0 if n <= th else z[list(g)] * (1 - th / n)
    return out


ok = True
for _ in range(200):
    za, zb, th = rng.normal(size=5) * 2, rng.normal(size=5) * 2, rng.uniform(0, 2)
    dz_n, dv_n = gst_numeric(za, th) - gst_numeric(zb, th), za - zb
    ok = ok and bool(dz_n @ dv_n >= dz_n @ dz_n - 1e-12)
check("<Dz, Dv> >= ||Dz||^2 for 200 random pairs (groups {0,1}, {2,3,4})", ok)

finish()
