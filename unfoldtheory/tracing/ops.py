"""The op table: how each ATen op acts on traced values.

Values flowing through the graph are :class:`Const` (a float64 tensor that depends only on parameters,
buffers and literals, with its :class:`~unfoldtheory.tracing.provenance.Provenance`), :class:`~unfoldtheory.
tracing.affine.Affine` (a tensor affine in the states), :class:`Pending` (``sign(v)``, ``|v|`` and their
combinations on the way to the soft-threshold pattern ``sign(v)·relu(|v| − t)``) and plain Python values.

* Ops on constants only are evaluated in float64 (constant folding, :func:`fold`).
* Linear ops of an affine tensor (element moves, sums, scalings, matmul, linear, convolution) give affine tensors.
* Activations of an affine tensor (ReLU, soft-threshold, softshrink, hardtanh/clamp) start a new state.
* Every other op on an affine tensor raises :class:`~unfoldtheory.spec.NotRepresentable` naming the op and line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import fx
from torch.utils import _pytree as pytree

from unfoldtheory.activations import Activation, BoxProjection, ReLU, SoftThreshold
from unfoldtheory.spec import NotRepresentable
from unfoldtheory.tracing import provenance as prov
from unfoldtheory.tracing.affine import DTYPE, Affine, as_affine, gather, linear_map, per_sample_constant, unit_value
from unfoldtheory.tracing.export import describe
from unfoldtheory.tracing.provenance import Provenance


@dataclass
class Const:
    """A tensor that depends only on parameters, buffers and literals (float64 when floating)."""

    value: torch.Tensor
    prov: Provenance


@dataclass
class Pending:
    """A step of ``sign(v)·relu(|v| − t)``: ``kind`` is "sign", "abs", "abs_minus" (|v| − t) or "shrink"."""

    kind: str
    source: Affine
    node: fx.Node
    threshold: Const | None = None


class Context(Protocol):
    exact: bool
    formed: list[str]

    def new_state(self, a: Affine, act: Activation, node: fx.Node, extra: dict[str, Provenance]) -> Affine: ...

    def materialize(self, a: Affine, node: fx.Node) -> Affine: ...


Handler = Callable[[Context, fx.Node, tuple, dict], Any]

#: Ops that only move elements: applied to index tensors by :func:`~unfoldtheory.tracing.affine.gather`.
GATHER = {"view", "_unsafe_view", "reshape", "permute", "transpose", "t", "numpy_T", "unsqueeze", "squeeze",
          "flatten", "unflatten", "select", "slice", "narrow", "expand", "expand_as", "repeat", "contiguous", "clone",
          "alias", "detach", "flip", "roll", "movedim", "swapaxes", "swapdims", "mT", "index_select", "view_as",
          "reshape_as", "split", "split_with_sizes", "chunk", "unbind", "tile", "broadcast_to", "cat", "concat",
          "concatenate", "stack", "lift_fresh_copy", "_to_copy", "to", "type_as", "copy", "slice_scatter",
          "select_scatter", "diagonal_scatter"}
_CAT = {"cat", "concat", "concatenate", "stack"}
#: Element moves with several tensor operands (all of them enter the index trick).
_MULTI = _CAT | {"copy", "slice_scatter", "select_scatter", "diagonal_scatter"}
_CASTS = {"_to_copy", "to", "type_as"}
_SAME_PROV = {"clone", "contiguous", "alias", "detach", "lift_fresh_copy", "_to_copy", "to", "type_as"}


def packet(target: Any) -> str:
    return getattr(target, "_opname", None) or getattr(target, "__name__", "") or str(target)


def _leaves(args: Any) -> list[Any]:
    return pytree.tree_leaves(args)


def _raw(x: Any) -> Any:
    return x.value if isinstance(x, Const) else x


def _to64(x: Any) -> Any:
    return x.to(DTYPE) if isinstance(x, torch.Tensor) and x.is_floating_point() else x


def _unsupported(node: fx.Node, why: str = "") -> NotRepresentable:
    return NotRepresentable(f"{describe(node)} is not a linear map or a supported activation{why}")


def pending_error(p: Pending) -> NotRepresentable:
    return _unsupported(p.node, " (sign and abs are recognised only in the soft-threshold pattern "
                                "sign(v) * relu(abs(v) - t) with a constant t >= 0)")


# ---------------------------------------------------------------------------- constant folding
def fold(node: fx.Node, args: tuple, kwargs: dict) -> Any:
    """Evaluate an op on constants in float64 and derive the provenance of its result."""
    name = packet(node.target)
    raw_args, raw_kwargs = pytree.tree_map(_raw, (args, kwargs))
    if name in _CASTS:  # the trace is float64: casts between floating types are the identity
        raw_kwargs = {k: (DTYPE if isinstance(v, torch.dtype) and v.is_floating_point else v) for k, v in raw_kwargs.items()}
        raw_args = tuple(DTYPE if isinstance(v, torch.dtype) and v.is_floating_point else v for v in raw_args)
    elif "dtype" in raw_kwargs and isinstance(raw_kwargs["dtype"], torch.dtype) and raw_kwargs["dtype"].is_floating_point:
        raw_kwargs = {**raw_kwargs, "dtype": DTYPE}
    try:
        out = node.target(*raw_args, **raw_kwargs)
    except Exception as exc:
        raise NotRepresentable(f"{describe(node)} failed on the traced constants: {type(exc).__name__}: {exc}") from exc
    consts = [x for x in _leaves((args, kwargs)) if isinstance(x, Const)]
    result_prov = _fold_prov(node, name, args, kwargs, consts)
    return pytree.tree_map(lambda t: Const(_to64(t), result_prov) if isinstance(t, torch.Tensor) else t, out)


def _fold_prov(node: fx.Node, name: str, args: tuple, kwargs: dict, consts: list[Const]) -> Provenance:
    if not consts:
        return prov.constant(name)
    if len(consts) == 1:
        c = consts[0]
        if name in _SAME_PROV:
            return c.prov
        if name in GATHER and name not in _CAT:
            idx = torch.arange(c.value.numel()).reshape(c.value.shape)
            try:
                moved = node.target(*pytree.tree_map(lambda x: idx if x is c else _raw(x), args),
                                    **pytree.tree_map(_raw, kwargs))
                moved_all = torch.cat([m.reshape(-1) for m in pytree.tree_leaves(moved) if isinstance(m, torch.Tensor)])
                if int(torch.unique(moved_all).numel()) == int(moved_all.numel()):
                    return prov.rearranged(c.prov, name)
            except Exception:
                pass
        scalars = [x for x in _leaves((args, kwargs)) if isinstance(x, (int, float)) and not isinstance(x, bool)]
        if name == "neg":
            return prov.scaled(c.prov, -1.0, "neg")
        if name in ("mul", "div") and len(scalars) == 1 and args[0] is c:
            return prov.scaled(c.prov, scalars[0] if name == "mul" else 1.0 / scalars[0], name)
        if name == "relu" or (name in ("clamp", "clamp_min") and _clamp_bounds(args, kwargs) == (0.0, None)):
            return prov.nonnegative_part(c.prov)
    return prov.combined(name, [c.prov for c in consts])


def _clamp_bounds(args: tuple, kwargs: dict) -> tuple[Any, Any]:
    lo = kwargs.get("min", args[1] if len(args) > 1 else None)
    hi = kwargs.get("max", args[2] if len(args) > 2 else None)
    lo, hi = _raw(lo), _raw(hi)
    return (float(lo) if isinstance(lo, (int, float)) else lo), (float(hi) if isinstance(hi, (int, float)) else hi)


# ---------------------------------------------------------------------------- shapes
def out_shape(node: fx.Node, args: tuple, kwargs: dict) -> tuple[int, ...]:
    """The op's output shape on the full batch, from a run on meta tensors."""
    def meta(x: Any) -> Any:
        if isinstance(x, Affine):
            return torch.empty(x.shape, dtype=DTYPE, device="meta")
        if isinstance(x, Const):
            return x.value.to("meta")
        if isinstance(x, Pending):
            return torch.empty(x.source.shape, dtype=DTYPE, device="meta")
        return x
    try:
        out = node.target(*pytree.tree_map(meta, args), **pytree.tree_map(meta, kwargs))
    except Exception as exc:
        raise NotRepresentable(f"{describe(node)} cannot be applied to the traced shapes: {type(exc).__name__}: {exc}") from exc
    return tuple(int(s) for s in out.shape)


