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
    reason:
        Why the result is not certified, in words (``""`` for a certified bound; scipy's
        ``OptimizeResult.message`` is the model). Left empty, an uncertified Bound derives it
        (:func:`default_reason`): from ``details`` (``"reason"``, then a failed multiplier
        ``"check"``, a search that ``"stopped"``, a solver ``"status"`` other than optimal), else a
        generic sentence that is true of every such Bound.
    """

    value: float
    kind: BoundKind
    quantity: str
    method: str
    certified: bool = False
    certificate: Any = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

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
        if not isinstance(self.reason, str):
            raise ValueError(f"Bound reason must be a str, got {type(self.reason).__name__}")
        if self.certified and self.reason:
            raise ValueError(f"a certified bound has no reason to be uncertified; got reason {self.reason!r}")
        # whether the reason was derived here (then replace() derives it afresh from the new fields)
        object.__setattr__(self, "_derived_reason", not self.certified and not self.reason)
        if not self.certified and not self.reason:
            object.__setattr__(self, "reason", default_reason(self.kind, self.details))

    def replace(self, **changes: Any) -> Bound:
        """A copy with some fields changed (the dataclass is frozen). A reason that was derived, or any reason of a
        copy made certified, is not carried over unless given: the copy derives its own."""
        if "reason" not in changes and (getattr(self, "_derived_reason", False) or changes.get("certified", self.certified)):
            changes["reason"] = ""
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
            "reason": self.reason,
        }

    def __str__(self) -> str:
        mark = "certified" if self.certified else "not certified"
        relation = {"upper": "<=", "lower": ">=", "estimate": "~"}[self.kind]
        why = f": {_shorten(self.reason, _STR_REASON)}" if not self.certified and self.kind != "estimate" else ""
        return f"{self.quantity} {relation} {self.value:.6g}  [{self.method}, {mark}, {self.seconds:.3g} s]{why}"

    def __repr__(self) -> str:
        """One line of at most :data:`REPR_MAX` characters, whatever the certificate and details (``to_dict()`` keeps
        everything)."""
        parts = [f"value={self.value!r}", f"kind={self.kind!r}", f"method={_shorten(self.method, 32)!r}",
                 f"certified={self.certified}", f"seconds={self.seconds:.3g}", f"quantity={_shorten(self.quantity, 40)!r}"]
        if not self.certified:
            parts.append(f"reason={_shorten(self.reason, 64)!r}")
        details = self.details if isinstance(self.details, dict) else {}
        keys = _shorten(", ".join(map(str, details)), 40)
        cert = _summary(self.certificate)
        parts += [f"certificate={_shorten(cert, 60, tail='}' if cert.startswith('{') else '')}",
                  f"details=<{len(details)} keys{': ' + keys if keys else ''}>"]
        return _shorten(f"Bound({', '.join(parts)})", REPR_MAX, tail=")")


REPR_MAX = 300
_STR_REASON = 120
_GENERIC = {"estimate": "an estimate bounds nothing; it is not certified"}
_NOT_CHECKED = "no certificate was checked"


def default_reason(kind: str, details: dict[str, Any]) -> str:
    """The reason an uncertified Bound of ``kind`` derives from its ``details`` (see :class:`Bound`): the first of
    ``details["reason"]``, ``details["check"]`` (a multiplier check that failed), ``details["stopped"]`` (why a search
    stopped) that is a non-empty string, else a solver ``details["status"]`` other than optimal, else
    ``"an estimate bounds nothing; it is not certified"`` (an estimate) or ``"no certificate was checked"``."""
    for key in ("reason", "check", "stopped"):
        text = details.get(key) if isinstance(details, dict) else None
        if isinstance(text, str) and text:
            return text
    status = details.get("status") if isinstance(details, dict) else None
    if isinstance(status, str) and status and status != "optimal":
        return f"solver status {status!r}, not optimal"
    return _GENERIC.get(kind, _NOT_CHECKED)


def _shorten(text: str, limit: int, tail: str = "") -> str:
    """``text`` on one line, cut to at most ``limit`` characters with an ellipsis (then ``tail``) marking the cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1 - len(tail)] + "…" + tail


def _summary(obj: Any, depth: int = 0) -> str:
    """A short description of a certificate or details: type and size, never the contents of an array."""
    if obj is None or isinstance(obj, (bool, int, np.bool_, np.integer)):
        return repr(obj.item() if isinstance(obj, np.generic) else obj)
    if isinstance(obj, (float, np.floating)):
        return f"{float(obj):.6g}"
    if isinstance(obj, str):
        return repr(_shorten(obj, 24))
    if isinstance(obj, np.ndarray):
        return f"<ndarray {obj.shape}>"
    if isinstance(obj, Bound):
        return f"<Bound {obj.kind} {obj.value:.6g}>"
    if isinstance(obj, dict):
        if depth > 0 or not obj:
            return f"<dict, {len(obj)} keys>"
        return "{" + ", ".join(f"{k}: {_summary(v, 1)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return f"<{type(obj).__name__}, {len(obj)} items>"
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return f"<{type(obj).__name__}, {len(dataclasses.fields(obj))} fields>"
    try:
        size = f", {len(obj)} items"
    except Exception:  # no length (or a broken one): the type alone
        size = ""
    return f"<{type(obj).__name__}{size}>"


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
