"""Figure style and saving: every figure is sized for a paper, written as PNG and PDF, atomically.

The style is that of a two-column paper: a figure is one column wide (:data:`COLUMN`, 3.4 in) or, with
several panels side by side, the page (:data:`PAGE`, 7 in); every text is at least :data:`FONT` points;
tick labels are plain numbers (no offset or ``1e-5`` multiplier at the end of an axis; on a log axis
``0.5`` and ``2`` where every tick lies in ``[10⁻³, 10⁴)``, powers of ten otherwise).
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import matplotlib

matplotlib.use("Agg")  # headless: figures are files, never windows
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.textpath import TextPath
from matplotlib.ticker import LogFormatterSciNotation, ScalarFormatter
from matplotlib.transforms import offset_copy

from unfoldtheory.diagnostics.files import atomic_write_bytes

P = ParamSpec("P")
R = TypeVar("R")

#: Width of one column and of the page of a two-column paper (inches); the smallest font size (points).
COLUMN, PAGE, FONT = 3.4, 7.0, 8.0
#: Height of one panel (inches), before titles and legends.
PANEL = 2.3
#: The gid of a legend that sits under its axes (:func:`~unfoldtheory.diagnostics.plot_support.legend_below`).
BELOW = "legend below the axes"
#: Points between the figure's title and the axes under it.
TITLE_GAP = 4.0
#: Tick labels on a log axis are plain numbers while the whole axis lies in this range.
PLAIN_RANGE = (1e-3, 1e4)

STYLE = {
    "figure.dpi": 150,
    "savefig.dpi": 200,
    "font.size": FONT,
    "axes.titlesize": FONT + 1,
    "axes.labelsize": FONT,
    "xtick.labelsize": FONT,
    "ytick.labelsize": FONT,
    "legend.fontsize": FONT,
    "figure.titlesize": FONT + 1,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.3,
    "lines.markersize": 4,
    "legend.frameon": False,
    "axes.formatter.useoffset": False,
    "pdf.fonttype": 42,  # TrueType in the PDF: text stays text for a journal's toolchain
}


class PlainLogFormatter(LogFormatterSciNotation):
    """Log-axis tick labels as plain numbers (``0.2``, ``5``) when the axis lies in :data:`PLAIN_RANGE`;
    otherwise matplotlib's powers of ten. Which ticks get a label is matplotlib's choice, unchanged."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        label = super().__call__(x, pos)
        low, high = sorted(self.axis.get_view_interval())
        if not label or not (PLAIN_RANGE[0] <= low and high < PLAIN_RANGE[1]):
            return label
        return self.fix_minus(f"{x:.4g}")


def text_width(text: str, size: float = FONT) -> float:
    """The width of ``text`` set at ``size`` points, in points (mathtext included)."""
    return float(TextPath((0, 0), text, size=size).get_extents().width) if text else 0.0


def wrap(text: str, width: float, size: float = FONT) -> str:
    """``text`` broken at spaces into lines at most ``width`` points wide (a longer word keeps its line;
    text with mathtext is left whole, since a break inside ``$…$`` would break the formula)."""
    if "$" in text or text_width(text, size) <= width:
        return text
    lines: list[str] = []
    for word in text.split(" "):
        if lines and text_width(f"{lines[-1]} {word}", size) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return "\n".join(lines)


def styled(draw: Callable[P, R]) -> Callable[P, R]:
    """``draw`` run under :data:`STYLE`, so that every artist it creates (labels, legends, lines) has the package's
    sizes, without changing matplotlib's global settings."""

    @functools.wraps(draw)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with plt.rc_context(STYLE):
            return draw(*args, **kwargs)

    return run


def new_figure(ncols: int = 1, nrows: int = 1, width: float | None = None, height: float = PANEL,
               **subplots: Any) -> tuple[Figure, Any]:
    """A figure in the package style with ``nrows × ncols`` axes.

    ``width`` is the whole figure's (default: one column, :data:`COLUMN`, for a single column of panels; the page,
    :data:`PAGE`, for several side by side); ``height`` is that of each row. Further keywords go to
    :func:`matplotlib.pyplot.subplots` (``sharex``, ``gridspec_kw``, ...).
    """
    if width is None:
        width = COLUMN if ncols == 1 else PAGE
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width, height * nrows), squeeze=True, **subplots)
    return fig, axes


