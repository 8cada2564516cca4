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
  optimised posterior around the data-free prior and, when ``retrain`` is given and every parameter is
  a scalar, the split-prior PAC-Bayes bound: a model trained by ``retrain`` on the first part of the
  sample is the prior mean and the posterior mean, and the bound uses the rest (Ambroladze et al. 2007;
  Pérez-Ortiz et al. 2021). A bound that does not apply to the model says why in ``errors``.
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
from unfoldtheory.generalization.pac_bayes import curvature_shape, gibbs_losses, pac_bayes_bound
from unfoldtheory.generalization.parameter_lipschitz import has_initialisation, model_size
from unfoldtheory.generalization.shultzman import design_rule, shultzman_bound
from unfoldtheory.generalization.spectral import spectral_bound, spectral_pac_bayes_bound
from unfoldtheory.results import Bound
from unfoldtheory.spec import NotRepresentable
from unfoldtheory.validation import finite_float

#: The clip grid b = 2^j, |j| <= 30: every clipped bound pays a union bound over its 61 points.
CLIP_GRID = 61
METHODS = ("covering", "spectral", "spectral PAC-Bayes", "l-inf peeling", "PAC-Bayes (data-free prior)",
           "PAC-Bayes (split prior)")

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
                          split_fraction: float = 0.25, seed: int = 0) -> dict[str, Any]:
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
    elif not all(p.numel() == 1 for p in model.parameters()):
        out["errors"]["PAC-Bayes (split prior)"] = "only for models whose parameters are all scalars"
    elif samples < 4:
        out["errors"]["PAC-Bayes (split prior)"] = f"needs at least 4 training samples, got {samples}"
    else:
        out["bounds"]["PAC-Bayes (split prior)"] = split_prior_bound(retrain, train, test, delta, split_fraction, seed)
    try:
        rule = design_rule(model, samples, example_input=example)
    except (ValueError, NotRepresentable) as exc:
        out["design_rule"] = None
        out["errors"]["design rule"] = str(exc)
    else:
        out["design_rule"] = {"limit": rule.limit, "max_norm": max(rule.norms) if rule.norms else 0.0,
                              "satisfied": rule.satisfied, "product": rule.product}
    return out


def split_prior_bound(retrain: Retrain, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], delta: float,
                      fraction: float, seed: int) -> dict[str, Any]:
    """Prior (and posterior) mean trained by ``retrain`` on the first ``fraction`` of ``train``; the
    PAC-Bayes bound on the rest. The record's predictor is that model, with its own test loss."""
    cut = min(train[0].shape[0] - 1, max(1, round(fraction * train[0].shape[0])))
    first, second = (train[0][:cut], train[1][:cut]), (train[0][cut:], train[1][cut:])
    net = retrain(first)
    tr2, te = squared_losses(net, second), squared_losses(net, test)
    clip = clip_level(tr2)
    bound = pac_bayes_bound(net, second, clip=clip, prior_mean=net, prior_shape=curvature_shape(net, first), delta=delta,
                            union=CLIP_GRID, progress=False)
    out = record(bound, float(tr2.mean()), float(te.mean()))
    out.update(_gibbs(net, bound, test, clip, seed + 13))
    out.update({"predictor_test_loss": float(te.mean()), "measured_gap": float(te.mean() - tr2.mean()),
                "bound_samples": int(second[0].shape[0]),
                "statement": f"Gibbs predictor around the model trained on the first {cut} samples; bound on the rest"})
    return out


def bound_row(result: dict[str, Any], method: str) -> dict[str, Any] | None:
    """One bound of :func:`generalization_bounds`'s result measured against its own predictor (the split
    prior has its own model; the PAC-Bayes bounds are about the Gibbs predictor, clipped at b), or None."""
    b = result["bounds"].get(method)
    if b is None:
        return None
    test = b.get("predictor_test_loss", result["test_loss"])
    clipped = b.get("gibbs_test_loss_clipped") if method.startswith("PAC-Bayes") else result["test_loss_clipped"]
    if method == "covering":
        clipped = result["test_loss"]  # not a clipped statement
    measured = b.get("measured_gap", result["gap"])
    ratio_gap = b["gap_bound"] / measured if measured > 0 else math.inf
    return {"gap_bound": b["gap_bound"], "measured": measured, "ratio_gap": ratio_gap,
            "expected": b["expected_loss_bound"], "test": test, "clipped": clipped, "ratio_test": b["expected_loss_bound"] / test,
            "vacuous": b["vacuous"], "below_test": b["expected_loss_bound"] < test, "certified": b["certified"]}


def bound_rows(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(method, bound_row)`` for every method of :data:`METHODS` present in ``result``, in that order."""
    return [(method, row) for method in METHODS if (row := bound_row(result, method)) is not None]
