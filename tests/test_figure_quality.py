"""Every figure the report makes passes a look at the width of a paper's column (issue 14, item 5).

Read from the matplotlib objects after drawing: one column of panels is at most 3.5 in wide (panels side by side
at most the 7 in page), every drawn text is at least 8 pt, lies inside the figure and overlaps no other text, no
axis shows an offset or scientific multiplier, and a figure with several series has a legend without duplicates.
The convergence figure also gives each solver a band of its own colour and a legend that says what a band is.
"""

import math

import matplotlib.colors
import numpy as np
import pytest
from figure_checks import assert_paper_quality, legend_labels

from unfoldtheory.diagnostics import (
    bound_ratio_plot,
    convergence_plot,
    generalization_plot,
    lipschitz_depth_plot,
    stability_plot,
    step_size_plot,
)
from unfoldtheory.diagnostics.convergence_plot import bound_owner
from unfoldtheory.diagnostics.figures import COLUMN, PAGE
from unfoldtheory.report import baselines
from unfoldtheory.results import Bound


def certified(value, kind="upper", **details):
    return Bound(value, kind, "q", "m", certified=True, details=details)


# ---------------------------------------------------------------- the convergence figure


LONG = "ALISTA (Theorem 1 thresholds)"


def convergence_data():
    """Five solvers (one with a long name) over 12 layers, a bound with a refused tail and one that names no solver."""
    rng = np.random.default_rng(0)
    K = 12
    decay = 0.8 ** np.arange(1, K + 1)[:, None]
    traces = {name: decay * rng.uniform(0.1, 1.0, (K, 30)) * scale
              for name, scale in (("ISTA", 1.0), ("FISTA", 0.9), ("UnfoldedISTA", 0.7), ("ALISTA", 0.5), (LONG, 1.1))}
    top = {name: E.max(axis=1) for name, E in traces.items()}
    bounds = {f"{LONG}: Theorem 1": [certified(3 * v) for v in top[LONG]],
              "UnfoldedISTA: coherence chain": [certified(2 * v) if k < 7 else Bound(math.inf, "upper", "q", "m")
                                                for k, v in enumerate(top["UnfoldedISTA"])],
              "class bound": [certified(5.0)] * K}
    return traces, bounds


def test_the_convergence_figure_fits_a_column_with_a_band_and_colour_per_solver(tmp_path):
    traces, bounds = convergence_data()
    paths, fig = convergence_plot(traces, bounds, tmp_path / "c", title="Error against layer, 2-sparse signals with "
                                  "|x_i| ≤ 1", return_figure=True)
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert_paper_quality(fig, series=len(traces) + len(bounds))
    assert len(fig.axes) == len(traces)  # a panel per solver: bands never overlap
    bands = [c for ax in fig.axes for c in ax.collections]
    colours = [tuple(np.round(b.get_facecolor()[0][:3], 3)) for b in bands]
    assert len(bands) == len(traces) and len(set(colours)) == len(traces)
    assert [ax.get_title(loc="left") for ax in fig.axes] == list(traces)
    labels = legend_labels(fig)
    assert {"median of the samples", "range of the samples (min to max)", "certified bound: Theorem 1",
            "certified bound: coherence chain", "certified bound: class bound", "bound refused from this layer on"} == set(labels)
    assert not any(name in label for name in traces for label in labels)  # the panel names the solver, once
    # each bound is drawn in its own solver's panel, in that solver's colour, through its certified values
    for label, seq in bounds.items():
        owner, _ = bound_owner(label, list(traces))
        shown = np.array([b.value if b.certified else np.nan for b in seq])
        axes = [fig.axes[list(traces).index(owner)]] if owner else fig.axes
        for ax in axes:
            line = next(ln for ln in ax.lines if ln.get_label().startswith(f"{label}: "))
            assert np.array_equal(np.isnan(line.get_ydata()), np.isnan(shown))
            assert np.allclose(line.get_ydata()[~np.isnan(shown)], shown[~np.isnan(shown)], rtol=0, atol=0)
            if owner:
                band = next(c for c in ax.collections)
                assert np.allclose(matplotlib.colors.to_rgb(line.get_color()), band.get_facecolor()[0][:3])
    assert any(np.allclose(ln.get_xdata(), 8) for ln in fig.axes[2].lines)  # the chain: refused from layer 8 on


