"""Tables of Bounds that say what each number is: certified, not certified, vacuous, or an estimate.

In Markdown and LaTeX the value of every Bound that is not a certified, non-vacuous bound carries a
mark, explained in a footnote under the table:

* ``†`` not certified: no certificate was checked after the computation (a refused check, a solver
  that did not reach optimality, a heuristic);
* ``‡`` vacuous: ``details["vacuous"]`` says it reaches the trivial bound;
* ``§`` estimate: an empirical number (kind ``"estimate"``), which bounds nothing.

CSV and JSON keep the raw numbers (``inf`` as the text ``"inf"`` in JSON) with the same information in
the ``status`` column, so that tools read back exactly the values of the Bounds. The optional ``reason``
column (:func:`uncertified_reason`) says in the row itself why a bound is not certified.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unfoldtheory.diagnostics.files import atomic_write_json, atomic_write_text
from unfoldtheory.diagnostics.tables import _latex_escape, latex_table, markdown_table
from unfoldtheory.results import Bound

DEFAULT_COLUMNS = ("quantity", "method", "kind", "value", "status", "seconds")
FIELDS = ("label", "quantity", "method", "kind", "value", "certified", "status", "reason", "seconds")
MARKS = {"not certified": "†", "vacuous": "‡", "estimate": "§"}
NOTES = {"not certified": "not certified: no certificate was checked after the computation",
         "vacuous": "vacuous: reaches the trivial bound",
         "estimate": "estimate: an empirical number, not a bound"}


def status_flags(bound: Bound) -> list[str]:
    """What a reader must know about ``bound``: a subset of ``"estimate"``, ``"not certified"``, ``"vacuous"``."""
    flags = ["estimate"] if bound.kind == "estimate" else ([] if bound.certified else ["not certified"])
    return flags + (["vacuous"] if bound.details.get("vacuous", False) else [])


def uncertified_reason(bound: Bound) -> str:
    """Why an upper or lower ``bound`` is not certified (``""`` for a certified bound or an estimate): its
    :attr:`~unfoldtheory.results.Bound.reason`."""
    if bound.certified or bound.kind == "estimate":
        return ""
    return bound.reason


def uncertified_summary(bounds: Mapping[str, Bound]) -> str:
    """``"role: reason; …"`` for the bounds of ``{role: Bound}`` that are not certified (``""`` when none), for a
    table row that sets several bounds side by side."""
    return "; ".join(f"{role}: {uncertified_reason(b)}" for role, b in bounds.items() if uncertified_reason(b))


def _labelled(bounds: Sequence[Bound] | Mapping[str, Bound]) -> list[tuple[str | None, Bound]]:
    pairs = list(bounds.items()) if isinstance(bounds, Mapping) else [(None, b) for b in bounds]
    if not pairs:
        raise ValueError("no bounds to tabulate")
    for label, b in pairs:
        if not isinstance(b, Bound):
            raise ValueError(f"table entry {label if label is not None else ''!s} is a {type(b).__name__}, not a Bound")
    return pairs


def _columns(columns: Sequence[str] | None, labelled: bool) -> tuple[str, ...]:
    cols = tuple(columns) if columns is not None else (("label",) if labelled else ()) + DEFAULT_COLUMNS
    if not cols:
        raise ValueError("columns is empty")
    for c in cols:
        if c not in FIELDS and not c.startswith("details."):
            raise ValueError(f"column {c!r} is not known; choose from {FIELDS} or 'details.<key>'")
        if c == "label" and not labelled:
            raise ValueError("column 'label' needs the bounds as a mapping {label: Bound}")
    return cols


def _field(label: str | None, b: Bound, column: str) -> Any:
    if column == "label":
        return label
    if column == "status":
        flags = status_flags(b)
        return ", ".join(flags if flags[:1] in (["estimate"], ["not certified"]) else ["certified", *flags])
    if column == "reason":
        return uncertified_reason(b)
    if column.startswith("details."):
        return b.details.get(column.removeprefix("details."), "")
    return getattr(b, column)


def _marked(rows: list[dict[str, Any]], flags: list[list[str]], digits: int) -> tuple[list[list[Any]], list[str]]:
    """Rows for Markdown/LaTeX with the value marked, and the footnote lines of the marks used."""
    used: list[str] = []
    out = []
    for row, fl in zip(rows, flags, strict=True):
        cells = []
        for column, value in row.items():
            if column == "value":
                marks = "".join(MARKS[f] for f in fl)
                used += [f for f in fl if f not in used]
                value = f"{value:.{digits}g}{marks}"
            cells.append(value)
        out.append(cells)
    return out, [f"{MARKS[f]} {NOTES[f]}" for f in sorted(used, key=list(MARKS).index)]


def _render(bounds: Sequence[Bound] | Mapping[str, Bound], columns: Sequence[str] | None
            ) -> tuple[tuple[str, ...], list[dict[str, Any]], list[list[str]]]:
    pairs = _labelled(bounds)
    cols = _columns(columns, isinstance(bounds, Mapping))
    rows = [{c: _field(label, b, c) for c in cols} for label, b in pairs]
    return cols, rows, [status_flags(b) for _, b in pairs]


def table_markdown(bounds: Sequence[Bound] | Mapping[str, Bound], *, columns: Sequence[str] | None = None,
                   digits: int = 4) -> str:
    """The Markdown table of :func:`table` (values marked, footnote below)."""
    cols, rows, flags = _render(bounds, columns)
    cells, notes = _marked(rows, flags, digits)
    return markdown_table(cols, cells, digits) + "".join(f"\n{n}" for n in notes) + ("\n" if notes else "")


def table(bounds: Sequence[Bound] | Mapping[str, Bound], path: str | os.PathLike[str] | None = None, *,
          columns: Sequence[str] | None = None, digits: int = 4) -> list[dict[str, Any]]:
    """One row per Bound, as ``{column: raw value}``; with ``path``, also writes ``path``.md/.tex/.csv/.json.

    ``bounds`` is a sequence of :class:`Bound` or a mapping ``{label: Bound}`` (then a ``label``
    column comes first). ``columns`` picks from :data:`FIELDS` and ``"details.<key>"``; the default is
    :data:`DEFAULT_COLUMNS`. Markdown and LaTeX (booktabs) mark the values as the module docstring
    says, printed with ``digits`` significant digits; CSV and JSON keep the raw values.
    """
    cols, rows, flags = _render(bounds, columns)
    if path is not None:
        stem = Path(path)
        cells, notes = _marked(rows, flags, digits)
        latex_notes = "".join(rf"\par\smallskip{{\footnotesize {_latex_escape(n)}}}" + "\n" for n in notes)
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(cols)
        writer.writerows([list(r.values()) for r in rows])
        atomic_write_text(stem.with_suffix(".md"), table_markdown(bounds, columns=cols, digits=digits))
        atomic_write_text(stem.with_suffix(".tex"), latex_table(cols, cells, digits) + latex_notes)
        atomic_write_text(stem.with_suffix(".csv"), buf.getvalue())
        atomic_write_json(stem.with_suffix(".json"), rows)
    return rows
