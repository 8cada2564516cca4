import json

import numpy as np
import pytest

from unfoldtheory.diagnostics import (
    atomic_write_json,
    atomic_write_text,
    latex_table,
    markdown_table,
    new_figure,
    save_figure,
    save_table,
)
from unfoldtheory.results import Bound


def test_atomic_write_replaces_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]


def test_failed_json_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "r.json"
    atomic_write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert len(list(tmp_path.iterdir())) == 1


def test_json_converts_numpy_bounds_and_infinities(tmp_path):
    b = Bound(1.5, "upper", "q", "m", certificate=np.eye(2), details={"x": np.float64(np.inf)})
    path = atomic_write_json(tmp_path / "b.json", {"bound": b, "arr": np.arange(3)})
    data = json.loads(path.read_text())
    assert data["bound"]["certificate"] == [[1.0, 0.0], [0.0, 1.0]]
    assert data["bound"]["details"]["x"] == "inf"
    assert data["arr"] == [0, 1, 2]


def test_markdown_table():
    text = markdown_table(["a", "b"], [[1, 0.123456789], ["x", True]], digits=3)
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1 | 0.123 |", "| x | yes |"]
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        markdown_table(["a", "b"], [[1]])


def test_save_figure_writes_png_and_pdf(tmp_path):
    fig, ax = new_figure()
    ax.plot([0, 1], [1, 0], label="series")
    png, pdf = save_figure(fig, tmp_path / "fig")
    assert png.read_bytes().startswith(b"\x89PNG") and pdf.read_bytes().startswith(b"%PDF")


def test_latex_table_is_booktabs_and_escaped():
    text = latex_table(["method", "NMSE_dB"], [["LISTA & co", -12.3456], ["50%", 1.0]], digits=3)
    lines = text.splitlines()
    assert lines[0] == r"\begin{tabular}{lr}" and lines[1] == r"\toprule" and lines[-2] == r"\bottomrule"
    assert r"method & NMSE\_dB \\" in lines
    assert r"LISTA \& co & -12.3 \\" in lines and r"50\% & 1 \\" in lines


def test_save_table_writes_four_formats(tmp_path):
    paths = save_table(["a", "b"], [[1, 2.5], [3, float("inf")]], tmp_path / "t")
    assert sorted(p.suffix for p in paths) == [".csv", ".json", ".md", ".tex"]
    assert (tmp_path / "t.csv").read_text().splitlines() == ["a,b", "1,2.5", "3,inf"]
    assert json.loads((tmp_path / "t.json").read_text()) == [{"a": 1, "b": 2.5}, {"a": 3, "b": "inf"}]
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        save_table(["a", "b"], [[1, 2, 3]], tmp_path / "bad")
