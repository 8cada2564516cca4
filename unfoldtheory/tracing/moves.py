"""Ops that only move elements (views, permutes, slices, cat, ...), read shapes, or are the identity in eval mode.

An element move of affine tensors is applied to index tensors (:func:`~unfoldtheory.tracing.affine.gather`), which
says where each output element comes from; constants among its operands enter the same index trick.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import fx
from torch.utils import _pytree as pytree

from unfoldtheory.spec import NotRepresentable
from unfoldtheory.tracing.affine import Affine, as_affine, gather
from unfoldtheory.tracing.export import describe
from unfoldtheory.tracing.refusals import unsupported
from unfoldtheory.tracing.values import Const, Context, leaves, packet, raw

#: Ops that only move elements: applied to index tensors by :func:`~unfoldtheory.tracing.affine.gather`.
GATHER = {"view", "_unsafe_view", "reshape", "permute", "transpose", "t", "numpy_T", "unsqueeze", "squeeze",
          "flatten", "unflatten", "select", "slice", "narrow", "expand", "expand_as", "repeat", "contiguous", "clone",
          "alias", "detach", "flip", "roll", "movedim", "swapaxes", "swapdims", "mT", "index_select", "view_as",
          "reshape_as", "split", "split_with_sizes", "chunk", "unbind", "tile", "broadcast_to", "cat", "concat",
          "concatenate", "stack", "lift_fresh_copy", "_to_copy", "to", "type_as", "copy", "slice_scatter",
          "select_scatter", "diagonal_scatter"}
CAT = {"cat", "concat", "concatenate", "stack"}
#: Element moves with several tensor operands (all of them enter the index trick).
MULTI = CAT | {"copy", "slice_scatter", "select_scatter", "diagonal_scatter"}
CASTS = {"_to_copy", "to", "type_as"}
SAME_PROV = {"clone", "contiguous", "alias", "detach", "lift_fresh_copy", "_to_copy", "to", "type_as"}


def broadcast(a: Affine, shape: tuple[int, ...], node: fx.Node) -> Affine:
    if a.shape == tuple(shape):
        return a
    return gather(lambda idx: torch.broadcast_to(idx[0], shape), [a], describe(node), "broadcast")  # type: ignore[return-value]


def gather_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    name = packet(node.target)
    if name in CASTS:
        dtypes = [x for x in leaves((args, kwargs)) if isinstance(x, torch.dtype)]
        if any(not d.is_floating_point for d in dtypes):
            raise unsupported(node, f" (a cast to {next(d for d in dtypes if not d.is_floating_point)})")
        return next(x for x in leaves(args) if isinstance(x, Affine))
    if name in MULTI:
        flat, spec = pytree.tree_flatten((args, kwargs))
        like = next(m for m in flat if isinstance(m, Affine))
        slots = [i for i, m in enumerate(flat) if isinstance(m, (Affine, Const)) and
                 (isinstance(m, Affine) or m.value.is_floating_point())]
        inputs = [flat[i] if isinstance(flat[i], Affine) else
                  as_affine(flat[i].value, Affine(tuple(flat[i].value.shape), like.bdim, like.batch, {}, torch.zeros(0)),
                            flat[i].prov, describe(node)) for i in slots]

        def rebuilt(idx: list[torch.Tensor]) -> Any:
            swapped = [raw(m) for m in flat]
            for i, t in zip(slots, idx, strict=True):
                swapped[i] = t
            a, kw = pytree.tree_unflatten(swapped, spec)
            return node.target(*a, **kw)
    else:
        inputs = [x for x in leaves(args) if isinstance(x, Affine)]
        if len(inputs) != 1:
            raise unsupported(node, " (an element move of several input-dependent tensors)")

        def rebuilt(idx: list[torch.Tensor]) -> Any:
            swapped = pytree.tree_map(lambda x: idx[0] if x is inputs[0] else raw(x), args)
            return node.target(*swapped, **pytree.tree_map(raw, kwargs))
    try:
        return gather(rebuilt, inputs, describe(node), name)
    except NotRepresentable:
        raise
    except Exception as exc:
        raise NotRepresentable(f"{describe(node)} could not be applied to the traced tensor: "
                               f"{type(exc).__name__}: {exc}") from exc


def size_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    a = args[0]
    if packet(node.target) == "sym_numel":
        return math.prod(a.shape)
    return a.shape[args[1]]


def dropout_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    train = kwargs.get("train", args[2] if len(args) > 2 else True)
    if train:
        raise unsupported(node, " (dropout in training mode is random)")
    return args[0]
