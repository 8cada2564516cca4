"""The embedded default of ``unfoldtheory report`` (problem size, depth and sample counts) and its ``--quick`` preset.

Importing this module loads nothing heavy (numpy only, through :mod:`unfoldtheory.validation`), so that the command
line can show the defaults in ``--help`` without importing torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from unfoldtheory.validation import finite_float, positive_int


@dataclass(frozen=True)
class ReportConfig:
    """Settings of the main job; the defaults finish in about a minute on 2 cores.

    m, n, sparsity, noise_std, seed: the sparse-recovery problem (``SparseRecovery``).
    instances: test signals sampled from it.
    crosscheck: how many of them are also solved by cvxpy/Clarabel to check the certified reference.
    iterations: K, the number of ISTA/FISTA iterations in the baseline section.
    layers: depth of the trained unfolded models (and of the ISTA/FISTA they are compared with).
    train_steps: optimiser steps (batches of 64 fresh samples) per trained model.
    test_samples: held-out samples on which the trained models are evaluated.
    lipschitz_budget: seconds allowed to each certified Lipschitz upper bound (method "best") and to each witness search.
    generalization_samples, generalization_steps: the fixed training set (and steps) on which the
    generalization section trains its models again.
    device: where the models are trained ("cpu", "cuda", "cuda:1", ...); every analysis runs in float64 on the CPU.
    stability_inputs: held-out test inputs y around which the stability section bounds the local Lipschitz constant.
    stability_radii: radii of those balls as fractions of ‖y‖ (0.01 is 1 % of the signal level).
    stability_noise_radii: further radii in units of σ√m, the typical norm of the noise (used only when noise_std > 0).
    stability_budget: seconds per ball for its certified local upper bound (its witness search gets half of it).
    stability_exact_neurons: up to this many neurons, the global interval beside the local ones is tightened by the
    exact search (``exact_bound``, ``lipschitz_budget`` seconds per model), and each local interval by the exact local
    search (``stability_budget`` seconds per ball); 0 never runs them.
    """

    m: int = 64
    n: int = 128
    sparsity: float = 0.1
    noise_std: float = 0.0
    instances: int = 64
    crosscheck: int = 8
    iterations: int = 300
    layers: int = 12
    train_steps: int = 2000
    test_samples: int = 1000
    lipschitz_budget: float = 10.0
    generalization_samples: int = 2000
    generalization_steps: int = 1000
    seed: int = 0
    device: str = "cpu"
    stability_inputs: int = 4
    stability_radii: tuple[float, ...] = (0.01, 0.05)
    stability_noise_radii: tuple[float, ...] = (0.5,)
    stability_budget: float = 2.0
    stability_exact_neurons: int = 100

    def __post_init__(self) -> None:
        for name in ("m", "n", "instances", "crosscheck", "iterations", "layers", "train_steps", "test_samples",
                     "generalization_samples", "generalization_steps", "stability_inputs"):
            positive_int(getattr(self, name), name)
        finite_float(self.sparsity, "sparsity", low=0.0, high=1.0, low_open=True)
        finite_float(self.noise_std, "noise_std", low=0.0)
        finite_float(self.lipschitz_budget, "lipschitz_budget", low=0.0, low_open=True)
        finite_float(self.stability_budget, "stability_budget", low=0.0, low_open=True)
        for name in ("stability_radii", "stability_noise_radii"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        from unfoldtheory.stability import stability_radii

        stability_radii(self.stability_radii, self.stability_noise_radii, self.noise_std)  # ValueError for bad factors
        if isinstance(self.stability_exact_neurons, bool) or not isinstance(self.stability_exact_neurons, int) \
                or self.stability_exact_neurons < 0:
            raise ValueError(f"stability_exact_neurons must be a non-negative integer, got {self.stability_exact_neurons!r}")
        if self.stability_inputs > self.test_samples:
            raise ValueError(f"stability_inputs ({self.stability_inputs}) cannot exceed test_samples ({self.test_samples})")
        if self.crosscheck > self.instances:
            raise ValueError(f"crosscheck ({self.crosscheck}) cannot exceed instances ({self.instances})")
        if not isinstance(self.device, str) or not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu' or 'cuda[:index]', got {self.device!r}")
        if self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"device {self.device!r} was asked for, but torch sees no CUDA device")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")

    @classmethod
    def quick(cls, **overrides: Any) -> ReportConfig:
        """The :data:`QUICK` preset (a small problem, shallow models, short training: a smoke run of every section in
        well under a minute), with ``overrides`` (any field) taking precedence."""
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown ReportConfig fields {unknown}")
        return cls(**{**QUICK, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


#: ``unfoldtheory report --quick``: the small configuration of the end-to-end tests (m = 16, n = 32, 3 layers, 60
#: training steps, ...); explicit options override it.
QUICK: dict[str, Any] = {"m": 16, "n": 32, "instances": 6, "crosscheck": 2, "iterations": 80, "layers": 3, "train_steps": 60,
                         "test_samples": 100, "generalization_samples": 80, "generalization_steps": 20, "stability_inputs": 2,
                         "stability_radii": (0.05,), "stability_budget": 1.0, "stability_exact_neurons": 0}
