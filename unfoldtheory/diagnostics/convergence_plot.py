"""The convergence figure: measured error against layer, with every certified bound as an envelope.

For each solver the median error over instances is a solid line and the range (minimum to maximum)
a shaded band; each certified per-layer bound is a dashed line in the same colour. A bound is a
worst case over its class, so it must lie above the band's top wherever the instances belong to that
class. Only certified, finite values are drawn: an uncertified layer (a refused certificate) ends the
envelope there, and the legend says from which layer on it was refused.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from matplotlib.figure import Figure

from unfoldtheory.diagnostics.figures import new_figure
from unfoldtheory.diagnostics.plot_support import HEIGHT, WIDTH, Palette, bound_values, finish, integer_ticks, legend_below
from unfoldtheory.results import Bound
from unfoldtheory.validation import as_finite_array


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


def convergence_plot(traces: Mapping[str, Any], bounds: Mapping[str, Any], path: str | os.PathLike[str], *,
                     title: str = "Error against layer with certified envelopes",
                     target: Literal["truth", "reference"] = "truth", ylabel: str | None = None,
                     return_figure: bool = False) -> list[Path] | tuple[list[Path], Figure]:
    """Plot error against layer (log y) with certified envelopes; save ``path``.png/.pdf and return both paths.

    ``traces`` maps a label to an :class:`~unfoldtheory.convergence.empirical.ErrorTrace` (its errors to
    the ground truth, or to the Lasso solutions with ``target="reference"``) or to an array of shape
    (K,) or (K, batch), layer k in row k − 1. ``bounds`` maps a label to a sequence of per-layer
    :class:`Bound` (layer k at index k − 1) or to a certificate with ``.errors``; a bound whose label
    matches a trace takes its colour. Lines are labelled ``"<name> (median)"`` and
    ``"<name>: certified bound…"``; ``return_figure=True`` also returns the (closed) figure.
    """
    if not traces:
        raise ValueError("no traces to plot")
    if target not in ("truth", "reference"):
        raise ValueError(f"target {target!r} is not known; choose 'truth' or 'reference'")
    fig, ax = new_figure(width=WIDTH, height=HEIGHT)
    color = Palette()
    for name, trace in traces.items():
        E = _errors(name, trace, target)
        layers = np.arange(1, E.shape[0] + 1)
        positive = np.where(E > 0, E, np.nan)
        ax.plot(layers, np.nanmedian(positive, axis=1), color=color(name), label=f"{name} (median)")
        if E.shape[1] > 1:
            ax.fill_between(layers, np.nanmin(positive, axis=1), np.nanmax(positive, axis=1), color=color(name), alpha=0.18,
                            linewidth=0)
    for name, seq in bounds.items():
        series = bound_values(_bounds(name, seq), f"bounds {name!r}")
        ok = series.certified & np.isfinite(series.values)
        refused = int(np.argmin(ok)) + 1 if not ok.all() else None
        suffix = "" if refused is None else f", refused from layer {refused}"
        if ok.any():
            ax.plot(np.arange(1, ok.size + 1), series.shown(ok), linestyle="--", color=color(name),
                    label=f"{name}: certified bound{suffix}")
        else:
            ax.plot([], [], linestyle="--", color=color(name), label=f"{name}: no certified bound{suffix}")
    ax.set_yscale("log")
    ax.set_xlabel("layer k")
    integer_ticks(ax.xaxis)
    ax.set_ylabel(ylabel or (r"$\|x_k - x_{\mathrm{true}}\|_2$" if target == "truth" else r"$\|x_k - x_{\mathrm{lasso}}\|_2$"))
    legend_below(ax)
    return finish(fig, path, title, ax, return_figure)
