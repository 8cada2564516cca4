"""Linear maps with a constant operand (matmul, linear, addmm, convolution, einsum) and reductions (sum, mean).

Each is applied to one sample by :func:`~unfoldtheory.tracing.affine.linear_map`; the counts of products per output
entry and of uses per weight entry (autograd of the op at an all-ones weight) decide whether a parameter operand's
provenance stays direct.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import fx
from torch.utils import _pytree as pytree

from unfoldtheory.spec import NotRepresentable
from unfoldtheory.tracing import provenance as prov
from unfoldtheory.tracing.affine import DTYPE, Affine, gather, linear_map, unit_value
from unfoldtheory.tracing.elementwise import add_op, mul_op
from unfoldtheory.tracing.export import describe
from unfoldtheory.tracing.refusals import pending_error, unsupported
from unfoldtheory.tracing.values import Const, Context, Pending, out_shape, packet, raw


def contract(ctx: Context, node: fx.Node, a: Affine, fn: Callable[[torch.Tensor], torch.Tensor],
              shape: tuple[int, ...], weight: Const | None,
              fn_w: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None) -> Affine:
    if ctx.exact and any(unit_value(C) is None for C in a.terms.values()):
        a = ctx.materialize(a, node)
    counts = None
    if weight is not None and fn_w is not None:
        w = weight.value

        def counts(indicator: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            ones = torch.ones_like(w, requires_grad=True)
            cols = indicator.T.reshape((indicator.shape[1], *a.unit_shape))
            with torch.enable_grad():
                per_output = torch.func.vmap(lambda t: fn_w(t, ones))(cols)
                (per_weight,) = torch.autograd.grad(per_output.sum(), ones)
            return per_output.detach(), per_weight
    try:
        return linear_map(a, fn, shape, describe(node), packet(node.target), weight.prov if weight else None, counts,
                          ctx.formed)
    except NotRepresentable:
        raise
    except Exception as exc:
        raise NotRepresentable(f"{describe(node)} could not be applied to one sample: {type(exc).__name__}: {exc}") from exc


def one_affine(node: fx.Node, operands: list[Any]) -> int:
    for v in operands:
        if isinstance(v, Pending):
            raise pending_error(v)
    where = [i for i, v in enumerate(operands) if isinstance(v, Affine) and v.terms]
    if len(where) > 1:
        raise unsupported(node, " (a product of two input-dependent tensors is bilinear)")
    if not where:  # input-independent forms: use their values
        where = [i for i, v in enumerate(operands) if isinstance(v, Affine)]
    return where[0]


def bilinear_op(ctx: Context, node: fx.Node, a_val: Any, b_val: Any, target: Callable, shape: tuple[int, ...]) -> Affine:
    """``target(a, b)``, linear in each operand (matmul, mm, ...), with one of them affine."""
    ops = [a_val, b_val]
    i = one_affine(node, ops)
    other = ops[1 - i]
    if isinstance(other, Affine):
        other = Const(other.offset.reshape(other.unit_shape), other.offset_prov)
    if i == 0:
        return contract(ctx, node, ops[0], lambda t: target(t, other.value), shape, other, lambda t, w: target(t, w))
    return contract(ctx, node, ops[1], lambda t: target(other.value, t), shape, other, lambda t, w: target(w, t))


def matmul_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    return bilinear_op(ctx, node, args[0], args[1], node.target, out_shape(node, args, kwargs))


def einsum_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    """``torch.einsum`` of one input-dependent tensor, alone or with one constant: linear in that tensor.

    Refused: two input-dependent operands (bilinear), more than two operands, and an equation that sums over or
    moves the batch dimension (one sample no longer maps on its own)."""
    equation, operands = args[0], list(args[1])
    if len(operands) > 2:
        raise unsupported(node, f" (an einsum of {len(operands)} operands; the tracer maps an einsum of one "
                                "input-dependent tensor and at most one constant)")
    target, kw = node.target, pytree.tree_map(raw, kwargs)
    shape = out_shape(node, args, kwargs)
    if len(operands) == 2:
        return bilinear_op(ctx, node, operands[0], operands[1], lambda a, b: target(equation, [a, b], **kw), shape)
    one_affine(node, operands)
    return contract(ctx, node, operands[0], lambda t: target(equation, [t], **kw), shape, None, None)


def linear_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    bias = kwargs.get("bias", args[2] if len(args) > 2 else None)
    shape = out_shape(node, args[:2], {})
    out = bilinear_op(ctx, node, args[0], args[1], torch.ops.aten.linear.default, shape)
    return out if bias is None else add_bias(ctx, node, out, bias, None)


def addmm_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    beta, alpha = raw(kwargs.get("beta", 1)), raw(kwargs.get("alpha", 1))
    shape = out_shape(node, args, kwargs)
    prod = bilinear_op(ctx, node, args[1], args[2], torch.ops.aten.mm.default, shape)
    if alpha != 1:
        prod = mul_op(ctx, as_node(node, torch.ops.aten.mul.Tensor), (prod, float(alpha)), {})
    bias = args[0]
    if beta != 1:
        bias = Const(bias.value * beta, prov.scaled(bias.prov, float(beta), "scale")) if isinstance(bias, Const) else \
            mul_op(ctx, as_node(node, torch.ops.aten.mul.Tensor), (bias, float(beta)), {})
    return add_bias(ctx, node, prod, bias, None)


def as_node(node: fx.Node, target: Any) -> fx.Node:
    """A stand-in node with another target (for messages and meta shapes), same source location."""
    clone = fx.Node(node.graph, node.name, "call_function", target, (), {})
    clone.meta = node.meta
    return clone


def add_bias(ctx: Context, node: fx.Node, out: Affine, bias: Any, view: tuple[int, ...] | None) -> Affine:
    if isinstance(bias, Const) and view is not None:
        bias = Const(bias.value.reshape(view), bias.prov)
    elif isinstance(bias, Affine) and view is not None:
        bias = gather(lambda idx: idx[0].reshape(view), [bias], describe(node), "reshape")
    return add_op(ctx, as_node(node, torch.ops.aten.add.Tensor), (out, bias), {})


def conv_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    """conv1d/2d/3d, convolution and conv_transpose: the linear part on one sample, then the bias."""
    full = list(args)
    x, w = full[0], full[1]
    bias = kwargs.get("bias", full[2] if len(full) > 2 else None)
    rest = tuple(full[3:])
    if not isinstance(x, Affine) or isinstance(w, (Affine, Pending)):
        raise unsupported(node, " (a convolution whose kernel depends on the input)")
    if isinstance(bias, (Affine, Pending)):
        raise unsupported(node, " (a convolution whose bias depends on the input)")
    kw = {k: v for k, v in kwargs.items() if k != "bias"}
    target = node.target

    def fn_w(t: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return target(t, weight, None, *pytree.tree_map(raw, rest), **pytree.tree_map(raw, kw))
    shape = out_shape(node, (x, w, None, *rest), kw)
    out = contract(ctx, node, x, lambda t: fn_w(t, w.value), shape, w, fn_w)
    if bias is None:
        return out
    batched = len(x.shape) == w.value.ndim
    channel_dims = len(shape) - (2 if batched else 1)
    return add_bias(ctx, node, out, bias, (-1,) + (1,) * channel_dims)


def reduce_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    a = args[0]
    if isinstance(a, Pending):
        raise pending_error(a)
    rest, kw = pytree.tree_map(raw, args[1:]), pytree.tree_map(raw, kwargs)
    if isinstance(kw.get("dtype"), torch.dtype):
        kw["dtype"] = DTYPE
    shape = out_shape(node, args, kwargs)
    return contract(ctx, node, a, lambda t: node.target(t, *rest, **kw), shape, None, None)
