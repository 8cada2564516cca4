"""The symbolic proof scripts in proofs/ pass, and the harness can fail.

Every proofs/*.py except run_all.py and the ``_``-prefixed helpers is run in
its own interpreter from the repository root; it must exit with status 0.
A deliberately false claim, checked with the same helpers, must exit non-zero.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROOFS = ROOT / "proofs"
SCRIPTS = sorted(p.name for p in PROOFS.glob("*.py") if p.name != "run_all.py" and not p.name.startswith("_"))


def _run(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_proof_scripts_are_discovered():
    assert {"soft_threshold.py", "relu_and_box.py", "group_soft_threshold.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_proof_script_passes(script):
    result = _run(PROOFS / script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout


def test_run_all_discovers_scripts_and_reports_failure(tmp_path):
    (tmp_path / "run_all.py").write_text((PROOFS / "run_all.py").read_text())
    (tmp_path / "good.py").write_text("print('fine')\n")
    (tmp_path / "bad.py").write_text("raise SystemExit(1)\n")
    (tmp_path / "_helper.py").write_text("raise SystemExit('helpers must not be run')\n")
    result = _run(tmp_path / "run_all.py")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "PASS  good.py" in result.stdout
    assert "FAIL  bad.py" in result.stdout
    assert "_helper" not in result.stdout and "run_all.py" not in result.stdout


FALSE_CLAIM = """
import sys

sys.path.insert(0, {proofs!r})

import sympy as sp
from _check import check_slope, finish, ge, gt

theta = sp.Symbol("theta", real=True)


def st(x):
    return sp.Piecewise((x + theta, x < -theta), (0, x <= theta), (x - theta, True))


REGIONS = [
    ("(-oo, -theta)", lambda x: [gt(-theta, x)]),
    ("[-theta, theta]", lambda x: [ge(x, -theta), ge(theta, x)]),
    ("(theta, oo)", lambda x: [gt(x, theta)]),
]
# False: soft thresholding has slope 1 on |v| > theta.
check_slope("ST", st, REGIONS, params=[theta], assumptions=[ge(theta, 0)], lo=0, hi=sp.Rational(1, 2))
finish()
"""


def test_false_claim_is_rejected(tmp_path):
    script = tmp_path / "false_claim.py"
    script.write_text(textwrap.dedent(FALSE_CLAIM.format(proofs=str(PROOFS))))
    result = _run(script)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "[FAIL] ST: a in (theta, oo), b in (theta, oo), a > b: 1/2 - q >= 0" in result.stdout
    assert "Traceback" not in result.stderr


def test_undecided_is_not_a_pass(tmp_path):
    script = tmp_path / "undecided.py"
    script.write_text(
        f"import sys\nsys.path.insert(0, {str(PROOFS)!r})\n"
        "import sympy as sp\nfrom _check import check, finish, is_nonneg\n"
        "x = sp.Symbol('x', real=True)\n"
        "check('x >= 0 for an unconstrained real x', is_nonneg(x))\n"
        "check('sympy None is not True', sp.Symbol('y', real=True).is_positive)\n"
        "finish()\n"
    )
    result = _run(script)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED: 2 of 2 checks" in result.stdout
