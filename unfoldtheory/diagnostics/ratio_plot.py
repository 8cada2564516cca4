"""Bounds beside what they bound, as ratios: a panel per group, a row per method, on a logarithmic axis.

Used for generalization tables, where each bound on the expected loss is divided by the held-out
value of the quantity it covers: a ratio of 1 is a perfect bound, and a ratio below 1 would be a
violated one. Each group (a model) is a panel of its own, one row per method. Filled markers are
certified, non-vacuous bounds; hollow markers are vacuous (they reach the trivial bound); crosses
are not certified.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from unfoldtheory.diagnostics.figures import FONT, new_figure, save_figure, styled
from unfoldtheory.diagnostics.plot_support import Palette, legend_below, set_title, wrap

#: Height of one row and of a group's title (inches); the widest method label (points); the marker size.
ROW_HEIGHT, TITLE, LABEL_WIDTH, MARKER = 0.2, 0.22, 100.0, 5


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


@styled
def bound_ratio_plot(entries: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], *,
                     title: str = "Bounds relative to the held-out loss", xlabel: str = "bound / held-out loss",
                     target: float | None = None, return_figure: bool = False) -> list[Path] | tuple[list[Path], Figure]:
    """One marker per entry (``group``, ``method``, ``ratio``, ``vacuous``, ``certified``) on a log x axis with a
    line at 1 (and at ``target`` if given): a panel per ``group`` (in order of first appearance, shared x axis),
    a row per method, labelled by it and coloured by it in every panel."""
    rows = [_entry(i, e) for i, e in enumerate(entries)]
    if not rows:
        raise ValueError("no entries to plot")
    finite = [r[2] for r in rows if math.isfinite(r[2])]
    right = 3.0 * max([*finite, target or 1.0, 1.0])
    left = min([*finite, 1.0]) / 3.0
    groups: dict[str, list[tuple[str, float, bool, bool]]] = {}
    for group, method, ratio, vacuous, certified in rows:
        groups.setdefault(group, []).append((method, ratio, vacuous, certified))
    labels = {group: [wrap(method, LABEL_WIDTH) for method, *_ in items] for group, items in groups.items()}
    pitch = {group: [1.0 + 0.5 * label.count("\n") for label in names] for group, names in labels.items()}
    fig, axes = new_figure(nrows=len(groups), height=1.0, sharex=True,
                           gridspec_kw={"height_ratios": [sum(p) for p in pitch.values()]})
    axes = np.atleast_1d(axes)
    color = Palette()
    for ax, (group, items) in zip(axes, groups.items(), strict=True):
        rows_at = np.cumsum(pitch[group]) - np.array(pitch[group]) / 2.0  # a row as tall as its label
        for y, (method, ratio, vacuous, certified) in zip(rows_at, items, strict=True):
            x = ratio if math.isfinite(ratio) else right / 1.5
            c = color(method)
            if not certified:
                ax.plot([x], [y], marker="x", color=c, ms=MARKER, linestyle="none", label=f"{group}: {method}")
            else:
                ax.plot([x], [y], marker="o", color=c, ms=MARKER, linestyle="none", label=f"{group}: {method}",
                        markerfacecolor="white" if vacuous else c)
        ax.axvline(1.0, color="black", lw=1.0, label="held-out loss (ratio 1)")
        if target is not None:
            ax.axvline(target, color="0.4", lw=0.9, linestyle="--", label=f"ratio {target:g}")
        ax.set_yticks(rows_at, labels[group])
        ax.set_ylim(sum(pitch[group]), 0.0)  # first entry on top
        ax.set_title(group, loc="left", fontsize=FONT, pad=2)
        ax.grid(False, axis="y")
    ax = axes[-1]
    ax.set_xscale("log")
    ax.set_xlim(left, right)
    ax.set_xlabel(xlabel)
    keys = {"held-out loss (ratio 1)": Line2D([], [], color="black", lw=1.0)}
    if target is not None:
        keys[f"ratio {target:g}"] = Line2D([], [], color="0.4", lw=0.9, linestyle="--")
    if any(certified and not vacuous for *_, vacuous, certified in rows):
        keys["filled: certified"] = Line2D([], [], marker="o", color="0.3", linestyle="none", ms=MARKER)
    if any(certified and vacuous for *_, vacuous, certified in rows):
        keys["hollow: certified, vacuous"] = Line2D([], [], marker="o", color="0.3", markerfacecolor="white",
                                                    linestyle="none", ms=MARKER)
    if not all(certified for *_, certified in rows):
        keys["cross: not certified"] = Line2D([], [], marker="x", color="0.3", linestyle="none", ms=MARKER)
    lines = sum(sum(p) for p in pitch.values())
    legend_below(ax, list(keys.values()), list(keys), height=ROW_HEIGHT * lines + TITLE * len(groups) + 0.75)
    set_title(fig, title)
    paths = save_figure(fig, Path(path))
    return (paths, fig) if return_figure else paths