def broadcast(a: Affine, shape: tuple[int, ...], node: fx.Node) -> Affine:
    if a.shape == tuple(shape):
        return a
    return gather(lambda idx: torch.broadcast_to(idx[0], shape), [a], describe(node), "broadcast")  # type: ignore[return-value]


# ---------------------------------------------------------------------------- element moves
def gather_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    name = packet(node.target)
    if name in _CASTS:
        dtypes = [x for x in _leaves((args, kwargs)) if isinstance(x, torch.dtype)]
        if any(not d.is_floating_point for d in dtypes):
            raise _unsupported(node, f" (a cast to {next(d for d in dtypes if not d.is_floating_point)})")
        return next(x for x in _leaves(args) if isinstance(x, Affine))
    if name in _MULTI:
        leaves, spec = pytree.tree_flatten((args, kwargs))
        like = next(m for m in leaves if isinstance(m, Affine))
        slots = [i for i, m in enumerate(leaves) if isinstance(m, (Affine, Const)) and
                 (isinstance(m, Affine) or m.value.is_floating_point())]
        inputs = [leaves[i] if isinstance(leaves[i], Affine) else
                  as_affine(leaves[i].value, Affine(tuple(leaves[i].value.shape), like.bdim, like.batch, {}, torch.zeros(0)),
                            leaves[i].prov, describe(node)) for i in slots]

        def rebuilt(idx: list[torch.Tensor]) -> Any:
            swapped = [_raw(m) for m in leaves]
            for i, t in zip(slots, idx, strict=True):
                swapped[i] = t
            a, kw = pytree.tree_unflatten(swapped, spec)
            return node.target(*a, **kw)
    else:
        inputs = [x for x in _leaves(args) if isinstance(x, Affine)]
        if len(inputs) != 1:
            raise _unsupported(node, " (an element move of several input-dependent tensors)")

        def rebuilt(idx: list[torch.Tensor]) -> Any:
            swapped = pytree.tree_map(lambda x: idx[0] if x is inputs[0] else _raw(x), args)
            return node.target(*swapped, **pytree.tree_map(_raw, kwargs))
    try:
        return gather(rebuilt, inputs, describe(node), name)
    except NotRepresentable:
        raise
    except Exception as exc:
        raise NotRepresentable(f"{describe(node)} could not be applied to the traced tensor: "
                               f"{type(exc).__name__}: {exc}") from exc


