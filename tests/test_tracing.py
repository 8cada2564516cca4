"""unfoldtheory.tracing: a traced spec evaluates as the module's forward, for the package's models and user modules.

Independent routes: the spec's float64 evaluation (numpy) against the torch forward, and against the models'
hand-written ``spec()``; provenance against the module's parameter structure; the soft-threshold op against the
plain formula (values and gradients).
"""

from __future__ import annotations

import inspect
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from unfoldtheory import unfold
from unfoldtheory.activations import BoxProjection, Identity, ReLU, SoftThreshold
from unfoldtheory.spec import NotRepresentable
from unfoldtheory.tracing import TracedModel, from_torch, trace
from unfoldtheory.unfold import soft_threshold

D = torch.float64
BUILTINS = ["UnfoldedISTA", "UnfoldedFISTA", "UnfoldedADMM", "ALISTA", "LISTA", "LISTACP", "HybridISTA", "LearnedUpdate"]
_CACHE: dict[str, tuple[nn.Module, TracedModel]] = {}


def _perturbed(cls: str, seed: int = 0) -> nn.Module:
    A = np.random.default_rng(seed).standard_normal((5, 8)) / 2
    model = getattr(unfold, cls)(A, 3, 0.1)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # move off the classical initialisation (no tied structure left by accident)
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


def _traced(cls: str) -> tuple[nn.Module, TracedModel]:
    if cls not in _CACHE:
        model = _perturbed(cls)
        _CACHE[cls] = model, trace(model, torch.randn(3, 5, dtype=D))
    return _CACHE[cls]


def _forward(module: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        out = module(x)
    return out.detach().to(D).reshape(x.shape[0], -1).numpy()


def _assert_close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-10) -> None:
    err = np.max(np.abs(got - want))
    assert err <= rtol * max(1.0, np.max(np.abs(want))), err


def _check(module: nn.Module, example: torch.Tensor, seed: int = 1, **kw: object) -> TracedModel:
    tm = trace(module, example, **kw)
    x = torch.randn((7, *example.shape[1:]), generator=torch.Generator().manual_seed(seed), dtype=D)
    ref = _forward(module.to(D), x)
    _assert_close(tm.spec.evaluate(x.reshape(7, -1).numpy()), ref)
    return tm


# ---------------------------------------------------------------------------- the package's models
@pytest.mark.parametrize("cls", BUILTINS)
def test_builtin_trace_matches_forward_and_hand_written_spec(cls: str) -> None:
    model, tm = _traced(cls)
    y = torch.randn(20, 5, generator=torch.Generator().manual_seed(2), dtype=D)
    got = tm.spec.evaluate(y.numpy())
    _assert_close(got, _forward(model, y))
    _assert_close(got, model.spec().evaluate(y.numpy()))
    assert tm.spec.input_dim == 5 and tm.spec.output_dim == 8
    assert list(tm.parameters) == [n for n, _ in model.named_parameters()]
    used = {n for p in tm.provenance.values() for n in p.parameters}
    assert used <= set(tm.parameters)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(BUILTINS), st.integers(0, 2**31 - 1), st.floats(0.01, 30.0))
def test_builtin_trace_equals_forward_on_random_inputs(cls: str, seed: int, scale: float) -> None:
    model, tm = _traced(cls)
    y = scale * torch.randn(4, 5, generator=torch.Generator().manual_seed(seed), dtype=D)
    _assert_close(tm.spec.evaluate(y.numpy()), _forward(model, y))


def test_builtin_thresholds_and_provenance() -> None:
    model, tm = _traced("LISTA")
    assert all(isinstance(a, SoftThreshold) for a in tm.spec.activations)
    for k in range(1, 4):  # W1[k] multiplies y directly: a rearrangement of one parameter
        p = tm.provenance[("weight", k, 0)]
        assert p.kind == "direct" and p.parameters == (f"W1.{k - 1}",) and p.scale == 1.0
        t = tm.provenance[("threshold", k, None)]
        assert t.kind == "direct" and t.parameters == (f"threshold.{k - 1}",) and "1-Lipschitz" in t.detail
    np.testing.assert_array_equal(tm.spec.weights[0][0], model.W1[0].detach().numpy())
    _, tmi = _traced("UnfoldedISTA")
    p = tmi.provenance[("weight", 2, 1)]  # I − γ AᵀA
    assert p.kind == "derived" and p.parameters == ("step.1",)
    assert tmi.formed_products  # AᵀA is a rounded product, and said so


