"""Trace a torch unfolded network into a float64 :class:`~unfoldtheory.spec.NetworkSpec`.

``from_torch(module, example_input)`` exports the module (``torch.export``, float64 copy, eval mode) and maps the
graph onto a spec: linear maps (``nn.Linear``/``F.linear``, matmul and ``torch.einsum`` with constants,
``nn.Conv1d``/``nn.Conv2d`` as matrices at the example's shape, sums, differences, scalings, reshapes, residual
connections, concatenation, slicing) become weights; activations (``F.relu``, ``F.softshrink``,
:func:`unfoldtheory.unfold.soft_threshold` and the pattern ``sign(v) * relu(|v| - t)``, ``F.hardtanh``/
``torch.clamp`` with constant bounds) become states. Anything else raises
:class:`~unfoldtheory.spec.NotRepresentable` naming the op, the module that runs it and the line of the innermost
``forward`` that reaches it (torch.export records no other frames: the op is on that line or in a function it calls).

``trace`` returns a :class:`TracedModel`: the spec, the module's parameters (tied ones once) and, for every weight,
bias, threshold and readout of the spec, the :class:`Provenance` of its entries in those parameters.

**Rounding.** Entries are float64 values computed from the parameters: sums and scalings round once per entry;
where two linear maps meet with no activation between them (``W₂ W₁``, ``AᵀA`` in ``x − γAᵀ(Ax − y)``) the entry
is a rounded float64 product, and :attr:`TracedModel.formed_products` lists each place. ``exact=True`` instead
keeps such products out of the spec by an identity state before the second map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from unfoldtheory.spec import NetworkSpec
from unfoldtheory.tracing.export import check_value_branches, graph_of
from unfoldtheory.tracing.provenance import Provenance
from unfoldtheory.tracing.tracer import Tracer, per_sample

ProvenanceKey = tuple[str, int, "int | None"]
ROLES = ("weight", "bias", "threshold", "bounds", "readout")

#: The self-check after tracing: ``|spec(y) − forward(y)| ≤ tol · max(1, |forward(y)|)`` on the example.
CHECK_RTOL = {torch.float64: 1e-9, torch.float32: 1e-3, torch.float16: 3e-2, torch.bfloat16: 3e-2}


@dataclass(frozen=True)
class TracedModel:
    """The result of :func:`trace`.

    ``provenance`` is keyed by ``(role, k, j)``: role ``"weight"`` (``W_kj``), ``"bias"`` (``b_k``),
    ``"threshold"`` (``θ_k`` of a soft-threshold state), ``"bounds"`` (the box of a box-projection state) or
    ``"readout"`` (``C_k``, then ``k`` is the state read and ``j`` is None); ``k`` is 1-based, ``j`` the source state
    (None for all roles but weights). ``formed_products`` says where entries are rounded matrix products.
    """

    spec: NetworkSpec
    parameters: dict[str, torch.Tensor]
    provenance: dict[tuple[str, int, int | None], Provenance]
    formed_products: tuple[str, ...] = ()
    program: torch.export.ExportedProgram | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def uses(self, name: str) -> list[tuple[str, int, int | None]]:
        """The spec entries whose provenance names parameter ``name`` (several when it is tied)."""
        if name not in self.parameters:
            raise KeyError(f"{name!r} is not a parameter of the traced module; parameters: {sorted(self.parameters)}")
        return [key for key, p in self.provenance.items() if name in p.parameters]


def trace(module_or_program: torch.nn.Module | torch.export.ExportedProgram, example_input: torch.Tensor | None = None,
          *, name: str | None = None, exact: bool = False) -> TracedModel:
    """Trace a module (or an exported program) into a :class:`TracedModel` (see the module docstring).

    ``example_input`` has a leading batch dimension; the spec's input is one sample flattened
    (``input_dim = prod(shape[1:])``), its output one sample of the output flattened. For a program it is optional
    (the program's input shape is used). The result is checked against the program's forward on the example.
    """
    graph = graph_of(module_or_program, example_input, name)
    built = Tracer(graph, exact=bool(exact)).run()
    if graph.method == "torch.export.draft_export":
        check_value_branches(graph.program)
    batch = int(graph.example.shape[0])
    reference, input_dtype = _reference(module_or_program, example_input, graph)
    if not isinstance(reference, torch.Tensor):
        raise RuntimeError(f"the traced program returned a {type(reference).__name__}; expected one tensor")
    expected = per_sample(reference, built.output.bdim if batch > 1 else None)
    got = built.spec.evaluate(graph.example.reshape(batch, -1).numpy())
    tol = CHECK_RTOL.get(input_dtype, 1e-3) * max(1.0, float(np.max(np.abs(expected))))
    err = float(np.max(np.abs(np.asarray(got) - expected)))
    if not err <= tol:
        raise RuntimeError(f"internal check failed: the traced spec differs from the module's forward by {err:.3g} "
                           f"(tolerance {tol:.3g}) on the example input; this is a bug in unfoldtheory.tracing")
    details = {"export": graph.method, "batch_size": batch, "exact": bool(exact), "check_error": err,
               "input_shape": tuple(graph.example.shape[1:])}
    return TracedModel(built.spec, dict(graph.parameters), dict(built.provenance), tuple(built.formed), graph.program,
                       details)


def from_torch(module_or_program: torch.nn.Module | torch.export.ExportedProgram, example_input: torch.Tensor | None = None,
               *, name: str | None = None, exact: bool = False) -> NetworkSpec:
    """The float64 :class:`~unfoldtheory.spec.NetworkSpec` of a torch module or exported program (``trace(...).spec``)."""
    return trace(module_or_program, example_input, name=name, exact=exact).spec


def _reference(module_or_program: Any, example_input: Any, graph: Any) -> tuple[Any, torch.dtype]:
    """The user's own forward on the example (a module in eval mode, in its dtype; or the program), and that dtype."""
    if isinstance(module_or_program, torch.nn.Module):
        floats = [t.dtype for t in (*module_or_program.parameters(), *module_or_program.buffers()) if t.is_floating_point()]
        dtype = floats[0] if floats else example_input.dtype
        was_training = module_or_program.training
        module_or_program.eval()
        try:
            with torch.no_grad():
                return module_or_program(graph.example.to(dtype)), dtype
        finally:
            module_or_program.train(was_training)
    node = next(n for n in graph.program.graph.nodes if n.op == "placeholder" and n.name == graph.input_name)
    val = node.meta.get("val")
    dtype = val.dtype if val is not None and hasattr(val, "dtype") else torch.float64
    with torch.no_grad():
        return graph.program.module()(graph.example.to(dtype)), dtype


__all__ = ["Provenance", "TracedModel", "from_torch", "trace"]
