"""The main job end to end at a small size, through Python and through the command line."""

import json
import re

import numpy as np
import pytest

from unfoldtheory import unfold
from unfoldtheory.cli import main
from unfoldtheory.consistency import InconsistentBounds
from unfoldtheory.diagnostics.bound_table import uncertified_reason, uncertified_summary
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.report import ReportConfig, lipschitz, run_report
from unfoldtheory.report.baselines import identification_iteration, tail_rate
from unfoldtheory.report.models import REPORT_MODELS
from unfoldtheory.results import Bound

SMALL = ["--m", "16", "--n", "32", "--instances", "6", "--crosscheck", "2", "--iterations", "80", "--layers", "3",
         "--train-steps", "60", "--test-samples", "100", "--generalization-samples", "80", "--generalization-steps", "20",
         "--stability-inputs", "2", "--stability-radii", "0.05", "--stability-budget", "1",
         "--stability-exact-neurons", "0", "--quiet"]
SMALL_CONFIG = ReportConfig(m=16, n=32, instances=6, crosscheck=2, iterations=80, layers=3, train_steps=60, test_samples=100,
                            generalization_samples=80, generalization_steps=20, stability_inputs=2, stability_radii=(0.05,),
                            stability_budget=1.0, stability_exact_neurons=0)


def test_run_report_writes_everything(tmp_path):
    config = SMALL_CONFIG
    results = run_report(config, tmp_path, progress=False)
    for name in ["report.md", "results.json", "baselines_error.png", "baselines_error.pdf", "models_nmse.png",
                 "models_nmse.pdf", "models_table.md", "models_table.tex", "models/ALISTA.pt", "models/LISTA.pt"]:
        assert (tmp_path / name).stat().st_size > 0
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["config"] == config.to_dict()
    assert on_disk["checks"] == results["checks"] and all(results["checks"].values())
    base = on_disk["sections"]["baselines"]
    assert base["reference_crosscheck"]["certified_max_relative_gap"] <= 1e-10
    assert base["ista_support_rate"]["envelope_violations"] == 0
    methods = on_disk["sections"]["models"]["methods"]
    assert set(methods) == {"ISTA", "FISTA", "UnfoldedISTA", "ALISTA", "LISTA"}
    assert all(len(m["nmse_db_per_layer"]) == config.layers for m in methods.values())
    assert methods["ALISTA"]["parameters"] == 2 * config.layers
    text = (tmp_path / "report.md").read_text()
    assert "![ISTA and FISTA error](baselines_error.png)" in text and "Cross-checks: all passed." in text
    lip = on_disk["sections"]["lipschitz"]["models"]
    for name in ("UnfoldedISTA", "ALISTA", "LISTA"):
        assert [d["depth"] for d in lip[name]] == [1, 2, 3]
        for d in lip[name]:
            assert d["upper"]["certified"] and d["lower"]["value"] <= d["upper"]["value"]
            assert d["floor"]["certified"] and 0 < d["floor"]["value"] <= d["upper"]["value"]
    assert (tmp_path / "lipschitz_vs_depth.png").stat().st_size > 0 and "L ∈ [" in text
    stab = on_disk["sections"]["stability"]["models"]
    for name in ("UnfoldedISTA", "ALISTA", "LISTA"):
        for end in ("upper", "lower"):  # the lipschitz section's interval, reused
            assert {k: stab[name][f"global_{end}"][k] for k in ("value", "method", "certified")} == \
                {k: lip[name][-1][end][k] for k in ("value", "method", "certified")}
        assert [len(row) for row in stab[name]["intervals"]] == [2]
        for row in stab[name]["intervals"]:
            assert all(iv["lower"]["value"] <= stab[name]["global_upper"]["value"] for iv in row if iv["lower"]["certified"])
    assert (tmp_path / "stability_vs_radius.png").stat().st_size > 0 and "| ALISTA | 5 % of ‖y‖ |" in text
    conv = on_disk["sections"]["convergence"]
    for name in ("UnfoldedISTA", "ALISTA"):
        assert conv["pep"][name]["learned"]["certified"] and conv["pep"][name]["classical"]["certified"]
    assert (tmp_path / "convergence_envelopes.png").stat().st_size > 0 and "Theorem 1" in text
    gen = on_disk["sections"]["generalization"]["models"]
    assert set(gen) == {"UnfoldedISTA", "ALISTA", "LISTA"}
    for name, result in gen.items():
        assert result["samples"] == config.generalization_samples
        assert {"covering", "PAC-Bayes (data-free prior)"} <= set(result["bounds"])
        assert result["bounds"]["PAC-Bayes (split prior)"]["certified"], name  # every model, matrix weights included
        assert result["bounds"]["PAC-Bayes (data-free prior)"]["certified"], name
    assert (tmp_path / "generalization_table.tex").stat().st_size > 0
    assert "## Generalization bounds beside the measured gap" in text


def test_cli_report(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path), *SMALL]) == 0
    assert "all cross-checks passed" in capsys.readouterr().out
    assert (tmp_path / "report.md").exists()


def test_cli_rejects_bad_options(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path), "--sparsity", "1.5", "--quiet"]) == 2
    assert "sparsity must be <= 1.0" in capsys.readouterr().err
    assert main(["report", "--out", str(tmp_path), "--instances", "2", "--crosscheck", "3"]) == 2
    assert "crosscheck (3) cannot exceed instances (2)" in capsys.readouterr().err


