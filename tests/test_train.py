"""Training: every scheme lowers its own loss, the loss is the one the docstring defines, seeds
reproduce, learning rates are relative, projection keeps thresholds >= 0, and bad arguments raise."""

import numpy as np
import pytest
import torch

from unfoldtheory.problems.sparse_recovery import SparseRecovery
from unfoldtheory.train import SCHEMES, History, evaluate_nmse, fit
from unfoldtheory.unfold import LISTA, LISTACP, HybridISTA, UnfoldedISTA

PROBLEM = SparseRecovery(10, 20, 0.1, lam=0.05, seed=1)
VAL_Y, VAL_X = PROBLEM.sample(400, seed=12345)
K = 4


def _fit(model, scheme="end_to_end", steps=20, **kwargs):
    kwargs.setdefault("progress", False)
    kwargs.setdefault("batch_size", 32)
    return fit(model, PROBLEM, scheme, steps=steps, **kwargs)


@torch.no_grad()
def _own_loss(model, scheme, Y, X):
    """The scheme's loss on (Y, X), computed in numpy from the iterates (squared error summed over
    coordinates and averaged over the batch; the Lasso objective for "unsupervised")."""
    its = [x.numpy() for x in model(Y, return_iterates=True)]
    if scheme == "unsupervised":
        return float(np.mean(PROBLEM.objective(its[-1], Y)))
    errs = [float(np.mean(np.sum((x - X) ** 2, axis=1))) for x in its]
    return float(np.mean(errs)) if scheme == "per_iteration" else errs[-1]


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------------- each scheme learns
@pytest.mark.parametrize("cls", [UnfoldedISTA, LISTA], ids=lambda c: c.__name__)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_each_scheme_lowers_its_own_loss(scheme, cls):
    model = cls(PROBLEM.A, K, PROBLEM.lam)
    before = _own_loss(model, scheme, VAL_Y, VAL_X)
    nmse_before = evaluate_nmse(model, VAL_Y, VAL_X)
    history = _fit(model, scheme, steps=150, lr=0.05, seed=0)
    assert isinstance(history, History) and history.scheme == scheme and history.steps == 150
    assert len(history.loss) == 150 and all(np.isfinite(history.loss))
    after = _own_loss(model, scheme, VAL_Y, VAL_X)
    assert after < 0.97 * before, (before, after)
    assert evaluate_nmse(model, VAL_Y, VAL_X) < nmse_before - 0.3


@pytest.mark.parametrize("scheme", SCHEMES)
def test_first_loss_is_the_documented_loss(scheme):
    """With a one-sample training set every batch is that sample, so the first recorded loss is the
    scheme's loss at the initial model (layerwise starts on the error of x_1)."""
    y, x = PROBLEM.sample(1, seed=7)
    model = LISTACP(PROBLEM.A, K, PROBLEM.lam)
    its = [t.detach().numpy() for t in model(y, return_iterates=True)]
    err = [float(np.sum((t - x) ** 2)) for t in its]
    expected = {"end_to_end": err[-1], "per_iteration": float(np.mean(err)), "layerwise": err[0],
                "unsupervised": float(PROBLEM.objective(its[-1], y)[0])}[scheme]
    history = _fit(model, scheme, steps=3, lr=1e-3, data=(y, x), batch_size=5)
    assert history.loss[0] == pytest.approx(expected, rel=1e-12)


def test_per_iteration_layer_weights_are_used():
    y, x = PROBLEM.sample(1, seed=8)
    model = UnfoldedISTA(PROBLEM.A, K, PROBLEM.lam)
    err = [float(np.sum((t.detach().numpy() - x) ** 2)) for t in model(y, return_iterates=True)]
    w = np.array([0.0, 2.0, 0.0, 1.0])
    history = _fit(model, "per_iteration", steps=1, lr=1e-3, data=(y, x), layer_weights=w)
    assert history.loss[0] == pytest.approx(float(w @ err), rel=1e-12)


# ---------------------------------------------------------------------------- determinism
def test_same_seed_reproduces_and_another_seed_differs():
    runs = []
    for seed in (3, 3, 4):
        model = UnfoldedISTA(PROBLEM.A, K, PROBLEM.lam)
        history = _fit(model, steps=15, seed=seed, lr=0.05)
        assert history.seed == seed
        runs.append((history.loss, _state(model)))
    (loss_a, state_a), (loss_b, state_b), (loss_c, state_c) = runs
    assert loss_a == loss_b
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert loss_a != loss_c
    assert any(not torch.equal(state_a[k], state_c[k]) for k in state_a)