def paper_ticks(fig: Figure) -> None:
    """Tick labels of :data:`FONT` points on every axis of ``fig``, as plain numbers: no offset or scientific
    multiplier on a linear axis, :class:`PlainLogFormatter` on a log axis (a formatter a plot chose is kept)."""
    for ax in fig.axes:
        ax.tick_params(which="both", labelsize=FONT)
        for axis in (ax.xaxis, ax.yaxis):
            for get, put in ((axis.get_major_formatter, axis.set_major_formatter),
                             (axis.get_minor_formatter, axis.set_minor_formatter)):
                formatter = get()
                if type(formatter) is ScalarFormatter:
                    formatter.set_useOffset(False)
                    formatter.set_scientific(False)
                elif type(formatter) is LogFormatterSciNotation:
                    put(PlainLogFormatter(axis.get_transform().base, labelOnlyBase=formatter.labelOnlyBase,
                                          minor_thresholds=formatter.minor_thresholds))


def _fit_to_figure(fig: Figure) -> bool:
    """Wrap an axis label or title that runs past the figure's edge (it is centred on its axes, which
    need not be centred on the figure); True if one was wrapped."""
    renderer = fig.canvas.get_renderer()
    frame = fig.bbox
    points = 72.0 / fig.dpi
    changed = False
    for ax in fig.axes:
        for text, vertical in ((ax.title, False), (ax.xaxis.label, False), (ax.yaxis.label, True)):
            if not text.get_text() or "\n" in text.get_text():
                continue
            box = text.get_window_extent(renderer)
            lo, hi, low, high = (box.y0, box.y1, frame.y0, frame.y1) if vertical else (box.x0, box.x1, frame.x0, frame.x1)
            if lo >= low and hi <= high:
                continue
            centre = (lo + hi) / 2.0
            room = 2.0 * (min(centre - low, high - centre) - 2.0) * points
            wrapped = wrap(text.get_text(), room, text.get_fontsize())
            changed = changed or wrapped != text.get_text()
            text.set_text(wrapped)
    return changed


def _place_legends_below(fig: Figure) -> bool:
    """Move each legend marked :data:`BELOW` to just under its axes' tick labels and axis label, however many
    lines those have; True if there was one."""
    renderer = fig.canvas.get_renderer()
    moved = False
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None or legend.get_gid() != BELOW:
            continue
        labels = ax.xaxis.get_tightbbox(renderer)
        gap = 3.0 + (0.0 if labels is None else max(0.0, ax.bbox.y0 - labels.y0) * 72.0 / fig.dpi)
        legend.set_bbox_to_anchor((0.5, 0.0), transform=offset_copy(ax.transAxes, fig=fig, y=-gap, units="points"))
        legend.borderaxespad = 0.0
        moved = True
    return moved


def _under_title(fig: Figure) -> float:
    """Pixels by which the axes (their titles included) must move down to sit :data:`TITLE_GAP` points under the
    figure's title; tight_layout allows for the title but not for a title placed left on an axes."""
    title = next((t for t in fig.texts if fig.get_suptitle() and t.get_text() == fig.get_suptitle()), None)
    if title is None or not fig.axes:
        return 0.0
    renderer = fig.canvas.get_renderer()
    top = max(ax.get_tightbbox(renderer).y1 for ax in fig.axes)
    return max(0.0, top - title.get_window_extent(renderer).y0 + TITLE_GAP * fig.dpi / 72.0)


def save_figure(fig: Figure, stem: str | os.PathLike[str]) -> list[Path]:
    """Give ``fig`` plain tick labels (:func:`paper_ticks`), lay it out tightly, save ``stem.png`` and ``stem.pdf``
    (atomically) and close it; returns both paths."""
    stem = Path(stem)
    paths = []
    with plt.rc_context(STYLE):
        paper_ticks(fig)
        fig.tight_layout(pad=0.3)
        if _fit_to_figure(fig) | _place_legends_below(fig):
            fig.tight_layout(pad=0.3)
        overlap = _under_title(fig)
        if overlap > 0:
            fig.tight_layout(pad=0.3, rect=(0.0, 0.0, 1.0, 1.0 - overlap / fig.bbox.height))
        for ext in ("png", "pdf"):
            buf = io.BytesIO()
            fig.savefig(buf, format=ext)
            paths.append(atomic_write_bytes(stem.with_suffix(f".{ext}"), buf.getvalue()))
    plt.close(fig)
    return paths
