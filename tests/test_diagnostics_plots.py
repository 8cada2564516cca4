"""Every diagnostic figure kind is rendered to PNG and PDF and holds the series it was given; the
bound table marks what is not a certified bound and round-trips its values through CSV and JSON."""

import csv
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unfoldtheory import lipschitz
from unfoldtheory.convergence.empirical import error_trace
from unfoldtheory.convergence.envelope import envelope_figure
from unfoldtheory.diagnostics import (
    bound_ratio_plot,
    classical_step,
    convergence_plot,
    generalization_plot,
    learned_steps,
    lipschitz_depth_plot,
    step_size_plot,
    table,
    table_markdown,
)
from unfoldtheory.generalization import empirical_gap
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.results import Bound
from unfoldtheory.unfold import ALISTA, LISTA, UnfoldedISTA


def assert_rendered(paths):
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert paths[0].read_bytes().startswith(b"\x89PNG") and paths[0].stat().st_size > 1000
    assert paths[1].read_bytes().startswith(b"%PDF") and paths[1].stat().st_size > 1000


def lines_by_label(fig):
    return {line.get_label(): line for ax in fig.axes for line in ax.lines if not line.get_label().startswith("_")}


def same(y, expected):
    """Equal, NaN where the other is NaN."""
    y, expected = np.asarray(y, dtype=float), np.asarray(expected, dtype=float)
    return y.shape == expected.shape and np.array_equal(np.isnan(y), np.isnan(expected)) and \
        np.allclose(y[~np.isnan(y)], expected[~np.isnan(expected)], rtol=0, atol=0)


@pytest.fixture(scope="module")
def problem():
    return SparseRecovery(6, 8, 0.3, seed=0)


def test_convergence_plot_draws_medians_and_certified_envelopes(tmp_path, problem):
    Y, X = problem.sample(5, seed=1)
    K = 6
    trace = error_trace("ista", Y, X, A=problem.A, lam=problem.lam, layers=K, reference="none")
    fista = error_trace("fista", Y, X, A=problem.A, lam=problem.lam, layers=K, reference="none").to_truth.mean(axis=1)
    top = trace.to_truth.max(axis=1)
    bounds = [Bound(2 * t, "upper", "error", "test", certified=k < 4) for k, t in enumerate(top)]
    paths, fig = convergence_plot({"ISTA": trace, "FISTA": fista}, {"ISTA": bounds}, tmp_path / "conv", title="errors",
                                  return_figure=True)
    assert_rendered(paths)
    lines = lines_by_label(fig)
    assert set(lines) == {"ISTA (median)", "FISTA (median)", "ISTA: certified bound, refused from layer 5"}
    assert same(lines["ISTA (median)"].get_ydata(), np.median(trace.to_truth, axis=1))
    assert same(lines["FISTA (median)"].get_ydata(), fista)
    assert same(lines["ISTA: certified bound, refused from layer 5"].get_ydata(), [*(2 * top[:4]), np.nan, np.nan])
    assert same(lines["ISTA (median)"].get_xdata(), np.arange(1, K + 1))
    assert lines["ISTA: certified bound, refused from layer 5"] in fig.axes[0].lines  # in the panel of its trace
    assert fig.axes[0].get_yscale() == "log" and fig.get_suptitle() == "errors"
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["ISTA", "FISTA"]
    assert_rendered(envelope_figure({"ISTA": trace}, {"ISTA": bounds}, tmp_path / "alias", "same figure"))


