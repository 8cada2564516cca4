"""What every diagnostic figure shares: Bound sequences as arrays, stable colours per label, saving.

A figure draws only what a Bound certifies: :func:`bound_values` splits a per-point sequence of
Bounds into its values and the masks *certified* and *vacuous* (``details["vacuous"]``), so that
each plot can draw certified points, mark the others, and never pass an uncertified number off as
a bound.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from unfoldtheory.diagnostics.figures import save_figure
from unfoldtheory.results import Bound


@dataclass(frozen=True)
class BoundSeries:
    """Per-point values of a sequence of Bounds (NaN where a point is missing)."""

    values: np.ndarray
    certified: np.ndarray
    vacuous: np.ndarray

    def shown(self, mask: np.ndarray) -> np.ndarray:
        """The finite values where ``mask`` holds, NaN elsewhere (a gap in the drawn line)."""
        return np.where(mask & np.isfinite(self.values), self.values, np.nan)


def bound_values(items: Any, what: str, *, length: int | None = None, kinds: Iterable[str] | None = None) -> BoundSeries:
    """Check that ``items`` is a sequence of :class:`Bound` (or ``None`` for a missing point) and
    return its values and masks; ``length`` and ``kinds`` restrict what is accepted."""
    if isinstance(items, (Bound, str)) or not isinstance(items, Sequence):
        raise ValueError(f"{what} must be a sequence of Bound objects (None for a missing point), got {type(items).__name__}")
    allowed = None if kinds is None else tuple(kinds)
    for i, b in enumerate(items):
        if b is not None and not isinstance(b, Bound):
            raise ValueError(f"{what}[{i}] is a {type(b).__name__}, not a Bound")
        if b is not None and allowed is not None and b.kind not in allowed:
            raise ValueError(f"{what}[{i}] is a bound of kind {b.kind!r}; expected {' or '.join(map(repr, allowed))}")
    if length is not None and len(items) != length:
        raise ValueError(f"{what} has {len(items)} entries; expected {length} (one per point)")
    values = np.array([np.nan if b is None else b.value for b in items], dtype=float)
    certified = np.array([b is not None and b.certified for b in items], dtype=bool)
    vacuous = np.array([b is not None and bool(b.details.get("vacuous", False)) for b in items], dtype=bool)
    return BoundSeries(values, certified, vacuous)


#: One size for every diagnostic figure (inches) before its legend, which sits below the axes and
#: adds ``LEGEND_ROW`` inches per row; labels up to ``SHORT_LABEL`` characters share a row in pairs.
WIDTH, HEIGHT, LEGEND_ROW, SHORT_LABEL = 6.4, 4.0, 0.2, 40


class Palette:
    """A colour per label, in order of first use; a label keeps its colour across all series."""

    def __init__(self) -> None:
        self._colors: dict[str, str] = {}

    def __call__(self, label: str) -> str:
        return self._colors.setdefault(label, f"C{len(self._colors) % 10}")


def legend_below(ax: Any) -> None:
    """The legend under the axes, so that it never hides data (the same place in every figure).

    Two columns when the labels are short, one otherwise; the figure grows by one text line per
    legend row, so that the axes keep their size and the legend is never cut off.
    """
    labels = ax.get_legend_handles_labels()[1]
    ncol = 2 if max(map(len, labels), default=0) <= SHORT_LABEL else 1
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=ncol, frameon=False)
    ax.figure.set_size_inches(WIDTH, HEIGHT + LEGEND_ROW * math.ceil(len(labels) / ncol))


def integer_ticks(axis: Any) -> None:
    """Ticks at whole numbers only (layers, depths)."""
    axis.set_major_locator(MaxNLocator(integer=True))


def finish(fig: Figure, path: str | os.PathLike[str], title: str, ax: Any,
           return_figure: bool) -> list[Path] | tuple[list[Path], Figure]:
    """Set the title, save ``path``.png/.pdf, and return the paths (with the figure if asked)."""
    ax.set_title(title)
    paths = save_figure(fig, Path(path))
    return (paths, fig) if return_figure else paths
