"""``unfoldtheory analyze CHECKPOINT``: bounds of a saved model as a table or JSON, an exit status that
scripts can trust, and clear errors for bad or untrusted files."""

import json
import pickle
import re

import numpy as np
import pytest
import torch

from unfoldtheory.analysis import analyze_model
from unfoldtheory.cli import main
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.unfold import ALISTA, LISTA, LearnedUpdate, UnfoldedISTA, save


def _problem():
    return SparseRecovery(6, 10, 0.2, seed=0)


def test_json_output_lists_certified_bounds_and_exit_zero(tmp_path, capsys):
    p = _problem()
    path = save(LISTA(p.A, 3, p.lam), tmp_path / "lista.pt")
    status = main(["analyze", str(path), "--json", "--analyses", "lipschitz,pep,parameter-lipschitz,stability",
                   "--time-budget", "5", "--restarts", "2", "--stability-inputs", "2", "--stability-exact-neurons", "0"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert out["model"] == "LISTA" and out["all_certified"]
    upper, lower = out["bounds"]["lipschitz upper"], out["bounds"]["lipschitz lower"]
    assert upper["certified"] and lower["certified"] and lower["value"] <= upper["value"]
    # LISTA at its initialisation is ISTA: the PEP of the detected method applies (no class gating)
    assert out["bounds"]["pep proximal gradient (ISTA)"]["certified"] and not out["not_applicable"]
    local = out["bounds"]["local lower, radius 5 % of ‖y‖"]  # per-sample stability runs by default
    assert local["certified"] and local["value"] <= upper["value"] and out["stability"]["inputs"] == 2


def test_table_output_matches_the_library_call(tmp_path, capsys):
    p = _problem()
    model = ALISTA(p.A, 3, p.lam)
    path = save(model, tmp_path / "alista.pt")
    status = main(["analyze", str(path), "--analyses", "lipschitz,pep", "--time-budget", "5", "--restarts", "2"])
    text = capsys.readouterr().out
    direct = analyze_model(model, ["lipschitz", "pep"], time_budget=5, restarts=2)
    assert status == (0 if direct.all_certified else 1)
    assert "lipschitz upper" in text and "pep learned schedule" in text
    assert f"{direct.bounds['lipschitz upper'].value:.4g}" in text


def test_named_analysis_that_does_not_apply_fails_the_exit_status(tmp_path, capsys):
    p = _problem()
    path = save(LearnedUpdate(p.A, 2, p.lam), tmp_path / "update.pt")
    status = main(["analyze", str(path), "--analyses", "pep"])
    captured = capsys.readouterr()
    assert status == 1
    assert "not applicable" in captured.out and "not every requested certificate" in captured.err


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_bad_and_untrusted_files_are_refused(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(np.random.default_rng(0).bytes(256))
    assert main(["analyze", str(junk)]) == 2
    assert "cannot use" in capsys.readouterr().err

    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    evil = tmp_path / "evil.pt"
    torch.save({"payload": Evil()}, evil)
    assert main(["analyze", str(evil)]) == 2
    captured = capsys.readouterr()
    assert "cannot use" in captured.err and "code ran" not in captured.out
    assert main(["analyze", str(tmp_path / "missing.pt")]) == 2
    with open(tmp_path / "plain.pkl", "wb") as fh:
        pickle.dump({"W": 1}, fh)
    assert main(["analyze", str(tmp_path / "plain.pkl")]) == 2


def test_unknown_analysis_is_a_usage_error(tmp_path, capsys):
    p = _problem()
    path = save(LISTA(p.A, 2, p.lam), tmp_path / "lista.pt")
    assert main(["analyze", str(path), "--analyses", "nonsense"]) == 2
    assert "unknown analyses" in capsys.readouterr().err


def _nan_step_checkpoint(tmp_path):
    p = _problem()
    model = UnfoldedISTA(p.A, 3, p.lam)
    with torch.no_grad():
        model.step[0].fill_(float("nan"))
    return model, save(model, tmp_path / "nan.pt")


def test_a_nan_parameter_is_named_and_is_a_bad_file(tmp_path, capsys):
    _, path = _nan_step_checkpoint(tmp_path)
    assert main(["analyze", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (f"unfoldtheory analyze: error: cannot use {path}: parameter 'step' of UnfoldedISTA has a "
                            "non-finite entry (nan at index 0)\n")
    assert captured.out == ""  # no bound, NaN or other, is printed


def test_analyze_model_names_a_non_finite_parameter_before_any_analysis(tmp_path):
    model, _ = _nan_step_checkpoint(tmp_path)
    with pytest.raises(ValueError, match=re.escape("parameter 'step' of UnfoldedISTA has a non-finite entry (nan at index 0)")):
        analyze_model(model, ["coherence"])
    with torch.no_grad():
        model.step[0].fill_(0.1)
        model.A[2, 1] = float("-inf")
    with pytest.raises(ValueError, match=re.escape("buffer 'A' of UnfoldedISTA has a non-finite entry (-inf at index (2, 1))")):
        analyze_model(model, ["lipschitz"])


def test_a_text_file_is_called_what_it_is(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("model trained on 2024-05-01\nsteps: 0.1 0.2\n")
    assert main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"cannot use {path}: not a torch checkpoint: it is a text file (starts with 'model trained on 2024-05-01" in err
    assert "pickled" not in err


def test_an_uncertified_row_says_why_in_the_row(tmp_path, capsys, monkeypatch):
    import unfoldtheory.lipschitz
    from unfoldtheory.results import Bound

    def refused(spec, **options):
        return Bound(3.5, "upper", "Lipschitz constant", "sdp", details={"reason": "the LMI check failed at the margin"})

    monkeypatch.setattr(unfoldtheory.lipschitz, "upper_bound", refused)
    p = _problem()
    path = save(LISTA(p.A, 2, p.lam), tmp_path / "lista.pt")
    assert main(["analyze", str(path), "--analyses", "lipschitz", "--restarts", "2"]) == 1
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ")}
    assert "| reason |" in rows["label"]
    assert "| 3.5† | not certified | the LMI check failed at the margin |" in rows["lipschitz upper"]
    assert "| certified |  |" in rows["lipschitz lower"]


def test_the_coherence_reason_is_in_the_row_of_an_untrained_checkpoint(tmp_path, capsys):
    p = _problem()
    path = save(UnfoldedISTA(p.A, 3, p.lam), tmp_path / "ista.pt")  # θ = λ/L: below the no-false-positive threshold
    assert main(["analyze", str(path), "--analyses", "coherence"]) == 1
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ")}
    row = rows["coherence error after layer 3"]
    assert "| inf† | not certified | UnfoldedISTA layer 1: threshold θ = " in row and "is below the required" in row
