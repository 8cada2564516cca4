"""Where each entry of a traced spec comes from: the learned parameters it depends on, and how.

A :class:`Provenance` is attached to every weight ``W_kj``, bias ``b_k``, threshold ``θ_k`` (and readout ``C_k``)
of a traced :class:`~unfoldtheory.spec.NetworkSpec`. Its ``kind``:

* ``"constant"``: no learned parameter (buffers, literals, the identity of a residual connection);
* ``"direct"``: the entry equals ``scale · R(p)`` for ONE parameter ``p`` and a fixed rearrangement ``R``
  (transpose, reshape, select, permute, each entry of ``p`` used at most once), so
  ``‖Δentry‖_F ≤ |scale|·‖Δp‖_F`` exactly; for a threshold, ``max(scale·R(p), 0)`` (1-Lipschitz) also counts;
* ``"derived"``: anything else (``I − γAᵀA``, a convolution matrix, a sum of two paths); ``detail`` spells the ops.

The combination rules below are exact statements about the ops they follow, so a ``"direct"`` label is a proof
of the Lipschitz relation, not a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

KINDS = ("constant", "direct", "derived")
_MAX_DETAIL = 240


def _short(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


@dataclass(frozen=True)
class Provenance:
    """How one spec entry depends on the learned parameters (see the module docstring)."""

    parameters: tuple[str, ...]
    kind: str
    scale: float
    detail: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"provenance kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "direct" and len(self.parameters) != 1:
            raise ValueError(f"a direct provenance names exactly one parameter, got {self.parameters}")
        if self.kind == "constant" and self.parameters:
            raise ValueError(f"a constant provenance names no parameter, got {self.parameters}")


ZERO = Provenance((), "constant", 1.0, "0")


def constant(detail: str) -> Provenance:
    return Provenance((), "constant", 1.0, _short(detail))


def parameter(name: str) -> Provenance:
    return Provenance((name,), "direct", 1.0, name)


def rearranged(prov: Provenance, op: str) -> Provenance:
    """``R(entry)`` for a rearrangement that uses each entry at most once: a direct entry stays direct."""
    return Provenance(prov.parameters, prov.kind, prov.scale, _short(f"{op}({prov.detail})"))


def scaled(prov: Provenance, factor: float, op: str) -> Provenance:
    """``factor · entry`` for a fixed number ``factor``: the scale multiplies."""
    if prov is ZERO:
        return ZERO
    return Provenance(prov.parameters, prov.kind, prov.scale * float(factor), _short(f"{op}({prov.detail}, {factor:.6g})"))


def nonnegative_part(prov: Provenance) -> Provenance:
    """``max(entry, 0)``, 1-Lipschitz entrywise: a direct entry stays direct (said in the detail)."""
    return Provenance(prov.parameters, prov.kind, prov.scale,
                      _short(f"max({prov.detail}, 0)" + (" (max(·, 0) is 1-Lipschitz)" if prov.kind == "direct" else "")))


def combined(op: str, provs: Sequence[Provenance]) -> Provenance:
    """Any other op of several entries: constant if none depends on a parameter, else derived."""
    names: list[str] = []
    for p in provs:
        names += [n for n in p.parameters if n not in names]
    detail = _short(f"{op}({', '.join(p.detail for p in provs)})")
    return Provenance(tuple(names), "derived", 1.0, detail) if names else Provenance((), "constant", 1.0, detail)


def added(op: str, first: Provenance, second: Provenance) -> Provenance:
    """The sum of two entries; adding an exact zero changes nothing."""
    if first is ZERO:
        return second
    if second is ZERO:
        return first
    return combined(op, [first, second])
