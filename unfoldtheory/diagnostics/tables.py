"""Tables: Markdown for reports and terminals, LaTeX (booktabs) for papers, CSV and JSON for tools."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unfoldtheory.diagnostics.files import atomic_write_json, atomic_write_text


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _check(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if any(len(r) != len(header) for r in rows):
        raise ValueError(f"every row needs {len(header)} cells")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table; floats are printed with ``digits`` significant digits."""
    _check(header, rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v, digits) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def latex_table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``); text cells are escaped."""
    _check(header, rows)
    align = "".join("r" if rows and all(isinstance(r[i], (int, float)) for r in rows) else "l" for i in range(len(header)))
    lines = [rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(_latex_escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(_latex_escape(_cell(v, digits)) for v in r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def save_table(header: Sequence[str], rows: Sequence[Sequence[Any]], stem: str | os.PathLike[str],
               digits: int = 4) -> list[Path]:
    """Write ``stem.md``, ``stem.tex``, ``stem.csv`` and ``stem.json`` atomically; returns the paths."""
    _check(header, rows)
    stem = Path(stem)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return [
        atomic_write_text(stem.with_suffix(".md"), markdown_table(header, rows, digits)),
        atomic_write_text(stem.with_suffix(".tex"), latex_table(header, rows, digits)),
        atomic_write_text(stem.with_suffix(".csv"), buf.getvalue()),
        atomic_write_json(stem.with_suffix(".json"), [dict(zip(header, r, strict=True)) for r in rows]),
    ]
