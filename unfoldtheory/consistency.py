"""Two certified ends of one interval must not contradict each other.

A certified lower bound ℓ and a certified upper bound u on the same quantity q both claim to be rigorous:
ℓ ≤ q ≤ u. Then ``ℓ > u`` proves that one of the two certificates is wrong, so it is an error that names
both, never a row of a table. Nothing is allowed for: each certified value already carries its own
rounding argument, and a margin here would hide exactly the defect the check exists to catch.
Uncertified bounds promise nothing and are not compared.

Every place that computes both ends of an interval (the report's Lipschitz section, ``unfoldtheory
analyze``, exact or local bounds) calls :func:`check_interval`.
"""

from __future__ import annotations

from unfoldtheory.results import Bound


class InconsistentBounds(ValueError):
    """A certified lower bound above a certified upper bound of the same quantity."""

    def __init__(self, what: str, lower: Bound, upper: Bound) -> None:
        self.what, self.lower, self.upper = what, lower, upper
        super().__init__(f"{what}: the certified lower bound {lower.value!r} ({lower.method}) exceeds the certified upper "
                         f"bound {upper.value!r} ({upper.method}); both claim to be rigorous, so one certificate is wrong")


def check_interval(lower: Bound, upper: Bound, what: str) -> None:
    """Raise :class:`InconsistentBounds` when both bounds are certified and ``lower.value > upper.value``.

    ``lower`` must have kind ``"lower"`` and ``upper`` kind ``"upper"`` (a ValueError otherwise);
    ``what`` names the quantity in the message.
    """
    if not isinstance(what, str) or not what:
        raise ValueError(f"what must be a non-empty string naming the quantity, got {what!r}")
    for name, bound, kind in (("lower", lower, "lower"), ("upper", upper, "upper")):
        if not isinstance(bound, Bound):
            raise ValueError(f"{name} must be a Bound, got {type(bound).__name__}")
        if bound.kind != kind:
            raise ValueError(f"{name} is a Bound of kind {bound.kind!r} ({bound.method}); expected kind {kind!r}")
    if lower.certified and upper.certified and lower.value > upper.value:
        raise InconsistentBounds(what, lower, upper)


__all__ = ["InconsistentBounds", "check_interval"]