def test_cli_help_documents_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["report", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--out", "--m", "--n", "--layers", "--iterations", "--instances", "--seed", "--device", "--threads",
                   "--generalization-samples", "--generalization-steps", "--stability-inputs", "--stability-radii",
                   "--stability-noise-radii", "--stability-budget", "--stability-exact-neurons"):
        assert option in out


def test_cli_rejects_a_device_that_is_not_there(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present, so 'cuda' is a valid choice here")
    assert main(["report", "--out", str(tmp_path), "--device", "cuda", "--quiet"]) == 2
    assert "torch sees no CUDA device" in capsys.readouterr().err
    assert main(["report", "--out", str(tmp_path), "--device", "tpu", "--quiet"]) == 2
    assert "device must be" in capsys.readouterr().err


def test_identification_iteration_and_tail_rate():
    x_star = np.array([1.0, 0.0, -1.0])
    its = np.array([[0, 0, 0], [1, 1, 0], [2, 0, -1], [1.5, 0, -1], [1.2, 0, -0.9]], dtype=float)
    assert identification_iteration(its, x_star) == 2
    assert identification_iteration(its[:2], x_star) is None
    errors = 0.5 ** np.arange(30)
    assert tail_rate(errors, 3, 1e-300) == pytest.approx(0.5)
    assert tail_rate(errors, 28, 1e-300) is None


def test_generalization_summary_prefers_certified_bounds():
    from unfoldtheory.report.generalization import _tightest

    certified = ("PAC-Bayes (data-free prior)", {"expected": 0.8, "ratio_test": 7.5})
    split = ("PAC-Bayes (split prior)", {"expected": 0.3, "ratio_test": 2.9})
    both = _tightest({True: certified, False: split})
    assert both.startswith("tightest certified non-vacuous bound: PAC-Bayes (data-free prior)") and "not certified (†)" in both
    assert "not certified" not in _tightest({True: split, False: certified})  # the uncertified one is looser
    assert _tightest({False: split}).startswith("no certified bound is non-vacuous")
    assert _tightest({}) == "every bound is vacuous."


def _report_models(tmp_path):
    config = ReportConfig(m=8, n=12, layers=1, lipschitz_budget=2.0)
    problem = SparseRecovery(config.m, config.n, config.sparsity, config.noise_std, seed=config.seed)
    for name, _ in REPORT_MODELS:
        unfold.save(getattr(unfold, name)(problem.A, config.layers, problem.lam), tmp_path / "models" / f"{name}.pt")
    return config


def certified_lower(value, method):
    """A stand-in for a lower-bound function that returns a certified ``value``, whatever the spec."""
    def fake(spec, **options):
        return Bound(value, "lower", "Lipschitz constant", method, certified=True)
    return fake


@pytest.mark.parametrize("patched", ["lower_bound", "agnostic_floor"])
def test_the_report_refuses_a_certified_lower_end_above_the_upper_end(patched, monkeypatch, tmp_path):
    config = _report_models(tmp_path)
    monkeypatch.setattr(lipschitz, patched, certified_lower(1e6, f"inflated {patched}"))
    with pytest.raises(InconsistentBounds, match=re.escape(f"the certified lower bound 1000000.0 (inflated {patched}) exceeds")) \
            as info:
        lipschitz.run(config, tmp_path, progress=False)
    assert "UnfoldedISTA's first 1 layer(s)" in info.value.what and info.value.upper.certified
    assert not (tmp_path / "lipschitz_table.md").exists()  # nothing was written with the contradiction in it


def test_a_lipschitz_row_says_why_a_bound_is_not_certified(monkeypatch, tmp_path):
    config = _report_models(tmp_path)

    def refused(spec, **options):
        return Bound(0.25, "lower", "Lipschitz constant", "witness-search", details={"reason": "the pair did not re-check"})

    monkeypatch.setattr(lipschitz, "lower_bound", refused)
    section = lipschitz.run(config, tmp_path, progress=False)
    rows = [line for line in section.markdown.splitlines() if line.startswith("| UnfoldedISTA |")]
    assert len(rows) == 1 and "| lower: the pair did not re-check |" in rows[0]
    assert "why not certified" in (tmp_path / "lipschitz_table.md").read_text()


def test_uncertified_reason_and_summary():
    ok = Bound(1.0, "upper", "q", "sdp", certified=True)
    told = Bound(2.0, "upper", "q", "sdp", details={"reason": "margin too small", "status": "optimal"})
    status = Bound(2.0, "upper", "q", "sdp", details={"status": "infeasible"})
    silent = Bound(0.0, "lower", "q", "witness", details={"status": "optimal"})
    estimate = Bound(0.5, "estimate", "q", "power iteration", details={"reason": "not a bound"})
    assert [uncertified_reason(b) for b in (ok, told, status, silent, estimate)] == [
        "", "margin too small", "solver status 'infeasible', not optimal", "no certificate was checked", ""]
    assert uncertified_summary({"upper": ok, "lower": silent, "other": told}) == (
        "lower: no certificate was checked; other: margin too small")
    assert uncertified_summary({"upper": ok}) == ""
