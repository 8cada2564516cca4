"""Parameter Lipschitz constants and the generalization suite on modules that are not package models (issue 14,
item 2): the traced DAG recursion against the hand-written one, against sampled ratios and witnesses, weight tying
counted once, and clear refusals (never an AttributeError)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import user_modules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from user_modules import Sine, unit_columns

from unfoldtheory.generalization import parameter_lipschitz, parameter_lipschitz_estimate
from unfoldtheory.generalization.covering import gap_terms
from unfoldtheory.generalization.parameter_lipschitz import flat_parameters, model_size, parameter_index, with_parameters
from unfoldtheory.generalization.suite import generalization_bounds
from unfoldtheory.generalization.traced_lipschitz import assemble_traced, traced_layers, verify_traced_recursion
from unfoldtheory.oracle.parameter import traced_recursion_holds
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.spec import NotRepresentable, unrolled
from unfoldtheory.tracing.provenance import Provenance, constant, parameter
from unfoldtheory.unfold import LISTA, UnfoldedISTA
from unfoldtheory.unfold.soft_threshold import soft_threshold

M, N, K = 4, 6, 3


def _matrix(seed: int) -> np.ndarray:
    return unit_columns(M, N, seed)


def TiedLISTA(A: np.ndarray, layers: int, lam: float) -> user_modules.TiedLISTA:
    """LISTA with one ``nn.Linear`` pair reused by every layer and one shared threshold ``λ/L`` (weight tying)."""
    return user_modules.TiedLISTA(A, layers, lam / float(np.linalg.norm(A, 2) ** 2))


class StepISTA(nn.Module):
    """A user's unfolded ISTA with one learned step: its iterate weight ``I − γAᵀA`` is derived from ``γ``."""

    def __init__(self, A: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("A", torch.as_tensor(A))
        self.step = nn.Parameter(torch.tensor(0.5, dtype=torch.float64))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        x = soft_threshold(self.step * (y @ self.A), 0.05)
        return soft_threshold(x - self.step * ((x @ self.A.T - y) @ self.A), 0.05)


class Fixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("B", torch.as_tensor(_matrix(5)))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return torch.relu(y @ self.B)


def _perturbed(model: nn.Module, scale: float, seed: int) -> nn.Module:
    theta = flat_parameters(model)
    return with_parameters(model, theta * (1 + scale * np.random.default_rng(seed).standard_normal(theta.size)))


def _hand_trace(W1: list[np.ndarray], W2: list[np.ndarray], thetas: list[float], names: dict[str, list[str]]) -> SimpleNamespace:
    """A traced LISTA written by hand: the spec of :func:`unrolled` and every entry direct in its parameter."""
    spec = unrolled([None, *W2], W1, [max(t, 0.0) for t in thetas])
    prov = {("readout", len(W1), None): constant("I")}
    for k in range(1, len(W1) + 1):
        prov[("weight", k, 0)] = parameter(names["W1"][k - 1])
        prov[("threshold", k, None)] = parameter(names["theta"][k - 1])
        if k > 1:
            prov[("weight", k, k - 1)] = parameter(names["W2"][k - 2])
    return SimpleNamespace(spec=spec, provenance=prov, parameters={})


def _lista_trace(model: LISTA) -> SimpleNamespace:
    get = lambda t: t.detach().numpy().copy()  # noqa: E731
    names = {"W1": [f"W1.{k}" for k in range(K)], "W2": [f"W2.{k}" for k in range(K - 1)],
             "theta": [f"threshold.{k}" for k in range(K)]}
    thetas = [float(t.detach()) for t in model.threshold]
    traced = _hand_trace([get(w) for w in model.W1], [get(w) for w in model.W2], thetas, names)
    traced.parameters = dict(model.named_parameters())
    return traced


def _tied_trace(model: TiedLISTA) -> SimpleNamespace:
    W1, W2 = model.inject.weight.detach().numpy(), model.mix.weight.detach().numpy()
    names = {"W1": ["inject.weight"] * K, "W2": ["mix.weight"] * (K - 1), "theta": ["theta"] * K}
    traced = _hand_trace([W1] * K, [W2] * (K - 1), [float(model.theta.detach())] * K, names)
    traced.parameters = dict(model.named_parameters())
    return traced


def _generic(model: nn.Module, traced: SimpleNamespace, R: float, r: float) -> tuple[float, list[float], float, dict]:
    index, names = parameter_index(model)
    states, readout = traced_layers(traced, index, R, r)
    K_L, X, C, out = assemble_traced(states, readout, R, len(names))
    cert = {"input_radius": R, "parameter_radius": r, "K_L": K_L, "state_bounds": X, "states": states, "readout": readout,
            "num_tensors": len(names), "output_bound": out}
    return K_L, C, out, cert


@pytest.fixture(scope="module")
def tied() -> TiedLISTA:
    return _perturbed(TiedLISTA(_matrix(0), K, 0.1), 0.2, 1)


def _outputs(model: nn.Module, theta: np.ndarray, Y: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return with_parameters(model, theta)(torch.as_tensor(Y)).numpy()


# ---------------------------------------------------------------------------- the recursion itself
def test_hand_traces_are_the_forward_passes(tied):
    Y = np.random.default_rng(3).standard_normal((5, M))
    with torch.no_grad():
        assert np.allclose(_tied_trace(tied).spec(Y), tied(torch.as_tensor(Y)).numpy(), atol=1e-12)
        lista = _perturbed(LISTA(_matrix(1), K, 0.1), 0.3, 2)
        assert np.allclose(_lista_trace(lista).spec(Y), lista(torch.as_tensor(Y)).numpy(), atol=1e-12)


@pytest.mark.parametrize(("R", "r"), [(1.0, 0.0), (2.0, 0.05), (0.3, 0.2)])
def test_generic_recursion_equals_the_hand_written_one_on_LISTA(R, r):
    lista = _perturbed(LISTA(_matrix(1), K, 0.1), 0.3, 2)
    old = parameter_lipschitz(lista, R, r)
    assert old.details["route"] == "hand-written layer recursion" and old.certified
    K_L, _, out, cert = _generic(lista, _lista_trace(lista), R, r)
    assert verify_traced_recursion(cert)
    assert K_L == pytest.approx(old.value, rel=1e-12) and out == pytest.approx(old.details["output_bound"], rel=1e-12)


def test_a_tied_parameter_gets_the_sum_of_its_untied_coefficients(tied):
    """The recursion is linear in the perturbations: tying the layers of a LISTA sums the per-layer coefficients."""
    untied = LISTA(_matrix(0), K, 0.1)
    with torch.no_grad():
        for w in untied.W1:
            w.copy_(tied.inject.weight)
        for w in untied.W2:
            w.copy_(tied.mix.weight)
        for t in untied.threshold:
            t.copy_(tied.theta)
    _, C_tied, out_tied, _ = _generic(tied, _tied_trace(tied), 1.5, 0.02)
    _, C_untied, out_untied, _ = _generic(untied, _lista_trace(untied), 1.5, 0.02)
    idx, _ = parameter_index(untied)
    sums = {}
    for name, i in idx.items():
        sums[name.split(".")[0]] = sums.get(name.split(".")[0], 0.0) + C_untied[i]
    tied_names = parameter_index(tied)[1]
    assert sorted(tied_names) == ["inject.weight", "mix.weight", "theta"]
    expected = {"inject.weight": sums["W1"], "mix.weight": sums["W2"], "theta": sums["threshold"]}
    assert C_tied == pytest.approx([expected[name] for name in tied_names], rel=1e-12)
    assert out_tied == pytest.approx(out_untied, rel=1e-12)


@pytest.mark.parametrize(("R", "r"), [(1.0, 0.0), (3.0, 0.1)])
def test_every_stored_norm_passes_the_exact_oracle(tied, R, r):
    traced = _tied_trace(tied)
    cert = _generic(tied, traced, R, r)[3]
    assert traced_recursion_holds(traced.spec, SimpleNamespace(certificate=cert))
    low = {**cert, "states": [dict(S) for S in cert["states"]]}
    low["states"][1]["edges"] = [[j, a * (1 - 1e-6), p, s] for j, a, p, s in cert["states"][1]["edges"]]
    assert not traced_recursion_holds(traced.spec, SimpleNamespace(certificate=low))


def test_the_exact_recheck_rejects_a_tampered_certificate(tied):
    _, _, _, cert = _generic(tied, _tied_trace(tied), 1.0, 0.1)
    assert verify_traced_recursion(cert)
    for key, change in [("K_L", 0.999999), ("output_bound", 0.999), ("state_bounds", 0.5)]:
        bad = {**cert, key: [*cert[key][:-1], cert[key][-1] * change] if key == "state_bounds" else cert[key] * change}
        assert not verify_traced_recursion(bad), key


def test_derived_and_unlabelled_entries_are_refused_with_their_names(tied):
    traced = _tied_trace(tied)
    index, _ = parameter_index(tied)
    traced.provenance[("weight", 2, 1)] = Provenance(("mix.weight",), "derived", 1.0, "sub(I, mix.weight)")
    with pytest.raises(ValueError, match=r"W\[2\]\[1\] is derived .*sub\(I, mix.weight\)"):
        traced_layers(traced, index, 1.0, 0.1)
    del traced.provenance[("weight", 2, 1)]
    with pytest.raises(ValueError, match=r"W\[2\]\[1\] has no provenance entry"):
        traced_layers(traced, index, 1.0, 0.1)
    traced = _tied_trace(tied)
    traced.provenance[("weight", 2, 1)] = Provenance(("mix.weight",), "direct", 0.5, "half(mix.weight)")
    with pytest.raises(ValueError, match="not a rearrangement"):  # ‖W‖_F > 0.5‖p‖_F: the label is inconsistent
        traced_layers(traced, index, 1.0, 0.1)


# ---------------------------------------------------------------------------- the public functions on any module
def _ball_point(rng: np.random.Generator, centre: np.ndarray, r: float) -> np.ndarray:
    d = rng.standard_normal(centre.size)
    return centre + d / np.linalg.norm(d) * r * rng.random() ** (1 / centre.size)


def test_the_tracer_gives_the_hand_trace_and_its_bound(tied):
    from unfoldtheory.tracing import trace

    traced = trace(tied, torch.zeros(1, M, dtype=torch.float64))
    assert {prov.kind for key, prov in traced.provenance.items() if key[0] != "readout"} <= {"direct", "constant"}
    real = _generic(tied, traced, 1.3, 0.05)[0]
    assert real == pytest.approx(_generic(tied, _tied_trace(tied), 1.3, 0.05)[0], rel=1e-12)
    bound = parameter_lipschitz(tied, 1.3, 0.05, example_input=np.zeros(M))
    assert bound.certified and bound.details["route"] == "traced DAG recursion" and bound.value == real


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), r=st.sampled_from([0.0, 0.01, 0.1]), R=st.floats(0.3, 4.0))
def test_certified_bound_dominates_sampled_ratios_and_the_witness(tied, seed, r, R):
    bound = parameter_lipschitz(tied, R, r, example_input=np.zeros(M))
    assert bound.certified and bound.details["num_parameters"] == N * M + N * N + 1 == model_size(tied)
    rng = np.random.default_rng(seed)
    centre = flat_parameters(tied)
    Y = rng.standard_normal((6, M))
    Y *= R / np.linalg.norm(Y, axis=1, keepdims=True)
    for _ in range(3):
        t1 = _ball_point(rng, centre, r)
        t2 = _ball_point(rng, centre, r) if r > 0 else t1 + 1e-6 * rng.standard_normal(centre.size)
        ratios = np.linalg.norm(_outputs(tied, t2, Y) - _outputs(tied, t1, Y), axis=1) / np.linalg.norm(t2 - t1)
        assert ratios.max() <= bound.value * (1 + 1e-9)
        assert np.linalg.norm(_outputs(tied, t1, Y), axis=1).max() <= bound.details["output_bound"] * (1 + 1e-9)
    est = parameter_lipschitz_estimate(tied, R, r, restarts=1, steps=3, seed=seed, progress=False, example_input=Y[0])
    assert est.kind == "lower" and 0 < est.value <= bound.value
    assert est.certified == (r > 0) and est.certificate["evaluated"]


