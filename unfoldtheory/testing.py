"""Hypothesis strategies for property tests of unfolded networks.

In the style of :mod:`hypothesis.extra.numpy`: each public function checks its arguments
(a bad one raises ``ValueError`` naming it, at call time) and returns a
:class:`~hypothesis.strategies.SearchStrategy` that you compose in your own ``@given`` tests.

**Size convention.** Every size argument (``m``, ``n``, ``K``, ``sparsity``) is either an
``int`` (that exact size) or a strategy that draws ints, e.g. ``st.integers(2, 8)`` for a
range. The defaults are small ranges, so that a test runs fast.

**Determinism.** Everything is drawn through hypothesis: Gaussian entries come from
``numpy.random.default_rng(seed)`` with ``seed`` drawn by ``st.integers``, and every other
number (norms, thresholds, steps, signal values; large sparse supports excepted, see
:func:`sparse_signals`) is drawn directly, so examples replay and shrink (towards seed 0, zero
perturbations and small supports).

Example (a user's test module)::

    import numpy as np
    from hypothesis import given, settings, strategies as st
    from hypothesis.extra import numpy as hnp

    from unfoldtheory import testing as ut

    @settings(max_examples=50)
    @given(ut.unrolled_specs(m=st.integers(2, 6), n=st.integers(2, 10), K=3, max_norm=0.9),
           st.data())
    def test_output_moves_at_most_the_norm_product(spec, data):
        ys = hnp.arrays(np.float64, spec.input_dim, elements=st.floats(-1, 1))
        y1, y2 = data.draw(ys), data.draw(ys)
        gap = np.linalg.norm(spec(y1) - spec(y2))
        assert gap <= 10 * np.linalg.norm(y1 - y2) + 1e-12   # ‖V‖ Σ_j ‖W‖^j ≤ 0.9 / 0.1 < 10

    @given(ut.sensing_matrices(m=20, n=40), ut.sparse_signals(40, sparsity=3, exact=True))
    def test_measurements_are_finite(A, x):
        assert np.all(np.isfinite(A @ x))

Strategies
----------
:func:`sensing_matrices`, :func:`sparse_signals`, :func:`unrolled_parameters`,
:func:`unrolled_specs`, :func:`step_size_schedules`, and adversarial ones that try to break float64
certificates: :func:`adversarial_specs`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.strategies import SearchStrategy

from unfoldtheory.activations import Identity, ReLU, SoftThreshold
from unfoldtheory.spec import Layer, NetworkSpec, unrolled
from unfoldtheory.validation import finite_float

__all__ = [
    "UnrolledParameters",
    "adversarial_lasso_instances",
    "adversarial_specs",
    "cancelling_identity_specs",
    "near_singular_specs",
    "scaled_specs",
    "sensing_matrices",
    "sparse_signals",
    "step_size_schedules",
    "unrolled_parameters",
    "unrolled_specs",
]

IntOrStrategy = int | SearchStrategy[int]

_SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
UNROLLED_ACTIVATIONS: tuple[str, ...] = ("soft_threshold", "relu")
# Supports up to this size are drawn entry by entry through hypothesis; larger ones from a seed.
_DRAWN_SUPPORT = 32
# A normalised column whose norm is below this (relative to the typical 1) is redrawn.
_MIN_COLUMN_NORM = 1e-6
# Weights rescaled onto a norm bound aim slightly inside it, so that the recomputed spectral
# norm never exceeds the bound by rounding.
_NORM_MARGIN = 1.0 - 1e-12


# ---------------------------------------------------------------------------- argument checks
def _size(value: Any, name: str, minimum: int = 1) -> SearchStrategy[int]:
    """An int size or a strategy of ints, as a strategy (checked now when it is an int)."""
    if isinstance(value, SearchStrategy):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum} or a strategy of ints, got {value!r}")
    return st.just(int(value))


def _int_arg(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _drawn_size(value: Any, name: str, minimum: int = 1) -> int:
    """Check a size drawn from a user's strategy."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} strategy drew {value!r}; expected an int >= {minimum}")
    return int(value)


def _ordered(lo: float, hi: float, lo_name: str, hi_name: str) -> None:
    if lo > hi:
        raise ValueError(f"{lo_name} ({lo}) exceeds {hi_name} ({hi})")


# ---------------------------------------------------------------------------- sensing matrices
def _gaussian(rng: np.random.Generator, m: int, n: int, normalize_columns: bool) -> np.ndarray:
    A = rng.standard_normal((m, n)) / math.sqrt(m)
    if normalize_columns:
        norms = np.linalg.norm(A, axis=0)
        while np.any(norms < _MIN_COLUMN_NORM):  # probability ~1e-6 for m = 1; deterministic
            bad = norms < _MIN_COLUMN_NORM
            A[:, bad] = rng.standard_normal((m, int(bad.sum()))) / math.sqrt(m)
            norms = np.linalg.norm(A, axis=0)
        A = A / norms
    return A


