"""Every analysis of the package on one model: what ``unfoldtheory analyze`` runs.

:func:`analyze_model` takes a model of :mod:`unfoldtheory.unfold`, any torch module (with ``example_input``), a
``torch.export`` program (:func:`unfoldtheory.program_io.load_program`) or a :class:`~unfoldtheory.spec.NetworkSpec`.
Modules and programs are traced into a spec (:func:`unfoldtheory.tracing.from_torch`). It returns a labelled mapping
of :class:`~unfoldtheory.results.Bound` objects and, for each requested analysis that does not apply to the model
(or fails), the reason. No analysis is gated by class: each runs when the model has what it needs, and otherwise
is listed in ``not_applicable`` with the reason the lower layer gave. The analyses:

* ``lipschitz``: the input–output ℓ2 Lipschitz interval of the spec — certified upper bound
  (:func:`unfoldtheory.lipschitz.upper_bound`) and witness lower bound; needs a spec.
* ``pep``: the worst case of the step schedule by performance estimation. A package model with learned steps
  (UnfoldedISTA, ALISTA) gives its learned schedule beside the classical fixed step
  (:func:`unfoldtheory.convergence.pep_rate_of`); any other spec gives the PEP of the classical method its weights
  are (:func:`unfoldtheory.convergence.detect.detect_method`, then :func:`~unfoldtheory.convergence.pep_rate`), or
  the detection's reason when they are none.
* ``contraction``: a certified contraction factor of a weight-tied iteration x ↦ φ(Wx + By + b)
  (:func:`unfoldtheory.convergence.spec_contraction.contraction_bound`); a spec whose layers differ is not applicable.
* ``coherence``: certified per-layer worst-case errors over s-sparse signals
  (:func:`unfoldtheory.convergence.coherence.lista_cp_certificate`); needs the sensing matrix A and layers
  ``x⁺ = ST_θ(x − B_k(Ax − y))`` (LISTA-CP, ALISTA, unfolded ISTA, or any spec of that form).
* ``parameter-lipschitz``: the certified Lipschitz constant with respect to the parameters
  (:func:`unfoldtheory.generalization.parameter_lipschitz`); needs a torch module (a program's own) with parameters.
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
failure entry): one of the two certificates is wrong. Importing this module loads no torch (the command line's
``--help`` reads :data:`ANALYSES`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unfoldtheory.consistency import InconsistentBounds, check_interval
from unfoldtheory.results import Bound
from unfoldtheory.spec import NetworkSpec, NotRepresentable
from unfoldtheory.validation import as_finite_array, finite_float, positive_int

ANALYSES = ("lipschitz", "pep", "contraction", "coherence", "parameter-lipschitz", "stability")


class NotApplicable(Exception):
    """An analysis that does not apply to the model; the message says what it needs and what the model lacks."""


@dataclass
class ModelAnalysis:
    """The bounds found for a model, and why each missing analysis is missing."""

    model: str
    bounds: dict[str, Bound] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    stability: Any = None  # a StabilityProfile when the stability analysis ran

    @property
    def all_certified(self) -> bool:
        """True when every upper/lower bound found is certified and no requested analysis failed."""
        return not self.failed and all(b.certified for b in self.bounds.values() if b.kind != "estimate")

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "bounds": {k: b.to_dict() for k, b in self.bounds.items()},
                "not_applicable": self.not_applicable, "failed": self.failed, "all_certified": self.all_certified,
                **({"stability": self.stability.to_dict()} if self.stability is not None else {})}


class Subject:
    """What the analyses read from a model: its name, its spec (the trace for a module or program; computed once),
    the torch module with its parameters, a sensing matrix A and an example input, where the model has them."""

    def __init__(self, model: Any, example_input: Any = None, A: Any = None) -> None:
        from unfoldtheory.program_io import is_exported_program, program_example_input, program_name

        self.model = model
        self.program = model if is_exported_program(model) else None
        self.package = _is_package_model(model)
        if isinstance(model, NetworkSpec):
            self.name = model.name or "NetworkSpec"
        elif self.program is not None:
            self.name = program_name(model)
        else:
            self.name = type(model).__name__
        if example_input is None and self.program is not None:
            example_input = program_example_input(model)
        self.example_input = example_input
        if A is None and hasattr(model, "A_numpy"):
            A = model.A_numpy()
        self.A = None if A is None else as_finite_array(A, "A", ndim=2)
        self._spec: NetworkSpec | None = None
        self._exact_spec: NetworkSpec | None = None
        self._module: Any = None
        #: Where the trace formed products of the module's linear maps in float64 (empty: none, or not a trace).
        self.formed_products: tuple[str, ...] = ()

    def spec(self, exact: bool = False) -> NetworkSpec:
        """The float64 spec: the model itself, ``model.spec()`` for a package model, else the trace
        (:func:`unfoldtheory.tracing.from_torch`; ``NotRepresentable`` names the op it cannot map).

        A trace may form products of the module's linear maps (e.g. ``AᵀA``) in float64, which is the layer form that
        method detection and the contraction certificate read. ``exact=True`` gives the trace that forms none (identity
        states instead, whose elimination the Lipschitz certificates cover), so that a certified Lipschitz bound covers
        the module's own float64 weights; it is the same spec when the plain trace formed no product.
        """
        if self._spec is None:
            if isinstance(self.model, NetworkSpec):
                self._spec = self.model
            elif self.package:
                self._spec = self.model.spec()
            else:
                from unfoldtheory.tracing import trace

                traced = trace(self.model, self.example_input, name=self.name)
                self._spec = traced.spec
                self._exact_spec = None if traced.formed_products else traced.spec
                self.formed_products = traced.formed_products
        if not exact or isinstance(self.model, NetworkSpec) or self.package:
            return self._spec
        if self._exact_spec is None:
            from unfoldtheory.tracing import from_torch

            self._exact_spec = from_torch(self.model, self.example_input, name=self.name, exact=True)
        return self._exact_spec

    def module(self) -> Any:
        """The torch module whose parameters are the model's, or NotApplicable. A program's is its own graph module in
        float64, without the guard on the saved example's batch size (the analyses evaluate one sample at a time)."""
        if self._module is None:
            if isinstance(self.model, NetworkSpec):
                raise NotApplicable("it needs a torch module with parameters; a NetworkSpec has fixed weights only")
            program = self.program
            self._module = program.module(check_guards=False).double() if program is not None else self.model
        return self._module