# ---------------------------------------------------------------------------- fixed training sets
class _NoSampling:
    """A problem whose generator must not be called: fit has to use the fixed training set."""

    def sample(self, num, seed=None):
        raise AssertionError("fit sampled fresh data although a training set was given")

    def torch_objective(self, x, y):
        return PROBLEM.torch_objective(x, y)


def test_fixed_training_set_is_used_and_learned():
    Y, X = PROBLEM.sample(48, seed=21)
    model = UnfoldedISTA(PROBLEM.A, K, PROBLEM.lam)
    before = _own_loss(model, "end_to_end", Y, X)
    history = fit(model, _NoSampling(), "end_to_end", steps=120, lr=0.05, data=(Y, X), batch_size=16, progress=False)
    assert len(history.loss) == 120
    assert _own_loss(model, "end_to_end", Y, X) < 0.97 * before
    # a tensor training set works the same way
    fit(UnfoldedISTA(PROBLEM.A, K, PROBLEM.lam), _NoSampling(), steps=2, data=(torch.tensor(Y), torch.tensor(X)),
        progress=False)


def test_bad_training_sets_raise():
    Y, X = PROBLEM.sample(5, seed=1)
    model = UnfoldedISTA(PROBLEM.A, K, PROBLEM.lam)
    state = _state(model)
    with pytest.raises(ValueError, match="the training set is empty"):
        _fit(model, data=(Y[:0], X[:0]))
    with pytest.raises(ValueError, match="training set has 5 inputs but 4 targets"):
        _fit(model, data=(Y, X[:4]))
    bad = Y.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"training inputs Y has a non-finite entry at index \(2, 1\)"):
        _fit(model, data=(bad, X))
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items()), "a rejected call trained the model"


