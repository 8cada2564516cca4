"""Elementwise linear ops of affine tensors: sums, differences, scalings by constants, negation.

``x + s·y`` of forms adds coefficients; a product with a constant scales each row of every coefficient. The
provenance of a scaled entry stays direct when the factor is a number, or one parameter entry per row of a selection.
``sign``/``abs`` steps of the soft-threshold pattern pass through ``|v| − t`` and ``sign(v)·relu(|v| − t)`` here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from unfoldtheory.spec import NotRepresentable
from unfoldtheory.tracing import provenance as prov
from unfoldtheory.tracing.activation_ops import soft_threshold_pattern
from unfoldtheory.tracing.affine import DTYPE, Affine, per_sample_constant, unit_value
from unfoldtheory.tracing.export import describe
from unfoldtheory.tracing.moves import broadcast
from unfoldtheory.tracing.provenance import Provenance
from unfoldtheory.tracing.refusals import pending_error, unsupported
from unfoldtheory.tracing.values import Const, Context, Pending, out_shape, packet, raw


def _factor(x: Any, like: Affine, node: fx.Node) -> tuple[torch.Tensor, Provenance, bool, float | None]:
    """A constant operand as one sample's vector, its provenance, whether injective, and its value if a number."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return torch.full((like.numel,), float(x), dtype=DTYPE), prov.constant(repr(x)), False, float(x)
    if isinstance(x, Affine) and not x.terms:
        return x.offset, x.offset_prov, False, None
    if isinstance(x, Const):
        vec, injective = per_sample_constant(x.value, like.shape, like.bdim, like.batch, describe(node))
        number = float(x.value.reshape(-1)[0]) if x.value.numel() == 1 and x.prov.kind == "constant" else None
        return vec, x.prov, injective, number
    raise unsupported(node, f" (operand of type {type(x).__name__})")


def add_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    name = packet(node.target)
    alpha = raw(kwargs.get("alpha", args[2] if len(args) > 2 else 1))
    x, y, s = args[0], args[1], float(alpha) * (-1.0 if name == "sub" else 1.0)
    if name == "rsub":
        x, y, s = args[1], args[0], -float(alpha)
    if isinstance(x, Pending) and x.kind == "abs" and isinstance(y, (Const, int, float)) and s != 0:
        t = y if isinstance(y, Const) else Const(torch.tensor(float(y), dtype=DTYPE), prov.constant(repr(y)))
        factor = -s
        t = Const(t.value * factor, t.prov if factor == 1.0 else prov.scaled(t.prov, factor, "scale"))
        return Pending("abs_minus", x.source, x.node, t)
    for v in (x, y):
        if isinstance(v, Pending):
            raise pending_error(v)
    shape = out_shape(node, args, kwargs)
    if not isinstance(x, Affine):
        y = broadcast(y, shape, node)
        vec, p, injective, _ = _factor(x, y, node)
        if not injective and isinstance(x, Const):
            p = prov.combined("broadcast", [p])
        return _combine(None, y, s, vec, p, node, name)
    x = broadcast(x, shape, node)
    if isinstance(y, Affine) and y.terms:
        y = broadcast(y, shape, node)
        if x.batch > 1 and x.bdim != y.bdim:
            raise NotRepresentable(f"{describe(node)} adds tensors whose batch dimensions differ (it mixes samples)")
        return _combine(x, y, s, None, None, node, name)
    vec, p, injective, _ = _factor(y, x, node)
    if not injective and isinstance(y, Const):
        p = prov.combined("broadcast", [p])
    return _combine(x, None, 1.0, s * vec, p if s == 1.0 else prov.scaled(p, s, "scale"), node, name)


