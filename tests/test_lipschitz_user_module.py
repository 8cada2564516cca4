"""A researcher's own torch module gets the activation-aware Lipschitz analyses (issue 13 on issue 14's tracer).

The module is traced with ``from_torch(..., exact=True)`` and every number is compared with the module itself:
its own autograd Jacobians and its own forward, not the spec's."""

import numpy as np
import pytest
import torch
from torch import nn
from user_modules import TiedLISTA, unit_columns

from unfoldtheory.lipschitz import upper_bound
from unfoldtheory.lipschitz.exact import exact_bound
from unfoldtheory.lipschitz.local import local_upper_bound
from unfoldtheory.lipschitz.local_lower import local_lower_bound
from unfoldtheory.lipschitz.regions import Ball, Box
from unfoldtheory.oracle.linear_regions import linear_regions
from unfoldtheory.tracing import from_torch

#: The oracle decides interiors by a float LP (its docstring); the certified ends are rigorous.
SLACK = 1e-7


class ResidualReLU(nn.Module):
    """A user's two-block residual ReLU net, ``h ← h + W₂ relu(W₁ h + b)`` after a linear lift."""

    def __init__(self, m: int, width: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.lift = nn.Linear(m, 2).double()
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, 2)).double()
                                    for _ in range(2))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h = self.lift(y)
        for block in self.blocks:
            h = h + block(h)
        return h


def _modules() -> dict[str, nn.Module]:
    return {"tied LISTA": TiedLISTA(unit_columns(2, 3, 4), 2, 0.1, inject_scale=1.4, mix_scale=0.7),
            "residual ReLU": ResidualReLU(2, 2, 1)}


def _jacobian_norm(module: nn.Module, y: np.ndarray) -> float:
    J = torch.autograd.functional.jacobian(lambda v: module(v[None])[0], torch.as_tensor(y, dtype=torch.float64))
    return float(np.linalg.norm(J.detach().numpy(), 2))


def _ratio(module: nn.Module, y1: np.ndarray, y2: np.ndarray) -> float:
    with torch.no_grad():
        f = module(torch.as_tensor(np.stack([y1, y2]), dtype=torch.float64)).numpy()
    return float(np.linalg.norm(f[1] - f[0]) / np.linalg.norm(np.asarray(y2) - np.asarray(y1)))


@pytest.mark.parametrize("name", list(_modules()))
def test_exact_bound_of_a_traced_module_matches_the_region_enumeration_and_its_witness_re_evaluates(name):
    module = _modules()[name]
    spec = from_torch(module, torch.zeros(1, 2, dtype=torch.float64), exact=True)
    truth = linear_regions(spec).lipschitz
    b = exact_bound(spec, rtol=1e-6, time_budget=60.0, progress=False)
    lower = b.details["lower"]
    assert b.certified and lower.certified and b.details["closed"]
    assert lower.value * (1 - SLACK) <= truth <= b.value * (1 + SLACK)
    y1, y2 = b.details["witness"]
    assert _ratio(module, y1, y2) >= lower.value * (1 - 1e-9)  # the module's own forward, not the spec's


@pytest.mark.parametrize("name", list(_modules()))
@pytest.mark.parametrize("radius", [0.05, 0.5])
def test_local_interval_of_a_traced_module_brackets_its_own_jacobians_and_lies_below_the_global_bound(name, radius):
    module = _modules()[name]
    spec = from_torch(module, torch.zeros(1, 2, dtype=torch.float64), exact=True)
    centre = np.random.default_rng(7).standard_normal(2)
    for region in (Ball(centre, radius), Box(centre - radius, centre + radius)):
        up = local_upper_bound(spec, region, time_budget=10.0)
        low = local_lower_bound(spec, region, time_budget=2.0)
        glob = upper_bound(spec, "best")
        assert up.certified and low.certified and glob.certified
        assert low.value <= up.value * (1 + 1e-12) and up.value <= glob.value * (1 + 1e-12)
        points = region.sample(64, rng=3)
        assert np.all(region.contains(points))
        assert max(_jacobian_norm(module, p) for p in points) <= up.value * (1 + 1e-9)
        y1, y2 = low.certificate["y1"], low.certificate["y2"]
        assert np.all(region.contains(np.stack([y1, y2])))
        assert _ratio(module, y1, y2) >= low.value * (1 - 1e-9)