def test_learned_rpca_is_not_representable() -> None:
    model = unfold.LearnedRPCA(2, 2, 6, 5)
    with pytest.raises(NotRepresentable, match=r"learned_rpca\.py:\d+"):
        trace(model, torch.randn(2, 6, 5, dtype=D))


def test_exact_mode_forms_no_products() -> None:
    model, tm = _traced("UnfoldedISTA")
    exact = trace(model, torch.randn(2, 5, dtype=D), exact=True)
    assert exact.formed_products == () and tm.formed_products
    assert any(isinstance(a, Identity) for a in exact.spec.activations)
    y = torch.randn(6, 5, dtype=D)
    _assert_close(exact.spec.evaluate(y.numpy()), _forward(model, y))


# ---------------------------------------------------------------------------- modules written here
class TiedLISTA(nn.Module):
    """One nn.Linear for W and one for S, reused by every layer; per-layer learned thresholds."""

    def __init__(self, m: int = 4, n: int = 6, layers: int = 4) -> None:
        super().__init__()
        self.S = nn.Linear(m, n, bias=False)
        self.W = nn.Linear(n, n, bias=False)
        self.theta = nn.Parameter(torch.linspace(0.05, 0.2, layers))
        self.layers = layers

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = soft_threshold(self.S(y), self.theta[0])
        for k in range(1, self.layers):
            x = soft_threshold(self.W(x) + self.S(y), self.theta[k])
        return x


def test_weight_tied_lista_keeps_one_parameter() -> None:
    torch.manual_seed(0)
    module = TiedLISTA()
    tm = _check(module, torch.randn(3, 4))
    assert list(tm.parameters) == [n for n, _ in module.named_parameters()] == ["theta", "S.weight", "W.weight"]
    uses = tm.uses("W.weight")
    assert sorted(uses) == [("weight", k, k - 1) for k in range(2, 5)]
    assert all(tm.provenance[u].kind == "direct" for u in uses)
    assert len(tm.uses("S.weight")) == 4
    for k in range(2, 5):
        np.testing.assert_array_equal(tm.spec.weights[k - 1][k - 1], module.W.weight.detach().to(D).numpy())
    with pytest.raises(KeyError, match="not a parameter"):
        tm.uses("nope")


class ProjectedGradient(nn.Module):
    """x ← clamp(x − γ Aᵀ(Ax − y), 0, 1), learned γ per layer."""

    def __init__(self, A: torch.Tensor, layers: int = 3) -> None:
        super().__init__()
        self.register_buffer("A", A)
        self.gamma = nn.Parameter(torch.full((layers,), 0.3, dtype=A.dtype))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = torch.zeros(y.shape[0], self.A.shape[1], dtype=y.dtype)
        for g in self.gamma:
            x = torch.clamp(x - g * (x @ self.A.T - y) @ self.A, 0.0, 1.0)
        return x


def test_projected_gradient_with_clamp() -> None:
    A = torch.randn(4, 6, generator=torch.Generator().manual_seed(0), dtype=D) / 2
    tm = _check(ProjectedGradient(A), torch.randn(2, 4, dtype=D))
    assert all(isinstance(a, BoxProjection) for a in tm.spec.activations)
    assert tm.provenance[("weight", 2, 1)].parameters == ("gamma",)


class ResidualReLU(nn.Module):
    def __init__(self, n: int = 5, hidden: int = 7) -> None:
        super().__init__()
        self.inp = nn.Linear(n, n)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(n, hidden), nn.ReLU(), nn.Linear(hidden, n)) for _ in range(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.inp(x))
        for block in self.blocks:
            h = h + block(h)
        return h


