"""Every applicable generalization bound of one trained model, beside its measured gap.

:func:`generalization_bounds` is what ``studies/generalization.py`` computes in each cell and what
``unfoldtheory report`` shows for its trained models; :func:`bound_rows` turns its result into table
rows measured against the right predictor.

* **Measured:** training and test loss, the gap with a 95 % t interval (:func:`empirical_gap`).
* **Clip level.** The norm-based and PAC-Bayes bounds are stated for the loss clipped at ``b``: the
  smallest power of two at or above the largest training loss, from the grid ``2^j``, ``|j| ≤ 30``.
  Choosing ``b`` after seeing the data is paid for by a union bound over that grid: each of those
  bounds runs at ``δ / 61`` (or carries ``union = 61``). ``tail`` = test mean − clipped test mean
  estimates the part of the loss the clipped statements leave out.
* **Bounds:** the covering-number bound (statement for data inside the training radii), the adapted
  spectral covering and spectral PAC-Bayes bounds, the ℓ∞-peeling bound, the PAC-Bayes bound with an
  optimised posterior around the data-free prior (certified) and, when ``retrain`` is given, the split-prior
  bound of :func:`~unfoldtheory.generalization.split_prior.split_prior_bound` (certified: the package splits the
  sample, trains the prior net with ``retrain`` on one part and bounds the best of its candidates on the other;
  Ambroladze et al. 2007; Pérez-Ortiz et al. 2021; Langford 2005), with the unclipped candidate: the loss of the
  prior net is bounded on the data domain ``D`` read off the prior part (:mod:`~unfoldtheory.generalization.loss_range`),
  so ``E[ℓ·1_D]`` is bounded with no clipping. A bound that does not apply to the model says why in ``errors``.
* **Which loss, which predictor.** Every record names the loss it covers (``covers``: ``ℓ``, ``min(ℓ, b)`` or
  ``ℓ·1_D``) and the predictor (``predictor``: the model, the Gibbs predictor around it, or the prior net), and is
  compared with the held-out value of exactly that quantity.
* **Any module.** A torch module that is not a package model is traced (on the first training input) where a
  bound needs its network. Its data-free choices are the origin: the covering ball is centred at 0, the spectral
  reference is 0 and the PAC-Bayes prior is ``N(0, σ_P² I)`` (none of them depends on the data; a package
  model uses its classical initialisation instead). The spectral PAC-Bayes bound and the design rule need the
  package's model structure and are listed in ``errors`` with the reason. ``parameters`` counts distinct
  scalars: a parameter tied across layers counts once, in every complexity term.
* **Design rule** of Shultzman et al. (:func:`design_rule`), as a checkable condition.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from torch import nn

from unfoldtheory.generalization.covering import covering_bound
from unfoldtheory.generalization.data import as_dataset, data_radii, squared_losses
from unfoldtheory.generalization.empirical import empirical_gap
from unfoldtheory.generalization.loss_range import domain_loss_bound, domain_radii
from unfoldtheory.generalization.pac_bayes import gibbs_losses, pac_bayes_bound
from unfoldtheory.generalization.parameter_lipschitz import has_initialisation, model_size
from unfoldtheory.generalization.shultzman import design_rule, shultzman_bound
from unfoldtheory.generalization.spectral import spectral_bound, spectral_pac_bayes_bound
from unfoldtheory.generalization.split_prior import PREDICTORS, split_prior_bound
from unfoldtheory.results import Bound
from unfoldtheory.spec import NotRepresentable
from unfoldtheory.validation import finite_float

#: The clip grid b = 2^j, |j| <= 30: every clipped bound pays a union bound over its 61 points.
CLIP_GRID = 61
METHODS = ("covering", "spectral", "spectral PAC-Bayes", "l-inf peeling", "PAC-Bayes (data-free prior)",
           "PAC-Bayes (split prior)", "split prior, unclipped on D")
#: What each method's statement covers: (loss, predictor).
COVERS: dict[str, tuple[str, str]] = {
    "covering": ("ℓ for data inside the training radii", "the model"),
    "spectral": ("min(ℓ, b)", "the model"),
    "spectral PAC-Bayes": ("min(ℓ, b)", "the model"),
    "l-inf peeling": ("min(ℓ, b)", "the model"),
    "PAC-Bayes (data-free prior)": ("min(ℓ, b)", "Gibbs around the model"),
}

#: A callable that trains a fresh model of the same kind on a data set ``(Y, X)``.
Retrain = Callable[[tuple[np.ndarray, np.ndarray]], nn.Module]


def clip_level(losses: np.ndarray) -> float:
    """The smallest ``2^j`` (``|j| ≤ 30``) at or above ``max(losses)``; ValueError above ``2^30``."""
    top = float(np.max(losses))
    if not math.isfinite(top) or top > 2.0**30:
        raise ValueError(f"the largest training loss is {top:g}, beyond the clip grid 2^j, |j| <= 30")
    return 2.0 ** math.ceil(math.log2(max(top, 2.0**-30)))


def record(bound: Bound, train_loss: float, test_loss: float) -> dict[str, Any]:
    """The JSON-able numbers of one gap bound: the bound, the expected-loss bound, its ratio to the test
    loss, whether it is vacuous (reaches the trivial bound) and its statement."""
    d = bound.details
    expected = float(d.get("expected_loss_bound", train_loss + bound.value))
    trivial = float(d.get("trivial_bound", d.get("loss_range", math.inf)))
    return {"gap_bound": float(bound.value), "expected_loss_bound": expected, "ratio_to_test": expected / test_loss,
            "vacuous": bool(d.get("vacuous", expected >= trivial)), "certified": bool(bound.certified),
            "trivial_bound": trivial, "seconds": float(bound.seconds),
            "statement": str(d.get("statement", d.get("applies_to", "")))}


def _gibbs(model: nn.Module, bound: Bound, test: tuple[np.ndarray, np.ndarray], clip: float, seed: int) -> dict[str, float]:
    losses, _ = gibbs_losses(model, bound.details["posterior_std"], test, draws=2, seed=seed)
    return {"gibbs_test_loss_clipped": float(np.minimum(losses, clip).mean()), "gibbs_test_loss": float(losses.mean())}


def generalization_bounds(model: nn.Module, train: Any, test: Any, *, delta: float = 0.05, retrain: Retrain | None = None,
                          split_fraction: float = 0.5, seed: int = 0) -> dict[str, Any]:
    """The measured gap of ``model`` (trained on ``train``) and every applicable bound on it (module docstring).

    Returns a JSON-able dictionary: losses, ``gap`` and ``gap_interval``, ``clip``, ``bounds`` (one
    :func:`record` per method of :data:`METHODS` that applies), ``errors`` (why the others do not),
    and ``design_rule``.
    """
    train, test = as_dataset(train, "train"), as_dataset(test, "test")
    finite_float(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
    finite_float(split_fraction, "split_fraction", low=0.0, high=1.0, low_open=True, high_open=True)
    samples = train[0].shape[0]
    tr, te = squared_losses(model, train, "train"), squared_losses(model, test, "test")
    train_loss, test_loss = float(tr.mean()), float(te.mean())
    clip = clip_level(tr)
    d_clip = delta / CLIP_GRID
    gap = empirical_gap(model, train, test)
    out: dict[str, Any] = {
        "samples": samples, "train_loss": train_loss, "test_loss": test_loss, "gap": gap.value,
        "gap_interval": list(gap.details["interval"]), "clip": clip, "test_loss_clipped": float(np.minimum(te, clip).mean()),
        "zero_predictor_loss": float(np.mean(np.sum(test[1] ** 2, axis=1))),
        "parameters": model_size(model), "bounds": {}, "errors": {},
    }
    out["tail"] = out["test_loss"] - out["test_loss_clipped"]
    R, B = data_radii(train)
    example = train[0][:1]
    origin = "init" if has_initialisation(model) else "zero"  # the data-free centre, reference and prior mean
    candidates: dict[str, Callable[[], Bound]] = {
        "covering": lambda: covering_bound(model, samples, delta, R, B, center=origin, example_input=example),
        "spectral": lambda: spectral_bound(model, train, clip=clip, delta=d_clip, reference=origin, example_input=example),
        "spectral PAC-Bayes": lambda: spectral_pac_bayes_bound(model, train, clip=clip, delta=d_clip),
        "l-inf peeling": lambda: shultzman_bound(model, train, clip=clip, delta=d_clip, example_input=example),
        "PAC-Bayes (data-free prior)": lambda: pac_bayes_bound(model, train, clip=clip, prior_mean=origin, union=CLIP_GRID,
                                                               progress=False),
    }
    for name, compute in candidates.items():
        try:
            bound = compute()
        except (ValueError, NotRepresentable) as exc:  # a bound that does not apply to this model says why
            out["errors"][name] = f"{type(exc).__name__}: {exc}" if isinstance(exc, NotRepresentable) else str(exc)
            continue
        out["bounds"][name] = record(bound, train_loss, test_loss)
        if name.startswith("PAC-Bayes"):
            out["bounds"][name].update(_gibbs(model, bound, test, clip, seed + 11))
        if name == "covering":
            ball = "" if origin == "init" else "; parameter ball centred at the origin"
            out["bounds"][name]["statement"] = f"data inside the training radii ‖y‖ ≤ R, ‖x‖ ≤ B{ball}"
    if retrain is None:
        out["errors"]["PAC-Bayes (split prior)"] = "no retraining function was given"
    else:
        try:
            out["bounds"].update(split_records(retrain, model, train, test, delta, split_fraction, seed))
        except (ValueError, NotRepresentable) as exc:
            out["errors"]["PAC-Bayes (split prior)"] = str(exc)
    for name, (loss, predictor) in COVERS.items():
        if name in out["bounds"]:
            out["bounds"][name].update({"covers": loss, "predictor": predictor})
    try:
        rule = design_rule(model, samples, example_input=example)
    except (ValueError, NotRepresentable) as exc:
        out["design_rule"] = None
        out["errors"]["design rule"] = str(exc)
    else:
        out["design_rule"] = {"limit": rule.limit, "max_norm": max(rule.norms) if rule.norms else 0.0,
                              "satisfied": rule.satisfied, "product": rule.product}
    return out


def domain_loss_level(net: nn.Module, part: tuple[np.ndarray, np.ndarray]) -> float:
    """The certified ``b_max ≥ ℓ`` on ``D = {‖y‖ ≤ R, ‖x‖ ≤ B}`` for ``net``, with ``R, B`` the largest norms of ``part``
    (the split's calibration part; :func:`~unfoldtheory.generalization.loss_range.domain_radii`): a function of the prior
    part alone. A ValueError when no certified value exists."""
    R, B = domain_radii(part)
    bound = domain_loss_bound(net, R, B, example_input=part[0][:1])
    if not bound.certified:
        raise ValueError(f"no certified loss range on the data domain: {bound.reason}")
    return float(bound.value)


def _predictor_losses(bound: Bound, net: nn.Module, test: tuple[np.ndarray, np.ndarray], seed: int) -> np.ndarray:
    std = bound.details.get("posterior_std")
    if std is None:  # a point mass: the deterministic net
        return squared_losses(net, test)
    return gibbs_losses(net, std, test, draws=2, seed=seed)[0].ravel()


def split_records(retrain: Retrain, model: nn.Module, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                  delta: float, fraction: float, seed: int) -> dict[str, dict[str, Any]]:
    """The split-prior rows: the best candidate of :func:`split_prior_bound` and its unclipped candidate (each a
    :func:`record` against the held-out value of the quantity it covers, for the predictor it covers)."""
    bound = split_prior_bound(retrain, train, model=model, fraction=fraction, seed=seed, delta=delta,
                              loss_bound=domain_loss_level, progress=False)
    d = bound.details
    prior_net = d["prior_net"]
    part = d["calibration_indices"] if d["calibration_indices"].size else d["prior_indices"]  # what loss_bound was given
    R, B = domain_radii((train[0][part], train[1][part]))
    inside = np.linalg.norm(test[0], axis=1) <= R
    inside &= np.linalg.norm(test[1], axis=1) <= B
    rows = {"PAC-Bayes (split prior)": d["candidate"]}
    if "point mass at loss_bound" in d["candidate_bounds"]:
        rows["split prior, unclipped on D"] = "point mass at loss_bound"
    out: dict[str, dict[str, Any]] = {}
    model_test = float(squared_losses(model, test).mean())
    for row, name in rows.items():
        cand = d["candidate_bounds"][name]
        net = model if name == "Gibbs around the model" else prior_net
        losses = _predictor_losses(cand, net, test, seed + 13)
        b = float(cand.details["clip"])
        unclipped = name == "point mass at loss_bound"
        train_part = float(cand.details["train_loss"])
        rec = record(cand, train_part, float(losses.mean()))
        rec["certified"] = bool(cand.certified and (bound.certified or name != d["candidate"]))
        held = np.where(np.repeat(inside, losses.size // inside.size), losses, 0.0) if unclipped else np.minimum(losses, b)
        rec.update({"predictor_test_loss": float(losses.mean()), "measured_gap": float(losses.mean()) - train_part,
                    "compared_held_out": float(held.mean()), "model_test_loss": model_test,
                    "ratio_to_model_test": rec["expected_loss_bound"] / model_test,
                    "bound_samples": int(d["bound_samples"]), "prior_samples": int(d["prior_samples"]),
                    "predictor": PREDICTORS[name], "candidate": name,
                    "covers": (f"ℓ·1_D, D = {{‖y‖ ≤ {R:.4g}, ‖x‖ ≤ {B:.4g}}} (unclipped: ℓ ≤ {b:.4g} on D)" if unclipped
                               else f"min(ℓ, {b:.4g})"),
                    "statement": f"{PREDICTORS[name]}, prior trained on {d['prior_samples']} samples, bound on the other "
                                 f"{d['bound_samples']}",
                    "outside_domain_test": float(1.0 - inside.mean())})
        out[row] = rec
    return out


def bound_row(result: dict[str, Any], method: str) -> dict[str, Any] | None:
    """One bound of :func:`generalization_bounds`'s result measured against its own predictor and loss
    (``covers``, ``predictor``; ``clipped`` is the held-out value of the covered quantity), or None."""
    b = result["bounds"].get(method)
    if b is None:
        return None
    test = b.get("predictor_test_loss", b.get("gibbs_test_loss", result["test_loss"]))
    if "compared_held_out" in b:
        clipped = b["compared_held_out"]
    elif method.startswith("PAC-Bayes"):
        clipped = b.get("gibbs_test_loss_clipped")
    elif method == "covering":
        clipped = result["test_loss"]  # not a clipped statement
    else:
        clipped = result["test_loss_clipped"]
    measured = b.get("measured_gap", result["gap"])
    ratio_gap = b["gap_bound"] / measured if measured > 0 else math.inf
    return {"gap_bound": b["gap_bound"], "measured": measured, "ratio_gap": ratio_gap,
            "expected": b["expected_loss_bound"], "test": test, "clipped": clipped, "ratio_test": b["expected_loss_bound"] / test,
            "ratio_model_test": b["expected_loss_bound"] / result["test_loss"], "vacuous": b["vacuous"],
            "below_test": b["expected_loss_bound"] < test, "certified": b["certified"], "covers": b.get("covers", ""),
            "predictor": b.get("predictor", "")}


def bound_rows(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(method, bound_row)`` for every method of :data:`METHODS` present in ``result``, in that order."""
    return [(method, row) for method in METHODS if (row := bound_row(result, method)) is not None]