def test_modules_without_parameters_untraceable_ops_and_derived_entries_are_refused():
    with pytest.raises(ValueError, match="no learned parameters"):
        parameter_lipschitz(Fixed(), 1.0, 0.1, example_input=np.zeros(M))
    with pytest.raises(ValueError, match="no learned parameters"):
        parameter_lipschitz_estimate(Fixed(), 1.0, 0.1, example_input=np.zeros(M))
    with pytest.raises(NotRepresentable, match="sin"):
        parameter_lipschitz(Sine(M, N), 1.0, 0.1, example_input=np.zeros(M))
    with pytest.raises(ValueError, match="derived"):
        parameter_lipschitz(StepISTA(_matrix(0)), 1.0, 0.1, example_input=np.zeros(M))
    with pytest.raises(ValueError, match="example_input"):
        parameter_lipschitz_estimate(Sine(M, N), 1.0, 0.1)
    # the estimate needs only the forward pass: it works where the certified route refuses, and says why it is uncertified
    for module in (Sine(M, N), StepISTA(_matrix(0))):
        est = parameter_lipschitz_estimate(module, 1.0, 0.1, restarts=1, steps=2, progress=False, example_input=np.ones(M))
        assert est.value > 0 and not est.certified and "no rigorous evaluation" in est.details["reason"]
    with pytest.raises(ValueError, match="center='zero'"):
        parameter_lipschitz(TiedLISTA(_matrix(0), K, 0.1), 1.0, 0.1, center="init", example_input=np.zeros(M))


