"""The layers of an unrolled iteration, read off a :class:`~unfoldtheory.spec.NetworkSpec`.

An unrolled iteration with ``x_0 = 0`` is the spec whose state ``k`` is the iterate ``x_k``::

    x_k = φ_k(W_k x_{k−1} + V_k x_{k−2} + B_k y + b_k),      k = 1..N,

where layer 1 reads only ``y`` (``x_0 = 0``), ``V_k`` (a momentum edge) exists only for ``k ≥ 3``, and
every other edge is refused. :func:`iteration_layers` returns these pieces per layer, or a ValueError
naming the first layer that reads something else. The contraction certificate
(:mod:`~unfoldtheory.convergence.spec_contraction`) and the method detection
(:mod:`~unfoldtheory.convergence.detect`) both read specs through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unfoldtheory.activations import Activation
from unfoldtheory.spec import NetworkSpec


@dataclass(frozen=True, eq=False)
class IterationLayer:
    """Layer ``k`` (1-based) of an unrolled iteration: ``x_k = φ(W x_{k−1} + V x_{k−2} + B y + b)``.

    ``W`` is None for layer 1 (and for a layer that ignores ``x_{k−1}``), ``V`` is None without a
    momentum edge, ``B`` is None when ``y`` does not enter the layer.
    """

    k: int
    W: np.ndarray | None
    V: np.ndarray | None
    B: np.ndarray | None
    bias: np.ndarray
    activation: Activation


def iteration_layers(spec: NetworkSpec, *, output: bool = True) -> list[IterationLayer]:
    """The layers of ``spec`` read as an unrolled iteration (module docstring); ValueError otherwise.

    Every state ``x_1..x_N`` must have the same dimension n (the iterate's); with ``output=True`` the
    network's output must be the last state ``x_N`` as well.
    """
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"expected a NetworkSpec, got {type(spec).__name__}")
    n = spec.dims[1]
    for k in range(2, spec.num_layers + 1):
        if spec.dims[k] != n:
            raise ValueError(f"state {k} has dimension {spec.dims[k]} but x_1 has {n}: not the iterates of one iteration")
    last = spec.num_layers
    if output and (set(spec.readout) != {last} or not np.array_equal(spec.readout[last], np.eye(n))):
        raise ValueError(f"the spec's output is not its last state x_{last}: not an unrolled iteration's output")
    layers = []
    for k, weights in enumerate(spec.weights, start=1):
        allowed = {0, k - 1} | ({k - 2} if k >= 3 else set())
        extra = sorted(set(weights) - allowed)
        if extra:
            raise ValueError(f"layer {k} reads state {extra[0]}: an unrolled iteration's layer k reads only y (state 0), "
                             f"x_(k−1) and, with momentum, x_(k−2)")
        W = weights.get(k - 1) if k >= 2 else None
        V = weights.get(k - 2) if k >= 3 else None
        layers.append(IterationLayer(k, W, V, weights.get(0), spec.biases[k - 1], spec.activations[k - 1]))
    return layers
