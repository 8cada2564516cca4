"""Report section: three unfolded models trained quickly, compared with ISTA and FISTA at equal depth.

UnfoldedISTA and ALISTA (learned hyperparameters: K steps and K thresholds; ALISTA on the analytic
weight) and LISTA (learned objective parameters: untied matrices) are trained end to end on fresh samples of the report's problem;
NMSE (dB) after every layer is measured on held-out samples. The checkpoints are saved in
``OUT/models/`` so that later analyses (and ``unfoldtheory analyze``) can use them.
"""

from __future__ import annotations

from pathlib import Path

from unfoldtheory import unfold
from unfoldtheory.comparison import TABLE_HEADER, classical_results, nmse_figure, table_rows, train_and_evaluate
from unfoldtheory.diagnostics import markdown_table, save_table
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.report.config import ReportConfig
from unfoldtheory.report.section import Section

#: (model class, relative learning rate) for the report; see studies/paradigms_sparse.py for all eight.
REPORT_MODELS = (("UnfoldedISTA", 0.02), ("ALISTA", 0.02), ("LISTA", 0.05))


def run(config: ReportConfig, out: Path, progress: bool | None = None) -> Section:
    problem = SparseRecovery(config.m, config.n, config.sparsity, config.noise_std, seed=config.seed)
    Y, X = problem.sample(config.test_samples, seed=20_000 + config.seed)
    results = classical_results(problem, Y, X, config.layers)
    for name, lr in REPORT_MODELS:
        model = getattr(unfold, name)(problem.A, config.layers, problem.lam).float()
        result, _ = train_and_evaluate(name, model, problem, (Y, X), steps=config.train_steps, lr=lr, seed=config.seed,
                                       device=config.device, progress=progress)
        unfold.save(model, out / "models" / f"{name}.pt")
        results.append(result)
    rows = table_rows(results)
    save_table(TABLE_HEADER, rows, out / "models_table")
    figures = nmse_figure(results, out / "models_nmse", f"{config.layers} layers, m={config.m}, n={config.n}")
    ista = next(r for r in results if r.name == "ISTA")
    learned = [r for r in results if r.paradigm != "classical"]
    md = "\n".join([
        f"Each model has {config.layers} layers and was trained end to end for {config.train_steps} steps of 64 fresh "
        f"samples; NMSE is measured on {config.test_samples} held-out samples. "
        "`studies/paradigms_sparse.py` trains all eight models of the four paradigms with a larger budget.",
        "",
        markdown_table(TABLE_HEADER, rows),
        f"![NMSE against layer]({figures[0].relative_to(out).as_posix()})",
        "",
    ])
    checks = {f"{r.name.lower()}_beats_ista": r.final_nmse_db < ista.final_nmse_db for r in learned}
    results_json = {"methods": {r.name: {"nmse_db_per_layer": r.nmse_db, "parameters": r.parameters,
                                         "train_seconds": r.train_seconds, "flops_per_sample": r.flops_per_sample,
                                         "seconds_per_sample": r.seconds_per_sample} for r in results},
                    "checkpoints": [f"models/{name}.pt" for name, _ in REPORT_MODELS]}
    return Section("models", "Unfolded models against the classical iterations", md, results_json, figures, checks)
