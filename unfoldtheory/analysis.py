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
  (:func:`unfoldtheory.generalization.parameter_lipschitz`; ALISTA, UnfoldedISTA, LISTA, LISTA-CP).

A model with a NaN or infinite parameter or buffer is refused first, naming the tensor
(:func:`unfoldtheory.unfold.finite.check_finite_parameters`). A certified lower bound above a certified
upper bound raises :class:`~unfoldtheory.consistency.InconsistentBounds` (never a row, never a mere
failure entry): one of the two certificates is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from unfoldtheory.consistency import InconsistentBounds, check_interval
from unfoldtheory.results import Bound
from unfoldtheory.spec import NotRepresentable
from unfoldtheory.unfold.finite import check_finite_parameters
from unfoldtheory.validation import finite_float, positive_int

ANALYSES = ("lipschitz", "pep", "coherence", "parameter-lipschitz")


@dataclass
class ModelAnalysis:
    """The bounds found for a model, and why each missing analysis is missing."""

    model: str
    bounds: dict[str, Bound] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def all_certified(self) -> bool:
        """True when every upper/lower bound found is certified and no requested analysis failed."""
        return not self.failed and all(b.certified for b in self.bounds.values() if b.kind != "estimate")

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "bounds": {k: b.to_dict() for k, b in self.bounds.items()},
                "not_applicable": self.not_applicable, "failed": self.failed, "all_certified": self.all_certified}


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


RUNNERS = {"lipschitz": _lipschitz, "pep": _pep, "coherence": _coherence, "parameter-lipschitz": _parameter_lipschitz}
#: The model classes each analysis covers (None: every model with an exact NetworkSpec).
SUPPORTED: dict[str, tuple[str, ...] | None] = {
    "lipschitz": None, "pep": ("UnfoldedISTA", "ALISTA"), "coherence": ("LISTACP", "ALISTA", "UnfoldedISTA"),
    "parameter-lipschitz": ("ALISTA", "UnfoldedISTA", "LISTA", "LISTACP")}


def analyze_model(model: Any, analyses: tuple[str, ...] | list[str] = ANALYSES, *, time_budget: float = 45.0,
                  restarts: int = 8, seed: int = 0, sparsity: int = 1, amplitude: float = 1.0,
                  input_radius: float = 1.0) -> ModelAnalysis:
    """Run ``analyses`` on ``model`` (module docstring).

    ``sparsity`` and ``amplitude`` (s and B) define the signal class of the coherence certificate;
    ``input_radius`` the ball ``‖y‖ ≤ R`` of the parameter Lipschitz constant. An analysis whose model
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
               "input_radius": finite_float(input_radius, "input_radius", low=0.0, low_open=True)}
    if isinstance(model, nn.Module):
        check_finite_parameters(model)
    result = ModelAnalysis(type(model).__name__)
    for name in analyses:
        supported = SUPPORTED[name]
        if supported is not None and result.model not in supported:
            result.not_applicable[name] = f"{name} covers {', '.join(supported)}, not {result.model}"
            continue
        try:
            result.bounds.update(RUNNERS[name](model, options))
        except InconsistentBounds:
            raise
        except NotRepresentable as exc:
            result.not_applicable[name] = f"the model has no exact NetworkSpec: {exc}"
        except (ValueError, RuntimeError) as exc:
            result.failed[name] = str(exc)
    return result
