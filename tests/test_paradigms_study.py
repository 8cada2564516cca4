"""studies/paradigms.py at a tiny size: the report, the summary table and the figures exist, with a row per
method and every criterion; a second run reuses every stored cell."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

STUDY = Path(__file__).resolve().parents[1] / "studies" / "paradigms.py"
MODELS = ["UnfoldedISTA", "LISTA"]
TINY = ["--m", "8", "--n", "16", "--layers", "3", "--depths", "2", "--steps", "30", "--test", "100", "--robust-test", "50",
        "--models", *MODELS, "--rpca-d", "8", "--rpca-rank", "2", "--rpca-layers", "3", "--rpca-depths", "2",
        "--rpca-steps", "20", "--rpca-test", "6", "--pcp", "1", "--lipschitz-budget", "0.5", "--map-budget", "0.2",
        "--restarts", "2", "--witness-inputs", "2", "--quiet"]


def _study():
    spec = importlib.util.spec_from_file_location("paradigms_study_under_test", STUDY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tiny_study_writes_report_table_and_figures_and_resumes(tmp_path):
    study = _study()
    out = tmp_path / "paradigms"
    assert study.main([*TINY, "--out", str(out)]) == 0

    report = (out / "report.md").read_text()
    for stem in ("summary", "depth_sparse", "robustness_sparse_noise", "robustness_robust_mismatch", "ranges", "lipschitz"):
        assert all((out / f"{stem}.{ext}").is_file() for ext in ("md", "tex", "csv", "json")), stem
    for stem in ("accuracy_vs_depth", "robustness", "lipschitz_intervals", "contraction"):
        assert all((out / f"{stem}.{ext}").stat().st_size > 1000 for ext in ("png", "pdf")), stem
        assert f"({stem}.png)" in report

    rows = json.loads((out / "summary.json").read_text())
    assert [r["method"] for r in rows] == ["ISTA", "FISTA", *MODELS, "ScaledGD (classical)", "LearnedRPCA", "PCP (1 instance)"]
    assert all(list(r) == study.HEADER for r in rows)
    sparse = {r["method"]: r for r in rows if r["problem"] == "sparse recovery"}
    for name in ("ISTA", "FISTA", *MODELS):  # every criterion has a value for the sparse models
        r = sparse[name]
        assert isinstance(r["NMSE (dB)"], float) and isinstance(r["NMSE, test noise (dB)"], float)
        assert 0 < r["Lipschitz lower"] <= r["Lipschitz upper"] * (1 + 1e-9)
        assert r["certified contracting iterations"].endswith("/2")
    assert sparse["ISTA"]["parameters"] == 0 and sparse["LISTA"]["parameters"] > sparse["UnfoldedISTA"]["parameters"] > 0
    assert sparse["LISTA"]["steps in classical range"] == "n/a"
    assert sparse["UnfoldedISTA"]["steps in classical range"].startswith("gamma_k L")
    rpca = {r["method"]: r for r in rows if r["problem"] == "robust PCA"}
    assert rpca["LearnedRPCA"]["Lipschitz upper"] == "n/a" and rpca["LearnedRPCA"]["Lipschitz lower"] > 0
    assert rpca["LearnedRPCA"]["steps in classical range"].startswith("eta_k")
    assert "|" in (out / "summary.md").read_text() and "\\toprule" in (out / "summary.tex").read_text()

    cells = sorted((out / "cells").rglob("*.json"))
    stamps = {p: p.stat().st_mtime_ns for p in cells}
    summary = (out / "summary.json").read_text()
    assert study.main([*TINY, "--out", str(out)]) == 0
    assert {p: p.stat().st_mtime_ns for p in sorted((out / "cells").rglob("*.json"))} == stamps  # nothing recomputed
    assert (out / "summary.json").read_text() == summary