def test_lipschitz_depth_plot_shows_the_interval_of_real_bounds(tmp_path, problem):
    depths = [1, 2, 3]
    specs = [UnfoldedISTA(problem.A, K, problem.lam).spec() for K in depths]
    uppers = {"UnfoldedISTA": {"product": [lipschitz.upper_bound(s, "product") for s in specs],
                               "averaged": [lipschitz.upper_bound(s, "averaged") for s in specs]},
              "other": [Bound(3.0, "upper", "L", "heuristic"), None, Bound(4.0, "upper", "L", "sdp", certified=True)]}
    lowers = {"UnfoldedISTA": [lipschitz.lower_bound(s, restarts=2, steps=10) for s in specs]}
    paths, fig = lipschitz_depth_plot(depths, uppers, lowers, tmp_path / "lip", title="Lipschitz", return_figure=True)
    assert_rendered(paths)
    lines = lines_by_label(fig)
    for method in ("product", "averaged"):
        expected = [b.value for b in uppers["UnfoldedISTA"][method]]
        assert same(lines[f"UnfoldedISTA · {method}: certified upper"].get_ydata(), expected)
    low = lines["UnfoldedISTA: witness lower"]
    assert same(low.get_ydata(), [b.value for b in lowers["UnfoldedISTA"]])
    assert low.get_markerfacecolor() == "none"  # hollow witness markers
    assert same(lines["other: certified upper"].get_ydata(), [np.nan, np.nan, 4.0])
    assert same(lines["other: upper, not certified"].get_ydata(), [3.0, np.nan, np.nan])
    # the shaded interval lies between the lower bound and the tightest certified upper bound
    band = fig.axes[0].collections[0].get_paths()[0].vertices[:, 1]
    tightest = np.minimum(*[[b.value for b in uppers["UnfoldedISTA"][m]] for m in ("product", "averaged")])
    lows = [b.value for b in lowers["UnfoldedISTA"]]
    assert band.min() == pytest.approx(min(lows)) and band.max() == pytest.approx(max(tightest))
    assert all(lo <= hi for lo, hi in zip(lows, tightest, strict=True))
    with pytest.raises(ValueError, match="kind 'lower'"):
        lipschitz_depth_plot(depths, {"x": lowers["UnfoldedISTA"]}, None, tmp_path / "bad")
    with pytest.raises(ValueError, match="expected 3"):
        lipschitz_depth_plot(depths, {"x": uppers["UnfoldedISTA"]["product"][:2]}, None, tmp_path / "bad")


def test_generalization_plot_draws_gap_interval_bounds_and_vacuous_region(tmp_path, problem):
    model = UnfoldedISTA(problem.A, 3, problem.lam)
    test_set = problem.sample(200, seed=9)
    sizes = [10, 40, 160]
    gaps = [empirical_gap(model, problem.sample(n, seed=n), test_set) for n in sizes]
    hidden = sum(g.value <= 0 for g in gaps)
    assert hidden >= 1  # an untrained model on 10 samples: a negative gap, which a log axis cannot show
    b = 50.0
    covering = [Bound(v, "upper", "gap", "covering", certified=True, details={"trivial_bound": b, "vacuous": v >= b})
                for v in (400.0, 60.0, 20.0)]
    spectral = [Bound(9.0, "upper", "gap", "spectral"), Bound(4.0, "upper", "gap", "spectral", certified=True), None]
    paths, fig = generalization_plot(sizes, gaps, {"covering": covering, "spectral": spectral}, tmp_path / "gen",
                                     return_figure=True)
    assert_rendered(paths)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    lines = lines_by_label(fig)
    measured = lines[f"measured gap (95% interval), {hidden} value(s) ≤ 0 not shown"]
    expected = [g.value if g.value > 0 else np.nan for g in gaps]
    assert same(measured.get_ydata(), expected)
    assert same(lines["covering"].get_ydata(), [400.0, 60.0, 20.0])
    assert same(lines["spectral"].get_ydata(), [np.nan, 4.0, np.nan])
    assert same(lines["spectral, not certified"].get_ydata(), [9.0, np.nan, np.nan])
    hollow = [ln for ln in ax.lines if ln.get_markerfacecolor() == "white" and len(ln.get_ydata())]
    assert len(hollow) == 2 and same(hollow[0].get_ydata(), [400.0, 60.0, np.nan])  # covering's vacuous points
    assert same(hollow[1].get_ydata(), [np.nan] * 3)  # spectral's certified value is below b
    labels = ax.get_legend_handles_labels()[1]
    assert "vacuous (≥ trivial bound b)" in labels
    fill = next(c for c in ax.collections if c.get_label() == "vacuous (≥ trivial bound b)")
    assert fill.get_paths()[0].vertices[:, 1].min() == pytest.approx(b)
    # the error bars span the confidence interval of every positive gap
    bars = next(c for c in ax.collections if c.get_label() != "vacuous (≥ trivial bound b)")
    tops = sorted(seg[:, 1].max() for seg in bars.get_segments())
    assert tops == pytest.approx(sorted(g.details["interval"][1] for g in gaps if g.value > 0))
    with pytest.raises(ValueError, match="expected 'estimate'"):
        generalization_plot(sizes, covering, {}, tmp_path / "bad")


