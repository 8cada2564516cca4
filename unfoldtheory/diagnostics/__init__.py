"""Figures, tables and files: what turns analyses into something a paper can use.

| function | what |
|---|---|
| :func:`convergence_plot` | error against layer, with certified envelopes |
| :func:`lipschitz_depth_plot` | Lipschitz interval [witness lower, certified upper] against depth |
| :func:`generalization_plot` | measured gap (with its interval) and bounds against sample size |
| :func:`bound_ratio_plot` | bounds divided by the held-out value they cover, per group and method |
| :func:`step_size_plot` | learned step sizes against the classical 1/L and the limit 2/L |
| :func:`stability_plot` | local Lipschitz interval against radius, the global interval as its limit |
| :func:`table` | Bounds as Markdown, LaTeX (booktabs), CSV and JSON, uncertified values marked |

Every figure is saved as PNG and PDF (matplotlib's Agg backend) in one style (:data:`figures.STYLE`).
"""

from unfoldtheory.diagnostics.bound_table import table, table_markdown
from unfoldtheory.diagnostics.convergence_plot import convergence_plot
from unfoldtheory.diagnostics.figures import new_figure, save_figure
from unfoldtheory.diagnostics.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from unfoldtheory.diagnostics.generalization_plot import generalization_plot
from unfoldtheory.diagnostics.lipschitz_plot import lipschitz_depth_plot
from unfoldtheory.diagnostics.ratio_plot import bound_ratio_plot
from unfoldtheory.diagnostics.stability_plot import stability_plot
from unfoldtheory.diagnostics.step_size_plot import classical_step, learned_steps, step_size_plot
from unfoldtheory.diagnostics.tables import latex_table, markdown_table, save_table

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text", "bound_ratio_plot", "classical_step",
           "convergence_plot", "generalization_plot", "latex_table", "learned_steps", "lipschitz_depth_plot", "markdown_table",
           "new_figure", "save_figure", "save_table", "stability_plot", "step_size_plot", "table", "table_markdown"]
