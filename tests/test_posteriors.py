"""Posterior blocks and fast Gibbs losses: blocks against torch's own indexing of each parameter, block scales
and RMS against per-tensor computations, the vectorised Gibbs losses against a plain loop of forward passes
over the same documented draws (``with_parameters`` + ``squared_losses``), against the deterministic losses at
σ = 0, and against an independent sampler (torch's generator, plain forward passes) in distribution."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from unfoldtheory.generalization import posteriors
from unfoldtheory.generalization.data import squared_losses
from unfoldtheory.generalization.parameter_lipschitz import flat_parameters, model_size, with_parameters
from unfoldtheory.generalization.posteriors import (
    block_rms,
    block_std,
    broadcastable,
    gibbs_losses,
    parameter_blocks,
)
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.unfold import ALISTA, LISTA, LISTACP, HybridISTA, LearnedUpdate

M, N_SIG = 8, 16


class TiedNet(nn.Module):
    """A user module (no package initialisation) whose last layer reuses the middle layer's weight."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(M, N_SIG, dtype=torch.float64)
        self.mid = nn.Linear(N_SIG, N_SIG, dtype=torch.float64)
        self.out = nn.Linear(N_SIG, N_SIG, dtype=torch.float64)
        self.out.weight = self.mid.weight

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.mid(torch.relu(self.enc(y)))))


class Branching(TiedNet):
    """Control flow on a parameter's value: vmap cannot batch it, the loop fallback must."""

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.enc(y))
        return self.out(h) if float(self.enc.bias.sum()) > -1e9 else h


@pytest.fixture(scope="module")
def problem():
    return SparseRecovery(M, N_SIG, 0.2, seed=4)


@pytest.fixture(scope="module")
def data(problem):
    return problem.sample(37, seed=5)


def build(name, problem):
    torch.manual_seed(1)
    A, lam = problem.A, problem.lam
    model = {"LISTA": lambda: LISTA(A, 3, lam), "LISTACP": lambda: LISTACP(A, 3, lam),
             "HybridISTA": lambda: HybridISTA(A, 2, lam, hidden=5), "LearnedUpdate": lambda: LearnedUpdate(A, 3, lam),
             "LearnedUpdateUntied": lambda: LearnedUpdate(A, 2, lam, tied=False), "ALISTA": lambda: ALISTA(A, 3, lam),
             "TiedNet": TiedNet, "Branching": Branching}[name]()
    with torch.no_grad():  # distinct values everywhere, so that equal values identify the same coordinate
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, dtype=p.dtype))
    return model


MODELS = ["LISTA", "LISTACP", "HybridISTA", "LearnedUpdate", "LearnedUpdateUntied", "ALISTA", "TiedNet"]


def reference_losses(model, std, data, draws, seed, unit):
    """The documented draws, loaded one at a time into a model copy (``vector_to_parameters``) and run forward."""
    Y, X = data
    rng, mean, copy = np.random.default_rng(seed), flat_parameters(model), with_parameters(model, flat_parameters(model))
    out = np.empty((draws, Y.shape[0]))
    for start in range(0, Y.shape[0], unit):
        for r in range(draws):
            theta = mean + std * rng.standard_normal(mean.size)
            nn.utils.vector_to_parameters(torch.as_tensor(theta), copy.parameters())
            out[r, start:start + unit] = squared_losses(copy, (Y[start:start + unit], X[start:start + unit]))
    return out


def tensor_std(model, scale=0.05):
    blocks = parameter_blocks(model, "tensor")
    return block_std(blocks, scale * block_rms(model, blocks), model_size(model))


# ---------------------------------------------------------------------------- blocks
@pytest.mark.parametrize("name", MODELS)
def test_blocks_partition_the_vector_and_match_torch_indexing(name, problem):
    model = build(name, problem)
    flat, D = flat_parameters(model), model_size(model)
    params = list(model.parameters())
    for kind in posteriors.KINDS:
        blocks = parameter_blocks(model, kind)
        assert np.array_equal(np.sort(np.concatenate(blocks)), np.arange(D))
        expected = {"coordinate": [p.detach().reshape(-1)[i:i + 1] for p in params for i in range(p.numel())],
                    "tensor": [p.detach().reshape(-1) for p in params],
                    "row": [r.reshape(-1) for p in params for r in (p.detach() if p.ndim >= 2 else [p.detach()])]}[kind]
        assert len(blocks) == len(expected)
        for b, values in zip(blocks, expected, strict=True):
            assert np.array_equal(flat[b], values.numpy())
    if name == "TiedNet":
        assert D == sum(p.numel() for n, p in model.named_parameters(remove_duplicate=False) if n != "out.weight")


def test_block_std_and_rms_against_per_tensor_values(problem):
    model = build("LISTA", problem)
    blocks = parameter_blocks(model, "row")
    scales = np.arange(1, len(blocks) + 1, dtype=float)
    std = block_std(blocks, scales, model_size(model))
    for b, s in zip(blocks, scales, strict=True):
        assert np.all(std[b] == s)
    rms = block_rms(model, parameter_blocks(model, "tensor"))
    direct = np.array([float(p.detach().pow(2).mean().sqrt()) for p in model.parameters()])
    np.testing.assert_allclose(rms, direct, rtol=1e-13)