def test_step_size_plot_from_models_and_from_arrays(tmp_path, problem):
    L = np.linalg.norm(problem.A, 2) ** 2
    ista = UnfoldedISTA(problem.A, 4, problem.lam)
    assert classical_step(ista) == pytest.approx(1.0 / L, rel=1e-12)
    assert learned_steps(ista) == pytest.approx(np.full(4, 1.0 / L), rel=1e-12)  # initialised at ISTA
    learned = np.array([0.5, 1.0, 1.7, 2.4]) / L
    with torch.no_grad():
        for p, v in zip(ista.step, learned, strict=True):
            p.fill_(v)
    alista = ALISTA(problem.A, 3, problem.lam)
    W = alista.W.numpy()
    assert np.allclose(np.einsum("ij,ij->j", W, problem.A), 1.0)
    assert classical_step(alista) == pytest.approx(1.0 / np.linalg.norm(W.T @ problem.A, 2), rel=1e-12)

    paths, fig = step_size_plot({"UnfoldedISTA": ista, "ALISTA": alista}, None, tmp_path / "steps", return_figure=True)
    assert_rendered(paths)
    lines = lines_by_label(fig)
    assert same(lines["UnfoldedISTA"].get_ydata(), learned)
    assert same(lines["ALISTA"].get_xdata(), [1, 2, 3])
    limit = next(ln for label, ln in lines.items() if label.startswith("UnfoldedISTA: stability limit 2/L"))
    assert limit.get_ydata()[0] == pytest.approx(2.0 / L)
    assert learned[-1] > limit.get_ydata()[0]  # the figure shows a step outside the classical regime

    paths, fig = step_size_plot({"a": learned, "b": learned[:2]}, 1.0 / L, tmp_path / "norm", normalized=True,
                                return_figure=True)
    assert_rendered(paths)
    lines = lines_by_label(fig)
    assert same(lines["a"].get_ydata(), learned * L) and same(lines["b"].get_ydata(), learned[:2] * L)
    refs = {label.split(" =")[0]: ln.get_ydata()[0] for label, ln in lines.items() if "/L" in label}
    assert refs == {"classical step 1/L": 1.0, "stability limit 2/L": 2.0}
    with pytest.raises(ValueError, match="pass its classical step"):
        step_size_plot({"a": learned}, None, tmp_path / "bad")
    with pytest.raises(ValueError, match="no learned step sizes"):
        step_size_plot({"LISTA": LISTA(problem.A, 2, problem.lam)}, None, tmp_path / "bad")


def _bounds():
    return {
        "certified": Bound(1.25, "upper", "Lipschitz constant", "sdp", certified=True, seconds=0.5),
        "refused": Bound(2.5, "upper", "Lipschitz constant", "sdp", details={"reason": "check failed"}),
        "witness": Bound(0.75, "lower", "Lipschitz constant", "witness", certified=True),
        "measured": Bound(0.01, "estimate", "gap", "test − train"),
        "vacuous": Bound(80.0, "upper", "gap", "covering", certified=True, details={"vacuous": True}),
        "unbounded": Bound(math.inf, "upper", "gap", "product"),
    }


