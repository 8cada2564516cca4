"""A report section: what each analysis contributes to ``unfoldtheory report``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Section:
    """A titled piece of the report: Markdown body, JSON-able results and the figures it wrote."""

    key: str
    title: str
    markdown: str
    results: dict[str, Any] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)
