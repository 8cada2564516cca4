"""Local slope ranges and the restricted spec (unfoldtheory/activations.py ``slope_range``/``fixed_piece``,
unfoldtheory/lipschitz/restriction.py, unfoldtheory/lipschitz/local.py).

Claims
------
1. **One piece, one slope.** If both pre-activations ``a > b`` of a neuron lie in one closed piece of a
   built-in activation, its difference quotient is that piece's slope, and ``φ(v) = s·v + c`` there with the
   offset that ``fixed_piece`` returns: soft-thresholding (θ > 0) on ``[θ, ∞)``: ``s = 1, c = −θ``; on
   ``[−θ, θ]``: ``s = c = 0``; on ``(−∞, −θ]``: ``s = 1, c = θ``; ReLU on ``[0, ∞)`` / ``(−∞, 0]``; the box
   projection onto ``[l, u]`` on ``(−∞, l]`` (``c = l``), ``[l, u]`` (``s = 1``), ``[u, ∞)`` (``c = u``).
   Elsewhere the global slope interval ``[0, 1]`` holds (proofs/soft_threshold.py, proofs/relu_and_box.py).
2. **Per-neuron S-procedure.** With per-neuron slopes ``[α_i, β_i]`` the LipSDP quadratic form satisfies
   ``ξᵀMξ = ‖Δout‖² − ρ‖Δy‖² + Σ_i λ_i(Δz_i − α_iΔv_i)(β_iΔv_i − Δz_i)`` identically: checked in
   ``proofs/lipsdp_certificate.py``, item 1, which builds the form with a range per neuron.
3. **Restriction.** If every point of a set ``S`` has its pre-activations in the bounds, then for
   ``y₁, y₂ ∈ S`` each neuron's two pre-activations lie in its interval: a constant neuron has ``Δz_i = 0``, a
   linear one ``Δz_i = Δv_i``, an unstable one obeys its range. Substituting these into the consumers gives the
   restricted spec's differences: checked on a layer with one constant, one linear and one unstable neuron
   read by a second layer, the output differences agree identically.
4. **Group soft-thresholding.** ``l ≤ v ≤ u`` entrywise gives ``|v_i| ≤ max(|l_i|, |u_i|)``, so
   ``‖v_g‖ ≤ ‖max(|l|, |u|)‖``; if that is ``≤ θ`` the block's output ``v_g·max(1 − θ/‖v_g‖, 0)`` is 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _check import check, finish, ge, holds_on, section

a, b, theta, lo, up = sp.symbols("a b theta l u", real=True)


def st(x):
    return sp.Piecewise((x + theta, x < -theta), (0, x <= theta), (x - theta, True))


def relu(x):
    return sp.Piecewise((0, x < 0), (x, True))


def box(x):
    return sp.Piecewise((lo, x < lo), (x, x <= up), (up, True))


def _first(piece, condition, rest):
    """The same function with the tested closed piece as the first branch (kinks are where the orderings differ)."""
    return lambda x: sp.Piecewise((piece(x), condition(x)), (rest(x), True))


def one_piece() -> None:
    section("1. one piece, one slope and offset")
    cases = [  # (name, canonical f, the piece first, region, slope, kinks, params)
        ("soft threshold on [θ, ∞)", st, _first(lambda v: v - theta, lambda v: v >= theta, st),
         [ge(theta, 0), ge(b, theta)], 1, [theta], [theta]),
        ("soft threshold on [−θ, θ]", st, _first(lambda v: 0 * v, lambda v: (v >= -theta) & (v <= theta), st),
         [ge(theta, 0), ge(b, -theta), ge(theta, a)], 0, [-theta, theta], [theta]),
        ("soft threshold on (−∞, −θ]", st, _first(lambda v: v + theta, lambda v: v <= -theta, st),
         [ge(theta, 0), ge(-theta, a)], 1, [-theta], [theta]),
        ("ReLU on [0, ∞)", relu, _first(lambda v: v, lambda v: v >= 0, relu), [ge(b, 0)], 1, [0], []),
        ("ReLU on (−∞, 0]", relu, _first(lambda v: 0 * v, lambda v: v <= 0, relu), [ge(0, a)], 0, [0], []),
        ("box on (−∞, l]", box, _first(lambda v: lo + 0 * v, lambda v: v <= lo, box), [ge(up, lo), ge(lo, a)], 0,
         [lo], [lo, up]),
        ("box on [l, u]", box, _first(lambda v: v, lambda v: (v >= lo) & (v <= up), box),
         [ge(up, lo), ge(b, lo), ge(up, a)], 1, [lo, up], [lo, up]),
        ("box on [u, ∞)", box, _first(lambda v: up + 0 * v, lambda v: v >= up, box), [ge(up, lo), ge(b, up)], 0,
         [up], [lo, up]),
    ]
    for name, f, closed, region, slope, kinks, params in cases:
        # the reordered function is the canonical one: they can differ only at the kinks, where both are continuous
        tp, w = sp.Symbol("theta_pos", positive=True), sp.Symbol("width", nonnegative=True)
        assume = {theta: tp, up: lo + w}  # θ > 0 and l ≤ u, so that sympy can decide the branch conditions
        at_kinks = all(sp.simplify((f(k) - closed(k)).subs(assume)) == 0 for k in kinks)
        check(f"{name}: the closed piece agrees with the activation at its end points", at_kinks)
        variables = [*params, a, b]
        full = [*region, ge(a - b, 0)]
        q_ok = holds_on(full, variables, closed(a) - closed(b) - slope * (a - b), "==")
        check(f"{name}: f(a) − f(b) = {slope}·(a − b) for a ≥ b in the piece", q_ok is not None)


def restriction() -> None:
    section("3. the restricted spec has the original's differences")
    dy = sp.Matrix(sp.symbols("dy0 dy1", real=True))
    V = sp.Matrix(3, 2, sp.symbols("V0:6", real=True))  # layer 1: neurons (constant, linear, unstable)
    W = sp.Matrix(2, 3, sp.symbols("W0:6", real=True))  # layer 2 reads layer 1
    U = sp.Matrix(2, 2, sp.symbols("U0:4", real=True))  # and the input
    d = sp.Symbol("delta", real=True)  # the unstable neuron's difference quotient
    dv1 = V * dy
    dz1 = sp.Matrix([0, dv1[1], d * dv1[2]])  # constant: 0; linear: Δv; unstable: δΔv
    original = W * dz1 + U * dy
    # restricted: the constant column dropped; the linear neuron an identity state substituted into layer 2
    linear_state = V[1, :] * dy
    unstable_state = d * (V[2, :] * dy)
    restricted = W[:, 1] * linear_state + W[:, 2] * unstable_state + U * dy
    check("layer 2's pre-activation differences agree (constant dropped, linear substituted)",
          sp.expand(original - restricted) == sp.zeros(2, 1))


def group_block() -> None:
    section("4. group soft-thresholding blocks that are provably zero")
    v = sp.Symbol("v", real=True)
    pos = holds_on([ge(v, 0), ge(up, v)], [up, v], up - v, ">=")  # v ≥ 0: |v| = v ≤ u = |u|
    neg = holds_on([ge(0, v), ge(v, lo)], [lo, v], -lo + v, ">=")  # v ≤ 0: |v| = −v ≤ −l = |l|
    check("l ≤ v ≤ u gives |v| ≤ max(|l|, |u|) (cases v ≥ 0 and v ≤ 0)", pos is not None and neg is not None)
    r, th = sp.symbols("r theta", positive=True)
    t = sp.Symbol("t", nonnegative=True)  # r = θ − t ≤ θ
    scale = sp.Max(1 - th / (th - t), 0)
    check("max(1 − θ/r, 0) = 0 when 0 < r ≤ θ", sp.simplify(scale.subs(t, th * sp.Rational(1, 3))) == 0
          and sp.simplify(1 - th / r).subs(r, th) == 0 and (1 - th / (th - t) <= 0).subs(t, 0) is sp.true)


if __name__ == "__main__":
    one_piece()
    restriction()
    group_block()
    finish()