def _is_package_model(model: Any) -> bool:
    from unfoldtheory.unfold import UnfoldedModel

    return isinstance(model, UnfoldedModel)


def _lipschitz(subject: Subject, options: dict[str, Any]) -> dict[str, Bound]:
    from unfoldtheory.lipschitz import lower_bound, upper_bound

    spec = subject.spec(exact=True)
    upper = upper_bound(spec, time_budget=options["time_budget"])
    lower = lower_bound(spec, restarts=options["restarts"], seed=options["seed"])
    check_interval(lower, upper, f"Lipschitz constant of {subject.name} (l2)")
    return {"lipschitz upper": upper, "lipschitz lower": lower}


def _pep(subject: Subject, options: dict[str, Any]) -> dict[str, Bound]:
    from unfoldtheory.convergence import pep_rate, pep_rate_of
    from unfoldtheory.convergence.detect import detect_method
    from unfoldtheory.unfold import ALISTA, UnfoldedISTA

    if isinstance(subject.model, (UnfoldedISTA, ALISTA)):  # learned steps on a known A: the schedule beside 1/L
        rates = pep_rate_of(subject.model)
        return {"pep learned schedule": rates.learned, "pep classical step": rates.classical}
    found = detect_method(subject.spec(), A=subject.A)
    if found.pep_method is None:
        raise NotApplicable(f"the weights are no method with a PEP: {found.reason}")
    metric = "distance" if found.mu > 0 else "function_value"
    bound = pep_rate(found.steps, found.mu, found.L, found.pep_method, found.momentum, metric)
    covers = ("the network (it is this method up to float64 rounding)" if found.covers_network else
              f"the classical method only (detection residual {found.residual:.3g}; the network differs from it)")
    details = {**bound.details, "detected": found.method, "covers": covers, "residual": found.residual,
               "notes": list(found.notes)}
    return {f"pep {found.method}": bound.replace(details=details)}


