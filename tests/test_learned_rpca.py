"""LearnedRPCA: the iteration against an independent numpy implementation, the truncated-SVD gradient
against finite differences, the model interface, training, checkpoints and input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unfoldtheory.problems import RobustPCA
from unfoldtheory.spec import NotRepresentable
from unfoldtheory.train import fit
from unfoldtheory.unfold import MODEL_CLASSES, LearnedRPCA, load, save
from unfoldtheory.unfold.learned_rpca import DEFAULT_DECAY, default_zeta0, scaled_gradient_rpca, top_singular_triplets


def _numpy_lrpca(Y: np.ndarray, r: int, zetas: list[float], etas: list[float]) -> list[np.ndarray]:
    """LRPCA for one matrix, written directly from Cai, Liu & Yin (2021) with numpy's SVD and explicit inverses."""
    def st(v, t):
        return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)

    W, s, Vt = np.linalg.svd(Y - st(Y, zetas[0]))
    U, V = W[:, :r] * np.sqrt(s[:r]), Vt[:r].T * np.sqrt(s[:r])
    out = []
    for zeta, eta in zip(zetas[1:], etas, strict=True):
        S = st(Y - U @ V.T, zeta)
        E = Y - U @ V.T - S
        U, V = U + eta * E @ V @ np.linalg.inv(V.T @ V), V + eta * E.T @ U @ np.linalg.inv(U.T @ U)
        out.append(U @ V.T)
    return out


def _rel_err(Lhat: np.ndarray, L: np.ndarray) -> float:
    return float(np.mean(np.linalg.norm(Lhat - L, axis=(-2, -1)) / np.linalg.norm(L, axis=(-2, -1))))


@pytest.fixture(scope="module")
def data():
    p = RobustPCA(14, 10, 2, 0.1, seed=3)
    Y, L = p.sample(5, seed=0)
    return p, Y, L


# --------------------------------------------------------------------------- the iteration


def test_forward_shapes_and_iterates(data):
    _, Y, _ = data
    model = LearnedRPCA(2, 4, 14, 10)
    out = model(torch.as_tensor(Y))
    its = model(Y, return_iterates=True)  # numpy input too
    assert out.shape == (5, 14, 10) and out.dtype == torch.float64
    assert len(its) == 4 and all(L.shape == (5, 14, 10) for L in its)
    torch.testing.assert_close(its[-1], out, rtol=0, atol=0)
    assert all(torch.linalg.matrix_rank(L).max() <= 2 for L in its)  # U_k V_kᵀ has rank ≤ r


def test_model_matches_an_independent_numpy_implementation(data):
    _, Y, _ = data
    model = LearnedRPCA(2, 5, 14, 10, zeta0=0.05, eta0=0.6, decay=0.8)
    with torch.no_grad():
        model.step[2].fill_(0.3)  # a non-constant schedule
        model.threshold[3].fill_(0.002)
        its = [L.numpy() for L in model(Y, return_iterates=True)]
    zetas = [t.item() for t in model.threshold]
    etas = [s.item() for s in model.step]
    for i in range(Y.shape[0]):
        ref = _numpy_lrpca(Y[i], 2, zetas, etas)
        for k in range(5):
            np.testing.assert_allclose(its[k][i], ref[k], rtol=0, atol=1e-10 * np.abs(ref[k]).max())


def test_classical_initialisation_is_scaled_gradient_rpca_exactly(data):
    _, Y, _ = data
    model = LearnedRPCA(2, 6, 14, 10)
    assert model.zeta0 == default_zeta0(14, 10, 2) and model.decay == DEFAULT_DECAY
    np.testing.assert_allclose([t.item() for t in model.threshold], [model.zeta0 * DEFAULT_DECAY**k for k in range(7)],
                               rtol=1e-15)
    with torch.no_grad():
        its = np.stack([L.numpy() for L in model(Y, return_iterates=True)])
    classical = scaled_gradient_rpca(Y, 2, 6, model.zeta0, DEFAULT_DECAY, 0.5, return_iterates=True)
    np.testing.assert_array_equal(classical, its)
    np.testing.assert_array_equal(scaled_gradient_rpca(Y, 2, 6, model.zeta0), its[-1])
    np.testing.assert_array_equal(scaled_gradient_rpca(Y[1], 2, 6, model.zeta0), its[-1][1])  # a single matrix