def like_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    """``zeros_like(x)`` and friends: values that depend only on the input's shape."""
    def zeros(x: Any) -> Any:
        return torch.zeros(x.shape, dtype=DTYPE) if isinstance(x, Affine) else x
    return fold(node, pytree.tree_map(zeros, args), pytree.tree_map(zeros, kwargs))


def size_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    a = args[0]
    if packet(node.target) == "sym_numel":
        return math.prod(a.shape)
    return a.shape[args[1]]


def dropout_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    train = kwargs.get("train", args[2] if len(args) > 2 else True)
    if train:
        raise _unsupported(node, " (dropout in training mode is random)")
    return args[0]


# ---------------------------------------------------------------------------- elementwise linear ops
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
    raise _unsupported(node, f" (operand of type {type(x).__name__})")


def add_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    name = packet(node.target)
    alpha = _raw(kwargs.get("alpha", args[2] if len(args) > 2 else 1))
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
            return _soft_threshold_pattern(ctx, node, pair["shrink"])
    for v in (x, y):
        if isinstance(v, Pending):
            raise pending_error(v)
    if name == "mul" and not isinstance(x, Affine):
        x, y = y, x
    if not isinstance(x, Affine):
        raise _unsupported(node, " (division by an input-dependent tensor)")
    if isinstance(y, Affine) and y.terms:
        raise _unsupported(node, " (a product of two input-dependent tensors is bilinear)")
    shape = out_shape(node, args, kwargs)
    x = broadcast(x, shape, node)
    if isinstance(y, Affine):
        y = broadcast(y, shape, node)
    vec, p, injective, number = _factor(y, x, node)
    divide = name == "div"
    if divide and kwargs.get("rounding_mode") is not None:
        raise _unsupported(node, " (division with rounding)")
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


