"""Train-and-compare: unfolded models against the classical iterations they unfold.

Used by ``studies/paradigms_sparse.py`` and by ``unfoldtheory report``. For each method it
records NMSE (dB) after every layer on a held-out test set, the number of learned parameters,
the training time, the inference FLOPs per sample and the measured wall time per sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unfoldtheory.classical import fista, ista
from unfoldtheory.diagnostics import new_figure
from unfoldtheory.diagnostics.figures import styled
from unfoldtheory.diagnostics.plot_support import finish, integer_ticks, legend_below
from unfoldtheory.metrics import nmse_db
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.train import History, evaluate_nmse, fit
from unfoldtheory.unfold import UnfoldedModel


@dataclass
class MethodResult:
    """One row of a comparison."""

    name: str
    paradigm: str
    nmse_db: list[float]
    parameters: int
    train_seconds: float
    flops_per_sample: int
    seconds_per_sample: float
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def final_nmse_db(self) -> float:
        return self.nmse_db[-1]


def classical_results(problem: SparseRecovery, Y: np.ndarray, X: np.ndarray, layers: int) -> list[MethodResult]:
    """ISTA and FISTA with ``layers`` iterations (step 1/L, threshold λ/L) on ``(Y, X)``."""
    m, n = problem.m, problem.n
    out = []
    for name, run, flops in (("ISTA", ista, 4 * m * n + 3 * n), ("FISTA", fista, 4 * m * n + 6 * n)):
        start = time.perf_counter()
        its = run(problem.A, Y, problem.lam, layers)
        per_sample = (time.perf_counter() - start) / Y.shape[0]
        out.append(MethodResult(name, "classical", [nmse_db(x, X) for x in its[1:]], 0, 0.0, layers * flops, per_sample))
    return out


def train_and_evaluate(name: str, model: UnfoldedModel, problem: SparseRecovery, test: tuple[np.ndarray, np.ndarray], *,
                       scheme: str = "end_to_end", steps: int = 1000, lr: float = 1e-2, seed: int = 0,
                       batch_size: int = 64, validation_size: int = 500, device: str = "cpu",
                       progress: bool | None = None) -> tuple[MethodResult, History]:
    """Train ``model`` with :func:`unfoldtheory.train.fit` and evaluate it on ``test = (Y, X)``.

    Early stopping uses a validation set of ``validation_size`` fresh samples, disjoint from the
    test set by construction (its own seed); the test set is never seen during training.
    """
    validation = problem.sample(validation_size, seed=30_000 + seed)
    history = fit(model, problem, scheme, steps, seed, lr=lr, batch_size=batch_size, validation=validation,
                  device=device, progress=progress)
    Y, X = test
    per_layer = evaluate_nmse(model, Y, X, per_layer=True)
    with torch.no_grad():
        Yt = torch.as_tensor(Y, dtype=model.A.dtype, device=model.A.device)
        model(Yt)  # warm-up
        start = time.perf_counter()
        model(Yt)
        if Yt.is_cuda:
            torch.cuda.synchronize()
        per_sample = (time.perf_counter() - start) / Y.shape[0]
    result = MethodResult(name, model.paradigm, [float(v) for v in per_layer], model.num_parameters(), history.seconds,
                          model.flops_per_sample(), per_sample,
                          {"scheme": scheme, "steps": steps, "lr": lr, "best_step": history.best_step})
    return result, history


TABLE_HEADER = ["method", "paradigm", "NMSE (dB)", "gain over ISTA (dB)", "gain over FISTA (dB)", "parameters",
                "training time (s)", "FLOPs / sample", "wall time / sample (µs)"]


def table_rows(results: Sequence[MethodResult]) -> list[list[Any]]:
    """Rows for :data:`TABLE_HEADER`; gains are measured at equal depth against ISTA and FISTA."""
    base = {r.name: r.final_nmse_db for r in results if r.paradigm == "classical"}
    return [[r.name, r.paradigm, r.final_nmse_db, base.get("ISTA", np.nan) - r.final_nmse_db,
             base.get("FISTA", np.nan) - r.final_nmse_db, r.parameters, r.train_seconds, r.flops_per_sample,
             1e6 * r.seconds_per_sample] for r in results]


@styled
def nmse_figure(results: Sequence[MethodResult], stem: str | Path, title: str) -> list[Path]:
    """NMSE (dB) against layer for every method, classical ones dashed; saved as PNG and PDF at one-column width."""
    fig, ax = new_figure()
    for i, r in enumerate(results):
        style = "--" if r.paradigm == "classical" else "-"
        ax.plot(np.arange(1, len(r.nmse_db) + 1), r.nmse_db, style, marker="o", ms=3, color=f"C{i % 10}", label=r.name)
    ax.set_xlabel("layer / iteration k")
    ax.set_ylabel("NMSE (dB)")
    integer_ticks(ax.xaxis)
    legend_below(ax)
    return finish(fig, stem, title, ax, return_figure=False)


ModelFactory = Callable[[np.ndarray, int, float], UnfoldedModel]
