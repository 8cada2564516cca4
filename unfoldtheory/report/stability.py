"""Report section: per-sample stability — the certified local Lipschitz interval of each trained model around test inputs.

For the first ``stability_inputs`` held-out inputs y of the models section's test set, each radius of
:func:`~unfoldtheory.stability.stability_radii` (``stability_radii`` as fractions of ‖y‖, ``stability_noise_radii`` in
units of σ√m when the problem has noise) and each checkpoint, the local constant over ``Ball(y, r)`` gets a certified
upper bound (:func:`unfoldtheory.lipschitz.local.local_upper_bound`) and a witness lower bound
(:func:`unfoldtheory.lipschitz.local_lower.local_lower_bound`), through :func:`unfoldtheory.stability.local_stability`.
The global interval beside them is the lipschitz section's full-depth one when the report ran it (``earlier``), else
computed here the same way, each end tightened by :func:`unfoldtheory.lipschitz.exact.exact_bound` for models of at
most ``stability_exact_neurons`` neurons (:func:`unfoldtheory.stability.global_interval`); for those models each local
interval is tightened by the exact local search too (``exact_bound(spec, region=ball)``). The section checks that
every local upper bound is certified, and (both ends certified) that local lower ≤ local upper and local lower ≤
global upper; a contradiction raises :class:`~unfoldtheory.consistency.InconsistentBounds` before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from unfoldtheory import unfold
from unfoldtheory.diagnostics import markdown_table, save_table
from unfoldtheory.diagnostics.stability_plot import stability_plot
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.report.config import ReportConfig
from unfoldtheory.report.models import REPORT_MODELS
from unfoldtheory.report.section import Section
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec
from unfoldtheory.stability import (
    SUMMARY_HEADER,
    TIGHT_RATIO,
    StabilityProfile,
    global_interval,
    local_stability,
    stability_radii,
    summary_rows,
)


def _bound(d: Mapping) -> Bound:
    """A Bound back from :meth:`Bound.to_dict` (the certificate stays behind: the section only shows the number)."""
    return Bound(float(d["value"]), d["kind"], d["quantity"], d["method"], certified=bool(d["certified"]),
                 seconds=float(d["seconds"]), details=dict(d.get("details") or {}), reason=str(d.get("reason") or ""))


def _best_interval(name: str, spec: NetworkSpec, config: ReportConfig, earlier: Mapping[str, Section] | None
                   ) -> tuple[Bound, Bound]:
    """The lipschitz section's full-depth ``(lower, upper)`` for ``name``, or the same computation when it did not run."""
    rows = (earlier or {}).get("lipschitz")
    rows = rows.results.get("models", {}).get(name) if rows is not None else None
    if rows and rows[-1]["depth"] == config.layers:
        return _bound(rows[-1]["lower"]), _bound(rows[-1]["upper"])
    from unfoldtheory.lipschitz import lower_bound, upper_bound

    return (lower_bound(spec, restarts=4, seed=config.seed, time_budget=config.lipschitz_budget),
            upper_bound(spec, time_budget=config.lipschitz_budget))


