"""Constant folding: ops on constants only, evaluated in float64, with the provenance of the result.

A rearrangement of one constant (each entry used at most once) keeps its provenance's kind, a scaling by a number
scales it, ``relu``/``clamp(min=0)`` is its nonnegative part; any other op combines the operands' provenances.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx
from torch.utils import _pytree as pytree

from unfoldtheory.spec import NotRepresentable
from unfoldtheory.tracing import provenance as prov
from unfoldtheory.tracing.affine import DTYPE, Affine
from unfoldtheory.tracing.export import describe
from unfoldtheory.tracing.moves import CASTS, CAT, GATHER, SAME_PROV
from unfoldtheory.tracing.provenance import Provenance
from unfoldtheory.tracing.values import Const, Context, leaves, packet, raw, to64


def fold(node: fx.Node, args: tuple, kwargs: dict) -> Any:
    """Evaluate an op on constants in float64 and derive the provenance of its result."""
    name = packet(node.target)
    raw_args, raw_kwargs = pytree.tree_map(raw, (args, kwargs))
    if name in CASTS:  # the trace is float64: casts between floating types are the identity
        raw_kwargs = {k: (DTYPE if isinstance(v, torch.dtype) and v.is_floating_point else v) for k, v in raw_kwargs.items()}
        raw_args = tuple(DTYPE if isinstance(v, torch.dtype) and v.is_floating_point else v for v in raw_args)
    elif "dtype" in raw_kwargs and isinstance(raw_kwargs["dtype"], torch.dtype) and raw_kwargs["dtype"].is_floating_point:
        raw_kwargs = {**raw_kwargs, "dtype": DTYPE}
    try:
        out = node.target(*raw_args, **raw_kwargs)
    except Exception as exc:
        raise NotRepresentable(f"{describe(node)} failed on the traced constants: {type(exc).__name__}: {exc}") from exc
    consts = [x for x in leaves((args, kwargs)) if isinstance(x, Const)]
    result_prov = _fold_prov(node, name, args, kwargs, consts)
    return pytree.tree_map(lambda t: Const(to64(t), result_prov) if isinstance(t, torch.Tensor) else t, out)


def _fold_prov(node: fx.Node, name: str, args: tuple, kwargs: dict, consts: list[Const]) -> Provenance:
    if not consts:
        return prov.constant(name)
    if len(consts) == 1:
        c = consts[0]
        if name in SAME_PROV:
            return c.prov
        if name in GATHER and name not in CAT:
            idx = torch.arange(c.value.numel()).reshape(c.value.shape)
            try:
                moved = node.target(*pytree.tree_map(lambda x: idx if x is c else raw(x), args),
                                    **pytree.tree_map(raw, kwargs))
                moved_all = torch.cat([m.reshape(-1) for m in pytree.tree_leaves(moved) if isinstance(m, torch.Tensor)])
                if int(torch.unique(moved_all).numel()) == int(moved_all.numel()):
                    return prov.rearranged(c.prov, name)
            except Exception:  # a move the index replay cannot run is not proved direct: "derived" below
                pass
        scalars = [x for x in leaves((args, kwargs)) if isinstance(x, (int, float)) and not isinstance(x, bool)]
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
    lo, hi = raw(lo), raw(hi)
    return (float(lo) if isinstance(lo, (int, float)) else lo), (float(hi) if isinstance(hi, (int, float)) else hi)


def like_op(ctx: Context, node: fx.Node, args: tuple, kwargs: dict) -> Any:
    """``zeros_like(x)`` and friends: values that depend only on the input's shape."""
    def zeros(x: Any) -> Any:
        return torch.zeros(x.shape, dtype=DTYPE) if isinstance(x, Affine) else x
    return fold(node, pytree.tree_map(zeros, args), pytree.tree_map(zeros, kwargs))