def test_a_bound_names_its_solver_by_the_longest_matching_name():
    names = ["ALISTA", "ALISTA (Theorem 1 thresholds)"]
    assert bound_owner("ALISTA (Theorem 1 thresholds): Theorem 1", names) == (names[1], "Theorem 1")
    assert bound_owner("ALISTA: coherence chain", names) == ("ALISTA", "coherence chain")
    assert bound_owner("ALISTA", names) == ("ALISTA", "")
    assert bound_owner("other", names) == (None, "other")


# ---------------------------------------------------------------- the other report figures


def test_the_lipschitz_figure(tmp_path):
    depths = [1, 2, 3, 6, 12]
    uppers = {model: [certified(scale * (1 + 0.1 * d)) for d in depths] for model, scale in
              (("UnfoldedISTA", 0.75), ("ALISTA", 2.8), ("LISTA", 0.4))}
    uppers["LISTA"][-1] = Bound(9.0, "upper", "q", "m")
    lowers = {model: [certified(0.9 * b.value, "lower") for b in seq] for model, seq in uppers.items()}
    _, fig = lipschitz_depth_plot(depths, uppers, lowers, tmp_path / "l", title="Lipschitz interval against depth "
                                  "(m=64, n=128)", return_figure=True)
    assert_paper_quality(fig, series=6)
    assert fig.axes[0].get_yscale() == "log"


def test_the_generalization_ratio_figure(tmp_path):
    methods = ["covering", "spectral", "spectral PAC-Bayes", "l-inf peeling", "PAC-Bayes (data-free prior)",
               "PAC-Bayes (split prior)"]
    entries = [{"group": g, "method": m, "ratio": 2.0 * 10 ** (i % 5), "vacuous": i == 0, "certified": i != 1}
               for g in ("UnfoldedISTA", "ALISTA", "LISTA") for i, m in enumerate(methods)]
    entries[-1]["ratio"] = math.inf
    _, fig = bound_ratio_plot(entries, tmp_path / "r", target=2.0, return_figure=True,
                              title="Bounds on the expected loss / held-out loss (2000 samples)",
                              xlabel="bound on E loss / compared held-out loss")
    assert_paper_quality(fig, series=len(methods))
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["UnfoldedISTA", "ALISTA", "LISTA"]
    assert [t.get_text().replace("\n", " ") for t in fig.axes[0].get_yticklabels()] == methods


def test_the_stability_figure(tmp_path):
    radii = [0.01, 0.05]
    uppers = {m: [[certified(s * (1 + r)), certified(s * (1.1 + r))] for r in radii] for m, s in (("A", 0.74), ("B", 2.7))}
    lowers = {m: [[certified(0.9 * b.value, "lower") for b in row] for row in rows] for m, rows in uppers.items()}
    glob = {m: (certified(0.8 * rows[-1][-1].value, "lower"), certified(1.2 * rows[-1][-1].value)) for m, rows in uppers.items()}
    _, fig = stability_plot({m: radii for m in uppers}, uppers, lowers, tmp_path / "s", global_intervals=glob,
                            return_figure=True)
    assert_paper_quality(fig, series=4)


def test_the_baselines_figure_spans_the_page_with_readable_text(tmp_path, monkeypatch):
    K, n = 80, 6
    rng = np.random.default_rng(1)
    errors = {"ISTA": 0.9 ** np.arange(K + 1)[:, None] * rng.uniform(0.5, 1.0, n),
              "FISTA": 0.8 ** np.arange(K + 1)[:, None] * rng.uniform(0.1, 1.0, n)}
    rates = list(rng.uniform(0.78, 0.86, n))
    k0s = [None, 49, 20, None, 30, 40]
    pairs = [(r, r * 1.001) for r, k0 in zip(rates, k0s, strict=True) if k0 is not None]
    saved, kept = baselines.save_figure, []
    monkeypatch.setattr(baselines, "save_figure", lambda fig, stem: kept.append(fig) or saved(fig, stem))
    paths = baselines._figures(errors, rates, k0s, pairs, K, tmp_path)
    assert [p.name for p in paths] == ["baselines_error.png", "baselines_error.pdf"]
    assert kept[0].get_size_inches()[0] == pytest.approx(PAGE)  # two panels side by side: the page's width
    assert_paper_quality(kept[0], series=4)


