"""The NotRepresentable messages of ops the tracer cannot map (the op and where the user's code calls it)."""

from __future__ import annotations

from torch import fx

from unfoldtheory.spec import NotRepresentable
from unfoldtheory.tracing.export import describe
from unfoldtheory.tracing.values import Pending


def unsupported(node: fx.Node, why: str = "") -> NotRepresentable:
    return NotRepresentable(f"{describe(node)} is not a linear map or a supported activation{why}")


def pending_error(p: Pending) -> NotRepresentable:
    return unsupported(p.node, " (sign and abs are recognised only in the soft-threshold pattern "
                                "sign(v) * relu(abs(v) - t) with a constant t >= 0)")