def sensing_matrices(m: IntOrStrategy | None = None, n: IntOrStrategy | None = None, *,
                     normalize_columns: bool = True) -> SearchStrategy[np.ndarray]:
    """Finite float64 sensing matrices ``A`` of shape ``(m, n)``.

    Entries are i.i.d. ``N(0, 1/m)`` (so columns have unit norm in expectation and ``‖A‖₂`` is
    of order ``1 + √(n/m)``), drawn from ``numpy.random.default_rng(seed)`` with a drawn
    ``seed``. With ``normalize_columns=True`` (the default) every column is scaled to unit
    ℓ2 norm, as in :class:`~unfoldtheory.problems.SparseRecovery`; a column too close to zero
    to normalise is redrawn, so no column is degenerate.

    ``m`` (default ``st.integers(1, 8)``) and ``n`` (default ``st.integers(1, 12)``) are ints
    or strategies of ints.
    """
    m_st = _size(st.integers(1, 8) if m is None else m, "m")
    n_st = _size(st.integers(1, 12) if n is None else n, "n")
    if not isinstance(normalize_columns, bool):
        raise ValueError(f"normalize_columns must be a bool, got {normalize_columns!r}")

    @st.composite
    def build(draw: st.DrawFn) -> np.ndarray:
        mm = _drawn_size(draw(m_st), "m")
        nn = _drawn_size(draw(n_st), "n")
        return _gaussian(np.random.default_rng(draw(_SEEDS)), mm, nn, normalize_columns)

    return build()


# ---------------------------------------------------------------------------- sparse signals
def sparse_signals(n: IntOrStrategy, sparsity: IntOrStrategy | None = None, *, amplitude: float = 1.0,
                   exact: bool = False, min_amplitude: float = 0.0,
                   nonnegative: bool = False) -> SearchStrategy[np.ndarray]:
    """Sparse float64 vectors ``x`` of length ``n`` with ``‖x‖_∞ ≤ amplitude``.

    Parameters
    ----------
    n:
        The length: an int or a strategy of ints.
    sparsity:
        ``s``, an int ≥ 0 or a strategy of ints; default ``n`` (any support size). When ``n`` is a
        strategy, a drawn ``s`` larger than the drawn ``n`` is clipped to ``n``.
    amplitude:
        ``B > 0``: every entry satisfies ``|x_i| ≤ B``.
    exact:
        ``False`` (default): *at most* ``s`` nonzeros (the support has at most ``s`` indices
        and a value drawn there may be 0). ``True``: *exactly* ``s`` nonzeros, each with
        ``min_amplitude ≤ |x_i|`` and ``x_i ≠ 0``.
    min_amplitude:
        Lower bound ``0 ≤ b ≤ B`` on the magnitude of the entries on the support.
        The extreme magnitude ``B`` itself is drawn with raised probability.
    nonnegative:
        Only nonnegative entries (for the nonnegative Lasso / ReLU networks).

    With ``s ≤ 32`` the support and every value are drawn by hypothesis (so boundary values such
    as ``B`` are tried, and examples shrink to small supports and simple values). A larger ``s``
    would exceed hypothesis's entropy budget: then only the support size is drawn directly, and
    the support and values (uniform magnitudes in ``[b, B]``, random signs) come from a drawn
    seed.
    """
    n_st = _size(n, "n")
    s_st = None if sparsity is None else _size(sparsity, "sparsity", minimum=0)
    if isinstance(n, (int, np.integer)) and isinstance(sparsity, (int, np.integer)) and sparsity > n:
        raise ValueError(f"sparsity ({sparsity}) exceeds n ({n})")
    B = finite_float(amplitude, "amplitude", low=0.0, low_open=True)
    b = finite_float(min_amplitude, "min_amplitude", low=0.0)
    _ordered(b, B, "min_amplitude", "amplitude")
    for flag, name in ((exact, "exact"), (nonnegative, "nonnegative")):
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be a bool, got {flag!r}")
    magnitudes = st.one_of(st.just(B), st.floats(min_value=b, max_value=B, exclude_min=exact and b == 0.0,
                                                 allow_nan=False, allow_infinity=False, allow_subnormal=False))

    @st.composite
    def build(draw: st.DrawFn) -> np.ndarray:
        nn = _drawn_size(draw(n_st), "n")
        s = nn if s_st is None else min(_drawn_size(draw(s_st), "sparsity", minimum=0), nn)
        x = np.zeros(nn)
        if s <= _DRAWN_SUPPORT:
            support = draw(st.lists(st.integers(0, nn - 1), unique=True, min_size=s if exact else 0, max_size=s))
            for i in support:
                value = draw(magnitudes)
                x[i] = value if nonnegative or not draw(st.booleans()) else -value
            return x
        # A large support: its size is drawn, the rest comes from a drawn seed (entropy budget).
        k = draw(st.integers(s if exact else 0, s))
        rng = np.random.default_rng(draw(_SEEDS))
        values = rng.uniform(b, B, size=k)
        values[values == 0.0] = B  # probability ~2**-53; keeps exact supports nonzero
        if not nonnegative:
            values *= rng.choice([-1.0, 1.0], size=k)
        x[rng.choice(nn, size=k, replace=False)] = values
        return x

    return build()