def _combine(x: Affine | None, y: Affine | None, s: float, vec: torch.Tensor | None, vec_prov: Provenance | None,
             node: fx.Node, name: str) -> Affine:
    """``x + s·y`` (forms) plus the constant vector ``vec``; a missing x is the constant."""
    base = x if x is not None else y
    assert base is not None
    terms: dict[int, torch.Tensor] = {}
    provs: dict[int, Provenance] = {}
    for j, C in (x.terms.items() if x is not None else ()):
        terms[j], provs[j] = C, x.term_prov[j]
    offset = x.offset if x is not None else torch.zeros(base.numel, dtype=DTYPE)
    offset_prov = x.offset_prov if x is not None else prov.ZERO
    if y is not None:
        for j, C in y.terms.items():
            p = y.term_prov[j] if s == 1.0 else prov.scaled(y.term_prov[j], s, "scale")
            terms[j] = terms[j] + s * C if j in terms else s * C
            provs[j] = prov.added(name, provs[j], p) if j in provs else p
        offset = offset + s * y.offset
        yp = y.offset_prov if s == 1.0 else prov.scaled(y.offset_prov, s, "scale")
        offset_prov = prov.added(name, offset_prov, yp)
    if vec is not None:
        offset = offset + vec
        offset_prov = prov.added(name, offset_prov, vec_prov)
    return Affine(base.shape, base.bdim, base.batch, terms, offset, provs, offset_prov)


def mul_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    name = packet(node.target)
    x, y = args[0], args[1]
    if name == "mul" and isinstance(x, Pending) and isinstance(y, Pending):
        pair = {x.kind: x, y.kind: y}
        if set(pair) == {"sign", "shrink"} and pair["sign"].source is pair["shrink"].source:
            return soft_threshold_pattern(ctx, node, pair["shrink"])
    for v in (x, y):
        if isinstance(v, Pending):
            raise pending_error(v)
    if name == "mul" and not isinstance(x, Affine):
        x, y = y, x
    if not isinstance(x, Affine):
        raise unsupported(node, " (division by an input-dependent tensor)")
    if isinstance(y, Affine) and y.terms:
        raise unsupported(node, " (a product of two input-dependent tensors is bilinear)")
    shape = out_shape(node, args, kwargs)
    x = broadcast(x, shape, node)
    if isinstance(y, Affine):
        y = broadcast(y, shape, node)
    vec, p, injective, number = _factor(y, x, node)
    divide = name == "div"
    if divide and kwargs.get("rounding_mode") is not None:
        raise unsupported(node, " (division with rounding)")
    apply = (lambda t: t / vec) if divide else (lambda t: t * vec)
    terms, provs = {}, {}
    for j, C in x.terms.items():
        terms[j] = apply(C.T).T
        provs[j] = _scaled_prov(x.term_prov[j], C, p, injective, number, divide, name)
    offset = apply(x.offset)
    offset_prov = prov.ZERO if x.offset_prov is prov.ZERO else _scaled_prov(x.offset_prov, None, p, injective, number,
                                                                               divide, name)
    return Affine(x.shape, x.bdim, x.batch, terms, offset, provs, offset_prov)


def _scaled_prov(term: Provenance, C: torch.Tensor | None, factor: Provenance, injective: bool, number: float | None,
                 divide: bool, name: str) -> Provenance:
    if number is not None:
        return prov.scaled(term, 1.0 / number if divide else number, name)
    if not divide and factor.kind == "direct" and term.kind == "constant" and injective and C is not None:
        s = unit_value(C)
        if s is not None:
            return prov.scaled(prov.rearranged(factor, "diag"), s, "scale") if s != 1.0 else prov.rearranged(factor, "diag")
    return prov.combined(name, [factor, term])


def neg_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    a = args[0]
    if isinstance(a, Pending):
        raise pending_error(a)
    return Affine(a.shape, a.bdim, a.batch, {j: -C for j, C in a.terms.items()}, -a.offset,
                  {j: prov.scaled(p, -1.0, "neg") for j, p in a.term_prov.items()}, prov.scaled(a.offset_prov, -1.0, "neg"))
