"""The convergence figure: measured error against layer, one panel per solver, with its certified bounds.

Each solver gets a panel of its own (shared axes, log y), in a colour of its own: the median error over
the sampled signals is a solid line and their range (minimum to maximum) a band, so bands of different
solvers never overlap. A certified per-layer bound of that solver is a line in its colour, one line
style per kind of certificate; it is a worst case over its class, so it must lie above the band
wherever the samples belong to that class. Only certified, finite values are drawn: where a
certificate is refused the bound ends, and a dotted vertical line marks the layer from which it was
refused. A bound that names no solver is drawn in black in every panel.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from unfoldtheory.diagnostics.figures import FONT, new_figure, save_figure, styled
from unfoldtheory.diagnostics.plot_support import Palette, bound_values, integer_ticks, legend_below, set_title
from unfoldtheory.results import Bound
from unfoldtheory.validation import as_finite_array

#: Height of one solver's panel (inches), with its name above it; the line styles of the kinds of certificates.
ROW = 1.05
STYLES = ("--", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (8, 2)))
REFUSED = (0, (1, 1.5))
BAND_ALPHA = 0.3


def _errors(name: str, trace: Any, target: str) -> np.ndarray:
    values = trace.errors(target) if hasattr(trace, "errors") else trace
    E = as_finite_array(values, f"trace {name!r}", ndim=(1, 2))
    if E.shape[0] == 0:
        raise ValueError(f"trace {name!r} has no layers")
    if np.any(E < 0):
        raise ValueError(f"trace {name!r} has negative errors")
    return E[:, None] if E.ndim == 1 else E


def _bounds(name: str, bounds: Any) -> list[Bound]:
    items = bounds.errors if hasattr(bounds, "errors") else bounds
    if isinstance(items, Bound) or not isinstance(items, Sequence) or not all(isinstance(b, Bound) for b in items):
        raise ValueError(f"bounds {name!r} must be a sequence of per-layer Bound objects (or a certificate with .errors)")
    return list(items)


def bound_owner(label: str, traces: Sequence[str]) -> tuple[str | None, str]:
    """The trace a bound label names and the kind of its certificate: ``"X"`` gives ``(X, "")``,
    ``"X: chain"`` gives ``(X, "chain")`` for the longest trace name X that fits, and any other label
    ``(None, label)``."""
    if label in traces:
        return label, ""
    named = [t for t in traces if label.startswith(f"{t}: ")]
    if not named:
        return None, label
    owner = max(named, key=len)
    return owner, label[len(owner) + 2:]


@styled
def convergence_plot(traces: Mapping[str, Any], bounds: Mapping[str, Any], path: str | os.PathLike[str], *,
                     title: str = "Error against layer with certified envelopes",
                     target: Literal["truth", "reference"] = "truth", ylabel: str | None = None,
                     return_figure: bool = False) -> list[Path] | tuple[list[Path], Figure]:
    """Plot error against layer (log y), one panel per trace, with certified envelopes; save ``path``.png/.pdf.

    ``traces`` maps a label to an :class:`~unfoldtheory.convergence.empirical.ErrorTrace` (its errors to
    the ground truth, or to the Lasso solutions with ``target="reference"``) or to an array of shape
    (K,) or (K, batch), layer k in row k − 1. ``bounds`` maps a label to a sequence of per-layer
    :class:`Bound` (layer k at index k − 1) or to a certificate with ``.errors``; a label ``"<trace>"`` or
    ``"<trace>: <certificate>"`` puts the bound in that trace's panel and colour (:func:`bound_owner`).
    The drawn lines are labelled ``"<name> (median)"``, bands ``"<name> (sampled range)"`` and bounds
    ``"<label>: certified bound…"``; the legend names what a line style or band is. Returns the paths
    (with the closed figure if ``return_figure``).
    """
    if not traces:
        raise ValueError("no traces to plot")
    if target not in ("truth", "reference"):
        raise ValueError(f"target {target!r} is not known; choose 'truth' or 'reference'")
    names = list(traces)
    errors = {name: _errors(name, trace, target) for name, trace in traces.items()}
    checked = {label: bound_values(_bounds(label, seq), f"bounds {label!r}") for label, seq in bounds.items()}
    fig, axes = new_figure(nrows=len(names), height=ROW, sharex=True, sharey=True)
    axes = np.atleast_1d(axes)
    panel = dict(zip(names, axes, strict=True))
    color = Palette()
    legend: dict[str, Any] = {"median of the samples": Line2D([], [], color="0.25")}
    for name, E in errors.items():
        ax, c = panel[name], color(name)
        layers = np.arange(1, E.shape[0] + 1)
        positive = np.where(E > 0, E, np.nan)
        ax.plot(layers, np.nanmedian(positive, axis=1), color=c, label=f"{name} (median)")
        if E.shape[1] > 1:
            ax.fill_between(layers, np.nanmin(positive, axis=1), np.nanmax(positive, axis=1), facecolor=c,
                            alpha=BAND_ALPHA, edgecolor="none", label=f"{name} (sampled range)")
            legend["range of the samples (min to max)"] = Patch(facecolor="0.25", alpha=BAND_ALPHA)
        ax.set_title(name, loc="left", fontsize=FONT, pad=2)
    styles: dict[str, Any] = {}
    any_refused = False
    for label, series in checked.items():
        owner, kind = bound_owner(label, names)
        style = styles.setdefault(kind, STYLES[len(styles) % len(STYLES)])
        ok = series.certified & np.isfinite(series.values)
        refused = int(np.argmin(ok)) + 1 if not ok.all() else None
        suffix = "" if refused is None else f", refused from layer {refused}"
        c = "black" if owner is None else color(owner)
        for ax in [panel[owner]] if owner is not None else axes:
            ax.plot(np.arange(1, ok.size + 1), series.shown(ok), linestyle=style, color=c,
                    label=f"{label}: {'certified' if ok.any() else 'no certified'} bound{suffix}")
            if refused is not None:
                ax.axvline(refused, color=c, linestyle=REFUSED, lw=0.9)
        legend[f"certified bound: {kind}" if kind else "certified bound"] = Line2D([], [], color="0.25", linestyle=style)
        any_refused = any_refused or refused is not None
    if any_refused:
        legend["bound refused from this layer on"] = Line2D([], [], color="0.25", linestyle=REFUSED, lw=0.9)
    for ax in axes:
        ax.set_yscale("log")
    integer_ticks(axes[-1].xaxis)
    axes[-1].set_xlabel("layer k")
    default = r"$\|x_k - x_{\mathrm{true}}\|_2$" if target == "truth" else r"$\|x_k - x_{\mathrm{lasso}}\|_2$"
    fig.supylabel(ylabel or default, fontsize=FONT)
    legend_below(axes[-1], list(legend.values()), list(legend), height=ROW * len(names) + 0.35)
    set_title(fig, title)
    paths = save_figure(fig, Path(path))
    return (paths, fig) if return_figure else paths