# ---------------------------------------------------------------------------- unrolled networks
@dataclass(frozen=True, eq=False)
class UnrolledParameters:
    """The raw parameters of an unrolled network ``x_k = φ_k(W_k x_{k−1} + V_k y)``.

    ``W`` and ``V`` hold ``K`` arrays of shapes (n, n) and (n, m) (``W[0]`` multiplies
    ``x_0 = 0`` and has no effect); ``thresholds`` holds ``K`` floats or n-vectors. ``A`` and
    ``L = ‖A‖₂²`` are the sensing matrix and Lipschitz constant the ISTA-like weights were built
    from (``None`` for random weights); ``eps`` is the spectral norm of the perturbation added
    to them.
    """

    W: tuple[np.ndarray, ...]
    V: tuple[np.ndarray, ...]
    thresholds: tuple[float | np.ndarray, ...]
    activation: str
    A: np.ndarray | None = None
    L: float | None = None
    eps: float = 0.0

    @property
    def K(self) -> int:
        return len(self.V)

    def spec(self, name: str = "unrolled") -> NetworkSpec:
        """The network, built with :func:`unfoldtheory.spec.unrolled`."""
        return unrolled(list(self.W), list(self.V), list(self.thresholds), activation=self.activation, name=name)


def _with_norm(G: np.ndarray, target: float) -> np.ndarray:
    """``G`` rescaled to spectral norm ``target`` (just inside it); zero when target or G is 0."""
    norm = float(np.linalg.norm(G, 2))
    if norm == 0.0 or target == 0.0:
        return np.zeros_like(G)
    return G * (target * _NORM_MARGIN / norm)


def _capped(M: np.ndarray, cap: float | None) -> np.ndarray:
    if cap is None:
        return M
    norm = float(np.linalg.norm(M, 2))
    return M if norm <= cap else _with_norm(M, cap)


def unrolled_parameters(m: IntOrStrategy | None = None, n: IntOrStrategy | None = None,
                        K: IntOrStrategy | None = None, *, max_layers: int | None = None,
                        activation: str | SearchStrategy[str] = "soft_threshold",
                        max_norm: float | None = None, min_threshold: float = 0.0, max_threshold: float = 1.0,
                        per_coordinate_thresholds: bool = False, near_ista: bool = False,
                        perturbation: float = 0.05) -> SearchStrategy[UnrolledParameters]:
    """Parameters of unrolled networks, as :class:`UnrolledParameters` (see :func:`unrolled_specs`)."""
    m_st = _size(st.integers(1, 6) if m is None else m, "m")
    n_st = _size(st.integers(1, 8) if n is None else n, "n")
    if max_layers is not None:
        if K is not None:
            raise ValueError("give K or max_layers, not both")
        K = st.integers(1, _int_arg(max_layers, "max_layers"))
    K_st = _size(st.integers(1, 4) if K is None else K, "K")
    if isinstance(activation, SearchStrategy):
        act_st = activation
    elif activation in UNROLLED_ACTIVATIONS:
        act_st = st.just(activation)
    else:
        raise ValueError(f"activation must be one of {UNROLLED_ACTIVATIONS} or a strategy of them, got {activation!r}")
    cap = None if max_norm is None else finite_float(max_norm, "max_norm", low=0.0)
    lo = finite_float(min_threshold, "min_threshold", low=0.0)
    hi = finite_float(max_threshold, "max_threshold", low=0.0)
    _ordered(lo, hi, "min_threshold", "max_threshold")
    eps_max = finite_float(perturbation, "perturbation", low=0.0)
    for flag, name in ((per_coordinate_thresholds, "per_coordinate_thresholds"), (near_ista, "near_ista")):
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be a bool, got {flag!r}")
    theta_elements = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    unit = st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False)

    @st.composite
    def build(draw: st.DrawFn) -> UnrolledParameters:
        mm = _drawn_size(draw(m_st), "m")
        nn = _drawn_size(draw(n_st), "n")
        kk = _drawn_size(draw(K_st), "K")
        act = draw(act_st)
        if act not in UNROLLED_ACTIVATIONS:
            raise ValueError(f"activation strategy drew {act!r}; expected one of {UNROLLED_ACTIVATIONS}")
        rng = np.random.default_rng(draw(_SEEDS))
        A = L = None
        eps = 0.0
        if near_ista:
            A = _gaussian(rng, mm, nn, normalize_columns=True)
            L = float(np.linalg.norm(A, 2) ** 2)
            eps = eps_max * draw(unit)
            W0, V0 = np.eye(nn) - A.T @ A / L, A.T / L
            Ws = [_capped(W0 + _with_norm(rng.standard_normal((nn, nn)), eps), cap) for _ in range(kk)]
            Vs = [_capped(V0 + _with_norm(rng.standard_normal((nn, mm)), eps), cap) for _ in range(kk)]
        else:
            bound = 1.0 if cap is None else cap
            Ws = [_with_norm(rng.standard_normal((nn, nn)), bound * draw(unit)) for _ in range(kk)]
            Vs = [_with_norm(rng.standard_normal((nn, mm)), bound * draw(unit)) for _ in range(kk)]
        if per_coordinate_thresholds:
            thetas: list[float | np.ndarray] = [draw(hnp.arrays(np.float64, nn, elements=theta_elements))
                                                for _ in range(kk)]
        else:
            thetas = [draw(theta_elements) for _ in range(kk)]
        return UnrolledParameters(tuple(Ws), tuple(Vs), tuple(thetas), act, A, L, eps)

    return build()


