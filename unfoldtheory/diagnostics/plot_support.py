"""What every diagnostic figure shares: Bound sequences as arrays, stable colours per label, a legend
below the axes that fits the width, titles wrapped to it, saving.

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
from matplotlib.legend import Legend
from matplotlib.ticker import MaxNLocator

from unfoldtheory.diagnostics.figures import BELOW, FONT, PANEL, save_figure, text_width, wrap
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


#: Height of one legend row (inches) at :data:`FONT` points, and the margin left and right of a legend or title.
LEGEND_ROW, MARGIN = 0.16, 0.15


class Palette:
    """A colour per label, in order of first use; a label keeps its colour across all series."""

    def __init__(self) -> None:
        self._colors: dict[str, str] = {}

    def __call__(self, label: str) -> str:
        return self._colors.setdefault(label, f"C{len(self._colors) % 10}")


def _available(fig: Figure) -> float:
    """Points of the figure's width that a legend or title may use."""
    return (fig.get_size_inches()[0] - 2 * MARGIN) * 72.0


def legend_below(ax: Any, handles: Sequence[Any] | None = None, labels: Sequence[str] | None = None, *,
                 height: float = PANEL) -> Legend:
    """The legend under the axes, so that it never hides data (the same place in every figure); returns it.

    Entries default to the axes' own, one per label. Two columns when they fit the figure's width, one
    otherwise, with a label too long for a line wrapped; the figure keeps its width and gets ``height``
    inches for its axes plus one :data:`LEGEND_ROW` per legend line, so that the legend is never cut off.
    """
    if handles is None or labels is None:
        handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))  # one entry per label: the first handle keeps it
    handles, labels = list(unique.values()), list(unique)
    fig = ax.figure
    handle = (2.0 + 0.8) * FONT  # handle length and the pad after it
    column = handle + max(map(text_width, labels), default=0.0)
    ncol = 2 if len(labels) > 1 and 2 * column + 2.0 * FONT <= _available(fig) else 1
    if ncol == 1:
        labels = [wrap(label, _available(fig) - handle) for label in labels]
        rows = sum(label.count("\n") + 1 for label in labels)
    else:
        rows = math.ceil(len(labels) / 2)
    legend = ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, frameon=False,
                       fontsize=FONT)
    legend.set_gid(BELOW)  # save_figure puts it under the tick labels and axis label once they are laid out
    fig.set_size_inches(fig.get_size_inches()[0], height + LEGEND_ROW * rows + 0.1)
    return legend


def integer_ticks(axis: Any) -> None:
    """Ticks at whole numbers only (layers, depths)."""
    axis.set_major_locator(MaxNLocator(integer=True))


def set_title(fig: Figure, title: str, ax: Any = None) -> None:
    """``title`` on ``ax`` (on the figure when ``ax`` is None), wrapped to the figure's width."""
    text = wrap(title, _available(fig), FONT + 1)
    if ax is None:
        fig.suptitle(text, fontsize=FONT + 1)
    else:
        ax.set_title(text, fontsize=FONT + 1)


def finish(fig: Figure, path: str | os.PathLike[str], title: str, ax: Any,
           return_figure: bool) -> list[Path] | tuple[list[Path], Figure]:
    """Set the title (wrapped to the width), save ``path``.png/.pdf, and return the paths (with the figure if asked)."""
    set_title(fig, title, ax)
    paths = save_figure(fig, Path(path))
    return (paths, fig) if return_figure else paths
