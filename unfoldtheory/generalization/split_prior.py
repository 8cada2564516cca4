"""The split-prior PAC-Bayes bound, certified because the package owns the whole procedure.

**Procedure.** :func:`split_prior_bound` splits the sample ``S = (z_1, …, z_N)`` by a seeded permutation
(:func:`split_indices`) into a prior part ``S_P`` and a bound part ``S_B``, trains the prior net ``θ_P`` on
``S_P`` alone (the caller's ``train``, called with copies of ``S_P``), chooses every data-dependent setting
from ``S_P`` and ``θ_P`` alone (the clip level ``b``, the split-kl levels, the prior shape ``r``) and
evaluates the bound on ``S_B``. :func:`split_prior_bound_from` does the same for a prior trained elsewhere
on a known subset; the bound uses its complement.

**Theorem** (PAC-Bayes-kl with a data-dependent prior; Ambroladze, Parrado-Hernández & Shawe-Taylor 2007;
Pérez-Ortiz, Rivasplata, Shawe-Taylor & Szepesvári, JMLR 2021, §5; ``proofs/split_prior.py``). Let ``S`` be
i.i.d. from ``D`` and ``I_P, I_B`` disjoint index sets fixed by the seed (which must not depend on ``S``).
Then ``S_P = S[I_P]`` and ``S_B = S[I_B]`` are independent, and conditional on ``(S_P, ξ)`` (``ξ``: any
randomness of ``train`` independent of ``S``) ``S_B`` is an i.i.d. sample of size ``m = |I_B|`` from ``D``.
Every prior ``P = P(S_P, ξ)`` is therefore data-free with respect to ``S_B``: with conditional probability
``≥ 1 − δ_k`` the PAC-Bayes-kl bound of candidate ``k`` holds for every posterior ``Q`` at once, and
integrating over ``(S_P, ξ)`` keeps the probability. The candidates (different priors) are joined by a union
bound with shares ``δ_k``, ``Σ_k δ_k ≤ δ`` (recorded in the certificate, checked exactly). Choosing the
posterior, and the smallest candidate, after seeing ``S_B`` is free.

**Candidates.** (a) the point mass at ``θ_P`` (prior = posterior, KL = 0: Langford 2005's test-set bound,
with split-kl pieces), which covers the deterministic prior net; (b) ``N(θ_P, diag(σ_P r)²)`` with ``σ_P``
from a grid, posterior ``N(θ_P, diag σ²)`` (the Gibbs predictor around the prior net); (c) when ``model``
is given (e.g. trained on all of ``S``), the posterior ``N(θ_model, diag σ²)`` against the same prior (its
KL pays ``Σ (θ_model − θ_P)²/(2σ_P² r²)``); (d) when ``loss_bound`` is given, the point mass at ``θ_P`` clipped at
``B = loss_bound(θ_P)``: ``E min(ℓ, B)``, which is the loss itself wherever ``ℓ ≤ B``, e.g. on a data domain with
``B`` = :func:`~unfoldtheory.generalization.loss_range.domain_loss_bound` (radii fixed without the bound part;
``details["candidate_bounds"][...].details["above_loss_bound"]`` counts the bound part's losses above ``B``). The Monte-Carlo
estimates of (b) and (c) split ``δ_mc``. Overall confidence ``1 − δ − δ_mc``.

**Clip level.** ``b = CLIP_SAFETY × max_i ℓ(θ_P, z_i)`` over the calibration part: the share
``calibration`` (default :data:`CALIBRATION`) of ``S_P`` that :func:`split_prior_bound` keeps from ``train``, so
that the prior net's losses there are those of fresh data (a net fitted to its own samples has optimistic losses on
them, and a clip level read off those leaves out much of the loss on new data). The factor leaves room for the Gibbs
perturbation and for the bound part's own maximum, and costs about ``(b − max ℓ)·C`` (``C`` the complexity). No
grid is needed (no union bound): ``b`` is a function of ``S_P``. The levels are the candidate level set (geometric in
the loss or in the calibration losses' survival probability, 4 to 32 pieces) with the smallest point-mass bound
proxy on those losses. :func:`split_prior_bound_from` has no calibration part: it uses the losses on ``S_P``.

**Certificate** (:func:`check_split_certificate`): ``N``, the fraction and seed (or the given prior
indices), SHA-256 of both index arrays and of both parts' data bytes, the prior's flat parameters and
shape, ``b`` and the levels, ``δ``, ``δ_mc`` and their shares, and every candidate's value. The Bound is
certified only when the certificate re-check passed and the chosen core bound is certified.

The test loss is the caller's question: ``details["prior_net"]`` is the prior net and
``details["candidate_bounds"]`` holds each candidate's Bound (with its posterior standard deviations).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
from torch import nn

from unfoldtheory.generalization.data import as_dataset, squared_losses
from unfoldtheory.generalization.pac_bayes import (
    PRIOR_SCALES,
    Prior,
    gaussian_bound,
    kl_inverse_estimate,
    point_mass_bound,
    split_levels,
    split_pieces,
    tensor_rms,
)
from unfoldtheory.generalization.parameter_lipschitz import flat_parameters, model_size
from unfoldtheory.results import Bound
from unfoldtheory.validation import finite_float

#: ``b`` = this factor × the prior net's largest loss on the prior part (module docstring).
CLIP_SAFETY = 2.0
#: Numbers of split-kl pieces tried for the levels (on the prior part, free).
PIECE_COUNTS: tuple[int, ...] = (4, 8, 16, 32)
#: The candidates, each with the predictor it covers.
PREDICTORS: dict[str, str] = {
    "point mass": "prior net (deterministic)",
    "Gibbs around the prior net": "Gibbs around the prior net",
    "Gibbs around the model": "Gibbs around the given model",
    "point mass at loss_bound": "prior net (deterministic)",
}
QUANTITY = ("gap of the predictor named in details['predictor'] for the loss of details['covers']: bound on its "
            "expected loss − its loss on the bound part, with probability >= 1 − δ − δ_mc")
METHOD = "split-prior PAC-Bayes-kl (prior trained on a recorded part of the sample, bound on the rest)"

Train = Callable[[tuple[np.ndarray, np.ndarray]], nn.Module]
LossBound = Callable[[nn.Module, tuple[np.ndarray, np.ndarray]], float]
#: Share of the prior part that ``split_prior_bound`` keeps from ``train``: the prior net's losses there (fresh data
#: for it) choose the clip level and the levels (module docstring, **Clip level**).
CALIBRATION = 0.2


# ---------------------------------------------------------------------------- the split
def _seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def split_indices(samples: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(prior, bound)``: sorted index arrays of a seeded permutation of ``range(samples)``, the prior part
    first, with ``round(fraction·samples)`` indices (at least 1 on each side)."""
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 2:
        raise ValueError(f"samples must be an integer >= 2 (one for each part), got {samples!r}")
    fraction = finite_float(fraction, "fraction", low=0.0, high=1.0, low_open=True, high_open=True)
    perm = np.random.default_rng(_seed(seed)).permutation(int(samples))
    cut = min(int(samples) - 1, max(1, round(fraction * int(samples))))
    return np.sort(perm[:cut]), np.sort(perm[cut:])


