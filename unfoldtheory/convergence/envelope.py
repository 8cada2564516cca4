"""The convergence figure under its historical name: :func:`envelope_figure` is
:func:`unfoldtheory.diagnostics.convergence_plot` with the title as a positional argument."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from unfoldtheory.diagnostics.convergence_plot import convergence_plot


def envelope_figure(traces: Mapping[str, Any], bounds: Mapping[str, Any], path: str | os.PathLike[str], title: str,
                    *, target: Literal["truth", "reference"] = "truth", ylabel: str | None = None) -> list[Path]:
    """Error against layer with certified envelopes, saved as ``path``.png/.pdf (see :func:`convergence_plot`)."""
    return convergence_plot(traces, bounds, path, title=title, target=target, ylabel=ylabel)