def _contraction(subject: Subject, options: dict[str, Any]) -> dict[str, Bound]:
    from unfoldtheory.convergence.spec_contraction import contraction_bound, tied_iteration

    spec = subject.spec()
    try:
        tied_iteration(spec)
    except ValueError as exc:
        raise NotApplicable(f"it needs a weight-tied iteration x ↦ φ(Wx + By + b): {exc}") from None
    bound = contraction_bound(spec, time_budget=options["time_budget"], restarts=options["restarts"], seed=options["seed"])
    if subject.formed_products:  # the certificate covers W as the trace formed it, which the note says
        note = ("W is the float64 product the trace formed from the module's linear maps (" + "; ".join(subject.formed_products)
                + "); the factor is certified for that W")
        bound = bound.replace(details={**bound.details, "formed_products": note})
    return {"contraction factor": bound}


def _coherence(subject: Subject, options: dict[str, Any]) -> dict[str, Bound]:
    from unfoldtheory.convergence.coherence import lista_cp_certificate, spec_operators

    if subject.A is None:
        raise NotApplicable(f"it needs the sensing matrix A (A=, --sensing-matrix); {subject.name} carries none")
    spec = subject.spec()
    try:
        spec_operators(spec, subject.A)
    except ValueError as exc:
        raise NotApplicable(f"it needs layers x⁺ = ST_θ(x − B_k(Ax − y)) coupled to A: {exc}") from None
    cert = lista_cp_certificate(subject.model if subject.package else spec, options["sparsity"], options["amplitude"],
                                A=subject.A)
    last = cert.errors[-1]
    if not cert.valid:
        last = last.replace(details={**last.details, "reason": cert.reason})
    return {f"coherence error after layer {len(cert.errors)}": last}


def _parameter_lipschitz(subject: Subject, options: dict[str, Any]) -> dict[str, Bound]:
    from unfoldtheory.generalization import parameter_lipschitz

    module = subject.module()
    if not any(True for _ in module.parameters()):
        raise NotApplicable(f"it needs learned parameters; {subject.name} has none")
    with warnings.catch_warnings():  # re-exporting a loaded program's module: torch warns about its own pytree API
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning)
        return {"parameter lipschitz": parameter_lipschitz(module, options["input_radius"],
                                                           example_input=subject.example_input)}


#: The most seconds ``stability`` gives the exact search of the global constant (``time_budget`` when smaller).
EXACT_SECONDS = 10.0


def sample_inputs(model: Any, count: int, sparsity: int, amplitude: float, noise_std: float, seed: int) -> np.ndarray:
    """``count`` inputs ``y = A x + σe`` of ``model``'s sensing matrix A (``model.A_numpy()``, or ``model`` itself when
    it is the matrix): x has ``sparsity`` nonzeros at random places, uniform in ``[−amplitude, amplitude]`` (the
    coherence certificate's signal class), e standard normal."""
    if isinstance(model, np.ndarray):
        A = as_finite_array(model, "A", ndim=2)
    elif hasattr(model, "A_numpy"):
        A = model.A_numpy()
    else:
        raise ValueError(f"{type(model).__name__} has no sensing matrix A to draw test inputs from; pass inputs")
    m, n = A.shape
    rng = np.random.default_rng([seed, 13])
    X = np.zeros((count, n))
    for row in X:
        support = rng.choice(n, size=min(sparsity, n), replace=False)
        row[support] = rng.uniform(-amplitude, amplitude, support.size)
    return X @ A.T + noise_std * rng.standard_normal((count, m))