def calibration_indices(prior_idx: np.ndarray, calibration: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, calibration)``: the prior part split by a second seeded permutation (``default_rng([seed, 1])``),
    ``round(calibration·|prior|)`` indices for calibration (none when ``calibration = 0`` or the part has one sample)."""
    calibration = finite_float(calibration, "calibration", low=0.0, high=1.0, high_open=True)
    k = min(prior_idx.size - 1, max(1, round(calibration * prior_idx.size))) if calibration > 0 and prior_idx.size > 1 else 0
    perm = np.random.default_rng([_seed(seed), 1]).permutation(prior_idx.size)
    return np.sort(prior_idx[perm[k:]]), np.sort(prior_idx[perm[:k]])


def _first(values: np.ndarray, count: int = 5) -> str:
    shown = ", ".join(str(int(v)) for v in values[:count])
    return f"[{shown}{', …' if values.size > count else ''}]"


def _given_indices(prior_indices: Any, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The given prior indices (sorted) and their complement; a ValueError naming duplicates, out-of-range
    entries, a non-integer array, or a prior part that leaves nothing for the bound."""
    idx = np.asarray(prior_indices)
    if idx.ndim != 1 or idx.size == 0:
        raise ValueError(f"prior_indices must be a non-empty 1-D array of sample indices, got shape {idx.shape}")
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"prior_indices must be integers, got dtype {idx.dtype}")
    idx = idx.astype(np.int64)
    outside = idx[(idx < 0) | (idx >= samples)]
    if outside.size:
        raise ValueError(f"prior_indices has {outside.size} entries outside [0, {samples}): {_first(outside)}")
    values, counts = np.unique(idx, return_counts=True)
    repeated = values[counts > 1]
    if repeated.size:
        raise ValueError(f"prior_indices repeats {repeated.size} indices: {_first(repeated)}")
    if values.size == samples:
        raise ValueError(f"prior_indices covers all {samples} samples: the bound's part would be empty "
                         "(a prior trained on the bound's data is refused)")
    return values, np.setdiff1d(np.arange(samples), values)


