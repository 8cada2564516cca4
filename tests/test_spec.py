"""``NetworkSpec`` and ``unrolled``: evaluation, Jacobians and serialisation against independent
routes (hand-written loops, finite differences, JSON), and clear errors on bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from unfoldtheory import testing as ut
from unfoldtheory.activations import (
    Activation,
    BoxProjection,
    GroupSoftThreshold,
    Identity,
    ReLU,
    SoftThreshold,
)
from unfoldtheory.problems.sparse_recovery import SparseRecovery
from unfoldtheory.spec import Layer, NetworkSpec, unrolled


def inputs(m: int, batch: int | None = None, bound: float = 3.0) -> st.SearchStrategy[np.ndarray]:
    shape = m if batch is None else (batch, m)
    return hnp.arrays(np.float64, shape, elements=st.floats(-bound, bound, allow_nan=False))


def st_np(v: np.ndarray, theta: float | np.ndarray) -> np.ndarray:
    """Soft-thresholding written out case by case (independent of the package's formula)."""
    return np.where(v > theta, v - theta, np.where(v < -theta, v + theta, 0.0))


def ista_loop(A, y, lam, K, nonnegative=False):
    """Plain ISTA with step 1/L from x_0 = 0: the iterates x_1 … x_K."""
    L = np.linalg.norm(A, 2) ** 2
    x = np.zeros(A.shape[1])
    iterates = []
    for _ in range(K):
        u = x - (A.T @ (A @ x - y)) / L
        x = np.maximum(u - lam / L, 0.0) if nonnegative else st_np(u, lam / L)
        iterates.append(x)
    return iterates


# ----------------------------------------------------------------------------- unrolled = ISTA


@settings(max_examples=40)
@given(st.data(), ut.sensing_matrices(m=st.integers(1, 6), n=st.integers(1, 8)), st.integers(1, 6),
       st.floats(0.0, 2.0), st.sampled_from(["soft_threshold", "relu"]))
def test_unrolled_with_ista_weights_is_ista(data, A, K, lam, activation):
    m, n = A.shape
    y = data.draw(inputs(m))
    L = np.linalg.norm(A, 2) ** 2
    W, V = np.eye(n) - A.T @ A / L, A.T / L
    spec = unrolled([W] * K, [V] * K, [lam / L] * K, activation=activation)
    out, states = spec.evaluate(y, return_states=True)
    expected = ista_loop(A, y, lam, K, nonnegative=activation == "relu")
    np.testing.assert_array_equal(states[0], y)
    for k in range(K):
        np.testing.assert_allclose(states[k + 1], expected[k], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out, expected[-1], rtol=1e-10, atol=1e-10)


def test_unrolled_ista_decreases_the_lasso_objective():
    problem = SparseRecovery(10, 20, sparsity=0.2, lam=0.05, seed=3)
    A, lam, L = problem.A, problem.lam, problem.L
    K = 60
    spec = unrolled([None] + [np.eye(20) - A.T @ A / L] * (K - 1), [A.T / L] * K, [lam / L] * K)
    Y, _ = problem.sample(4, seed=1)
    for y in Y:
        _, states = spec.evaluate(y, return_states=True)
        obj = np.array([problem.objective(np.zeros(20), y)] + [problem.objective(x, y) for x in states[1:]])
        # ISTA with step 1/L is a descent method (Beck & Teboulle 2009, Lemma 2.3)
        assert np.all(np.diff(obj) <= 1e-12 * obj[0])
        assert obj[-1] < obj[0]


def test_unrolled_per_coordinate_thresholds():
    rng = np.random.default_rng(0)
    V = rng.standard_normal((3, 2))
    W = rng.standard_normal((3, 3)) / 3
    th = [np.array([0.0, 0.5, 2.0]), np.array([0.1, 0.2, 0.3])]
    y = np.array([1.0, -2.0])
    x1 = st_np(V @ y, th[0])
    x2 = st_np(W @ x1 + V @ y, th[1])
    np.testing.assert_allclose(unrolled([W, W], [V, V], th).evaluate(y), x2, rtol=1e-13, atol=1e-14)
    x1r = np.maximum(V @ y - th[0], 0)
    x2r = np.maximum(W @ x1r + V @ y - th[1], 0)
    np.testing.assert_allclose(unrolled([W, W], [V, V], th, activation="relu").evaluate(y), x2r, rtol=1e-13, atol=1e-14)


def test_unrolled_first_W_has_no_effect():
    rng = np.random.default_rng(1)
    V = [rng.standard_normal((4, 3)) for _ in range(3)]
    W = [rng.standard_normal((4, 4)) for _ in range(3)]
    y = rng.standard_normal(3)
    a = unrolled(W, V, [0.1] * 3).evaluate(y)
    b = unrolled([None, *W[1:]], V, [0.1] * 3).evaluate(y)
    np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- batch vs single


@settings(max_examples=30)
@given(ut.unrolled_specs(activation=st.sampled_from(["soft_threshold", "relu"]), per_coordinate_thresholds=True),
       st.data())
def test_evaluate_batch_matches_single(spec, data):
    Y = data.draw(inputs(spec.input_dim, batch=data.draw(st.integers(1, 5))))
    out, states = spec.evaluate(Y, return_states=True)
    assert out.shape == (Y.shape[0], spec.output_dim)
    for i, y in enumerate(Y):
        single, single_states = spec.evaluate(y, return_states=True)
        assert single.shape == (spec.output_dim,)
        np.testing.assert_allclose(out[i], single, rtol=1e-12, atol=1e-12)
        for s_batch, s_single in zip(states, single_states, strict=True):
            np.testing.assert_allclose(s_batch[i], s_single, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(spec(Y), out)


# ----------------------------------------------------------------------------- Jacobians


def _pattern(spec: NetworkSpec, y: np.ndarray) -> list[np.ndarray]:
    """Which linear piece each coordinate of each piecewise-linear activation is on."""
    pattern = []
    for act, v in zip(spec.activations, spec.preactivations(y), strict=True):
        v = v[0]
        if isinstance(act, SoftThreshold):
            pattern.append(np.sign(v) * (np.abs(v) > act.theta))
        elif isinstance(act, ReLU):
            pattern.append(v > 0)
        elif isinstance(act, BoxProjection):
            pattern.append((v > act.lower).astype(int) + (v >= act.upper).astype(int))
        elif isinstance(act, Identity):
            pattern.append(np.zeros(v.shape))
        else:
            raise AssertionError(f"not piecewise linear: {act}")
    return pattern


def _central_differences(f, y: np.ndarray, h: float) -> np.ndarray:
    cols = []
    for i in range(y.size):
        e = np.zeros_like(y)
        e[i] = h
        cols.append((f(y + e) - f(y - e)) / (2 * h))
    return np.stack(cols, axis=-1)


def _same_piece(spec: NetworkSpec, y: np.ndarray, h: float) -> bool:
    """True when y ± h e_i all lie on the activation piece of y. Each piece is convex and the
    pre-activations are affine along a segment inside one piece, so the endpoints suffice."""
    ref = _pattern(spec, y)
    for i in range(y.size):
        for sign in (-1.0, 1.0):
            e = np.zeros_like(y)
            e[i] = sign * h
            if not all(np.array_equal(a, b) for a, b in zip(ref, _pattern(spec, y + e), strict=True)):
                return False
    return True


@settings(max_examples=60)
@given(ut.unrolled_specs(activation=st.sampled_from(["soft_threshold", "relu"]), min_threshold=0.01,
                         max_norm=1.5),
       st.data())
def test_jacobian_matches_finite_differences_unrolled(spec, data):
    y = data.draw(inputs(spec.input_dim))
    h = 1e-5
    assume(_same_piece(spec, y, h))
    fd = _central_differences(spec.evaluate, y, h)
    J = spec.jacobian(y)
    assert J.shape == (spec.output_dim, spec.input_dim)
    # the network is affine on the piece, so central differences are exact up to rounding
    np.testing.assert_allclose(J, fd, rtol=1e-7, atol=1e-8)


@settings(max_examples=30)
@given(ut.unrolled_specs(near_ista=True, perturbation=0.2, min_threshold=0.01, max_threshold=0.2,
                         per_coordinate_thresholds=True), st.data())
def test_jacobian_matches_finite_differences_near_ista(spec, data):
    y = data.draw(inputs(spec.input_dim))
    h = 1e-5
    assume(_same_piece(spec, y, h))
    np.testing.assert_allclose(spec.jacobian(y), _central_differences(spec.evaluate, y, h), rtol=1e-7, atol=1e-8)


@settings(max_examples=30)
@given(ut.unrolled_parameters(activation=st.sampled_from(["soft_threshold", "relu"])))
def test_linearized_jacobian_all_ones_is_the_linear_product(p):
    spec = p.spec()
    # by hand: M_1 = V_1, M_k = W_k M_{k-1} + V_k
    M = p.V[0]
    for W, V in zip(p.W[1:], p.V[1:], strict=True):
        M = W @ M + V
    ones = [np.ones(d) for d in spec.dims[1:]]
    eyes = [np.eye(d) for d in spec.dims[1:]]
    np.testing.assert_allclose(spec.linearized_jacobian(ones), M, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(spec.linearized_jacobian(eyes), M, rtol=1e-12, atol=1e-13)
    zeros = [np.zeros(d) for d in spec.dims[1:]]
    np.testing.assert_array_equal(spec.linearized_jacobian(zeros), np.zeros_like(M))


# ----------------------------------------------------------------------------- general graphs


def _fista_spec_and_loop(A: np.ndarray, lam: float, K: int):
    m, n = A.shape
    L = np.linalg.norm(A, 2) ** 2
    W, V, theta = np.eye(n) - A.T @ A / L, A.T / L, lam / L
    t = [1.0]
    for _ in range(K):
        t.append((1 + np.sqrt(1 + 4 * t[-1] ** 2)) / 2)
    layers = []
    for k in range(1, K + 1):  # state k = x_k
        if k == 1:
            weights = {0: V}
        elif k == 2:
            weights = {1: W, 0: V}  # x_0 = 0 is not a state
        else:
            beta = (t[k - 2] - 1) / t[k - 1]
            weights = {k - 1: (1 + beta) * W, k - 2: -beta * W, 0: V}
        layers.append(Layer(weights, SoftThreshold(theta)))
    spec = NetworkSpec(m, layers, name="fista")

    def loop(y):
        x_prev, x = np.zeros(n), np.zeros(n)
        iterates = []
        for k in range(1, K + 1):
            beta = (t[k - 2] - 1) / t[k - 1] if k >= 2 else 0.0
            u = x + beta * (x - x_prev)
            x_prev, x = x, st_np(u - (A.T @ (A @ u - y)) / L, lam / L)
            iterates.append(x)
        return iterates

    return spec, loop


@settings(max_examples=30)
@given(st.data(), ut.sensing_matrices(m=st.integers(1, 5), n=st.integers(1, 7)), st.integers(3, 8),
       st.floats(0.0, 1.0))
def test_momentum_graph_is_fista(data, A, K, lam):
    spec, loop = _fista_spec_and_loop(A, lam, K)
    assert spec.num_layers == K and set(spec.weights[K - 1]) == {0, K - 2, K - 1}
    y = data.draw(inputs(A.shape[0]))
    _, states = spec.evaluate(y, return_states=True)
    for got, want in zip(states[1:], loop(y), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def _general_spec(seed: int) -> tuple[NetworkSpec, dict]:
    """A four-state graph with every activation type, biases, skips and a three-state read-out."""
    rng = np.random.default_rng(seed)
    g = {k: rng.standard_normal(s) / np.sqrt(s[1]) for k, s in {
        "W10": (3, 2), "W21": (4, 3), "W20": (4, 2), "W32": (4, 4), "W31": (4, 3),
        "W43": (2, 4), "W40": (2, 2), "C4": (2, 2), "C2": (2, 4), "C0": (2, 2)}.items()}
    g["b1"], g["b2"], g["b4"] = rng.standard_normal(3) * 0.3, rng.standard_normal(4) * 0.3, rng.standard_normal(2)
    g["groups"] = [[0, 2], [1], [3]]
    layers = [
        Layer({0: g["W10"]}, ReLU(), g["b1"]),
        Layer({1: g["W21"], 0: g["W20"]}, BoxProjection([-0.5, -np.inf, 0.0, -1.0], [0.5, 0.3, np.inf, 1.0]), g["b2"]),
        Layer({2: g["W32"], 1: g["W31"]}, GroupSoftThreshold(0.2, g["groups"])),
        Layer({3: g["W43"], 0: g["W40"]}, Identity(), g["b4"]),
    ]
    spec = NetworkSpec(2, layers, readout={4: g["C4"], 2: g["C2"], 0: g["C0"]}, name="general")
    return spec, g


def _general_loop(g: dict, y: np.ndarray):
    z1 = np.maximum(g["W10"] @ y + g["b1"], 0)
    z2 = np.minimum(np.maximum(g["W21"] @ z1 + g["W20"] @ y + g["b2"], [-0.5, -np.inf, 0.0, -1.0]),
                    [0.5, 0.3, np.inf, 1.0])
    v3 = g["W32"] @ z2 + g["W31"] @ z1
    z3 = np.zeros(4)
    for grp in g["groups"]:
        r = np.linalg.norm(v3[grp])
        z3[grp] = 0.0 if r <= 0.2 else v3[grp] * (1 - 0.2 / r)
    z4 = g["W43"] @ z3 + g["W40"] @ y + g["b4"]
    return g["C4"] @ z4 + g["C2"] @ z2 + g["C0"] @ y, [y, z1, z2, z3, z4]


@settings(max_examples=30)
@given(st.integers(0, 10_000), inputs(2, batch=3))
def test_general_graph_matches_hand_loop(seed, Y):
    spec, g = _general_spec(seed)
    assert spec.dims == (2, 3, 4, 4, 2) and spec.output_dim == 2
    out, states = spec.evaluate(Y, return_states=True)
    for i, y in enumerate(Y):
        want, want_states = _general_loop(g, y)
        np.testing.assert_allclose(out[i], want, rtol=1e-12, atol=1e-12)
        for s, w in zip(states, want_states, strict=True):
            np.testing.assert_allclose(s[i], w, rtol=1e-12, atol=1e-12)


@settings(max_examples=40)
@given(st.integers(0, 10_000), inputs(2))
def test_general_graph_jacobian_finite_differences(seed, y):
    spec, g = _general_spec(seed)
    pres = [v[0] for v in spec.preactivations(y)]
    margin = 1e-3
    assume(np.all(np.abs(pres[0]) > margin))  # ReLU kink at 0
    lo, hi = np.array([-0.5, -np.inf, 0.0, -1.0]), np.array([0.5, 0.3, np.inf, 1.0])
    assume(np.all(np.abs(pres[1] - lo) > margin) and np.all(np.abs(pres[1] - hi) > margin))
    for grp in g["groups"]:
        r = np.linalg.norm(pres[2][grp])
        assume(abs(r - 0.2) > margin and r > 0.05)
    h = 1e-6
    fd = _central_differences(spec.evaluate, y, h)
    np.testing.assert_allclose(spec.jacobian(y), fd, rtol=1e-5, atol=1e-6)


@settings(max_examples=20)
@given(st.integers(0, 10_000))
def test_general_linearized_jacobian_all_ones_is_the_linear_network(seed):
    spec, g = _general_spec(seed)
    # independent route 1: the chain rule by hand with every slope 1
    J0 = np.eye(2)
    J1 = g["W10"]
    J2 = g["W21"] @ J1 + g["W20"]
    J3 = g["W32"] @ J2 + g["W31"] @ J1
    J4 = g["W43"] @ J3 + g["W40"] @ J0
    want = g["C4"] @ J4 + g["C2"] @ J2 + g["C0"] @ J0
    got = spec.linearized_jacobian([np.ones(d) for d in spec.dims[1:]])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    # independent route 2: the same graph with identity activations is affine; difference it
    linear = NetworkSpec(2, [Layer(dict(spec.weights[k]), Identity(), spec.biases[k]) for k in range(4)],
                         readout=spec.readout)
    base = linear.evaluate(np.zeros(2))
    cols = np.stack([linear.evaluate(e) - base for e in np.eye(2)], axis=1)
    np.testing.assert_allclose(got, cols, rtol=1e-10, atol=1e-12)


def test_readout_of_several_states_in_an_unrolled_net():
    rng = np.random.default_rng(5)
    V = [rng.standard_normal((3, 2)) for _ in range(3)]
    W = [rng.standard_normal((3, 3)) / 2 for _ in range(3)]
    base = unrolled(W, V, [0.1, 0.2, 0.3])
    C1, C3 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    spec = NetworkSpec(2, [base.layer(k) for k in range(1, 4)], readout={1: C1, 3: C3})
    y = rng.standard_normal(2)
    _, states = base.evaluate(y, return_states=True)
    np.testing.assert_allclose(spec.evaluate(y), C1 @ states[1] + C3 @ states[3], rtol=1e-13, atol=1e-14)
    assert spec.output_dim == 4


# ----------------------------------------------------------------------------- serialisation


def _assert_same_network(a: NetworkSpec, b: NetworkSpec, Y: np.ndarray) -> None:
    assert a.dims == b.dims and a.name == b.name and a.readout.keys() == b.readout.keys()
    assert [type(x) for x in a.activations] == [type(x) for x in b.activations]
    np.testing.assert_array_equal(a.evaluate(Y), b.evaluate(Y))
    np.testing.assert_array_equal(a.jacobian(Y[0]), b.jacobian(Y[0]))


@settings(max_examples=30)
@given(ut.unrolled_specs(activation=st.sampled_from(["soft_threshold", "relu"]),
                         per_coordinate_thresholds=True, name="x"), st.data())
def test_to_dict_round_trip_unrolled(spec, data):
    Y = data.draw(inputs(spec.input_dim, batch=3))
    d = spec.to_dict()
    _assert_same_network(spec, NetworkSpec.from_dict(d), Y)
    _assert_same_network(spec, NetworkSpec.from_dict(json.loads(json.dumps(d))), Y)


@settings(max_examples=10)
@given(st.integers(0, 10_000), inputs(2, batch=4))
def test_to_dict_round_trip_general(seed, Y):
    spec, _ = _general_spec(seed)
    text = json.dumps(spec.to_dict())
    back = NetworkSpec.from_dict(json.loads(text))
    _assert_same_network(spec, back, Y)
    assert json.dumps(back.to_dict()) == text


def test_from_dict_malformed():
    with pytest.raises(ValueError, match=r"^not a NetworkSpec description"):
        NetworkSpec.from_dict({"input_dim": 2})
    spec, _ = _general_spec(0)
    d = spec.to_dict()
    d["layers"][0]["activation"] = {"name": "tanh"}
    with pytest.raises(ValueError, match=r"unknown activation 'tanh'"):
        NetworkSpec.from_dict(d)


# ----------------------------------------------------------------------------- bad input


def _ok_unrolled(K=3, n=4, m=3):
    rng = np.random.default_rng(0)
    return ([rng.standard_normal((n, n)) for _ in range(K)], [rng.standard_normal((n, m)) for _ in range(K)],
            [0.1] * K)


def test_unrolled_wrong_W_shape_names_the_users_index():
    W, V, th = _ok_unrolled(K=4)
    W[3] = np.zeros((4, 5))
    with pytest.raises(ValueError, match=r"^W\[3\] has shape \(4, 5\); expected \(4, 4\)$"):
        unrolled(W, V, th)
    W[3] = np.zeros(4)
    with pytest.raises(ValueError, match=r"^W\[3\] has shape \(4,\); expected \(4, 4\)$"):
        unrolled(W, V, th)


def test_unrolled_wrong_V_shape():
    W, V, th = _ok_unrolled()
    V[2] = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"^V\[2\] has shape \(4, 2\); expected \(4, 3\)$"):
        unrolled(W, V, th)
    V[0] = np.zeros(4)
    with pytest.raises(ValueError, match=r"^V\[0\] has 1 dimension\(s\)"):
        unrolled(W, V, th)


def test_unrolled_thresholds_count_and_shape():
    W, V, th = _ok_unrolled()
    with pytest.raises(ValueError, match=r"^thresholds has 2 entries; expected K = 3$"):
        unrolled(W, V, th[:2])
    with pytest.raises(ValueError, match=r"^thresholds\[1\] has shape \(3,\); expected a scalar or \(4,\)$"):
        unrolled(W, V, [0.1, np.ones(3) * 0.1, 0.1])
    with pytest.raises(ValueError, match=r"^thresholds\[0\] has 2 dimension\(s\)"):
        unrolled(W, V, [np.ones((4, 1)), 0.1, 0.1])
    with pytest.raises(ValueError, match=r"^W has 2 entries; expected K = 3"):
        unrolled(W[:2], V, th)


def test_unrolled_negative_threshold():
    W, V, _ = _ok_unrolled()
    with pytest.raises(ValueError, match=r"^thresholds\[2\] must be >= 0, got minimum -0\.1$"):
        unrolled(W, V, [0.1, 0.1, -0.1])
    with pytest.raises(ValueError, match=r"^thresholds\[1\] must be >= 0, got minimum -2$"):
        unrolled(W, V, [0.1, np.array([0.0, 1.0, -2.0, 0.5]), 0.1], activation="relu")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_unrolled_non_finite(bad):
    W, V, th = _ok_unrolled()
    W[1] = W[1].copy()
    W[1][0, 2] = bad
    with pytest.raises(ValueError, match=rf"^W\[1\] has a non-finite entry at index \(0, 2\) \({bad}\)$"):
        unrolled(W, V, th)
    W, V, th = _ok_unrolled()
    V[2] = V[2].copy()
    V[2][3, 1] = bad
    with pytest.raises(ValueError, match=rf"^V\[2\] has a non-finite entry at index \(3, 1\) \({bad}\)$"):
        unrolled(W, V, th)
    with pytest.raises(ValueError, match=r"^thresholds\[0\] has a non-finite entry"):
        unrolled(*_ok_unrolled()[:2], [bad, 0.1, 0.1])


def test_network_spec_non_finite_bias_weight_readout():
    with pytest.raises(ValueError, match=r"^W\[1\]\[0\] has a non-finite entry at index \(1, 0\) \(nan\)$"):
        NetworkSpec(2, [Layer({0: [[1.0, 0.0], [np.nan, 1.0]]})])
    with pytest.raises(ValueError, match=r"^b\[1\] has a non-finite entry at index \(0,\) \(inf\)$"):
        NetworkSpec(2, [Layer({0: np.eye(2)}, bias=[np.inf, 0.0])])
    with pytest.raises(ValueError, match=r"^C\[1\] has a non-finite entry"):
        NetworkSpec(2, [Layer({0: np.eye(2)})], readout={1: [[np.nan, 0.0]]})


def test_network_spec_wrong_weight_shape():
    with pytest.raises(ValueError, match=r"^W\[2\]\[1\] has shape \(3, 5\); expected \(3, 4\)$"):
        NetworkSpec(2, [Layer({0: np.ones((4, 2))}), Layer({1: np.ones((3, 5))}, dim=3)])


@pytest.mark.parametrize("source", [2, 3, -1])
def test_feed_forward_violation(source):
    layers = [Layer({0: np.eye(2)}), Layer({source: np.eye(2)})]
    with pytest.raises(ValueError, match=rf"^layer 2 reads state {source}, which is not computed before it"):
        NetworkSpec(2, layers)


def test_weight_key_not_a_state_index():
    with pytest.raises(ValueError, match=r"^layer 1: weight key '0' is not a state index$"):
        NetworkSpec(2, [Layer({"0": np.eye(2)})])


def test_readout_to_missing_state():
    with pytest.raises(ValueError, match=r"^readout reads state 5; states are 0\.\.2$"):
        NetworkSpec(2, [Layer({0: np.eye(2)}), Layer({1: np.eye(2)})], readout={5: np.eye(2)})
    with pytest.raises(ValueError, match=r"^readout is empty"):
        NetworkSpec(2, [Layer({0: np.eye(2)})], readout={})
    with pytest.raises(ValueError, match=r"common number of rows"):
        NetworkSpec(2, [Layer({0: np.eye(2)})], readout={0: np.eye(2), 1: np.ones((3, 2))})


def test_wrong_input_dimension():
    spec = unrolled(*_ok_unrolled())
    with pytest.raises(ValueError, match=r"^input y has 5 columns; expected input_dim = 3$"):
        spec.evaluate(np.ones(5))
    with pytest.raises(ValueError, match=r"^input y has 2 columns; expected input_dim = 3$"):
        spec.evaluate(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"^input y has 3 dimension\(s\)"):
        spec.evaluate(np.ones((1, 1, 3)))
    with pytest.raises(ValueError, match=r"^input y has a non-finite entry"):
        spec.evaluate([1.0, np.nan, 0.0])
    with pytest.raises(ValueError, match=r"^jacobian takes one input"):
        spec.jacobian(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^input y has 4 columns"):
        spec.preactivations(np.ones(4))


def test_linearized_jacobian_bad_slopes():
    spec = unrolled(*_ok_unrolled())
    with pytest.raises(ValueError, match=r"^got 2 layer Jacobians; expected 3$"):
        spec.linearized_jacobian([np.ones(4)] * 2)
    with pytest.raises(ValueError, match=r"^D\[2\] has shape \(3,\); expected \(4,\) or \(4, 4\)$"):
        spec.linearized_jacobian([np.ones(4), np.ones(3), np.ones(4)])


def test_unknown_activation_name():
    with pytest.raises(ValueError, match=r"^activation 'tanh' is not supported by unrolled\(\)"):
        unrolled(*_ok_unrolled(), activation="tanh")


def test_empty_layers():
    with pytest.raises(ValueError, match=r"^a NetworkSpec needs at least one layer$"):
        NetworkSpec(3, [])
    with pytest.raises(ValueError, match=r"^V is empty"):
        unrolled([], [], [])
    with pytest.raises(ValueError, match=r"^input_dim must be a positive integer, got 0$"):
        NetworkSpec(0, [Layer({0: np.eye(2)})])


class _Backwards(Activation):
    name = "backwards"
    slope_interval = (1, 0)

    def __call__(self, v):
        return np.asarray(v, dtype=float)


def test_slope_interval_alpha_above_beta():
    with pytest.raises(ValueError, match=r"^layer 1: activation slope interval \[1, 0\] has alpha > beta$"):
        NetworkSpec(2, [Layer({0: np.eye(2)}, _Backwards())])


def test_activation_dimension_mismatch():
    with pytest.raises(ValueError, match=r"^layer 1: activation soft_threshold has dimension 3; expected 4$"):
        NetworkSpec(2, [Layer({0: np.ones((4, 2))}, SoftThreshold([0.1, 0.2, 0.3]))])
    with pytest.raises(ValueError, match=r"^layer 2: activation group_soft_threshold has dimension 2; expected 4$"):
        NetworkSpec(2, [Layer({0: np.ones((4, 2))}), Layer({1: np.eye(4)}, GroupSoftThreshold(0.1, [[0], [1]]))])


def test_layer_accessor():
    spec, g = _general_spec(2)
    layer = spec.layer(2)
    np.testing.assert_array_equal(layer.weights[1], g["W21"])
    np.testing.assert_array_equal(layer.bias, g["b2"])
    with pytest.raises(IndexError, match=r"state 0 is not produced by a layer"):
        spec.layer(0)
    with pytest.raises(ValueError, match="read-only"):
        spec.weights[0][0][0, 0] = 1.0


def test_jacobian_with_zero_thresholds_at_zero_input():
    spec = unrolled([None], [np.eye(2)], [0.0])  # x_1 = ST_0(y) = y: the identity map
    np.testing.assert_array_equal(spec.evaluate(np.array([0.3, -0.2])), [0.3, -0.2])
    np.testing.assert_array_equal(spec.jacobian(np.zeros(2)), np.eye(2))


def test_prefix_reproduces_every_iterate_of_an_unfolded_model():
    import torch

    from unfoldtheory.problems import SparseRecovery
    from unfoldtheory.unfold import LISTA

    p = SparseRecovery(6, 10, 0.2, seed=0)
    Y, _ = p.sample(4, seed=1)
    model = LISTA(p.A, 3, p.lam)
    spec = model.spec()
    with torch.no_grad():
        iterates = model(torch.as_tensor(Y), return_iterates=True)
    for k in (1, 2, 3):
        np.testing.assert_allclose(spec.prefix(k).evaluate(Y), iterates[k - 1].numpy(), atol=1e-12)
    for bad in (0, 4, 1.5, True):
        with pytest.raises(ValueError, match="prefix depth"):
            spec.prefix(bad)