def test_classical_iteration_recovers_the_low_rank_part():
    p = RobustPCA(30, 30, 2, 0.1, seed=0)
    Y, L = p.sample(6, seed=1)
    its = scaled_gradient_rpca(Y, 2, 20, default_zeta0(30, 30, 2), return_iterates=True)
    errors = [_rel_err(x, L) for x in its]
    assert errors[-1] < 0.1 * errors[0]
    assert errors[-1] < 2e-2


def test_truncated_svd_gradient_matches_finite_differences_and_torch():
    gen = torch.Generator().manual_seed(0)
    for m, n, r in [(6, 6, 2), (7, 4, 2), (4, 7, 3)]:
        M = torch.randn(2, m, n, generator=gen, dtype=torch.float64, requires_grad=True)
        T = torch.randn(2, m, n, generator=gen, dtype=torch.float64)

        def loss(X, svd, r=r, T=T):
            U, s, V = svd(X)
            Uf, Vf = U * s.sqrt()[:, None, :], V * s.sqrt()[:, None, :]
            return ((Uf @ Vf.mT - T) ** 2).sum() + s.sum()

        ours = lambda X, r=r: top_singular_triplets(X, r)  # noqa: E731

        def native(X, r=r):
            W, s, Vh = torch.linalg.svd(X, full_matrices=False)
            return W[..., :r], s[..., :r], Vh[..., :r, :].mT

        assert torch.autograd.gradcheck(lambda X, f=ours: loss(X, f), (M,))
        g_ours, = torch.autograd.grad(loss(M, ours), M)
        g_native, = torch.autograd.grad(loss(M, native), M)
        torch.testing.assert_close(g_ours, g_native, rtol=1e-10, atol=1e-12)