# ---------------------------------------------------------------------------- contractions
def _contract(ctx: Context, node: fx.Node, a: Affine, fn: Callable[[torch.Tensor], torch.Tensor],
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


def _one_affine(node: fx.Node, operands: list[Any]) -> int:
    for v in operands:
        if isinstance(v, Pending):
            raise pending_error(v)
    where = [i for i, v in enumerate(operands) if isinstance(v, Affine) and v.terms]
    if len(where) > 1:
        raise _unsupported(node, " (a product of two input-dependent tensors is bilinear)")
    if not where:  # input-independent forms: use their values
        where = [i for i, v in enumerate(operands) if isinstance(v, Affine)]
    return where[0]


def _bilinear_op(ctx: Context, node: fx.Node, a_val: Any, b_val: Any, target: Callable, shape: tuple[int, ...]) -> Affine:
    """``target(a, b)``, linear in each operand (matmul, mm, ...), with one of them affine."""
    ops = [a_val, b_val]
    i = _one_affine(node, ops)
    other = ops[1 - i]
    if isinstance(other, Affine):
        other = Const(other.offset.reshape(other.unit_shape), other.offset_prov)
    if i == 0:
        return _contract(ctx, node, ops[0], lambda t: target(t, other.value), shape, other, lambda t, w: target(t, w))
    return _contract(ctx, node, ops[1], lambda t: target(other.value, t), shape, other, lambda t, w: target(w, t))


def matmul_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    return _bilinear_op(ctx, node, args[0], args[1], node.target, out_shape(node, args, kwargs))


def linear_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    bias = kwargs.get("bias", args[2] if len(args) > 2 else None)
    shape = out_shape(node, args[:2], {})
    out = _bilinear_op(ctx, node, args[0], args[1], torch.ops.aten.linear.default, shape)
    return out if bias is None else _add_bias(ctx, node, out, bias, None)


def addmm_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    beta, alpha = _raw(kwargs.get("beta", 1)), _raw(kwargs.get("alpha", 1))
    shape = out_shape(node, args, kwargs)
    prod = _bilinear_op(ctx, node, args[1], args[2], torch.ops.aten.mm.default, shape)
    if alpha != 1:
        prod = mul_op(ctx, _as(node, torch.ops.aten.mul.Tensor), (prod, float(alpha)), {})
    bias = args[0]
    if beta != 1:
        bias = Const(bias.value * beta, prov.scaled(bias.prov, float(beta), "scale")) if isinstance(bias, Const) else \
            mul_op(ctx, _as(node, torch.ops.aten.mul.Tensor), (bias, float(beta)), {})
    return _add_bias(ctx, node, prod, bias, None)


def _as(node: fx.Node, target: Any) -> fx.Node:
    """A stand-in node with another target (for messages and meta shapes), same source location."""
    clone = fx.Node(node.graph, node.name, "call_function", target, (), {})
    clone.meta = node.meta
    return clone


def _add_bias(ctx: Context, node: fx.Node, out: Affine, bias: Any, view: tuple[int, ...] | None) -> Affine:
    if isinstance(bias, Const) and view is not None:
        bias = Const(bias.value.reshape(view), bias.prov)
    elif isinstance(bias, Affine) and view is not None:
        bias = gather(lambda idx: idx[0].reshape(view), [bias], describe(node), "reshape")
    return add_op(ctx, _as(node, torch.ops.aten.add.Tensor), (out, bias), {})


def conv_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    """conv1d/2d/3d, convolution and conv_transpose: the linear part on one sample, then the bias."""
    name = packet(node.target)
    full = list(args) + [None] * 0
    x, w = full[0], full[1]
    bias = kwargs.get("bias", full[2] if len(full) > 2 else None)
    rest = tuple(full[3:])
    if not isinstance(x, Affine) or isinstance(w, (Affine, Pending)):
        raise _unsupported(node, " (a convolution whose kernel depends on the input)")
    if isinstance(bias, (Affine, Pending)):
        raise _unsupported(node, " (a convolution whose bias depends on the input)")
    kw = {k: v for k, v in kwargs.items() if k != "bias"}
    target = node.target

    def fn_w(t: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return target(t, weight, None, *pytree.tree_map(_raw, rest), **pytree.tree_map(_raw, kw))
    shape = out_shape(node, (x, w, None, *rest), kw)
    out = _contract(ctx, node, x, lambda t: fn_w(t, w.value), shape, w, fn_w)
    if bias is None:
        return out
    batched = len(x.shape) == w.value.ndim
    channel_dims = len(shape) - (2 if batched else 1)
    del name
    return _add_bias(ctx, node, out, bias, (-1,) + (1,) * channel_dims)


def reduce_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    a = args[0]
    if isinstance(a, Pending):
        raise pending_error(a)
    rest, kw = pytree.tree_map(_raw, args[1:]), pytree.tree_map(_raw, kwargs)
    if isinstance(kw.get("dtype"), torch.dtype):
        kw["dtype"] = DTYPE
    shape = out_shape(node, args, kwargs)
    return _contract(ctx, node, a, lambda t: node.target(t, *rest, **kw), shape, None, None)


# ---------------------------------------------------------------------------- activations
def _scalar_or_vector(vec: torch.Tensor, numel_one: bool) -> np.ndarray:
    arr = vec.detach().numpy().astype(np.float64)
    return np.asarray(arr[0]) if numel_one else arr


def _threshold(t: Const, a: Affine, node: fx.Node) -> tuple[np.ndarray, Provenance, torch.Tensor]:
    vec, injective = per_sample_constant(t.value, a.shape, a.bdim, a.batch, describe(node))
    p = t.prov if injective or t.value.numel() == 1 else prov.combined("broadcast", [t.prov])
    return _scalar_or_vector(vec, t.value.numel() == 1), p, vec


def _soft_threshold_pattern(ctx: Context, node: fx.Node, shrink: Pending) -> Affine:
    assert shrink.threshold is not None
    theta, p, vec = _threshold(shrink.threshold, shrink.source, node)
    if bool((vec < 0).any()):
        raise NotRepresentable(f"{describe(node)}: sign(v) * relu(abs(v) - t) with t < 0 is not a soft-threshold "
                               f"(min t = {float(vec.min()):.6g}); it is discontinuous")
    return ctx.new_state(shrink.source, SoftThreshold(theta), node, {"threshold": p})


def soft_threshold_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    v, theta = args[0], kwargs.get("theta", args[1] if len(args) > 1 else None)
    if isinstance(v, Pending):
        raise pending_error(v)
    if not isinstance(theta, Const):
        raise NotRepresentable(f"{describe(node)}: the threshold depends on the input; a spec needs a fixed threshold")
    value, p, _ = _threshold(theta, v, node)
    return ctx.new_state(v, SoftThreshold(np.maximum(value, 0.0)), node, {"threshold": prov.nonnegative_part(p)})


def softshrink_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    v = args[0]
    lambd = float(_raw(kwargs.get("lambd", args[1] if len(args) > 1 else 0.5)))
    if isinstance(v, Pending):
        raise pending_error(v)
    return ctx.new_state(v, SoftThreshold(lambd), node, {"threshold": prov.constant(f"softshrink lambda {lambd}")})


def relu_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    v = args[0]
    if isinstance(v, Pending):
        if v.kind == "abs_minus":
            return Pending("shrink", v.source, v.node, v.threshold)
        raise pending_error(v)
    return ctx.new_state(v, ReLU(), node, {})


def _bound(x: Any, a: Affine, node: fx.Node, default: float) -> tuple[np.ndarray, Provenance]:
    x = _raw(x) if not isinstance(x, Const) else x
    if x is None:
        return np.asarray(default), prov.constant(repr(default))
    if isinstance(x, (int, float)):
        return np.asarray(float(x)), prov.constant(repr(x))
    if isinstance(x, Const):
        value, p, _ = _threshold(x, a, node)
        return value, p
    raise NotRepresentable(f"{describe(node)}: a clamp bound that depends on the input is not a fixed box")


def box_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    """hardtanh, relu6, clamp, clamp_min, clamp_max: the box projection (ReLU for clamp(min=0))."""
    name = packet(node.target)
    v = args[0]
    if name == "hardtanh":
        lo = kwargs.get("min_val", args[1] if len(args) > 1 else -1.0)
        hi = kwargs.get("max_val", args[2] if len(args) > 2 else 1.0)
    elif name == "relu6":
        lo, hi = 0.0, 6.0
    elif name == "clamp_min":
        lo, hi = kwargs.get("min", args[1]), None
    elif name == "clamp_max":
        lo, hi = None, kwargs.get("max", args[1])
    else:
        lo, hi = kwargs.get("min", args[1] if len(args) > 1 else None), kwargs.get("max", args[2] if len(args) > 2 else None)
    zero_floor = isinstance(_raw(lo), (int, float)) and float(_raw(lo)) == 0.0 and hi is None
    if isinstance(v, Pending):
        if v.kind == "abs_minus" and zero_floor:
            return Pending("shrink", v.source, v.node, v.threshold)
        raise pending_error(v)
    if zero_floor:
        return ctx.new_state(v, ReLU(), node, {})
    (lo_v, lo_p), (hi_v, hi_p) = _bound(lo, v, node, -np.inf), _bound(hi, v, node, np.inf)
    try:
        act = BoxProjection(lo_v, hi_v)
    except ValueError as exc:
        raise NotRepresentable(f"{describe(node)}: the bounds do not form a box ({exc})") from None
    return ctx.new_state(v, act, node, {"bounds": prov.combined("box", [lo_p, hi_p])})


def sign_abs_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    v = args[0]
    if isinstance(v, Pending):
        raise pending_error(v)
    return Pending(packet(node.target), v, node)


HANDLERS: dict[str, Handler] = {
    **{name: gather_op for name in GATHER},
    **{name: like_op for name in ("zeros_like", "ones_like", "full_like", "new_zeros", "new_ones", "new_full")},
    **{name: size_op for name in ("sym_size", "sym_numel", "size")},
    "dropout": dropout_op,
    "add": add_op, "sub": add_op, "rsub": add_op,
    "mul": mul_op, "div": mul_op,
    "neg": neg_op,
    **{name: matmul_op for name in ("matmul", "mm", "bmm", "mv", "dot")},
    "linear": linear_op,
    "addmm": addmm_op,
    **{name: conv_op for name in ("conv1d", "conv2d", "conv3d", "convolution", "conv_transpose1d", "conv_transpose2d")},
    **{name: reduce_op for name in ("sum", "mean")},
    "soft_threshold": soft_threshold_op,
    "softshrink": softshrink_op,
    "relu": relu_op,
    **{name: box_op for name in ("hardtanh", "relu6", "clamp", "clamp_min", "clamp_max")},
    "sign": sign_abs_op, "abs": sign_abs_op,
}

#: Handlers that see :class:`Pending` operands themselves (the soft-threshold pattern).
PATTERN_AWARE = {"add", "sub", "rsub", "mul", "relu", "clamp", "clamp_min"}


def handler(node: fx.Node) -> Handler:
    """The handler of ``node``'s op, or raise NotRepresentable naming the op and the line."""
    name = packet(node.target)
    target = node.target
    if name == "soft_threshold" and not str(target).startswith("unfoldtheory."):
        raise _unsupported(node)
    if name in HANDLERS and (isinstance(target, torch._ops.OpOverload) or name in ("sym_size", "sym_numel")):
        return HANDLERS[name]
    raise _unsupported(node)