def run(config: ReportConfig, out: Path, progress: bool | None = None, earlier: Mapping[str, Section] | None = None) -> Section:
    problem = SparseRecovery(config.m, config.n, config.sparsity, config.noise_std, seed=config.seed)
    Y, _ = problem.sample(config.test_samples, seed=20_000 + config.seed)  # the models section's held-out set
    Y = Y[: config.stability_inputs]
    radii = stability_radii(config.stability_radii, config.stability_noise_radii, config.noise_std)
    profiles: dict[str, StabilityProfile] = {}
    exact: dict[str, Bound | None] = {}
    for name, _ in REPORT_MODELS:
        spec = unfold.load(out / "models" / f"{name}.pt").double().spec()
        lower, upper, exact[name] = global_interval(spec, *_best_interval(name, spec, config, earlier),
                                                    exact_neurons=config.stability_exact_neurons,
                                                    time_budget=config.lipschitz_budget,
                                                    what=f"Lipschitz constant of {name} (l2)", progress=progress)
        profiles[name] = local_stability(spec, Y, radii, noise_std=config.noise_std, time_budget=config.stability_budget,
                                         seed=config.seed, model=name, global_interval=(lower, upper),
                                         exact_neurons=config.stability_exact_neurons, progress=progress)
    rows = [row for p in profiles.values() for row in summary_rows(p)]
    save_table(SUMMARY_HEADER, rows, out / "stability_table")
    checks = {f"{name.lower()}_{key}": ok for name, p in profiles.items() for key, ok in p.checks.items()}
    checks.update({f"{name.lower()}_local_uppers_certified": all(iv.upper.certified for row in p.intervals for iv in row)
                   for name, p in profiles.items()})
    figures = stability_plot(
        {n: [p.summary(i)["relative_radius"] for i in range(len(radii))] for n, p in profiles.items()},
        {n: [[iv.upper for iv in row] for row in p.intervals] for n, p in profiles.items()},
        {n: [[iv.lower for iv in row] for row in p.intervals] for n, p in profiles.items()},
        out / "stability_vs_radius", global_intervals={n: (p.global_lower, p.global_upper) for n, p in profiles.items()},
        xlabel="radius r / ‖y‖ (median over inputs)")
    md = "\n".join([
        f"How stable is each trained model to perturbations of *this* measurement? For {config.stability_inputs} held-out "
        f"inputs y and the radii below, the local ℓ2 Lipschitz constant over the ball ‖y′ − y‖₂ ≤ r lies in "
        "[witness lower bound, certified upper bound]: the upper bound propagates rigorous pre-activation intervals over "
        "the ball, removes the neurons whose slope is fixed there and certifies the rest with the global methods "
        f"(`local_upper_bound`, {config.stability_budget:g} s per ball); the lower bound is a pair inside the ball whose "
        "ratio was re-evaluated (`local_lower_bound`). The local constant grows with r towards the global one, whose "
        "interval is the last row of each model: the lipschitz section's, each end replaced by the exact search's "
        f"(`exact_bound`) where that is tighter, for models of at most {config.stability_exact_neurons} neurons, and the "
        "lower end raised to the largest certified local lower end (a local constant never exceeds the global one, so "
        "its witness bounds the global constant too); for small models each local interval is also tightened by the "
        "exact search confined to the ball (`exact_bound(spec, region=ball)`).",
        "",
        f"Medians are over certified ends only; the share counts inputs whose certified interval has upper / lower ≤ "
        f"{TIGHT_RATIO:g}; † marks a value that is not certified, and the last column says how many ends are not and why.",
        "",
        *[f"- **{name}**: at {p.radii[-1].label}, median local interval [{_num(s['median_lower'])}, "
          f"{_num(s['median_upper'])}] against the global [{_end(p.global_lower)}, {_end(p.global_upper)}]."
          for name, p in profiles.items() for s in [p.summary(len(radii) - 1)]],
        "",
        markdown_table(SUMMARY_HEADER, rows),
        f"![Local Lipschitz interval against radius]({figures[0].relative_to(out).as_posix()})",
        "",
    ])
    results = {name: {**p.to_dict(), "exact": None if exact[name] is None else _exact_summary(exact[name])}
               for name, p in profiles.items()}
    return Section("stability", "Per-sample stability: local Lipschitz intervals around test inputs", md,
                   {"models": results}, figures, checks)


def _exact_summary(exact: Bound) -> dict:
    """What the exact search reached: its certified interval, whether it closed, its time and why it stopped."""
    return {"upper": exact.value, "upper_certified": exact.certified, "lower": exact.details["lower"].value,
            "closed": exact.details["closed"], "seconds": exact.seconds, "reason": exact.details.get("reason", "")}


def _num(value: float) -> str:
    return f"{value:.4g}" if np.isfinite(value) else "—"


def _end(bound: Bound) -> str:
    """The value, with † when it is not certified."""
    return _num(bound.value) + ("" if bound.certified else "†")
