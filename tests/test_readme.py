"""README.md is a contract: its Python snippets run, and its set-up commands are the ones CI uses."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_snippets():
    assert len(SNIPPETS) >= 2


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(SNIPPETS[index], f"README.md[python {index}]", "exec"), {"__name__": f"readme_{index}"})


def test_readme_has_exactly_two_setup_commands():
    commands = [line for line in README.splitlines() if line.startswith("python3 -m venv ")]
    assert len(commands) == 2
    assert commands[0].endswith("unfoldtheory report --out report")
    assert commands[1].endswith("&& pytest")
    assert all("torch==2.13.0" in c for c in commands)


def test_ci_reads_the_test_command_from_readme():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "README.md" in ci and "&& pytest" in ci


def test_readme_lists_the_public_api():
    for name in ("unfoldtheory.spec.unrolled", "unfoldtheory.problems.SparseRecovery", "unfoldtheory.reference.lasso",
                 "unfoldtheory.results.Bound", "unfoldtheory.testing"):
        assert name in README