def test_block_rms_floor(problem):
    model = build("LISTACP", problem)
    with torch.no_grad():
        model.W[1].zero_()
    blocks = parameter_blocks(model, "tensor")
    rms = block_rms(model, blocks)
    total = math.sqrt(float(np.mean(flat_parameters(model) ** 2)))
    assert rms[1] == pytest.approx(posteriors.RMS_FLOOR * total)
    assert np.all(rms > 0)
    assert np.all(block_rms(model, blocks, floor=10.0) == 10.0)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    assert np.all(block_rms(model, blocks) == 1.0)


def test_block_errors(problem):
    model = build("LISTACP", problem)
    D = model_size(model)
    blocks = parameter_blocks(model, "tensor")
    with pytest.raises(ValueError, match="kind must be one of"):
        parameter_blocks(model, "matrix")
    with pytest.raises(ValueError, match="learned parameters"):
        parameter_blocks(nn.ReLU(), "row")
    with pytest.raises(ValueError, match="covered 2 times"):
        block_std([*blocks, np.array([0])], np.ones(len(blocks) + 1), D)
    with pytest.raises(ValueError, match="covered 0 times"):
        block_std(blocks[1:], np.ones(len(blocks) - 1), D)
    with pytest.raises(ValueError, match="outside"):
        block_std([np.arange(D + 1)], [1.0], D)
    with pytest.raises(ValueError, match="integer"):
        block_std([np.arange(D) * 1.0], [1.0], D)
    with pytest.raises(ValueError, match="shape"):
        block_std(blocks, np.ones(2), D)
    with pytest.raises(ValueError, match=">= 0"):
        block_std(blocks, -np.ones(len(blocks)), D)
    with pytest.raises(ValueError, match="non-finite"):
        block_std(blocks, np.full(len(blocks), np.nan), D)
    with pytest.raises(ValueError, match="floor"):
        block_rms(model, blocks, floor=0.0)


# ---------------------------------------------------------------------------- Gibbs losses
@pytest.mark.parametrize("name", ["LISTA", "ALISTA", "TiedNet"])
def test_zero_std_gives_the_deterministic_losses(name, problem, data):
    model = build(name, problem)
    for per_sample in (None, False):
        losses, groups = gibbs_losses(model, np.zeros(model_size(model)), data, draws=3, per_sample=per_sample)
        assert losses.shape == groups.shape == (3, data[0].shape[0])
        assert np.array_equal(losses, np.tile(squared_losses(model, data), (3, 1)))


