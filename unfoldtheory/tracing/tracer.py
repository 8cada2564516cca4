"""The interpreter: walk an exported graph and build the :class:`~unfoldtheory.spec.NetworkSpec` of its map.

States: ``z_0`` is the flattened per-sample input; every activation call (ReLU, soft-threshold, softshrink,
box projection) starts one state ``z_k = φ_k(Σ_j W_kj z_j + b_k)`` from the affine form of its argument
(:mod:`unfoldtheory.tracing.affine`); the output's form gives the readout ``Σ_k C_k z_k``. An identity state is
added only where the output has an offset (or no layer exists), and, with ``exact=True``, before a linear map of
a form that is not a selection (so that no matrix product is formed).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import fx
from torch.utils import _pytree as pytree

from unfoldtheory.activations import Activation, Identity
from unfoldtheory.spec import Layer, NetworkSpec, NotRepresentable
from unfoldtheory.tracing import provenance as prov
from unfoldtheory.tracing.affine import DTYPE, Affine, state
from unfoldtheory.tracing.export import Graph, describe
from unfoldtheory.tracing.fold import fold
from unfoldtheory.tracing.ops import PATTERN_AWARE, handler
from unfoldtheory.tracing.provenance import Provenance
from unfoldtheory.tracing.refusals import pending_error
from unfoldtheory.tracing.values import Const, Pending, packet


@dataclass
class Built:
    spec: NetworkSpec
    provenance: dict[tuple[str, int, int | None], Provenance]
    formed: list[str]
    output: Affine


@dataclass
class Tracer:
    graph: Graph
    exact: bool = False
    layers: list[Layer] = field(default_factory=list)
    dims: list[int] = field(default_factory=list)
    provenance: dict[tuple[str, int, int | None], Provenance] = field(default_factory=dict)
    formed: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ states
    def new_state(self, a: Affine, act: Activation, node: fx.Node, extra: dict[str, Provenance]) -> Affine:
        """Start state ``z_k = act(form of a)`` and return the form of ``z_k``."""
        if not isinstance(a, Affine):
            raise NotRepresentable(f"{describe(node)}: its argument is not a traced tensor")
        k = len(self.layers) + 1
        n = a.numel
        weights = {j: C.detach().numpy().copy() for j, C in a.terms.items()}
        try:
            layer = Layer(weights, act, a.offset.detach().numpy().copy(), n)
            act.check_dim(n, f"layer {k}")
        except ValueError as exc:
            raise NotRepresentable(f"{describe(node)}: {exc}") from None
        self.layers.append(layer)
        self.dims.append(n)
        for j in weights:
            self.provenance[("weight", k, j)] = a.term_prov[j]
        self.provenance[("bias", k, None)] = a.offset_prov
        for role, p in extra.items():
            self.provenance[(role, k, None)] = p
        return state(k, a.shape, a.bdim, a.batch)

    def materialize(self, a: Affine, node: fx.Node) -> Affine:
        return self.new_state(a, Identity(), node, {})

    # ------------------------------------------------------------------ graph walk
    def run(self) -> Built:
        g = self.graph
        nodes = list(g.program.graph.nodes)
        output = next(n for n in nodes if n.op == "output")
        result = output.args[0][g.output_index]
        needed = _ancestors(result)
        example = g.example
        batch = int(example.shape[0])
        env: dict[fx.Node, Any] = {}
        for node in nodes:
            if node not in needed:
                continue
            if node.op == "placeholder":
                if node.name == g.input_name:
                    env[node] = state(0, tuple(example.shape), 0 if batch > 1 else None, batch)
                elif node.name in g.values:
                    p = prov.parameter(g.names[node.name]) if node.name in g.names else prov.constant(node.name)
                    env[node] = Const(g.values[node.name], p)
                else:
                    raise NotRepresentable(f"input {node.name} of the program has no value")
            elif node.op == "call_function":
                env[node] = self._call(node, env)
            elif node.op == "get_attr":
                value = getattr(g.program.graph_module, str(node.target))
                env[node] = Const(value.detach().to(DTYPE) if value.is_floating_point() else value,
                                  prov.constant(str(node.target)))
            else:
                raise NotRepresentable(f"graph node {node.name} ({node.op}) is not supported by the tracer")
        out = env[result] if isinstance(result, fx.Node) else result
        return self._finish(out, result, batch)

    def _call(self, node: fx.Node, env: dict[fx.Node, Any]) -> Any:
        args, kwargs = fx.node.map_arg((node.args, node.kwargs), lambda n: env[n])
        if node.target is operator.getitem:
            return args[0][args[1]]
        leaves = pytree.tree_leaves((args, kwargs))
        if not any(isinstance(x, (Affine, Pending)) for x in leaves):
            return fold(node, args, kwargs)
        fn = handler(node)
        if packet(node.target) not in PATTERN_AWARE:
            for x in leaves:
                if isinstance(x, Pending):
                    raise pending_error(x)
        return fn(self, node, args, kwargs)

    def _finish(self, out: Any, node: Any, batch: int) -> Built:
        if isinstance(out, Pending):
            raise pending_error(out)
        if isinstance(out, Const):
            raise NotRepresentable("the module's output does not depend on its input")
        if not isinstance(out, Affine):
            raise NotRepresentable(f"the module's output is a {type(out).__name__}; expected one tensor")
        readout: dict[int, np.ndarray] = {}
        if bool(out.offset.any()) or not self.layers or not out.terms:
            where = node if isinstance(node, fx.Node) else None
            out = self.new_state(out, Identity(), where, {}) if where is not None else out
        for j, C in out.terms.items():
            readout[j] = C.detach().numpy().copy()
            self.provenance[("readout", j, None)] = out.term_prov[j]
        spec = NetworkSpec(int(self.graph.example[0].numel()), self.layers, readout, name=self.graph.name)
        return Built(spec, self.provenance, _unique(self.formed), out)


def _ancestors(node: Any) -> set[fx.Node]:
    seen: set[fx.Node] = set()
    stack = [node] if isinstance(node, fx.Node) else []
    while stack:
        cur = stack.pop()
        if cur in seen:
            continue
        seen.add(cur)
        stack.extend(cur.all_input_nodes)
    return seen


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def per_sample(tensor: torch.Tensor, bdim: int | None) -> np.ndarray:
    """A batch tensor as (batch, per-sample elements) in the tracer's layout."""
    t = tensor.detach().to(DTYPE)
    if bdim is None:
        return t.reshape(1, -1).numpy()
    return t.movedim(bdim, 0).reshape(t.shape[bdim], -1).numpy()
