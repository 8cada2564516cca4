"""Bounds beside what they bound, as ratios: one row per (group, method) on a logarithmic axis.

Used for generalization tables, where each bound on the expected loss is divided by the held-out
value of the quantity it covers: a ratio of 1 is a perfect bound, and a ratio below 1 would be a
violated one. Filled markers are certified, non-vacuous bounds; hollow markers are vacuous (they
reach the trivial bound); crosses are not certified.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from unfoldtheory.diagnostics.figures import new_figure
from unfoldtheory.diagnostics.plot_support import HEIGHT, WIDTH, Palette, finish, legend_below

ROW_HEIGHT = 0.28


def _entry(i: int, entry: Any) -> tuple[str, str, float, bool, bool]:
    if not isinstance(entry, Mapping):
        raise ValueError(f"entries[{i}] must be a mapping with group, method, ratio, vacuous, certified")
    missing = [k for k in ("group", "method", "ratio", "vacuous", "certified") if k not in entry]
    if missing:
        raise ValueError(f"entries[{i}] lacks {', '.join(missing)}")
    ratio = float(entry["ratio"])
    if not ratio > 0 or math.isnan(ratio):
        raise ValueError(f"entries[{i}] has ratio {ratio!r}; expected a positive number (inf is drawn at the edge)")
    return str(entry["group"]), str(entry["method"]), ratio, bool(entry["vacuous"]), bool(entry["certified"])


def bound_ratio_plot(entries: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], *,
                     title: str = "Bounds relative to the held-out loss", xlabel: str = "bound / held-out loss",
                     target: float | None = None, return_figure: bool = False) -> list[Path] | tuple[list[Path], Figure]:
    """One marker per entry (``group``, ``method``, ``ratio``, ``vacuous``, ``certified``), rows grouped by
    ``group`` and coloured by ``method``, on a log x axis with a line at 1 (and at ``target`` if given)."""
    rows = [_entry(i, e) for i, e in enumerate(entries)]
    if not rows:
        raise ValueError("no entries to plot")
    finite = [r[2] for r in rows if math.isfinite(r[2])]
    right = 3.0 * max([*finite, target or 1.0, 1.0])
    left = min([*finite, 1.0]) / 3.0
    fig, ax = new_figure(width=WIDTH, height=HEIGHT)
    color = Palette()
    labelled: set[str] = set()
    for y, (_group, method, ratio, vacuous, certified) in enumerate(rows):
        x = ratio if math.isfinite(ratio) else right / 1.5
        c = color(method)
        label = method if method not in labelled else None
        labelled.add(method)
        if not certified:
            ax.plot([x], [y], marker="x", color=c, ms=7, linestyle="none", label=label)
        else:
            ax.plot([x], [y], marker="o", color=c, ms=7, linestyle="none", label=label,
                    markerfacecolor="white" if vacuous else c)
    ax.axvline(1.0, color="black", lw=1.2, label="held-out loss (ratio 1)")
    if target is not None:
        ax.axvline(target, color="0.4", lw=1, linestyle="--", label=f"ratio {target:g}")
    ax.plot([], [], marker="o", color="0.3", markerfacecolor="white", linestyle="none", label="hollow: vacuous")
    ax.plot([], [], marker="x", color="0.3", linestyle="none", label="cross: not certified")
    ax.set_xscale("log")
    ax.set_xlim(left, right)
    ax.set_yticks(np.arange(len(rows)), [f"{g}: {m}" for g, m, *_ in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    legend_below(ax)  # sizes the figure for a standard plot plus the legend; swap the plot's height for the rows'
    legend_height = fig.get_size_inches()[1] - HEIGHT
    fig.set_size_inches(WIDTH + 1.5, 1.6 + ROW_HEIGHT * len(rows) + legend_height)
    return finish(fig, path, title, ax, return_figure)
