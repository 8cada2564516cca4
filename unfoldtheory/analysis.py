"""Every analysis of the package on one trained model: what ``unfoldtheory analyze`` runs.

:func:`analyze_model` returns a labelled mapping of :class:`~unfoldtheory.results.Bound` objects and,
for each requested analysis that does not apply to the model (or fails), the reason. The analyses:

* ``lipschitz``: the input–output ℓ2 Lipschitz interval — certified upper bound
  (:func:`unfoldtheory.lipschitz.upper_bound`) and witness lower bound;
* ``pep``: the worst case of the learned step schedule by performance estimation, beside the
  classical fixed step (:func:`unfoldtheory.convergence.pep_rate_of`; UnfoldedISTA, ALISTA);
* ``coherence``: certified per-layer worst-case errors over s-sparse signals
  (:func:`unfoldtheory.convergence.coherence.lista_cp_certificate`; LISTA-CP, ALISTA, UnfoldedISTA);
* ``parameter-lipschitz``: the certified Lipschitz constant with respect to the parameters
  (:func:`unfoldtheory.generalization.parameter_lipschitz`; ALISTA, UnfoldedISTA, LISTA, LISTA-CP);
* ``stability``: per-sample stability, the certified local Lipschitz interval over ``Ball(y, r)`` around test inputs
  y at radii relative to ‖y‖ (and to the noise level σ√m when σ > 0) (:func:`unfoldtheory.stability.local_stability`).
  The inputs are the rows of ``inputs``, or ``y = A x + σe`` for x drawn from the coherence certificate's class (s
  nonzeros, uniform in [−B, B]) when the model has a sensing matrix A. Per radius it adds the interval of the largest
  local constant over the balls (:meth:`~unfoldtheory.stability.StabilityProfile.bounds`), and the per-radius summary
  (medians, tight share, seconds, uncertified ends with reasons) as ``ModelAnalysis.stability``; the global interval
  beside it is the ``lipschitz`` analysis' when that ran, tightened by the exact search on small piecewise-linear models
  (:func:`unfoldtheory.stability.global_interval`; a certified local lower bound above its certified upper bound is a
  contradiction).

A model with a NaN or infinite parameter or buffer is refused first, naming the tensor
(:func:`unfoldtheory.unfold.finite.check_finite_parameters`). A certified lower bound above a certified
upper bound raises :class:`~unfoldtheory.consistency.InconsistentBounds` (never a row, never a mere
failure entry): one of the two certificates is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from unfoldtheory.consistency import InconsistentBounds, check_interval
from unfoldtheory.results import Bound
from unfoldtheory.spec import NotRepresentable
from unfoldtheory.stability import StabilityProfile
from unfoldtheory.unfold.finite import check_finite_parameters
from unfoldtheory.validation import as_finite_array, finite_float, positive_int

ANALYSES = ("lipschitz", "pep", "coherence", "parameter-lipschitz", "stability")


@dataclass
class ModelAnalysis:
    """The bounds found for a model, and why each missing analysis is missing."""

    model: str
    bounds: dict[str, Bound] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    stability: StabilityProfile | None = None

    @property
    def all_certified(self) -> bool:
        """True when every upper/lower bound found is certified and no requested analysis failed."""
        return not self.failed and all(b.certified for b in self.bounds.values() if b.kind != "estimate")

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "bounds": {k: b.to_dict() for k, b in self.bounds.items()},
                "not_applicable": self.not_applicable, "failed": self.failed, "all_certified": self.all_certified,
                **({"stability": self.stability.to_dict()} if self.stability is not None else {})}


def _lipschitz(model: Any, options: dict[str, Any]) -> dict[str, Bound]:
    from unfoldtheory.lipschitz import lower_bound, upper_bound

    spec = model.spec()
    upper = upper_bound(spec, time_budget=options["time_budget"])
    lower = lower_bound(spec, restarts=options["restarts"], seed=options["seed"])
    check_interval(lower, upper, f"Lipschitz constant of {type(model).__name__} (l2)")
    return {"lipschitz upper": upper, "lipschitz lower": lower}


def _pep(model: Any, options: dict[str, Any]) -> dict[str, Bound]:
    from unfoldtheory.convergence import pep_rate_of

    rates = pep_rate_of(model)
    return {"pep learned schedule": rates.learned, "pep classical step": rates.classical}


def _coherence(model: Any, options: dict[str, Any]) -> dict[str, Bound]:
    from unfoldtheory.convergence.coherence import lista_cp_certificate

    cert = lista_cp_certificate(model, options["sparsity"], options["amplitude"])
    last = cert.errors[-1]
    if not cert.valid:
        last = last.replace(details={**last.details, "reason": cert.reason})
    return {f"coherence error after layer {len(cert.errors)}": last}


def _parameter_lipschitz(model: Any, options: dict[str, Any]) -> dict[str, Bound]:
    from unfoldtheory.generalization import parameter_lipschitz

    return {"parameter lipschitz": parameter_lipschitz(model, options["input_radius"])}


#: The most seconds ``stability`` gives the exact search of the global constant (``time_budget`` when smaller).
EXACT_SECONDS = 10.0


def sample_inputs(model: Any, count: int, sparsity: int, amplitude: float, noise_std: float, seed: int) -> np.ndarray:
    """``count`` inputs ``y = A x + σe`` of ``model``'s sensing matrix A: x has ``sparsity`` nonzeros at random places,
    uniform in ``[−amplitude, amplitude]`` (the coherence certificate's signal class), e standard normal."""
    if not hasattr(model, "A_numpy"):
        raise ValueError(f"{type(model).__name__} has no sensing matrix A to draw test inputs from; pass inputs")
    A = model.A_numpy()
    m, n = A.shape
    rng = np.random.default_rng([seed, 13])
    X = np.zeros((count, n))
    for row in X:
        support = rng.choice(n, size=min(sparsity, n), replace=False)
        row[support] = rng.uniform(-amplitude, amplitude, support.size)
    return X @ A.T + noise_std * rng.standard_normal((count, m))


def _stability(model: Any, options: dict[str, Any]) -> StabilityProfile:
    from unfoldtheory.stability import check_inputs, global_interval, local_stability, stability_radii

    spec = model.spec()
    Y = options["inputs"]
    if Y is None:
        Y = sample_inputs(model, options["stability_inputs"], options["sparsity"], options["amplitude"],
                          options["noise_std"], options["seed"])
    Y = check_inputs(spec, Y)  # before the exact search, which may take its whole budget
    radii = stability_radii(options["stability_radii"], options["stability_noise_radii"], options["noise_std"])
    name = type(model).__name__
    lower, upper, _ = global_interval(spec, *options["global_interval"], exact_neurons=options["stability_exact_neurons"],
                                      time_budget=min(options["time_budget"], EXACT_SECONDS),
                                      what=f"Lipschitz constant of {name} (l2)", progress=options["progress"])
    return local_stability(spec, Y, radii, noise_std=options["noise_std"], time_budget=options["stability_budget"],
                           restarts=min(options["restarts"], 4), seed=options["seed"], model=name,
                           global_interval=(lower, upper), progress=options["progress"])


RUNNERS = {"lipschitz": _lipschitz, "pep": _pep, "coherence": _coherence, "parameter-lipschitz": _parameter_lipschitz,
           "stability": _stability}
#: The model classes each analysis covers (None: every model with an exact NetworkSpec).
SUPPORTED: dict[str, tuple[str, ...] | None] = {
    "lipschitz": None, "stability": None, "pep": ("UnfoldedISTA", "ALISTA"), "coherence": ("LISTACP", "ALISTA", "UnfoldedISTA"),
    "parameter-lipschitz": ("ALISTA", "UnfoldedISTA", "LISTA", "LISTACP")}


def analyze_model(model: Any, analyses: tuple[str, ...] | list[str] = ANALYSES, *, time_budget: float = 45.0,
                  restarts: int = 8, seed: int = 0, sparsity: int = 1, amplitude: float = 1.0,
                  input_radius: float = 1.0, inputs: Any = None, stability_inputs: int = 8,
                  stability_radii: Sequence[float] = (0.01, 0.05), noise_std: float = 0.0,
                  stability_noise_radii: Sequence[float] = (0.5,), stability_budget: float = 2.0,
                  stability_exact_neurons: int = 100, progress: bool | None = False) -> ModelAnalysis:
    """Run ``analyses`` on ``model`` (module docstring).

    ``sparsity`` and ``amplitude`` (s and B) define the signal class of the coherence certificate;
    ``input_radius`` the ball ``‖y‖ ≤ R`` of the parameter Lipschitz constant. ``stability`` bounds the local constant
    around the rows of ``inputs`` (or ``stability_inputs`` inputs drawn by :func:`sample_inputs`) at radii
    ``stability_radii`` (fractions of ‖y‖) and ``stability_noise_radii`` (units of σ√m, used when ``noise_std`` > 0),
    ``stability_budget`` seconds per ball; beside them the global interval (the ``lipschitz`` analysis') is tightened
    by the exact search (``min(time_budget, EXACT_SECONDS)`` seconds) for models of at most ``stability_exact_neurons``
    neurons;
    ``progress`` shows the progress bars. An analysis whose model
    type is not supported is listed in ``not_applicable`` with the reason. A torch model with a
    non-finite parameter or buffer raises ValueError naming it; contradicting certified bounds raise
    :class:`~unfoldtheory.consistency.InconsistentBounds`.
    """
    unknown = [a for a in analyses if a not in RUNNERS]
    if unknown:
        raise ValueError(f"unknown analyses {unknown}; choose from {ANALYSES}")
    options = {"time_budget": finite_float(time_budget, "time_budget", low=0.0, low_open=True),
               "restarts": positive_int(restarts, "restarts"), "seed": seed,
               "sparsity": positive_int(sparsity, "sparsity"),
               "amplitude": finite_float(amplitude, "amplitude", low=0.0, low_open=True),
               "input_radius": finite_float(input_radius, "input_radius", low=0.0, low_open=True),
               "inputs": None if inputs is None else as_finite_array(inputs, "inputs", ndim=2),
               "stability_inputs": positive_int(stability_inputs, "stability_inputs"),
               "stability_radii": tuple(stability_radii), "stability_noise_radii": tuple(stability_noise_radii),
               "noise_std": finite_float(noise_std, "noise_std", low=0.0),
               "stability_budget": finite_float(stability_budget, "stability_budget", low=0.0, low_open=True),
               "stability_exact_neurons": stability_exact_neurons, "progress": progress,
               "global_interval": (None, None)}
    if "stability" in analyses:
        from unfoldtheory.stability import stability_radii as radii

        radii(options["stability_radii"], options["stability_noise_radii"], options["noise_std"])  # bad radii: ValueError now
    if isinstance(model, nn.Module):
        check_finite_parameters(model)
    result = ModelAnalysis(type(model).__name__)
    for name in analyses:
        supported = SUPPORTED[name]
        if supported is not None and result.model not in supported:
            result.not_applicable[name] = f"{name} covers {', '.join(supported)}, not {result.model}"
            continue
        options["global_interval"] = (result.bounds.get("lipschitz lower"), result.bounds.get("lipschitz upper"))
        try:
            found = RUNNERS[name](model, options)
            if isinstance(found, StabilityProfile):
                result.stability, found = found, found.bounds()
            result.bounds.update(found)
        except InconsistentBounds:
            raise
        except NotRepresentable as exc:
            result.not_applicable[name] = f"the model has no exact NetworkSpec: {exc}"
        except (ValueError, RuntimeError) as exc:
            result.failed[name] = str(exc)
    return result
