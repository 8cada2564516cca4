"""The generalization figure: measured gap and bounds on the gap against the training-set size.

The measured gap ``test loss − train loss`` (a Bound of kind ``"estimate"`` from
:func:`unfoldtheory.generalization.empirical_gap`) is drawn in black with its confidence interval
(``details["interval"]``) as error bars; each bound on the gap (kind ``"upper"``) is a line through
its certified values, with hollow markers where ``details["vacuous"]`` says it reaches the trivial
bound ``b`` (the range of the clipped loss, which any gap respects) and crosses where it is not
certified. The region above ``b`` is shaded: a bound there says nothing. Both axes are logarithmic,
so gaps ≤ 0 are not drawn (the legend counts them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from unfoldtheory.diagnostics.figures import new_figure, styled
from unfoldtheory.diagnostics.plot_support import Palette, bound_values, finish, legend_below
from unfoldtheory.validation import as_finite_array


def _intervals(gaps: Sequence[Any]) -> np.ndarray:
    """(2, N) lower and upper ends of each gap's confidence interval (NaN where absent)."""
    out = np.full((2, len(gaps)), np.nan)
    for i, g in enumerate(gaps):
        interval = None if g is None else g.details.get("interval")
        if interval is not None:
            lo, hi = as_finite_array(interval, f"gaps[{i}].details['interval']", shape=(2,))
            if lo > hi:
                raise ValueError(f"gaps[{i}] has an interval ({lo}, {hi}) with its ends reversed")
            out[:, i] = lo, hi
    return out


def _trivial(trivial: Any, bounds: Mapping[str, Sequence[Any]], n: int) -> np.ndarray:
    """The level above which every bound is vacuous: given, or the largest ``details["trivial_bound"]``."""
    if trivial is not None:
        level = as_finite_array(trivial, "trivial", ndim=(0, 1))
        if level.ndim == 1 and level.size != n:
            raise ValueError(f"trivial has {level.size} entries; expected {n} (one per sample size)")
        return np.broadcast_to(level, (n,)).astype(float)
    level = np.full(n, np.nan)
    for seq in bounds.values():
        for i, b in enumerate(seq):
            value = None if b is None else b.details.get("trivial_bound")
            if value is not None and np.isfinite(float(value)):
                level[i] = np.fmax(level[i], float(value))
    return level


@styled
def generalization_plot(sample_sizes: Any, gaps: Sequence[Any], bounds: Mapping[str, Sequence[Any]],
                        path: str | os.PathLike[str], *, title: str = "Generalization gap against sample size",
                        trivial: Any = None, ylabel: str = "gap (expected − training loss)",
                        return_figure: bool = False) -> list[Path] | tuple[list[Path], Figure]:
    """Plot the measured gap (with its interval) and each bound on it against sample size, log-log.

    ``sample_sizes`` has N values; ``gaps`` is N estimate Bounds (``None`` for a missing point);
    ``bounds`` maps a method to N upper Bounds. ``trivial`` (a number or N numbers) is the level of
    the vacuous region; by default the largest ``details["trivial_bound"]`` of the bounds at each
    size. Lines are labelled ``"measured gap…"`` and ``"<method>"``; returns the paths (and the
    closed figure with ``return_figure=True``).
    """
    x = as_finite_array(sample_sizes, "sample_sizes", ndim=1)
    if x.size == 0 or np.any(x <= 0):
        raise ValueError(f"sample_sizes must be a non-empty list of positive sizes, got {x.tolist()}")
    measured = bound_values(gaps, "gaps", length=x.size, kinds=("estimate",))
    interval = _intervals(gaps)
    series = {method: bound_values(seq, f"bounds[{method!r}]", length=x.size, kinds=("upper",))
              for method, seq in bounds.items()}
    level = _trivial(trivial, bounds, x.size)
    shown = np.where(measured.values > 0, measured.values, np.nan)
    has_interval = np.isfinite(interval).all(axis=0) & np.isfinite(shown)
    drawn = np.concatenate([shown, np.where(has_interval & (interval[1] > 0), interval[1], np.nan),
                            *[s.shown(s.values > 0) for s in series.values()],
                            np.where(level > 0, level, np.nan)])
    if not np.isfinite(drawn).any():
        raise ValueError("nothing positive to draw on a log axis: every gap and bound is missing or ≤ 0")
    bottom, top = float(np.nanmin(drawn)) / 3.0, float(np.nanmax(drawn)) * 3.0

    fig, ax = new_figure()
    ax.set_xscale("log")
    ax.set_yscale("log")
    color = Palette()
    hidden = int(np.sum(measured.values <= 0))
    confidence = next((g.details["confidence"] for g in gaps if g is not None and "confidence" in g.details), None)
    label = "measured gap" + ("" if confidence is None else f" ({float(confidence):.0%} interval)")
    label += f", {hidden} value(s) ≤ 0 not shown" if hidden else ""
    ax.plot(x, shown, color="black", marker="o", ms=4, lw=2, label=label)
    if has_interval.any():
        # a log axis cannot show an end ≤ 0: the bar then runs off the bottom of the axis
        yerr = np.clip(np.stack([shown - np.maximum(interval[0], bottom / 10.0), interval[1] - shown]), 0.0, None)
        ax.errorbar(x[has_interval], shown[has_interval], yerr=yerr[:, has_interval], fmt="none", ecolor="black",
                    capsize=3, lw=1)
    any_vacuous = False
    for method, s in series.items():
        ok = s.certified & np.isfinite(s.values) & (s.values > 0)
        c = color(method)
        ax.plot(x, s.shown(ok), color=c, marker="o", ms=5, label=method)
        ax.plot(x, s.shown(ok & s.vacuous), color=c, linestyle="none", marker="o", ms=5, markerfacecolor="white")
        any_vacuous |= bool((ok & s.vacuous).any())
        loose = ~s.certified & np.isfinite(s.values) & (s.values > 0)
        if loose.any():
            ax.plot(x, s.shown(loose), color=c, linestyle="none", marker="x", label=f"{method}, not certified")
    if any_vacuous:
        ax.plot([], [], color="0.3", linestyle="none", marker="o", ms=5, markerfacecolor="white",
                label="hollow marker: vacuous bound")
    if np.isfinite(level).any():
        ax.fill_between(x, np.where(level > 0, level, np.nan), top, color="0.5", alpha=0.15, linewidth=0,
                        label="vacuous (≥ trivial bound b)")
    ax.set_ylim(bottom, top)
    ax.set_xlabel("training samples")
    ax.set_ylabel(ylabel)
    legend_below(ax)
    return finish(fig, path, title, ax, return_figure)
