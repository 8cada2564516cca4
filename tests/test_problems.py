"""SparseRecovery: the sensing matrix, the data generator, the objective and the input checks.

Statistical checks use fixed seeds and 5-standard-deviation tolerances, so they are deterministic
and would only fail if the generator were wrong.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from unfoldtheory.problems import SparseRecovery

FINITE = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def _lasso_by_hand(A: np.ndarray, x: np.ndarray, y: np.ndarray, lam: float) -> float:
    """½‖Ax − y‖² + λ‖x‖₁ written out with Python loops (an independent route)."""
    m, n = A.shape
    sq = 0.0
    for i in range(m):
        r = sum(float(A[i, j]) * float(x[j]) for j in range(n)) - float(y[i])
        sq += r * r
    return 0.5 * sq + lam * sum(abs(float(v)) for v in x)


# --------------------------------------------------------------------------- the sensing matrix


@pytest.mark.parametrize(("m", "n"), [(1, 1), (5, 3), (20, 50), (128, 256)])
def test_columns_have_unit_norm(m, n):
    A = SparseRecovery(m, n, 0.1, seed=4).A
    assert A.shape == (m, n)
    assert A.dtype == np.float64
    np.testing.assert_allclose(np.sqrt((A * A).sum(axis=0)), 1.0, rtol=0, atol=1e-12)


def test_matrix_is_reproducible_for_a_seed_and_differs_across_seeds():
    a = SparseRecovery(20, 40, 0.2, seed=7).A
    b = SparseRecovery(20, 40, 0.2, seed=7, noise_std=0.3, lam=2.0).A  # A depends on the seed only
    c = SparseRecovery(20, 40, 0.2, seed=8).A
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert SparseRecovery(20, 40, 0.2, seed=np.int64(7)).A.tobytes() == a.tobytes()


def test_matrix_is_read_only():
    A = SparseRecovery(4, 6, 0.5).A
    with pytest.raises(ValueError):
        A[0, 0] = 1.0


def test_lipschitz_constant_is_the_squared_spectral_norm():
    p = SparseRecovery(15, 33, 0.2, seed=2)
    top = np.linalg.eigvalsh(p.A.T @ p.A)[-1]  # a different route than the 2-norm (SVD)
    assert p.L == pytest.approx(top, rel=1e-12)
    # unit columns: max_j ‖A_j‖² = 1 ≤ ‖A‖² ≤ ‖A‖_F² = n
    assert 1.0 - 1e-12 <= p.L <= p.n


# --------------------------------------------------------------------------- samples


def test_sample_shapes_and_dtypes():
    p = SparseRecovery(7, 11, 0.3, noise_std=0.1)
    Y, X = p.sample(5)
    assert Y.shape == (5, 7) and X.shape == (5, 11)
    assert Y.dtype == np.float64 and X.dtype == np.float64
    assert np.all(np.isfinite(Y)) and np.all(np.isfinite(X))
    Y1, X1 = p.sample(1, seed=np.int64(3))
    assert Y1.shape == (1, 7) and X1.shape == (1, 11)


@pytest.mark.parametrize(("sparsity", "seed"), [(0.02, 0), (0.1, 1), (0.5, 2), (0.9, 3)])
def test_sparsity_fraction_matches_parameter(sparsity, seed):
    p = SparseRecovery(10, 50, sparsity, seed=seed)
    _, X = p.sample(2000, seed=seed)
    trials = X.size
    frac = np.count_nonzero(X) / trials
    sd = math.sqrt(sparsity * (1 - sparsity) / trials)
    assert abs(frac - sparsity) <= 5 * sd
    # the nonzeros are standard normal: mean 0, variance 1 (5 standard errors each)
    nz = X[X != 0]
    k = nz.size
    assert abs(nz.mean()) <= 5 / math.sqrt(k)
    assert abs(nz.var() - 1.0) <= 5 * math.sqrt(2 / k)


def test_full_sparsity_gives_dense_signals():
    _, X = SparseRecovery(4, 9, 1.0, seed=1).sample(50, seed=0)
    assert np.count_nonzero(X) == X.size


@pytest.mark.parametrize("seed", [0, 5])
def test_noiseless_measurements_are_exactly_a_times_x(seed):
    p = SparseRecovery(12, 30, 0.3, seed=seed)
    Y, X = p.sample(40, seed=seed)
    np.testing.assert_array_equal(Y, X @ p.A.T)
    by_rows = np.stack([p.A @ x for x in X])  # another route, up to rounding
    np.testing.assert_allclose(Y, by_rows, rtol=0, atol=1e-12)


@pytest.mark.parametrize("noise_std", [1e-3, 0.05, 1.0, 7.5])
def test_noise_level_matches_noise_std(noise_std):
    p = SparseRecovery(25, 40, 0.2, noise_std=noise_std, seed=3)
    Y, X = p.sample(1000, seed=11)
    E = Y - X @ p.A.T
    N = E.size
    assert abs(E.mean()) <= 5 * noise_std / math.sqrt(N)
    assert abs(E.var() / noise_std**2 - 1.0) <= 5 * math.sqrt(2 / N)
    # the noise is independent of the signal: no correlation with A x
    clean = X @ p.A.T
    corr = np.corrcoef(E.ravel(), clean.ravel())[0, 1]
    assert abs(corr) <= 5 / math.sqrt(N)


def test_seeded_sample_is_reproducible_and_depends_on_the_seed_only():
    p = SparseRecovery(6, 10, 0.4, noise_std=0.1, seed=3)
    q = SparseRecovery(6, 10, 0.4, noise_std=0.1, seed=3)
    p.sample(4)  # advancing p's unseeded stream must not change a seeded draw
    Yp, Xp = p.sample(8, seed=21)
    Yq, Xq = q.sample(8, seed=21)
    np.testing.assert_array_equal(Yp, Yq)
    np.testing.assert_array_equal(Xp, Xq)
    Yr, Xr = p.sample(8, seed=22)
    assert not np.array_equal(Xp, Xr) and not np.array_equal(Yp, Yr)
    # nor does a seeded draw advance the unseeded stream
    a = SparseRecovery(6, 10, 0.4, seed=3)
    b = SparseRecovery(6, 10, 0.4, seed=3)
    a.sample(3, seed=1)
    np.testing.assert_array_equal(a.sample(5)[1], b.sample(5)[1])


def test_unseeded_calls_differ_yet_are_reproducible_across_fresh_objects():
    p = SparseRecovery(6, 10, 0.4, noise_std=0.2, seed=9)
    q = SparseRecovery(6, 10, 0.4, noise_std=0.2, seed=9)
    Y1, X1 = p.sample(5)
    Y2, X2 = p.sample(5)
    assert not np.array_equal(X1, X2) and not np.array_equal(Y1, Y2)
    Z1, W1 = q.sample(5)
    Z2, W2 = q.sample(5)
    np.testing.assert_array_equal(Y1, Z1)
    np.testing.assert_array_equal(X1, W1)
    np.testing.assert_array_equal(Y2, Z2)
    np.testing.assert_array_equal(X2, W2)
    # a different problem seed gives a different stream
    _, V1 = SparseRecovery(6, 10, 0.4, noise_std=0.2, seed=10).sample(5)
    assert not np.array_equal(X1, V1)


# --------------------------------------------------------------------------- objective


@settings(max_examples=25, deadline=None)
@given(data=st.data(), m=st.integers(1, 8), n=st.integers(1, 10), lam=st.floats(1e-3, 10.0),
       seed=st.integers(0, 2**16))
def test_objective_matches_independent_formula(data, m, n, lam, seed):
    p = SparseRecovery(m, n, 0.5, lam=lam, seed=seed)
    x = data.draw(hnp.arrays(np.float64, n, elements=FINITE), label="x")
    y = data.draw(hnp.arrays(np.float64, m, elements=FINITE), label="y")
    value = p.objective(x, y)
    assert isinstance(value, float)
    expected = _lasso_by_hand(p.A, x, y, lam)
    assert value == pytest.approx(expected, rel=1e-9, abs=1e-9)
    # 2-D: rows pair up
    b = data.draw(st.integers(1, 4), label="batch")
    Xb = data.draw(hnp.arrays(np.float64, (b, n), elements=FINITE), label="X")
    Yb = data.draw(hnp.arrays(np.float64, (b, m), elements=FINITE), label="Y")
    values = p.objective(Xb, Yb)
    assert isinstance(values, np.ndarray) and values.shape == (b,)
    for i in range(b):
        assert values[i] == pytest.approx(_lasso_by_hand(p.A, Xb[i], Yb[i], lam), rel=1e-9, abs=1e-9)
    # lists are accepted as well as arrays
    assert p.objective(list(x), list(y)) == value


def test_objective_at_truth_of_noiseless_sample_is_lambda_l1():
    p = SparseRecovery(10, 20, 0.3, seed=1)
    Y, X = p.sample(6, seed=2)
    np.testing.assert_allclose(p.objective(X, Y), p.lam * np.abs(X).sum(axis=1), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- the default λ


@pytest.mark.parametrize(("n", "noise_std"), [(1, 0.0), (1, 5.0), (256, 0.0), (256, 0.01), (256, 0.5), (1000, 2.0)])
def test_default_lam_is_documented_formula(n, noise_std):
    p = SparseRecovery(3, n, 0.1, noise_std=noise_std)
    expected = max(0.1, noise_std * math.sqrt(2 * math.log(n)))
    assert p.lam == pytest.approx(expected, rel=1e-15)
    assert SparseRecovery(3, n, 0.1, noise_std=noise_std, lam=0.37).lam == 0.37


def test_default_lam_values_worked_out():
    assert SparseRecovery(3, 256, 0.1).lam == 0.1  # floor
    assert SparseRecovery(3, 256, 0.1, noise_std=0.5).lam == pytest.approx(0.5 * math.sqrt(2 * math.log(256)))
    assert SparseRecovery(3, 256, 0.1, noise_std=0.5).lam > 1.66


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"m": 0}, "m"),
        ({"m": 2.5}, "m"),
        ({"n": -1}, "n"),
        ({"n": 0}, "n"),
        ({"sparsity": 0.0}, "sparsity"),
        ({"sparsity": 1.5}, "sparsity"),
        ({"sparsity": -0.1}, "sparsity"),
        ({"sparsity": float("nan")}, "sparsity"),
        ({"noise_std": -0.1}, "noise_std"),
        ({"noise_std": float("nan")}, "noise_std"),
        ({"noise_std": float("inf")}, "noise_std"),
        ({"lam": 0.0}, "lam"),
        ({"lam": -1.0}, "lam"),
        ({"lam": float("nan")}, "lam"),
        ({"lam": "big"}, "lam"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": "0"}, "seed"),
        ({"seed": True}, "seed"),
    ],
)
def test_bad_constructor_arguments_raise_naming_the_parameter(kwargs, name):
    args = {"m": 5, "n": 8, "sparsity": 0.2} | kwargs
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        SparseRecovery(**args)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda p: p.sample(0), "num"),
        (lambda p: p.sample(-3), "num"),
        (lambda p: p.sample(2.0), "num"),
        (lambda p: p.sample(2, seed=-1), "seed"),
        (lambda p: p.sample(2, seed=0.5), "seed"),
        (lambda p: p.objective(np.zeros(7), np.zeros(5)), "x"),
        (lambda p: p.objective(np.zeros((2, 9)), np.zeros((2, 5))), "x"),
        (lambda p: p.objective(np.zeros(8), np.zeros(4)), "y"),
        (lambda p: p.objective(np.zeros(8), np.zeros((1, 6))), "y"),
        (lambda p: p.objective(np.r_[np.zeros(7), np.nan], np.zeros(5)), "x"),
        (lambda p: p.objective(np.zeros(8), np.r_[np.inf, np.zeros(4)]), "y"),
        (lambda p: p.objective(np.zeros((1, 1, 8)), np.zeros(5)), "x"),
    ],
)
def test_bad_method_arguments_raise_naming_the_parameter(call, name):
    p = SparseRecovery(5, 8, 0.2)
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call(p)


def test_objective_batch_mismatch_names_the_arguments():
    p = SparseRecovery(5, 8, 0.2)
    with pytest.raises(ValueError, match=r"\b(x|y)\b"):
        p.objective(np.zeros((2, 8)), np.zeros((3, 5)))


# torch.as_tensor on the read-only A warns once per process (reported; not ours to fix)
@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable:UserWarning")
def test_torch_objective_is_the_batch_mean_of_objective():
    torch = pytest.importorskip("torch")
    p = SparseRecovery(9, 14, 0.3, noise_std=0.05, seed=6)
    Y, X = p.sample(7, seed=1)
    X_hat = X + 0.1 * np.random.default_rng(0).standard_normal(X.shape)
    expected = float(np.mean(p.objective(X_hat, Y)))
    value = p.torch_objective(torch.from_numpy(X_hat), torch.from_numpy(Y))
    assert value.dtype == torch.float64 and value.ndim == 0
    assert float(value) == pytest.approx(expected, rel=1e-12)
    value32 = p.torch_objective(torch.from_numpy(X_hat).float(), torch.from_numpy(Y).float())
    assert value32.dtype == torch.float32
    assert float(value32) == pytest.approx(expected, rel=1e-5)
    # and it is differentiable, with the gradient of the smooth part plus λ·sign(x) / batch
    xt = torch.from_numpy(X_hat).requires_grad_(True)
    p.torch_objective(xt, torch.from_numpy(Y)).backward()
    grad = ((X_hat @ p.A.T - Y) @ p.A + p.lam * np.sign(X_hat)) / X_hat.shape[0]
    np.testing.assert_allclose(xt.grad.numpy(), grad, rtol=1e-10, atol=1e-12)


def test_repr_rebuilds_the_same_problem():
    p = SparseRecovery(6, 11, 0.25, noise_std=0.5, lam=0.75, seed=4)
    text = repr(p)
    for part in ("m=6", "n=11", "sparsity=0.25", "noise_std=0.5", "lam=0.75", "seed=4"):
        assert part in text
    q = eval(text, {"SparseRecovery": SparseRecovery})
    np.testing.assert_array_equal(q.A, p.A)
    assert q.lam == p.lam