def _digest(*arrays: np.ndarray) -> str:
    """SHA-256 of the arrays' shapes and little-endian bytes (int64 for indices, float64 for data)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        a = np.ascontiguousarray(a, dtype="<i8" if np.issubdtype(a.dtype, np.integer) else "<f8")
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------- choices from the prior part
def prior_clip(losses: np.ndarray) -> float:
    """``b = CLIP_SAFETY · max(losses)`` (the prior net's losses on the prior part; module docstring)."""
    top = float(np.max(losses))
    if not math.isfinite(top) or top > 2.0 ** 900:
        raise ValueError(f"the prior net's largest loss on the prior part is {top:g}: no finite clip level")
    return CLIP_SAFETY * max(top, 2.0 ** -60)


def _level_sets(losses: np.ndarray, clip: float) -> list[np.ndarray]:
    """Geometric levels ``b·2^{−(J−j)/2}`` and quantile levels at survival ``2^{−8k/J}`` (the bulk and the tail of
    the losses), inner levels kept only above ``b·2^{−40}`` and ``b·2^{−40}`` apart (no subnormal piece widths)."""
    sets = [split_levels(clip, J) for J in PIECE_COUNTS]
    gap = clip * 2.0 ** -40
    for J in PIECE_COUNTS:
        kept = [0.0]
        for t in np.quantile(losses, 1.0 - 2.0 ** (-np.arange(1, J) * 8.0 / J)):
            if t - kept[-1] >= gap and clip - t >= gap:
                kept.append(float(t))
        sets.append(np.array([*kept, clip]))
    return sets


def choose_levels(losses: np.ndarray, clip: float, bound_samples: int, delta: float) -> np.ndarray:
    """The level set (of :func:`_level_sets`) minimising ``Σ_j Δ_j kl⁻¹(Z̄_j, log(J/δ)/m)`` with the prior
    net's piece means ``Z̄_j`` on the calibration losses: the point-mass bound the bound part would give if its
    losses were those. A function of the prior part only."""
    best: tuple[float, np.ndarray] | None = None
    for levels in _level_sets(losses, clip):
        J = levels.size - 1
        c = math.log(J / delta) / bound_samples
        proxy = float(np.sum(np.diff(levels) * kl_inverse_estimate(split_pieces(losses, levels).mean(axis=0), c)))
        if best is None or proxy < best[0]:
            best = (proxy, levels)
    assert best is not None
    return best[1]


# ---------------------------------------------------------------------------- union-bound accounting
def _shares(total: float, names: list[str]) -> list[tuple[str, float]]:
    """Equal shares of ``total``, rounded down so that their exact sum is ≤ ``total``."""
    if not names:
        return []
    share = total / len(names)
    while len(names) * Fraction(share) > Fraction(total):
        share = float(np.nextafter(share, 0.0))
    return [(name, share) for name in names]


def _check_shares(shares: Any, total: float, what: str) -> None:
    if not isinstance(shares, (list, tuple)) or any(not isinstance(s, (list, tuple)) or len(s) != 2 for s in shares):
        raise ValueError(f"certificate {what} must be a list of (candidate, share) pairs")
    if any(not (isinstance(s, float) and s > 0 and math.isfinite(s)) for _, s in shares):
        raise ValueError(f"certificate {what} has a share that is not a positive float")
    if sum((Fraction(s) for _, s in shares), Fraction(0)) > Fraction(total):
        raise ValueError(f"certificate {what} sum to more than {total}: the union bound is not paid for")


# ---------------------------------------------------------------------------- the bound
def _check_prior_net(net: Any, data: tuple[np.ndarray, np.ndarray], what: str) -> np.ndarray:
    if not isinstance(net, nn.Module) or model_size(net) == 0:
        raise ValueError(f"{what} must be a torch nn.Module with learned parameters, got {type(net).__name__}")
    return squared_losses(net, data, "the prior part")


def _check_model(model: nn.Module, prior_net: nn.Module) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch nn.Module, got {type(model).__name__}")
    if type(model) is not type(prior_net):
        raise ValueError(f"model is a {type(model).__name__}; the prior net is a {type(prior_net).__name__}")
    shapes = [tuple(p.shape) for p in model.parameters()]
    prior_shapes = [tuple(p.shape) for p in prior_net.parameters()]
    if shapes != prior_shapes:
        raise ValueError(f"model's parameter shapes {shapes} differ from the prior net's {prior_shapes}")


def _candidate(bound: Bound, name: str, share: float, share_mc: float | None) -> dict[str, Any]:
    d = bound.details
    return {"predictor": PREDICTORS[name], "expected_loss_bound": float(d["expected_loss_bound"]),
            "gap_bound": float(bound.value), "certified": bool(bound.certified), "delta": share, "delta_mc": share_mc,
            "covers": str(d.get("covers", "")), "reason": bound.reason}


def _bound_on_split(prior_net: nn.Module, data: tuple[np.ndarray, np.ndarray], prior_idx: np.ndarray,
                    bound_idx: np.ndarray, calib_idx: np.ndarray, split: dict[str, Any], *, model: nn.Module | None,
                    seed: int, delta: float,
                    delta_mc: float, draws: int, posterior: str, loss_bound: LossBound | None,
                    progress: bool | None, start: float) -> Bound:
    """The shared part of both entry points: choices from the prior part, the candidates on the bound part,
    the certificate and its re-check."""
    Y, X = data
    prior_part, bound_part = (Y[prior_idx], X[prior_idx]), (Y[bound_idx], X[bound_idx])
    choice_idx = calib_idx if calib_idx.size else prior_idx
    choice_part = (Y[choice_idx], X[choice_idx])
    prior_losses = _check_prior_net(prior_net, choice_part, "the prior net")
    if model is not None:
        _check_model(model, prior_net)
    names = ["point mass", "Gibbs around the prior net"] + (["Gibbs around the model"] if model is not None else [])
    unavailable: dict[str, str] = {}
    top = math.nan
    if loss_bound is not None:
        try:
            top = finite_float(loss_bound(prior_net, choice_part), "loss_bound(prior net)", low=0.0, low_open=True)
        except ValueError as exc:  # no such level for this net: the candidate is left out before δ is shared
            unavailable["point mass at loss_bound"] = str(exc)
        else:
            names.append("point mass at loss_bound")
    shares = _shares(delta, names)
    share = dict(shares)
    gibbs = [n for n in names if n.startswith("Gibbs")]
    shares_mc = _shares(delta_mc, gibbs)
    share_mc = dict(shares_mc)
    m = bound_idx.size
    b = prior_clip(prior_losses)
    levels = choose_levels(prior_losses, b, m, share["point mass"])
    bound_levels = None
    if "point mass at loss_bound" in names:
        bound_levels = choose_levels(prior_losses, top, m, share["point mass at loss_bound"])
    theta_p = flat_parameters(prior_net)
    shape = tensor_rms(prior_net)
    origin = split["origin"]
    bounds: dict[str, Bound] = {
        "point mass": point_mass_bound(prior_net, bound_part, levels=levels, delta=share["point mass"], data_free=True,
                                       origin=origin),
    }
    prior = Prior(mean=theta_p, shape=shape, scales=PRIOR_SCALES, origin=origin, data_free=True)
    for k, (name, net) in enumerate((("Gibbs around the prior net", prior_net), ("Gibbs around the model", model))):
        if name in names:
            bounds[name] = gaussian_bound(net, bound_part, prior, levels=levels, posterior=posterior, delta=share[name],
                                          delta_mc=share_mc[name], draws=draws, seed=seed + 1 + k, progress=progress)
    if "point mass at loss_bound" in names:
        at_bound = point_mass_bound(prior_net, bound_part, levels=bound_levels, delta=share["point mass at loss_bound"],
                                     data_free=True, origin=origin)
        at_bound.details["above_loss_bound"] = int(np.sum(squared_losses(prior_net, bound_part) > top))
        bounds["point mass at loss_bound"] = at_bound
    candidates = {n: _candidate(bounds[n], n, share[n], share_mc.get(n)) for n in names}
    certified = [n for n in names if bounds[n].certified]
    pool = certified or names
    chosen = min(pool, key=lambda n: candidates[n]["expected_loss_bound"])
    certificate: dict[str, Any] = {
        **{k: v for k, v in split.items() if k != "origin"}, "samples": int(Y.shape[0]),
        "prior_indices_sha256": _digest(prior_idx), "bound_indices_sha256": _digest(bound_idx),
        "calibration_indices_sha256": _digest(calib_idx),
        "prior_data_sha256": _digest(*prior_part), "bound_data_sha256": _digest(*bound_part),
        "prior_parameters": theta_p.copy(), "prior_shape": shape.copy(), "prior_scales": PRIOR_SCALES,
        "clip": b, "clip_safety": CLIP_SAFETY, "levels": levels.copy(), "bound_levels": bound_levels,
        "delta": delta, "delta_mc": delta_mc, "delta_shares": shares, "delta_mc_shares": shares_mc,
        "candidates": {n: c["expected_loss_bound"] for n, c in candidates.items()}, "chosen": chosen,
    }
    best = bounds[chosen]
    details: dict[str, Any] = {
        **best.details, "predictor": PREDICTORS[chosen], "candidate": chosen, "candidates": candidates,
        "candidate_bounds": bounds, "prior_net": prior_net, "prior_samples": int(prior_idx.size),
        "bound_samples": int(m), "delta": delta, "delta_mc": delta_mc, "confidence": 1.0 - delta - delta_mc,
        "prior_indices": prior_idx, "calibration_indices": calib_idx, "unavailable": unavailable,
        "prior": origin, "clip": float((bound_levels if chosen == "point mass at loss_bound" else levels)[-1]),
    }
    result = Bound(best.value, "upper", QUANTITY, METHOD, certified=False, certificate=certificate,
                   seconds=time.perf_counter() - start, details=details,
                   reason="" if best.certified else f"the chosen candidate ({chosen}) is not certified: {best.reason}")
    check_split_certificate(result, data, prior_model=prior_net)
    if not best.certified:
        return result
    return Bound(best.value, "upper", QUANTITY, METHOD, certified=True, certificate=certificate,
                 seconds=time.perf_counter() - start, details=details)


def _common(data: Any, delta: Any, delta_mc: Any, draws: Any, seed: Any) -> tuple[tuple[np.ndarray, np.ndarray], float,
                                                                                  float, int, int]:
    data = as_dataset(data, "data")
    delta = finite_float(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
    delta_mc = finite_float(delta_mc, "delta_mc", low=0.0, high=1.0, low_open=True, high_open=True)
    if delta + delta_mc >= 1.0:
        raise ValueError(f"delta + delta_mc = {delta + delta_mc} must be < 1")
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise ValueError(f"draws must be a positive integer, got {draws!r}")
    return data, delta, delta_mc, int(draws), _seed(seed)


def split_prior_bound(train: Train, data: Any, *, model: nn.Module | None = None, fraction: float = 0.5, seed: int = 0,
                      delta: float = 0.05, delta_mc: float = 0.01, draws: int = 32, posterior: str = "tensor",
                      loss_bound: LossBound | None = None, calibration: float = CALIBRATION,
                      progress: bool | None = None) -> Bound:
    """Split ``data`` by :func:`split_indices` ``(N, fraction, seed)``, train the prior net with ``train`` on copies
    of the prior part less its calibration share (:func:`calibration_indices`), and bound the expected loss of the
    best candidate predictor on the bound part
    (module docstring: the theorem of Ambroladze, Parrado-Hernández & Shawe-Taylor 2007 and Pérez-Ortiz et al.,
    JMLR 2021, with Langford 2005's test-set bound for the point mass).

    ``train`` must use nothing of the sample but its argument (randomness independent of the sample is
    allowed), and ``seed`` must be fixed before the outcome is seen. ``model`` (e.g. trained on all of ``data``)
    adds the Gibbs posterior around it; ``loss_bound(net, part)`` (a bound on the loss of ``net`` on a data domain,
    read off ``part``, the calibration part, never the bound part; a ValueError leaves the candidate out) adds the
    point-mass candidate clipped at that level. ``Bound.value`` is the chosen
    candidate's gap; ``details["expected_loss_bound"]`` the bound on its expected loss.
    """
    start = time.perf_counter()
    if not callable(train):
        raise ValueError(f"train must be a callable (Y, X) -> nn.Module, got {type(train).__name__}")
    data, delta, delta_mc, draws, seed = _common(data, delta, delta_mc, draws, seed)
    N = data[0].shape[0]
    prior_idx, bound_idx = split_indices(N, fraction, seed)
    train_idx, calib_idx = calibration_indices(prior_idx, calibration, seed)
    Y, X = data
    prior_net = train((np.array(Y[train_idx], copy=True), np.array(X[train_idx], copy=True)))
    if not isinstance(prior_net, nn.Module):
        raise ValueError(f"train returned a {type(prior_net).__name__}; expected a torch nn.Module")
    split = {"split": "seeded", "fraction": float(fraction), "seed": seed, "calibration": float(calibration),
             "origin": f"the prior net trained by `train` on {train_idx.size} of {N} samples (seeded split: seed {seed}, "
                       f"fraction {fraction:g}; {calib_idx.size} more samples of the prior part choose b and the levels)"}
    return _bound_on_split(prior_net, data, prior_idx, bound_idx, calib_idx, split, model=model, seed=seed, delta=delta,
                           delta_mc=delta_mc, draws=draws, posterior=posterior, loss_bound=loss_bound, progress=progress,
                           start=start)


def split_prior_bound_from(prior_model: nn.Module, prior_indices: Any, data: Any, *, model: nn.Module | None = None,
                           seed: int = 0, delta: float = 0.05, delta_mc: float = 0.01, draws: int = 32,
                           posterior: str = "tensor", loss_bound: LossBound | None = None,
                           progress: bool | None = None) -> Bound:
    """:func:`split_prior_bound` for a prior net trained elsewhere on ``data[prior_indices]`` only (and randomness
    independent of ``data``); the bound uses the complement. Refused (ValueError) when ``prior_indices`` has
    duplicates or out-of-range entries, or covers the whole data set. ``seed`` seeds the Monte Carlo."""
    start = time.perf_counter()
    data, delta, delta_mc, draws, seed = _common(data, delta, delta_mc, draws, seed)
    prior_idx, bound_idx = _given_indices(prior_indices, data[0].shape[0])
    split = {"split": "given", "prior_indices": prior_idx.copy(),
             "origin": f"a prior net trained elsewhere on the {prior_idx.size} given of {data[0].shape[0]} samples"}
    no_calibration = np.zeros(0, dtype=np.int64)
    return _bound_on_split(prior_model, data, prior_idx, bound_idx, no_calibration, split, model=model, seed=seed, delta=delta,
                           delta_mc=delta_mc, draws=draws, posterior=posterior, loss_bound=loss_bound, progress=progress,
                           start=start)


# ---------------------------------------------------------------------------- the re-check
def _field(cert: dict[str, Any], key: str) -> Any:
    if key not in cert:
        raise ValueError(f"certificate has no {key!r}")
    return cert[key]


def check_split_certificate(bound: Bound, data: Any, *, prior_model: nn.Module | None = None) -> None:
    """Re-check the split bookkeeping of a :func:`split_prior_bound` / :func:`split_prior_bound_from` result on
    ``data``: the split recomputed from the seed (or the given indices), both index and data hashes, that the
    parts are disjoint and cover the data, that the shares of ``δ`` and ``δ_mc`` sum to at most ``δ`` and ``δ_mc``,
    and (with ``prior_model``) its parameters, shape, clip level and levels. A ValueError names the first mismatch."""
    cert = bound.certificate if isinstance(bound, Bound) else None
    if not isinstance(cert, dict) or "split" not in cert:
        raise ValueError("bound has no split-prior certificate")
    Y, X = as_dataset(data, "data")
    N = Y.shape[0]
    if _field(cert, "samples") != N:
        raise ValueError(f"certificate samples is {cert['samples']}, but data has {N} samples")
    calib_idx = np.zeros(0, dtype=np.int64)
    if cert["split"] == "seeded":
        prior_idx, bound_idx = split_indices(N, _field(cert, "fraction"), _field(cert, "seed"))
        calib_idx = calibration_indices(prior_idx, _field(cert, "calibration"), cert["seed"])[1]
        source = f"seed {cert['seed']}, fraction {cert['fraction']} and {N} samples"
    elif cert["split"] == "given":
        prior_idx, bound_idx = _given_indices(_field(cert, "prior_indices"), N)
        source = f"the recorded prior_indices and {N} samples"
    else:
        raise ValueError(f"certificate split is {cert['split']!r}; expected 'seeded' or 'given'")
    for key, idx in (("prior_indices_sha256", prior_idx), ("bound_indices_sha256", bound_idx),
                     ("calibration_indices_sha256", calib_idx)):
        if _digest(idx) != _field(cert, key):
            raise ValueError(f"certificate {key} does not match the split recomputed from {source}")
    overlap = np.intersect1d(prior_idx, bound_idx)
    if overlap.size:
        raise ValueError(f"the prior and bound parts overlap in {overlap.size} samples: {_first(overlap)}")
    if prior_idx.size + bound_idx.size != N or not np.array_equal(np.union1d(prior_idx, bound_idx), np.arange(N)):
        raise ValueError(f"the prior and bound parts do not cover the {N} samples")
    prior_part, bound_part = (Y[prior_idx], X[prior_idx]), (Y[bound_idx], X[bound_idx])
    for key, part in (("prior_data_sha256", prior_part), ("bound_data_sha256", bound_part)):
        if _digest(*part) != _field(cert, key):
            raise ValueError(f"certificate {key} does not match the data: the data differ from those of the bound")
    delta, delta_mc = _field(cert, "delta"), _field(cert, "delta_mc")
    finite_float(delta, "certificate delta", low=0.0, high=1.0, low_open=True, high_open=True)
    finite_float(delta_mc, "certificate delta_mc", low=0.0, high=1.0, low_open=True, high_open=True)
    candidates = _field(cert, "candidates")
    _check_shares(_field(cert, "delta_shares"), delta, "delta_shares")
    _check_shares(_field(cert, "delta_mc_shares"), delta_mc, "delta_mc_shares")
    if sorted(n for n, _ in cert["delta_shares"]) != sorted(candidates):
        raise ValueError("certificate delta_shares does not name each candidate once")
    if cert["chosen"] not in candidates or candidates[cert["chosen"]] != bound.details.get("expected_loss_bound"):
        raise ValueError("certificate chosen candidate's value is not the bound's expected_loss_bound")
    if prior_model is None:
        return
    theta = flat_parameters(prior_model)
    recorded = np.asarray(_field(cert, "prior_parameters"))
    if theta.shape != recorded.shape or not np.array_equal(theta, recorded):
        raise ValueError("certificate prior_parameters differ from the prior model's parameters")
    if not np.array_equal(tensor_rms(prior_model), np.asarray(_field(cert, "prior_shape"))):
        raise ValueError("certificate prior_shape is not the prior model's per-tensor RMS")
    choice = calib_idx if calib_idx.size else prior_idx
    losses = squared_losses(prior_model, (Y[choice], X[choice]), "the prior part")
    b = prior_clip(losses)
    if b != _field(cert, "clip"):
        raise ValueError(f"certificate clip {cert['clip']} is not the level {b} chosen from the prior part")
    share = dict(cert["delta_shares"])
    if not np.array_equal(choose_levels(losses, b, bound_idx.size, share["point mass"]), np.asarray(_field(cert, "levels"))):
        raise ValueError("certificate levels are not those chosen from the prior part")
