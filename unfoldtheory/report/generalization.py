"""Report section: every generalization bound of the report's models, beside the measured gap.

A generalization bound is about a model trained on a *fixed* sample, so this section trains each of
the report's models (:data:`~unfoldtheory.report.models.REPORT_MODELS`) again, with the same settings,
on ``generalization_samples`` samples for ``generalization_steps`` steps, measures its training and test
loss (``test_samples`` held-out samples) and computes every applicable bound with
:func:`unfoldtheory.generalization.suite.generalization_bounds` (covering, spectral, spectral PAC-Bayes,
ℓ∞ peeling, PAC-Bayes with the data-free prior) and, for every model, the certified split-prior bound of
:func:`unfoldtheory.generalization.split_prior.split_prior_bound` with its unclipped candidate on the data domain. The
section checks that every bound on the expected loss that claims to cover the
measured quantity lies above it up to the sampling error of the test estimate (a bound below it would
be wrong, or the test set unlucky).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from unfoldtheory import unfold
from unfoldtheory.diagnostics import bound_ratio_plot, markdown_table, save_table
from unfoldtheory.generalization.suite import bound_rows, generalization_bounds
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.report.config import ReportConfig
from unfoldtheory.report.models import REPORT_MODELS
from unfoldtheory.report.section import Section
from unfoldtheory.train import fit

HEADER = ["model", "method", "loss covered", "predictor", "bound on gap", "measured gap", "bound on E loss", "compared loss",
          "bound / compared", "bound / its test loss", "bound / model's test loss", "vacuous", "certified"]
TRAIN_SEED, TEST_SEED = 60_000, 70_000


def _trainer(name: str, lr: float, problem: SparseRecovery, config: ReportConfig):
    def train(data: tuple[np.ndarray, np.ndarray]):
        model = getattr(unfold, name)(problem.A, config.layers, problem.lam).float()
        fit(model, problem, steps=config.generalization_steps, lr=lr, data=data, seed=config.seed, keep_best=False,
            device=config.device, progress=False)
        return model.cpu().double()
    return train


def _sampling_allowance(result: dict[str, Any]) -> float:
    """A generous allowance for the sampling error of a held-out loss: 4 standard errors, read off the
    half-width of the measured gap's 95 % interval (which also contains the training loss's spread)."""
    lo, hi = result["gap_interval"]
    return 4.0 * (hi - lo) / (2 * 1.96)


def _tightest(tightest: dict[bool, tuple[str, dict[str, Any]]]) -> str:
    """The tightest non-vacuous certified bound, and an uncertified one when it is tighter still."""
    def say(entry: tuple[str, dict[str, Any]]) -> str:
        r = entry[1]
        own = f"{r['ratio_test']:.3g}× the test loss" + (f" of the {r['predictor']}" if r.get("predictor") else "")
        model = f", {r['ratio_model_test']:.3g}× the model's" if "ratio_model_test" in r else ""
        return f"{entry[0]}, {r['expected']:.4g} on the expected loss ({own}{model})"

    if not tightest:
        return "every bound is vacuous."
    text = f"tightest certified non-vacuous bound: {say(tightest[True])}" if True in tightest else \
        "no certified bound is non-vacuous"
    if False in tightest and (True not in tightest or tightest[False][1]["ratio_test"] < tightest[True][1]["ratio_test"]):
        text += f"; not certified (†): {say(tightest[False])}"
    return text + "."


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def run(config: ReportConfig, out: Path, progress: bool | None = None) -> Section:
    problem = SparseRecovery(config.m, config.n, config.sparsity, config.noise_std, seed=config.seed)
    train = problem.sample(config.generalization_samples, seed=TRAIN_SEED + config.seed)
    test = problem.sample(config.test_samples, seed=TEST_SEED + config.seed)
    rows, results, checks, lines, ratios = [], {}, {}, [], []
    for name, lr in tqdm(REPORT_MODELS, desc="generalization bounds", disable=None if progress is None else not progress):
        trainer = _trainer(name, lr, problem, config)
        model = trainer(train)
        result = generalization_bounds(model, train, test, retrain=trainer, seed=config.seed)
        results[name] = result
        tightest: dict[bool, tuple[str, dict[str, Any]]] = {}  # certified or not -> (method, row)
        for method, r in bound_rows(result):
            compared = r["expected"] / r["clipped"]
            rows.append([name, method, r["covers"], r["predictor"], r["gap_bound"], r["measured"], r["expected"], r["clipped"],
                         compared, r["ratio_test"], r["ratio_model_test"], r["vacuous"], r["certified"]])
            ratios.append({"group": name, "method": method, "ratio": compared, "vacuous": r["vacuous"],
                           "certified": r["certified"]})
            checks[f"{_slug(name)}_{_slug(method)}_above_held_out_loss"] = bool(
                r["expected"] + _sampling_allowance(result) >= r["clipped"])
            known = tightest.get(r["certified"])
            if not r["vacuous"] and (known is None or r["ratio_test"] < known[1]["ratio_test"]):
                tightest[r["certified"]] = (method, r)
        lines.append(f"- **{name}** ({result['parameters']} parameters): train loss {result['train_loss']:.4g}, "
                     f"test loss {result['test_loss']:.4g}, measured gap {result['gap']:.3g}; " + _tightest(tightest))
    save_table(HEADER, rows, out / "generalization_table")
    figures = bound_ratio_plot(ratios, out / "generalization_ratios", target=2.0,
                               title=f"Bounds on the expected loss / held-out loss ({config.generalization_samples} samples)",
                               xlabel="bound on E loss / compared held-out loss")
    md = "\n".join([
        f"Each model was trained again on a fixed sample of {config.generalization_samples} signals "
        f"({config.generalization_steps} steps) and tested on {config.test_samples} held-out signals. Every bound is on "
        "the gap E ℓ − training loss of ℓ = ‖h(y) − x‖², with probability ≥ 95 %; *bound on E loss* is the training "
        "loss plus the gap bound. The norm-based and PAC-Bayes bounds are for the loss clipped at b (the smallest power "
        "of two above the largest training loss, chosen on a grid that every bound pays for), and the PAC-Bayes bounds "
        "are about the Gibbs predictor around the model. The split-prior rows are computed by the package's own procedure: "
        "it splits the sample by a recorded seed, trains a prior net on one part and bounds the best of its candidates "
        "(that net, or a Gibbs predictor around it or around the model) on the other; the unclipped row bounds E[ℓ·1_D] "
        "of the prior net with no clipping, D the ball of the calibration data's largest norms, on which a certified "
        "Lipschitz constant bounds the loss. *Loss covered* and *predictor* say what each row is about; *compared loss* "
        "is the held-out value of exactly that quantity, *its test loss* the covered predictor's and *model's test loss* "
        "the trained model's. Vacuous: the bound reaches the trivial value (the loss range). Not certified: †.",
        "",
        *lines,
        "",
        markdown_table(HEADER, rows),
        f"![Bounds relative to the held-out loss]({figures[0].relative_to(out).as_posix()})",
        "",
        "`studies/generalization.py` sets these bounds against the number of samples and the depth.",
        "",
    ])
    not_applicable = {name: r["errors"] for name, r in results.items() if r["errors"]}
    if not_applicable:
        md += "\nNot applicable:\n\n" + "\n".join(f"- {name}, {method}: {why}" for name, errs in not_applicable.items()
                                                  for method, why in errs.items()) + "\n"
    for name, r in results.items():
        checks[f"{name.lower()}_losses_finite"] = math.isfinite(r["train_loss"]) and math.isfinite(r["test_loss"])
    return Section("generalization", "Generalization bounds beside the measured gap", md, {"models": results}, figures,
                   checks)
