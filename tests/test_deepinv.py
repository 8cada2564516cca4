"""deepinv's unfolded proximal gradient (``deepinv.unfolded.unfolded_builder``), traced by ``from_torch`` and certified.

The model is deepinv's own: PGD on ``½‖Ax − y‖²`` (``deepinv.optim.data_fidelity.L2``) with an ℓ1 prior
(``deepinv.optim.prior.L1Prior``), a dense 16 × 32 compressed-sensing matrix (``deepinv.physics.CompressedSensing``,
a ``LinearPhysics``) and a learned step size γ_k per iteration. deepinv writes the prox as
``sign(u)·relu(|u| − λγ_k)`` (``deepinv/optim/prior.py``, ``L1Prior.prox``), evaluates the cost in every
iteration (dead code for the output) and initialises with ``x_0 = Aᵀy``. Its forward takes ``(y, physics)``, so the
traced module is the wrapper ``y ↦ model(y, physics)``. Routes compared: the trace against deepinv's forward, the
certified upper bound against the lower bound's witness and against the torch Jacobian of deepinv's forward.

deepinv imports torchvision; where the only torchvision for the installed torch is built for another torch
(PyPI's CUDA build next to a CPU torch), ``import deepinv`` raises ``RuntimeError`` and the module is skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

try:
    import deepinv as dinv
except ImportError as exc:
    pytest.skip(f"deepinv is not installed (pip install -e '.[deepinv]'): {exc}", allow_module_level=True)
except RuntimeError as exc:  # torchvision's C extension built for another torch
    pytest.skip(f"deepinv is installed but does not import: {exc}", allow_module_level=True)

from unfoldtheory.activations import SoftThreshold
from unfoldtheory.lipschitz import lower_bound, upper_bound
from unfoldtheory.tracing import from_torch

M, IMAGE, ITERATIONS, WEIGHT = 16, (1, 4, 8), 3, 0.5
README = Path(__file__).resolve().parents[1] / "README.md"


class Reconstruction(torch.nn.Module):
    """``y ↦ model(y, physics)``, flattened to ``(batch, n)``: deepinv's forward as a one-input module."""

    def __init__(self, model: torch.nn.Module, physics: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.physics = physics

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.model(y, self.physics).flatten(1)


def unfolded_pgd(seed: int = 0) -> tuple[Reconstruction, list[float]]:
    """deepinv's unfolded PGD with a learned γ_k ∈ [½, 1]/‖A‖² per iteration and λ = WEIGHT, in float64; also the
    thresholds λγ_k. (A trainable λ fails inside deepinv 0.5.0 itself: its cost ``lambda.flatten(1, -1)`` wants a
    batched λ.)"""
    physics = dinv.physics.CompressedSensing(m=M, img_size=IMAGE, dtype=torch.float64,
                                             rng=torch.Generator("cpu").manual_seed(seed))
    rng = np.random.default_rng(seed)
    lipschitz = float(torch.linalg.matrix_norm(physics._A, ord=2)) ** 2
    steps = (rng.uniform(0.5, 1.0, ITERATIONS) / lipschitz).tolist()
    model = dinv.unfolded.unfolded_builder(
        iteration="PGD",
        params_algo={"stepsize": steps, "lambda": WEIGHT},
        trainable_params=["stepsize"],
        data_fidelity=dinv.optim.data_fidelity.L2(),
        prior=dinv.optim.prior.L1Prior(),
        max_iter=ITERATIONS,
    ).double()
    thresholds = [WEIGHT * model.params_algo["stepsize"][k].item() for k in range(ITERATIONS)]
    return Reconstruction(model, physics), thresholds


class TinyDenoiser(torch.nn.Module):
    """A residual ReLU convolutional denoiser ``x ↦ x − conv₂(relu(conv₁ x))`` for deepinv's ``PnP`` prior."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, channels, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, x: torch.Tensor, sigma: object = None) -> torch.Tensor:
        return x - self.conv2(torch.relu(self.conv1(x)))


def unfolded_pnp(seed: int = 0) -> Reconstruction:
    """deepinv's unfolded PGD with a learned step per iteration and a plug-and-play ReLU denoiser as the prox."""
    torch.manual_seed(seed)
    physics = dinv.physics.CompressedSensing(m=M, img_size=IMAGE, dtype=torch.float64,
                                             rng=torch.Generator("cpu").manual_seed(seed))
    model = dinv.unfolded.unfolded_builder(
        iteration="PGD",
        params_algo={"stepsize": [0.1, 0.15], "g_param": 0.1},
        trainable_params=["stepsize"],
        data_fidelity=dinv.optim.data_fidelity.L2(),
        prior=dinv.optim.PnP(TinyDenoiser()),
        max_iter=2,
    ).double()
    return Reconstruction(model, physics)


@pytest.fixture(scope="module")
def traced():
    module, thresholds = unfolded_pgd()
    spec = from_torch(module, torch.zeros(1, M, dtype=torch.float64), name="deepinv PGD")
    return module, spec, thresholds


def test_trace_equals_deepinv_forward(traced):
    module, spec, _ = traced
    assert (spec.input_dim, spec.output_dim) == (M, int(np.prod(IMAGE)))
    Y = np.random.default_rng(1).normal(scale=2.0, size=(64, M))
    with torch.no_grad():
        expected = module(torch.from_numpy(Y)).numpy()
    np.testing.assert_allclose(spec(Y), expected, rtol=0, atol=1e-10)
    zero = np.mean(expected == 0.0)
    assert 0.0 < zero < 0.9, zero  # the last threshold acts on some entries and not on others


def test_l1_prox_is_traced_as_soft_thresholding(traced):
    _, spec, thresholds = traced
    found = sorted(float(np.max(a.theta)) for a in spec.activations if isinstance(a, SoftThreshold))
    np.testing.assert_allclose(found, sorted(thresholds), rtol=1e-12)


def test_lipschitz_interval_is_certified(traced):
    module, spec, _ = traced
    upper, lower = upper_bound(spec), lower_bound(spec)
    assert upper.certified and lower.certified
    assert upper.value >= lower.value > 0
    # independent of the trace: the Jacobian of deepinv's own forward at random inputs
    for y in torch.from_numpy(np.random.default_rng(2).normal(size=(8, M))):
        jac = torch.func.jacrev(lambda v: module(v[None])[0])(y)
        assert torch.linalg.matrix_norm(jac, ord=2).item() <= upper.value * (1 + 1e-9)


def test_plug_and_play_relu_denoiser_is_traced_and_certified():
    module = unfolded_pnp()
    spec = from_torch(module, torch.zeros(1, M, dtype=torch.float64), name="deepinv PnP-PGD")
    Y = np.random.default_rng(3).normal(size=(32, M))
    with torch.no_grad():
        expected = module(torch.from_numpy(Y)).numpy()
    np.testing.assert_allclose(spec(Y), expected, rtol=0, atol=1e-10)
    upper, lower = upper_bound(spec), lower_bound(spec)
    assert upper.certified and lower.certified
    assert upper.value >= lower.value > 0


def test_readme_deepinv_example_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python deepinv\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "README.md has no deepinv example (a ```python deepinv block)"
    monkeypatch.chdir(tmp_path)
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md[python deepinv {i}]", "exec"), {"__name__": f"readme_deepinv_{i}"})