def unrolled_specs(m: IntOrStrategy | None = None, n: IntOrStrategy | None = None,
                   K: IntOrStrategy | None = None, *, max_layers: int | None = None,
                   activation: str | SearchStrategy[str] = "soft_threshold",
                   max_norm: float | None = None, min_threshold: float = 0.0, max_threshold: float = 1.0,
                   per_coordinate_thresholds: bool = False, near_ista: bool = False,
                   perturbation: float = 0.05, name: str = "unrolled") -> SearchStrategy[NetworkSpec]:
    """Valid :class:`~unfoldtheory.spec.NetworkSpec` s of unrolled networks
    ``x_0 = 0``, ``x_k = φ_k(W_k x_{k−1} + V_k y)``, built with :func:`unfoldtheory.spec.unrolled`.

    Parameters
    ----------
    m, n, K:
        Input dimension, state dimension and number of layers: ints or strategies of ints
        (defaults ``st.integers(1, 6)``, ``st.integers(1, 8)``, ``st.integers(1, 4)``).
    max_layers:
        Shorthand for ``K=st.integers(1, max_layers)`` (give ``K`` or ``max_layers``, not both).
    activation:
        ``"soft_threshold"`` (LISTA/ISTA) or ``"relu"`` (``max(v − θ, 0)``), or a strategy of
        these, e.g. ``st.sampled_from(["soft_threshold", "relu"])``.
    max_norm:
        Bound on the spectral norm of every ``W_k`` and ``V_k``. Random weights
        (``near_ista=False``) have Gaussian directions and spectral norms drawn from
        ``[0, max_norm]`` (default ``max_norm`` 1.0). ISTA-like weights are rescaled onto
        ``max_norm`` only where they exceed it (default: no cap).
    min_threshold, max_threshold:
        Range of the thresholds ``θ_k ≥ 0``.
    per_coordinate_thresholds:
        Draw each ``θ_k`` as an n-vector instead of a scalar.
    near_ista:
        ISTA-like weights: with ``A`` from :func:`sensing_matrices` (unit columns) and
        ``L = ‖A‖₂²``, ``W_k = I − AᵀA/L + E_k`` and ``V_k = Aᵀ/L + F_k``, where the
        perturbations have spectral norm ``eps ∈ [0, perturbation]`` (drawn once per network;
        ``eps = 0`` is ISTA with step ``1/L``, whose thresholds are ``θ_k = λ/L``).
    perturbation:
        The largest ``eps`` (≥ 0).
    name:
        The spec's name.

    Use :func:`unrolled_parameters` with the same arguments to get the raw ``W``, ``V``,
    thresholds (and ``A``, ``L``) instead.
    """
    if not isinstance(name, str):
        raise ValueError(f"name must be a str, got {name!r}")
    return unrolled_parameters(m, n, K, max_layers=max_layers, activation=activation, max_norm=max_norm,
                               min_threshold=min_threshold, max_threshold=max_threshold,
                               per_coordinate_thresholds=per_coordinate_thresholds, near_ista=near_ista,
                               perturbation=perturbation).map(lambda p: p.spec(name))


# ---------------------------------------------------------------------------- adversarial specs
_ADVERSARIAL_KINDS: tuple[str, ...] = ("scaled", "cancelling", "near_singular")


def _exponent_range(min_exponent: Any, max_exponent: Any) -> tuple[int, int]:
    lo = _int_arg(min_exponent, "min_exponent", minimum=-300)
    hi = _int_arg(max_exponent, "max_exponent", minimum=-300)
    if hi > 300:
        raise ValueError(f"max_exponent must be <= 300 (float64 overflows near 1e308), got {hi}")
    _ordered(lo, hi, "min_exponent", "max_exponent")
    return lo, hi


def _activation_layer(kind: str, weights: dict[int, np.ndarray], theta: np.ndarray) -> Layer:
    if kind == "soft_threshold":
        return Layer(weights, SoftThreshold(theta))
    return Layer(weights, ReLU(), -theta)