def test_residual_relu_net() -> None:
    torch.manual_seed(1)
    tm = _check(ResidualReLU(), torch.randn(4, 5))
    assert sum(isinstance(a, ReLU) for a in tm.spec.activations) == 3
    assert isinstance(tm.spec.activations[-1], Identity)  # the output has an offset (the last bias)


class Conv1dNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(1, 3, 3, padding=1)
        self.c2 = nn.Conv1d(3, 2, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c2(F.relu(self.c1(x))).flatten(1)


class Conv2dNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(2, 3, 3, padding=1)
        self.lin = nn.Linear(3 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.relu(self.c1(x)).reshape(x.shape[0], -1))


@pytest.mark.parametrize("batch", [1, 3])
def test_conv_nets(batch: int) -> None:
    torch.manual_seed(2)
    tm1 = _check(Conv1dNet(), torch.randn(batch, 1, 8))
    assert tm1.spec.input_dim == 8 and tm1.spec.dims[1] == 24
    assert tm1.provenance[("weight", 1, 0)].kind == "derived"  # a kernel entry repeats in the matrix
    tm2 = _check(Conv2dNet(), torch.randn(batch, 2, 4, 4))
    assert tm2.spec.input_dim == 32 and tm2.spec.output_dim == 5


def test_softshrink_net() -> None:
    torch.manual_seed(3)
    module = nn.Sequential(nn.Linear(4, 6), nn.Softshrink(0.3), nn.Linear(6, 6, bias=False), nn.Softshrink(0.1))
    tm = _check(module, torch.randn(2, 4))
    thetas = [float(a.theta) for a in tm.spec.activations if isinstance(a, SoftThreshold)]
    assert thetas == [0.3, 0.1]


class PerNeuron(nn.Module):
    """soft_threshold with a learned per-neuron threshold, and the plain pattern sign(v) * relu(|v| - t)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 5)
        self.theta = nn.Parameter(torch.tensor([0.1, -0.2, 0.3, 0.0, 0.5]))
        self.t = nn.Parameter(torch.tensor(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = soft_threshold(self.lin(x), self.theta)
        w = 2.0 * v - x.sum(-1, keepdim=True)
        return torch.sign(w) * torch.relu(w.abs() - self.t)


def test_per_neuron_threshold_and_plain_pattern() -> None:
    torch.manual_seed(4)
    module = PerNeuron()
    tm = _check(module, torch.randn(3, 4))
    first, second = tm.spec.activations
    np.testing.assert_array_equal(first.theta, np.maximum(module.theta.detach().to(D).numpy(), 0.0))
    assert float(second.theta) == pytest.approx(0.2, abs=1e-7)
    p = tm.provenance[("threshold", 1, None)]
    assert p.kind == "direct" and p.parameters == ("theta",) and "max" in p.detail
    assert tm.provenance[("threshold", 2, None)].parameters == ("t",)


def test_mutation_and_concatenation() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            z = torch.zeros(x.shape[0], 5, dtype=x.dtype)
            z[:, 1:4] = self.lin(x)
            return torch.cat([F.relu(z), x[:, :2]], dim=1)

    for batch in (1, 4):
        _check(M(), torch.randn(batch, 3))


def _line_of(obj: object, needle: str) -> int:
    lines, start = inspect.getsourcelines(obj)
    return start + next(i for i, line in enumerate(lines) if needle in line)


class Sine(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


class Square(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        return h * h


@pytest.mark.parametrize(("module", "op", "needle"), [(Sine(), "aten.sin", "torch.sin(x)"), (Square(), "aten.mul", "h * h")])
def test_unsupported_op_names_op_and_line(module: nn.Module, op: str, needle: str) -> None:
    line = _line_of(type(module).forward, needle)
    with pytest.raises(NotRepresentable) as info:
        from_torch(module, torch.randn(2, 3))
    msg = str(info.value)
    assert op in msg and f"test_tracing.py:{line}" in msg and needle in msg


class EinsumPhysics(nn.Module):
    """deepinv's compressed-sensing physics: ``A x`` and ``Aᵀ y`` by ``torch.einsum``, A a buffer or a parameter."""

    def __init__(self, A: torch.Tensor, learned: bool, swap: bool) -> None:
        super().__init__()
        if learned:
            self.A = nn.Parameter(A.clone())
        else:
            self.register_buffer("A", A.clone())
        self.swap = swap

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # A x, A constant or learned, in either operand order
        return torch.einsum("mn, in->im", self.A, x) if self.swap else torch.einsum("in, mn->im", x, self.A)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return torch.einsum("mn, im->in", self.A, y) if self.swap else torch.einsum("im, mn->in", y, self.A)


class EinsumISTA(nn.Module):
    """Two ISTA steps ``x ← soft(x − γ Aᵀ(Ax − y), θ)`` from ``x = soft(γ Aᵀ y, θ)``, through :class:`EinsumPhysics`."""

    def __init__(self, A: torch.Tensor, learned: bool, swap: bool) -> None:
        super().__init__()
        self.physics = EinsumPhysics(A, learned, swap)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = soft_threshold(0.5 * self.physics.adjoint(y), 0.1)
        return soft_threshold(x - 0.5 * self.physics.adjoint(self.physics(x) - y), 0.1)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("learned", [False, True])
@pytest.mark.parametrize("swap", [False, True])
def test_einsum_with_constant_or_parameter(batch: int, learned: bool, swap: bool) -> None:
    A = torch.randn(4, 6, generator=torch.Generator().manual_seed(8), dtype=D) / 2
    tm = _check(EinsumISTA(A, learned, swap), torch.randn(batch, 4, dtype=D))
    np.testing.assert_allclose(tm.spec.weights[0][0], 0.5 * A.T.numpy(), rtol=1e-15, atol=0)
    first, again, gram = tm.provenance[("weight", 1, 0)], tm.provenance[("weight", 2, 0)], tm.provenance[("weight", 2, 1)]
    if not learned:
        assert {first.kind, again.kind, gram.kind} == {"constant"}
        return
    for p in (first, again):  # each entry of A once per entry of γAᵀ: entry = scale · Aᵀ, as the label claims
        assert p.kind == "direct" and p.parameters == ("physics.A",)
    np.testing.assert_allclose(tm.spec.weights[1][0], again.scale * A.T.numpy(), rtol=1e-15, atol=0)
    assert first.scale == 0.5
    assert gram.kind == "derived" and gram.parameters == ("physics.A",)  # I − γAᵀA


def test_einsum_provenance_of_a_repeated_parameter_entry_is_derived() -> None:
    class Outer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=D))

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # entry (n, j) = x_n w_j: each w_j in every row n
            return F.relu(torch.einsum("in,j->inj", x, self.w).flatten(1))

    tm = _check(Outer(), torch.randn(3, 4, dtype=D))
    assert tm.provenance[("weight", 1, 0)].kind == "derived"


