"""The embedded default of ``unfoldtheory report``: problem size, depth and sample counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass
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

    def __post_init__(self) -> None:
        for name in ("m", "n", "instances", "crosscheck", "iterations", "layers", "train_steps", "test_samples",
                     "generalization_samples", "generalization_steps"):
            positive_int(getattr(self, name), name)
        finite_float(self.sparsity, "sparsity", low=0.0, high=1.0, low_open=True)
        finite_float(self.noise_std, "noise_std", low=0.0)
        finite_float(self.lipschitz_budget, "lipschitz_budget", low=0.0, low_open=True)
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