@pytest.mark.parametrize("name", [*MODELS, "Branching"])
@pytest.mark.parametrize("per_sample", [True, False])
def test_vectorised_draws_equal_a_plain_loop_over_the_same_draws(name, per_sample, problem, data):
    model = build(name, problem)
    std = tensor_std(model)
    chunk = 5  # does not divide the 37 samples
    losses, groups = gibbs_losses(model, std, data, draws=3, seed=11, chunk=chunk, per_sample=per_sample)
    unit = 1 if per_sample else chunk
    expected = reference_losses(model, std, data, 3, 11, unit)
    np.testing.assert_allclose(losses, expected, rtol=1e-12, atol=1e-14)
    N = data[0].shape[0]
    assert np.array_equal(groups, np.arange(3)[:, None] * N + np.arange(N)[None, :] // unit)
    assert not np.allclose(losses, np.tile(squared_losses(model, data), (3, 1)), rtol=1e-9)  # the draws matter


@pytest.mark.parametrize("name", ["LearnedUpdate", "ALISTA"])
def test_draws_do_not_depend_on_how_many_are_stacked_per_call(name, problem, data, monkeypatch):
    model = build(name, problem)
    std = tensor_std(model)
    per_sample = None if name == "ALISTA" else False  # broadcast rows, or vmapped draws
    many, _ = gibbs_losses(model, std, data, draws=4, seed=3, per_sample=per_sample)
    monkeypatch.setattr(posteriors, "MAX_DRAW_BYTES", 1)  # one draw per call, one sample per broadcast block
    assert posteriors.draws_per_call(model_size(model), 4) == 1
    one, _ = gibbs_losses(model, std, data, draws=4, seed=3, per_sample=per_sample)
    np.testing.assert_allclose(one, many, rtol=1e-12, atol=1e-14)


def _group_sizes(groups):
    _, counts = np.unique(groups, return_counts=True)
    return counts


def test_group_structure(problem, data, monkeypatch):
    N = data[0].shape[0]
    lista, alista = build("LISTA", problem), build("ALISTA", problem)
    assert broadcastable(alista) and not broadcastable(lista) and not broadcastable(build("TiedNet", problem))
    _, g = gibbs_losses(lista, tensor_std(lista), data, draws=2, chunk=10, per_sample=False)
    assert sorted(_group_sizes(g)) == sorted([10, 10, 10, 7] * 2)
    assert np.array_equal(g[1], g[0] + N)  # each draw index its own groups: independent draws
    assert np.array_equal(g[0], np.arange(N) // 10)
    for model in (lista, alista):  # the default takes one draw per sample for small or broadcastable models
        _, g = gibbs_losses(model, tensor_std(model), data, draws=2)
        assert np.all(_group_sizes(g) == 1) and np.unique(g).size == 2 * N
    monkeypatch.setattr(posteriors, "PER_SAMPLE_NORMALS", 0)
    _, g = gibbs_losses(lista, tensor_std(lista), data, draws=2, chunk=10)
    assert np.unique(g).size == 8  # too many normals for one draw per sample: chunks
    _, g = gibbs_losses(alista, tensor_std(alista), data, draws=2, chunk=10)
    assert np.unique(g).size == 2 * N  # broadcasting costs nothing extra


def test_seed_determines_the_draws(problem, data):
    model = build("HybridISTA", problem)
    std = tensor_std(model)
    a, _ = gibbs_losses(model, std, data, draws=2, seed=4)
    b, _ = gibbs_losses(model, std, data, draws=2, seed=4)
    c, _ = gibbs_losses(model, std, data, draws=2, seed=5)
    assert np.array_equal(a, b) and not np.allclose(a, c)


def torch_draws(model, std, data, draws, seed, unit):
    """An independent sampler: torch's generator, one draw per (draw, unit), a plain forward pass each."""
    Y, X = data
    gen, mean = torch.Generator().manual_seed(seed), torch.as_tensor(flat_parameters(model))
    copy = with_parameters(model, mean)
    out = np.empty((draws, Y.shape[0]))
    for r in range(draws):
        for start in range(0, Y.shape[0], unit):
            theta = mean + torch.as_tensor(std) * torch.randn(mean.numel(), generator=gen, dtype=torch.float64)
            nn.utils.vector_to_parameters(theta, copy.parameters())
            out[r, start:start + unit] = squared_losses(copy, (Y[start:start + unit], X[start:start + unit]))
    return out


@pytest.mark.parametrize("name,per_sample", [("ALISTA", None), ("LISTACP", False), ("TiedNet", False)])
def test_same_distribution_as_an_independent_sampler(name, per_sample, problem):
    """Paired over units of 4 samples (the chunks share draws): the mean over draws of the difference of the
    clipped losses min(ℓ, b) (what the bounds use; bounded, so the mean has a small variance), divided by its
    standard error, is a z-score of a zero-mean variable when both draw from N(θ̂, diag σ²); the same test tells
    a sampler at 3σ apart (so it can fail)."""
    model = build(name, problem)
    data = problem.sample(240, seed=8)
    std = tensor_std(model, scale=0.3)
    draws, unit = 6, 4
    b = float(np.quantile(squared_losses(model, data), 0.9))
    new = np.minimum(gibbs_losses(model, std, data, draws=draws, seed=1, chunk=unit, per_sample=per_sample)[0], b)
    starts = np.arange(0, data[0].shape[0], unit)

    def z_score(ref_scale, seed):
        ref = np.minimum(torch_draws(model, ref_scale * std, data, draws, seed, unit), b)
        units = np.add.reduceat((new - ref).mean(axis=0), starts) / unit
        return units.mean() / (units.std(ddof=1) / math.sqrt(units.size))

    assert abs(z_score(1.0, 2)) < 4.5
    assert abs(z_score(3.0, 3)) > 5.0


def test_gibbs_errors(problem, data):
    model = build("LISTA", problem)
    D = model_size(model)
    with pytest.raises(ValueError, match="posterior std has shape"):
        gibbs_losses(model, np.ones(D + 1), data)
    with pytest.raises(ValueError, match=">= 0"):
        gibbs_losses(model, -np.ones(D), data)
    with pytest.raises(ValueError, match="non-finite"):
        gibbs_losses(model, np.full(D, np.inf), data)
    with pytest.raises(ValueError, match="per_sample"):
        gibbs_losses(model, np.ones(D), data, per_sample="yes")
    with pytest.raises(ValueError, match="seed"):
        gibbs_losses(model, np.ones(D), data, seed=-1)
    with pytest.raises(ValueError, match="draws"):
        gibbs_losses(model, np.ones(D), data, draws=0)
    with pytest.raises(ValueError, match="chunk"):
        gibbs_losses(model, np.ones(D), data, chunk=1.5)
    with pytest.raises(ValueError, match="data Y has shape"):
        gibbs_losses(model, np.ones(D), (data[0][:, :3], data[1]))
    with pytest.raises(ValueError, match="learned parameters"):
        gibbs_losses(nn.Identity(), np.ones(0), data)
    wide = nn.Linear(M, N_SIG + 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="output has shape"):
        gibbs_losses(wide, np.ones(model_size(wide)), data, per_sample=False)
