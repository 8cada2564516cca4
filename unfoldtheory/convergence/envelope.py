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

from unfoldtheory.diagnostics import new_figure, save_figure
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


def envelope_figure(traces: Mapping[str, Any], bounds: Mapping[str, Any], path: str | os.PathLike[str], title: str,
                    *, target: Literal["truth", "reference"] = "truth", ylabel: str | None = None) -> list[Path]:
    """Plot error against layer (log y) with certified envelopes; save ``path``.png/.pdf and return both paths.

    ``traces`` maps a label to an :class:`~unfoldtheory.convergence.empirical.ErrorTrace` (its errors to
    the ground truth, or to the Lasso solutions with ``target="reference"``) or to an array of shape
    (K,) or (K, batch), layer k in row k − 1. ``bounds`` maps a label to a sequence of per-layer
    :class:`Bound` (layer k at index k − 1) or to a certificate with ``.errors``; a bound whose label
    matches a trace takes its colour.
    """
    if not traces:
        raise ValueError("no traces to plot")
    if target not in ("truth", "reference"):
        raise ValueError(f"target {target!r} is not known; choose 'truth' or 'reference'")
    fig, ax = new_figure(width=7.0, height=5.2)
    colors: dict[str, Any] = {}
    cycle = iter(f"C{i}" for i in range(10_000))
    for name, trace in traces.items():
        E = _errors(name, trace, target)
        layers = np.arange(1, E.shape[0] + 1)
        color = colors.setdefault(name, next(cycle))
        positive = np.where(E > 0, E, np.nan)
        ax.plot(layers, np.nanmedian(positive, axis=1), color=color, label=f"{name} (median)")
        if E.shape[1] > 1:
            ax.fill_between(layers, np.nanmin(positive, axis=1), np.nanmax(positive, axis=1), color=color, alpha=0.18,
                            linewidth=0)
    for name, seq in bounds.items():
        items = _bounds(name, seq)
        color = colors.setdefault(name, next(cycle))
        ok = np.array([b.certified and np.isfinite(b.value) for b in items], dtype=bool)
        refused = int(np.argmin(ok)) + 1 if not ok.all() else None
        suffix = "" if refused is None else f", refused from layer {refused}"
        if ok.any():
            values = np.array([b.value if good else np.nan for b, good in zip(items, ok, strict=True)])
            ax.plot(np.arange(1, len(items) + 1), values, linestyle="--", color=color, label=f"{name}: certified bound{suffix}")
        else:
            ax.plot([], [], linestyle="--", color=color, label=f"{name}: no certified bound{suffix}")
    ax.set_yscale("log")
    ax.set_xlabel("layer k")
    ax.set_ylabel(ylabel or ("‖x_k − x_true‖₂" if target == "truth" else "‖x_k − x_lasso‖₂"))
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    return save_figure(fig, Path(path))
