"""Figures, tables and files: what turns analyses into something a paper can use."""

from unfoldtheory.diagnostics.figures import new_figure, save_figure
from unfoldtheory.diagnostics.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from unfoldtheory.diagnostics.tables import latex_table, markdown_table, save_table

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text", "latex_table", "markdown_table", "new_figure",
           "save_figure", "save_table"]
