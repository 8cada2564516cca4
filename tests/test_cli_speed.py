"""The command line's fast paths: ``--help`` parses without importing the heavy libraries, and ``report --quick`` is
one flag for the small configuration, with explicit options winning over it."""

import dataclasses
import subprocess
import sys

import pytest

import unfoldtheory.report
from unfoldtheory.cli import main
from unfoldtheory.report.config import QUICK, ReportConfig

HEAVY = ("torch", "cvxpy", "scipy", "matplotlib")


PROBE = ("import sys\nfrom unfoldtheory.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
         f"print('imported:', [m for m in {HEAVY!r} if m in sys.modules])")


def _imported(code, *argv):
    run = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120, check=True)
    return run.stdout, run.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("argv", [["--help"], ["analyze", "--help"], ["report", "--help"], ["--version"]])
def test_help_imports_nothing_heavy(argv):
    out, imported = _imported(PROBE, *argv)
    assert "unfoldtheory" in out  # the help (or version) was printed
    assert imported == "imported: []"


def test_the_probe_sees_a_heavy_import():
    assert "'torch'" in _imported(PROBE.replace("main(sys.argv[1:])", "import unfoldtheory.unfold"))[1]


def _config_of(argv, monkeypatch, tmp_path):
    seen = {}

    def fake(config, out, progress=None):
        seen["config"] = config
        return {"checks": {}, "figures": [], "seconds": 0.0}

    monkeypatch.setattr(unfoldtheory.report, "run_report", fake)
    assert main(["report", "--out", str(tmp_path), "--quiet", *argv]) == 0
    return seen["config"]


def test_quick_sets_the_small_configuration(monkeypatch, tmp_path):
    quick = _config_of(["--quick"], monkeypatch, tmp_path)
    assert quick == ReportConfig.quick()
    default = _config_of([], monkeypatch, tmp_path)
    assert default == ReportConfig()
    for name, value in QUICK.items():
        assert getattr(quick, name) == value != getattr(default, name)
    unchanged = {f.name for f in dataclasses.fields(ReportConfig)} - set(QUICK)
    assert all(getattr(quick, name) == getattr(default, name) for name in unchanged)
    assert quick.m * quick.n < default.m * default.n and quick.train_steps < default.train_steps


def test_explicit_options_win_over_quick(monkeypatch, tmp_path):
    config = _config_of(["--m", "20", "--quick", "--layers", "4", "--stability-radii", "0.01,0.02", "--seed", "3"],
                        monkeypatch, tmp_path)
    assert (config.m, config.layers, config.stability_radii, config.seed) == (20, 4, (0.01, 0.02), 3)
    assert config.n == QUICK["n"] and config.train_steps == QUICK["train_steps"]
    assert config == ReportConfig.quick(m=20, layers=4, stability_radii=(0.01, 0.02), seed=3)


def test_quick_keeps_the_config_checks(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(unfoldtheory.report, "run_report", lambda *a, **k: pytest.fail("must not run"))
    assert main(["report", "--out", str(tmp_path), "--quick", "--crosscheck", "7"]) == 2  # quick has 6 instances
    assert "crosscheck (7) cannot exceed instances (6)" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown ReportConfig fields"):
        ReportConfig.quick(layer=3)


def test_report_help_shows_both_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--quick" in out and f"(default: {ReportConfig.m}; --quick: {QUICK['m']})" in out
    assert f"(default: {ReportConfig.seed})" in out  # not part of the preset
