"""Report section: certified convergence of the trained models against the classical iterations.

1. **PEP.** The learned step schedules of UnfoldedISTA and ALISTA get their exact worst case by
   performance estimation (:func:`unfoldtheory.convergence.pep_rate_of`), beside ISTA's fixed step
   ``1/L`` at the same depth; both values are certified from checked dual multipliers.
2. **Per-layer certificates.** On the class of s-sparse signals with ``‖x‖_∞ ≤ B`` (noiseless), the
   coherence chain (:func:`unfoldtheory.convergence.coherence.lista_cp_certificate`) is evaluated with
   each trained model's weights and thresholds: a certified error per layer, or the layer where its
   threshold falls below what the proof needs. ALISTA Theorem 1 with the learned steps and the
   thresholds it prescribes (:func:`~unfoldtheory.convergence.coherence.alista_rate_bound`) is shown
   beside it, together with an ALISTA network run with exactly those thresholds.
3. **Envelope figure.** Error against layer on sampled signals of that class for ISTA, FISTA and the
   trained models, with every certified per-layer bound as an envelope; the section checks that no
   sampled error exceeds its certified envelope.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from unfoldtheory import unfold
from unfoldtheory.convergence import pep_rate_of
from unfoldtheory.convergence.coherence import alista_rate_bound, lista_cp_certificate
from unfoldtheory.convergence.empirical import error_trace
from unfoldtheory.diagnostics import convergence_plot, markdown_table, save_table
from unfoldtheory.diagnostics.bound_table import uncertified_summary
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.report.config import ReportConfig
from unfoldtheory.report.section import Section

PEP_HEADER = ["model", "metric", "learned schedule (worst case)", "ISTA step 1/L (worst case)", "learned / classical",
              "certified", "why not certified"]
SCHEDULE_MODELS = ("UnfoldedISTA", "ALISTA")
#: The signal class of the per-layer certificates: s nonzeros of magnitude at most B.
CLASS_SPARSITY, CLASS_AMPLITUDE = 2, 1.0


def sparse_class_samples(A: np.ndarray, num: int, s: int, B: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``num`` signals with exactly ``s`` nonzeros uniform in ``[−B, B]`` and their noiseless measurements."""
    rng = np.random.default_rng(seed)
    n = A.shape[1]
    X = np.zeros((num, n))
    for i in range(num):
        X[i, rng.choice(n, size=s, replace=False)] = rng.uniform(-B, B, size=s)
    return X @ A.T, X


def run(config: ReportConfig, out: Path, progress: bool | None = None) -> Section:
    problem = SparseRecovery(config.m, config.n, config.sparsity, config.noise_std, seed=config.seed)
    models = {name: unfold.load(out / "models" / f"{name}.pt").double() for name in SCHEDULE_MODELS}
    rows, pep, pep_certified = [], {}, {}
    for name, model in models.items():
        rates = pep_rate_of(model)
        pep[name] = {"learned": rates.learned.to_dict(), "classical": rates.classical.to_dict(), "certifies": rates.certifies,
                     "steps": rates.steps, "classical_step": rates.classical_step}
        pep_certified[name] = rates.learned.certified and rates.classical.certified
        why = uncertified_summary({"learned": rates.learned, "classical": rates.classical})
        rows.append([name, rates.metric, rates.learned.value, rates.classical.value, rates.ratio, pep_certified[name], why])
    save_table(PEP_HEADER, rows, out / "convergence_pep")

    s, B = CLASS_SPARSITY, CLASS_AMPLITUDE
    A = problem.A
    Y, X = sparse_class_samples(A, 200, s, B, seed=50_000 + config.seed)
    certificates = {name: lista_cp_certificate(model, s, B) for name, model in models.items()}
    theorem = alista_rate_bound(A, pep["ALISTA"]["steps"], s, B, W=models["ALISTA"].W.detach().numpy())
    prescribed = unfold.ALISTA(A, config.layers, problem.lam)
    with torch.no_grad():
        prescribed.W.copy_(models["ALISTA"].W)
        for k in range(config.layers):
            prescribed.step[k].fill_(float(pep["ALISTA"]["steps"][k]))
            prescribed.threshold[k].fill_(float(theorem.thresholds[k]))
    solvers = {"ISTA": "ista", "FISTA": "fista", **models, "ALISTA (Theorem 1 thresholds)": prescribed}
    traces = {name: error_trace(solver, Y, X, A=A, lam=problem.lam, layers=config.layers, reference="none", name=name)
              for name, solver in solvers.items()}
    envelopes = {f"{name}: coherence chain": cert.errors for name, cert in certificates.items()
                 if any(b.certified for b in cert.errors)}
    envelopes["ALISTA (Theorem 1 thresholds): Theorem 1"] = theorem.errors
    covered = {"ALISTA (Theorem 1 thresholds): Theorem 1": "ALISTA (Theorem 1 thresholds)",
               **{f"{name}: coherence chain": name for name in certificates}}
    checks = {}
    for label, bounds in envelopes.items():
        errors = traces[covered[label]].errors("truth")
        values = np.array([b.value if b.certified else np.inf for b in bounds])
        checks[f"envelope_{covered[label].split()[0].lower()}_{'theorem' if 'Theorem' in label else 'chain'}_holds"] = bool(
            np.all(errors.max(axis=1) <= values * (1 + 1e-9) + 1e-12))
    checks.update({f"pep_{name.lower()}_certified": ok for name, ok in pep_certified.items()})
    figures = convergence_plot(traces, envelopes, out / "convergence_envelopes",
                               title=f"Error against layer, {s}-sparse signals with |x_i| ≤ {B:g}")
    cert_lines = []
    for name, cert in certificates.items():
        done = cert.certified_layers
        status = ("certified at every layer" if cert.valid else f"certified for {done} of {config.layers} layers; {cert.reason}")
        cert_lines.append(f"- **{name}**: {status}.")
    theorem_status = ("its hypotheses hold" if theorem.valid else theorem.reason)
    md = "\n".join([
        "**Worst case of the learned step schedules (PEP).** Exact worst case over L-smooth convex f plus a convex "
        "h, certified from the dual multipliers, against ISTA's fixed step at the same depth:",
        "",
        markdown_table(PEP_HEADER, rows),
        *[f"- {name}: {pep[name]['certifies']}." for name in SCHEDULE_MODELS],
        "",
        f"**Per-layer certificates** over {s}-sparse signals with ‖x‖_∞ ≤ {B:g} (noiseless), evaluated with the "
        "trained weights and thresholds:",
        "",
        *cert_lines,
        f"- ALISTA Theorem 1 with the learned steps and the thresholds it prescribes: {theorem_status}; final-layer "
        f"bound {theorem.errors[-1].value:.3g}.",
        "",
        f"![Error against layer with certified envelopes]({figures[0].relative_to(out).as_posix()})",
        "",
    ])
    results = {"pep": pep, "class": {"sparsity": s, "amplitude": B, "samples": int(Y.shape[0])},
               "certificates": {name: {"valid": c.valid, "reason": c.reason, "certified_layers": c.certified_layers,
                                       "errors": [b.to_dict() for b in c.errors]} for name, c in certificates.items()},
               "theorem1": {"valid": theorem.valid, "reason": theorem.reason, "thresholds": theorem.thresholds,
                            "errors": [b.to_dict() for b in theorem.errors]},
               "max_sampled_error": {name: t.errors("truth").max(axis=1) for name, t in traces.items()}}
    return Section("convergence", "Convergence certificates", md, results, figures, checks)
