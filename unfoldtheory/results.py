"""The one result type that every analysis returns: :class:`Bound`.

A tool that prints, plots or compares bounds needs nothing else (DESIGN.md).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

BoundKind = Literal["upper", "lower", "estimate"]
KINDS: tuple[str, ...] = ("upper", "lower", "estimate")


@dataclass(frozen=True)
class Bound:
    """A number about a network or an algorithm, labelled with what it is and how it was found.

    Attributes
    ----------
    value:
        The number. ``inf`` is allowed for an upper bound that could not be made finite.
    kind:
        ``"upper"``, ``"lower"`` or ``"estimate"`` (an empirical number that bounds nothing).
    quantity:
        What is bounded, in words (e.g. ``"Lipschitz constant of the input-output map (l2)"``).
    method:
        How it was obtained (e.g. ``"lipsdp-neuron"``).
    certified:
        True only when a certificate was checked *after* the computation that produced it
        (multipliers re-verified in float64, a witness re-evaluated, a duality gap recomputed).
        An estimate is never certified.
    certificate:
        The evidence: multipliers, a witness input, a dual point, ...
    seconds:
        Wall-clock time spent.
    details:
        Anything else worth keeping (solver status, iterations, reasons a check failed).
    """

    value: float
    kind: BoundKind
    quantity: str
    method: str
    certified: bool = False
    certificate: Any = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Bound kind is {self.kind!r}; expected one of {KINDS}")
        value = float(self.value)
        if math.isnan(value):
            raise ValueError(f"Bound value for {self.quantity!r} ({self.method}) is NaN")
        object.__setattr__(self, "value", value)
        if self.certified and self.kind == "estimate":
            raise ValueError("an estimate cannot be certified; use kind 'upper' or 'lower'")
        if (self.kind == "upper" and value == -math.inf) or (self.kind == "lower" and value == math.inf):
            raise ValueError(f"a {self.kind} bound of {value} bounds nothing")
        if self.certified and math.isinf(value):
            raise ValueError("an infinite value cannot be a certified bound")
        if not (self.seconds >= 0 and math.isfinite(self.seconds)):
            raise ValueError(f"Bound seconds must be finite and >= 0, got {self.seconds}")
        if not self.quantity or not self.method:
            raise ValueError("Bound needs a non-empty quantity and method")

    def replace(self, **changes: Any) -> Bound:
        """A copy with some fields changed (the dataclass is frozen)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dictionary (numpy arrays become lists)."""
        return {
            "value": to_jsonable(self.value),
            "kind": self.kind,
            "quantity": self.quantity,
            "method": self.method,
            "certified": self.certified,
            "certificate": to_jsonable(self.certificate),
            "seconds": self.seconds,
            "details": to_jsonable(self.details),
        }

    def __str__(self) -> str:
        mark = "certified" if self.certified else "not certified"
        relation = {"upper": "<=", "lower": ">=", "estimate": "~"}[self.kind]
        return f"{self.quantity} {relation} {self.value:.6g}  [{self.method}, {mark}, {self.seconds:.3g} s]"


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, dataclasses and containers into plain JSON types."""
    if isinstance(obj, Bound):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)  # JSON has no inf/nan; keep them readable and explicit
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj
