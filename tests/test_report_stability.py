"""Per-sample stability (issue 13, item 4): local intervals around test inputs in the report and in ``analyze``."""

import json
import math
import re

import matplotlib.text
import numpy as np
import pytest
from figure_checks import assert_paper_quality
from hypothesis import given, settings
from hypothesis import strategies as st

import unfoldtheory.lipschitz.local as local_module
from unfoldtheory import unfold
from unfoldtheory.analysis import analyze_model, sample_inputs
from unfoldtheory.cli import main
from unfoldtheory.consistency import InconsistentBounds
from unfoldtheory.diagnostics.stability_plot import stability_plot
from unfoldtheory.lipschitz import upper_bound
from unfoldtheory.lipschitz.exact import METHOD as EXACT_METHOD
from unfoldtheory.lipschitz.regions import Ball
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.report import ReportConfig, stability
from unfoldtheory.report.models import REPORT_MODELS
from unfoldtheory.report.section import Section
from unfoldtheory.results import Bound
from unfoldtheory.stability import (
    SUMMARY_HEADER,
    LocalInterval,
    Radius,
    global_interval,
    global_lower_from_local,
    local_stability,
    stability_radii,
    summary_rows,
)
from unfoldtheory.testing import unrolled_specs
from unfoldtheory.unfold import ALISTA, LISTA, save


def _lista(m=6, n=10, layers=2, seed=0):
    p = SparseRecovery(m, n, 0.3, seed=seed)
    return LISTA(p.A, layers, p.lam), p


# ---------------------------------------------------------------- radii


def test_radii_are_relative_to_signal_and_noise_levels():
    y = np.array([3.0, 4.0, 0.0, 0.0])  # ‖y‖ = 5, m = 4, √m = 2
    radii = stability_radii((0.05, 0.01), (0.5,), noise_std=0.1)
    assert [r.label for r in radii] == ["0.5 σ√m", "1 % of ‖y‖", "5 % of ‖y‖"]
    assert [r.of(y, 0.1) for r in radii] == pytest.approx([0.5 * 0.1 * 2, 0.05, 0.25])
    assert [r.relative_to for r in stability_radii((0.01,), (0.5, 1.0), noise_std=0.0)] == ["signal"]  # σ = 0: a point


@pytest.mark.parametrize("signal, noise, sigma, message", [
    ((), (0.5,), 0.0, "no stability radius"),
    ((0.0,), (), 0.0, "signal radius factor must be > 0.0"),
    ((0.01,), (-1.0,), 0.1, "noise radius factor must be > 0.0"),
    ((float("nan"),), (), 0.0, "signal radius factor"),
])
def test_bad_radii_are_refused(signal, noise, sigma, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        stability_radii(signal, noise, sigma)
    with pytest.raises(ValueError, match="a radius is relative to one of"):
        Radius("input", 0.1)


def test_ratio_of_a_local_interval():
    def b(v, kind, ok=True):
        return Bound(v, kind, "q", "m", certified=ok)

    assert LocalInterval(0, 1.0, b(2.0, "lower"), b(3.0, "upper")).ratio == 1.5
    assert LocalInterval(0, 1.0, b(0.0, "lower"), b(0.0, "upper")).ratio == 1.0  # closed at 0: a constant map
    assert LocalInterval(0, 1.0, b(0.0, "lower"), b(1e-300, "upper")).ratio == math.inf
    assert math.isnan(LocalInterval(0, 1.0, b(2.0, "lower", False), b(3.0, "upper")).ratio)


# ---------------------------------------------------------------- the data layer on real certificates


@settings(max_examples=4, deadline=None)
@given(spec=unrolled_specs(m=st.integers(2, 4), n=st.integers(2, 5), K=st.integers(1, 2)),
       seed=st.integers(0, 2**16))
def test_local_intervals_hold_at_sampled_points_and_below_the_global_bound(spec, seed):
    rng = np.random.default_rng(seed)
    Y = rng.standard_normal((2, spec.input_dim))
    g_upper = upper_bound(spec, time_budget=2.0)
    radii = stability_radii((0.05, 0.3))
    profile = local_stability(spec, Y, radii, time_budget=1.0, restarts=2, global_interval=(None, g_upper))
    for radius, row in zip(radii, profile.intervals, strict=True):
        for iv in row:
            assert iv.radius == pytest.approx(radius.factor * np.linalg.norm(Y[iv.index]))
            ball = Ball(Y[iv.index], iv.radius)
            assert iv.upper.certified and iv.lower.certified
            assert iv.lower.value <= iv.upper.value * (1 + 1e-12)
            assert iv.lower.value <= g_upper.value
            if iv.lower.certificate.get("y1") is not None:  # the witness pair lies in its ball
                assert ball.contains(np.vstack([iv.lower.certificate["y1"], iv.lower.certificate["y2"]])).all()
            for y in ball.sample(6, rng):  # an independent route: ‖J(y)‖₂ inside the ball
                assert np.linalg.norm(spec.jacobian(y), 2) <= iv.upper.value * (1 + 1e-9) + 1e-12
    assert all(profile.checks.values())


def test_summary_rows_are_medians_of_the_per_input_values():
    model, _ = _lista()
    spec = model.spec()
    Y = sample_inputs(model, 5, 2, 1.0, 0.0, seed=3)
    radii = stability_radii((0.02, 0.1))
    profile = local_stability(spec, Y, radii, time_budget=1.0, restarts=2)
    rows = summary_rows(profile)
    assert len(rows) == len(radii) and all(len(r) == len(SUMMARY_HEADER) for r in rows)
    col = {h: i for i, h in enumerate(SUMMARY_HEADER)}
    for row, ivs in zip(rows, profile.intervals, strict=True):
        lows = [iv.lower.value for iv in ivs]
        ups = [iv.upper.value for iv in ivs]
        ratios = [u / lo for u, lo in zip(ups, lows, strict=True)]
        assert row[col["median lower (certified)"]] == pytest.approx(np.median(lows))
        assert row[col["median upper (certified)"]] == pytest.approx(np.median(ups))
        assert row[col["median upper / lower"]] == pytest.approx(np.median(ratios))
        assert row[col["share upper / lower ≤ 1.2"]] == pytest.approx(np.mean(np.array(ratios) <= 1.2))
        assert row[col["not certified"]] == "none" and row[col["inputs"]] == 5
    bounds = profile.bounds()
    for radius, ivs in zip(radii, profile.intervals, strict=True):
        top = bounds[f"local upper, radius {radius.label}"]
        assert top.certified and top.value == max(iv.upper.value for iv in ivs)
        assert bounds[f"local lower, radius {radius.label}"].value == max(iv.lower.value for iv in ivs)


# ---------------------------------------------------------------- what is not certified stays marked


def _refusing(every=2):
    """A local upper bound that refuses (uncertified, with a reason) on every ``every``-th call, else the real one."""
    real, calls = local_module.local_upper_bound, {"n": 0}

    def fake(spec, region, **options):
        calls["n"] += 1
        if calls["n"] % every == 0:
            return Bound(7.5, "upper", "local Lipschitz constant", "local (sdp)", details={"reason": "multiplier check failed"})
        return real(spec, region, **options)
    return fake


def test_uncertified_local_ends_are_counted_marked_and_kept_out_of_medians(monkeypatch, tmp_path):
    monkeypatch.setattr(local_module, "local_upper_bound", _refusing(2))
    model, _ = _lista()
    Y = sample_inputs(model, 4, 2, 1.0, 0.0, seed=1)
    profile = local_stability(model.spec(), Y, stability_radii((0.05,)), time_budget=1.0, restarts=2)
    ivs = profile.intervals[0]
    refused = [iv for iv in ivs if not iv.upper.certified]
    assert len(refused) == 2 and all(math.isnan(iv.ratio) for iv in refused)
    row = summary_rows(profile)[0]
    col = {h: i for i, h in enumerate(SUMMARY_HEADER)}
    assert row[col["not certified"]] == "upper 2 of 4: multiplier check failed (2)"
    assert row[col["median upper (certified)"]] == pytest.approx(np.median([iv.upper.value for iv in ivs if iv.upper.certified]))
    assert row[col["share upper / lower ≤ 1.2"]] <= 0.5  # an uncertified interval is never counted as tight
    top = profile.bounds()["local upper, radius 5 % of ‖y‖"]
    assert not top.certified and top.details["reason"] == "2 of 4: multiplier check failed (2)"
    _, fig = stability_plot({"LISTA": [0.05]}, {"LISTA": [[iv.upper for iv in ivs]]}, {"LISTA": [[iv.lower for iv in ivs]]},
                            tmp_path / "fig", return_figure=True)
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1] or [t.get_text() for t in ax.get_legend().get_texts()]
    assert "local upper: not certified" in labels
    median_line = next(line for line in ax.get_lines() if line.get_linestyle() == "-" and line.get_marker() == "o")
    assert median_line.get_ydata()[0] == pytest.approx(np.median([iv.upper.value for iv in ivs if iv.upper.certified]))
    crosses = next(line for line in ax.get_lines() if line.get_marker() == "x")
    assert list(crosses.get_ydata()) == [7.5, 7.5]


def test_a_certified_local_lower_end_above_the_global_upper_end_is_a_contradiction():
    model, _ = _lista()
    Y = sample_inputs(model, 1, 2, 1.0, 0.0, seed=0)
    too_low = Bound(1e-3, "upper", "Lipschitz constant", "inflated", certified=True)
    # the global upper end also caps the local upper bound, so the contradiction shows in the local interval itself
    with pytest.raises(InconsistentBounds, match="local Lipschitz constant of model over Ball"):
        local_stability(model.spec(), Y, stability_radii((0.05,)), time_budget=1.0, restarts=2,
                        global_interval=(None, too_low))


def test_bad_inputs_are_refused():
    model, _ = _lista()
    spec = model.spec()
    with pytest.raises(ValueError, match=re.escape("test inputs have shape (2, 3); expected (count >= 1, 6)")):
        local_stability(spec, np.ones((2, 3)), stability_radii((0.05,)))
    with pytest.raises(ValueError, match="a noise-relative radius needs noise_std > 0"):
        local_stability(spec, np.ones((1, 6)), [Radius("noise", 0.5)])
    with pytest.raises(ValueError, match="time_budget must be > 0"):
        local_stability(spec, np.ones((1, 6)), stability_radii((0.05,)), time_budget=0)


def test_the_exact_local_search_tightens_each_local_interval_of_a_small_net():
    model, problem = _lista(6, 10, 3)  # 30 neurons: the exact local search runs on every ball of positive radius
    spec = model.spec()
    Y, _ = problem.sample(3, seed=4)  # the second input is 0: a ball of radius 0, no search
    radii = stability_radii((0.2,))
    plain = local_stability(spec, Y, radii, time_budget=1.0, restarts=2)
    tight = local_stability(spec, Y, radii, time_budget=1.0, restarts=2, exact_neurons=30)
    assert local_stability(spec, Y[:1], radii, time_budget=1.0, restarts=2, exact_neurons=29).intervals[0][0].spent is None
    for row_plain, row_tight in zip(plain.intervals, tight.intervals, strict=True):
        for a, b in zip(row_plain, row_tight, strict=True):
            assert b.lower.certified and b.upper.certified and (b.spent is None) == (a.radius == 0)
            assert b.upper.value <= a.upper.value * (1 + 1e-12) and b.lower.value <= b.upper.value
            region = Ball(Y[a.index], a.radius)
            jac = max(np.linalg.norm(spec.jacobian(p), 2) for p in region.sample(32, rng=1))
            assert jac <= b.upper.value * (1 + 1e-9)  # each end keeps its own certificate: the upper end is still one
            assert b.seconds >= b.lower.seconds
    assert any(iv.upper.method.startswith("exact") for row in tight.intervals for iv in row)
    with pytest.raises(ValueError, match="exact_neurons must be a non-negative integer"):
        local_stability(spec, Y, radii, exact_neurons=-1)


# ---------------------------------------------------------------- the figure


def test_the_figure_fits_one_column_with_readable_text(tmp_path):
    def b(v, kind):
        return Bound(v, kind, "q", "m", certified=True)

    uppers = {"A": [[b(2.0, "upper"), b(3.0, "upper")], [b(4.0, "upper"), b(5.0, "upper")]], "B": [[b(1.0, "upper")]]}
    lowers = {"A": [[b(1.5, "lower"), b(2.5, "lower")], [b(3.0, "lower"), b(4.5, "lower")]], "B": [[b(0.5, "lower")]]}
    glob = {"A": (b(6.0, "lower"), b(9.0, "upper")),
            "B": (b(0.9, "lower"), Bound(2.0, "upper", "q", "m", details={"reason": "timed out"}))}
    paths, fig = stability_plot({"A": [0.05, 0.01], "B": [0.01]}, uppers, lowers, tmp_path / "s", global_intervals=glob,
                                return_figure=True)
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 0 for p in paths)
    assert_paper_quality(fig, series=4)
    texts = {t.get_text() for t in fig.findobj(matplotlib.text.Text)}
    assert {"global upper (limit r → ∞)", "global lower (limit r → ∞)", "global upper: not certified", "1 %", "5 %"} <= texts
    a = fig.axes[0]
    assert a.get_xscale() == "log" and a.get_yscale() == "log"
    upper_line = next(line for line in a.get_lines() if line.get_marker() == "o")
    assert list(upper_line.get_xdata()) == [0.01, 0.05] and list(upper_line.get_ydata()) == [4.5, 2.5]  # sorted by radius
    with pytest.raises(ValueError, match="must name the same models"):
        stability_plot({"A": [0.05]}, {"A": [[b(1.0, "upper")]]}, {}, tmp_path / "t")
    with pytest.raises(ValueError, match="positive"):
        stability_plot({"A": [0.0]}, {"A": [[b(1.0, "upper")]]}, {"A": [[b(1.0, "lower")]]}, tmp_path / "t")


# ---------------------------------------------------------------- the report section


def _report_models(tmp_path, **options):
    config = ReportConfig(m=8, n=12, layers=1, test_samples=20, lipschitz_budget=2.0, stability_inputs=2,
                          stability_budget=1.0, **options)
    problem = SparseRecovery(config.m, config.n, config.sparsity, config.noise_std, seed=config.seed)
    for name, _ in REPORT_MODELS:
        unfold.save(getattr(unfold, name)(problem.A, config.layers, problem.lam), tmp_path / "models" / f"{name}.pt")
    return config


def test_the_section_reuses_the_lipschitz_sections_global_interval(tmp_path):
    config = _report_models(tmp_path, noise_std=0.05, stability_exact_neurons=0)
    given_ = {name: [{"depth": 1, "upper": Bound(50.0 + i, "upper", "L", "given upper", certified=True).to_dict(),
                      "lower": Bound(0.25, "lower", "L", "given lower", certified=True).to_dict()}]
              for i, (name, _) in enumerate(REPORT_MODELS)}
    earlier = {"lipschitz": Section("lipschitz", "t", "", {"models": given_})}
    section = stability.run(config, tmp_path, progress=False, earlier=earlier)
    for i, (name, _) in enumerate(REPORT_MODELS):
        result = section.results["models"][name]
        assert result["global_upper"]["value"] == 50.0 + i and result["global_upper"]["method"] == "given upper"
        assert [r["label"] for r in result["radii"]] == ["0.5 σ√m", "1 % of ‖y‖", "5 % of ‖y‖"]
        assert len(result["intervals"]) == 3 and all(len(row) == 2 for row in result["intervals"])
    assert all(section.checks.values())
    table = json.loads((tmp_path / "stability_table.json").read_text())
    assert [r["radius"] for r in table[:4]] == ["0.5 σ√m", "1 % of ‖y‖", "5 % of ‖y‖", "global (r → ∞)"]
    assert (tmp_path / "stability_vs_radius.pdf").stat().st_size > 0
    assert "| UnfoldedISTA | global (r → ∞) |" in section.markdown and "![Local Lipschitz interval" in section.markdown


def test_the_section_alone_computes_the_global_interval(tmp_path):
    config = _report_models(tmp_path, stability_exact_neurons=0)
    section = stability.run(config, tmp_path, progress=False)
    spec = unfold.load(tmp_path / "models" / "ALISTA.pt").double().spec()
    alone = section.results["models"]["ALISTA"]
    assert alone["global_upper"]["certified"]
    assert alone["global_upper"]["value"] == upper_bound(spec, time_budget=config.lipschitz_budget).value
    for row in alone["intervals"]:
        for iv in row:
            assert iv["lower"]["value"] <= alone["global_upper"]["value"]


def test_the_exact_search_tightens_the_global_interval_of_small_models(tmp_path):
    config = _report_models(tmp_path, stability_radii=(0.05,))  # 12 neurons: the exact search runs and closes
    loose = {name: [{"depth": 1, "upper": Bound(50.0, "upper", "L", "given upper", certified=True).to_dict(),
                     "lower": Bound(1e-3, "lower", "L", "given lower", certified=True).to_dict()}] for name, _ in REPORT_MODELS}
    earlier = {"lipschitz": Section("lipschitz", "t", "", {"models": loose})}
    section = stability.run(config, tmp_path, progress=False, earlier=earlier)
    for name, _ in REPORT_MODELS:
        result = section.results["models"][name]
        spec = unfold.load(tmp_path / "models" / f"{name}.pt").double().spec()
        best = upper_bound(spec, time_budget=2.0)
        lo, up = result["global_lower"], result["global_upper"]
        assert result["exact"]["closed"] and lo["certified"] and up["certified"]
        assert up["method"] == EXACT_METHOD and lo["method"].startswith(("exact", "local witness"))
        assert lo["value"] <= up["value"] <= best.value * (1 + 1e-9) and up["value"] <= (1 + 1e-3) * lo["value"]
        assert up["value"] == result["exact"]["upper"] and lo["value"] >= result["exact"]["lower"]  # or a local witness


def test_global_interval_keeps_the_tighter_certified_end_and_refuses_contradictions():
    model, _ = _lista(m=4, n=5, layers=1)
    spec = model.spec()
    best = upper_bound(spec, time_budget=2.0)
    lower, upper, exact = global_interval(spec, None, best, exact_neurons=100, time_budget=5.0)
    assert exact is not None and upper.value == min(best.value, exact.value) and lower is exact.details["lower"]
    same = global_interval(spec, None, best, exact_neurons=4, time_budget=5.0)  # 5 neurons > 4: no search
    assert same == (None, best, None)
    refused = Bound(upper.value * 0.5, "upper", "L", "uncertified", details={"reason": "test"})
    kept = global_interval(spec, None, refused, exact_neurons=100, time_budget=5.0)[1]
    assert kept.certified and kept.method == EXACT_METHOD  # a certified end wins over a smaller uncertified one
    wrong = Bound(exact.value * 2 + 1, "lower", "L", "inflated", certified=True)
    with pytest.raises(InconsistentBounds, match="exact search's upper end"):
        global_interval(spec, wrong, None, exact_neurons=100, time_budget=5.0)
    with pytest.raises(ValueError, match="exact_neurons must be a non-negative integer"):
        global_interval(spec, None, best, exact_neurons=-1)


def test_the_global_lower_end_rises_to_the_largest_certified_local_one():
    """L_B <= L: a certified local lower end is a global one. Independent route: the witness pair's ratio, re-evaluated."""
    model, _ = _lista(m=5, n=8, layers=3, seed=2)
    spec = model.spec()
    Y = sample_inputs(model, 3, 2, 1.0, 0.0, seed=4)
    weak = Bound(0.0, "lower", "L", "trivial", certified=True)
    profile = local_stability(spec, Y, stability_radii((0.05, 0.5)), time_budget=1.0, restarts=2, global_interval=(weak, None))
    local_best = max(iv.lower.value for row in profile.intervals for iv in row if iv.lower.certified)
    g = profile.global_lower
    assert local_best > 0 and g.certified and g.value == local_best and g.kind == "lower"
    assert g.quantity == "Lipschitz constant of the input-output map (l2)" and "local witness" in g.method
    cert = g.certificate
    if cert.get("y1") is not None and "piece_gain" not in cert:
        y1, y2 = cert["y1"], cert["y2"]
        ratio = np.linalg.norm(spec(y1) - spec(y2)) / np.linalg.norm(y1 - y2)
        assert ratio >= g.value * (1 - 1e-9)
    # a larger certified global lower end stays; uncertified local ends are never used
    strong = Bound(local_best * 2, "lower", "L", "given", certified=True)
    assert global_lower_from_local(strong, profile.intervals) is strong
    unsure = [[LocalInterval(0, 1.0, Bound(99.0, "lower", "q", "m", details={"reason": "test"}), Bound(1e3, "upper", "q", "m"))]]
    assert global_lower_from_local(weak, unsure) is weak and global_lower_from_local(None, unsure) is None


def test_config_round_trips_through_json_and_refuses_bad_settings():
    config = ReportConfig(stability_radii=[0.02], stability_noise_radii=(1.0, 2.0))
    assert config.stability_radii == (0.02,)
    assert json.loads(json.dumps(config.to_dict()))["stability_radii"] == [0.02]
    with pytest.raises(ValueError, match=re.escape("stability_inputs (200) cannot exceed test_samples (100)")):
        ReportConfig(test_samples=100, stability_inputs=200)
    with pytest.raises(ValueError, match="stability_budget must be > 0"):
        ReportConfig(stability_budget=0.0)


# ---------------------------------------------------------------- analyze


def test_analyze_reports_stability_beside_the_global_interval(tmp_path, capsys):
    model = ALISTA(SparseRecovery(6, 10, 0.2, seed=0).A, 2, 0.1)
    path = save(model, tmp_path / "alista.pt")
    args = ["analyze", str(path), "--analyses", "lipschitz,stability", "--time-budget", "2", "--restarts", "2",
            "--stability-inputs", "3", "--stability-radii", "0.01,0.1", "--stability-budget", "1"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    upper = out["bounds"]["lipschitz upper"]
    assert [s["radius"]["label"] for s in out["stability"]["summary"]] == ["1 % of ‖y‖", "10 % of ‖y‖"]
    for label in ("1 % of ‖y‖", "10 % of ‖y‖"):
        local = out["bounds"][f"local lower, radius {label}"]
        assert local["certified"] and local["value"] <= upper["value"]
    assert out["stability"]["global_upper"]["value"] <= upper["value"]  # the exact search may tighten it (20 neurons)
    assert main([*args, "--stability-exact-neurons", "0"]) == 0
    text = capsys.readouterr().out
    assert "Per-sample stability around 3 test inputs" in text and "| ALISTA | global (r → ∞) |" in text


def test_analyze_takes_test_inputs_from_a_file_and_refuses_bad_ones(tmp_path, capsys):
    model, p = _lista()
    path = save(model, tmp_path / "lista.pt")
    Y, _ = p.sample(2, seed=5)
    np.save(tmp_path / "y.npy", Y)
    direct = analyze_model(model, ["stability"], inputs=Y, stability_radii=(0.05,), stability_budget=1.0, restarts=2,
                           stability_exact_neurons=0)
    assert direct.stability.global_upper is None  # neither the lipschitz analysis nor the exact search ran
    assert direct.stability.inputs == 2 and np.allclose(direct.stability.norms, np.linalg.norm(Y, axis=1))
    np.save(tmp_path / "wrong.npy", np.ones((2, 4)))
    assert main(["analyze", str(path), "--analyses", "stability", "--inputs", str(tmp_path / "wrong.npy")]) == 1
    assert "test inputs have shape (2, 4); expected (count >= 1, 6)" in capsys.readouterr().out  # a failed analysis
    assert main(["analyze", str(path), "--analyses", "stability", "--inputs", str(tmp_path / "missing.npy")]) == 2
    assert "cannot use --inputs" in capsys.readouterr().err
    assert main(["analyze", str(path), "--analyses", "stability", "--stability-radii", "0"]) == 2
    assert "signal radius factor must be > 0.0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["analyze", str(path), "--stability-radii", "one"])
    assert "expected comma-separated numbers" in capsys.readouterr().err
