"""``unfoldtheory report``: the main job.

Runs every section on the embedded default problem and writes ``report.md``, ``results.json`` and
the figures (PNG and PDF) into the output folder, each file atomically.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from unfoldtheory import __version__
from unfoldtheory.report.config import ReportConfig
from unfoldtheory.report.section import Section

SectionRunner = Callable[[ReportConfig, Path, "bool | None"], Section]



def section_runners() -> list[tuple[str, SectionRunner]]:
    """The sections in report order; each later analysis adds its runner here.

    Imported on first use, so that ``unfoldtheory report --help`` (which imports this package for
    :class:`ReportConfig`) loads no torch, cvxpy or matplotlib.
    """
    from unfoldtheory.report import baselines, convergence, generalization, lipschitz, models, stability

    return [("baselines", baselines.run), ("models", models.run), ("lipschitz", lipschitz.run), ("stability", stability.run),
            ("convergence", convergence.run), ("generalization", generalization.run)]


def __getattr__(name: str) -> Any:
    if name == "SECTIONS":
        return section_runners()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: Sections that reuse earlier ones' results get them as ``earlier={key: Section}`` (the stability section
#: shows the lipschitz section's global interval beside its local ones instead of computing it again).
READS_EARLIER = frozenset({"stability"})

__all__ = ["READS_EARLIER", "SECTIONS", "ReportConfig", "Section", "run_report", "section_runners"]


def run_report(config: ReportConfig | None = None, out: str | Path = "report", progress: bool | None = None) -> dict[str, Any]:
    """Run all sections, write the report into ``out``, and return the results dictionary.

    The dictionary (also written as ``results.json``) has the config, each section's results and
    a ``checks`` map of named pass/fail cross-checks.
    """
    from unfoldtheory.diagnostics import atomic_write_json, atomic_write_text

    config = config or ReportConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    sections: list[Section] = []
    timings: dict[str, float] = {}
    bar = tqdm(section_runners(), desc="unfoldtheory report", unit="section", disable=None if progress is None else not progress)
    for key, runner in bar:
        bar.set_postfix_str(key)
        t0 = time.perf_counter()
        extra = {"earlier": {s.key: s for s in sections}} if key in READS_EARLIER else {}
        sections.append(runner(config, out, progress, **extra))
        timings[key] = time.perf_counter() - t0
    results = {
        "unfoldtheory_version": __version__,
        "python": platform.python_version(),
        "config": config.to_dict(),
        "seconds": time.perf_counter() - started,
        "section_seconds": timings,
        "sections": {s.key: s.results for s in sections},
        "checks": {f"{s.key}.{name}": ok for s in sections for name, ok in s.checks.items()},
        "figures": [p.relative_to(out).as_posix() for s in sections for p in s.figures],
    }
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "report.md", _markdown(config, sections, results))
    return results


def _markdown(config: ReportConfig, sections: list[Section], results: dict[str, Any]) -> str:
    failed = [name for name, ok in results["checks"].items() if not ok]
    head = [
        "# unfoldtheory report",
        "",
        f"unfoldtheory {results['unfoldtheory_version']}, Python {results['python']}, {results['seconds']:.1f} s.",
        "",
        "Cross-checks: " + ("all passed." if not failed else "FAILED: " + ", ".join(failed) + "."),
        "",
    ]
    body = []
    for s in sections:
        body += [f"## {s.title}", "", s.markdown, ""]
    return "\n".join(head + body)