def test_truncated_svd_gradient_is_finite_with_repeated_trailing_singular_values():
    """Y − ST_ζ(Y) can have exactly repeated zero singular values (rows of S that vanish); torch's own SVD
    backward divides 0 by 0 there."""
    M = torch.zeros(1, 6, 6, dtype=torch.float64)
    M[0, :3, :3] = torch.tensor([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    M.requires_grad_(True)
    U, s, V = top_singular_triplets(M, 2)
    g, = torch.autograd.grad(((U * s[:, None, :]) @ V.mT).sum() + s.sum(), M)
    assert torch.isfinite(g).all()
    assert torch.autograd.gradcheck(lambda X: (lambda U, s, V: (U * s[:, None, :]) @ V.mT)(*top_singular_triplets(X, 2)),
                                    (M,))


# --------------------------------------------------------------------------- the model interface


def test_spec_is_not_representable():
    with pytest.raises(NotRepresentable, match="bilinear"):
        LearnedRPCA(2, 3, 8, 8).spec()


def test_parameters_layers_and_projection():
    model = LearnedRPCA(2, 4, 8, 9)
    assert model.num_parameters() == 2 * 4 + 1
    assert model.layers == 4
    assert len(model.layer_parameters(0)) == 3 and all(len(model.layer_parameters(k)) == 2 for k in range(1, 4))
    owned = {id(p) for k in range(4) for p in model.layer_parameters(k)}
    assert owned == {id(p) for p in model.parameters()}
    with pytest.raises(ValueError, match="out of range"):
        model.layer_parameters(4)
    with torch.no_grad():
        model.threshold[1].fill_(-0.3)
        model.step[2].fill_(-1.0)
    model.project_parameters()
    assert model.threshold[1].item() == 0.0 and model.step[2].item() == 0.0
    assert "LearnedRPCA" in MODEL_CLASSES


def test_flops_per_sample_counts_the_documented_operations():
    d1, d2, r, K = 12, 9, 2, 3
    model = LearnedRPCA(r, K, d1, d2)
    N = max(d1, d2)
    init = 4 * d1 * d2 + 26 * N**3 + (d1 + d2) * r + r + 2 * d1 * d2 * r
    layer = 5 * d1 * d2 + 6 * d1 * d2 * r + 4 * (d1 + d2) * r * r + 4 * r**3 // 3 + 2 * (d1 + d2) * r
    assert model.flops_per_sample() == init + K * layer
    assert LearnedRPCA(r, K + 1, d1, d2).flops_per_sample() - model.flops_per_sample() == layer
    assert LearnedRPCA(r, K, zeta0=0.1).flops_per_sample(d1, d2) == model.flops_per_sample()
    with pytest.raises(ValueError, match="matrix size"):
        LearnedRPCA(r, K, zeta0=0.1).flops_per_sample()


def test_config_and_save_load_round_trip(tmp_path, data):
    _, Y, _ = data
    model = LearnedRPCA(2, 3, 14, 10)
    with torch.no_grad():
        model.threshold[2].mul_(0.5)
        model.step[1].fill_(0.8)
    cfg = model.config()
    assert cfg["class"] == "LearnedRPCA" and cfg["rank"] == 2 and cfg["d1"] == 14
    path = save(model, tmp_path / "lrpca.pt")
    loaded = load(path)
    assert isinstance(loaded, LearnedRPCA)
    with torch.no_grad():
        torch.testing.assert_close(loaded(Y), model(Y), rtol=0, atol=0)
    rebuilt = LearnedRPCA.from_checkpoint(cfg, model.state_dict())
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.config() == cfg


def test_float32_model_runs(data):
    _, Y, _ = data
    model = LearnedRPCA(2, 4, 14, 10).float()
    out = model(torch.as_tensor(Y, dtype=torch.float32))
    assert out.dtype == torch.float32
    with torch.no_grad():
        ref = LearnedRPCA(2, 4, 14, 10)(Y)
    torch.testing.assert_close(out.double(), ref, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- training


def _val_error(model: LearnedRPCA, Y: np.ndarray, L: np.ndarray) -> float:
    with torch.no_grad():
        return float(((model(Y) - torch.as_tensor(L)) ** 2).sum(dim=(1, 2)).mean())


def test_end_to_end_training_lowers_the_error():
    p = RobustPCA(12, 12, 2, 0.1, seed=0)
    Yv, Lv = p.sample(16, seed=99)
    model = LearnedRPCA(2, 4, 12, 12)
    before = _val_error(model, Yv, Lv)
    history = fit(model, p, "end_to_end", steps=40, seed=0, batch_size=8, lr=5e-2, progress=False)
    after = _val_error(model, Yv, Lv)
    assert after < 0.8 * before, (before, after)
    assert all(np.isfinite(history.loss))
    assert all(t.item() >= 0 for t in model.threshold) and all(s.item() >= 0 for s in model.step)


def test_layerwise_and_unsupervised_schemes_run():
    p = RobustPCA(10, 8, 2, 0.1, seed=1)
    model = LearnedRPCA(2, 3, 10, 8)
    history = fit(model, p, "layerwise", steps=12, seed=0, batch_size=4, progress=False)
    assert set(history.stage) == {1, 2, 3, 4}
    assert all(np.isfinite(history.loss))
    model = LearnedRPCA(2, 3, 10, 8)
    history = fit(model, p, "unsupervised", steps=5, seed=0, batch_size=4, progress=False)
    assert all(np.isfinite(history.loss))


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_clear_errors():
    model = LearnedRPCA(2, 3, 6, 5)
    with pytest.raises(ValueError, match="expected"):
        model(torch.zeros(6, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"expected \(batch, 6, 5\)"):
        model(torch.zeros(2, 5, 6, dtype=torch.float64))
    bad = torch.ones(1, 6, 5, dtype=torch.float64)
    bad[0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        model(bad)
    with pytest.raises(ValueError, match="non-finite"):
        model(np.full((1, 6, 5), np.inf))
    with pytest.raises(ValueError, match="rank < 2"):
        model(torch.zeros(1, 6, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="rank 3 exceeds"):
        LearnedRPCA(3, 2, zeta0=0.1)(torch.randn(1, 6, 2, dtype=torch.float64))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"rank": 4, "layers": 2, "d1": 3, "d2": 8}, "rank 4 exceeds d1"),
    ({"rank": 0, "layers": 2, "d1": 3, "d2": 8}, "rank"),
    ({"rank": 1, "layers": 0, "d1": 3, "d2": 8}, "layers"),
    ({"rank": 1, "layers": 2}, "zeta0 is needed"),
    ({"rank": 1, "layers": 2, "d1": 3, "d2": 8, "zeta0": -1.0}, "zeta0"),
    ({"rank": 1, "layers": 2, "d1": 3, "d2": 8, "eta0": float("nan")}, "eta0"),
    ({"rank": 1, "layers": 2, "d1": 3, "d2": 8, "decay": -0.5}, "decay"),
])
def test_bad_constructor_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LearnedRPCA(**kwargs)
