"""``NetworkSpec``: the framework-neutral float64 description that every analysis consumes.

A spec is a feed-forward graph of states ``z_0 = y`` (the input), ``z_1, …, z_N``::

    z_k = φ_k( Σ_{j<k} W_kj z_j + b_k ),      output = Σ_k C_k z_k

Each activation ``φ_k`` declares its slope interval, separability and firm nonexpansiveness
(:mod:`unfoldtheory.activations`). Input injection (LISTA: y enters every layer), momentum
(FISTA: z_k reads z_{k-1} and z_{k-2}) and correction branches are all edges of this graph.

Indexing: state ``k`` is produced by ``spec.layers[k - 1]``; weights are named ``W[k][j]`` in
error messages (the weight from state ``j`` into state ``k``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unfoldtheory.activations import Activation, Identity, ReLU, SoftThreshold, check_declaration
from unfoldtheory.activations import from_config as activation_from_config
from unfoldtheory.validation import as_finite_array


class NotRepresentable(Exception):
    """Raised by ``model.spec()`` when a model is not a feed-forward graph of slope-restricted
    activations (e.g. the bilinear maps of learned RPCA); the message says why."""


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr = np.array(arr, dtype=np.float64, copy=True)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class Layer:
    """One state ``z_k = φ(Σ_j W_kj z_j + b)``.

    ``weights`` maps a source state index ``j`` to ``W_kj`` (shape ``(dim, dim_j)``).
    ``dim`` is inferred from the bias or the first weight when not given.
    """

    weights: Mapping[int, Any]
    activation: Activation = field(default_factory=Identity)
    bias: Any = None
    dim: int | None = None

    def resolved_dim(self, where: str) -> int:
        if self.dim is not None:
            if isinstance(self.dim, bool) or not isinstance(self.dim, (int, np.integer)):
                raise ValueError(f"{where}: dim must be an integer, got {self.dim!r}")
            return int(self.dim)
        for j, w in self.weights.items():
            if np.ndim(w) != 2:
                raise ValueError(f"{where}: weight from state {j} has shape {np.shape(w)}; expected a 2-D matrix")
            return int(np.shape(w)[0])
        if self.bias is not None:
            if np.ndim(self.bias) != 1:
                raise ValueError(f"{where}: bias has shape {np.shape(self.bias)}; expected a vector")
            return int(np.shape(self.bias)[0])
        if self.activation.dim is not None:
            return int(self.activation.dim)
        raise ValueError(f"{where} has no weights, no bias and no dim: its dimension is unknown")


class NetworkSpec:
    """A feed-forward network of states, in float64, validated on construction.

    Parameters
    ----------
    input_dim:
        Dimension ``m`` of the input ``z_0 = y``.
    layers:
        The layers producing ``z_1 … z_N`` in order.
    readout:
        Maps a state index ``k`` to ``C_k``; the output is ``Σ_k C_k z_k``. Default: the last
        state, ``{N: I}``.
    name:
        A label used in reports.
    """

    def __init__(self, input_dim: int, layers: Sequence[Layer],
                 readout: Mapping[int, Any] | None = None, name: str = "network") -> None:
        if isinstance(input_dim, bool) or not isinstance(input_dim, (int, np.integer)) or input_dim < 1:
            raise ValueError(f"input_dim must be a positive integer, got {input_dim!r}")
        if len(layers) == 0:
            raise ValueError("a NetworkSpec needs at least one layer")
        self.name = str(name)
        dims = [int(input_dim)]
        self.weights: list[dict[int, np.ndarray]] = []
        self.biases: list[np.ndarray] = []
        self.activations: list[Activation] = []
        for k, layer in enumerate(layers, start=1):
            if not isinstance(layer, Layer):
                raise TypeError(f"layers[{k - 1}] is a {type(layer).__name__}; expected Layer")
            if not isinstance(layer.activation, Activation):
                raise TypeError(f"layer {k}: activation is a {type(layer.activation).__name__}; expected Activation")
            d = layer.resolved_dim(f"layer {k}")
            if d < 1:
                raise ValueError(f"layer {k} has dimension {d}; expected a positive integer")
            ws: dict[int, np.ndarray] = {}
            for j, w in layer.weights.items():
                if isinstance(j, bool) or not isinstance(j, (int, np.integer)):
                    raise ValueError(f"layer {k}: weight key {j!r} is not a state index")
                if not 0 <= j < k:
                    raise ValueError(
                        f"layer {k} reads state {j}, which is not computed before it: a NetworkSpec is "
                        f"feed-forward, so state {k} may only read states 0..{k - 1}")
                ws[int(j)] = _frozen(as_finite_array(w, f"W[{k}][{j}]", shape=(d, dims[j])))
            bias = np.zeros(d) if layer.bias is None else as_finite_array(layer.bias, f"b[{k}]", shape=(d,))
            layer.activation.check_dim(d, f"layer {k}")
            lo, hi = layer.activation.slope_interval
            if not lo <= hi:
                raise ValueError(f"layer {k}: activation slope interval [{lo}, {hi}] has alpha > beta")
            check_declaration(layer.activation, d, f"layer {k}")
            self.weights.append(ws)
            self.biases.append(_frozen(bias))
            self.activations.append(layer.activation)
            dims.append(d)
        self.dims: tuple[int, ...] = tuple(dims)
        if readout is None:
            readout = {len(dims) - 1: np.eye(dims[-1])}
        if len(readout) == 0:
            raise ValueError("readout is empty; it must read at least one state")
        out_dims = {np.asarray(c).shape[0] if np.ndim(c) == 2 else -1 for c in readout.values()}
        if len(out_dims) != 1 or -1 in out_dims:
            raise ValueError(f"readout matrices must be 2-D with a common number of rows, got rows {sorted(out_dims)}")
        out_dim = out_dims.pop()
        self.readout: dict[int, np.ndarray] = {}
        for k, c in readout.items():
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < len(dims):
                raise ValueError(f"readout reads state {k!r}; states are 0..{len(dims) - 1}")
            self.readout[int(k)] = _frozen(as_finite_array(c, f"C[{k}]", shape=(out_dim, dims[k])))

    # ------------------------------------------------------------------ structure
    @property
    def input_dim(self) -> int:
        return self.dims[0]

    @property
    def output_dim(self) -> int:
        return next(iter(self.readout.values())).shape[0]

    @property
    def num_layers(self) -> int:
        return len(self.dims) - 1

    def layer(self, k: int) -> Layer:
        """The layer producing state ``k`` (1-based), as a :class:`Layer`."""
        if not 1 <= k <= self.num_layers:
            raise IndexError(f"state {k} is not produced by a layer; layers are 1..{self.num_layers}")
        return Layer(dict(self.weights[k - 1]), self.activations[k - 1], self.biases[k - 1], self.dims[k])

    def prefix(self, k: int) -> NetworkSpec:
        """The sub-network of layers ``1..k``, read out as ``z_k``.

        For an unfolded model whose state ``k`` is its k-th iterate ``x_k``, this is the depth-k network.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= self.num_layers:
            raise ValueError(f"prefix depth must be an integer in 1..{self.num_layers}, got {k!r}")
        layers = [Layer(dict(ws), act, b, d) for ws, act, b, d in
                  zip(self.weights[:k], self.activations[:k], self.biases[:k], self.dims[1:k + 1], strict=True)]
        return NetworkSpec(self.input_dim, layers, {int(k): np.eye(self.dims[k])}, name=f"{self.name} (first {k} layers)")

    def __repr__(self) -> str:
        edges = sum(len(w) for w in self.weights)
        acts = sorted({a.name for a in self.activations})
        return (f"NetworkSpec({self.name!r}, input_dim={self.input_dim}, output_dim={self.output_dim}, "
                f"layers={self.num_layers}, edges={edges}, activations={acts})")

    # ------------------------------------------------------------------ evaluation
    def _input(self, y: Any) -> tuple[np.ndarray, bool]:
        arr = as_finite_array(y, "input y", ndim=(1, 2))
        single = arr.ndim == 1
        arr = arr[None, :] if single else arr
        if arr.shape[1] != self.input_dim:
            raise ValueError(f"input y has {arr.shape[1]} columns; expected input_dim = {self.input_dim}")
        return arr, single

    def preactivations(self, Y: Any) -> list[np.ndarray]:
        """Pre-activations ``v_k = Σ_j W_kj z_j + b_k`` for k = 1..N, each (batch, d_k)."""
        return self._forward(self._input(Y)[0])[1]

    def _forward(self, Y: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        states, pres = [Y], []
        for ws, b, act in zip(self.weights, self.biases, self.activations, strict=True):
            v = np.broadcast_to(b, (Y.shape[0], b.shape[0])).copy()
            for j, w in ws.items():
                v += states[j] @ w.T
            pres.append(v)
            states.append(act(v))
        return states, pres

    def evaluate(self, Y: Any, return_states: bool = False) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
        """The output for inputs ``Y`` of shape (batch, m) (or (m,) for one input).

        With ``return_states=True`` also returns the list of states ``[z_0, …, z_N]``.
        """
        Y2, single = self._input(Y)
        states, _ = self._forward(Y2.copy())
        out = sum(states[k] @ c.T for k, c in self.readout.items())
        if single:
            out, states = out[0], [s[0] for s in states]
        return (out, states) if return_states else out

    def __call__(self, Y: Any) -> np.ndarray:
        return self.evaluate(Y)  # type: ignore[return-value]

    # ------------------------------------------------------------------ Jacobians
    def layer_jacobians(self, y: Any) -> list[np.ndarray]:
        """The activation Jacobians ``D_k = ∂φ_k(v_k)`` at input ``y`` (Clarke elements)."""
        Y2, single = self._input(y)
        if not single and Y2.shape[0] != 1:
            raise ValueError(f"jacobian takes one input of shape ({self.input_dim},), got shape {Y2.shape}")
        _, pres = self._forward(Y2)
        return [act.jacobian(v[0]) for act, v in zip(self.activations, pres, strict=True)]

    def linearized_jacobian(self, layer_jacobians: Sequence[Any]) -> np.ndarray:
        """The input-output Jacobian for given activation Jacobians ``D_1 … D_N``.

        Each ``D_k`` is a (d_k, d_k) matrix or a length-d_k vector (a diagonal). Chain rule on the
        graph: ``J_0 = I``, ``J_k = D_k Σ_j W_kj J_j``, ``J = Σ_k C_k J_k``. With 0/1 slope patterns this is
        the Jacobian of one activation region, as used by activation-agnostic bounds.
        """
        if len(layer_jacobians) != self.num_layers:
            raise ValueError(f"got {len(layer_jacobians)} layer Jacobians; expected {self.num_layers}")
        jac = [np.eye(self.input_dim)]
        for k, (ws, d) in enumerate(zip(self.weights, layer_jacobians, strict=True), start=1):
            d = as_finite_array(d, f"D[{k}]", ndim=(1, 2))
            dk = self.dims[k]
            if d.shape not in ((dk,), (dk, dk)):
                raise ValueError(f"D[{k}] has shape {d.shape}; expected ({dk},) or ({dk}, {dk})")
            pre = sum((w @ jac[j] for j, w in ws.items()), np.zeros((dk, self.input_dim)))
            jac.append(d[:, None] * pre if d.ndim == 1 else d @ pre)
        return sum(c @ jac[k] for k, c in self.readout.items())

    def jacobian(self, y: Any) -> np.ndarray:
        """The Jacobian of the output with respect to the input at ``y`` (shape (out, m)).

        At a kink of an activation the Clarke-Jacobian element of
        :meth:`Activation.jacobian` is used, so ``‖jacobian(y)‖₂`` is a valid lower bound on the
        Lipschitz constant wherever the network is differentiable.
        """
        return self.linearized_jacobian(self.layer_jacobians(y))

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (weights as nested lists)."""
        return {
            "name": self.name,
            "input_dim": self.input_dim,
            "layers": [
                {"weights": {str(j): w.tolist() for j, w in ws.items()}, "bias": b.tolist(),
                 "activation": act.config(), "dim": d}
                for ws, b, act, d in zip(self.weights, self.biases, self.activations, self.dims[1:], strict=True)
            ],
            "readout": {str(k): c.tolist() for k, c in self.readout.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetworkSpec:
        """Inverse of :meth:`to_dict`; malformed data raises ValueError."""
        try:
            layers = [Layer({int(j): np.asarray(w) for j, w in layer["weights"].items()},
                            activation_from_config(layer["activation"]), np.asarray(layer["bias"]),
                            int(layer["dim"])) for layer in data["layers"]]
            readout = {int(k): np.asarray(c) for k, c in data["readout"].items()}
            return cls(int(data["input_dim"]), layers, readout, name=data.get("name", "network"))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a NetworkSpec description: {exc}") from None


_UNROLLED_ACTIVATIONS = ("soft_threshold", "relu")


def unrolled(W: Sequence[Any], V: Sequence[Any], thresholds: Sequence[Any],
             activation: str = "soft_threshold", name: str = "unrolled") -> NetworkSpec:
    """The common unrolled form: ``x_0 = 0``, ``x_k = φ_k(W_k x_{k−1} + V_k y)``, output ``x_K``.

    Parameters
    ----------
    W:
        K arrays of shape (n, n). ``W[0]`` multiplies ``x_0 = 0``; it may be given (it is checked
        and then has no effect) or be ``None``.
    V:
        K arrays of shape (n, m): the input injection.
    thresholds:
        K scalars or n-vectors ``θ_k ≥ 0``.
    activation:
        ``"soft_threshold"``: ``φ_k = ST_{θ_k}`` (LISTA, ISTA);
        ``"relu"``: ``φ_k(v) = max(v − θ_k, 0)``, the one-sided soft threshold (nonnegative Lasso).

    Example: ISTA with step 1/L on the Lasso is ``W_k = I − AᵀA/L``, ``V_k = Aᵀ/L``, ``θ_k = λ/L``.
    """
    if activation not in _UNROLLED_ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not supported by unrolled(); choose one of {_UNROLLED_ACTIVATIONS}")
    K = len(V)
    if K == 0:
        raise ValueError("V is empty: an unrolled network needs at least one layer")
    if len(W) != K:
        raise ValueError(f"W has {len(W)} entries; expected K = {K} (one per layer, W[0] may be None)")
    if len(thresholds) != K:
        raise ValueError(f"thresholds has {len(thresholds)} entries; expected K = {K}")
    V0 = as_finite_array(V[0], "V[0]", ndim=2)
    n, m = V0.shape
    Vs = [as_finite_array(v, f"V[{k}]", shape=(n, m)) for k, v in enumerate(V)]
    Ws = [None if (k == 0 and w is None) else as_finite_array(w, f"W[{k}]", shape=(n, n)) for k, w in enumerate(W)]
    layers = []
    for k in range(K):
        theta = as_finite_array(thresholds[k], f"thresholds[{k}]", ndim=(0, 1))
        if theta.ndim == 1 and theta.shape != (n,):
            raise ValueError(f"thresholds[{k}] has shape {theta.shape}; expected a scalar or ({n},)")
        if np.any(theta < 0):
            raise ValueError(f"thresholds[{k}] must be >= 0, got minimum {theta.min():.6g}")
        weights: dict[int, np.ndarray] = {0: Vs[k]}
        if k > 0:
            weights[k] = Ws[k]  # state k is x_k, read by layer k + 1
        if activation == "soft_threshold":
            layers.append(Layer(weights, SoftThreshold(theta), None, n))
        else:
            layers.append(Layer(weights, ReLU(), -np.broadcast_to(theta, (n,)), n))
    return NetworkSpec(m, layers, name=name)
