"""The op table: which handler maps each ATen op of an exported graph onto traced values.

* Ops on constants only are evaluated in float64 (:func:`~unfoldtheory.tracing.fold.fold`).
* Linear ops of an affine tensor give affine tensors: element moves (:mod:`~unfoldtheory.tracing.moves`), sums and
  scalings (:mod:`~unfoldtheory.tracing.elementwise`), matmul, linear, convolution, einsum and reductions
  (:mod:`~unfoldtheory.tracing.contractions`).
* Activations of an affine tensor start a new state (:mod:`~unfoldtheory.tracing.activation_ops`).
* Every other op on an affine tensor raises :class:`~unfoldtheory.spec.NotRepresentable` naming the op and line.
"""

from __future__ import annotations

import torch
from torch import fx

from unfoldtheory.tracing.activation_ops import box_op, relu_op, sign_abs_op, soft_threshold_op, softshrink_op
from unfoldtheory.tracing.contractions import addmm_op, conv_op, einsum_op, linear_op, matmul_op, reduce_op
from unfoldtheory.tracing.elementwise import add_op, mul_op, neg_op
from unfoldtheory.tracing.fold import like_op
from unfoldtheory.tracing.moves import GATHER, dropout_op, gather_op, size_op
from unfoldtheory.tracing.refusals import unsupported
from unfoldtheory.tracing.values import Handler, packet

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
    "einsum": einsum_op,
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
        raise unsupported(node)
    if name in HANDLERS and (isinstance(target, torch._ops.OpOverload) or name in ("sym_size", "sym_numel")):
        return HANDLERS[name]
    raise unsupported(node)
