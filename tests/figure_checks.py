"""What every report figure must pass at a paper's column width, read from the matplotlib objects after a draw
(used by tests/test_figure_quality.py; the stability figure's test can use it too)."""

import itertools

import matplotlib.text
from matplotlib.backends.backend_agg import FigureCanvasAgg

from unfoldtheory.diagnostics.figures import FONT

#: Widest figure for one column of panels and for panels side by side (inches).
ONE_COLUMN, TWO_COLUMNS = 3.5, 7.1


def _drawn_tick_labels(axis):
    """The tick labels the last draw showed: those of ticks inside the view interval, with text."""
    lo, hi = sorted(axis.get_view_interval())
    slack = 1e-9 * max(abs(lo), abs(hi), 1e-300)
    out = []
    for ticks, locs in ((axis.get_major_ticks(), axis.get_majorticklocs()), (axis.get_minor_ticks(), axis.get_minorticklocs())):
        for tick, loc in zip(ticks, locs, strict=False):
            if lo - slack <= loc <= hi + slack and tick.label1.get_visible() and tick.label1.get_text():
                out.append(tick.label1)
    return out


def drawn_texts(fig):
    """Every text the figure shows: drawn tick labels, axis labels, titles, legend entries, figure titles."""
    FigureCanvasAgg(fig).draw()  # a closed figure has lost its canvas; this one also gives the text extents
    tick_labels = {id(t.label1) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
                   for t in [*axis.get_major_ticks(), *axis.get_minor_ticks()]}
    tick_labels |= {id(t.label2) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
                    for t in [*axis.get_major_ticks(), *axis.get_minor_ticks()]}
    others = [t for t in fig.findobj(matplotlib.text.Text) if id(t) not in tick_labels and t.get_visible() and t.get_text()]
    return others + [t for ax in fig.axes for axis in (ax.xaxis, ax.yaxis) for t in _drawn_tick_labels(axis)]


def legend_labels(fig):
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def assert_paper_quality(fig, *, series: int):
    """The checks every report figure passes; ``series`` is how many data series it draws."""
    columns = len({round(ax.get_position().x0, 3) for ax in fig.axes})
    width = fig.get_size_inches()[0]
    assert width <= (ONE_COLUMN if columns == 1 else TWO_COLUMNS), f"{width:.2f} in wide with {columns} column(s)"
    texts = drawn_texts(fig)
    small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < FONT]
    assert not small, f"text below {FONT} pt: {small}"
    renderer = fig.canvas.get_renderer()  # the Agg canvas of drawn_texts
    box = fig.bbox
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    outside = [text for text, b in boxes if b.x0 < box.x0 - 1 or b.x1 > box.x1 + 1 or b.y0 < box.y0 - 1 or b.y1 > box.y1 + 1]
    assert not outside, f"text cut off at the figure's edge: {outside}"
    overlapping = [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2)
                   if min(ba.x1, bb.x1) - max(ba.x0, bb.x0) > 1 and min(ba.y1, bb.y1) - max(ba.y0, bb.y0) > 1]
    assert not overlapping, f"overlapping text: {overlapping}"
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            assert axis.get_offset_text().get_text() == "", f"offset/multiplier {axis.get_offset_text().get_text()!r}"
            for label in _drawn_tick_labels(axis):
                assert "e-" not in label.get_text() and "e+" not in label.get_text(), label.get_text()
    labels = legend_labels(fig)
    if series > 1:
        assert labels, "several series but no legend"
    assert len(labels) == len(set(labels)), f"duplicate legend entries: {labels}"
