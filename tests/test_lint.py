"""Lint is part of the test suite: ruff (configured in pyproject.toml) over all project code."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    folders = [p for p in ("unfoldtheory", "proofs", "tests", "benchmarks", "studies") if (ROOT / p).exists()]
    result = subprocess.run([sys.executable, "-m", "ruff", "check", *folders], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
