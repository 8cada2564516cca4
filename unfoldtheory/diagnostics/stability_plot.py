"""The stability figure: the local Lipschitz interval over balls around test inputs against the radius.

One panel per model, sized for one column of a paper (3.4 in wide, every text ≥ 8 pt), log–log axes. At each radius
the certified upper ends over the test inputs are a solid line (their median) in a band (their quartiles), the
certified witness lower ends a dashed line with hollow markers in a lighter band; the x ticks sit at the radii,
labelled in percent of ‖y‖. The local constant grows with the
radius towards the global one, so the global interval is drawn as its limit: horizontal lines (certified upper
solid, certified lower dashed, gray) with the band between them. An uncertified local end is a cross with its own
legend entry; an uncertified global end a dotted line labelled so; neither enters a median, band or certified line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from unfoldtheory.diagnostics.figures import COLUMN, FONT, new_figure, save_figure, styled
from unfoldtheory.diagnostics.plot_support import Palette, bound_values, legend_below, set_title
from unfoldtheory.results import Bound
from unfoldtheory.validation import as_finite_array

#: The height of one model's panel (inches).
PANEL = 2.1
GLOBAL = "0.35"


def _grid(seqs: Any, what: str, rows: int, kind: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per radius, the values of a row of Bounds and the mask of those drawn as certified (finite, > 0: log axis)."""
    if isinstance(seqs, (Bound, str)) or not isinstance(seqs, Sequence) or len(seqs) != rows:
        raise ValueError(f"{what} must be a sequence of {rows} rows (one per radius) of Bounds")
    series = [bound_values(row, f"{what}[{i}]", kinds=(kind,)) for i, row in enumerate(seqs)]
    return [s.values for s in series], [s.certified & np.isfinite(s.values) & (s.values > 0) for s in series]


def _local(ax: Any, x: np.ndarray, values: list[np.ndarray], ok: list[np.ndarray], color: str, upper: bool,
           labels: dict[str, Any]) -> None:
    med = np.array([np.median(v[m]) if m.any() else np.nan for v, m in zip(values, ok, strict=True)])
    lo = np.array([np.percentile(v[m], 25) if m.any() else np.nan for v, m in zip(values, ok, strict=True)])
    hi = np.array([np.percentile(v[m], 75) if m.any() else np.nan for v, m in zip(values, ok, strict=True)])
    name = "certified upper" if upper else "witness lower"
    ax.fill_between(x, lo, hi, where=np.isfinite(med), color=color, alpha=0.25 if upper else 0.12, linewidth=0)
    labels[f"local {name}: median, quartiles"] = ax.plot(
        x, med, color=color, linestyle="-" if upper else "--", marker="o" if upper else "s", ms=4,
        markerfacecolor=color if upper else "none")[0]
    bad_x = np.concatenate([np.full(int((~m & np.isfinite(v) & (v > 0)).sum()), xi)
                            for xi, v, m in zip(x, values, ok, strict=True)])
    bad_y = np.concatenate([v[~m & np.isfinite(v) & (v > 0)] for v, m in zip(values, ok, strict=True)])
    if bad_x.size:
        labels[f"local {name.split()[-1]}: not certified"] = ax.plot(
            bad_x, bad_y, linestyle="none", marker="x", ms=5, color=color)[0]


def _global(ax: Any, interval: tuple[Bound | None, Bound | None], labels: dict[str, Any]) -> None:
    lower, upper = interval
    certified = {}
    for role, b in (("upper", upper), ("lower", lower)):
        if b is None or not np.isfinite(b.value) or b.value <= 0:
            continue
        if b.certified:
            certified[role] = b.value
            labels[f"global {role} (limit r → ∞)"] = ax.axhline(b.value, color=GLOBAL, lw=1.2,
                                                                  linestyle="-" if role == "upper" else "--")
        else:
            labels[f"global {role}: not certified"] = ax.axhline(b.value, color=GLOBAL, lw=1.0, linestyle=":")
    if len(certified) == 2:
        ax.axhspan(certified["lower"], certified["upper"], color=GLOBAL, alpha=0.12, linewidth=0)


@styled
def stability_plot(radii: Mapping[str, Any], uppers: Mapping[str, Sequence[Sequence[Any]]],
                   lowers: Mapping[str, Sequence[Sequence[Any]]], path: str | os.PathLike[str], *,
                   global_intervals: Mapping[str, tuple[Bound | None, Bound | None]] | None = None,
                   xlabel: str = "radius r / ‖y‖", ylabel: str = "local ℓ2 Lipschitz constant",
                   title: str | None = None, return_figure: bool = False
                   ) -> list[Path] | tuple[list[Path], Figure]:
    """Plot, per model, the local interval against the radius (log–log) with the global interval as its limit.

    ``radii[model]`` holds R positive x values (one per radius); ``uppers[model]`` and ``lowers[model]`` R rows of
    N Bounds (one per test input; ``None`` for a missing one) of kinds ``"upper"`` and ``"lower"``;
    ``global_intervals[model]`` = ``(lower, upper)`` Bounds of the global constant (either may be None). Saves
    ``path``.png/.pdf and returns the paths (with the closed figure if ``return_figure``).
    """
    models = list(uppers)
    if not models:
        raise ValueError("no models to plot: uppers is empty")
    if set(lowers) != set(models) or set(radii) != set(models):
        raise ValueError(f"radii, uppers and lowers must name the same models; got {sorted(radii)}, {models}, {sorted(lowers)}")
    fig, axes = new_figure(nrows=len(models), width=COLUMN, height=PANEL)
    axes = np.atleast_1d(axes)
    color, labels = Palette(), {}
    for ax, model in zip(axes, models, strict=True):
        x = as_finite_array(radii[model], f"radii[{model!r}]", ndim=1)
        if x.size == 0 or np.any(x <= 0):
            raise ValueError(f"radii[{model!r}] must be non-empty and positive (log axis)")
        order = np.argsort(x)
        ups, up_ok = _grid(uppers[model], f"uppers[{model!r}]", x.size, "upper")
        lows, low_ok = _grid(lowers[model], f"lowers[{model!r}]", x.size, "lower")
        pick = [int(k) for k in order]
        _local(ax, x[order], [ups[k] for k in pick], [up_ok[k] for k in pick], color("upper"), True, labels)
        _local(ax, x[order], [lows[k] for k in pick], [low_ok[k] for k in pick], color("lower"), False, labels)
        _global(ax, (global_intervals or {}).get(model, (None, None)), labels)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(x, [f"{100 * v:.3g} %" for v in x], fontsize=FONT)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel(ylabel, fontsize=FONT)
        ax.set_title(model, fontsize=FONT + 1)
        ax.tick_params(which="both", labelsize=FONT)
    axes[-1].set_xlabel(xlabel, fontsize=FONT)
    legend_below(axes[-1], list(labels.values()), list(labels), height=PANEL * len(models) + (0.3 if title else 0.0))
    if title:
        set_title(fig, title)
    paths = save_figure(fig, Path(path))
    return (paths, fig) if return_figure else paths
