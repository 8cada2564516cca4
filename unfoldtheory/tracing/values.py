"""The values an exported graph's ops act on in the tracer, and the shape of an op on them.

:class:`Const` is a float64 tensor that depends only on parameters, buffers and literals (with its
:class:`~unfoldtheory.tracing.provenance.Provenance`); :class:`~unfoldtheory.tracing.affine.Affine` is a tensor affine
in the states; :class:`Pending` is a step of the soft-threshold pattern ``sign(v)·relu(|v| − t)``; anything else is a
plain Python value. A handler (:data:`Handler`) maps an op's traced arguments to its traced result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import fx
from torch.utils import _pytree as pytree

from unfoldtheory.activations import Activation
from unfoldtheory.spec import NotRepresentable
from unfoldtheory.tracing.affine import DTYPE, Affine
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


def packet(target: Any) -> str:
    return getattr(target, "_opname", None) or getattr(target, "__name__", "") or str(target)


def leaves(args: Any) -> list[Any]:
    return pytree.tree_leaves(args)


def raw(x: Any) -> Any:
    return x.value if isinstance(x, Const) else x


def to64(x: Any) -> Any:
    return x.to(DTYPE) if isinstance(x, torch.Tensor) and x.is_floating_point() else x


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