def test_table_marks_what_is_not_a_certified_bound(tmp_path):
    bounds = _bounds()
    rows = table(bounds, tmp_path / "bounds")
    assert [r["label"] for r in rows] == list(bounds)
    assert [r["value"] for r in rows] == [b.value for b in bounds.values()]
    status = {r["label"]: r["status"] for r in rows}
    assert status == {"certified": "certified", "refused": "not certified", "witness": "certified", "measured": "estimate",
                      "vacuous": "certified, vacuous", "unbounded": "not certified"}
    md = (tmp_path / "bounds.md").read_text()
    assert md == table_markdown(bounds)
    row_of = {line.split(" | ")[0].removeprefix("| "): line for line in md.splitlines() if line.startswith("| ")}
    assert "| 1.25 |" in row_of["certified"] and "†" not in row_of["certified"]
    assert "| 2.5† |" in row_of["refused"] and "| inf† |" in row_of["unbounded"]
    assert "| 0.01§ |" in row_of["measured"] and "| 80‡ |" in row_of["vacuous"]
    assert "† not certified" in md and "‡ vacuous" in md and "§ estimate" in md
    tex = (tmp_path / "bounds.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and "2.5†" in tex and r"\footnotesize † not certified" in tex
    with open(tmp_path / "bounds.csv", newline="") as fh:
        read = list(csv.DictReader(fh))
    assert [float(r["value"]) for r in read] == [b.value for b in bounds.values()]
    assert [r["status"] for r in read] == [r["status"] for r in rows]
    data = json.loads((tmp_path / "bounds.json").read_text())
    assert [float(r["value"]) for r in data] == [b.value for b in bounds.values()]
    assert data[0] == {"label": "certified", "quantity": "Lipschitz constant", "method": "sdp", "kind": "upper",
                       "value": 1.25, "status": "certified", "seconds": 0.5}


def test_table_columns_and_errors():
    bounds = _bounds()
    rows = table(list(bounds.values()), columns=("method", "certified", "details.reason"))
    assert rows[1] == {"method": "sdp", "certified": False, "details.reason": "check failed"}
    assert "†" not in table_markdown(list(bounds.values()), columns=("method",))  # no value column, nothing to mark
    with pytest.raises(ValueError, match="not known"):
        table(bounds, columns=("colour",))
    with pytest.raises(ValueError, match="needs the bounds as a mapping"):
        table(list(bounds.values()), columns=("label",))
    with pytest.raises(ValueError, match="not a Bound"):
        table([1.0])
    with pytest.raises(ValueError, match="no bounds"):
        table({})


@settings(max_examples=25)
@given(st.lists(st.floats(min_value=-1e300, max_value=1e300, allow_nan=False) | st.just(math.inf), min_size=1, max_size=5))
def test_table_values_round_trip_exactly(values):
    bounds = [Bound(v, "upper", "q", "m") for v in values]
    with tempfile.TemporaryDirectory() as tmp:
        stem = Path(tmp) / "t"
        table(bounds, stem)
        with open(stem.with_suffix(".csv"), newline="") as fh:
            assert [float(r["value"]) for r in csv.DictReader(fh)] == values
        assert [float(r["value"]) for r in json.loads(stem.with_suffix(".json").read_text())] == values


def test_bound_ratio_plot_marks_vacuous_and_uncertified(tmp_path):
    entries = [{"group": "ALISTA", "method": "PAC-Bayes", "ratio": 1.8, "vacuous": False, "certified": True},
               {"group": "ALISTA", "method": "covering", "ratio": 900.0, "vacuous": True, "certified": True},
               {"group": "LISTA", "method": "PAC-Bayes", "ratio": 3.0, "vacuous": False, "certified": False},
               {"group": "LISTA", "method": "spectral", "ratio": math.inf, "vacuous": True, "certified": True}]
    paths, fig = bound_ratio_plot(entries, tmp_path / "ratios", target=2.0, return_figure=True)
    assert_rendered(paths)
    points = [line for ax in fig.axes for line in ax.lines if len(line.get_xdata()) == 1 and line.get_marker() in ("o", "x")]
    assert [float(p.get_xdata()[0]) for p in points[:3]] == [1.8, 900.0, 3.0]
    assert math.isfinite(float(points[3].get_xdata()[0])) and float(points[3].get_xdata()[0]) > 900.0  # inf at the edge
    assert [p.get_marker() for p in points] == ["o", "o", "x", "o"]
    assert points[1].get_markerfacecolor() == "white" and points[0].get_markerfacecolor() != "white"
    ticks = [(a.get_title(loc="left"), t.get_text().replace("\n", " ")) for a in fig.axes for t in a.get_yticklabels()]
    assert ticks == [(e["group"], e["method"]) for e in entries]  # a panel per group, a row per method
    labels = lines_by_label(fig)
    assert "held-out loss (ratio 1)" in labels and "ratio 2" in labels


@pytest.mark.parametrize(("entries", "message"), [([], "no entries"), ([{"group": "a"}], "lacks"),
                                                  ([{"group": "a", "method": "b", "ratio": -1.0, "vacuous": False,
                                                     "certified": True}], "positive")])
def test_bound_ratio_plot_rejects_bad_entries(tmp_path, entries, message):
    with pytest.raises(ValueError, match=message):
        bound_ratio_plot(entries, tmp_path / "bad")