# ---------------------------------------------------------------------------- the generalization suite
@pytest.fixture(scope="module")
def data():
    problem = SparseRecovery(M, N, 0.3, seed=0)
    return problem.sample(80, seed=1), problem.sample(60, seed=2)


def test_the_suite_runs_on_a_weight_tied_module_and_counts_the_tied_weights_once(tied, data):
    from unfoldtheory.generalization.covering import covering_bound

    train, test = data
    result = generalization_bounds(tied, train, test)
    D = N * M + N * N + 1  # distinct: the K uses of each nn.Linear are one parameter
    assert result["parameters"] == D
    assert {"covering", "spectral", "l-inf peeling", "PAC-Bayes (data-free prior)"} <= set(result["bounds"])
    assert "package model" in result["errors"]["spectral PAC-Bayes"] and "lam" in result["errors"]["design rule"]
    assert "origin" in result["bounds"]["covering"]["statement"]
    R, B = (float(np.max(np.linalg.norm(a, axis=1))) for a in train)
    bound = covering_bound(tied, train[0].shape[0], 0.05, R, B, center="zero", example_input=train[0][:1])
    d = bound.details
    assert bound.certified and d["num_parameters"] == D and d["center"] == "zero"
    args = (d["num_samples"], d["delta_used"])
    rest = (d["K_L"], d["parameter_radius"], d["model_output_bound"] if not d["clipped"] else B, B)
    assert d["rademacher"] == pytest.approx(gap_terms(*args, D, *rest)["rademacher"], rel=1e-12)
    untied = K * N * M + (K - 1) * N * N + K
    assert gap_terms(*args, untied, *rest)["rademacher"] > 1.5 * d["rademacher"]