# ---------------------------------------------------------------------------- argument checks
def test_bad_arguments_raise_clear_errors():
    model = UnfoldedISTA(PROBLEM.A, K, PROBLEM.lam)
    with pytest.raises(ValueError, match=r"scheme 'greedy' is not known; choose one of"):
        _fit(model, "greedy")
    for steps in (0, -3, 2.0):
        with pytest.raises(ValueError, match="steps must be a positive integer"):
            _fit(model, steps=steps)
    for lr in (0.0, -1e-3):
        with pytest.raises(ValueError, match="lr must be > 0"):
            _fit(model, lr=lr)
    with pytest.raises(ValueError, match="lr must be finite"):
        _fit(model, lr=float("inf"))
    for seed in (-1, 1.5, True):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            _fit(model, seed=seed)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        _fit(model, batch_size=0)
    with pytest.raises(ValueError, match=r"layer_weights has shape \(3,\); expected \(4,\)"):
        _fit(model, "per_iteration", layer_weights=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="layer_weights must be >= 0 with a positive sum"):
        _fit(model, "per_iteration", layer_weights=[1.0, -1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="layer_weights must be >= 0 with a positive sum"):
        _fit(model, "per_iteration", layer_weights=[0.0, 0.0, 0.0, 0.0])


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_a_device_raises():
    with pytest.raises(ValueError, match="device 'cuda' was requested but torch sees no CUDA device"):
        _fit(UnfoldedISTA(PROBLEM.A, K, PROBLEM.lam), device="cuda")


# ---------------------------------------------------------------------------- layerwise
@pytest.mark.parametrize("steps", [60, 67])
def test_layerwise_stages(steps):
    history = _fit(UnfoldedISTA(PROBLEM.A, 3, PROBLEM.lam), "layerwise", steps=steps, lr=0.01)
    per_stage = steps // 6
    assert len(history.loss) == steps == len(history.stage)
    assert history.stage == [1] * per_stage + [2] * per_stage + [3] * per_stage + [4] * (steps - 3 * per_stage)


def test_layerwise_stage_k_trains_only_layers_up_to_k():
    """With 2 steps and K = 4 only stages 1 and 2 run (one step each): layers 3 and 4 stay put."""
    model = UnfoldedISTA(PROBLEM.A, K, PROBLEM.lam)
    init = [[p.item() for p in model.layer_parameters(k)] for k in range(K)]
    history = _fit(model, "layerwise", steps=2, lr=0.05)
    assert history.stage == [1, 2]
    now = [[p.item() for p in model.layer_parameters(k)] for k in range(K)]
    assert now[0] != init[0] and now[1] != init[1]
    assert now[2] == init[2] and now[3] == init[3]


# ---------------------------------------------------------------------------- failure and scaling
def test_divergence_raises():
    model = UnfoldedISTA(PROBLEM.A, K, PROBLEM.lam)
    with pytest.raises(RuntimeError, match=r"training diverged at step \d+ \(loss (nan|inf)\); lower lr"):
        _fit(model, steps=20, lr=1e100)


@pytest.mark.parametrize("cls", [UnfoldedISTA, LISTA, HybridISTA], ids=lambda c: c.__name__)
def test_learning_rates_are_relative(cls):
    """Adam's first step moves each entry by at most the group's lr, here lr × rms(p₀) (lr × 0.1 for a
    tensor that starts at zero)."""
    lr = 1e-3
    model = cls(PROBLEM.A, K, PROBLEM.lam)
    init = {name: p.detach().clone() for name, p in model.named_parameters()}
    _fit(model, steps=1, lr=lr, seed=2)
    moved_fully = 0
    for name, p in model.named_parameters():
        p0 = init[name]
        rms = float(p0.pow(2).mean().sqrt())
        scale = rms if rms > 1e-12 else 0.1
        delta = float((p.detach() - p0).abs().max())
        assert delta <= lr * scale * (1 + 1e-6), (name, delta, lr * scale)
        moved_fully += delta > 0.5 * lr * scale
    assert moved_fully >= 1
    if cls is UnfoldedISTA:  # an absolute lr would move γ ≈ 0.2 by 1e-3, i.e. 5× more than this bound
        assert all(abs(s.item() - 1 / model.L) > 0.5 * lr / model.L for s in model.step)


def test_thresholds_stay_nonnegative():
    """Dense signals in an overdetermined system want threshold 0: the projection must hold them there."""
    problem = SparseRecovery(12, 8, 1.0, lam=0.5, seed=1)
    for cls in (UnfoldedISTA, LISTACP):
        model = cls(problem.A, K, problem.lam)
        fit(model, problem, steps=80, lr=0.1, progress=False)
        thresholds = [t.item() for t in model.threshold]
        assert min(thresholds) >= 0.0
        assert 0.0 in thresholds, thresholds  # reached by the projection, not by chance


def test_validation_history():
    model = UnfoldedISTA(PROBLEM.A, K, PROBLEM.lam)
    history = _fit(model, steps=20, lr=0.05, validation=(VAL_Y, VAL_X), eval_every=5)
    assert [step for step, _ in history.validation] == [5, 10, 15, 20]
    assert history.final_validation_nmse_db == pytest.approx(evaluate_nmse(model, VAL_Y, VAL_X), abs=1e-12)
    per_layer = evaluate_nmse(model, VAL_Y, VAL_X, per_layer=True)
    assert len(per_layer) == K and per_layer[-1] == history.final_validation_nmse_db


def test_float32_model_trains_in_float32():
    model = UnfoldedISTA(PROBLEM.A, K, PROBLEM.lam).float()
    history = _fit(model, steps=30, lr=0.05)
    assert all(np.isfinite(history.loss))
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_keep_best_restores_the_best_validation_parameters():
    problem = SparseRecovery(8, 16, 0.2, seed=4)
    val = problem.sample(64, seed=5)
    model = UnfoldedISTA(problem.A, 3, problem.lam)
    history = fit(model, problem, "end_to_end", steps=60, seed=0, lr=0.05, validation=val, eval_every=10, progress=False)
    scores = [s for _, s in history.validation]
    best = min(range(len(scores)), key=scores.__getitem__)
    assert history.best_step == history.validation[best][0]
    assert evaluate_nmse(model, *val) == pytest.approx(scores[best], abs=1e-9)
    plain = UnfoldedISTA(problem.A, 3, problem.lam)
    h2 = fit(plain, problem, "end_to_end", steps=60, seed=0, lr=0.05, validation=val, eval_every=10, keep_best=False,
             progress=False)
    assert h2.best_step is None and evaluate_nmse(plain, *val) == pytest.approx(h2.validation[-1][1], abs=1e-9)
