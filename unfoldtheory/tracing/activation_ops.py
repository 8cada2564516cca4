"""Activations of affine tensors: each starts a new state ``z_k = φ_k(form)``.

ReLU (``relu``, ``clamp(min=0)``), the soft-threshold (:func:`unfoldtheory.unfold.soft_threshold`, ``softshrink`` and
the pattern ``sign(v)·relu(|v| − t)`` with a constant ``t ≥ 0``) and the box projection (``hardtanh``, ``relu6``,
``clamp`` with constant bounds).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import fx

from unfoldtheory.activations import BoxProjection, ReLU, SoftThreshold
from unfoldtheory.spec import NotRepresentable
from unfoldtheory.tracing import provenance as prov
from unfoldtheory.tracing.affine import Affine, per_sample_constant
from unfoldtheory.tracing.export import describe
from unfoldtheory.tracing.provenance import Provenance
from unfoldtheory.tracing.refusals import pending_error
from unfoldtheory.tracing.values import Const, Context, Pending, packet, raw


def _scalar_or_vector(vec: torch.Tensor, numel_one: bool) -> np.ndarray:
    arr = vec.detach().numpy().astype(np.float64)
    return np.asarray(arr[0]) if numel_one else arr


def _threshold(t: Const, a: Affine, node: fx.Node) -> tuple[np.ndarray, Provenance, torch.Tensor]:
    vec, injective = per_sample_constant(t.value, a.shape, a.bdim, a.batch, describe(node))
    p = t.prov if injective or t.value.numel() == 1 else prov.combined("broadcast", [t.prov])
    return _scalar_or_vector(vec, t.value.numel() == 1), p, vec


def soft_threshold_pattern(ctx: Context, node: fx.Node, shrink: Pending) -> Affine:
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
    lambd = float(raw(kwargs.get("lambd", args[1] if len(args) > 1 else 0.5)))
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
    x = raw(x) if not isinstance(x, Const) else x
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
    zero_floor = isinstance(raw(lo), (int, float)) and float(raw(lo)) == 0.0 and hi is None
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