@pytest.mark.parametrize(("module", "why"), [(Fixed(), "no learned parameters"), (Sine(M, N), "sin"),
                                             (StepISTA(_matrix(0)), "derived")], ids=["no parameters", "sin", "derived step"])
def test_the_suite_lists_what_does_not_apply_instead_of_raising(module, why, data):
    train, test = data
    result = generalization_bounds(module, train, test)
    assert result["parameters"] == model_size(module)
    assert result["gap"] == pytest.approx(result["test_loss"] - result["train_loss"])
    assert why in result["errors"]["covering"] and "package model" in result["errors"]["spectral PAC-Bayes"]
    assert set(result["bounds"]) | set(result["errors"]) >= {"covering", "spectral", "l-inf peeling", "design rule"}
    assert all("AttributeError" not in message for message in result["errors"].values())
    if model_size(module):  # needs only the forward pass and the parameters
        assert "PAC-Bayes (data-free prior)" in result["bounds"]
    else:
        assert "learned parameters" in result["errors"]["PAC-Bayes (data-free prior)"]


def test_a_package_model_outside_the_hand_written_recursion_is_refused_by_name():
    from unfoldtheory.unfold import UnfoldedFISTA

    with pytest.raises(ValueError, match="derived"):
        parameter_lipschitz(UnfoldedFISTA(_matrix(0), K, 0.1), 1.0, 0.1)
    assert parameter_lipschitz(UnfoldedISTA(_matrix(0), K, 0.1), 1.0, 0.1).details["route"] == "hand-written layer recursion"