def test_einsum_of_one_operand() -> None:
    class Swap(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.relu(torch.einsum("bij->bji", x)).flatten(1)

    for batch in (1, 3):
        _check(Swap(), torch.randn(batch, 2, 3, dtype=D))


class EinsumRefused(nn.Module):
    def __init__(self, case: str) -> None:
        super().__init__()
        self.register_buffer("A", torch.randn(5, 4, generator=torch.Generator().manual_seed(9), dtype=D))
        self.case = case

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.case == "bilinear":
            return torch.einsum("in, in->i", x, x)
        if self.case == "three":
            return torch.einsum("in, mn, mk->ik", x, self.A, self.A)
        return torch.einsum("in, mn->m", x, self.A)  # sums over the batch


@pytest.mark.parametrize(("case", "why"), [("bilinear", "bilinear"), ("three", "3 operands"), ("batch", "mixes the samples")])
def test_einsum_refusals_name_op_and_line(case: str, why: str) -> None:
    needle = {"bilinear": '"in, in->i"', "three": '"in, mn, mk->ik"', "batch": '"in, mn->m"'}[case]
    line = _line_of(EinsumRefused.forward, needle)
    with pytest.raises(NotRepresentable) as info:
        from_torch(EinsumRefused(case), torch.randn(3, 4, dtype=D))
    msg = str(info.value)
    assert "aten.einsum" in msg and why in msg and f"test_tracing.py:{line}" in msg, msg


def test_message_names_module_and_the_forward_line_of_a_helper_call() -> None:
    class Physics(nn.Module):
        def helper(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sin(x)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.helper(2 * x)

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.physics = Physics()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.physics(x) + 1

    with pytest.raises(NotRepresentable) as info:
        from_torch(Model(), torch.randn(2, 3))
    msg = str(info.value)
    forward_line = _line_of(Physics.forward, "self.helper(2 * x)")  # torch.export records forward frames only
    assert f"test_tracing.py:{forward_line}" in msg and "module `physics` (Physics)" in msg, msg
    assert "aten.sin" in msg and "(`sin`)" in msg and "or in a function it calls" in msg, msg
    assert f"test_tracing.py:{_line_of(Physics.helper, 'torch.sin')}" not in msg


def test_batch_mixing_is_refused() -> None:
    class Center(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.relu(x - x.mean(0))

    with pytest.raises(NotRepresentable, match="mixes the samples"):
        from_torch(Center(), torch.randn(3, 4))


def test_batch_one_and_many_agree() -> None:
    torch.manual_seed(5)
    module = TiedLISTA()
    y = np.random.default_rng(0).standard_normal((5, 4))
    a = from_torch(module, torch.randn(1, 4)).evaluate(y)
    b = from_torch(module, torch.randn(6, 4)).evaluate(y)
    _assert_close(a, b, 1e-14)


def test_exported_program_round_trip() -> None:
    torch.manual_seed(6)
    module = TiedLISTA()
    program = torch.export.export(module, (torch.randn(2, 4),))
    buf = io.BytesIO()
    torch.export.save(program, buf)
    buf.seek(0)
    loaded = torch.export.load(buf)
    tm = trace(loaded)
    assert tm.details["export"] == "given program"
    assert any("soft_threshold" in str(n.target) for n in loaded.graph.nodes)
    y = np.random.default_rng(1).standard_normal((5, 4))
    _assert_close(tm.spec.evaluate(y), _forward(module.to(D), torch.as_tensor(y)), 1e-6)  # float32 program
    _assert_close(tm.spec.evaluate(y), from_torch(module, torch.randn(2, 4)).evaluate(y), 1e-12)
    with pytest.raises(ValueError, match="exported for input shape"):
        from_torch(loaded, torch.randn(3, 4))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="needs example_input"):
        from_torch(Sine())
    with pytest.raises(ValueError, match="non-finite"):
        from_torch(Sine(), torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(TypeError, match=r"nn\.Module or a torch\.export\.ExportedProgram"):
        from_torch(lambda x: x, torch.ones(1, 2))


# ---------------------------------------------------------------------------- the soft-threshold op
@pytest.mark.parametrize("per_neuron", [False, True])
def test_soft_threshold_op_matches_formula(per_neuron: bool) -> None:
    gen = torch.Generator().manual_seed(7)
    v = torch.randn(6, 5, generator=gen, dtype=D, requires_grad=True)
    theta = (torch.randn(5, generator=gen, dtype=D) if per_neuron else torch.tensor(0.3, dtype=D)).requires_grad_(True)
    g = torch.randn(6, 5, generator=gen, dtype=D)
    formula = torch.sign(v) * torch.relu(v.abs() - torch.clamp(theta, min=0.0))
    for out in (soft_threshold(v, theta), torch.ops.unfoldtheory.soft_threshold(v, theta)):
        torch.testing.assert_close(out, formula, rtol=0, atol=0)
        got = torch.autograd.grad(out, (v, theta), g)
        want = torch.autograd.grad(formula, (v, theta), g, retain_graph=True)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-15, atol=1e-15)
    with pytest.raises(ValueError, match="does not broadcast"):
        soft_threshold(v, torch.ones(3, dtype=D))


def test_builtin_models_export_one_soft_threshold_node_per_layer() -> None:
    model, tm = _traced("LISTA")
    nodes = [n for n in tm.program.graph.nodes if "unfoldtheory.soft_threshold" in str(n.target)]
    assert len(nodes) == model.layers
