"""The Lipschitz figure: the interval [witness lower bound, certified upper bound] against depth.

The true ℓ2 Lipschitz constant of a network lies in ``[lower, upper]`` whenever both Bounds are
certified (the lower one is a re-evaluated witness ratio ‖f(y₂) − f(y₁)‖/‖y₂ − y₁‖, the upper one a
checked certificate; :mod:`unfoldtheory.lipschitz`). Per model, each upper-bound method is a solid
line with filled markers, the lower bound a dotted line with hollow markers, and the interval between
the lower bound and the tightest certified upper bound is shaded. An uncertified value is drawn as a
cross with its own legend entry, never on a certified line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from unfoldtheory.diagnostics.figures import new_figure, styled
from unfoldtheory.diagnostics.plot_support import (
    BoundSeries,
    Palette,
    bound_values,
    finish,
    integer_ticks,
    legend_below,
)
from unfoldtheory.validation import as_finite_array

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _methods(model: str, entry: Any) -> dict[str, Any]:
    """``{method: series}``; a plain sequence is one unnamed method."""
    if isinstance(entry, Mapping):
        if not entry:
            raise ValueError(f"uppers[{model!r}] has no methods")
        return dict(entry)
    return {"": entry}


def _uncertified(ax: Any, x: np.ndarray, series: BoundSeries, color: str, label: str) -> None:
    mask = ~series.certified & np.isfinite(series.values)
    if mask.any():
        ax.plot(x, series.shown(mask), linestyle="none", marker="x", color=color, label=f"{label}, not certified")


@styled
def lipschitz_depth_plot(depths: Any, uppers: Mapping[str, Any], lowers: Mapping[str, Sequence[Any]] | None,
                         path: str | os.PathLike[str], *, title: str = "Lipschitz constant against depth",
                         ylabel: str = "ℓ2 Lipschitz constant", return_figure: bool = False
                         ) -> list[Path] | tuple[list[Path], Figure]:
    """Plot certified upper and witness lower Lipschitz bounds against depth (log y); save PNG and PDF.

    ``depths`` is the x axis (N values). ``uppers`` maps a model to a sequence of N upper
    :class:`~unfoldtheory.results.Bound` (``None`` for a missing point) or to ``{method: sequence}``;
    ``lowers`` maps a model to N lower Bounds. Lines are labelled ``"<model>[ · <method>]: certified
    upper"`` and ``"<model>: witness lower"``. Returns the paths (and the closed figure with
    ``return_figure=True``).
    """
    x = as_finite_array(depths, "depths", ndim=1)
    if x.size == 0:
        raise ValueError("depths is empty")
    lowers = dict(lowers or {})
    if not uppers and not lowers:
        raise ValueError("no bounds to plot: uppers and lowers are both empty")
    fig, ax = new_figure()
    color = Palette()
    tightest: dict[str, np.ndarray] = {}
    for model, entry in uppers.items():
        for i, (method, seq) in enumerate(_methods(model, entry).items()):
            what = f"uppers[{model!r}]" + (f"[{method!r}]" if method else "")
            series = bound_values(seq, what, length=x.size, kinds=("upper",))
            label = f"{model} · {method}" if method else model
            ok = series.certified & np.isfinite(series.values)
            ax.plot(x, series.shown(ok), color=color(model), marker=MARKERS[i % len(MARKERS)], ms=5,
                    label=f"{label}: certified upper")
            _uncertified(ax, x, series, color(model), f"{label}: upper")
            tightest[model] = np.fmin(tightest.get(model, np.full(x.size, np.nan)), series.shown(ok))
    for model, seq in lowers.items():
        series = bound_values(seq, f"lowers[{model!r}]", length=x.size, kinds=("lower",))
        ok = series.certified & np.isfinite(series.values)
        ax.plot(x, series.shown(ok), color=color(model), linestyle=":", marker="o", ms=5, markerfacecolor="none",
                label=f"{model}: witness lower")
        _uncertified(ax, x, series, color(model), f"{model}: lower")
        if model in tightest:
            lo, hi = series.shown(ok), tightest[model]
            both = np.isfinite(lo) & np.isfinite(hi)
            ax.fill_between(x, lo, hi, where=both, color=color(model), alpha=0.15, linewidth=0)
    ax.set_yscale("log")
    ax.set_xlabel("depth (layers)")
    integer_ticks(ax.xaxis)
    ax.set_ylabel(ylabel)
    legend_below(ax)
    return finish(fig, path, title, ax, return_figure)