def test_the_step_size_and_generalization_figures(tmp_path):
    steps = np.array([0.5, 1.0, 1.7, 2.4]) / 4.0
    _, fig = step_size_plot({"UnfoldedISTA": steps, "ALISTA": steps[:3] * 0.9}, 0.25, tmp_path / "st", return_figure=True)
    assert_paper_quality(fig, series=2)
    sizes = [10, 40, 160, 640]
    gaps = [Bound(v, "estimate", "gap", "test − train", details={"interval": (v - 0.01, v + 0.01), "confidence": 0.95})
            for v in (-0.005, 0.02, 0.01, 0.004)]
    bounds = {"covering": [certified(v, trivial_bound=50.0, vacuous=v >= 50) for v in (400.0, 60.0, 20.0, 9.0)],
              "spectral": [Bound(9.0, "upper", "gap", "s"), certified(4.0), None, certified(1.0)]}
    _, fig = generalization_plot(sizes, gaps, bounds, tmp_path / "g", return_figure=True)
    assert_paper_quality(fig, series=3)


def test_the_style_sizes_a_figure_for_one_column():
    from unfoldtheory.diagnostics import new_figure

    fig, _ = new_figure()
    assert fig.get_size_inches()[0] == pytest.approx(COLUMN)
    fig, _ = new_figure(ncols=2)
    assert fig.get_size_inches()[0] == pytest.approx(PAGE)


def _offset(ax):
    ax.plot([1, 2, 3], [1e5 + 1e-3, 1e5 + 2e-3, 1e5 + 3e-3])
    ax.ticklabel_format(useOffset=True)  # matplotlib's default, which the package style turns off


def _duplicate(ax):
    ax.plot([1, 2], [1, 2], label="a")
    ax.plot([1, 2], [2, 1], label="a")
    ax.legend()


def _overlap(ax):
    ax.plot([1, 2], [1, 2])
    ax.text(1.5, 1.5, "one label")
    ax.text(1.5, 1.5, "another")


@pytest.mark.parametrize(("draw", "message"), [
    (lambda ax: (ax.plot([1, 2], [1, 2]), ax.figure.set_size_inches(6.4, 4.8)), "in wide"),
    (lambda ax: (ax.plot([1, 2], [1, 2]), ax.set_xlabel("small", fontsize=6)), "below"),
    (_offset, "offset"),
    (lambda ax: ax.plot([1, 2], [1, 2]), "no legend"),
    (_duplicate, "duplicate"),
    (_overlap, "overlapping"),
    (lambda ax: (ax.plot([1, 2], [1, 2]), ax.set_title("a title far too long to fit one column of a paper at this size")),
     "cut off"),
])
def test_the_checks_can_fail(draw, message):
    """Figures with one defect each fail the checks, naming it."""
    import matplotlib.pyplot as plt

    from unfoldtheory.diagnostics.figures import STYLE

    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(COLUMN, 2.4))
        draw(ax)
        if message != "cut off":
            fig.tight_layout()
        with pytest.raises(AssertionError, match=message):
            assert_paper_quality(fig, series=2 if message in ("no legend", "duplicate") else 1)
    plt.close(fig)


def test_the_models_nmse_figure_fits_a_column(tmp_path, monkeypatch):
    from unfoldtheory import comparison
    from unfoldtheory.diagnostics import plot_support

    rows = [comparison.MethodResult(name, paradigm, list(-3.0 * np.arange(1, 9) * rate), 0, 0.0, 0, 0.0)
            for name, paradigm, rate in (("ISTA", "classical", 0.5), ("FISTA", "classical", 0.8),
                                         ("LISTA", "learned objective parameters", 1.5),
                                         ("ALISTA", "learned hyperparameters", 1.4))]
    saved, kept = plot_support.save_figure, []
    monkeypatch.setattr(plot_support, "save_figure", lambda fig, stem: kept.append(fig) or saved(fig, stem))
    paths = comparison.nmse_figure(rows, tmp_path / "nmse", "NMSE against layer (m=64, n=128)")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert_paper_quality(kept[0], series=4)