def _stability(subject: Subject, options: dict[str, Any]) -> Any:
    from unfoldtheory.stability import check_inputs, global_interval, local_stability, stability_radii

    spec = subject.spec(exact=True)
    Y = options["inputs"]
    if Y is None:
        if subject.A is None:
            raise NotApplicable("it needs test inputs (inputs=, --inputs) or a sensing matrix A to draw them from "
                                f"(A=, --sensing-matrix); {subject.name} has neither")
        Y = sample_inputs(subject.A, options["stability_inputs"], options["sparsity"], options["amplitude"],
                          options["noise_std"], options["seed"])
    Y = check_inputs(spec, Y)  # before the exact search, which may take its whole budget
    radii = stability_radii(options["stability_radii"], options["stability_noise_radii"], options["noise_std"])
    name = subject.name
    lower, upper, _ = global_interval(spec, *options["global_interval"], exact_neurons=options["stability_exact_neurons"],
                                      time_budget=min(options["time_budget"], EXACT_SECONDS),
                                      what=f"Lipschitz constant of {name} (l2)", progress=options["progress"])
    return local_stability(spec, Y, radii, noise_std=options["noise_std"], time_budget=options["stability_budget"],
                           restarts=min(options["restarts"], 4), seed=options["seed"], model=name,
                           global_interval=(lower, upper), exact_neurons=options["stability_exact_neurons"],
                           progress=options["progress"])


RUNNERS = {"lipschitz": _lipschitz, "pep": _pep, "contraction": _contraction, "coherence": _coherence,
           "parameter-lipschitz": _parameter_lipschitz, "stability": _stability}


def analyze_model(model: Any, analyses: tuple[str, ...] | list[str] = ANALYSES, *, time_budget: float = 45.0,
                  restarts: int = 8, seed: int = 0, sparsity: int = 1, amplitude: float = 1.0,
                  input_radius: float = 1.0, inputs: Any = None, stability_inputs: int = 8,
                  stability_radii: Sequence[float] = (0.01, 0.05), noise_std: float = 0.0,
                  stability_noise_radii: Sequence[float] = (0.5,), stability_budget: float = 2.0,
                  stability_exact_neurons: int = 100, progress: bool | None = False, example_input: Any = None,
                  A: Any = None) -> ModelAnalysis:
    """Run ``analyses`` on ``model`` (module docstring): a package model, a torch module, a ``torch.export`` program
    or a NetworkSpec.

    ``example_input`` (one input of a module that is not a package model) is what it is traced on; a program's own
    sample input is the default. ``A`` is the sensing matrix (m×n) where the model does not carry one
    (``A_numpy()``): it fixes the PEP's function class and lets ``stability`` draw its test inputs.

    ``sparsity`` and ``amplitude`` (s and B) define the signal class of the coherence certificate;
    ``input_radius`` the ball ``‖y‖ ≤ R`` of the parameter Lipschitz constant. ``stability`` bounds the local constant
    around the rows of ``inputs`` (or ``stability_inputs`` inputs drawn by :func:`sample_inputs`) at radii
    ``stability_radii`` (fractions of ‖y‖) and ``stability_noise_radii`` (units of σ√m, used when ``noise_std`` > 0),
    ``stability_budget`` seconds per ball; beside them the global interval (the ``lipschitz`` analysis') is tightened
    by the exact search (``min(time_budget, EXACT_SECONDS)`` seconds), and each local interval by the exact local search
    (``stability_budget`` seconds per ball), for models of at most ``stability_exact_neurons`` neurons;
    ``progress`` shows the progress bars. An analysis that does not apply (the model lacks what it needs, or has no
    exact spec) is listed in ``not_applicable`` with the reason. A torch model with a
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
    from torch import nn

    from unfoldtheory.stability import StabilityProfile
    from unfoldtheory.unfold.finite import check_finite_parameters

    if isinstance(model, nn.Module):
        check_finite_parameters(model)
    subject = Subject(model, example_input, A)
    result = ModelAnalysis(subject.name)
    for name in analyses:
        options["global_interval"] = (result.bounds.get("lipschitz lower"), result.bounds.get("lipschitz upper"))
        try:
            found = RUNNERS[name](subject, options)
            if isinstance(found, StabilityProfile):
                result.stability, found = found, found.bounds()
            result.bounds.update(found)
        except InconsistentBounds:
            raise
        except NotApplicable as exc:
            result.not_applicable[name] = str(exc)
        except NotRepresentable as exc:
            result.not_applicable[name] = f"the model has no exact NetworkSpec: {exc}"
        except (ValueError, RuntimeError) as exc:
            result.failed[name] = str(exc)
    return result