def adversarial_specs(m: IntOrStrategy | None = None, n: IntOrStrategy | None = None,
                      K: IntOrStrategy | None = None, *, kinds: tuple[str, ...] = _ADVERSARIAL_KINDS,
                      min_exponent: int = -200, max_exponent: int = 200) -> SearchStrategy[NetworkSpec]:
    """Small specs built to break float64 certificates: extreme scales, exact cancellations, near-singularity.

    Each example is one of ``kinds``:

    * ``"scaled"``: an unrolled net (ReLU or soft-threshold) whose layers are scaled by ``10^e_k`` with
      ``e_k`` in ``[min_exponent, max_exponent]`` (the product of the scales stays inside
      ``10^±300``, so the output is finite); thresholds follow the scale of the pre-activations.
    * ``"cancelling"``: an identity chain ``z_1 = a·y``, ``z_2 = b·z_1`` (identity states) feeding
      ``φ(W z_2 − fl(W b a) y + c)``: the exact combined weight ``W(ba) − fl(W b a)`` is rounding noise that
      float64 elimination sees as 0 (or as something else), at a scale ``10^e``.
    * ``"near_singular"``: an unrolled net whose weights have singular values spread over ``[10^-15, 1]``,
      some exactly repeated rows (a rank-deficient layer).

    Every example is a valid :class:`~unfoldtheory.spec.NetworkSpec` with finite weights; ``m``, ``n``,
    ``K`` (input dimension, width, layers) default to ``1..3``.
    """
    m_st = _size(st.integers(1, 3) if m is None else m, "m")
    n_st = _size(st.integers(1, 3) if n is None else n, "n")
    K_st = _size(st.integers(1, 3) if K is None else K, "K")
    if not isinstance(kinds, tuple) or not kinds or any(k not in _ADVERSARIAL_KINDS for k in kinds):
        raise ValueError(f"kinds must be a non-empty tuple drawn from {_ADVERSARIAL_KINDS}, got {kinds!r}")
    lo, hi = _exponent_range(min_exponent, max_exponent)
    acts = st.sampled_from(UNROLLED_ACTIVATIONS)

    @st.composite
    def build(draw: st.DrawFn) -> NetworkSpec:
        mm, nn, kk = (_drawn_size(draw(s), name) for s, name in ((m_st, "m"), (n_st, "n"), (K_st, "K")))
        kind = draw(st.sampled_from(kinds))
        act = draw(acts)
        rng = np.random.default_rng(draw(_SEEDS))
        if kind == "cancelling":
            e = draw(st.integers(lo, hi))
            a = rng.standard_normal((mm, mm))
            b = rng.standard_normal((mm, mm))
            W = rng.standard_normal((nn, mm)) * 10.0 ** e
            cancel = -((W @ b) @ a)
            c = np.abs(rng.standard_normal(nn)) * draw(st.sampled_from([0.0, 1.0, 10.0 ** e]))
            layers = [Layer({0: a}, Identity()), Layer({1: b}, Identity()),
                      _activation_layer(act, {2: W, 0: cancel}, c)]
            return NetworkSpec(mm, layers, name=f"cancelling identity chain (scale 1e{e})")
        scale = 0
        layers = []
        for k in range(kk):
            if kind == "scaled":
                e_lo, e_hi = max(lo, -300 - scale), min(hi, 300 - scale)
                e = draw(st.integers(min(e_lo, e_hi), e_hi))
                V = rng.standard_normal((nn, mm)) * 10.0 ** (scale + e if k else e)
                W = rng.standard_normal((nn, nn)) * 10.0 ** e
                scale = scale + e if k else e
            else:
                spread = draw(st.integers(0, 15))
                U, _, Vt = np.linalg.svd(rng.standard_normal((nn, nn)))
                W = (U * np.logspace(0, -spread, nn)) @ Vt
                V = rng.standard_normal((nn, mm))
                if nn > 1 and draw(st.booleans()):
                    W[-1], V[-1] = W[0], V[0]  # a repeated row: the layer is rank deficient
            theta = np.abs(rng.standard_normal(nn)) * draw(st.sampled_from([0.0, 0.1, 1.0])) * 10.0 ** scale
            weights = {0: V} if k == 0 else {0: V, k: W}
            layers.append(_activation_layer(act, weights, theta))
        return NetworkSpec(mm, layers, name=f"{kind} unrolled net")

    return build()


# ---------------------------------------------------------------------------- step sizes
def step_size_schedules(K: IntOrStrategy | None = None, L: float = 1.0, mu: float = 0.0, *,
                        low: float = 0.0, high: float | None = None, exclude_low: bool = True,
                        exclude_high: bool = True, constant: bool = False) -> SearchStrategy[np.ndarray]:
    """Step-size schedules ``γ_1 … γ_K`` as float64 arrays of shape ``(K,)``.

    By default every step lies in the open interval ``(0, 2/L)``, the range in which a
    gradient step on an ``L``-smooth, ``μ``-strongly convex function is nonexpansive (and
    contracting when ``μ > 0``). ``low``/``high`` change the range (``high`` defaults to
    ``2/L``) and ``exclude_low``/``exclude_high`` make its ends open (default) or closed; a step
    is always ``> 0``. The classical steps ``1/L`` and ``2/(L + μ)`` are drawn with raised
    probability when they lie in the range.

    Parameters
    ----------
    K:
        Number of steps: an int or a strategy of ints (default ``st.integers(1, 10)``).
    L, mu:
        Smoothness ``L > 0`` and strong convexity ``0 ≤ μ ≤ L`` of the function class.
    constant:
        All ``K`` steps equal (one drawn step, repeated).
    """
    K_st = _size(st.integers(1, 10) if K is None else K, "K")
    LL = finite_float(L, "L", low=0.0, low_open=True)
    mm = finite_float(mu, "mu", low=0.0)
    if mm > LL:
        raise ValueError(f"mu ({mm}) exceeds L ({LL})")
    for flag, flag_name in ((exclude_low, "exclude_low"), (exclude_high, "exclude_high"), (constant, "constant")):
        if not isinstance(flag, bool):
            raise ValueError(f"{flag_name} must be a bool, got {flag!r}")
    lo = finite_float(low, "low", low=0.0)
    hi = 2.0 / LL if high is None else finite_float(high, "high", low=0.0, low_open=True)
    if lo == 0.0 and not exclude_low:
        raise ValueError("low = 0 with exclude_low=False would allow a zero step; steps must be > 0")
    _ordered(lo, hi, "low", "high")
    if lo == hi and (exclude_low or exclude_high):
        raise ValueError(f"low = high = {lo} with an excluded end: the step range is empty")
    inside = [g for g in (1.0 / LL, 2.0 / (LL + mm))
              if (lo < g or (lo == g and not exclude_low)) and (g < hi or (g == hi and not exclude_high))]
    steps = st.floats(lo, hi, exclude_min=exclude_low, exclude_max=exclude_high,
                      allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if inside:
        steps = st.one_of(st.sampled_from(sorted(set(inside))), steps)

    @st.composite
    def build(draw: st.DrawFn) -> np.ndarray:
        kk = _drawn_size(draw(K_st), "K")
        if constant:
            return np.full(kk, draw(steps), dtype=np.float64)
        return draw(hnp.arrays(np.float64, kk, elements=steps))

    return build()


# ---------------------------------------------------------------------------- adversarial Lasso instances
def adversarial_lasso_instances(m: IntOrStrategy | None = None, n: IntOrStrategy | None = None,
                                batch: IntOrStrategy | None = None, *, min_scale: float = 1e-200,
                                max_scale: float = 1e200,
                                min_lam: float = 1e-300) -> SearchStrategy[tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
    """Lasso instances ``(A, X, Y, lam)`` that try to break a float64 duality-gap certificate.

    ``A`` is ``(m, n)``, ``Y`` is ``(batch, m)`` (right-hand sides), ``X`` is ``(batch, n)`` (points whose
    gap is to be certified) and ``lam > 0`` a float. Each example is one of four kinds:

    * **ordinary:** unit-column Gaussian ``A``, Gaussian ``y``, ``λ`` a fraction of ``‖Aᵀy‖∞``;
    * **float floor:** ``y = A x₀`` with ``x₀`` sparse and ``λ`` drawn log-uniformly in
      ``[min_lam, 1e-14]`` (times ``‖y‖∞``), so that ``P(x)`` is of the order of ``ε‖y‖²`` or below;
    * **extreme scales:** ``A`` and ``y`` multiplied by powers of ten between ``min_scale`` and
      ``max_scale``, ``λ`` a fraction of ``‖Aᵀy‖∞`` (kept finite and ``≥ min_lam``);
    * **cancelling:** small-integer ``A`` with duplicated and negated columns and ``y = A x₀`` for an
      integer ``x₀``, so that residuals cancel exactly or almost.

    The rows of ``X`` are zeros, ``x₀`` (or ``0`` where none), ``x₀`` perturbed in its last bits, dense
    Gaussian points at the scale of ``y`` over ``A``, or sparse small integers.
    ``m`` (default ``st.integers(1, 6)``), ``n`` (default ``st.integers(1, 8)``) and ``batch`` (default
    ``st.integers(1, 3)``) are ints or strategies of ints; ``0 < min_scale ≤ 1 ≤ max_scale`` and
    ``0 < min_lam ≤ 1e-14`` are finite floats.
    """
    m_st = _size(st.integers(1, 6) if m is None else m, "m")
    n_st = _size(st.integers(1, 8) if n is None else n, "n")
    b_st = _size(st.integers(1, 3) if batch is None else batch, "batch")
    lo_s = finite_float(min_scale, "min_scale", low=0.0, high=1.0, low_open=True)
    hi_s = finite_float(max_scale, "max_scale", low=1.0)
    lo_lam = finite_float(min_lam, "min_lam", low=0.0, high=1e-14, low_open=True)
    log_lo_s, log_hi_s, log_lo_lam = math.log10(lo_s), math.log10(hi_s), math.log10(lo_lam)

    def finite_lam(value: float) -> float:
        return float(min(max(value, lo_lam), 1e300)) if math.isfinite(value) else 1e300

    @st.composite
    def build(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        mm = _drawn_size(draw(m_st), "m")
        nn = _drawn_size(draw(n_st), "n")
        bb = _drawn_size(draw(b_st), "batch")
        rng = np.random.default_rng(draw(_SEEDS))
        kind = draw(st.sampled_from(["ordinary", "floor", "scaled", "cancelling"]))
        x0 = np.zeros(nn)
        if kind == "cancelling":
            A = rng.integers(-3, 4, size=(mm, nn)).astype(np.float64)
            for j in range(1, nn):
                if rng.random() < 0.4:
                    A[:, j] = A[:, rng.integers(0, j)] * rng.choice([-1.0, 1.0])
            x0[rng.choice(nn, size=min(nn, 3), replace=False)] = rng.integers(-4, 5, size=min(nn, 3))
            Y = np.tile(A @ x0, (bb, 1))
        else:
            A = _gaussian(rng, mm, nn, normalize_columns=True)
            if kind == "floor":
                x0[rng.choice(nn, size=min(nn, 3), replace=False)] = rng.standard_normal(min(nn, 3))
                Y = np.tile(A @ x0, (bb, 1))
            else:
                Y = rng.standard_normal((bb, mm))
        if kind == "scaled":
            A = A * 10.0 ** draw(st.floats(log_lo_s, log_hi_s))
            Y = Y * 10.0 ** draw(st.floats(log_lo_s, log_hi_s))
        ynorm = float(np.abs(Y).max(initial=0.0))
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            corr = float(np.abs(Y @ A).max(initial=0.0))
            if kind == "floor" or (kind == "cancelling" and draw(st.booleans())):
                lam = finite_lam(10.0 ** draw(st.floats(log_lo_lam, -14.0)) * max(ynorm, 1.0))
            else:
                lam = finite_lam(draw(st.floats(0.01, 1.5)) * corr)
            xscale = ynorm / max(float(np.abs(A).max(initial=0.0)), lo_s)
            rows = []
            for _ in range(bb):
                pick = draw(st.sampled_from(["zero", "x0", "x0_bits", "dense", "integers"]))
                if pick == "zero":
                    rows.append(np.zeros(nn))
                elif pick == "x0":
                    rows.append(x0.copy())
                elif pick == "x0_bits":
                    rows.append(x0 * (1.0 + rng.integers(-4, 5, size=nn) * 2.0**-52))
                elif pick == "dense":
                    rows.append(rng.standard_normal(nn) * xscale)
                else:
                    rows.append(rng.integers(-2, 3, size=nn) * (rng.random(nn) < 0.5).astype(np.float64))
            X = np.array(rows)
        X = np.where(np.isfinite(X), X, 0.0)
        return A, X, Y, lam

    return build()


def _rescaled_activation(act: Any, scale: float) -> Any:
    """``σ·φ(·/σ)`` of a built-in activation: the same activation with its parameters times ``σ``."""
    from unfoldtheory.activations import BoxProjection, GroupSoftThreshold, SoftThreshold

    if isinstance(act, SoftThreshold):
        return SoftThreshold(act.theta * scale)
    if isinstance(act, BoxProjection):
        return BoxProjection(act.lower * scale, act.upper * scale)
    if isinstance(act, GroupSoftThreshold):
        return GroupSoftThreshold(act.theta * scale, act.groups)
    return act  # ReLU, identity: positively homogeneous


def scaled_specs(specs: SearchStrategy[NetworkSpec] | None = None, *,
                 max_exponent: int = 332) -> SearchStrategy[tuple[NetworkSpec, NetworkSpec, float]]:
    """Triples ``(base, scaled, output_scale)``: a spec and the same network with its states rescaled by powers of two.

    Every state ``z_k`` of ``base`` (drawn from ``specs``, default small soft-threshold/ReLU
    :func:`unrolled_specs`) gets a factor ``σ_k = 2^{e_k}`` and the output ``σ_out = 2^{e_out}`` (``σ_0 = 1``, the
    ``e`` drawn from ``[-max_exponent, max_exponent]``): ``W_kj ↦ W_kj σ_k/σ_j``, ``b_k ↦ σ_k b_k``, thresholds and
    box bounds times ``σ_k``, ``C_k ↦ C_k σ_out/σ_k``. Powers of two scale exactly (away from under/overflow), so
    ``scaled(y) = σ_out·base(y)`` in exact arithmetic and its Lipschitz constant is exactly ``σ_out`` times the
    base one, while its weights range over ``2^{±2·max_exponent}`` (default about 1e-200 … 1e200).

    ``max_exponent`` is an int in [0, 500] (default 332, σ up to about 1e±100).
    """
    from unfoldtheory.spec import Layer

    max_exponent = _int_arg(max_exponent, "max_exponent", minimum=0)
    if max_exponent > 500:
        raise ValueError(f"max_exponent must be at most 500 (weights scale by 2^(2*max_exponent)), got {max_exponent}")
    if specs is None:
        specs = unrolled_specs(m=st.integers(1, 3), n=st.integers(1, 3), K=st.integers(1, 3),
                               activation=st.sampled_from(list(UNROLLED_ACTIVATIONS)))
    elif not isinstance(specs, SearchStrategy):
        raise ValueError(f"specs must be a strategy of NetworkSpecs, got {specs!r}")
    exponents = st.integers(-max_exponent, max_exponent)

    @st.composite
    def build(draw: st.DrawFn) -> tuple[NetworkSpec, NetworkSpec, float]:
        base = draw(specs)
        if not isinstance(base, NetworkSpec):
            raise ValueError(f"specs strategy drew {type(base).__name__}; expected NetworkSpec")
        sig = [1.0] + [math.ldexp(1.0, draw(exponents)) for _ in range(base.num_layers)]
        out = math.ldexp(1.0, draw(exponents))
        layers = [Layer({j: w * (sig[k] / sig[j]) for j, w in ws.items()}, _rescaled_activation(act, sig[k]), b * sig[k], d)
                  for k, (ws, b, act, d) in enumerate(zip(base.weights, base.biases, base.activations, base.dims[1:],
                                                          strict=True), start=1)]
        readout = {k: c * (out / sig[k]) for k, c in base.readout.items()}
        return base, NetworkSpec(base.input_dim, layers, readout, name=f"{base.name} (scaled)"), out

    return build()


def cancelling_identity_specs(m: IntOrStrategy | None = None, n: IntOrStrategy | None = None, *,
                              max_decades: int = 20) -> SearchStrategy[NetworkSpec]:
    """Specs with a cancelling identity chain, as in issue 12: ``z₁ = A y`` (identity), ``z₂ = φ(W z₁ + V y + b)``
    with ``W`` of size ``10^s`` (``s`` drawn in ``[0, max_decades]``) and ``V = −fl(W A) + E``, ``E`` a perturbation
    ``10^{-t}`` relative (``t`` in ``[0, 17]``, 17: none): the exact map ``(WA + V) y`` is tiny against the products
    ``W z₁`` and ``V y`` whose float64 sum cancels. ``φ`` is ReLU or soft-thresholding (θ drawn in [0, 1]).

    ``m`` (default ``st.integers(1, 3)``) and ``n`` (default ``st.integers(1, 3)``) size ``y`` and ``z₂``; ``z₁`` has
    ``m`` coordinates. ``max_decades`` is an int in [0, 150].
    """
    from unfoldtheory.activations import Identity, ReLU, SoftThreshold
    from unfoldtheory.spec import Layer

    m_st = _size(st.integers(1, 3) if m is None else m, "m")
    n_st = _size(st.integers(1, 3) if n is None else n, "n")
    max_decades = _int_arg(max_decades, "max_decades", minimum=0)
    if max_decades > 150:
        raise ValueError(f"max_decades must be at most 150, got {max_decades}")

    @st.composite
    def build(draw: st.DrawFn) -> NetworkSpec:
        mm, nn = _drawn_size(draw(m_st), "m"), _drawn_size(draw(n_st), "n")
        rng = np.random.default_rng(draw(_SEEDS))
        big = 10.0 ** draw(st.integers(0, max_decades))
        t = draw(st.integers(0, 17))
        A = rng.standard_normal((mm, mm))
        W = big * rng.standard_normal((nn, mm))
        V = -(W @ A)
        if t < 17:
            V = V + 10.0 ** -t * np.abs(V).max() * rng.standard_normal((nn, mm))
        b = draw(st.floats(-1.0, 1.0)) * np.ones(nn)
        act = ReLU() if draw(st.booleans()) else SoftThreshold(draw(st.floats(0.0, 1.0)))
        return NetworkSpec(mm, [Layer({0: A}, Identity()), Layer({1: W, 0: V}, act, b)], name="cancelling identity chain")

    return build()


def near_singular_specs(m: IntOrStrategy | None = None, n: IntOrStrategy | None = None,
                        K: IntOrStrategy | None = None) -> SearchStrategy[NetworkSpec]:
    """Unrolled soft-threshold/ReLU specs whose every ``V_k`` and ``W_k`` is near-singular: ``U diag(s) Qᵀ`` with
    orthogonal ``U, Q`` and singular values ``1`` and ``10^{-p}`` (``p`` drawn in [4, 300] per matrix), so layers
    nearly collapse a direction, down to the float64 floor.

    ``m``, ``n``, ``K`` as in :func:`unrolled_specs` (defaults ``st.integers(1, 3)``, ``st.integers(2, 3)``,
    ``st.integers(1, 3)``).
    """
    m_st = _size(st.integers(1, 3) if m is None else m, "m")
    n_st = _size(st.integers(2, 3) if n is None else n, "n")
    K_st = _size(st.integers(1, 3) if K is None else K, "K")

    @st.composite
    def build(draw: st.DrawFn) -> NetworkSpec:
        mm, nn, KK = _drawn_size(draw(m_st), "m"), _drawn_size(draw(n_st), "n"), _drawn_size(draw(K_st), "K")
        rng = np.random.default_rng(draw(_SEEDS))

        def near_singular(rows: int, cols: int) -> np.ndarray:
            U, _ = np.linalg.qr(rng.standard_normal((rows, rows)))
            Q, _ = np.linalg.qr(rng.standard_normal((cols, cols)))
            r = min(rows, cols)
            s = np.ones(r)
            s[rng.integers(0, r)] = 10.0 ** -draw(st.integers(4, 300))
            return U[:, :r] @ np.diag(s) @ Q[:, :r].T

        W = [None] + [near_singular(nn, nn) for _ in range(KK - 1)]
        V = [near_singular(nn, mm) for _ in range(KK)]
        thresholds = [draw(st.floats(0.0, 0.5)) for _ in range(KK)]
        return unrolled(W, V, thresholds, activation=draw(st.sampled_from(list(UNROLLED_ACTIVATIONS))),
                        name="near-singular unrolled")

    return build()
